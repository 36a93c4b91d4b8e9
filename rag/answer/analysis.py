"""Question → Analysis: what slot the answer fills and which constraints it must satisfy.

Constraints are the words a nearby fact gets wrong: the year (asked 2022, the archive has
2020), the office or place (明湖 vs 前程办事处), the ordinal (第三届 vs 第二届), and for number
questions the indicator (财政收入 vs 地区生产总值). Each is found with the shared Chinese
patterns (rag.zh) and jieba's part-of-speech tags, and matched later in rag.answer.align.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from .. import zh
from ..profile import Profile
from ..tokenize import expand_query, pos_cut, tokenize
from .types import AnswerParams, Analysis

_SLOT_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("date", re.compile(r"什么时[候间]|何时|几点|哪天|哪一天|几月几[日号]|几号|日期|哪年|哪一年|什么日子|啥时候")),
    ("list", re.compile(r"哪些|哪几|哪[两三四五六七八九十]|有什么|些什么|包括什么|分别|列举|都有|都去了|都到了")),
    ("role", re.compile(r"什么职务|什么职位|担任什么|任什么职|什么身份|是什么职")),
    (
        "number",
        re.compile(
            r"多少|几[个家项名人次条场期件套天年倍所只批户位支棵株台辆篇起万亿]|多大|多高|多长|金额|比例|比重|百分|占比"
            r"|增[长速]了?多|排名|第几|排[第在]?几|数量|规模|总额|多远|几成"
        ),
    ),
    ("person", re.compile(r"谁|哪位|什么人|姓名|叫什么名")),
    ("place", re.compile(r"哪里|什么地方|在哪|何处|哪个地方|地点|去了哪")),
    (
        "organization",
        re.compile(r"哪个(?:部门|单位|机构|企业|公司|学校|办事处|园区|局)|哪家|什么(?:部门|单位|机构|企业)"),
    ),
    ("yesno", re.compile(r"是否|有没有|是不是|能不能|可不可以|吗[？?]?$")),
]

_ASKED_UNIT = re.compile(
    r"(?:多少|几)(万元|亿元|台次|人次|平方米|公里|个百分点|(?:人(?!民)|[家个项条次名位场期件套天倍篇台辆株棵亩户所批起元架例艘]))"
)
_QUESTION_WORD = re.compile(r"是多少|有多少|多少|几[^\s，。？?]?|哪些|什么|哪|谁|何时")
_NOUN_TAGS = ("n", "nz", "vn", "nt", "l", "j", "eng")
_ENTITY_TAGS = ("nr", "ns", "nt", "nz")
# what jieba tags an office word as (建设局 nt, 审计局 n, 发展局 l); 举办 v, 主办 b are no office
_OFFICE_TAGS = ("n", "j", "l")
# Nouns of time that jieba tags n: 什么时候 + 首钢总公司 is no office called 时候首钢总公司.
_TIME_NOUNS = frozenset({"时候", "时间", "时期", "期间", "当时", "目前"})
# 预计 / 估计 (tagged vn) say how sure a figure is, not what it measures;
# 同比 / 环比 (tagged j) say what a growth is compared with, not what grew
_FILLER = frozenset("是 有 了 的 一共 共 总共 达到 为 约 大约 经开区 郑州经开区 去年 今年 全区 总 共计 预计 预期 估计 计划 同比 环比".split())


def classify(question: str) -> str:
    """The slot a question's answer fills (see types.SLOTS); description when nothing fits."""
    for slot, rule in _SLOT_RULES:
        if rule.search(question):
            return slot
    return "description"


def _measure_unit(question: str) -> str:
    """The unit a measure word asks for; not where the word is a per-unit base (每万人口)."""
    return next((u for w, u in MEASURE_WORDS.items() if u and re.search(rf"(?<![每万]){re.escape(w)}", question)), "")


def asked_unit(question: str) -> str:
    m = _ASKED_UNIT.search(question)
    return m.group(1) if m else ""


def analyze(
    question: str,
    idf: Callable[[list[str]], Mapping[str, float]],
    max_idf: float,
    profile: Profile,
    params: AnswerParams = AnswerParams(),
) -> Analysis:
    """Pure given the index's term statistics (`idf` of known tokens, `max_idf`). The polite
    opening (请问, 我想了解一下) is not part of what must be found in the evidence."""
    question = zh.strip_courtesy(question)
    slot = classify(question)
    if slot == "person" and _names_a_person(question, profile):
        slot = "role"  # 李小虎是谁 asks what the named person is, not for another name
    weights = token_weights(question, idf, max_idf, profile, params)
    known = idf(sorted(weights))
    unseen = frozenset(t for t in weights if t not in known)
    entities = tuple(entities_in(question, profile))
    return Analysis(
        question=question,
        slot=slot,
        unit=(asked_unit(question) or _measure_unit(question)) if slot == "number" else "",
        years=tuple(zh.years_in(question)),
        ordinals=tuple(zh.ordinals_in(question)),
        entities=entities,
        indicators=tuple(indicators_in(question, profile)) if slot == "number" else (),
        weights=weights,
        unseen=unseen,
        unseen_event=unseen_event(question, unseen, entities, profile) if slot == "date" else "",
    )


def unseen_event(question: str, unseen: frozenset[str], entities: Sequence[str], profile: Profile) -> str:
    """The verb of a date question that the archive never writes (什么时候开诊): it cannot date an
    event it never mentions. jieba's fragments of the question word (哪天开 -> 哪 / 天开) and the
    words of a name (投资促进局) are no such verb."""
    verbs = [
        w
        for w, tag in pos_cut(question, profile)
        if tag.startswith("v") and len(w) >= 2 and w in unseen and w[0] not in _TIME_CHARS and not any(w in e for e in entities)
    ]
    return verbs[-1] if verbs else ""


_TIME_CHARS = frozenset("天年月日号时点")


def token_weights(
    question: str,
    idf: Callable[[list[str]], Mapping[str, float]],
    max_idf: float,
    profile: Profile,
    params: AnswerParams,
) -> dict[str, float]:
    """How much each question token tells: its idf in the archive.

    One character (时, 条, 区) says little alone, and the sub-words search mode adds beside a
    longer token repeat it, so both weigh less. A token the archive never saw is a content word
    it lacks (预算, 开诊) or a colloquial filler; it weighs like a rare word, so missing content
    counts against answering."""
    tokens = sorted(set(tokenize(expand_query(question, profile), profile)))
    known = idf(tokens)
    weights: dict[str, float] = {}
    for tok in tokens:
        w = max(float(known[tok]), 0.05) if tok in known else params.weight_unseen * max_idf
        if len(tok) == 1 and not tok.isdigit():
            w *= params.weight_single_char
        weights[tok] = w
    for tok in tokens:
        if any(tok != other and tok in other for other in tokens):
            weights[tok] *= params.weight_subword
    return weights


def _is_org(word: str, profile: Profile) -> bool:
    return len(word) >= 2 and any(word.endswith(s) for s in profile.org_suffixes)


def _join_bare_suffixes(words: Sequence[tuple[str, str]], profile: Profile) -> list[tuple[str, str]]:
    """投资 + 促进 + 局 -> 投资促进局: jieba leaves an office word it does not know as its parts,
    the last one a bare suffix (局, 办). Up to two words before it, nouns or verbs, form the name."""
    out: list[tuple[str, str]] = []
    for w, tag in words:
        if len(w) == 1 and w in profile.org_suffixes and out:
            take = 0
            while take < min(2, len(out)):
                prev, prev_tag = out[-1 - take]
                # the word next to the suffix may be a verb (促进局), one further only a noun (投资),
                # so 巡察 + 科技人才 + 局 stays 科技人才局
                allowed = ("n", "v", "j") if take == 0 else ("n", "vn", "j")
                if not prev_tag.startswith(allowed) or prev in profile.home_entities or _QUESTION_WORD.search(prev):
                    break
                take += 1
            name = "".join(p for p, _ in out[len(out) - take :]) + w
            if take and len(name) >= 3:
                del out[len(out) - take :]
                out.append((name, "nt"))
                continue
        out.append((w, tag))
    return out


def entities_in(text: str, profile: Profile) -> list[str]:
    """Offices, organisations, people and places named in the text, longest form first.

    A name tag followed by an office word is one entity (明湖 + 办事处 -> 明湖办事处); the
    district itself (经开区, 党工委…: profile.home_entities) is never a constraint, since
    every article of the archive is about it."""
    words = _join_bare_suffixes(pos_cut(text, profile), profile)
    found: list[str] = []
    i = 0
    while i < len(words):
        w, tag = words[i]
        prev = words[i - 1] if i else ("", "")
        if prev[1] == "r" and _QUESTION_WORD.search(prev[0]):
            i += 1  # 哪个城市 asks for a place; it names none
            continue
        if tag.startswith(_ENTITY_TAGS) or (_is_org(w, profile) and tag.startswith(_OFFICE_TAGS)):
            j, name = i, w
            # 综合 + 行政 + 执法局: the nouns right before an office word are part of its name
            k = i
            while _is_org(w, profile) and k > 0 and words[k - 1][1].startswith(("n", "vn", "j")) and len(words[k - 1][0] + name) <= 10:
                if words[k - 1][0] in profile.home_entities or words[k - 1][0] in _TIME_NOUNS or (found and found[-1].endswith(words[k - 1][0])):
                    break
                if k > 1 and words[k - 2][1] == "m":
                    break  # 多少 + 条对区: the counter after a numeral starts no name
                k -= 1
                name = words[k][0] + name
            while j + 1 < len(words) and (
                (_is_org(words[j + 1][0], profile) and words[j + 1][1].startswith(_OFFICE_TAGS)) or words[j + 1][0] in ("（", "(")
            ):
                if words[j + 1][0] in ("（", "("):
                    break
                j += 1
                name += words[j][0]
            if (
                len(name) >= 2
                and name not in profile.home_entities
                and not zh.YEAR_RE.search(name)
                and not _QUESTION_WORD.search(name)
            ):
                found.append(name)
            i = j + 1
            continue
        i += 1
    # drop an entity contained in a longer one (办事处 inside 明湖办事处)
    return [e for e in dict.fromkeys(found) if not any(e != o and e in o for o in found)]


# Words that name a measure rather than a thing: they ask for a unit, not for a matching word.
MEASURE_WORDS = {
    "金额": "元", "资金": "元", "总额": "元", "投资": "元", "多少钱": "元", "人数": "人", "人口": "人", "次数": "次",
    "数量": "", "规模": "", "面积": "平方米", "总量": "", "数字": "", "情况": "",
}


def _counted_action(tagged: Sequence[tuple[str, str]]) -> bool:
    """发行成功 (了多少): what is counted is the outcome of an action, a verb of two words."""
    return len(tagged) == 2 and all(tag.startswith(("v", "a")) and len(w) == 2 for w, tag in tagged)


_SHARE = re.compile(r"([\u4e00-\u9fff]{2,16}?)占[\u4e00-\u9fff]{0,12}?(?:的)?(?:比重|比例|份额)")


# what a figure of a 新增了多少 question counts is the change itself (not a rate: 增长 asks for one)
_AMOUNT_CHANGE = re.compile(r"(?:新增|净增|多增|少增|增加|减少)$")


# 在地球上生存了多少年: a place the event happens at (在…上/中/里/内) is not what is measured
_LOCATIVE = re.compile(r"在[\u4e00-\u9fff]{1,10}?[上中里内](?=[\u4e00-\u9fff])")


_WHO_IS = re.compile(r"^(\S{2,4})是谁[？?。]?$")


def _names_a_person(question: str, profile: Profile) -> bool:
    """The question is a person's name + 是谁 (李小虎是谁), not a role + 是谁 (负责人是谁)."""
    m = _WHO_IS.match(question.strip())
    return m is not None and [tag for _, tag in pos_cut(m.group(1), profile)] == ["nr"]


def _without_measure(word: str) -> str:
    """人口数量 -> 人口: a generic measure (数量, 规模) after a word adds nothing to what is measured."""
    return next((word[: -len(m)] for m, unit in MEASURE_WORDS.items() if not unit and word.endswith(m) and len(word) > len(m)), word)


def indicators_in(question: str, profile: Profile) -> list[str]:
    """What a number question measures: the head noun (the last noun, as Chinese puts the head
    last) of the phrase after 多少+unit ("多少条对区党工委的意见建议" -> 意见建议), else of the
    phrase before the question word after its last 的 ("政府采购报价审核的审减率是多少" -> 审减率,
    "经开区人口多少" -> 人口). Measure words (金额, 人数) are left to the unit check."""
    m = _QUESTION_WORD.search(question)
    if not m:
        return []
    unit = asked_unit(question)
    after = question[m.end() :]
    if unit and after.startswith(unit):
        after = after[len(unit) :]
    entities = set(entities_in(question, profile))

    def head(text: str) -> str:
        nouns = [
            _without_measure(w)
            for w, tag in pos_cut(_LOCATIVE.sub("", text), profile)
            if tag.startswith(_NOUN_TAGS)
            and w not in _FILLER
            and w not in MEASURE_WORDS
            and not zh.YEAR_RE.search(w)
            and not any(w in e for e in entities)
        ]
        return nouns[-1] if nouns else ""

    share = _SHARE.search(question)
    # 固定资产投资占郑州市比重: what takes the share is measured, not the share itself
    found = head(share.group(1)) if share else head(re.split(r"[，,。？?！!]", after)[0])
    if not found:
        before = re.split(r"[，,。？?！!]", question[: m.start()])[-1]
        before = re.sub(r"(?:是|有|为|达到|共|一共|总共|共计|累计|了)+$", "", before)
        change = _AMOUNT_CHANGE.search(before)
        if change and not any(e.endswith(change.group(0)) for e in entities):
            # 贷款新增了多少: the amount added to the loans, not their balance (余额)
            noun = head(before[: change.start()])
            return [noun, change.group(0)] if noun else [change.group(0)]
        tail = before.rsplit("的", 1)[-1]
        tail = re.sub(r"^(?:郑州经开区|经开区|全区|我区)?(?:(?:19|20)\d\d\s*年)?", "", tail)
        for measure in MEASURE_WORDS:
            if tail.endswith(measure) and len(tail) > len(measure):
                tail = tail[: -len(measure)]
        tagged = pos_cut(tail, profile) if tail else []
        if (
            2 <= len(tail) <= 4
            and tail not in MEASURE_WORDS
            and tagged
            and (tagged[-1][1].startswith(_NOUN_TAGS) or tail[-1] in "率额量数值价费" or _counted_action(tagged))
            and not any(tail in e or e in tail for e in entities)
        ):
            found = tail
        else:
            found = head(before)
    return [found] if found else []
