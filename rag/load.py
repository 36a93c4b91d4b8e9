"""Stage 1: corpus files -> Page records.

Scanned newspaper pages arrive in whatever encoding the extraction tool or the person who
saved them chose: UTF-8 (with or without BOM), UTF-16 (Windows "Unicode" saves, sometimes
without a BOM) or GB18030/GBK/GB2312 (older Chinese Windows tools). ``decode`` tries them
in an order where a wrong guess fails loudly instead of producing mojibake: UTF-8 is strict
and rarely decodes non-UTF-8 Chinese by accident; GB18030 comes last because it accepts many
byte sequences. A file that decodes under none, or only to mostly control/replacement
characters, is reported in ``LoadReport.skipped`` and the rest of the corpus still loads.

Sidecar metadata: ``<file>.meta.json`` beside a page, a JSON object with optional keys
``"year"`` (int), ``"date"`` (``"YYYY-MM-DD"`` or ``"YYYY-MM"``) and ``"label"`` (a short
non-empty string, e.g. "经开时报 2020-05-25 第3版"). A sidecar that cannot be used is ignored
with a warning in ``LoadReport.warnings``; the page still loads. Without a sidecar year,
``infer_year`` guesses the year from the text (a heuristic, see there).

The corpus folder is a boundary (issue 10): a symlink inside it to ``/etc/passwd`` used to be
indexed and quoted. The walk therefore never leaves the folder through a symlink unless
``follow_symlinks`` is set, never enters a folder twice (loops), reads only regular files (a
FIFO would block the build for ever), refuses files over ``max_file_bytes`` (a 20 MB file is
about two hours of embedding), and skips names that are not valid UTF-8 instead of aborting
the build. Everything skipped is listed in ``LoadReport.skipped`` with a reason in Chinese;
the library only logs it at INFO, so the CLI's own list is the one the user sees, once.
Page text passes ``rag.textnorm.clean_text`` (NFC, no control characters) before any stage.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import logging
import os
import re
import stat
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rag.records import Page
from rag.zh import YEAR_RE
from rag.textnorm import clean_text, fs_name_problem, printable_name

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md")
SIDECAR_SUFFIX = ".meta.json"
SIDECAR_KEYS = frozenset({"year", "date", "label"})
MAX_LABEL_CHARS = 80
DEFAULT_MAX_FILE_BYTES = 5_000_000
MAX_SIDECAR_BYTES = 65536

# Share of implausible characters (controls, U+FFFD, unassigned, private use) above which a
# decoding is rejected: real pages have none; binary data decoded as GB18030 has plenty.
MAX_JUNK_SHARE = 0.05


class CorpusError(Exception):
    """The corpus as a whole cannot be used (missing, not a directory, nothing readable)."""


class FileStat(NamedTuple):
    """What a build remembers of a page to know it unchanged without reading it; the sidecar's
    size is -1 when there is none."""

    size: int
    mtime_ns: int
    side_size: int
    side_mtime_ns: int


@dataclass
class LoadReport:
    pages: list[Page] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    warnings: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # matched `known`: not read, no Page
    stats: dict[str, FileStat] = field(default_factory=dict)  # every page read or unchanged


def load_corpus(
    root: Path,
    *,
    follow_symlinks: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    known: Mapping[str, FileStat] | None = None,
) -> LoadReport:
    """Read every ``.txt``/``.md`` under ``root``: recursive, sorted, hidden paths skipped.

    ``known``: file -> FileStat of files whose content the caller already has; a file whose
    stat (and its sidecar's) still matches is listed in ``unchanged`` instead of being read."""
    root = Path(root)
    if not root.exists():
        raise CorpusError(f"corpus directory does not exist: {root}")
    if not root.is_dir():
        raise CorpusError(f"corpus path is not a directory: {root}")
    if max_file_bytes < 1:
        raise ValueError("max_file_bytes must be positive")
    report = LoadReport()
    known = known or {}
    for rel, path, st, has_sidecar in _corpus_files(root, follow_symlinks, max_file_bytes, report.skipped):
        stat_now = _file_stat(path, st, has_sidecar)
        if known.get(rel) == stat_now:
            report.unchanged.append(rel)
            report.stats[rel] = stat_now
            continue
        try:
            raw = _read_regular(path, max_file_bytes)
        except _Skip as exc:
            report.skipped.append((rel, str(exc)))
            continue
        except OSError as exc:
            report.skipped.append((rel, f"无法读取文件：{exc.strerror or exc}"))
            continue
        try:
            text, encoding = decode(raw)
        except UnicodeError as exc:
            report.skipped.append((rel, str(exc)))
            continue
        text = clean_text(text)
        if not text.strip():
            report.skipped.append((rel, "文件为空"))
            continue
        year, date = _read_sidecar(path, rel, report.warnings)
        if year is None:
            year = infer_year(text)
        report.stats[rel] = stat_now
        report.pages.append(
            Page(
                source=rel,
                text=text,
                encoding=encoding,
                sha256=hashlib.sha256(raw).hexdigest(),
                year=year,
                date=date,
            )
        )
    report.skipped.sort()
    for rel, reason in report.skipped:
        logger.info("skipped %s: %s", rel, reason)
    if not report.pages and not report.unchanged:
        detail = f"; skipped {len(report.skipped)} unreadable file(s)" if report.skipped else ""
        raise CorpusError(f"no readable .txt or .md file in {root}{detail}")
    logger.info("loaded %d page(s) from %s (%d unchanged, not read)", len(report.pages), root, len(report.unchanged))
    return report


def _file_stat(path: Path, st: os.stat_result, has_sidecar: bool) -> FileStat:
    side_size, side_mtime = -1, 0
    if has_sidecar:  # from the folder listing: no failed stat per page without one
        try:
            side = os.stat(path.with_name(path.name + SIDECAR_SUFFIX))
            side_size, side_mtime = side.st_size, side.st_mtime_ns
        except OSError:
            pass
    return FileStat(st.st_size, st.st_mtime_ns, side_size, side_mtime)


class _Skip(Exception):
    """A path that is not read, with the reason (Chinese) as the message."""


def _is_candidate(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(TEXT_SUFFIXES) and not lower.endswith(SIDECAR_SUFFIX)


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def too_large_reason(size: int, max_file_bytes: int) -> str:
    return (
        f"文件过大（{_mb(size)}，上限 {_mb(max_file_bytes)}）：请拆分文件，"
        f"或调大设置 max_file_bytes（环境变量 RAG_MAX_FILE_BYTES）"
    )


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _corpus_files(
    root: Path, follow_symlinks: bool, max_file_bytes: int, skipped: list[tuple[str, str]]
) -> list[tuple[str, Path, os.stat_result, bool]]:
    """(relative name, path, stat, has a sidecar) of every candidate page, sorted by name; the rest goes to `skipped`.

    Hidden names (leading dot) are passed over silently, as are files that are not pages; every
    other path that is not read is reported once, with why."""
    root_real = os.path.realpath(root)
    seen_dirs = {_dir_key(root_real)}
    files: list[tuple[str, Path, os.stat_result, bool]] = []

    def walk(folder: str, prefix: str) -> None:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
            names = {e.name for e in entries}
        except OSError as exc:
            skipped.append((prefix or ".", f"无法读取文件夹：{exc.strerror or exc}"))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = f"{prefix}/{entry.name}" if prefix else entry.name
            shown = printable_name(rel)
            try:
                st = _entry_stat(entry, root_real, follow_symlinks)
            except _Skip as exc:
                skipped.append((shown, str(exc)))
                continue
            except OSError as exc:
                skipped.append((shown, f"无法读取：{exc.strerror or exc}"))
                continue
            if stat.S_ISDIR(st.st_mode):
                problem = fs_name_problem(entry.name)
                if problem:
                    skipped.append((shown, f"文件夹名有问题（{problem}），其中的文件未读取"))
                    continue
                key = (st.st_dev, st.st_ino)
                if key in seen_dirs:
                    skipped.append((shown, "符号链接循环：这个文件夹已经读过"))
                    continue
                seen_dirs.add(key)
                walk(entry.path, rel)
            elif stat.S_ISREG(st.st_mode):
                if not _is_candidate(entry.name):
                    continue
                problem = fs_name_problem(rel)
                if problem:
                    skipped.append((shown, f"{problem}，已跳过（请改用 UTF-8 文件名）"))
                elif st.st_size > max_file_bytes:
                    skipped.append((rel, too_large_reason(st.st_size, max_file_bytes)))
                else:
                    files.append((rel, Path(entry.path), st, entry.name + SIDECAR_SUFFIX in names))
            else:
                skipped.append((shown, f"不是普通文件（{_kind(st.st_mode)}），已跳过"))

    walk(str(root), "")
    return sorted(files, key=lambda item: item[0])


def _dir_key(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _entry_stat(entry: os.DirEntry, root_real: str, follow_symlinks: bool) -> os.stat_result:
    """The entry's stat, following a symlink only if it stays inside the corpus (or that is allowed)."""
    if not entry.is_symlink():
        return entry.stat(follow_symlinks=False)
    try:
        target = os.path.realpath(entry.path, strict=True)
    except FileNotFoundError:
        raise _Skip("符号链接指向不存在的路径") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Skip("符号链接循环") from None
        raise
    if not _inside(target, root_real) and not follow_symlinks:
        raise _Skip("符号链接指向语料文件夹之外，未跟随（设置 follow_symlinks / RAG_FOLLOW_SYMLINKS=1 可允许）")
    st = os.stat(target)
    if stat.S_ISDIR(st.st_mode) and _inside(target, root_real):
        # a link to a folder of the corpus: its files are read under their own names already,
        # and a link to an ancestor would loop
        raise _Skip("符号链接指向语料内的文件夹（会重复或循环），已跳过")
    return st


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO 管道"
    if stat.S_ISSOCK(mode):
        return "套接字"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "设备文件"
    return "特殊文件"


def _read_regular(path: Path, max_file_bytes: int) -> bytes:
    """Read a file that was a regular file when listed; never blocks on a FIFO swapped in since."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Skip(f"不是普通文件（{_kind(st.st_mode)}），已跳过")
        if st.st_size > max_file_bytes:
            raise _Skip(too_large_reason(st.st_size, max_file_bytes))
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(max_file_bytes + 1)
    finally:
        os.close(fd)
    if len(raw) > max_file_bytes:
        raise _Skip(too_large_reason(len(raw), max_file_bytes))
    return raw


# --- decoding ---------------------------------------------------------------------------

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def decode(raw: bytes) -> tuple[str, str]:
    """Return (text, encoding name); raise UnicodeError saying which encodings were tried.

    Order: byte-order mark; BOM-less UTF-16 by its NUL bytes; strict UTF-8; BOM-less UTF-16 by
    the statistics of its code units (Chinese text with few ASCII characters has few NULs);
    GB18030 last, because it accepts almost any byte sequence."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return _checked(raw.decode(encoding), encoding)
            except UnicodeError as exc:
                raise UnicodeError(f"有 {encoding} 字节顺序标记（BOM），但无法按它解码：{exc.reason}") from exc
    has_nul = b"\x00" in raw
    candidates = (
        lambda: _utf16_by_statistics(raw) if has_nul else None,  # decisive for Chinese-heavy text
        lambda: _utf16_by_nul_pattern(raw),  # decisive for ASCII-heavy text
        lambda: "utf-8",
        lambda: None if has_nul else _utf16_by_statistics(raw),
        lambda: "gb18030",
    )
    tried: list[str] = []
    for guess in candidates:
        encoding = guess()
        if encoding is None or encoding in tried:
            continue
        tried.append(encoding)
        try:
            return _checked(raw.decode(encoding), encoding)
        except UnicodeError:
            continue
    raise UnicodeError("无法识别编码（已尝试 UTF-8、UTF-16、GB18030），或解码后多为控制字符")


def _utf16_by_nul_pattern(raw: bytes) -> str | None:
    """Guess BOM-less UTF-16 from where the NUL bytes sit.

    ASCII characters (digits, spaces, newlines) in UTF-16 have a NUL high byte, so NULs pile
    up on odd offsets (little endian) or even offsets (big endian). Text in UTF-8 or GB18030
    never contains NUL bytes.
    """
    if len(raw) < 4 or len(raw) % 2:
        return None
    even = raw[0::2].count(0)
    odd = raw[1::2].count(0)
    if even + odd < max(2, len(raw) // 100):
        return None
    if odd >= 9 * even:
        return "utf-16-le"
    if even >= 9 * odd:
        return "utf-16-be"
    return None


# Code-unit ranges that make up Chinese newspaper text: ASCII, Latin-1, general punctuation,
# number forms and enclosed numbers, CJK symbols and punctuation, kana, CJK ideographs (extension
# A, unified, compatibility), full-width forms. Hangul and the private-use area are not in it.
_PLAUSIBLE = (
    (0x09, 0x0D), (0x20, 0x7E), (0xA0, 0xFF), (0x2000, 0x206F), (0x2100, 0x24FF), (0x2500, 0x27BF),
    (0x2E80, 0x30FF), (0x3100, 0x31FF), (0x3200, 0x33FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF),
)
UTF16_SAMPLE_BYTES = 65536
MIN_UTF16_SHARE = 0.95  # of code units in _PLAUSIBLE for the chosen byte order
MAX_OTHER_SHARE = 0.6  # the other byte order must look clearly worse


def _plausible_share(units: np.ndarray) -> float:
    hits = np.zeros(len(units), dtype=bool)
    for lo, hi in _PLAUSIBLE:
        hits |= (units >= lo) & (units <= hi)
    return float(hits.mean()) if len(units) else 0.0


def _utf16_by_statistics(raw: bytes) -> str | None:
    """Guess BOM-less UTF-16 from what its code units would be, for text with few ASCII bytes.

    Read as UTF-16 in the right byte order, Chinese text is almost all CJK ideographs and
    punctuation (U+3000..U+9FFF, U+FF00..); in the wrong order the same units land in Hangul,
    private use or unassigned ranges, and GBK or UTF-8 bytes read as UTF-16 land there too
    (their lead bytes are 0x81..0xFE). Only called after strict UTF-8 failed: ASCII letters read
    as UTF-16 also look like ideographs (b"he" -> U+6568)."""
    if len(raw) < 16 or len(raw) % 2:
        return None
    sample = raw[: UTF16_SAMPLE_BYTES - UTF16_SAMPLE_BYTES % 2]
    le = np.frombuffer(sample, dtype="<u2")
    share_le, share_be = _plausible_share(le), _plausible_share(le.byteswap())
    if share_le >= MIN_UTF16_SHARE and share_be <= MAX_OTHER_SHARE:
        return "utf-16-le"
    if share_be >= MIN_UTF16_SHARE and share_le <= MAX_OTHER_SHARE:
        return "utf-16-be"
    return None


def _checked(text: str, encoding: str) -> tuple[str, str]:
    if text and _junk_share(text) > MAX_JUNK_SHARE:
        raise UnicodeError(f"按 {encoding} 解码后多为控制字符或未分配字符")
    return text, encoding


def _junk_share(text: str) -> float:
    junk = 0
    for ch in text:
        if ch in "\n\r\t\f":
            continue
        if ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Cn", "Co", "Cs"):
            junk += 1
    return junk / len(text)


# --- metadata ---------------------------------------------------------------------------

_DATE_RE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")


def parse_sidecar(data: object) -> tuple[int | None, str]:
    """Validate a sidecar's JSON value; return (year, date) or raise ValueError saying why."""
    if not isinstance(data, dict):
        raise ValueError("must be a JSON object")
    unknown = set(data) - SIDECAR_KEYS
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}; allowed: year, date, label")
    year = data.get("year")
    label = data.get("label")
    if label is not None and (not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL_CHARS):
        raise ValueError(f"label must be a non-empty string of at most {MAX_LABEL_CHARS} characters, got {label!r}")
    if year is not None and (type(year) is not int or not 1900 <= year <= 2100):
        raise ValueError(f"year must be an integer between 1900 and 2100, got {year!r}")
    date = data.get("date", "")
    if not isinstance(date, str):
        raise ValueError(f"date must be a string 'YYYY-MM-DD' or 'YYYY-MM', got {date!r}")
    if date:
        m = _DATE_RE.match(date)
        if not m:
            raise ValueError(f"date must be 'YYYY-MM-DD' or 'YYYY-MM', got {date!r}")
        try:
            dt.date(int(m[1]), int(m[2]), int(m[3] or 1))
        except ValueError as exc:
            raise ValueError(f"date {date!r} is not a calendar date: {exc}") from None
        if year is not None and int(m[1]) != year:
            raise ValueError(f"date {date!r} contradicts year {year}")
        if year is None:
            year = int(m[1])
    return year, date


def _read_sidecar(path: Path, rel: str, warnings: list[str]) -> tuple[int | None, str]:
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return None, ""
    try:
        if sidecar.is_symlink():
            raise ValueError("a sidecar must not be a symlink")
        data = json.loads(clean_text(_read_regular(sidecar, MAX_SIDECAR_BYTES).decode("utf-8")))
        return parse_sidecar(data)
    except _Skip as exc:
        message = f"{rel}{SIDECAR_SUFFIX}: ignored invalid sidecar ({exc})"
        warnings.append(message)
        logger.info(message)
        return None, ""
    except (OSError, UnicodeError, json.JSONDecodeError, ValueError) as exc:
        message = f"{rel}{SIDECAR_SUFFIX}: ignored invalid sidecar ({exc})"
        warnings.append(message)
        logger.info(message)
        return None, ""


_YEAR_RE = re.compile(YEAR_RE.pattern + r"(?![^\n]{0,3}?(?:目标|规划|前))")


def infer_year(text: str, today_year: int | None = None) -> int | None:
    """Heuristic: the latest ``YYYY年`` in the text that is not in the future.

    News reports mostly mention the current or past years, so the latest year written is a
    fair guess for the publication year. Known failure: a January page reviewing the year
    before (page 004 talks about "2021年度" and was printed in 2022) is placed a year early,
    and a page with no ``YYYY年`` gets None; ship a sidecar for such pages. Years followed
    within three characters by 目标/规划/前 are plan targets ("2025年目标") and are ignored.
    """
    limit = today_year if today_year is not None else dt.date.today().year
    years = [int(m[1]) for m in _YEAR_RE.finditer(text)]
    years = [y for y in years if y <= limit]
    return max(years) if years else None
