"""An index that checks itself: damaged files are named on load, `rag.index` heals them without
--full, a damaged embedding cache is moved aside, CURRENT stays inside the index folder, a full
disk leaves no temporary folder behind (issue 10, item 3)."""

from __future__ import annotations

import errno
import shutil
import sqlite3

import numpy as np
import pytest

from rag.build import build_index
from rag.settings import BUNDLED_CORPUS, Settings
from rag.store import CURRENT, IndexDamaged, IndexProblem, LocalStore, current_stamp
from rag.store.testing import add_docs, corpus

SEED_CORPUS = BUNDLED_CORPUS

FILES = [
    "manifest.json",
    "articles.jsonl",
    "chunks.jsonl",
    "vectors.npy",
    "has_vector.npy",
    "dense.faiss",
    "vocab.json",
    "tf_data.npy",
    "tf_indices.npy",
    "tf_indptr.npy",
]


def damage(path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garble":  # same size, bytes changed in the middle
        mid = len(data) // 2
        path.write_bytes(data[:mid] + bytes(b ^ 0x5A for b in data[mid : mid + 16]) + data[mid + 16 :])
    else:
        path.unlink()


@pytest.fixture
def small_index(tmp_path):
    store = LocalStore(dim=8, path=tmp_path / "index")
    add_docs(store, corpus())
    store.publish({"files": {}})
    return tmp_path / "index"


@pytest.mark.parametrize("how", ["truncate", "garble", "delete"])
@pytest.mark.parametrize("name", FILES)
def test_damaged_file_is_named_on_load(small_index, name, how):
    version = small_index / current_stamp(small_index)
    damage(version / name, how)
    with pytest.raises(IndexDamaged, match=rf"{name}.*python -m rag\.index"):
        LocalStore.load(small_index, verify=True)
    if how != "garble":  # sizes are checked on every load, checksums only with verify
        with pytest.raises(IndexDamaged, match=name):
            LocalStore.load(small_index)


def test_a_removed_article_line_is_caught(small_index):
    path = small_index / current_stamp(small_index) / "articles.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(True)
    path.write_text("".join(lines[1:]), encoding="utf-8")
    with pytest.raises(IndexDamaged, match="articles.jsonl"):
        LocalStore.load(small_index)


@pytest.mark.parametrize("pointer", ["../../elsewhere", "/etc", "v-x/../../other", "manifest.json"])
def test_current_may_only_name_a_version_inside_the_index(small_index, tmp_path, pointer):
    outside = tmp_path / "elsewhere"
    shutil.copytree(small_index / current_stamp(small_index), outside)
    (small_index / CURRENT).write_text(pointer, encoding="utf-8")
    with pytest.raises(IndexDamaged, match="CURRENT"):
        LocalStore.load(small_index)


def test_full_disk_is_one_error_and_leaves_no_temporary_folder(small_index, monkeypatch):
    before = current_stamp(small_index)
    store = LocalStore.load(small_index)
    store.delete_article(store.chunks[0].article_id)  # so that publish has arrays to write, not link

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    with pytest.raises(IndexProblem, match="磁盘空间不足") as err:
        store.publish({"files": {}})
    assert "\n" not in str(err.value)
    assert not list(small_index.glob(".tmp-v-*")) and current_stamp(small_index) == before
    monkeypatch.undo()
    assert LocalStore.load(small_index).stats().n_chunks == 5


ONE_PAGE = SEED_CORPUS / "003_c4740e32d0d06a7b.txt"


@pytest.fixture(scope="module")
def built_one_page(tmp_path_factory, embedder, shared_cache) -> Settings:
    """Page 003 indexed once for the module (read-only: the heal tests work on copies)."""
    root = tmp_path_factory.mktemp("one-page")
    (root / "corpus").mkdir()
    shutil.copy(ONE_PAGE, root / "corpus" / "003.txt")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", cache_dir=shared_cache)
    build_index(settings, embedder=embedder)
    return settings


@pytest.mark.parametrize("how", ["truncate", "garble", "delete"])
@pytest.mark.parametrize("name", FILES)
def test_rag_index_heals_a_damaged_version_without_full(tmp_path, built_one_page, embedder, name, how):
    """A copy of the built index (copytree is faster than a build), one file damaged, rebuilt."""
    settings = built_one_page.replace(index_dir=tmp_path / "index")
    shutil.copytree(built_one_page.index_dir, settings.index_dir)
    damage(settings.index_dir / current_stamp(settings.index_dir) / name, how)
    report = build_index(settings, embedder=embedder)
    assert report.version is not None and report.chunks_embedded == 0
    assert any("损坏" in w and name in w for w in report.warnings)
    healed = LocalStore.load(settings.index_dir, verify=True)
    assert healed.search_sparse(["专项债", "13.92"], 1)[0][0].source == "003.txt"


def test_damaged_embedding_cache_is_moved_aside(tmp_path, embedder):
    """A fresh cache means embedding afresh, so a two-paragraph page keeps that short."""
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    (corpus_dir / "note.txt").write_text("园区简讯\n2021年4月1日 本报讯 经开区举办招聘会，提供岗位300个。\n", encoding="utf-8")
    settings = Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index")
    cache = settings.embedding_cache
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"SQLite format 3\x00" + b"\x13" * 5000)
    report = build_index(settings, embedder=embedder)
    assert report.version is not None and any("向量缓存" in w for w in report.warnings)
    assert list(cache.parent.glob("embeddings.sqlite.damaged-*"))
    with sqlite3.connect(str(cache)) as db:
        assert db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == report.n_chunks > 0
