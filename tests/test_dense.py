"""Dense units (rag/dense.py): which texts are embedded, and how chunks get their vector back.
Hand-made articles and vectors; no model."""

from __future__ import annotations

import numpy as np
import pytest

from rag.chunk import chunk_article
from rag.dense import Unit, chunk_vectors, dense_identity, dense_units, unit_texts
from rag.records import Article
from rag.settings import Settings

BODY = "".join(f"第{i}句话讲的是经开区的一项工作。" for i in range(30))
ARTICLE = Article(id="a1", title="标题", body=BODY, source="x.txt")
SETTINGS = Settings(chunk_size=120, chunk_overlap=40)


def test_windows_tile_the_body_without_overlap_and_carry_the_title():
    units = dense_units(ARTICLE, "window", SETTINGS)
    assert len(units) > 3
    assert units[0].start == 0 and all(a.end <= b.start for a, b in zip(units, units[1:]))
    assert sum(u.end - u.start for u in units) <= len(BODY)
    assert all(u.text.startswith("标题\n") and len(u.text) <= len("标题\n") + 120 for u in units)


def test_windows_embed_fewer_characters_than_overlapped_chunks():
    chunks = chunk_article(ARTICLE, SETTINGS.chunk_size, SETTINGS.chunk_overlap)
    chunk_chars = sum(len(t) for t in unit_texts([ARTICLE], chunks, SETTINGS))
    window_chars = sum(len(t) for t in unit_texts([ARTICLE], chunks, SETTINGS.replace(dense_unit="window")))
    assert window_chars < chunk_chars


def test_lead_is_one_unit_of_title_and_first_sentences():
    (lead,) = dense_units(ARTICLE, "lead", SETTINGS.replace(dense_lead_chars=40))
    assert lead.text == "标题\n" + "第0句话讲的是经开区的一项工作。第1句话讲的是经开区的一项工作。"
    assert (lead.start, lead.end) == (0, len(BODY))


def test_sentences_are_the_body_sentences_without_title():
    units = dense_units(ARTICLE, "sentence", SETTINGS)
    assert len(units) == 30 and units[3].text == "第3句话讲的是经开区的一项工作。"
    assert all(BODY[u.start : u.end] == u.text for u in units)


def test_chunk_vector_is_the_overlap_weighted_mean_of_its_units():
    chunks = chunk_article(Article(id="a1", title="", body="甲" * 10 + "。" + "乙" * 9 + "。", source="x"), 100, 0)
    units = [Unit("a1", 0, 11, "甲"), Unit("a1", 11, 21, "乙"), Unit("b", 0, 21, "别的文章")]
    vecs = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]], dtype=np.float32)
    (v,) = chunk_vectors(chunks, units, vecs)
    want = np.array([11.0, 10.0]) / np.linalg.norm([11.0, 10.0])
    np.testing.assert_allclose(v, want, rtol=1e-6)


def test_every_chunk_of_an_article_carries_its_lead():
    chunks = chunk_article(ARTICLE, SETTINGS.chunk_size, SETTINGS.chunk_overlap)
    units = dense_units(ARTICLE, "lead", SETTINGS)
    out = chunk_vectors(chunks, units, np.array([[0.6, 0.8]], dtype=np.float32))
    np.testing.assert_allclose(out, np.tile([0.6, 0.8], (len(chunks), 1)), rtol=1e-6)


def test_empty_body_falls_back_to_the_title():
    empty = Article(id="e", title="只有标题", body="", source="x")
    assert [u.text for u in dense_units(empty, "sentence", SETTINGS)] == ["只有标题"]


def test_dense_unit_is_validated_and_recorded():
    with pytest.raises(ValueError, match="dense_unit must be one of"):
        Settings(dense_unit="paragraph")
    assert dense_identity(Settings()) == "chunk"
    assert dense_identity(Settings(dense_unit="lead", dense_lead_chars=150)) == "lead:150"


def test_units_are_cut_from_looked_up_articles_when_a_build_passes_only_chunks(tmp_path, embedder):
    from rag.dense import embed_chunks
    from rag.embed import EmbeddingCache

    settings = SETTINGS.replace(dense_unit="lead")
    chunks = chunk_article(ARTICLE, settings.chunk_size, settings.chunk_overlap)
    cache = EmbeddingCache(tmp_path / "c.sqlite", embedder.id, embedder.dim)
    given, _ = embed_chunks([ARTICLE], chunks, settings, embedder, cache)
    looked_up, computed = embed_chunks([], chunks[2:], settings, embedder, cache, article={ARTICLE.id: ARTICLE}.get)
    assert computed == 0  # the lead was cached by the first call
    np.testing.assert_array_equal(looked_up, given[2:])
    assert np.allclose(np.linalg.norm(looked_up, axis=1), 1.0)
    with pytest.raises(ValueError, match="needs the article of every chunk"):
        embed_chunks([], chunks, settings, embedder, cache)
    cache.close()
