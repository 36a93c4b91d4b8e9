"""Stage 3: a cleaned page -> Article records.

Two kinds of file. A file whose first line is a news-site header ending in "正文：" (the
profile's ``file_header``: "2023-08-15 19:40:26，正文：…") is one article: its date comes from
the header, its title from the first sentence after it (``file_article``). Anything else is a
newspaper page of several articles, split as below.

The paper uses two layouts, sometimes on the same page, and the extraction keeps the reading
order of neither reliably. Heuristics, applied to the paragraphs from ``rag.clean`` (heading,
byline, text; a text paragraph starting with a lead marker of the profile, 本报讯, is a *lead*).
Rules 2 and 3 serve layouts of 经开时报 and are switched on by its profile
(``title_after_body``, ``special_reports``); the organisation label is the profile's
``office_label`` pattern:

1. A lead starts a new article. Heading paragraphs right before it are its title, joined with
   a space (kicker + title, title + subtitle: "经开区建设局强化党建引领 以巡察整改新成效...").
2. Title after the body (seed pages 000, 001): when articles on the page still lack a title,
   the heading run that follows them is theirs, one heading per article in page order (001
   prints "实事办到群众心坎上..." and "金融机构进园区..." after both bodies; with fewer headings
   than untitled articles the most recent ones get them); headings left over go to the next
   article. An organisation label ("经开区财政局（审计局）") travels with the heading under it
   and is kept as the first line of the body, so it is neither a title of its own nor lost.
3. Special reports (seed page 000): a heading run followed by one or two text paragraphs (the
   lede) and then a byline opens a new article even without 本报讯. A column fragment just
   before it that has no lead, byline or title is a displaced part of that report and is
   merged into it.
4. Otherwise headings inside an article are sub-headings and stay in its body, text after a
   byline continues the article (special reports put the byline under the lede), and text
   after a title-after heading run starts a new untitled article. Headings with no text
   under them become text, and a byline with nothing to credit becomes the body, so no
   character of the page is dropped or duplicated (tested on every seed page).
5. Date: the first ``M月D日`` within ``lead_date_window`` (25) characters after the lead
   marker, with the page year; else the
   sidecar date of the page (a full date or a month); else "". A month later than the
   sidecar month is taken from the year before (a January page reporting on December).
   Year: the page year.

Still wrong (layout a careful reader resolves with the printed page, not the text):
* Page 000 opens with the feature banner "紧抓能力作风建设 全面提升工作质效" and a column that
  belongs to the 党政办 report; they become an article of their own under the banner title.
* Page 000: the 宣传部 report's first section (着眼夯实基础...) is printed before its label, so
  it lands in the body of the 党政办 report; its other two section heads end up as a paragraph
  at the end of the 宣传部 body. Sub-headings with commas on narrow columns are sometimes run
  into the next sentence.
* Orphan fragments are merged in page order (the 纪检监察 report's last section comes first).
* A column name above several reports ("党建连连看", page 003) is joined into the title of the
  first of them only.
* 专项债 on page 003 gets the date of the bond issue (5月25日) named in its first sentence;
  dates are the dates of the events, not of the issue.
* An untitled 本报讯 report with a sub-heading inside it would take that sub-heading as its
  title (rule 2); the seed pages have no such report.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Literal

from rag.clean import Paragraph, clean_paragraphs
from rag.profile import Profile, default_profile
from rag.records import Article, Page
from rag.zh import LINE_SENTENCE_END_CHARS, MONTH_DAY_RE, inside_number, parse_timestamp

logger = logging.getLogger(__name__)

ItemKind = Literal["lead", "text", "byline", "heads"]


@dataclass
class _Unit:
    """A heading, with the organisation label printed above it, if any."""

    head: str
    label: str = ""


@dataclass
class _Item:
    kind: ItemKind
    text: str = ""
    units: list[_Unit] = field(default_factory=list)


@dataclass
class _Draft:
    title: str = ""
    body: list[str] = field(default_factory=list)
    bylines: list[str] = field(default_factory=list)
    lead: str = ""
    closed: bool = False  # got its title from a heading printed after it

    @property
    def is_fragment(self) -> bool:
        return not (self.title or self.lead or self.bylines)


def is_org_label(text: str, profile: Profile | None = None) -> bool:
    """An office name printed above a report's title ("经开区党政办公室"), per the profile."""
    pattern = (profile or default_profile()).office_label
    return bool(pattern) and re.match(pattern, text) is not None


def _lead_marker(text: str, profile: Profile) -> str:
    return next((m for m in profile.lead_markers if text.startswith(m)), "")


def _items(paragraphs: list[Paragraph], profile: Profile) -> list[_Item]:
    items: list[_Item] = []
    label = ""
    for p in paragraphs:
        if p.kind == "heading":
            if not (items and items[-1].kind == "heads"):
                items.append(_Item("heads"))
            if is_org_label(p.text, profile) and not label:
                label = p.text
            else:
                items[-1].units.append(_Unit(p.text, label))
                label = ""
            continue
        if label:  # a label with no heading under it is a heading itself
            items[-1].units.append(_Unit(label))
            label = ""
        if p.kind == "byline":
            items.append(_Item("byline", p.text))
        else:
            items.append(_Item("lead" if _lead_marker(p.text, profile) else "text", p.text))
    if label:
        items[-1].units.append(_Unit(label))
    return items


def _starts_special_report(items: list[_Item], i: int, profile: Profile) -> bool:
    """Heading run at i, then a short lede of plain text, then a byline."""
    if not profile.special_reports:
        return False
    j = i + 1
    while j < len(items) and items[j].kind == "text" and j - i <= profile.lede_max_paragraphs:
        j += 1
    return j > i + 1 and j < len(items) and items[j].kind == "byline"


def _title(units: list[_Unit]) -> str:
    return " ".join(u.head for u in units)


def _labels(units: list[_Unit]) -> list[str]:
    return [u.label for u in units if u.label]


def _drafts(items: list[_Item], profile: Profile) -> list[_Draft]:
    drafts: list[_Draft] = []
    next_title: list[_Unit] = []

    def current() -> _Draft | None:
        return drafts[-1] if drafts else None

    def untitled_tail() -> list[_Draft]:
        tail: list[_Draft] = []
        for d in reversed(drafts):
            if d.title:
                break
            tail.append(d)
        return tail[::-1]

    for i, item in enumerate(items):
        nxt = items[i + 1].kind if i + 1 < len(items) else None
        cur = current()
        if item.kind == "lead":
            body = _labels(next_title) + [item.text]
            drafts.append(_Draft(_title(next_title), body, lead=item.text))
            next_title = []
        elif item.kind == "text":
            if cur is None or cur.closed:
                drafts.append(_Draft(body=[item.text]))
            else:
                cur.body.append(item.text)
        elif item.kind == "byline":
            if cur is None:
                drafts.append(_Draft())
                cur = drafts[-1]
            cur.bylines.append(item.text)
        elif _starts_special_report(items, i, profile):
            draft = _Draft(_title(item.units), _labels(item.units))
            if cur is not None and cur.is_fragment:
                drafts.pop()
                draft.body = cur.body + draft.body
            drafts.append(draft)
        else:
            units = list(item.units)
            tail = untitled_tail() if profile.title_after_body else []
            if tail and (nxt == "lead" or len(units) <= len(tail)):
                served = tail[-len(units):] if len(units) < len(tail) else tail
                for draft, unit in zip(served, units):
                    draft.title = unit.head
                    draft.body = _labels([unit]) + draft.body
                    draft.closed = True
                units = units[len(served):]
            if not units:
                continue
            if nxt == "lead":
                next_title = units
            elif nxt == "text" and (cur is None or cur.closed):
                drafts.append(_Draft(_title(units), _labels(units)))
            elif cur is not None:
                cur.body.extend(_labels(units) + [u.head for u in units])
            else:  # headings with no text under them: keep them as text, not as a title
                drafts.append(_Draft(body=_labels(units) + [u.head for u in units]))
    return drafts


def _article_date(lead: str, page: Page, profile: Profile) -> str:
    start = len(_lead_marker(lead, profile))
    m = MONTH_DAY_RE.search(lead[start : start + profile.lead_date_window]) if lead else None
    if m and page.year is not None:
        month, day = int(m[1]), int(m[2])
        if 1 <= month <= 12 and 1 <= day <= 31:
            year = page.year
            if len(page.date) >= 7 and month > int(page.date[5:7]):
                year -= 1  # a January page reporting a December event
            return f"{year:04d}-{month:02d}-{day:02d}"
    return page.date


def segment_page(page: Page, profile: Profile | None = None) -> list[Article]:
    """Clean the page and split it into articles, in page order; a news file is one article."""
    profile = profile or default_profile()
    if news_header(page.text, profile) is not None:
        return [file_article(page, profile)]
    drafts = _drafts(_items(clean_paragraphs(page.text, profile), profile), profile)
    articles: list[Article] = []
    for draft in drafts:
        body, byline = "\n".join(draft.body), " ".join(draft.bylines)
        if not body:  # only a byline, with nothing to credit: keep it as the text
            body, byline = byline, ""
        if not body:
            continue
        articles.append(
            Article(
                id=Article.make_id(page.source, draft.title, body),
                title=draft.title,
                body=body,
                source=page.source,
                byline=byline,
                date=_article_date(draft.lead, page, profile),
                year=page.year,
                order=len(articles),
            )
        )
    untitled = sum(1 for a in articles if not a.title)
    logger.debug("%s: %d article(s), %d untitled", page.source, len(articles), untitled)
    return articles


# --- one article per file ---------------------------------------------------------------

_WS = " \t\u3000\xa0"
_TITLE_SEP = re.compile(rf"[{re.escape(LINE_SENTENCE_END_CHARS)}]|\n|[{_WS}]{{2,}}|(?<=.)【")
_TITLE_MIN = 4  # a shorter first sentence ("牛！") takes the next one too
_CLAUSE_BREAK = "，、：；,:; \u3000"
_FIRST_LINE_TITLE_MAX = 60  # in a file without header, a first line up to this long is its title


def news_header(text: str, profile: Profile | None = None) -> re.Match[str] | None:
    """The profile's header match at the start of a file ("2023-08-15 19:40，正文："), or None."""
    pattern = (profile or default_profile()).file_header
    return re.match(pattern, text) if pattern else None


def news_title(text: str, profile: Profile) -> str:
    """First sentence of a news text, without what news sites print before it.

    The profile's ``title_prefixes`` (原标题：, datelines such as "人民网柏林7月28日电",
    "（记者 X）") are removed until none is left; the sentence ends at 。！？… or a line break
    or a run of spaces; a longer one is cut at the last clause break within
    ``title_max_chars``, never inside a number."""
    t = text.strip(_WS + "\n")
    prefixes = [re.compile(p) for p in profile.title_prefixes]
    for _ in range(6):
        before = t
        for p in prefixes:
            m = p.match(t)
            if m and m.end() < len(t):
                t = t[m.end() :].lstrip(_WS + "\n，,：:|")
        if t == before:
            break
    end, pos = 0, 0
    while end < len(t) and len(t[:end].strip(_WS)) < _TITLE_MIN:
        m = _TITLE_SEP.search(t, pos)
        end = (m.start() + (1 if t[m.start()] in "！？!?" else 0)) if m else len(t)
        pos = (m.end() if m else len(t)) or 1
    title = t[:end].strip(_WS)
    limit = profile.title_max_chars
    if len(title) > limit:
        cut = max(title.rfind(c, limit // 2, limit) for c in _CLAUSE_BREAK)
        if cut <= 0:
            cut = limit
            while cut > 1 and inside_number(title, cut):
                cut -= 1
        title = title[:cut].rstrip(_CLAUSE_BREAK)
    return title


def file_article(page: Page, profile: Profile | None = None) -> Article:
    """One article for one file (news dumps, ``split_articles = false``).

    With a news header: body = the text after "正文：", title = ``news_title``, date and year
    from the header (a sidecar date wins; a header without a year takes the page year). Without
    one: the first line is the title (cut to 40 characters if longer than 60) and a date written
    at the very start of the file is the article's date."""
    profile = profile or default_profile()
    text = page.text.replace("\r\n", "\n").strip()
    date, year = page.date, page.year
    header = news_header(text, profile)
    if header is not None:
        body = text[header.end() :].strip(_WS + "\n")
        title = news_title(body, profile) if body else ""
        body = body or text  # a header and nothing else: keep it as the text, untitled
        stamp = parse_timestamp(header["header"])
    else:
        body = text
        first_line = text.split("\n", 1)[0].strip()
        title = first_line if len(first_line) <= _FIRST_LINE_TITLE_MAX else first_line[:40]
        stamp = parse_timestamp(text[:12]) if re.match(r"\s*(?:19|20)\d\d\D", text) else None
    if stamp is not None and not date:
        stamp_year, month, day = stamp
        year = stamp_year or year
        if year is not None:
            date = f"{year:04d}-{month:02d}-{day:02d}"
    return Article(
        id=Article.make_id(page.source, title, body),
        title=title,
        body=body,
        source=page.source,
        date=date,
        year=year,
    )
