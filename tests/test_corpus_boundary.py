"""The corpus folder as a boundary: what rag.load reads, what it skips, and that it says so once.

Real files on a real file system (symlinks, FIFOs, names that are not UTF-8, huge files, binary,
NUL bytes, UTF-16 with and without BOM, GBK); the slow test builds an index over all of them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag.load import DEFAULT_MAX_FILE_BYTES, CorpusError, decode, load_corpus
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "data" / "jingkai"
PAGE = "003_c4740e32d0d06a7b.txt"
TEXT = (SEED / PAGE).read_text(encoding="utf-8")
NOT_UTF8 = os.fsdecode(b"\xb9\xab\xb8\xe6.txt")  # "公告.txt" in GBK: not valid UTF-8


def _page(folder: Path, name: str = PAGE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SEED / PAGE, folder / name)
    return folder / name


def _reasons(report) -> dict[str, str]:
    return dict(report.skipped)


def test_symlink_out_of_the_corpus_is_not_followed_by_default(tmp_path):
    corpus, outside = tmp_path / "corpus", tmp_path / "outside"
    _page(corpus)
    outside.mkdir()
    (outside / "secret.txt").write_text("机密：口令是 hunter2。", encoding="utf-8")
    (corpus / "passwd.txt").symlink_to("/etc/passwd")
    (corpus / "secret.txt").symlink_to(outside / "secret.txt")
    (corpus / "outdir").symlink_to(outside, target_is_directory=True)
    report = load_corpus(corpus)
    assert [p.source for p in report.pages] == [PAGE]
    reasons = _reasons(report)
    assert set(reasons) == {"passwd.txt", "secret.txt", "outdir"}
    assert all("语料文件夹之外" in r and "RAG_FOLLOW_SYMLINKS" in r for r in reasons.values())
    allowed = load_corpus(corpus, follow_symlinks=True)
    assert {p.source for p in allowed.pages} >= {PAGE, "secret.txt", "outdir/secret.txt"}


def test_symlinks_inside_loops_and_broken_links(tmp_path):
    corpus = tmp_path / "corpus"
    _page(corpus / "sub")
    (corpus / "alias.txt").symlink_to(corpus / "sub" / PAGE)  # a file inside: read under its name
    (corpus / "sub" / "up").symlink_to("..", target_is_directory=True)  # loop to an ancestor
    (corpus / "again").symlink_to("sub", target_is_directory=True)  # a folder inside, twice
    (corpus / "self.txt").symlink_to("self.txt")  # loops on itself
    (corpus / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    report = load_corpus(corpus)
    assert [p.source for p in report.pages] == ["alias.txt", f"sub/{PAGE}"]
    reasons = _reasons(report)
    assert reasons["sub/up"] == reasons["again"] == "符号链接指向语料内的文件夹（会重复或循环），已跳过"
    assert reasons["self.txt"] == "符号链接循环"
    assert reasons["gone.txt"] == "符号链接指向不存在的路径"
    # with following allowed, a loop through an outside folder back in is still cut
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "back").symlink_to(corpus, target_is_directory=True)
    (corpus / "out").symlink_to(outside, target_is_directory=True)
    followed = load_corpus(corpus, follow_symlinks=True)
    assert [p.source for p in followed.pages] == ["alias.txt", f"sub/{PAGE}"]
    assert _reasons(followed)["out/back"] == "符号链接指向语料内的文件夹（会重复或循环），已跳过"
    (outside / "itself").symlink_to(outside, target_is_directory=True)  # a loop entirely outside
    assert _reasons(load_corpus(corpus, follow_symlinks=True))["out/itself"] == "符号链接循环：这个文件夹已经读过"


def test_fifo_and_device_are_listed_not_read(tmp_path):
    _page(tmp_path)
    os.mkfifo(tmp_path / "pipe.txt")  # reading it would block the build for ever
    (tmp_path / "null.txt").symlink_to("/dev/null")  # outside anyway; with following allowed: a device
    report = load_corpus(tmp_path, follow_symlinks=True)
    assert [p.source for p in report.pages] == [PAGE]
    reasons = _reasons(report)
    assert reasons["pipe.txt"] == "不是普通文件（FIFO 管道），已跳过"
    assert reasons["null.txt"] == "不是普通文件（设备文件），已跳过"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a folder without read permission")
def test_unreadable_folder_is_listed(tmp_path):
    _page(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    _page(locked)
    locked.chmod(0)
    try:
        report = load_corpus(tmp_path)
    finally:
        locked.chmod(0o755)
    assert [p.source for p in report.pages] == [PAGE]
    assert _reasons(report)["locked"].startswith("无法读取文件夹：")


def test_file_over_the_size_limit_is_skipped_with_the_setting_named(tmp_path):
    _page(tmp_path)
    with (tmp_path / "huge.txt").open("wb") as fh:
        fh.truncate(DEFAULT_MAX_FILE_BYTES + 1)  # sparse: 5 MB without writing them
    report = load_corpus(tmp_path)
    assert [p.source for p in report.pages] == [PAGE]
    assert _reasons(report)["huge.txt"] == (
        "文件过大（5.0 MB，上限 5.0 MB）：请拆分文件，或调大设置 max_file_bytes（环境变量 RAG_MAX_FILE_BYTES）"
    )
    with pytest.raises(CorpusError, match="skipped 2 unreadable"):  # the page itself is 9 KB
        load_corpus(tmp_path, max_file_bytes=1000)


def test_names_that_are_not_utf8_are_skipped_and_the_rest_loads(tmp_path):
    _page(tmp_path)
    _page(tmp_path, NOT_UTF8)
    bad_dir = tmp_path / os.fsdecode(b"\xd0\xc2\xce\xc5")  # "新闻" in GBK
    _page(bad_dir)
    report = load_corpus(tmp_path)
    assert [p.source for p in report.pages] == [PAGE]
    assert _reasons(report) == {
        "\\xb9\\xab\\xb8\\xe6.txt": "文件名不是有效的 UTF-8 编码，已跳过（请改用 UTF-8 文件名）",
        "\\xd0\\xc2\\xce\\xc5": "文件夹名有问题（文件名不是有效的 UTF-8 编码），其中的文件未读取",
    }
    for name, _ in report.skipped:
        name.encode("utf-8")  # printable in a report, a log line or JSON


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (bytes(range(256)) * 40, "无法识别编码"),
        (b"\x00" * 4096, "控制字符"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 500 + b"\x90" * 500, "无法识别编码"),
        ("本报讯\x00\x00\x00记者".encode("utf-8") * 5 + b"\x00" * 400, "控制字符"),
    ],
    ids=["all-bytes", "nul", "elf", "text-with-nul-runs"],
)
def test_binary_and_nul_files_are_skipped(tmp_path, content, reason):
    _page(tmp_path)
    (tmp_path / "junk.txt").write_bytes(content)
    report = load_corpus(tmp_path)
    assert [p.source for p in report.pages] == [PAGE]
    assert reason in _reasons(report)["junk.txt"]


def test_nul_bytes_inside_a_real_page_are_dropped():
    text, encoding = decode(TEXT[:200].replace("。", "。\x00", 1).encode("utf-8"))
    assert encoding == "utf-8"
    from rag.textnorm import clean_text

    assert clean_text(text) == TEXT[:200]


CHINESE_ONLY = re.sub(r"[\x00-\x7f]", "", TEXT)  # few NUL bytes when written as UTF-16
MANY_YI = "一" * 40 + CHINESE_ONLY[:600]  # U+4E00: a NUL low byte, which fooled the NUL-pattern guess


@pytest.mark.parametrize("text", [TEXT, CHINESE_ONLY, MANY_YI], ids=["page", "no-ascii", "many-yi"])
@pytest.mark.parametrize(
    ("encoding", "bom", "detected"),
    [
        ("utf-16-le", b"", "utf-16-le"),
        ("utf-16-be", b"", "utf-16-be"),
        ("utf-16-le", b"\xff\xfe", "utf-16"),
        ("utf-16-be", b"\xfe\xff", "utf-16"),
        ("gbk", b"", "gb18030"),
        ("utf-8", b"\xef\xbb\xbf", "utf-8-sig"),
    ],
)
def test_encodings_of_chinese_text_are_detected(text, encoding, bom, detected):
    assert decode(bom + text.encode(encoding)) == (text, detected)


@pytest.mark.slow
def test_cli_builds_over_a_hostile_corpus_and_prints_each_skip_once(tmp_path, seed_settings, embedder):
    """The seed page is split into articles as in the session's index, so the subprocess finds
    its vectors in the session's cache and embeds only the two re-encoded texts."""
    shared_cache = seed_settings.cache_dir
    corpus = tmp_path / "corpus"
    _page(corpus)
    (corpus / "utf16.txt").write_bytes(MANY_YI.encode("utf-16-le"))
    (corpus / "gbk.txt").write_bytes(CHINESE_ONLY[:300].encode("gbk"))
    _page(corpus, NOT_UTF8)
    (corpus / "passwd.txt").symlink_to("/etc/passwd")
    (corpus / "loop").symlink_to(".", target_is_directory=True)
    os.mkfifo(corpus / "pipe.txt")
    with (corpus / "huge.txt").open("wb") as fh:
        fh.truncate(20_000_000)
    (corpus / "empty.txt").write_bytes(b"\n")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 8)
    index = tmp_path / "index"
    env = {**os.environ, "RAG_CACHE_DIR": str(shared_cache)}
    run = subprocess.run(
        [sys.executable, "-m", "rag.index", "--corpus", str(corpus), "--index", str(index), "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stderr
    assert "published" in run.stdout and "3 files" in run.stdout  # the page, utf16.txt, gbk.txt
    skipped = [line for line in run.stderr.splitlines() if line.startswith("跳过 skipped")]
    names = [line.split(" ")[2].rstrip(":") for line in skipped]
    assert sorted(names) == sorted(
        ["\\xb9\\xab\\xb8\\xe6.txt", "passwd.txt", "loop", "pipe.txt", "huge.txt", "empty.txt", "binary.txt"]
    )
    assert "Traceback" not in run.stderr and "WARNING" not in run.stderr  # each reason once, from the CLI
    assert "/etc/passwd" not in (index / (index / "CURRENT").read_text().strip() / "chunks.jsonl").read_text(encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=index, cache_dir=shared_cache)
    from rag.engine import Engine

    answer = Engine(settings, embedder=embedder).ask("root:x:0:0")
    assert "root:x" not in answer.answer
