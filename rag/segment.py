"""Stage 3: a cleaned page -> Article records.

The paper uses two layouts, sometimes on the same page, and the extraction keeps the reading
order of neither reliably. Heuristics, applied to the paragraphs from ``rag.clean`` (heading,
byline, text; a text paragraph starting with 本报讯 is a *lead*):

1. A lead starts a new article. Heading paragraphs right before it are its title, joined with
   a space (kicker + title, title + subtitle: "经开区建设局强化党建引领 以巡察整改新成效...").
2. Title after the body (pages 000, 001): when articles on the page still lack a title, the
   heading run that follows them is theirs, one heading per article in page order (001 prints
   "实事办到群众心坎上..." and "金融机构进园区..." after both bodies; with fewer headings than
   untitled articles the most recent ones get them); headings left over go to the next article. An organisation label
   ("经开区财政局（审计局）") travels with the heading under it and is kept as the first line of
   the body, so it is neither a title of its own nor lost.
3. Special reports (page 000): a heading run followed by one or two text paragraphs (the
   lede) and then a byline opens a new article even without 本报讯. A column fragment just
   before it that has no lead, byline or title is a displaced part of that report and is
   merged into it.
4. Otherwise headings inside an article are sub-headings and stay in its body, text after a
   byline continues the article (special reports put the byline under the lede), and text
   after a title-after heading run starts a new untitled article. Headings with no text
   under them become text, and a byline with nothing to credit becomes the body, so no
   character of the page is dropped or duplicated (tested on every seed page).
5. Date: the first ``M月D日`` within 25 characters after 本报讯, with the page year; else the
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
from rag.records import Article, Page

logger = logging.getLogger(__name__)

_LEAD = "本报讯"
_DATE_RE = re.compile(r"(\d{1,2})月(\d{1,2})日")
_DATE_WINDOW = 25
_LEDE_MAX_PARAGRAPHS = 2
# "经开区党政办公室", "经开区宣传部（文明办）": a department name printed above a report's title.
_ORG_LABEL_RE = re.compile(
    r"^(?:郑州)?经开区[\u4e00-\u9fff]{1,12}"
    r"(?:局|办公室|工委|党委|部|委员会|委|办|中心|办事处|公司|集团)(?:（[\u4e00-\u9fff]{1,8}）)?$"
)

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


def is_org_label(text: str) -> bool:
    return bool(_ORG_LABEL_RE.match(text))


def _items(paragraphs: list[Paragraph]) -> list[_Item]:
    items: list[_Item] = []
    label = ""
    for p in paragraphs:
        if p.kind == "heading":
            if not (items and items[-1].kind == "heads"):
                items.append(_Item("heads"))
            if is_org_label(p.text) and not label:
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
            items.append(_Item("lead" if p.text.startswith(_LEAD) else "text", p.text))
    if label:
        items[-1].units.append(_Unit(label))
    return items


def _starts_special_report(items: list[_Item], i: int) -> bool:
    """Heading run at i, then a short lede of plain text, then a byline."""
    j = i + 1
    while j < len(items) and items[j].kind == "text" and j - i <= _LEDE_MAX_PARAGRAPHS:
        j += 1
    return j > i + 1 and j < len(items) and items[j].kind == "byline"


def _title(units: list[_Unit]) -> str:
    return " ".join(u.head for u in units)


def _labels(units: list[_Unit]) -> list[str]:
    return [u.label for u in units if u.label]


def _drafts(items: list[_Item]) -> list[_Draft]:
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
        elif _starts_special_report(items, i):
            draft = _Draft(_title(item.units), _labels(item.units))
            if cur is not None and cur.is_fragment:
                drafts.pop()
                draft.body = cur.body + draft.body
            drafts.append(draft)
        else:
            units = list(item.units)
            tail = untitled_tail()
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


def _article_date(lead: str, page: Page) -> str:
    m = _DATE_RE.search(lead[len(_LEAD) : len(_LEAD) + _DATE_WINDOW]) if lead else None
    if m and page.year is not None:
        month, day = int(m[1]), int(m[2])
        if 1 <= month <= 12 and 1 <= day <= 31:
            year = page.year
            if len(page.date) >= 7 and month > int(page.date[5:7]):
                year -= 1  # a January page reporting a December event
            return f"{year:04d}-{month:02d}-{day:02d}"
    return page.date


def segment_page(page: Page) -> list[Article]:
    """Clean the page and split it into articles, in page order."""
    drafts = _drafts(_items(clean_paragraphs(page.text)))
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
                date=_article_date(draft.lead, page),
                year=page.year,
                order=len(articles),
            )
        )
    untitled = sum(1 for a in articles if not a.title)
    logger.debug("%s: %d article(s), %d untitled", page.source, len(articles), untitled)
    return articles
