"""Where in a text the answer is: the short span that fills the question's slot.

A number with its unit (the asked quantity, not the first one), a date, a name, an office, the
items of a list, the quoted term a "什么X" question asks for. Pure functions of the question's
Analysis and a text; alignment uses them to see whether a span holds an answer at all, and
composition cuts the answer's lead with them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from .. import zh
from ..profile import Profile
from ..tokenize import pos_cut
from .types import Analysis, AnswerParams


_YEAR_Q = re.compile(r"(?:19|20)\d\d\s*年?|\d{1,2}\s*[月日号]")
_PERIOD_Q = re.compile(r"(?:19|20)\d\d\s*\S\s*(?:19|20)?\d\d\s*年?|\d{1,2}\s*\S\s*\d{1,2}\s*[月日号]")
_BARE_DIGITS = re.compile(r"[\d.,]+")
_BARE_NUMERAL = re.compile(f"[{zh.CN_DIGITS}]+")
_BASE_NUMERAL = re.compile(r"[十百千万亿]")


@lru_cache(maxsize=8192)
def quantities(text: str) -> tuple[re.Match[str], ...]:
    """Quantities in a text that are not a year, a date part, a clock time or an ordinal.
    Memoised: the same sentence is measured by several features and several questions."""
    out = []
    for m in zh.QUANTITY_RE.finditer(text):
        q = m.group(0).strip()
        if not q or text[max(0, m.start() - 1) : m.start()] == "第":
            continue
        if _YEAR_Q.fullmatch(q):
            continue
        if _PERIOD_Q.fullmatch(q):
            continue  # 2019-2020年, 1~7月: a period, not a quantity
        if _BARE_DIGITS.fullmatch(q) and text[m.end() : m.end() + 1] in ("月", "日", "号", "时", "点", "届", "季", "级"):
            continue  # 5月, 8点, 3届: a date, a clock time, an edition
        if _BARE_NUMERAL.fullmatch(q):  # 统一, 一流: a bare numeral is no quantity
            continue
        if _BASE_NUMERAL.match(q) or text[max(0, m.start() - 1) : m.start()] == "每":
            continue  # 万人 of 每万人口, 每3人: a per-unit base, not a figure
        if not any(c.isdecimal() for c in q) and q[0] in "一" and len(q) == 2 and q[1] in "个项":  # 一个, 一项: wording
            continue
        out.append(m)
    return tuple(out)


def word_ends(analysis: Analysis, text: str, words: Sequence[str]) -> list[int]:
    """Where each occurrence of the words ends in the text."""
    return sorted({m.end() for w in words if w for m in re.finditer(re.escape(w), text)})


def content_words(analysis: Analysis) -> list[str]:
    heaviest = sorted(analysis.weights.items(), key=lambda kv: -kv[1])
    return [t for t, _ in heaviest if len(t) >= 2][:6]


# what asks for a rate; an index (PMI, 价格指数) is printed as a percentage too
RATE_WORDS = re.compile(r"比例|百分|增长|增速|倍|率|占比|比重|提高|下降|指数|PMI|CPI|PPI", re.IGNORECASE)
# 排第几, 第几巡察组, 名次: the answer is a rank or an ordinal, not a count.
RANK_QUESTION = re.compile(r"第几\s*([\u4e00-\u9fff]{0,3})|排名|名次|位次")


def rank_answers(analysis: Analysis, text: str) -> list[re.Match[str]]:
    """For a question asking a rank or an ordinal: its candidates in the text (第一名, 位列22位;
    第三巡察组 for 第几巡察组, the counter word kept as the question writes it); [] otherwise."""
    m = RANK_QUESTION.search(analysis.question)
    if not m:
        return []
    words = m.group(1) or ""
    if words and words[0] not in "名位":
        # the counter word first, then as much of the question's following words as the text repeats
        return list(re.finditer(rf"第\s*[\d{zh.CN_DIGITS}]+\s*{re.escape(words[0])}(?:{re.escape(words[1:3])}|{re.escape(words[1:2])})?", text))
    return list(zh.RANK_RE.finditer(text))


def number_answer(analysis: Analysis, text: str, profile: Profile) -> re.Match[str] | None:
    """The quantity that answers: a rank when a rank is asked; else in a clause not about
    another year, of the asked unit, a rate when a rate is asked (and not otherwise), outside
    brackets (a label such as （20~26期）), nearest after the question's words."""
    anchors = word_ends(analysis, text, list(analysis.indicators) + content_words(analysis))
    if RANK_QUESTION.search(analysis.question):
        ranks = rank_answers(analysis, text)
        if not ranks:
            return None
        # "由第26位跃升至22位": the rank reached, not the one left
        return min(ranks, key=lambda m: (text[max(0, m.start() - 1) : m.start()] in ("由", "从"), min((abs(m.start() - a) for a in anchors), default=0)))
    found = quantities(text)
    if not found:
        return None
    group = next((g for g in profile.unit_groups if analysis.unit in g), (analysis.unit,)) if analysis.unit else ()
    wants_rate = bool(RATE_WORDS.search(analysis.question))
    # 有多少人死亡: the word after the counted unit follows the answer too ("29人中枪、6人死亡" → 6人)
    counted = re.search(rf"(?:多少|几)\s*{re.escape(analysis.unit)}([\u4e00-\u9fff]{{2}})", analysis.question) if analysis.unit else None

    def value(m: re.Match[str]) -> float:
        q = m.group(0).strip()
        clause_start, clause_end = clause_bounds(text, m.start(), m.end())
        clause = text[clause_start:clause_end]
        years = zh.years_in(clause)
        # the clause and the one before it name the asked thing (中型企业PMI, not 大型企业PMI)
        before = text[max(text.rfind(c, 0, max(clause_start - 1, 0)) for c in "，；。,;") + 1 : clause_start]
        v = 40.0 * clause_weight(analysis, before + clause)
        if analysis.years and years and not set(years) & set(analysis.years):
            v -= 60
        if group:
            v += 30 if q.endswith(tuple(group)) else -10
        if is_rate(q):
            v += 25 if wants_rate else -25
        if counted and text.startswith(counted.group(1), m.end()):
            v += 35
        opened = max(text.rfind("（", 0, m.start()), text.rfind("(", 0, m.start()))
        if opened >= 0 and max(text.rfind("）", opened, m.start()), text.rfind(")", opened, m.start())) < 0:
            v -= 20  # inside brackets: a label, not the figure
        nxt = text[m.end() : m.end() + 1]
        later = [o for o in found if clause_start <= o.start() and o.start() >= m.end() and o.start() < clause_start + len(clause)]
        if not group and nxt and zh.CJK_RE.match(nxt) and later:  # "5个项目13.92亿元": 5个 only counts the 项目
            v -= 20
        if anchors:
            after = [m.start() - a for a in anchors if a <= m.start()]
            v -= min(after) * 0.5 if after else 30 + min(abs(m.start() - a) for a in anchors) * 0.5
        return v

    return respective_quantity(analysis, text, found) or max(found, key=value)


_ITEM_RUN = re.compile(r"[^，。；：、,;:！？\n“”]{1,16}(?:、[^，。；：、,;:！？\n“”]{1,16})+")


def respective_quantity(analysis: Analysis, text: str, found: Sequence[re.Match[str]]) -> re.Match[str] | None:
    """"电动载人汽车、锂电池、太阳能电池…增长163.8%、58.1%、10.4%": items and figures listed in the
    same order, the asked item's figure is the one at its place (None where no such pair of lists)."""
    words = [w for w in (*analysis.entities, *content_words(analysis)) if len(w) >= 2]
    for run in _ITEM_RUN.finditer(text):
        items = run.group(0).split("、")
        # the item holding the longest of the question's words (太阳能电池, not 电池 of 锂电池)
        held = [max((len(w) for w in words if w in item), default=0) for item in items]
        if max(held) == 0 or held.count(max(held)) > 1:
            continue
        place = held.index(max(held))
        after = [m for m in found if m.start() >= run.end()]
        series = after[:1]
        for m in after[1:]:
            if text[series[-1].end() : m.start()].strip() not in ("、", "和", "及"):
                break
            series.append(m)
        if len(series) == len(items) >= 2:
            return series[place]
    return None


def clause_weight(analysis: Analysis, clause: str) -> float:
    """The share of the question's information (token weights) written in a clause."""
    total = analysis.total_weight or 1.0
    return sum(v for t, v in analysis.weights.items() if t in clause) / total


def clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """Where the clause holding text[start:end] begins and ends (commas, semicolons, full stops)."""
    clause_start = max(text.rfind(c, 0, start) for c in "，；。,;") + 1
    ends = [i for i in (text.find(c, end) for c in "，；。,;") if i >= 0]
    return clause_start, min(ends) if ends else len(text)


def clause_of(text: str, start: int, end: int) -> str:
    clause_start, clause_end = clause_bounds(text, start, end)
    return text[clause_start:clause_end]


def is_rate(quantity: str) -> bool:
    return quantity.endswith(("倍", "%", "％", "‰", "成", "个百分点"))


def _nearest(matches: list[tuple[int, int]], anchors: list[int]) -> tuple[int, int] | None:
    if not matches:
        return None
    if not anchors:
        return matches[0]
    return min(matches, key=lambda m: min(abs(m[0] - a) for a in anchors))


def number_lead(analysis: Analysis, text: str, profile: Profile) -> str:
    found = number_answer(analysis, text, profile)
    return found.group(0).strip() if found else ""


# 几点上班: the answer is a clock time, not a day
CLOCK_QUESTION = re.compile(r"几点|什么时间[开上下营]|几时[开上下营]")


def date_lead(analysis: Analysis, text: str) -> str:
    if CLOCK_QUESTION.search(analysis.question):
        spans = [(m.start(), m.end()) for m in zh.CLOCK_RE.finditer(text)]
        best = _nearest(spans, word_ends(analysis, text, content_words(analysis)))
        return text[best[0] : best[1]].strip() if best else ""
    spans = [(m.start(), m.end()) for m in zh.DATE_EXPR_RE.finditer(text)]
    precise = [s for s in spans if re.search(r"[日号]|底|初|旬", text[s[0] : s[1]])]
    best = _nearest(precise or spans, word_ends(analysis, text, content_words(analysis)))
    return text[best[0] : best[1]].strip() if best else ""


# A news report prints a person as title + name (管委会副主任张磊, 三级调研员魏诗剑) or name + a
# speech or leading verb (张磊主持, 李骏表示); a bare name-like word elsewhere is often no person.
_TITLE_END = re.compile(r"(?:员|长|任|记|理|官|师|席|统|裁|授|使|人)$")
_PERSON_VERB = re.compile(r"^(?:表示|说|指出|强调|主持|带队|介绍|提出|认为|宣布|称|出席|参加)")


def person_lead(analysis: Analysis, text: str, profile: Profile) -> str:
    asked = set(analysis.question)
    names = []
    pos = 0
    for w, tag in pos_cut(text, profile):
        start = text.find(w, pos)
        pos = start + len(w) if start >= 0 else pos
        if tag == "nr" and len(w) >= 2 and w not in analysis.question and not all(c in asked for c in w):
            before, after = text[max(0, start - 4) : start], text[start + len(w) : start + len(w) + 2]
            if any(before.endswith(r) for r in profile.byline_roles):
                continue  # 记者 冯亚仁: the reporter, never the answer
            titled = _TITLE_END.search(before) or any(before.endswith(c) for c in profile.person_cues)
            if titled or _PERSON_VERB.match(after):
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


_ORG_LEAD_IN = ("记者从", "获悉", "从", "在", "与", "和", "由", "向", "被", "据")


def org_lead(analysis: Analysis, text: str, profile: Profile) -> str:
    found = []
    for m in re.finditer(r"[\u4e00-\u9fff（）]{2,16}", text):
        word = m.group(0)
        for suffix in sorted(profile.org_suffixes, key=len, reverse=True):
            idx = word.find(suffix)
            if idx > 0:
                end = idx + len(suffix)
                tail = re.match(r"公厅|公室|事处|员会", word[end:])
                end += len(tail.group(0)) if tail else 0  # 国务院办公厅, not 国务院办
                # the name starts after the words that lead up to it (记者从省市场监管局获悉)
                lead_in = max((word.rfind(w, 0, idx) + len(w) for w in _ORG_LEAD_IN if word.rfind(w, 0, idx) >= 0), default=0)
                name = word[lead_in:end]
                if len(name) >= 3 and name not in analysis.question and name not in profile.home_entities:
                    found.append((m.start() + lead_in, m.start() + end))
                break
    best = _nearest(found, word_ends(analysis, text, content_words(analysis)))
    return text[best[0] : best[1]] if best else ""


_LIST_RUN = re.compile(r"[^，。；：、,;:！？\n]{1,24}(?:、[^，。；：、,;:！？\n]{1,24})+")
_ITEM_HEAD = re.compile(r"^.*(?:到|对|包括|分别|先后|赴|走进|深入|涉及|围绕|聚焦|查看|前往|来自|为|是)")


# 哪两个局, 哪些项目, 哪几家企业: the noun every item of the answer names
_LIST_HEAD = re.compile(r"(?:哪些|哪几|哪两|哪三|哪四|哪五)[个家类项位种座所条名批]?([\u4e00-\u9fff]{1,4})")


def list_head(analysis: Analysis, profile: Profile) -> str:
    m = _LIST_HEAD.search(analysis.question)
    if not m:
        return ""
    words = [w for w, _ in pos_cut(m.group(1), profile)]
    return words[0] if words else ""


def _trim_item(analysis: Analysis, item: str, head: str, first: bool) -> str:
    """An item without the predicate that follows it (科技局梳理近2年… -> 科技局, the asked noun
    ends it) and, for the first, without the question's words that lead up to the list
    (会议集中研究了郑州恒海科技产业园 -> 郑州恒海科技产业园)."""
    if head and head in item:
        item = item[: item.index(head) + len(head)]
    if first:
        ends = [e for e in word_ends(analysis, item, content_words(analysis)) if e < len(item) - 1]
        if ends:
            item = item[max(ends) :].lstrip("了的是为有")
    return item


# “清风盈门·文明齐家”主题文明家庭评选、“悦读·阅廉”主题阅读: a list of named activities, each item a quote
_QUOTED_RUN = re.compile(r"“[^“”\n]{2,20}”[^“”，。；：、,;:！？\n]{0,10}(?:、“[^“”\n]{2,20}”[^“”，。；：、,;:！？\n]{0,10})+")
CONJUNCTION = "和|及|与|以及"  # what joins two items of a list (棚改类专项债和其他有收益专项债)
_AND = re.compile(CONJUNCTION)


def _quoted_items(analysis: Analysis, text: str) -> list[str]:
    runs = [(clause_weight(analysis, text[max(0, m.start() - 12) : m.end() + 12]), m) for m in _QUOTED_RUN.finditer(text)]
    runs = [(w, m) for w, m in runs if w > 0]
    if not runs:
        return []
    run = max(runs, key=lambda wm: wm[0])[1]
    terms = (x.group(1) or x.group(2) for x in _QUOTED.finditer(run.group(0)))
    return [t for t in terms if t not in analysis.question]


def _joined_items(analysis: Analysis, text: str, head: str) -> list[str]:
    """申报棚改类专项债和其他有收益专项债 for 哪几类专项债: two items joined by 和, each naming the asked noun."""
    if len(head) < 2:
        return []
    for clause in re.split(r"[，。；：,;:！？\n]", text):
        parts = _AND.split(clause, maxsplit=1)
        if len(parts) == 2 and all(head in p for p in parts):
            first, second = _trim_item(analysis, parts[0], head, True), _trim_item(analysis, parts[1], head, False)
            if first != head and second != head:
                return [first, second]
    return []


def items_name_head(analysis: Analysis, lead: str, text: str, profile: Profile, window: int = 6) -> bool:
    """Every item of a list lead names the asked noun, in it or just after it (棚改类**专项债**,
    “悦读·阅廉”**主题**阅读 for 哪些主题文化活动): the run is the list asked for, not another one."""
    head = list_head(analysis, profile)
    if len(head) < 2 or not lead:
        return False
    for item in lead.split("、"):
        at = text.find(item)
        if at < 0 or head not in text[at : at + len(item) + window]:
            return False
    return True


def list_lead(analysis: Analysis, texts: Sequence[str], params: AnswerParams, profile: Profile) -> str:
    items: list[str] = []
    head = list_head(analysis, profile)
    for text in texts:
        quoted = _quoted_items(analysis, text) or _joined_items(analysis, text, head)
        if len(quoted) >= 2:
            items.extend(q for q in quoted if q not in items)
            continue
        # the run of items in the clause that says most of what is asked (not another list)
        runs = [(clause_weight(analysis, text[max(0, m.start() - 12) : m.end() + 6]), m) for m in _LIST_RUN.finditer(text)]
        runs = [(w, m) for w, m in runs if w > 0]
        if not runs:
            continue
        run = max(runs, key=lambda wm: (wm[0], wm[1].group(0).count("、")))[1]
        parts = run.group(0).split("、")
        first = _ITEM_HEAD.sub("", parts[0]) or parts[0]
        last = re.split(r"(?:等|进行|开展|的)", parts[-1])[0] or parts[-1]
        parts = [_trim_item(analysis, p, head, i == 0) for i, p in enumerate([first, *parts[1:-1], last])]
        if any(len(p.strip()) > params.list_item_max for p in parts):
            continue  # a run of clauses, not a list of names
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
        # the question's own verb stands right before 什么 (执行的是什么原则), not anywhere before it
        verbs = [x for x in content_words(analysis) if 0 <= m.start() - (q.rfind(x, 0, m.start()) + len(x)) <= _VERB_GAP]
        anchor = _word_before(q, m.start())  # 给全区什么建设: the quote stands after 全区
        fitting = []
        for start, end, term in quotes:
            after, before = text[end : end + w], text[max(0, start - w) : start]
            named = any(re.match(rf"的?[\u4e00-\u9fff]{{0,2}}的?{re.escape(h)}", after) or re.search(rf"{re.escape(h)}[的为是：:]?$", before) for h in heads)
            if named or any(re.search(rf"{re.escape(v)}[了的为是：:]?$", before) for v in verbs):
                fitting.append((bool(anchor) and before.endswith(anchor), term))
        if fitting:
            return max(fitting, key=lambda f: f[0])[1]
    if _CALLED.search(q) and len(quotes) == 1:
        return quotes[0][2]
    return ""


_VERB_GAP = 2  # characters between the question's verb and 什么 (的是)


def _word_before(question: str, at: int) -> str:
    """The two characters before the question word at `at` (打造 in 打造什么样的, 全区 in 给全区什么), "" at the start."""
    return question[at - 2 : at] if at >= 2 else ""
_WHAT_KIND = re.compile(r"什么样的\s*([\u4e00-\u9fff]{2,6})")
_MODIFIER = re.compile(r"[^，。；：,;:！？\n“”「」（）()]{2,16}$")


def modifier_lead(analysis: Analysis, text: str) -> str:
    """What a "什么样的X" question asks is the modifier printed before 的X: "打造实用、管用、好用的三级平台"
    → 实用、管用、好用 (after the question's verb where the clause repeats it). "" when X is not
    printed with a modifier."""
    q = analysis.question
    m = _WHAT_KIND.search(q)
    if not m:
        return ""
    verb = _word_before(q, m.start())
    for found in re.finditer("的" + re.escape(m.group(1)), text):
        mod = _MODIFIER.search(text, 0, found.start())
        if not mod:
            continue
        value = mod.group(0)
        if verb and verb in value:
            value = value[value.rindex(verb) + 2 :]
        if 2 <= len(value) and value not in q:
            return value
    return ""


def span_lead(analysis: Analysis, texts: Sequence[str], profile: Profile, params: AnswerParams) -> str:
    """The short answer the first text holds for the question's slot (a list gathers items over
    all the texts); "" when it holds none."""
    text = texts[0]
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
        return list_lead(analysis, texts, params, profile)
    if slot in ("description", "place"):
        return quoted_lead(analysis, text, profile, params) or modifier_lead(analysis, text)
    return ""
