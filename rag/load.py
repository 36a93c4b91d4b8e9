"""Stage 1: corpus files -> Page records.

Scanned newspaper pages arrive in whatever encoding the extraction tool or the person who
saved them chose: UTF-8 (with or without BOM), UTF-16 (Windows "Unicode" saves, sometimes
without a BOM) or GB18030/GBK/GB2312 (older Chinese Windows tools). ``decode`` tries them
in an order where a wrong guess fails loudly instead of producing mojibake: UTF-8 is strict
and rarely decodes non-UTF-8 Chinese by accident; GB18030 comes last because it accepts many
byte sequences. A file that decodes under none, or only to mostly control/replacement
characters, is reported in ``LoadReport.skipped`` and the rest of the corpus still loads.

Sidecar metadata: ``<file>.meta.json`` beside a page, a JSON object with optional keys
``"year"`` (int) and ``"date"`` (``"YYYY-MM-DD"`` or ``"YYYY-MM"``). A sidecar that cannot be
used is ignored with a warning in ``LoadReport.warnings``; the page still loads. Without a
sidecar year, ``infer_year`` guesses the year from the text (a heuristic, see there).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from rag.records import Page
from rag.zh import YEAR_RE

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md")
SIDECAR_SUFFIX = ".meta.json"
SIDECAR_KEYS = frozenset({"year", "date"})

# Share of implausible characters (controls, U+FFFD, unassigned, private use) above which a
# decoding is rejected: real pages have none; binary data decoded as GB18030 has plenty.
MAX_JUNK_SHARE = 0.05


class CorpusError(Exception):
    """The corpus as a whole cannot be used (missing, not a directory, nothing readable)."""


@dataclass
class LoadReport:
    pages: list[Page] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    warnings: list[str] = field(default_factory=list)


def load_corpus(root: Path) -> LoadReport:
    """Read every ``.txt``/``.md`` under ``root``: recursive, sorted, hidden paths skipped."""
    root = Path(root)
    if not root.exists():
        raise CorpusError(f"corpus directory does not exist: {root}")
    if not root.is_dir():
        raise CorpusError(f"corpus path is not a directory: {root}")
    report = LoadReport()
    for path in _corpus_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            raw = path.read_bytes()
        except OSError as exc:
            report.skipped.append((rel, f"cannot read file: {exc.strerror or exc}"))
            continue
        try:
            text, encoding = decode(raw)
        except UnicodeError as exc:
            report.skipped.append((rel, str(exc)))
            continue
        if not text.strip():
            report.skipped.append((rel, "file is empty"))
            continue
        year, date = _read_sidecar(path, rel, report.warnings)
        if year is None:
            year = infer_year(text)
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
    for rel, reason in report.skipped:
        logger.warning("skipped %s: %s", rel, reason)
    if not report.pages:
        detail = f"; skipped {len(report.skipped)} unreadable file(s)" if report.skipped else ""
        raise CorpusError(f"no readable .txt or .md file in {root}{detail}")
    logger.info("loaded %d page(s) from %s", len(report.pages), root)
    return report


def _corpus_files(root: Path) -> list[Path]:
    files = []
    for path in root.rglob("*"):
        rel_parts = path.relative_to(root).parts
        if any(part.startswith(".") for part in rel_parts):
            continue
        name = path.name.lower()
        if name.endswith(SIDECAR_SUFFIX) or not name.endswith(TEXT_SUFFIXES):
            continue
        if path.is_file():
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


# --- decoding ---------------------------------------------------------------------------

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def decode(raw: bytes) -> tuple[str, str]:
    """Return (text, encoding name); raise UnicodeError saying which encodings were tried."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return _checked(raw.decode(encoding), encoding)
            except UnicodeError as exc:
                message = f"has a {encoding} byte-order mark but does not decode: {exc}"
                raise UnicodeError(message) from exc
    candidates = ["utf-8", "gb18030"]
    bomless_utf16 = _utf16_by_nul_pattern(raw)
    if bomless_utf16:
        candidates.insert(0, bomless_utf16)
    for encoding in candidates:
        try:
            return _checked(raw.decode(encoding), encoding)
        except UnicodeError:
            continue
    raise UnicodeError(
        "cannot decode as UTF-8, UTF-16 or GB18030 (or decodes only to control characters)"
    )


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


def _checked(text: str, encoding: str) -> tuple[str, str]:
    if text and _junk_share(text) > MAX_JUNK_SHARE:
        raise UnicodeError(f"{encoding} decodes to mostly control or unassigned characters")
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
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}; allowed: year, date")
    year = data.get("year")
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
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        return parse_sidecar(data)
    except (OSError, UnicodeError, json.JSONDecodeError, ValueError) as exc:
        message = f"{rel}{SIDECAR_SUFFIX}: ignored invalid sidecar ({exc})"
        warnings.append(message)
        logger.warning(message)
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
