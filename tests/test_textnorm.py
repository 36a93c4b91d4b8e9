"""rag.textnorm: the one cleaning step for strings from the network and the file system."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.textnorm import REPLACEMENT, clean_line, clean_text, fs_name_problem, printable_name


def test_lone_surrogates_are_replaced_and_the_text_encodes():
    text = clean_text("经开区\ud800专项债\udfff")
    assert text == f"经开区{REPLACEMENT}专项债{REPLACEMENT}"
    text.encode("utf-8")


def test_nfc_and_compatibility_ideographs():
    assert clean_text("cafe\u0301") == "café"
    assert clean_text("\uf900") == unicodedata.normalize("NFC", "\uf900") == "\u8c48"  # 豈 compatibility -> unified


def test_controls_dropped_layout_kept():
    assert clean_text("a\x00b\x1bc\x7fd\x85e\ufefff") == "abcdef"
    assert clean_text("第一段\n第二段\r\n\t缩进") == "第一段\n第二段\r\n\t缩进"
    assert clean_text("页一\f页二\v行") == "页一\n页二\n行"
    assert clean_text("") == "" and clean_text("plain ascii") == "plain ascii"
    assert clean_text("e\x00\u0301") == "é"  # the control goes before NFC composes


def test_clean_line_collapses_whitespace():
    assert clean_line("  经开区\n\n2020年\t专项债  ") == "经开区 2020年 专项债"


def test_file_names_that_are_not_utf8():
    bad = b"\xb9\xab\xb8\xe6.txt".decode("utf-8", "surrogateescape")  # "公告" in GBK
    assert fs_name_problem(bad) == "文件名不是有效的 UTF-8 编码"
    assert printable_name(bad) == "\\xb9\\xab\\xb8\\xe6.txt"
    assert fs_name_problem("公告.txt") is None
    assert fs_name_problem("a\x01.txt") == "文件名含有控制字符"
    assert printable_name("a\nb.txt") == "a\\u000ab.txt"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF)))
def test_any_string_comes_out_encodable_nfc_and_stable(text):
    out = clean_text(text)
    out.encode("utf-8")  # never raises: no surrogate survives
    assert unicodedata.is_normalized("NFC", out)
    assert clean_text(out) == out
    assert not any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in out)
