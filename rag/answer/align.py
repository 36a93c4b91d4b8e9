"""Span × Analysis → Alignment: is each constraint of the question met where the span speaks?

A constraint is matched in the span, in its paragraph before it (the last year or office
named), or in the article's title and office label — by exact form, a profile alias, or an
abbreviation (党政办 ⊂ 党政办公室). It is a *conflict* when the place where it should be met
names another value of the same type instead: another year, another office with the same
suffix, another ordinal with the same counter word. A conflict is the nearby-fact trap; the
decision abstains on it and shows the fact, labelled.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from .. import zh
from ..profile import Profile
from ..segment import is_org_label
from ..tokenize import pos_cut
from .analysis import entities_in
from .leads import CLOCK_QUESTION, CONJUNCTION, RANK_QUESTION, RATE_WORDS, clause_of, clause_weight, is_rate, items_name_head, number_answer, quantities, rank_answers, span_lead
from .types import CONFLICT, MATCH, MISSING, Alignment, Analysis, AnswerParams, Span

FEATURES = (
    "bias",
    "coverage",
    "context_coverage",
    "bigram_overlap",
    "missing_weight",
    "unseen_weight",
    "slot_fit",
    "unit_fit",
    "year_match",
    "year_conflict",
    "year_missing",
    "entity_match",
    "entity_conflict",
    "entity_missing",
    "entity_in_article",
    "entity_in_page",
    "entity_before",
    "ordinal_match",
    "ordinal_conflict",
    "ordinal_missing",
    "indicator_match",
    "indicator_missing",
    "inv_rank",
    "retrieval_score",
    "in_chunk",
    "length",
    "pair",
    "answer_clause",
    "indicator_clause",
    "lead_found",
    "list_head",
    "slot_number",
    "slot_date",
    "slot_person",
    "slot_list",
    "slot_description",
)
CONFLICT_FEATURES = ("year_conflict", "entity_conflict", "ordinal_conflict")

_PERSON_NAME = re.compile(r"[\u4e00-\u9fff]{2,4}")


def paragraph_before(span: Span) -> str:
    body = span.article.body
    return body[body.rfind("\n", 0, span.start) + 1 : span.start]


def article_label(span: Span) -> str:
    """The title plus a short first line (the office label printed above many reports)."""
    first = span.article.body.split("\n", 1)[0]
    return span.article.title + ("\n" + first if len(first) <= 30 else "")


# 较2022年同期 is the year compared with, 2001年以来 the start of a run up to now: neither is the
# year the figure belongs to
_COMPARED_YEAR = re.compile(r"(?:较|比|相比|同比)\s*(?:19|20)\d\d\s*年(?:同期|全年)?|(?:自|从)?(?<!\d)(?:19|20)\d\d\s*年(?:以来|至今)")


def spoken_years(text: str) -> list[int]:
    """The years a text speaks about, in order: those it is only compared with left out."""
    return zh.year_mentions(_COMPARED_YEAR.sub("", text))


def span_year(span: Span) -> int | None:
    """The year a span speaks about: its own last-named year; failing that the last year named
    before it in its paragraph (a report period such as 2020年度 only where no other year is); failing that the title's, then the article's date. One rule
    for the check and for the label of a nearby fact ("最接近的是2020年")."""
    own = spoken_years(span.text)
    if own:
        return own[0] if len(set(own)) == 1 else None
    text = paragraph_before(span)
    before = spoken_years(text)
    if before:
        # a report period (2020年度) is what a report covers, not when the paragraph speaks
        plain = spoken_years(zh.PERIOD_YEAR_RE.sub("", text))
        return (plain or before)[-1]
    title = zh.year_mentions(span.article.title)
    if title:
        return title[-1]
    return span.article.year


def _year_state(analysis: Analysis, span: Span) -> tuple[str, int | None]:
    if not analysis.years:
        return "", None
    own = spoken_years(span.text)
    asked = set(analysis.years)
    if asked & set(own):
        others = [y for y in own if y not in asked]
        if others and asked - set(own):
            # 2021年…是2019年的几倍 against a 2020 figure compared with 2019: one asked year is
            # met, the other is replaced by another
            return CONFLICT, others[0]
        return MATCH, next(y for y in own if y in asked)
    if own:  # the span speaks of its own years, none of them the asked one
        return CONFLICT, own[0]
    year = span_year(span)
    if year is None:
        return MISSING, None
    return (MATCH if year in analysis.years else CONFLICT), year


def _matches_entity(entity: str, text: str, profile: Profile) -> bool:
    if entity in text:
        return True
    if len(entity) >= 3 and entity.endswith("人") and entity[:-1] in text:
        return True  # 乌克兰人: a people is named by its country
    for word, archive_word in profile.aliases:
        if word in entity.lower() and archive_word in text:
            return True
    core = _core(entity, profile)
    if len(core) >= 2 and core in text:
        return True
    # abbreviation: 党政办 for 党政办公室, 纪委 for 纪工委 — the characters in order, close together
    return len(entity) >= 3 and _abbreviation(entity).search(text) is not None


@lru_cache(maxsize=4096)
def _abbreviation(entity: str) -> re.Pattern[str]:
    return re.compile(".{0,3}".join(map(re.escape, entity)))


@lru_cache(maxsize=4096)
def office_label_of(body: str, profile: Profile) -> str:
    """The office a report is printed under: its first line where that is an office label
    (profile's layout.office_label), without the district prefix; "" if it has none."""
    first = body.split("\n", 1)[0].strip()
    if not is_org_label(first, profile):
        return ""
    return next((first[len(h) :] for h in sorted(profile.home_entities, key=len, reverse=True) if first.startswith(h) and len(first) > len(h) + 1), first)


@lru_cache(maxsize=4096)
def _office_parts(entity: str, profile: Profile) -> tuple[str, str]:
    """(distinctive part, suffix) of an office name: 明湖办事处 -> (明湖, 办事处); (entity, "")
    when it ends in no known suffix. The longest suffix wins."""
    for suffix in sorted(profile.org_suffixes, key=len, reverse=True):
        if entity.endswith(suffix) and len(entity) > len(suffix):
            return entity[: -len(suffix)], suffix
    return entity, ""


def _core(entity: str, profile: Profile) -> str:
    return _office_parts(entity, profile)[0]


def _suffix(entity: str, profile: Profile) -> str:
    return _office_parts(entity, profile)[1]


@lru_cache(maxsize=8192)
def _named_in(text: str, profile: Profile) -> tuple[str, ...]:
    return tuple(entities_in(text, profile))


def _rival(entity: str, text: str, profile: Profile) -> str:
    """Another office of the same kind named in `text` (前程办事处 where 明湖办事处 was asked).

    A two-character suffix (办事处, 中心) is distinctive enough to find the rival by pattern; a
    one-character one (局, 办) is not (格局, 举办), so there the rival must be a name the question
    analysis itself would read as an office (经济 + 发展局, 文明办)."""
    core, suffix = _office_parts(entity, profile)
    if not suffix:
        return ""
    if len(suffix) == 1:
        head = _head(entity, profile)
        for name in _named_in(text, profile):
            other, other_suffix = _office_parts(name, profile)
            if other_suffix != suffix or len(name) < 3 or name in profile.home_entities:
                continue
            if other in core or core in other or any(c in other for c in "各该本全等个"):
                continue
            if head and head in name:  # 整治流动摊贩时执法局 asked, 综合行政执法局 named: one office
                continue
            return name
        return ""
    for m in re.finditer(rf"([\u4e00-\u9fff]{{2,6}}?){re.escape(suffix)}", text):
        name = m.group(0)
        other = m.group(1)
        if other in core or core in other:
            continue
        if name not in profile.home_entities and not any(c in other for c in "各该本全等个"):
            return name
    return ""


def _entity_state(analysis: Analysis, span: Span, profile: Profile) -> tuple[str, str, float, float, float]:
    """(state, rival, share matched, share named only earlier in the article, share missing)
    over the question's entities. A report names its office in the lead and then speaks of it
    without the name: an entity named earlier counts as met unless the span's paragraph names a
    rival office of the same kind."""
    if not analysis.entities:
        return "", "", 0.0, 0.0, 0.0
    local = paragraph_before(span) + span.text
    label = article_label(span)
    earlier = span.article.title + "\n" + span.article.body[: span.start]
    matched = before = missing = 0
    rival = ""
    for entity in analysis.entities:
        if _matches_entity(entity, local, profile) or _matches_entity(entity, label, profile):
            matched += 1
            continue
        other = _rival(entity, span.text, profile) or _rival(entity, label, profile) or _rival(entity, paragraph_before(span), profile)
        if other:
            rival = rival or other
        elif not _rival(entity, local, profile) and _matches_entity(entity, earlier, profile):
            before += 1
            continue
        elif _is_named_unit(entity, profile) and not _matches_entity(entity, span.article.body, profile):
            # the article is another office's report (its label line: 经开区宣传部（文明办）)
            rival = rival or office_label_of(span.article.body, profile)
        missing += 1
    n = len(analysis.entities)
    state = MATCH if matched + before == n else (CONFLICT if rival else MISSING)
    return state, rival, matched / n, before / n, missing / n


def _ordinal_state(analysis: Analysis, span: Span) -> tuple[str, str]:
    if not analysis.ordinals:
        return "", ""
    where = zh.ordinals_in(span.text + "\n" + article_label(span) + "\n" + paragraph_before(span))
    if any(o in where for o in analysis.ordinals):
        return MATCH, ""
    counters = {o[-1] for o in analysis.ordinals}
    rival = next((o for o in zh.ordinals_in(span.text + "\n" + span.article.title) if o[-1] in counters), "")
    return (CONFLICT, rival) if rival else (MISSING, "")


def _indicators_met(
    analysis: Analysis, text: str, profile: Profile, token_set: Callable[[str], frozenset[str]]
) -> bool:
    """Every indicator of the question is named in `text`: exactly, by a profile alias, as 藏书 for
    藏书量, or by all its words of two or more characters (an unseen one also as an abbreviation)."""
    toks = token_set(text)
    for ind in analysis.indicators:
        if ind in text or any(word in ind.lower() and archive in text for word, archive in profile.aliases):
            continue
        if len(ind) >= 3 and ind[-1] in "量数额" and ind[:-1] in text:  # 藏书量 ~ 藏书81.6万册
            continue
        parts = [t for t in token_set(ind) if len(t) >= 2] or [ind]
        if not all(p in toks or p in text or (p in analysis.unseen and _abbreviates(p, text)) for p in parts):
            return False
    return True


def _abbreviates(word: str, text: str) -> bool:
    """A two-character word the archive never writes abbreviates a longer term of `text` (营收 for
    主营业务收入, 营业收入): its characters in order, at most two characters apart. Only for unseen
    words: 人口, which the archive writes, is never read into 人员出口."""
    return len(word) == 2 and re.search(f"{re.escape(word[0])}[\u4e00-\u9fff]{{1,2}}{re.escape(word[1])}", text) is not None


def _indicator_state(
    analysis: Analysis, span: Span, profile: Profile, token_set: Callable[[str], frozenset[str]]
) -> str:
    if not analysis.indicators:
        return ""
    return MATCH if _indicators_met(analysis, span.text + span.article.title, profile, token_set) else MISSING


def unit_fits(analysis: Analysis, text: str, profile: Profile) -> bool:
    if analysis.slot != "number":
        return True
    found = quantities(text)
    if not analysis.unit:
        return bool(found)
    group = next((g for g in profile.unit_groups if analysis.unit in g), (analysis.unit,))
    # 出口金额同比增长了多少: a growth is answered by a rate as well as by an amount
    rate_asked = RATE_WORDS.search(analysis.question) is not None
    return any(m.group(0).strip().endswith(tuple(group)) or (rate_asked and is_rate(m.group(0).strip())) for m in found)


def slot_fits(analysis: Analysis, text: str, profile: Profile) -> bool:
    slot = analysis.slot
    if slot == "number":
        return bool(rank_answers(analysis, text)) if RANK_QUESTION.search(analysis.question) else bool(quantities(text))
    if slot == "date":
        if CLOCK_QUESTION.search(analysis.question):
            return bool(zh.CLOCK_RE.search(text))
        return zh.has_date(text) or any(w in text for w in ("日前", "近日", "当天"))
    if slot in ("person", "role"):
        return any(c in text for c in profile.person_cues)
    if slot == "list":
        # 棚改类专项债和其他有收益专项债: two items are often joined by a word, not listed
        return "、" in text or (_PAIR_QUESTION.search(analysis.question) is not None and _JOINED_PAIR.search(text) is not None)
    if slot == "organization":
        return any(s in text for s in profile.org_suffixes)
    return True


_PAIR_QUESTION = re.compile(r"哪两|哪几|哪些")
_JOINED_PAIR = re.compile(rf"[\u4e00-\u9fff]{{2,}}(?:{CONJUNCTION})[\u4e00-\u9fff]{{2,}}")

_QUESTION_CHARS = re.compile(r"[什么哪谁几多少吗呢是的了有怎样如何为何请问]")


def _bigram_overlap(question: str, text: str) -> float:
    """Share of the question's character bigrams (question words removed) found in the text:
    robust where jieba cuts the question and the text differently (藏书量 / 藏书81.6万册)."""
    grams = _question_bigrams(question)
    if not grams:
        return 0.0
    return sum(g in text for g in grams) / len(grams)


@lru_cache(maxsize=1024)
def _question_bigrams(question: str) -> frozenset[str]:
    q = _QUESTION_CHARS.sub(" ", question)
    return frozenset(q[i : i + 2] for i in range(len(q) - 1) if zh.CJK_RE.match(q[i]) and zh.CJK_RE.match(q[i + 1]))


def _is_named_unit(entity: str, profile: Profile) -> bool:
    """An office or a place by its full name (投资促进局, 中牟县), not a word that jieba tagged
    as a name (苗木, 秋雨): only such a name is a hard constraint."""
    return len(entity) >= 3 and entity.endswith(tuple(profile.org_suffixes) + tuple(profile.place_suffixes))


@lru_cache(maxsize=4096)
def _head(entity: str, profile: Profile) -> str:
    """The office word that ends a longer name: 整治流动摊贩时执法局 -> 执法局."""
    words = [w for w, _ in pos_cut(entity, profile)]
    head = words[-1] if words else ""
    if head in profile.org_suffixes and len(words) > 1:
        head = words[-2] + head
    return head if len(head) >= 3 and head != entity else ""


def absent_unit(analysis: Analysis, text: str, profile: Profile) -> str:
    """The first office or place of the question that `text` (the span's page) never names, by
    its full form, an alias, an abbreviation or its head word; "" when all are there."""
    for entity, named in zip(analysis.entities, _named_flags(analysis.entities, text, profile)):
        if not _is_named_unit(entity, profile) or named:
            continue
        head = _head(entity, profile)
        if head and _matches_entity(head, text, profile):
            continue
        place = next((entity[: -len(s)] for s in profile.place_suffixes if entity.endswith(s)), "")
        if len(place) >= 2 and place in text:  # 湖南 for 湖南省
            continue
        return entity
    return ""


@lru_cache(maxsize=1024)
def _named_flags(entities: tuple[str, ...], text: str, profile: Profile) -> tuple[bool, ...]:
    """Whether `text` names each entity. Every span of an article, or of a page, asks this of the
    same long text, so it is asked once."""
    return tuple(_matches_entity(e, text, profile) for e in entities)


def _entity_elsewhere(analysis: Analysis, text: str, profile: Profile) -> float:
    if not analysis.entities:
        return 0.0
    return sum(_named_flags(analysis.entities, text, profile)) / len(analysis.entities)


def align(
    analysis: Analysis,
    span: Span,
    profile: Profile,
    token_set: Callable[[str], frozenset[str]],
    top_score: float,
    page_text: str = "",
    params: AnswerParams = AnswerParams(),
) -> Alignment:
    """`page_text`: the retrieved articles of the span's source file (a newspaper page), where an
    office named once at the top of a page section still counts as weak context."""
    toks = token_set(span.text)
    title_toks = token_set(span.article.title)
    context_toks = token_set(paragraph_before(span)) | token_set(article_label(span))
    article_toks = token_set(span.article.body) | title_toks
    w = analysis.weights
    total = analysis.total_weight
    covered = sum(v for t, v in w.items() if t in toks)
    coverage = (covered + 0.5 * sum(v for t, v in w.items() if t not in toks and t in title_toks)) / total
    context_coverage = (covered + sum(v for t, v in w.items() if t not in toks and (t in context_toks or t in title_toks))) / total
    heaviest = max(w.values(), default=1.0)
    missing = sum(v for t, v in w.items() if t not in article_toks and v >= 0.5 * heaviest) / total
    year, found_year = _year_state(analysis, span)
    # 第几位: a rank's counter is matched by the rank itself (第二位), which is no quantity
    rank = RANK_QUESTION.search(analysis.question) is not None
    slot_fit = slot_fits(analysis, span.text, profile) and (not analysis.unit or rank or unit_fits(analysis, span.text, profile))
    answer_clause = indicator_clause = 0.0
    # a number question's answer is searched once: it is both the lead and the clause checked here
    lead = number_answer(analysis, span.text, profile) if analysis.slot == "number" else None
    text_lead = "" if analysis.slot == "number" else span_lead(analysis, [span.text], profile, params)
    if slot_fit and lead is not None:
        clause = clause_of(span.text, lead.start(), lead.end())
        answer_clause = clause_weight(analysis, clause)
        # 审减率为14.1%: the measured thing is named in the very clause of the figure
        indicator_clause = float(bool(analysis.indicators) and _indicators_met(analysis, clause, profile, token_set))
        clause_years = zh.years_in(_COMPARED_YEAR.sub("", clause))
        # "对217家…2020年度…进行考核" in a sentence about the asked 2021 assessment: 年度 names
        # the period reported on, so the figure still belongs to the asked year's report
        periods_only = year == MATCH and len(zh.PERIOD_YEAR_RE.findall(clause)) == len(zh.YEAR_RE.findall(clause))
        if analysis.years and clause_years and not set(clause_years) & set(analysis.years) and not periods_only:
            year, found_year = CONFLICT, clause_years[0]  # the figure belongs to another year
        elif is_rate(lead.group(0).strip()) and not RATE_WORDS.search(analysis.question):
            slot_fit = False  # "是2019年发行额1.86倍" gives no 2019 amount
    entity, rival, e_match, e_before, e_missing = _entity_state(analysis, span, profile)
    ordinal, rival_ordinal = _ordinal_state(analysis, span)
    indicator = _indicator_state(analysis, span, profile, token_set)
    hit = span.hit
    f = {
        "bias": 1.0,
        "coverage": coverage,
        "context_coverage": context_coverage,
        "bigram_overlap": _bigram_overlap(analysis.question, span.text + span.article.title),
        "missing_weight": missing,
        "unseen_weight": sum(v for t, v in w.items() if t in analysis.unseen) / total,
        "slot_fit": float(slot_fit),
        "unit_fit": float(unit_fits(analysis, span.text, profile)) if analysis.unit else 0.0,
        "year_match": float(year == MATCH),
        "year_conflict": float(year == CONFLICT),
        "year_missing": float(year == MISSING),
        "entity_match": e_match,
        "entity_conflict": float(entity == CONFLICT),
        "entity_missing": e_missing,
        "entity_in_article": _entity_elsewhere(analysis, span.article.body, profile),
        "entity_in_page": _entity_elsewhere(analysis, page_text, profile),
        "entity_before": e_before,
        "ordinal_match": float(ordinal == MATCH),
        "ordinal_conflict": float(ordinal == CONFLICT),
        "ordinal_missing": float(ordinal == MISSING),
        "indicator_match": float(indicator == MATCH),
        "indicator_missing": float(indicator == MISSING),
        "inv_rank": 1.0 / hit.rank,
        "retrieval_score": hit.score / top_score if top_score > 0 else 0.0,
        "in_chunk": float(hit.chunk.start <= span.start < hit.chunk.end),
        "length": min(len(span.text), 300) / 100.0,
        "pair": float(span.sentences > 1),
        "answer_clause": answer_clause,
        "indicator_clause": indicator_clause,
        "lead_found": float(lead is not None if analysis.slot == "number" else bool(text_lead)),
        "list_head": float(analysis.slot == "list" and items_name_head(analysis, text_lead, span.text, profile)),
        "slot_number": float(analysis.slot == "number"),
        "slot_date": float(analysis.slot == "date"),
        "slot_person": float(analysis.slot in ("person", "role", "organization", "place")),
        "slot_list": float(analysis.slot == "list"),
        "slot_description": float(analysis.slot in ("description", "yesno")),
    }
    return Alignment(
        span=span,
        features=f,
        year=year,
        found_year=found_year,
        entity=entity,
        found_entity=rival,
        ordinal=ordinal,
        found_ordinal=rival_ordinal,
        indicator=indicator,
        absent_entity=absent_unit(analysis, page_text or span.article.title + "\n" + span.article.body, profile),
    )
