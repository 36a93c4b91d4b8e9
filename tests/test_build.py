"""Index build, persistence and updates on the real seed pages with the real embedder."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rag.build import build_index
from rag.embed import text_hash
from rag.engine import Engine
from rag.settings import Settings
from rag.store import Filter, IndexMismatch, IndexMissing, LocalStore, current_stamp

from rag.settings import BUNDLED_CORPUS as SEED_CORPUS
from rag.settings import PROJECT_ROOT as ROOT


def test_round_trip_loads_what_was_published(seed_settings, embedder):
    store = LocalStore.load(seed_settings.index_dir)
    assert store.manifest["n_articles"] == len(store.article_map) == 32
    assert store.manifest["n_chunks"] == len(store.chunks) == store.dense_index.ntotal
    assert store.manifest["embedder"] == embedder.id
    assert set(store.manifest["files"]) == {p.name for p in SEED_CORPUS.glob("*.txt")}
    # no pickle anywhere: every array loads with allow_pickle=False
    version = seed_settings.index_dir / current_stamp(seed_settings.index_dir)
    for npy in version.glob("*.npy"):
        np.load(npy, allow_pickle=False)
    # the reloaded store answers like the in-memory one
    title = "积极申报专项债券 助力经开快速发展"
    chunk = next(c for c in store.chunks if c.title == title and "13.92亿元" in c.text)
    top = store.search_dense(store.vectors[store.chunks.index(chunk)], 1)
    assert top[0][0].id == chunk.id
    assert store.search_sparse(["专项债", "13.92"], 1)[0][0].title == title


def test_filters_restrict_years_and_sources(seed_settings):
    store = LocalStore.load(seed_settings.index_dir)
    hits = store.search_sparse(["经开区"], 100, Filter(year_from=2020, year_to=2020))
    assert hits and {c.source for c, _ in hits} == {"003_c4740e32d0d06a7b.txt"}
    hits = store.search_sparse(["经开区"], 100, Filter(sources=frozenset({"002_2b110ad91f95fb21.txt"})))
    assert hits and all(c.year == 2023 for c, _ in hits)
    q = store.vectors[0]
    assert all(c.year == 2022 for c, _ in store.search_dense(q, 10, Filter(year_from=2022, year_to=2022)))
    assert store.search_dense(q, 10, Filter(year_from=1990, year_to=1990)) == []


def test_delete_article_removes_its_chunks_everywhere(seed_settings):
    store = LocalStore.load(seed_settings.index_dir)
    target = next(a for a in store.articles() if "专项债券" in a.title)
    n_before = len(store.chunks)
    removed = store.delete_article(target.id)
    assert removed > 0 and len(store.chunks) == n_before - removed == store.dense_index.ntotal
    assert all(c.article_id != target.id for c, _ in store.search_sparse(["专项债", "13.92"], 50))


def test_missing_index_and_other_embedder_give_clear_errors(tmp_path, seed_settings):
    with pytest.raises(IndexMissing, match="python -m rag.index"):
        LocalStore.load(tmp_path / "nothing")
    with pytest.raises(IndexMismatch, match="rebuild it with `python -m rag.index`"):
        LocalStore.load(seed_settings.index_dir, expect={"embedder": "sentence-transformers:other:384"})


def _copy_cache(src_dir: Path, dst_dir: Path) -> None:
    dst_dir.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(str(src_dir / "embeddings.sqlite"))
    with sqlite3.connect(str(dst_dir / "embeddings.sqlite")) as dst:
        src.backup(dst)
    src.close()


def test_incremental_update_embeds_only_the_new_file(tmp_path, corpus_copy, embedder, shared_cache, seed_settings):
    _copy_cache(shared_cache, tmp_path / "cache")  # the seed chunks are cached: no re-embedding
    settings = Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
    first = build_index(settings, embedder=embedder)
    assert first.chunks_embedded == 0 and first.chunks_new == first.n_chunks > 0
    same = build_index(settings, embedder=embedder)
    assert same.version is None and same.chunks_embedded == 0 and not same.changed

    new = corpus_copy / "sub" / "extra.txt"
    new.parent.mkdir()
    new.write_text("经开区举办测试活动\n\n本报讯 6月5日，经开区举办无人机测试活动，共有12支队伍参加。\n记者 张三\n", encoding="utf-8")
    second = build_index(settings, embedder=embedder)
    assert second.files_added == ["sub/extra.txt"]
    assert second.chunks_embedded == second.chunks_new == 1
    assert second.n_articles == first.n_articles + 1

    (corpus_copy / "004_43c8cec8d1dedc71.txt").unlink()
    third = build_index(settings, embedder=embedder)
    assert third.files_removed == ["004_43c8cec8d1dedc71.txt"] and third.chunks_embedded == 0
    store = LocalStore.load(settings.index_dir)
    assert all(c.source != "004_43c8cec8d1dedc71.txt" for c in store.chunks)
    assert any(c.source == "sub/extra.txt" for c in store.chunks)


def test_gbk_page_indexes_like_the_utf8_original(tmp_path, embedder, shared_cache):
    corpus = tmp_path / "gbk"
    corpus.mkdir()
    text = (SEED_CORPUS / "003_c4740e32d0d06a7b.txt").read_text(encoding="utf-8")
    (corpus / "page.txt").write_bytes(text.encode("gbk"))
    (corpus / "broken.txt").write_bytes(b"\xff\xfe\x00\xd8" * 3 + bytes(range(128, 256)) * 2)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", cache_dir=shared_cache)
    report = build_index(settings, embedder=embedder)
    assert report.n_files == 1 and [s for s, _ in report.skipped] == ["broken.txt"]
    answer = Engine(settings, embedder=embedder).ask("经开区2020年专项债发行多少")
    assert "13.92亿元" in answer.answer and answer.citations[0].source == "page.txt"


MISSING = 12  # seed chunks left out of the interrupted build's cache: what it has to embed


def test_interrupted_build_keeps_previous_index_and_resumes(tmp_path, corpus_copy, shared_cache, seed_settings):
    """Interrupt a build mid-embedding: its BM25-first version (every article, part of the
    vectors) is served, and the rerun reuses the vectors computed before the interrupt.

    The build starts from the session's cache less MISSING seed chunks (those of page 003 are
    kept), so the subprocesses embed MISSING chunks in all rather than the whole corpus."""
    index = tmp_path / "index"
    cache = index / "cache" / "embeddings.sqlite"
    _copy_cache(shared_cache, cache.parent)
    # no inline embedding of small updates: the BM25 version is published before any vector
    env = {**os.environ, "RAG_EMBED_BATCH": "2", "RAG_DENSE_INLINE_CHUNKS": "0"}
    one = tmp_path / "one"
    one.mkdir()
    (one / "003.txt").write_text((corpus_copy / "003_c4740e32d0d06a7b.txt").read_text(encoding="utf-8"), encoding="utf-8")
    cmd = [sys.executable, "-m", "rag.index", "--quiet", "--json", "--index", str(index)]
    done = subprocess.run(cmd + ["--corpus", str(one)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["chunks_embedded"] == 0
    before = current_stamp(index)
    kept = {text_hash(c.indexed_text) for c in LocalStore.load(index).chunks}
    seed = {text_hash(c.indexed_text) for c in LocalStore.load(seed_settings.index_dir).chunks}
    dropped = sorted(seed - kept)[:MISSING]
    with sqlite3.connect(str(cache)) as db:
        db.executemany("DELETE FROM vectors WHERE hash = ?", [(h,) for h in dropped])
    assert len(dropped) == MISSING

    # SIGINT's default action restored in the child: a test run started in the background of a
    # shell inherits SIGINT ignored, and Python then raises no KeyboardInterrupt
    restore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(
        cmd + ["--corpus", str(corpus_copy)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=restore_sigint,
    )
    deadline = time.time() + 300
    n_cached = lambda: sqlite3.connect(str(cache)).execute("SELECT COUNT(*) FROM vectors").fetchone()[0]  # noqa: E731
    start_n = n_cached()
    while time.time() < deadline and n_cached() < start_n + 2:  # one batch of two stored
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out[-1000:], err[-2000:])
    assert "--continue" in err and "可以提问了" in err
    assert current_stamp(index) != before
    served = LocalStore.load(index, verify=True)
    assert len(served.article_map) == 32 and served.dense_coverage() < 1  # the BM25-first version

    resumed = subprocess.run(cmd + ["--corpus", str(corpus_copy)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["chunks_new"] == 0 and report["dense_coverage"] == 1.0  # pages already in; vectors completed
    assert 0 < report["chunks_embedded"] <= MISSING - 2  # the killed run's vectors were kept
    assert len(LocalStore.load(index).article_map) == 32
