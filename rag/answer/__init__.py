"""Extractive, grounded answers: the fact first, from the right sentence, or an honest abstention.

No generative model is trusted offline, so every character of an answer is the archive's own
text, cited. The steps are pure functions, one module each:

    analysis.py    question -> slot (number, date, person…), constraints (years, offices, ordinals,
                   indicators) and the information each token carries (idf)
    candidates.py  retrieved articles -> quotable spans (sentences, clause windows, pairs)
    align.py       span × constraints -> features; a constraint met by another value of its type
                   (another year, office, ordinal) is a conflict: the nearby-fact trap
    decide.py      features -> answer / nearby / none, by a fitted logistic model (decision.json)
    compose.py     the short lead (13.92亿元) + the quotes with [n]; Chinese templates

The answerer does not search: the engine hands it the hits for the question and, when the
question names a year, the hits for the same question without it (so a 2020 fact can be
offered, labelled, for a question about 2022), both under the user's filter.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from .. import zh
from ..profile import Profile, load_profile
from ..records import Answer, Hit
from ..store import Store
from ..tokenize import tokenize
from .align import align, spoken_years
from .analysis import analyze, classify
from .candidates import spans_for
from .compose import compose
from .decide import decide, load_model, score
from .types import CONFLICT, Alignment, AnswerParams, Analysis, Decision, Span

__all__ = ["AnswerParams", "Analysis", "Decision", "ExtractiveAnswerer", "classify"]


@lru_cache(maxsize=200_000)
def _token_set(text: str, profile: Profile) -> frozenset[str]:
    """Sentences recur across questions (the same top articles), so their tokens are memoised."""
    return frozenset(tokenize(text, profile))


class ExtractiveAnswerer:
    """Answers from retrieved hits by quoting; reads articles and term statistics via the Store."""

    def __init__(self, store: Store, profile: Profile | None = None, params: AnswerParams | None = None):
        self.store = store
        self.profile = profile or load_profile()
        self.params = params or AnswerParams()
        self.model = load_model(self.params.decision_model)

    def tokens(self, text: str) -> frozenset[str]:
        return _token_set(text, self.profile)

    def analyze(self, question: str) -> Analysis:
        return analyze(question, self.store.idf, self.store.max_idf(), self.profile, self.params)

    def alignments(self, analysis: Analysis, hits: Sequence[Hit], yearless_hits: Sequence[Hit] = ()):
        """Every candidate span of the hits, aligned and scored, best first."""
        spans = spans_for(analysis, hits, self.store.article, self.params, self.tokens)
        seen = {s.article.id for s in spans}
        extra = [h for h in yearless_hits if h.chunk.article_id not in seen]
        spans += spans_for(analysis, extra, self.store.article, self.params, self.tokens, from_yearless=True)
        # each search's scores are read against its own best (the yearless one is BM25 alone)
        top = max((h.score for h in hits), default=0.0)
        top_yearless = max((h.score for h in yearless_hits), default=0.0)
        pages: dict[str, dict[str, str]] = {}
        for s in spans:
            pages.setdefault(s.article.source, {})[s.article.id] = s.article.title + "\n" + s.article.body
        page_text = {src: "\n".join(texts.values()) for src, texts in pages.items()}
        def aligned_to(question: Analysis, s: Span, best: float) -> Alignment:
            return align(question, s, self.profile, self.tokens, best, page_text[s.article.source], self.params)

        aligned = [aligned_to(analysis, s, top_yearless if s.from_yearless else top) for s in spans]
        # A span about another year is ranked as the nearby fact by how it answers the question
        # asked for its year ("2021年专项债发行多少" against a 2020 page reads as "2020年…"), and
        # its article by the search without the asked year, which is not pulled to pages that
        # merely mention that year.
        yearless_hit = {h.chunk.article_id: h for h in yearless_hits}
        reasked: dict[tuple[tuple[int, int], ...], Analysis] = {}
        for i, a in enumerate(aligned):
            if a.year != CONFLICT or a.found_year is None:
                continue
            spoken = set(spoken_years(a.span.text))
            mapping = {y: a.found_year for y in analysis.years if y not in spoken}
            if not mapping:
                continue
            key = tuple(sorted(mapping.items()))
            if key not in reasked:
                reasked[key] = self.analyze(zh.replace_years(analysis.question, mapping))
            hit = yearless_hit.get(a.span.article.id)
            span = a.span if hit is None else replace(a.span, hit=hit)
            best = top if hit is None else top_yearless  # a yearless span's own hit is in the map
            aligned[i] = replace(a, year_features=aligned_to(reasked[key], span, best).features)
        return score(aligned, self.model)

    def answer(self, question: str, hits: Sequence[Hit], yearless_hits: Sequence[Hit] = ()) -> Answer:
        t = time.perf_counter()
        analysis = self.analyze(question)
        if not hits:
            result = compose(analysis, Decision("none", reason="no-hits"), hits, self.profile, self.params)
        else:
            scored = self.alignments(analysis, hits, yearless_hits)
            decision = decide(analysis, scored, self.model, self.params)
            result = compose(analysis, decision, hits, self.profile, self.params)
        result.timings_ms["answer_ms"] = (time.perf_counter() - t) * 1000
        return result
