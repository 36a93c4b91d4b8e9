"""Read path: sparse + dense search, fusion, year preference, one hit per article.

Fusion, chosen by measurement (README, "Retrieval modes"): by default a calibrated score
fusion — BM25 scaled by the best BM25 score of the question, plus `dense_weight` (0.2) times
the cosine similarity min-max scaled over the candidates. On crud_qa_dev (+500 distractors)
BM25 alone puts the right article first for 0.873 of the questions, dense alone 0.700,
reciprocal-rank fusion 0.823 even with the dense side at half weight (a chunk ranked 2nd by
BM25 and 1st by dense overtakes BM25's correct 1st), score fusion 0.867; on the gold set of
the bundled pages score fusion has the best passage hit@1 (0.912 vs 0.905 BM25, 0.891 RRF).
So dense similarity refines BM25 instead of outvoting it. RRF (Cormack et al., SIGIR 2009)
stays available as `fusion="rrf"`.

A version published before embedding finished (progressive build, BM25 first) has vectors
for only part of the chunks. With none, every fusion is BM25 alone (`fusion="sparse"`, no query
embedding). With some, score fusion gives a chunk without a vector the average dense term of
the BM25 candidates that have one, so it is neither pushed up nor pulled down for lacking a
vector; RRF simply has no dense rank for it. `Retriever.coverage` says how far the vectors go.

A question that names a year (2020年) prefers chunks of that year: a chunk whose article
year or text does not mention any asked year has its fused score multiplied by
`year_boost`. A preference, not a filter: a 2022 page that reports 2020 figures still counts
as 2020 because its text says 2020.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property

from .embed import Embedder
from .records import Chunk, Hit
from .settings import Settings
from .store import Filter, Store
from .tokenize import expand_query, tokenize
from .zh import years_in

def mentions_year(chunk: Chunk, year: int) -> bool:
    return chunk.year == year or str(year) in chunk.text or str(year) in chunk.title


@dataclass
class Retriever:
    store: Store
    embedder: Embedder
    settings: Settings

    def search(
        self,
        question: str,
        k: int | None = None,
        where: Filter = Filter(),
        mode: str | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[Hit]:
        """Top-k hits, at most one per article, best first. `mode`: score | rrf | sparse | dense."""
        k = k or self.settings.top_k
        mode = mode or self.settings.fusion
        if mode != "sparse" and self.coverage <= 0.0:
            mode = "sparse"  # no vectors yet: BM25 alone, exactly
        fetch = max(self.settings.fetch_k, k * 4)
        timings = timings if timings is not None else {}
        sparse: list[tuple[Chunk, float]] = []
        dense: list[tuple[Chunk, float]] = []
        if mode in ("rrf", "score", "sparse"):
            t = time.perf_counter()
            sparse = self.store.search_sparse(tokenize(expand_query(question)), fetch, where)
            timings["sparse_ms"] = (time.perf_counter() - t) * 1000
        if mode in ("rrf", "score", "dense"):
            t = time.perf_counter()
            vec = self.embedder.embed_query(question)
            timings["embed_query_ms"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            dense = self.store.search_dense(vec, fetch, where)
            timings["dense_ms"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        unvectored: set[str] = set()
        if mode == "score" and sparse and self.coverage < 1.0:
            flags = self.store.has_vectors([c.id for c, _ in sparse])
            unvectored = {c.id for (c, _), f in zip(sparse, flags) if not f}
        hits = self._fuse(sparse, dense, mode, years_in(question), unvectored)
        timings["fuse_ms"] = (time.perf_counter() - t) * 1000
        return hits[:k]

    @cached_property
    def coverage(self) -> float:
        """Share of the index's chunks that have a vector (1.0: complete)."""
        return float(self.store.dense_coverage())

    def _fuse(self, sparse, dense, mode: str, years: list[int], unvectored: set[str] = frozenset()) -> list[Hit]:
        s = self.settings
        table: dict[str, dict] = {}
        for rank, (chunk, _score) in enumerate(sparse, 1):
            table.setdefault(chunk.id, {"chunk": chunk, "s": None, "d": None})["s"] = rank
        for rank, (chunk, _score) in enumerate(dense, 1):
            table.setdefault(chunk.id, {"chunk": chunk, "s": None, "d": None})["d"] = rank
        raw_scores = {c.id: v for c, v in sparse} if mode == "sparse" else {c.id: v for c, v in dense}
        norm_sparse = _minmax({c.id: v for c, v in sparse}, floor_zero=True)
        norm_dense = _minmax({c.id: v for c, v in dense})
        neutral = 0.0
        if unvectored:
            terms = [norm_dense.get(c.id, 0.0) for c, _ in sparse if c.id not in unvectored]
            neutral = sum(terms) / len(terms) if terms else 0.0
        scored = []
        for cid, row in table.items():
            if mode == "score":
                dense_term = neutral if cid in unvectored else norm_dense.get(cid, 0.0)
                score = s.sparse_weight * norm_sparse.get(cid, 0.0) + s.dense_weight * dense_term
            elif mode == "rrf":
                score = 0.0
                if row["s"] is not None:
                    score += s.sparse_weight / (s.rrf_k + row["s"])
                if row["d"] is not None:
                    score += s.dense_weight / (s.rrf_k + row["d"])
            else:
                score = raw_scores[cid]
            if years and not any(mentions_year(row["chunk"], y) for y in years):
                score *= s.year_boost if score > 0 else 1.0 / max(s.year_boost, 1e-6)
            scored.append((score, row))
        scored.sort(key=lambda x: -x[0])
        hits: list[Hit] = []
        seen: set[str] = set()
        for score, row in scored:
            chunk = row["chunk"]
            if chunk.article_id in seen:
                continue
            seen.add(chunk.article_id)
            hits.append(Hit(chunk=chunk, score=score, rank=len(hits) + 1))
        return hits


def _minmax(scores: dict[str, float], floor_zero: bool = False) -> dict[str, float]:
    """Scores scaled to [0, 1] over the candidates; BM25 keeps 0 as its floor so that a weak
    best match stays weak relative to a strong one."""
    if not scores:
        return {}
    hi = max(scores.values())
    lo = 0.0 if floor_zero else min(scores.values())
    span = hi - lo
    return {k: ((v - lo) / span if span > 0 else 1.0) for k, v in scores.items()}
