"""Decision → Answer: the short answer first, then the quotes that support it, cited.

The lead is cut out of a chosen quote (a number with its unit, a date, a name, the items of a
list), so every character of it occurs in a cited quote: `lead_is_quoted` checks that before
an answer leaves, and a lead that fails is dropped, never shown. All Chinese wording of
answers and abstentions is in TEMPLATES.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .. import zh
from ..profile import Profile
from ..records import Answer, Citation, Hit
from .leads import span_lead
from .types import Alignment, Analysis, AnswerParams, Decision

TEMPLATES = {
    "not_found": "资料中没有找到能回答这个问题的内容。",
    "closest": "{lead}最接近的资料是《{title}》（{date}）：{quote}[1]",
    "no_number": "资料中没有找到这个数字；",
    "event_unseen": "资料中没有提到“{asked}”；",
    "year": "资料中没有{asked}的数据；最接近的是{found}的资料：《{title}》（{date}）：{quote}[1]",
    "year_unknown": "资料中没有{asked}的数据；最接近的资料是《{title}》（{date}）：{quote}[1]",
    "entity": "资料中没有关于“{asked}”的这项内容；最接近的是关于“{found}”的资料：《{title}》（{date}）：{quote}[1]",
    "entity_absent": "资料中没有关于“{asked}”的这项内容；最接近的资料是《{title}》（{date}）：{quote}[1]",
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


def lead_for(analysis: Analysis, chosen: Sequence[Alignment], profile: Profile, params: AnswerParams) -> str:
    """The lead is cut from the best quote; a list also gathers the items of the other quotes
    from the same paragraph (a list printed over adjacent sentences), not from elsewhere."""
    first = chosen[0].span
    body = first.article.body
    para = (body.rfind("\n", 0, first.start), body.find("\n", first.start))
    para_end = para[1] if para[1] >= 0 else len(body)
    same = [
        a.span.text
        for a in chosen
        if a.span is first or (a.span.article.id == first.article.id and para[0] < a.span.start < para_end)
    ]
    return span_lead(analysis, same, profile, params)


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
        if decision.reason == "event_unseen":
            lead = TEMPLATES["event_unseen"].format(asked=decision.asked)
        else:
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
