"""Decision → Answer: the short answer first, then the quotes that support it, cited.

The lead is cut out of a chosen quote (a number with its unit, a date, a name, the items of a
list), so every character of it occurs in a cited quote: `lead_is_quoted` checks that before
an answer leaves, and a lead that fails is dropped, never shown. All Chinese wording of
answers and abstentions is in TEMPLATES.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from .. import zh
from ..profile import Profile
from ..records import Answer, Citation, Hit
from ..tokenize import pos_cut
from .align import content_words, number_answer, word_ends
from .types import Alignment, Analysis, AnswerParams, Decision

TEMPLATES = {
    "not_found": "资料中没有找到能回答这个问题的内容。",
    "closest": "{lead}最接近的资料是《{title}》（{date}）：{quote}[1]",
    "no_number": "资料中没有找到这个数字；",
    "year": "资料中没有{asked}的数据；最接近的是{found}的资料：《{title}》（{date}）：{quote}[1]",
    "year_unknown": "资料中没有{asked}的数据；最接近的资料是《{title}》（{date}）：{quote}[1]",
    "entity": "资料中没有关于“{asked}”的这项内容；最接近的是关于“{found}”的资料：《{title}》（{date}）：{quote}[1]",
    "ordinal": "资料中没有{asked}的相关内容；最接近的是{found}的资料：《{title}》（{date}）：{quote}[1]",
    "indicator": "资料中没有“{asked}”的数据；最接近的资料是《{title}》（{date}）：{quote}[1]",
    "undated": "日期不详",
    "untitled": "无标题",
}


def cite(chosen: Sequence[Alignment]) -> list[Citation]:
    numbers: dict[str, int] = {}
    out = []
    for a in chosen:
        s = a.span
        n = numbers.setdefault(f"{s.article.id}:{s.start}", len(numbers) + 1)
        out.append(
            Citation(
                n=n,
                article_id=s.article.id,
                title=s.article.title,
                date=s.article.date or (str(s.article.year) if s.article.year else ""),
                source=s.article.source,
                quote=s.text,
                start=s.start,
                end=s.end,
            )
        )
    return out


def lead_is_quoted(lead: str, quotes: Sequence[str]) -> bool:
    """Every character of the lead occurs in a quote; each item of a list lead inside one quote."""
    joined = "".join(quotes)
    return all(ch in joined for ch in lead) and all(any(item in q for q in quotes) for item in lead.split("、") if item)


def _nearest(matches: list[tuple[int, int]], anchors: list[int]) -> tuple[int, int] | None:
    if not matches:
        return None
    if not anchors:
        return matches[0]
    return min(matches, key=lambda m: min(abs(m[0] - a) for a in anchors))


def number_lead(analysis: Analysis, text: str, profile: Profile) -> str:
    found = number_answer(analysis, text, profile)
    return found.group(0).strip() if found else ""


def date_lead(analysis: Analysis, text: str) -> str:
    spans = [(m.start(), m.end()) for m in zh.DATE_EXPR_RE.finditer(text)]
    precise = [s for s in spans if re.search(r"[日号]|底|初|旬", text[s[0] : s[1]])]
    best = _nearest(precise or spans, word_ends(analysis, text, content_words(analysis)))
    return text[best[0] : best[1]].strip() if best else ""


def person_lead(analysis: Analysis, text: str, profile: Profile) -> str:
    asked = set(analysis.question)
    names = []
    pos = 0
    for w, tag in pos_cut(text, profile):
        start = text.find(w, pos)
        pos = start + len(w) if start >= 0 else pos
        if tag == "nr" and len(w) >= 2 and w not in analysis.question and not all(c in asked for c in w):
            names.append((start, start + len(w)))
    best = _nearest(names, word_ends(analysis, text, content_words(analysis)))
    return text[best[0] : best[1]] if best else ""


def role_lead(analysis: Analysis, text: str) -> str:
    """The titles printed before the asked person's name: "党工委委员、管委会副主任樊福太"."""
    for name in analysis.entities:
        i = text.find(name)
        if i > 0:
            start = max(text.rfind(p, 0, i) for p in "，。；：“”（）") + 1
            role = text[start:i]
            role = re.sub(r"^(?:本报讯|近日|日前|[\d月日上下午]+)", "", role).strip()
            for home in ("郑州经开区", "经开区"):
                if role.startswith(home):
                    role = role[len(home) :]
            if 2 <= len(role) <= 30:
                return role
    return ""


def org_lead(analysis: Analysis, text: str, profile: Profile) -> str:
    found = []
    for m in re.finditer(r"[\u4e00-\u9fff（）]{2,16}", text):
        word = m.group(0)
        for suffix in sorted(profile.org_suffixes, key=len, reverse=True):
            idx = word.find(suffix)
            if idx > 0:
                name = word[: idx + len(suffix)]
                if name not in analysis.question and name not in profile.home_entities:
                    found.append((m.start(), m.start() + len(name)))
                break
    best = _nearest(found, word_ends(analysis, text, content_words(analysis)))
    return text[best[0] : best[1]] if best else ""


_LIST_RUN = re.compile(r"[^，。；：、,;:！？\n]{1,24}(?:、[^，。；：、,;:！？\n]{1,24})+")
_ITEM_HEAD = re.compile(r"^.*(?:到|对|包括|分别|先后|赴|走进|深入|涉及|围绕|聚焦|查看|前往|来自|为|是)")


def list_lead(analysis: Analysis, texts: Sequence[str], params: AnswerParams) -> str:
    items: list[str] = []
    for text in texts:
        run = max(_LIST_RUN.finditer(text), key=lambda m: m.group(0).count("、"), default=None)
        if run is None:
            continue
        parts = run.group(0).split("、")
        first = _ITEM_HEAD.sub("", parts[0]) or parts[0]
        last = re.split(r"(?:等|进行|开展|的)", parts[-1])[0] or parts[-1]
        parts = [first, *parts[1:-1], last]
        for p in parts:
            p = p.strip()
            if p and len(p) <= params.list_item_max and p not in items and p in text:
                items.append(p)
    return "、".join(items) if len(items) >= 2 else ""


# "执行的是什么原则" / "云课堂叫什么": the thing asked is named after the question word …
_WHAT_HEAD = re.compile(r"(?:什么样的|什么|何种|哪种|哪个|哪项)\s*([\u4e00-\u9fff]{0,6})")
_CALLED = re.compile(r"叫什么|名称|名字|称号|什么名")
# … and a newspaper prints such a name as a quoted term: 本着“除早、除小”的原则
_QUOTED = re.compile(r"“([^“”\n]{2,30})”|「([^「」\n]{2,30})」")


def quoted_lead(analysis: Analysis, text: str, profile: Profile, params: AnswerParams) -> str:
    """The quoted term that names what a "什么X" question asks: a quote with X (the first or the
    head word of the phrase after 什么) within a few characters ("“三治三优”行动" for 什么行动), or
    right after the question's own verb ("执行“无预算、不采购”" for 执行的是什么原则); the only
    quote of the span when a name is asked (叫什么). A quote the question itself holds is not an
    answer. "" when no quote fits."""
    q = analysis.question
    quotes = [(x.start(), x.end(), x.group(1) or x.group(2)) for x in _QUOTED.finditer(text)]
    quotes = [t for t in quotes if t[2] not in q]
    if not quotes:
        return ""
    w = params.quote_head_window
    m = _WHAT_HEAD.search(q)
    if m:
        words = [x for x, _ in pos_cut(m.group(1), profile)] if m.group(1) else []
        heads = {x for x in (words[:1] + words[-1:]) if len(x) >= 2}
        verbs = [x for x in content_words(analysis) if x in q[: m.start()]]
        for start, end, term in quotes:
            after, before = text[end : end + w], text[max(0, start - w) : start]
            if any(h in after or h in before for h in heads) or any(v in text[max(0, start - 4) : start] for v in verbs):
                return term
    if _CALLED.search(q) and len(quotes) == 1:
        return quotes[0][2]
    return ""


def lead_for(analysis: Analysis, chosen: Sequence[Alignment], profile: Profile, params: AnswerParams) -> str:
    text = chosen[0].span.text
    slot = analysis.slot
    if slot == "number":
        return number_lead(analysis, text, profile)
    if slot == "date":
        return date_lead(analysis, text)
    if slot == "person":
        return person_lead(analysis, text, profile)
    if slot == "role":
        return role_lead(analysis, text)
    if slot == "organization":
        return org_lead(analysis, text, profile) or quoted_lead(analysis, text, profile, params)
    if slot == "list":
        return list_lead(analysis, [a.span.text for a in chosen], params)
    if slot in ("description", "place"):
        return quoted_lead(analysis, text, profile, params)
    return ""


def compose(
    analysis: Analysis,
    decision: Decision,
    hits: Sequence[Hit],
    profile: Profile,
    params: AnswerParams,
) -> Answer:
    q = analysis.question
    if decision.action == "answer":
        citations = cite(decision.chosen)
        lead = lead_for(analysis, decision.chosen, profile, params)
        if lead and not lead_is_quoted(lead, [c.quote for c in citations]):
            lead = ""
        quotes = "".join(f"{c.quote}[{c.n}]" for c in citations)
        markers = "".join(f"[{n}]" for n in sorted({c.n for c in citations if lead and _contains_part(c.quote, lead)}))
        text = f"{lead}{markers or '[1]'}\n{quotes}" if lead else quotes
        return Answer(q, text, False, citations=citations, contexts=list(hits), kind=analysis.slot, lead=lead)
    if decision.action == "nearby":
        citations = cite([_with_its_year(a) for a in decision.chosen])
        c = citations[0]
        fields = {
            "asked": decision.asked,
            "found": decision.found,
            "title": c.title or TEMPLATES["untitled"],
            "date": c.date or TEMPLATES["undated"],
            "quote": c.quote,
        }
        key = decision.reason
        if key == "year" and not decision.found:
            key = "year_unknown"
        text = TEMPLATES[key].format(**fields)
        nearby = {"reason": decision.reason, "asked": decision.asked, "found": decision.found}
        return Answer(
            q, text, True, citations=citations, contexts=list(hits), kind=analysis.slot,
            note=f"{decision.reason} not in evidence; nearby fact offered", nearby=nearby,
        )
    if decision.chosen:
        citations = cite(decision.chosen)
        c = citations[0]
        lead = TEMPLATES["no_number"] if decision.reason == "no-number" else TEMPLATES["not_found"]
        text = TEMPLATES["closest"].format(
            lead=lead, title=c.title or TEMPLATES["untitled"], date=c.date or TEMPLATES["undated"], quote=c.quote
        )
        return Answer(q, text, True, citations=citations, contexts=list(hits), kind=analysis.slot, note="weak evidence")
    note = "no matching passages" if decision.reason == "no-hits" else "weak evidence"
    return Answer(q, TEMPLATES["not_found"], True, contexts=list(hits), kind=analysis.slot, note=note)


def _with_its_year(a: Alignment) -> Alignment:
    """A nearby fact labelled with a year its quote does not print is quoted from the clause of
    its paragraph that names that year, so the label's number is in the cited text too."""
    s = a.span
    if not a.found_year or str(a.found_year) in s.text:
        return a
    body = s.article.body
    para = body.rfind("\n", 0, s.start) + 1
    named = [m for m in zh.YEAR_RE.finditer(body, para, s.start) if m.group(1) == str(a.found_year)]
    if not named:
        return a
    start = max((body.rfind(c, para, named[-1].start()) for c in "。；！？"), default=-1) + 1
    return replace(a, span=replace(s, start=max(start, para)))


def _contains_part(quote: str, lead: str) -> bool:
    return any(item in quote for item in lead.split("、") if item)
