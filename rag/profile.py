"""Corpus profiles: what is specific to one newspaper, as data (``rag/profiles/<name>.toml``).

A second paper (another district's weekly, a news-site dump) is a TOML file, not an edit of
``segment.py``: its user dictionary, question aliases, stop words, the markers that open a
report (本报讯, 新华社讯), the roles that start a byline, the pattern of an office label
printed above a title, the header of one-article-per-file dumps ("2023-08-15 19:40，正文："),
and the cue words the answerer uses for people, organisations and units. ``Settings.profile``
names the profile (a bundled name or a path to a ``.toml`` file); the index manifest records
its id, so an index built under one profile is not served under another.

Every field has a default (see ``Profile``), so a profile file states only what differs; the
README section "Corpus profiles" shows a complete example.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

PROFILE_DIR = Path(__file__).with_name("profiles")
DEFAULT_PROFILE = "jingkai"

# The header of a one-article-per-file news dump: anything on the first line up to "正文：".
NEWS_HEADER = r"^\ufeff?[ \t\u3000\xa0]*(?P<header>[^\n]{0,320}?)[ \t\u3000\xa0]*[，,]?[ \t\u3000\xa0]*正文[：:]"

# What news sites put before an article's first sentence, removed (repeatedly) before that
# sentence becomes the title: 原标题：, "来源：X", datelines ("人民网柏林7月28日电",
# "新京报讯", "央视网消息："), "（记者 X）" and bylines ("大众网记者 孔潇 济宁报道").
TITLE_PREFIXES = (
    r"原标题[：:]",
    r"来源[：:][^，。\s]{1,20}",
    r"[^，。：:\n（(）)]{2,16}?\s*\d{1,2}\s*月\s*\d{1,2}\s*日\s*(?:电|讯|消息|报道)",
    r"[^，。：:\s（(）)]{1,13}(?<!通|资|简|短|喜|快)讯(?![息号])",
    r"[^，。：:\s]{2,12}消息[：:，,]",
    r"[（(【\[](?:[^）)】\]]{0,8}(?:记者|通讯员|编辑|实习生|报道|特约)[^）)】\]]{0,40}|[\u4e00-\u9fff 、·]{2,20})[）)】\]]",
    r"\S{0,10}?(?:记者|通讯员|实习生)(?:[ \u3000\xa0]*[\u4e00-\u9fff·]{2,4}?"
    r"(?=[ \u3000\xa0“\"\d]|通讯员|实习生|记者|$)){1,4}(?:[ \u3000\xa0]*[\u4e00-\u9fff]{2,6}报道)?",
)


class ProfileError(ValueError):
    """A profile that cannot be found or read; the message names the file and the field."""


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    # -- tokenizer --------------------------------------------------------------------------
    # jieba user dictionary ("word freq tag" lines), relative to the profile file; "" = none
    user_dictionary: str = ""
    # stop words added to the Chinese function words every profile drops (rag.tokenize)
    stop_words: frozenset[str] = frozenset()
    # a colloquial word in a question -> the archive's own word, appended before searching
    aliases: tuple[tuple[str, str], ...] = ()
    # -- cleaning and segmentation of pages ---------------------------------------------------
    # a text paragraph starting with one of these opens a report (letter-spacing tolerated)
    lead_markers: tuple[str, ...] = ("本报讯",)
    # a line starting with one of these, followed by names, is a byline
    byline_roles: tuple[str, ...] = ("本报记者", "记者", "通讯员", "实习生", "特约记者", "摄影")
    # regex of an office label printed above a title ("经开区财政局（审计局）"); "" = none
    office_label: str = ""
    # a heading run printed after untitled reports is their title (pages set title-last)
    title_after_body: bool = False
    # a heading run + a short lede + a byline opens a report without a lead marker
    special_reports: bool = False
    lede_max_paragraphs: int = 2
    # the report's date is the first M月D日 within this many characters after the marker
    lead_date_window: int = 25
    # -- one-article-per-file dumps -------------------------------------------------------
    # regex matched at the start of a file; a named group "header" holding the timestamp
    file_header: str = NEWS_HEADER
    # regexes removed from the start of the text before its first sentence becomes the title
    title_prefixes: tuple[str, ...] = TITLE_PREFIXES
    title_max_chars: int = 40
    # -- answerer cues --------------------------------------------------------------------------
    person_cues: tuple[str, ...] = ()
    org_suffixes: tuple[str, ...] = ()
    # endings of place names (中牟县, 王庄村): with org_suffixes, what makes a named unit whose
    # absence from the evidence rules an answer out
    place_suffixes: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    # the archive's own district and its bodies: never a constraint a nearby fact can break
    home_entities: tuple[str, ...] = ()
    # measure words that count the same thing (棵 = 株): groups, each a tuple of words
    unit_groups: tuple[tuple[str, ...], ...] = ()
    # the file this profile was read from (not a TOML key)
    path: Path | None = field(default=None, compare=False)
    digest: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        """Name plus a hash of what shapes the index (``index_digest``): recorded in the manifest."""
        return f"{self.name}-{self.digest}" if self.digest else self.name

    def index_digest(self) -> str:
        """Hash of the fields that change the index, plus the dictionary's content.

        Answer cues, aliases (applied to questions only) and comments are left out, so editing
        them does not force a rebuild; a field not listed in ``QUERY_ONLY_FIELDS`` counts, so
        a new layout field cannot be forgotten."""
        values = {
            f.name: _canonical(getattr(self, f.name))
            for f in fields(self)
            if f.name not in QUERY_ONLY_FIELDS and f.name not in _NOT_CONTENT
        }
        h = hashlib.sha1(json.dumps(values, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        h.update(b"\x1f" + self.dictionary_bytes())
        return h.hexdigest()[:10]

    @property
    def dictionary_path(self) -> Path | None:
        if not self.user_dictionary:
            return None
        base = self.path.parent if self.path else PROFILE_DIR
        return base / self.user_dictionary

    def dictionary_bytes(self) -> bytes:
        path = self.dictionary_path
        return path.read_bytes() if path else b""

    def __hash__(self) -> int:
        return hash((self.name, self.digest))


# read only when answering a question, never when building the index: not part of the id
QUERY_ONLY_FIELDS = frozenset({"description", "aliases", "person_cues", "org_suffixes", "place_suffixes", "units", "home_entities", "unit_groups"})
# the file's name and location (the dictionary counts by its content), and the id itself
_NOT_CONTENT = frozenset({"name", "user_dictionary", "path", "digest"})


def _canonical(value: Any) -> Any:
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return [_canonical(v) for v in value]
    return value


SECTIONS = ("layout", "files", "answer")
_TUPLES = {"lead_markers", "byline_roles", "title_prefixes", "person_cues", "org_suffixes", "place_suffixes", "units", "home_entities"}
_BOOLS = {"title_after_body", "special_reports"}
_INTS = {"lede_max_paragraphs", "lead_date_window", "title_max_chars"}
_STRS = {"name", "description", "user_dictionary", "office_label", "file_header"}
_REGEXES = {"office_label", "file_header"}


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def resolve(name_or_path: str | Path) -> Path:
    """A bundled name ("news") or a path to a TOML file; raise ProfileError saying what exists."""
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(text)
    else:
        path = PROFILE_DIR / f"{text}.toml"
    if not path.is_file():
        raise ProfileError(
            f"profile {text!r} not found ({path}); bundled profiles: {', '.join(available_profiles())}"
        )
    return path


@lru_cache(maxsize=32)
def load_profile(name_or_path: str | Path = DEFAULT_PROFILE) -> Profile:
    """Read and validate a profile file; the result is cached (profiles are immutable)."""
    path = resolve(name_or_path)
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: not a valid UTF-8 TOML file: {exc}") from None
    return _from_dict(data, path)


def _from_dict(data: dict[str, Any], path: Path) -> Profile:
    data = dict(data)
    for section in SECTIONS:  # [layout], [files], [answer] only group the keys for the reader
        table = data.pop(section, {})
        if not isinstance(table, dict):
            raise ProfileError(f"{path}: [{section}] must be a table")
        clash = set(table) & set(data)
        if clash:
            raise ProfileError(f"{path}: {', '.join(sorted(clash))} given twice")
        data.update(table)
    known = {f.name for f in fields(Profile)} - {"path", "digest"}
    unknown = set(data) - known
    if unknown:
        raise ProfileError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {"name": path.stem}
    for key, value in data.items():
        if key in _TUPLES:
            if not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
                raise ProfileError(f"{path}: {key} must be a list of non-empty strings")
            values[key] = tuple(value)
        elif key == "unit_groups":
            if not (isinstance(value, list) and all(isinstance(g, list) and all(isinstance(v, str) and v for v in g) for g in value)):
                raise ProfileError(f"{path}: unit_groups must be a list of lists of measure words")
            values[key] = tuple(tuple(g) for g in value)
        elif key == "stop_words":
            if not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
                raise ProfileError(f"{path}: stop_words must be a list of non-empty strings")
            values[key] = frozenset(value)
        elif key == "aliases":
            if not (isinstance(value, dict) and all(isinstance(v, str) and v for v in value.values())):
                raise ProfileError(f"{path}: aliases must be a table of word = \"archive word\"")
            values[key] = tuple((k.lower(), v) for k, v in value.items())
        elif key in _BOOLS:
            if not isinstance(value, bool):
                raise ProfileError(f"{path}: {key} must be true or false, got {value!r}")
            values[key] = value
        elif key in _INTS:
            if type(value) is not int or value < 0:
                raise ProfileError(f"{path}: {key} must be a non-negative integer, got {value!r}")
            values[key] = value
        elif key in _STRS:
            if not isinstance(value, str):
                raise ProfileError(f"{path}: {key} must be a string, got {value!r}")
            values[key] = value
    patterns = [(key, values[key]) for key in _REGEXES if key in values]
    patterns += [("title_prefixes", p) for p in values.get("title_prefixes", ())]
    for key, pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ProfileError(f"{path}: {key} is not a valid regular expression: {exc}") from None
    header = values.get("file_header", NEWS_HEADER)
    if header and "(?P<header>" not in header:
        raise ProfileError(f"{path}: file_header needs a named group (?P<header>...)")
    profile = Profile(**values, path=path)
    dictionary = profile.dictionary_path
    if dictionary is not None and not dictionary.is_file():
        raise ProfileError(f"{path}: user_dictionary {profile.user_dictionary!r} not found ({dictionary})")
    return Profile(**values, path=path, digest=profile.index_digest())


def default_profile() -> Profile:
    return load_profile(DEFAULT_PROFILE)
