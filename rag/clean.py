"""Stage 2: repair PDF-extraction damage in a page's text (pure functions).

What the extraction of 经开时报 pages leaves behind, and what is done about it:

* Line breaks every 10-15 characters on narrow-column pages and at every column break on wide
  ones. Lines are joined into paragraphs: a line that does not end a sentence (。！？… maybe
  followed by a closing quote) continues on the next line, also across blank lines, unless
  the next block starts a report (a lead marker of the corpus profile: 本报讯), is a byline,
  or looks like a heading.
* Headings are short blocks without sentence punctuation. A one-line block with commas is a
  heading only on a narrow-column page and only when it is wider than the column (body lines
  fill the column exactly; headings do not). Multi-line headings are joined with a space.
* Bylines (记者 王赛华 通讯员 陈漫艺, 文/图; the roles come from the profile) become their own
  paragraph, also when the extraction glued them to the end of the last sentence; their
  spaces are kept because they separate names.
* Spaces between Chinese characters (``本 报 讯``) are removed in body text; a single space in a
  heading is kept, because the paper prints two-part headlines ("积极申报专项债券 助力经开快速
  发展"), unless the heading is letter-spaced throughout.
* Full-width letters and digits become ASCII; half-width , : ; ( ) ? ! next to Chinese text
  become full-width, never between two digits (1,000 and 10:30 stay).
* Control characters, BOMs and zero-width characters are dropped.

Invariant (tested): with whitespace removed and NFKC applied, the output equals the input;
cleaning never drops, adds or changes a content character.
"""

from __future__ import annotations

import logging
import re
import statistics
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from .profile import Profile, default_profile
from .zh import CLOSERS, HAN, LINE_SENTENCE_END_CHARS, SENTENCE_END_CHARS, is_han

logger = logging.getLogger(__name__)

ParagraphKind = Literal["text", "heading", "byline"]


@dataclass(frozen=True)
class Paragraph:
    text: str
    kind: ParagraphKind


# --- character classes ------------------------------------------------------------------

_QUOTES = "“”‘’"
_OPENERS = "“‘（(《「『【"
_COMMAS = "，、,"
_CONTINUES = "，、,：:；;" + _OPENERS  # a line ending in one of these always goes on

_DROP_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\u200b-\u200d\u2060\ufffe]")
_HSPACE_RE = re.compile(r"[^\S\n]+")

_HALF_TO_FULL = {",": "，", ":": "：", ";": "；", "(": "（", ")": "）", "?": "？", "!": "！"}
_HALF_PUNCT_RE = re.compile(r"[,:;()?!]")

_BYLINE_TOKEN = rf"(?:[{HAN}]{{2,4}}|文/图|文|图|摄)"
# Roles that credit people; a byline glued to the end of a paragraph starts with one of them.
_GLUED_ROLES = ("本报记者", "记者", "通讯员")


@dataclass(frozen=True)
class _Patterns:
    """The profile's lead markers and byline roles, compiled once per profile."""

    lead: re.Pattern[str]
    byline: re.Pattern[str]
    byline_more: re.Pattern[str]
    trailing_byline: re.Pattern[str]


@lru_cache(maxsize=8)
def _patterns(profile: Profile) -> _Patterns:
    # "本 报 讯": the extraction letter-spaces some leads
    markers = "|".join(r"\s*".join(map(re.escape, m)) for m in profile.lead_markers) or "(?!)"
    role = "(?:" + "|".join(map(re.escape, profile.byline_roles)) + ")"
    word = rf"(?:{role}|{_BYLINE_TOKEN})"
    glued = "(?:" + ("|".join(r for r in _GLUED_ROLES if r in profile.byline_roles) or "(?!)") + ")"
    return _Patterns(
        lead=re.compile(rf"^(?:{markers})"),
        byline=re.compile(rf"^(?:{role}(?:[ \t\u3000]+{_BYLINE_TOKEN})+|文/图)$"),
        # a second byline line ("经开时报 李洪永", "文/图") directly under a first one
        byline_more=re.compile(rf"^{word}(?:[ \t\u3000]+{word})+$|^文/图$"),
        # a byline glued to the end of a paragraph: "...深入探讨。记者 鲁慧 文/图"
        trailing_byline=re.compile(
            rf"(?<=[。！？”’）)])\s*({glued}(?:[ \t\u3000]+{_BYLINE_TOKEN})+)\s*$"
        ),
    )


def _is_wide(ch: str) -> bool:
    """Chinese characters and the punctuation that lives with them."""
    o = ord(ch)
    return is_han(ch) or 0x3000 < o <= 0x303F or 0xFF00 <= o <= 0xFFEF or ch in _QUOTES + "…—·"


# --- character-level repairs ------------------------------------------------------------


def normalize_chars(text: str) -> str:
    """Drop control/zero-width characters, unify newlines, full-width letters/digits -> ASCII."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _DROP_RE.sub("", text)
    return "".join(
        chr(ord(c) - 0xFEE0) if ("０" <= c <= "９" or "Ａ" <= c <= "Ｚ" or "ａ" <= c <= "ｚ") else c
        for c in text
    )


def remove_cjk_spaces(text: str) -> str:
    """Remove spaces touching a Chinese character or Chinese punctuation; collapse the rest.

    "iPhone 14" keeps its space; "673 条" becomes "673条"; digits are never touched.
    """

    def repl(m: re.Match[str]) -> str:
        s, e = m.start(), m.end()
        if s == 0 or e == len(text):
            return ""
        return "" if _is_wide(text[s - 1]) or _is_wide(text[e]) else " "

    return _HSPACE_RE.sub(repl, text)


def to_fullwidth_punct(text: str) -> str:
    """Half-width , : ; ( ) ? ! beside Chinese text -> full-width; never between digits."""

    def neighbour(i: int, step: int) -> str:
        while 0 <= i < len(text):
            if not text[i].isspace():
                return text[i]
            i += step
        return ""

    def repl(m: re.Match[str]) -> str:
        left, right = neighbour(m.start() - 1, -1), neighbour(m.end(), 1)
        if left.isdigit() and right.isdigit():
            return m.group()
        if (left and _is_wide(left)) or (right and _is_wide(right)):
            return _HALF_TO_FULL[m.group()]
        return m.group()

    return _HALF_PUNCT_RE.sub(repl, text)


def _heading_spaces(text: str) -> str:
    """Keep one space between headline parts unless the heading is letter-spaced throughout."""
    spaced = len(re.findall(rf"[{HAN}] [{HAN}]", text))
    tight = len(re.findall(rf"[{HAN}](?=[{HAN}])", text))
    if spaced > tight:
        return remove_cjk_spaces(text)
    return _HSPACE_RE.sub(" ", text).strip()


# --- line-level classification ----------------------------------------------------------


def is_byline(line: str, profile: Profile | None = None) -> bool:
    return bool(_patterns(profile or default_profile()).byline.match(line.strip()))


def is_lead(line: str, profile: Profile | None = None) -> bool:
    """A report opens with a lead marker such as 本报讯 (possibly letter-spaced by the extraction)."""
    return bool(_patterns(profile or default_profile()).lead.match(line.strip()))


def _visible_len(line: str) -> int:
    return len(_HSPACE_RE.sub("", line))


def _ends_sentence(line: str) -> bool:
    core = line.rstrip().rstrip(CLOSERS)
    return bool(core) and core[-1] in LINE_SENTENCE_END_CHARS


def _join_lines(a: str, b: str) -> str:
    """Join a broken line; a space only where two ASCII words/numbers would otherwise merge."""
    if a and b and a[-1].isascii() and a[-1].isalnum() and b[0].isascii() and b[0].isalnum():
        return f"{a} {b}"
    return a + b


@dataclass
class _Block:
    """Consecutive non-blank lines of one kind, as printed."""

    lines: list[str]
    kind: Literal["lead", "body", "byline"]
    after_blank: bool


def _blocks(lines: list[str], profile: Profile) -> list[_Block]:
    pats = _patterns(profile)
    blocks: list[_Block] = []
    blank = True
    for line in lines:
        if not line:
            blank = True
            continue
        prev = blocks[-1] if blocks and not blank else None
        if pats.byline.match(line) or (prev and prev.kind == "byline" and pats.byline_more.match(line)):
            if prev and prev.kind == "byline":
                prev.lines.append(line)
            else:
                blocks.append(_Block([line], "byline", blank))
        elif (lead := bool(pats.lead.match(line))) or prev is None or prev.kind == "byline":
            blocks.append(_Block([line], "lead" if lead else "body", blank))
        else:
            prev.lines.append(line)
        blank = False
    return blocks


def _is_heading_block(block: _Block, column: int | None) -> bool:
    """Short, no sentence punctuation; see the module docstring for the comma rule."""
    if block.kind != "body" or len(block.lines) > 3:
        return False
    text = "".join(block.lines)
    if _visible_len(text) > 60 or any(c in text for c in SENTENCE_END_CHARS):
        return False
    if block.lines[-1].rstrip()[-1] in _CONTINUES:
        return False
    if not any(c in text for c in _COMMAS):
        return True
    return len(block.lines) == 1 and column is not None and _visible_len(text) > column + 2


def _column_width(lines: list[str], byline: re.Pattern[str]) -> int | None:
    """Median line length when the page is set in narrow columns, else None."""
    lengths = [_visible_len(x) for x in lines if x and not byline.match(x)]
    if len(lengths) < 10:
        return None
    median = int(statistics.median(lengths))
    return median if median <= 20 else None


# --- paragraphs -------------------------------------------------------------------------


def clean_paragraphs(text: str, profile: Profile | None = None) -> list[Paragraph]:
    """The page as repaired paragraphs, each marked text, heading or byline."""
    profile = profile or default_profile()
    pats = _patterns(profile)
    lines = [line.strip() for line in normalize_chars(text).split("\n")]
    column = _column_width(lines, pats.byline)
    logger.debug("column width %s", column or "wide")
    raw: list[list[str]] = []  # [kind, text] while paragraphs are still being joined
    open_text = False  # the last raw paragraph is text that stopped mid-sentence
    for block in _blocks(lines, profile):
        if block.kind == "byline":
            raw.append(["byline", " ".join(block.lines)])
            open_text = False
            continue
        forced = open_text and raw[-1][1].rstrip()[-1] in _CONTINUES
        if block.kind == "body" and not forced and _is_heading_block(block, column):
            raw.append(["heading", " ".join(block.lines)])
            open_text = False
            continue
        for i, line in enumerate(block.lines):
            if open_text and (i > 0 or block.kind == "body"):
                raw[-1][1] = _join_lines(raw[-1][1], line)
            else:
                raw.append(["text", line])
            open_text = not _ends_sentence(line)
    paragraphs: list[Paragraph] = []
    for kind, body in raw:
        if kind == "text":
            m = pats.trailing_byline.search(body)
            if m and m.start() > 0:
                paragraphs.append(Paragraph(_finish_text(body[: m.start()]), "text"))
                paragraphs.append(Paragraph(_HSPACE_RE.sub(" ", m[1]).strip(), "byline"))
                continue
            paragraphs.append(Paragraph(_finish_text(body), "text"))
        elif kind == "heading":
            paragraphs.append(Paragraph(to_fullwidth_punct(_heading_spaces(body)), "heading"))
        else:
            paragraphs.append(Paragraph(_HSPACE_RE.sub(" ", body).strip(), "byline"))
    return [p for p in paragraphs if p.text]


def _finish_text(text: str) -> str:
    return to_fullwidth_punct(remove_cjk_spaces(text.strip()))


def clean_text(text: str, profile: Profile | None = None) -> str:
    """Repaired text, one paragraph per line."""
    return "\n".join(p.text for p in clean_paragraphs(text, profile))
