"""Fusion on hand-made candidate lists: no index, no model (fast tier)."""

from __future__ import annotations

import pytest

from rag.records import Chunk
from rag.retrieve import Retriever
from rag.settings import Settings


def chunk(cid: str, article: str | None = None, text: str = "", year: int | None = None) -> Chunk:
    return Chunk(id=cid, article_id=article or cid, text=text, start=0, end=len(text), title="", source="p.txt", year=year)


def fuse(sparse, dense, mode="score", years=(), **settings):
    return Retriever(None, None, Settings(**settings))._fuse(sparse, dense, mode, list(years))  # type: ignore[arg-type]


A, B, C = chunk("a"), chunk("b"), chunk("c")


def test_score_fusion_divides_bm25_by_its_maximum_and_scales_cosine():
    hits = fuse([(A, 8.0), (B, 4.0)], [(B, 0.9), (C, 0.7), (A, 0.5)])
    scores = {h.chunk.id: h.score for h in hits}
    assert scores["a"] == pytest.approx(1.0 + 0.2 * 0.0)  # BM25 best, dense worst
    assert scores["b"] == pytest.approx(0.5 + 0.2 * 1.0)
    assert scores["c"] == pytest.approx(0.0 + 0.2 * 0.5)
    assert [h.chunk.id for h in hits] == ["a", "b", "c"] and [h.rank for h in hits] == [1, 2, 3]


def test_a_strong_bm25_match_is_not_pulled_down_by_dense_retrieval():
    """Why score fusion is the default: RRF let a weak BM25 match that dense retrieval liked
    overtake BM25's clear best; score fusion keeps the margin."""
    sparse = [(A, 12.0), (B, 1.0)]
    dense = [(B, 0.92), (C, 0.91), (A, 0.60)]
    assert fuse(sparse, dense)[0].chunk.id == "a"
    assert fuse(sparse, dense, mode="rrf", dense_weight=1.0)[0].chunk.id == "b"


def test_rrf_sums_weighted_reciprocal_ranks():
    hits = fuse([(A, 3.0), (B, 2.0)], [(B, 0.9)], mode="rrf", rrf_k=60, dense_weight=0.5)
    scores = {h.chunk.id: h.score for h in hits}
    assert scores["a"] == pytest.approx(1 / 61) and scores["b"] == pytest.approx(1 / 62 + 0.5 / 61)


def test_sparse_and_dense_modes_keep_their_own_scores():
    assert [(h.chunk.id, h.score) for h in fuse([(A, 3.0), (B, 2.0)], [], mode="sparse")] == [("a", 3.0), ("b", 2.0)]
    assert [h.chunk.id for h in fuse([], [(C, 0.8), (A, 0.9)], mode="dense")] == ["a", "c"]


def test_one_hit_per_article_keeps_its_best_chunk():
    a1, a2 = chunk("a1", "art"), chunk("a2", "art")
    hits = fuse([(a1, 2.0), (a2, 5.0), (B, 4.0)], [], mode="sparse")
    assert [h.chunk.id for h in hits] == ["a2", "b"]


def test_chunks_of_another_year_are_scaled_down():
    y2020 = chunk("y2020", text="2020年发行专项债券13.92亿元", year=2020)
    y2019 = chunk("y2019", text="2019年发行专项债券", year=2019)
    hits = fuse([(y2019, 10.0), (y2020, 8.0)], [], mode="sparse", years=[2020], year_boost=0.5)
    assert [(h.chunk.id, h.score) for h in hits] == [("y2020", 8.0), ("y2019", 5.0)]
    unnamed = chunk("n", text="全年发行专项债券")  # names no year: also another year's
    assert fuse([(unnamed, 4.0)], [], mode="sparse", years=[2020])[0].score == 2.0


def test_a_negative_score_of_another_year_is_pushed_further_down():
    low = chunk("low", text="2019年", year=2019)
    assert fuse([], [(low, -0.2)], mode="dense", years=[2020], year_boost=0.5)[0].score == pytest.approx(-0.4)


def test_no_candidates_no_hits():
    assert fuse([], []) == []
