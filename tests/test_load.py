import hashlib
import json
import shutil
from pathlib import Path

import pytest

from rag.load import CorpusError, decode, infer_year, load_corpus, parse_sidecar
from rag.segment import segment_page

SEED = Path(__file__).resolve().parent.parent / "data" / "jingkai"
PAGE_003 = "003_c4740e32d0d06a7b.txt"
PAGE_004 = "004_43c8cec8d1dedc71.txt"


def _copy_page(src_name: str, dst: Path, encoding: str | None = None, bom: bytes = b"") -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    target = dst / src_name
    if encoding is None:
        shutil.copyfile(SEED / src_name, target)
    else:
        text = (SEED / src_name).read_text(encoding="utf-8")
        target.write_bytes(bom + text.encode(encoding))
    return target


def test_seed_corpus_loads_with_sidecar_years():
    report = load_corpus(SEED)
    assert report.skipped == []
    assert report.warnings == []
    assert [p.source for p in report.pages] == sorted(p.name for p in SEED.glob("*.txt"))
    assert [p.year for p in report.pages] == [2022, 2023, 2023, 2020, 2022]
    assert [p.date for p in report.pages] == ["", "", "2023-03", "2020-06", "2022-01"]
    for page in report.pages:
        raw = (SEED / page.source).read_bytes()
        assert page.encoding == "utf-8"
        assert page.sha256 == hashlib.sha256(raw).hexdigest()
        assert page.text == raw.decode("utf-8")


@pytest.mark.parametrize(
    ("encoding", "bom", "detected"),
    [
        ("gbk", b"", "gb18030"),
        ("gb18030", b"", "gb18030"),
        ("utf-8", b"\xef\xbb\xbf", "utf-8-sig"),
        ("utf-16", b"", "utf-16"),  # Python writes a BOM for "utf-16"
        ("utf-16-le", b"", "utf-16-le"),  # BOM-less, found by the NUL-byte pattern
        ("utf-16-be", b"", "utf-16-be"),
    ],
)
def test_other_encodings_give_the_same_articles(tmp_path, encoding, bom, detected):
    _copy_page(PAGE_003, tmp_path / "orig")
    _copy_page(PAGE_003, tmp_path / "copy", encoding, bom)
    orig = load_corpus(tmp_path / "orig").pages[0]
    copy = load_corpus(tmp_path / "copy").pages[0]
    assert copy.encoding == detected
    assert copy.text == orig.text
    assert copy.sha256 != orig.sha256
    assert segment_page(copy) == segment_page(orig)


def test_undecodable_files_are_skipped_by_name_and_the_rest_loads(tmp_path):
    _copy_page(PAGE_003, tmp_path)
    (tmp_path / "broken.txt").write_bytes(b"\x80\xff" * 100)
    (tmp_path / "binary.md").write_bytes(bytes(range(1, 9)) * 50)
    (tmp_path / "empty.txt").write_bytes(b"  \n")
    report = load_corpus(tmp_path)
    assert [p.source for p in report.pages] == [PAGE_003]
    reasons = dict(report.skipped)
    assert sorted(reasons) == ["binary.md", "broken.txt", "empty.txt"]
    assert reasons["broken.txt"].startswith("无法识别编码（已尝试 UTF-8、UTF-16、GB18030）")
    assert "控制字符" in reasons["binary.md"]
    assert reasons["empty.txt"] == "文件为空"


def test_decode_rejects_mostly_control_characters():
    with pytest.raises(UnicodeError, match="无法识别编码"):
        decode(b"\x01\x02\x03\x04abc\x05\x06\x07")
    assert decode("本报讯".encode("gbk")) == ("本报讯", "gb18030")
    assert decode(b"") == ("", "utf-8")


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")


def test_root_that_is_a_file_is_an_error(tmp_path):
    f = _copy_page(PAGE_003, tmp_path)
    with pytest.raises(CorpusError, match="not a directory"):
        load_corpus(f)


def test_empty_root_is_an_error(tmp_path):
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    with pytest.raises(CorpusError, match=r"no readable \.txt or \.md file"):
        load_corpus(tmp_path)


def test_root_with_only_unreadable_files_is_an_error(tmp_path):
    (tmp_path / "broken.txt").write_bytes(b"\x80\xff" * 10)
    with pytest.raises(CorpusError, match="skipped 1 unreadable file"):
        load_corpus(tmp_path)


def test_walks_subfolders_sorted_and_skips_hidden_and_sidecars(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "b.txt").write_text("本报讯 二。", encoding="utf-8")
    (tmp_path / "sub" / "a.md").write_text("# 标题\n\n正文。", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("隐藏。", encoding="utf-8")
    (tmp_path / ".git" / "x.txt").write_text("隐藏。", encoding="utf-8")
    (tmp_path / "b.txt.meta.json").write_text('{"year": 2021}', encoding="utf-8")
    report = load_corpus(tmp_path)
    assert [p.source for p in report.pages] == ["b.txt", "sub/a.md"]
    assert [p.year for p in report.pages] == [2021, None]
    assert report.skipped == []


def test_sidecar_overrides_the_inferred_year(tmp_path):
    page = _copy_page(PAGE_004, tmp_path)
    assert load_corpus(tmp_path).pages[0].year == 2021  # the heuristic's known miss
    page.with_name(page.name + ".meta.json").write_text(
        json.dumps({"date": "2022-01-28"}), encoding="utf-8"
    )
    loaded = load_corpus(tmp_path).pages[0]
    assert (loaded.year, loaded.date) == (2022, "2022-01-28")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "Expecting property name"),
        ("[2020]", "must be a JSON object"),
        ('{"year": "2020"}', "year must be an integer"),
        ('{"year": true}', "year must be an integer"),
        ('{"date": "2020/05/01"}', "date must be 'YYYY-MM-DD' or 'YYYY-MM'"),
        ('{"date": "2020-13"}', "not a calendar date"),
        ('{"year": 2021, "date": "2020-05"}', "contradicts year 2021"),
        ('{"yaer": 2020}', "unknown key"),
    ],
)
def test_invalid_sidecar_is_ignored_with_a_warning(tmp_path, content, why):
    page = _copy_page(PAGE_003, tmp_path)
    page.with_name(page.name + ".meta.json").write_text(content, encoding="utf-8")
    report = load_corpus(tmp_path)
    assert [p.source for p in report.pages] == [PAGE_003]
    assert (report.pages[0].year, report.pages[0].date) == (2020, "")  # inferred, no date
    assert len(report.warnings) == 1
    assert report.warnings[0].startswith(f"{PAGE_003}.meta.json: ignored invalid sidecar (")
    assert why in report.warnings[0]


def test_parse_sidecar_accepts_month_precision():
    assert parse_sidecar({}) == (None, "")
    assert parse_sidecar({"date": "2020-06"}) == (2020, "2020-06")
    assert parse_sidecar({"year": 2020, "date": "2020-06-03"}) == (2020, "2020-06-03")


def test_infer_year_takes_the_latest_past_year_that_is_not_a_target():
    assert infer_year("2019年发行，2020年完成，力争2025年目标达成", today_year=2030) == 2020
    assert infer_year("2020年前完成；2018年开工", today_year=2030) == 2018
    assert infer_year("2020年，2031年", today_year=2030) == 2020
    assert infer_year("经开区30年的发展历程", today_year=2030) is None
