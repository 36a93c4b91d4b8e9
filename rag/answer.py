"""Extractive, grounded answers: quote the archive's own sentences, cite them, or abstain.

No generative model is trusted offline, so the default answer is a verbatim quote. Steps:
1. classify what the question asks for (number, date, person, organisation, list, yes/no,
   description) from its wording;
2. score every sentence of the top retrieved articles by the share of the question's
   information (BM25 idf of its tokens) it covers, with the article title counting half,
   and a penalty where the sentence lacks what the question asks for (no number for
   "多少", no date for "什么时候");
3. answer with the best one or two sentences (clipped to the clauses that matter), each
   cited as [n] with offsets into the article, so every number shown is in a cited passage;
4. abstain when the best coverage is below `min_evidence`, when a year or an office named in
   the question is absent from the evidence (the "nearby fact" trap: asked 2022, archive has
   2020), and show the nearby fact labelled as such.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from functools import lru_cache

from .chunk import sentence_spans
from .records import Answer, Article, Citation, Hit
from .retrieve import Retriever, years_in
from .settings import Settings
from .store import Filter
from .tokenize import expand_query, tokenize
from .verify import trusted_limit

log = logging.getLogger(__name__)

KINDS = ("number", "date", "person", "organization", "list", "yesno", "description")

_KIND_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("date", re.compile(r"什么时[候间]|何时|哪天|哪一天|几月几[日号]|几号|日期|哪年|哪一年|什么日子")),
    ("list", re.compile(r"哪些|哪几|哪[两三四五]|有什么|包括什么|分别|列举|都有")),
    ("number", re.compile(r"多少|几[个家项名人次条场期件套天年倍所只批户位支]|多大|多高|多长|多少钱|金额|比例|比重|百分|占比|增[长速]了?多|排名|第几|数量|规模|总额|多远|几成")),
    ("person", re.compile(r"谁|哪位|什么人|姓名|叫什么名")),
    ("organization", re.compile(r"哪个(?:部门|单位|机构|企业|公司|学校|办事处|园区|局)|哪家|什么(?:部门|单位|机构|企业)")),
    ("yesno", re.compile(r"是否|有没有|是不是|能不能|可不可以|吗[？?]?$")),
]

_HAS_NUMBER = re.compile(r"\d|[一二两三四五六七八九十百千万]+(?:个|项|家|次|条|名|位|批|所|场|期|件|套|倍|成|类|支|户|人)")
_YEAR_OR_DATE = re.compile(r"(?:19|20)\d\d年?|\d{1,2}月\d{1,2}[日号]?|\d{1,2}月")
_HAS_DATE = re.compile(r"\d{1,2}月\d{1,2}[日号]|\d{4}年\d{1,2}月|\d{1,2}月(?:份|上旬|中旬|下旬|底|初)|日前|近日|当天|今年|去年")
_HAS_PERSON_CUE = re.compile(r"书记|主任|局长|区长|部长|负责人|记者|主持|带队|组长|院长|经理|董事长|校长")
# Organisation-like words in a question: if the evidence never names them, the figure may
# belong to another office (the second nearby-fact trap).
_ORG_SUFFIX = re.compile(r"(?:局|办|委|处|院|公司|园区|办事处|社区|中心|集团|学院|医院)$")
_YEAR_TOKEN = re.compile(r"^(?:19|20)\d\d年?$")
_YEAR_IN_TEXT = re.compile(r"(?:19|20)\d\d年")
_CLAUSE_END = re.compile(r"[，,；;：:]")

MAX_QUOTE = 160
PAIR_KINDS = frozenset({"list", "description", "person", "organization"})
PAIR_FACTOR = 0.92
NEARBY_MIN = 0.3  # an abstention quotes its nearest sentence only if it covers this much
NOT_FOUND = "资料中没有找到能回答这个问题的内容。"


@lru_cache(maxsize=100_000)
def _token_set(text: str) -> frozenset[str]:
    """Sentences recur across questions (same top articles), so their tokens are memoised."""
    return frozenset(tokenize(text))


_ASKED_UNIT = re.compile(r"(?:多少|几)(万元|亿元|台次|人次|平方米|公里|个百分点|[人家个项条次名位场期件套天倍篇台辆株亩户所批起元])")
_UNIT_ALIASES = {
    "人": ("人", "名", "位", "人次"),
    "名": ("名", "人", "位"),
    "位": ("位", "名", "人"),
    "个": ("个", "家", "项", "所"),
    "家": ("家", "个"),
    "项": ("项", "个", "条"),
    "元": ("元", "万元", "亿元"),
    "万元": ("万元", "亿元", "元"),
    "亿元": ("亿元", "万元"),
    "次": ("次", "场", "台次", "人次"),
}


def asked_unit(question: str) -> str:
    """The measure word of a 多少/几 question (多少人 -> 人), '' if none."""
    m = _ASKED_UNIT.search(question)
    return m.group(1) if m else ""


def classify(question: str) -> str:
    for kind, rule in _KIND_RULES:
        if rule.search(question):
            return kind
    return "description"


@dataclass(frozen=True)
class Candidate:
    article: Article
    hit_rank: int
    start: int
    end: int
    coverage: float  # share of question information present in sentence (+ title at half)
    score: float  # coverage with kind and rank adjustments
    missing: tuple[str, ...]  # weighty question tokens absent from the sentence and title


class ExtractiveAnswerer:
    """Answers from retrieved articles by quoting; never writes a word the archive lacks."""

    def __init__(self, retriever: Retriever, settings: Settings | None = None, max_articles: int = 4):
        self.retriever = retriever
        self.settings = settings or retriever.settings
        self.max_articles = max_articles
        self._unit = ""  # measure word the current question asks for; set per compose() call

    # -- public -----------------------------------------------------------------------
    def answer(
        self,
        question: str,
        k: int | None = None,
        where: Filter = Filter(),
        retrieval_question: str | None = None,
    ) -> Answer:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        query = retrieval_question or question
        hits = self.retriever.search(query, k=k, where=where, timings=timings)
        timings["retrieve_ms"] = (time.perf_counter() - t0) * 1000
        t = time.perf_counter()
        result = self.compose(query, hits)
        result.question = question
        result.retrieval_question = query
        timings["answer_ms"] = (time.perf_counter() - t) * 1000
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        result.timings_ms = timings
        return result

    def compose(self, question: str, hits: list[Hit]) -> Answer:
        kind = classify(question)
        self._unit = asked_unit(question) if kind == "number" else ""
        if not hits:
            return Answer(question, NOT_FOUND, True, kind=kind, note="no matching passages")
        weights = self._weights(question)
        candidates = self._candidates(kind, hits, weights)
        if not candidates:
            return Answer(question, NOT_FOUND, True, contexts=hits, kind=kind, note="no sentence matched")
        best = candidates[0]
        problem = self._problem(question, kind, best, weights)
        if problem is not None:
            return self._abstain(question, kind, hits, weights, best, problem)
        chosen = [best]
        for c in candidates[1:4]:
            if len(chosen) == 2:
                break
            if c.score >= 0.85 * best.score and not self._overlaps(c, chosen) and self._fits_kind(kind, self._text(c)):
                chosen.append(c)
        citations = self._cite(chosen)
        answer = "".join(f"{cit.quote}[{cit.n}]" for cit in citations)
        return Answer(question, answer, False, citations=citations, contexts=hits, kind=kind)

    def _problem(self, question: str, kind: str, best: Candidate, weights: dict[str, float]) -> tuple[str, str] | None:
        """Why the best sentence does not answer the question, as (lead text, note); None if it does."""
        missing_years = [y for y in years_in(question) if not self._mentions_year(best, y)]
        if missing_years:
            return f"资料中没有找到{'、'.join(f'{y}年' for y in missing_years)}的相关内容；", "year not in evidence"
        missing_weight = sum(weights[t] for t in best.missing) / (sum(weights.values()) or 1.0)
        if best.coverage < self.settings.min_evidence or missing_weight > self.settings.max_missing:
            return NOT_FOUND, "weak evidence"
        missing_orgs = [w for w in best.missing if _ORG_SUFFIX.search(w) and len(w) >= 2]
        if missing_orgs:
            return f"资料中没有找到关于“{'、'.join(missing_orgs)}”的相关内容；", "organization not in evidence"
        if kind == "number" and not self._fits_kind("number", self._text(best)):
            return "资料中没有找到这个数字；", "no number in evidence"
        return None

    def _abstain(self, question, kind, hits, weights, best: Candidate, problem: tuple[str, str]) -> Answer:
        """Abstain, and offer the nearest fact labelled as such.

        For a question naming a year, the nearest fact is the best answer to the same question
        without its year (asked 2022, the archive has 2020): if that would pass every other
        check, it is offered as "最接近的是2020年的资料"."""
        lead, note = problem
        if best.coverage < NEARBY_MIN:  # nothing close enough to be worth quoting
            return Answer(question, lead if lead != NOT_FOUND else NOT_FOUND, True, contexts=hits, kind=kind, note=note)
        asked = years_in(question)
        if asked:
            yearless = {t: w for t, w in weights.items() if not _YEAR_TOKEN.match(t)}
            stripped = _YEAR_IN_TEXT.sub("", question)
            alt_hits = self.retriever.search(stripped, k=len(hits)) if stripped.strip() else []
            alt = self._candidates(kind, alt_hits, yearless)
            if yearless and alt and self._problem(stripped, kind, alt[0], yearless) is None:
                found = _YEAR_IN_TEXT.search(self._text(alt[0]))
                year = found.group(0).rstrip("年") if found else (str(alt[0].article.year) if alt[0].article.year else "")
                if year and int(year) not in asked:
                    asked_txt = "、".join(f"{y}年" for y in asked)
                    return self._nearby(question, kind, alt_hits, alt[0], f"资料中没有{asked_txt}的数据；最接近的是{year}年的资料：", "year not in evidence; nearby year offered", labelled=False)
        return self._nearby(question, kind, hits, best, lead, note)

    # -- scoring --------------------------------------------------------------------------
    def _weights(self, question: str) -> dict[str, float]:
        """How much each question token tells: its idf in the archive.

        A single character (时, 条, 区) says little on its own, and the sub-words that search
        mode adds beside a longer token repeat it, so both are down-weighted. A token the
        archive has never seen is either a content word it lacks (预算, 开诊) or a colloquial
        filler; it weighs like a rare word, so missing content counts against answering."""
        bm25 = getattr(self.retriever.store, "bm25", None)
        tokens = set(tokenize(expand_query(question)))
        weights: dict[str, float] = {}
        idf_max = float(bm25.idf.max()) if bm25 is not None and len(bm25.idf) else 1.0
        for tok in tokens:
            j = bm25.vocab.get(tok) if bm25 is not None else None
            if j is None:
                w = 0.8 * idf_max
            else:
                w = max(float(bm25.idf[j]), 0.05)
            if len(tok) == 1 and not tok.isdigit():
                w *= 0.3
            weights[tok] = w
        for tok in tokens:
            if any(tok != other and tok in other for other in tokens):
                weights[tok] *= 0.5
        return weights

    def _candidates(self, kind: str, hits: list[Hit], weights: dict[str, float]) -> list[Candidate]:
        total = sum(weights.values()) or 1.0
        out: list[Candidate] = []
        store = self.retriever.store
        for hit in hits[: self.max_articles]:
            article = store.article(hit.chunk.article_id)
            title_tokens = _token_set(article.title)
            article_tokens = _token_set(article.body) | title_tokens
            for s, e, factor in self._spans(article.body, kind, weights):
                text = article.body[s:e]
                toks = _token_set(text)
                covered = sum(w for t, w in weights.items() if t in toks)
                covered += 0.5 * sum(w for t, w in weights.items() if t not in toks and t in title_tokens)
                coverage = covered / total
                score = coverage * factor * (1.0 - 0.04 * (hit.rank - 1))
                if not self._fits_kind(kind, text):
                    score *= 0.6
                if hit.chunk.start <= s < hit.chunk.end:
                    score *= 1.05  # the passage retrieval itself pointed at
                missing = tuple(
                    t for t, w in weights.items() if t not in toks and t not in article_tokens and w >= 0.5 * max(weights.values())
                )
                out.append(Candidate(article, hit.rank, s, e, coverage, score, missing))
        out.sort(key=lambda c: (-c.score, c.hit_rank, c.start))
        return out

    def _spans(self, body: str, kind: str, weights: dict[str, float]) -> list[tuple[int, int, float]]:
        """Quotable spans with a score factor: single sentences, and for questions whose answer
        often follows an introductory sentence (lists, descriptions, names), pairs of adjacent
        sentences in one paragraph, slightly discounted so a single sentence wins a tie."""
        sentences = [
            (s, e) for s, e in sentence_spans(body) if e <= trusted_limit(body, s)  # text addressed to a model is never quoted
        ]
        spans = [(s, e, 1.0) for start, end in sentences for s, e in self._clip(body, start, end, weights)]
        if kind in PAIR_KINDS:
            for (s1, e1), (s2, e2) in zip(sentences, sentences[1:]):
                if "\n" not in body[e1:s2] and e2 - s1 <= MAX_QUOTE + 60:
                    spans.append((s1, e2, PAIR_FACTOR))
        return spans

    def _clip(self, body: str, start: int, end: int, weights: dict[str, float]) -> list[tuple[int, int]]:
        """A long sentence becomes its best window of whole clauses, at most MAX_QUOTE characters."""
        if end - start <= MAX_QUOTE:
            return [(start, end)]
        cuts = [start] + [m.end() for m in _CLAUSE_END.finditer(body, start, end)] + [end]
        cuts = sorted(set(cuts))
        best: tuple[float, int, int] | None = None
        for i in range(len(cuts) - 1):
            for j in range(i + 1, len(cuts)):
                if cuts[j] - cuts[i] > MAX_QUOTE and j > i + 1:
                    break
                toks = _token_set(body[cuts[i] : cuts[j]])
                value = sum(w for t, w in weights.items() if t in toks) - 0.001 * (cuts[j] - cuts[i])
                if best is None or value > best[0]:
                    best = (value, cuts[i], cuts[j])
        assert best is not None
        s, e = best[1], best[2]
        while e > s and body[e - 1] in "，,；;：: ":
            e -= 1
        return [(s, e)]

    def _fits_kind(self, kind: str, text: str) -> bool:
        if kind == "number":  # a quantity, not just the year or date the question named
            rest = _YEAR_OR_DATE.sub("", text)
            unit = self._unit
            if unit:  # 多少人 wants a count of people, not the 五项 next to it
                return any(re.search(rf"(?:\d|[一二两三四五六七八九十百千万])[余多近约]?{u}", rest) for u in _UNIT_ALIASES.get(unit, (unit,)))
            return bool(_HAS_NUMBER.search(rest))
        if kind == "date":
            return bool(_HAS_DATE.search(text))
        if kind == "person":
            return bool(_HAS_PERSON_CUE.search(text))
        if kind == "list":
            return "、" in text or "，" in text
        return True

    @staticmethod
    def _text(c: Candidate) -> str:
        return c.article.body[c.start : c.end]

    @staticmethod
    def _mentions_year(c: Candidate, year: int) -> bool:
        """Whether the year a sentence speaks about is `year`.

        The sentence's own years decide; failing those, the last year named earlier in its
        paragraph ("2020年，…；进出口总额…"); failing that, the article's title and date. So a
        2022 article reviewing 2020 figures answers for 2020, not for 2021 or 2022."""
        body = c.article.body
        own = _YEAR_IN_TEXT.findall(body[c.start : c.end])
        if own:
            return str(year) in {y[:4] for y in own}
        para_start = body.rfind("\n", 0, c.start) + 1
        before = _YEAR_IN_TEXT.findall(body[para_start : c.start])
        if before:
            return before[-1][:4] == str(year)
        return str(year) in c.article.title or c.article.year == year

    @staticmethod
    def _overlaps(c: Candidate, chosen: list[Candidate]) -> bool:
        return any(o.article.id == c.article.id and o.start < c.end and c.start < o.end for o in chosen)

    # -- output ---------------------------------------------------------------------------
    @staticmethod
    def _cite(chosen: list[Candidate]) -> list[Citation]:
        numbers: dict[str, int] = {}
        citations: list[Citation] = []
        for c in chosen:
            n = numbers.setdefault(f"{c.article.id}:{c.start}", len(numbers) + 1)
            citations.append(
                Citation(
                    n=n,
                    article_id=c.article.id,
                    title=c.article.title,
                    date=c.article.date or (str(c.article.year) if c.article.year else ""),
                    source=c.article.source,
                    quote=c.article.body[c.start : c.end],
                    start=c.start,
                    end=c.end,
                )
            )
        return citations

    def _nearby(self, question: str, kind: str, hits: list[Hit], best: Candidate, lead: str, why: str, labelled: bool = True) -> Answer:
        """Abstain, but show the closest fact, labelled as such, with its citation."""
        citations = self._cite([best])
        c = citations[0]
        when = f"（{c.date or '日期不详'}）"
        label = "最接近的资料是" if labelled else ""
        text = f"{lead}{label}《{c.title or '无标题'}》{when}：{c.quote}[1]"
        return Answer(question, text, True, citations=citations, contexts=hits, kind=kind, note=why)

