"""BM25 first, vectors after (issue 13 item 1) and incremental builds that skip unchanged files
(item 5): partial vectors in the local store, fusion over the chunks that have one, a 0% version
answering exactly like fusion="sparse", a query during background embedding, resume after kill."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from rag.build import _trusted_stats, build_index
from rag.engine import Engine
from rag.load import load_corpus
from rag.records import Chunk
from rag.retrieve import Retriever
from rag.settings import BUNDLED_CORPUS, PROJECT_ROOT, Settings
from rag.store import LocalStore, current_stamp
from rag.store.local_update import LocalUpdate
from rag.store.testing import DIM, add_docs, corpus, extra_doc


def _partial_store(tmp_path) -> LocalStore:
    """The conformance corpus with no vectors for article 1 (rows of NaN)."""
    docs = corpus()
    store = LocalStore(dim=DIM, path=tmp_path / "index")
    vectors = np.vstack([d.vectors if i != 1 else np.full_like(d.vectors, np.nan) for i, d in enumerate(docs)])
    store.add([d.article for d in docs], [c for d in docs for c in d.chunks], vectors, [t for d in docs for t in d.tokens])
    return store


def test_partial_vectors_search_publish_and_fill_in(tmp_path):
    store = _partial_store(tmp_path)
    docs = corpus()
    missing = [c.id for c in store.missing_vectors()]
    assert missing == [c.id for c in docs[1].chunks]
    assert store.dense_coverage() == pytest.approx(4 / 5)
    assert store.has_vectors(["art1-c0", "art0-c0", "nope"]) == [False, True, False]
    probe = docs[1].vectors[0]  # what article 1 would match, had it a vector
    assert all(c.article_id != "art1" for c, _ in store.search_dense(probe, 10))
    assert store.search_sparse(["无人机", "测试"], 1)[0][0].article_id == "art1"  # BM25 sees every chunk

    first = store.publish({"files": {}})
    loaded = LocalStore.load(tmp_path / "index", verify=True)
    assert loaded.dense_coverage() == pytest.approx(4 / 5) and loaded.manifest["n_dense"] == 4

    loaded.set_vectors(missing, docs[1].vectors)
    second = loaded.publish({"files": {}})
    assert loaded.search_dense(probe, 1)[0][0].id == "art1-c0"
    again = LocalStore.load(tmp_path / "index", verify=True)
    assert again.dense_coverage() == 1.0 and again.search_dense(probe, 1)[0][0].id == "art1-c0"
    # only the vector files were written again; records and BM25 terms are hard links
    for name in ("articles.jsonl", "chunks.jsonl", "tf_data.npy", "vocab.json"):
        assert os.stat(f"{first}/{name}").st_ino == os.stat(f"{second}/{name}").st_ino
    for name in ("vectors.npy", "has_vector.npy", "dense.faiss"):
        assert os.stat(f"{first}/{name}").st_ino != os.stat(f"{second}/{name}").st_ino


def test_no_vectors_at_all_is_bm25_exactly_without_a_query_embedding(tmp_path):
    docs = corpus()
    store = LocalStore(dim=DIM)
    store.add([d.article for d in docs], [c for d in docs for c in d.chunks], None, [t for d in docs for t in d.tokens])
    assert store.dense_coverage() == 0.0 and store.search_dense(np.ones(DIM), 5) == []
    settings = Settings()
    # embedder=None: asking it for a vector would fail, so this also shows none is computed
    retriever = Retriever(store, None, settings)  # type: ignore[arg-type]
    for q in ("无人机比赛", "经开区专项债", "营商环境优化"):
        for mode in ("score", "rrf", "dense"):
            assert retriever.search(q, mode=mode) == retriever.search(q, mode="sparse")


def _chunk(cid: str) -> Chunk:
    return Chunk(cid, f"a-{cid}", "正文", 0, 2, "标题", "s.txt")


def test_a_chunk_without_vector_gets_the_average_dense_term():
    a, b, c = _chunk("a"), _chunk("b"), _chunk("c")
    retriever = Retriever(None, None, Settings())  # type: ignore[arg-type]
    sparse = [(a, 10.0), (b, 8.0), (c, 5.0)]
    dense = [(b, 0.9), (c, 0.5)]  # a has no vector: absent from dense search
    hits = {h.chunk.id: h.score for h in retriever._fuse(sparse, dense, "score", [], unvectored={"a"})}
    w = Settings().dense_weight
    neutral = (1.0 + 0.0) / 2  # min-max dense terms of b and c, the candidates that have a vector
    assert hits["a"] == pytest.approx(1.0 + w * neutral)
    assert hits["b"] == pytest.approx(0.8 + w * 1.0) and hits["c"] == pytest.approx(0.5)
    # the same lists without the marker: a chunk outside the dense list counts 0, as before
    plain = {h.chunk.id: h.score for h in retriever._fuse(sparse, dense, "score", [])}
    assert plain["a"] == pytest.approx(1.0)


def test_unchanged_files_are_not_read_again(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "a.txt").write_text("经开区举办活动。\n", encoding="utf-8")
    (root / "b.txt").write_text("经开区发行专项债。\n", encoding="utf-8")
    first = load_corpus(root)
    old = time.time() - 3600
    for p in root.iterdir():
        os.utime(p, (old, old))
    first = load_corpus(root)
    assert first.unchanged == [] and set(first.stats) == {"a.txt", "b.txt"}
    known = dict(first.stats)
    again = load_corpus(root, known=known)
    assert again.unchanged == ["a.txt", "b.txt"] and again.pages == []
    (root / "b.txt").write_text("经开区发行专项债券。\n", encoding="utf-8")  # other size, new mtime
    (root / "a.txt.meta.json").write_text('{"year": 2020}', encoding="utf-8")  # a sidecar appears
    third = load_corpus(root, known=known)
    assert third.unchanged == [] and sorted(p.source for p in third.pages) == ["a.txt", "b.txt"]
    # a file written just before the build that recorded it may have changed in the same tick
    stats = {rel: list(st) for rel, st in first.stats.items()}
    recent = {"file_stats": stats, "file_stats_at": first.stats["a.txt"].mtime_ns + 10**9}
    assert _trusted_stats(recent, {"a.txt": "x", "b.txt": "y"}, Settings()) == {}
    settled = {"file_stats": stats, "file_stats_at": time.time_ns()}
    assert set(_trusted_stats(settled, {"a.txt": "x"}, Settings())) == {"a.txt"}


@pytest.mark.slow
def test_a_version_without_vectors_answers_like_sparse(tmp_path, embedder):
    settings = Settings(corpus_dir=BUNDLED_CORPUS, index_dir=tmp_path / "index")  # fresh cache: nothing cached
    report = build_index(settings, embedder=embedder, dense="later")
    assert report.version and report.dense_coverage == 0.0 and report.chunks_embedded == 0
    assert report.dense_pending == report.n_chunks
    engine = Engine(settings, embedder=embedder)
    assert engine.status["dense_coverage"] == 0.0 and "向量 0%" in engine.status["dense_label"]
    for q in ("经开区2020年专项债发行多少", "城市精细化管理推进会谁主持的", "经开区有多少家企业", "那2019年呢"):
        fused, sparse = engine.ask(q).to_json(), engine.ask(q, mode="sparse").to_json()
        fused.pop("timings_ms"), sparse.pop("timings_ms")
        assert fused == sparse and fused["dense_coverage"] == 0.0


def _manifest(index) -> dict:
    stamp = current_stamp(index)
    return json.loads((index / stamp / "manifest.json").read_text(encoding="utf-8")) if stamp else {}


@pytest.mark.slow
def test_query_during_background_embedding_then_resume_after_kill(tmp_path, embedder):
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    shutil.copy(BUNDLED_CORPUS / "003_c4740e32d0d06a7b.txt", corpus_dir / "003.txt")
    index = tmp_path / "index"
    env = {**os.environ, "RAG_EMBED_BATCH": "2", "RAG_DENSE_CHECK_CHUNKS": "2", "RAG_DENSE_PUBLISH_CHUNKS": "2", "RAG_DENSE_INLINE_CHUNKS": "0"}
    cmd = [sys.executable, "-m", "rag.index", "--quiet", "--corpus", str(corpus_dir), "--index", str(index)]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            m = _manifest(index)
            if m and 0 < m["n_dense"] < m["n_chunks"] - 2:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        else:
            pytest.fail("no partial version was published")
        settings = Settings(corpus_dir=corpus_dir, index_dir=index)
        engine = Engine(settings, embedder=embedder)
        status = engine.status
        assert 0 < status["dense_coverage"] < 1 and status["dense_building"] and status["dense_label"].startswith("向量 ")
        answer = engine.ask("经开区2020年专项债发行多少")
        assert "13.92亿元" in answer.answer and 0 < answer.dense_coverage < 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    with sqlite3.connect(str(index / "cache" / "embeddings.sqlite")) as db:
        cached = db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
    served = LocalStore.load(index, verify=True)  # the killed build left a whole version
    unique = len({c.indexed_text for c in served.chunks})
    assert 0 < cached < unique and served.dense_coverage() < 1
    # the lock of the killed process is stale: the rerun takes it over and embeds only the rest
    report = build_index(settings, embedder=embedder, dense="continue")
    assert report.chunks_embedded == unique - cached  # nothing embedded twice
    assert report.dense_coverage == 1.0 and any("过期" in w for w in report.warnings)
    assert Engine(settings, embedder=embedder).ask("经开区2020年专项债发行多少").dense_coverage == 1.0


def _fresh(docs, tmp_path, name) -> LocalStore:
    store = LocalStore(dim=DIM, path=tmp_path / name)
    add_docs(store, docs)
    store.publish({"files": {}})
    return LocalStore.load(tmp_path / name)


def _same_served(a: LocalStore, b: LocalStore) -> None:
    assert set(a.article_map) == set(b.article_map) and sorted(c.id for c in a.chunks) == sorted(c.id for c in b.chunks)
    for q in (["经开区"], ["无人机", "比赛"], ["新能源", "汽车"], ["营商环境", "债券"]):
        assert {c.id: round(s, 9) for c, s in a.search_sparse(q, 20)} == {c.id: round(s, 9) for c, s in b.search_sparse(q, 20)}
    for d in range(DIM):
        probe = np.eye(DIM, dtype=np.float32)[d]
        assert {c.id for c, _ in a.search_dense(probe, 3)} == {c.id for c, _ in b.search_dense(probe, 3)}


def test_incremental_publish_adds_a_segment_and_serves_like_a_full_build(tmp_path):
    docs = corpus()
    full = LocalStore(dim=DIM, path=tmp_path / "index")
    add_docs(full, docs)
    first = full.publish({"files": {}})
    update = LocalUpdate.open(tmp_path / "index", verify=True)
    assert update is not None
    assert update.delete_source("2021/b.txt") == 2 and update.stats().n_articles == 2
    add_docs(update, [extra_doc()])
    second = update.publish({"files": {}})
    served = LocalStore.load(tmp_path / "index", verify=True)
    _same_served(served, _fresh([docs[0], docs[3], extra_doc()], tmp_path, "fresh"))
    # the full segment's files are the first version's, linked; the new rows are their own segment
    for name in ("chunks.jsonl", "vectors.npy", "tf_data.npy", "sources.json"):
        assert os.stat(f"{first}/{name}").st_ino == os.stat(f"{second}/{name}").st_ino
    manifest = json.loads((tmp_path / "index" / current_stamp(tmp_path / "index") / "manifest.json").read_text(encoding="utf-8"))
    assert [s["n_rows"] for s in manifest["segments"]] == [5, 1] and manifest["deleted"][""]["articles"] == ["art1", "art2"]
    assert "dense.faiss" not in manifest["version_files"]
    # a second incremental build on top: delete from the new segment too
    assert LocalUpdate.open(tmp_path / "index") is None  # 2 of 6 rows deleted: over segment_compact_share, compact
    again = LocalUpdate.open(tmp_path / "index", verify=True, compact_share=0.5)
    assert again.delete_source("2022/new.txt") == 1
    again.publish({"files": {}})
    _same_served(LocalStore.load(tmp_path / "index", verify=True), _fresh([docs[0], docs[3]], tmp_path, "fresh2"))


def test_incremental_vectors_arrive_later_and_compaction_falls_back(tmp_path):
    docs = corpus()
    full = LocalStore(dim=DIM, path=tmp_path / "index")
    add_docs(full, docs[:3])
    full.publish({"files": {}})
    update = LocalUpdate.open(tmp_path / "index")
    d3 = docs[3]
    update.add([d3.article], d3.chunks, None, d3.tokens)  # no vectors yet
    update.publish({"files": {}})
    assert LocalStore.load(tmp_path / "index").dense_coverage() < 1
    missing = update.missing_vectors()
    assert [c.id for c in missing] == [c.id for c in d3.chunks]
    update.set_vectors([c.id for c in missing], d3.vectors)
    update.publish({"files": {}})
    _same_served(LocalStore.load(tmp_path / "index", verify=True), _fresh(docs, tmp_path, "fresh"))
    # a resumed build fills in vectors of a segment written by another process
    other = LocalUpdate.open(tmp_path / "index")
    assert other.missing_vectors() == [] and other.dense_coverage() == 1.0
    # two segments already: with segment_max 2 the next build compacts (loads the version whole)
    assert LocalUpdate.open(tmp_path / "index", max_segments=2) is None
    assert LocalUpdate.open(tmp_path / "index", compact_share=0.0) is not None  # nothing deleted yet
