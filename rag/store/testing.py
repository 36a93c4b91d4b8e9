"""The conformance suite every Store backend passes, as mixin test classes (pytest).

Modelled on Haystack's document-store mixins: a backend's test module defines one class that
inherits every mixin and says how to reach its backend (`backend`, `extra_settings`,
`release`, `crash_code`); the same assertions then run on every backend. The data are hand
made (four articles, one-hot vectors, fixed tokens), so expected ranks and BM25 scores are
exact: scores are compared with `rag.bm25.BM25Index`, itself checked against rank-bm25.

A test that only reads takes `shared` (published once per class); one that changes the index or
needs an empty one takes `published` or `settings` (its own index, in `tmp_path`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ..bm25 import BM25Index, BM25Params, term_matrix
from ..records import Article, Chunk
from ..settings import PROJECT_ROOT, Settings
from . import Filter, IndexMissing, Store, new_store, open_store, published_version

DIM = 8
ODD_SOURCE = 'odd "quoted" \\ name.txt'


@dataclass(frozen=True)
class Doc:
    article: Article
    chunks: list[Chunk]
    tokens: list[list[str]]
    vectors: np.ndarray


def _doc(n: int, source: str, year: int | None, date: str, token_lists: list[list[str]]) -> Doc:
    body = "。".join("".join(t) for t in token_lists)
    article = Article(id=f"art{n}", title=f"标题{n}", body=body, source=source, date=date, year=year, byline="记者 张三", order=n)
    chunks, vecs, pos = [], [], 0
    for i, toks in enumerate(token_lists):
        text = "".join(toks)
        chunks.append(Chunk(f"art{n}-c{i}", article.id, text, pos, pos + len(text), article.title, source, date, year))
        vec = np.zeros(DIM, dtype=np.float32)
        vec[(2 * n + i) % DIM] = 1.0
        vecs.append(vec)
        pos += len(text) + 1
    return Doc(article, chunks, token_lists, np.vstack(vecs))


def corpus() -> list[Doc]:
    return [
        _doc(0, "2020/a.txt", 2020, "2020-05-28", [["经开区", "专项债", "13.92", "亿元"], ["经开区", "债券", "发行"]]),
        _doc(1, "2021/b.txt", 2021, "2021-03", [["经开区", "无人机", "测试", "活动"]]),
        _doc(2, "2021/b.txt", 2021, "2021-07-01", [["营商环境", "经开区", "优化"]]),
        _doc(3, ODD_SOURCE, None, "", [["无人机", "比赛", "无人机"]]),
    ]


def extra_doc() -> Doc:
    return _doc(5, "2022/new.txt", 2022, "2022-01-15", [["经开区", "新能源", "汽车", "产量"]])


def add_docs(store: Store, docs: list[Doc]) -> None:
    store.add(
        [d.article for d in docs],
        [c for d in docs for c in d.chunks],
        np.vstack([d.vectors for d in docs]),
        [t for d in docs for t in d.tokens],
    )


def publish_corpus(settings: Settings) -> Store:
    """`corpus()` published as the first version of an empty index, opened as a reader."""
    store = new_store(settings, dim=DIM)
    add_docs(store, corpus())
    store.publish({"files": {"2020/a.txt": "h-a", "2021/b.txt": "h-b", ODD_SOURCE: "h-odd"}})
    return open_store(settings)


def reference_bm25(docs: list[Doc]) -> tuple[BM25Index, list[Chunk]]:
    vocab: dict[str, int] = {}
    tf = term_matrix([t for d in docs for t in d.tokens], vocab)
    return BM25Index(tf, vocab, BM25Params()), [c for d in docs for c in d.chunks]


class StoreTestBase:
    """What a backend's test class provides; the mixins below use only this and the protocol."""

    backend = "local"

    def extra_settings(self, tmp_path: Path) -> dict[str, Any]:
        return {}

    def release(self, settings: Settings) -> None:
        """Let another process open the index (Milvus Lite serves one process)."""

    # code run in a child process before `publish`, making it die (os._exit(9)) half-way
    crash_code = "import numpy as np, os\nnp.save = lambda *a, **k: os._exit(9)\n"

    def make_settings(self, root: Path) -> Settings:
        return Settings(corpus_dir=root, index_dir=root / "index", store=self.backend, **self.extra_settings(root))

    @pytest.fixture
    def settings(self, tmp_path) -> Settings:
        return self.make_settings(tmp_path)

    @pytest.fixture
    def published(self, settings) -> Store:
        """The corpus published in this test's own index: the test may change it."""
        return publish_corpus(settings)

    @pytest.fixture(scope="class")
    @classmethod
    def shared_settings(cls, tmp_path_factory) -> Iterator[Settings]:
        suite = cls()  # the backend hooks are instance methods
        settings = suite.make_settings(tmp_path_factory.mktemp(f"{cls.backend}-shared"))
        yield settings
        suite.release(settings)

    @pytest.fixture(scope="class")
    @classmethod
    def shared(cls, shared_settings) -> Store:
        """The corpus published once for the class, for the tests that only read it (a Milvus Lite
        publish is about a second: pymilvus polls each new vector index every 0.5 s)."""
        return publish_corpus(shared_settings)


class RoundTripTest(StoreTestBase):
    def test_nothing_published_is_index_missing(self, settings):
        assert published_version(settings) == ""
        with pytest.raises(IndexMissing, match="python -m rag.index"):
            open_store(settings)

    def test_records_round_trip(self, shared, shared_settings):
        docs = corpus()
        stats = shared.stats()
        assert (stats.backend, stats.n_articles, stats.n_chunks) == (self.backend, 4, 5)
        assert stats.files == {"2020/a.txt": "h-a", "2021/b.txt": "h-b", ODD_SOURCE: "h-odd"}
        assert shared.version() == published_version(shared_settings) != ""
        for d in docs:
            assert shared.article(d.article.id) == d.article
        assert shared.article("no-such-article") is None
        assert sorted(a.id for a in shared.articles()) == [d.article.id for d in docs]
        assert shared.sources() == sorted({"2020/a.txt", "2021/b.txt", ODD_SOURCE})

    def test_dense_top1_is_the_exact_chunk(self, shared):
        for d in corpus():
            for chunk, vec in zip(d.chunks, d.vectors):
                (top, score), *_ = shared.search_dense(vec, 1)
                assert top == chunk and score == pytest.approx(1.0, abs=1e-5)

    def test_k_larger_than_the_index(self, shared):
        assert len(shared.search_dense(np.ones(DIM, dtype=np.float32) / DIM**0.5, 50)) == 5
        assert len(shared.search_sparse(["经开区"], 50)) == 4

    def test_empty_store_searches_return_nothing(self, settings):
        store = new_store(settings, dim=DIM)
        assert store.search_sparse(["经开区"], 5) == [] and store.search_dense(np.ones(DIM), 5) == []
        assert store.stats().n_chunks == 0 and store.version() == ""


class SparseSearchTest(StoreTestBase):
    def test_scores_equal_reference_bm25(self, shared):
        ref, chunks = reference_bm25(corpus())
        for query in (["专项债"], ["经开区", "无人机"], ["无人机", "无人机", "比赛"], ["营商环境", "经开区", "13.92"]):
            want = ref.scores(query)
            got = {c.id: s for c, s in shared.search_sparse(query, 10)}
            expected = {chunks[i].id: want[i] for i in np.flatnonzero(want > 0)}
            assert got.keys() == expected.keys()
            for cid, score in expected.items():
                assert got[cid] == pytest.approx(score, rel=1e-5)

    def test_top1_and_order(self, shared):
        hits = shared.search_sparse(["专项债", "13.92"], 3)
        assert hits[0][0].id == "art0-c0"
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)

    def test_unknown_tokens_find_nothing(self, shared):
        assert shared.search_sparse(["从未出现"], 5) == []
        assert shared.search_sparse([], 5) == []

    def test_idf_and_max_idf_match_reference(self, shared):
        ref, _ = reference_bm25(corpus())
        got = shared.idf(["经开区", "无人机", "专项债", "从未出现"])
        assert set(got) == {"经开区", "无人机", "专项债"}
        for tok, value in got.items():
            assert value == pytest.approx(float(ref.idf[ref.vocab[tok]]), rel=1e-9)
        assert shared.max_idf() == pytest.approx(float(ref.idf.max()), rel=1e-9)


class FilterTest(StoreTestBase):
    CASES = [
        (Filter(year_from=2021, year_to=2021), {"art1-c0", "art2-c0"}),
        (Filter(year_from=2021), {"art1-c0", "art2-c0"}),
        (Filter(year_to=2020), {"art0-c0", "art0-c1"}),
        (Filter(year_from=1990, year_to=1991), set()),
        (Filter(sources=frozenset({"2021/b.txt"})), {"art1-c0", "art2-c0"}),
        (Filter(sources=frozenset({ODD_SOURCE})), {"art3-c0"}),
        (Filter(sources=frozenset({"missing.txt"})), set()),
        (Filter(year_from=2020, sources=frozenset({"2020/a.txt", ODD_SOURCE})), {"art0-c0", "art0-c1"}),
        (Filter(date_from=20210101), {"art1-c0", "art2-c0"}),
        (Filter(date_from=20210301), {"art2-c0"}),  # "2021-03" is 20210300: before March 1st
        (Filter(date_from=20210300, date_to=20210331), {"art1-c0"}),
        (Filter(date_to=20200528), {"art0-c0", "art0-c1"}),
    ]

    @pytest.mark.parametrize("where,expected", CASES)
    def test_dense_and_sparse_respect_the_filter(self, shared, where, expected):
        dense = shared.search_dense(np.ones(DIM, dtype=np.float32) / DIM**0.5, 10, where)
        assert {c.id for c, _ in dense} == expected
        query = ["经开区", "无人机", "专项债"]
        unfiltered = {c.id for c, _ in shared.search_sparse(query, 10)}
        assert {c.id for c, _ in shared.search_sparse(query, 10, where)} == expected & unfiltered

    def test_filter_rejects_bad_dates(self):
        with pytest.raises(ValueError, match="yyyymmdd"):
            Filter(date_from=2021)


class IncrementalTest(StoreTestBase):
    def test_delete_source_add_publish(self, published, settings):
        before = published.version()
        assert published.delete_source("2021/b.txt") == 2
        add_docs(published, [extra_doc()])
        published.publish({"files": {"2020/a.txt": "h-a", ODD_SOURCE: "h-odd", "2022/new.txt": "h-new"}})
        fresh = open_store(settings)
        assert fresh.version() != before and fresh.version() == published_version(settings)
        assert sorted(a.id for a in fresh.articles()) == ["art0", "art3", "art5"]
        assert fresh.stats().n_chunks == 4 and fresh.article("art1") is None
        assert all(c.source != "2021/b.txt" for c, _ in fresh.search_sparse(["经开区", "无人机"], 10))
        assert fresh.search_sparse(["新能源"], 1)[0][0].id == "art5-c0"
        docs = [d for d in corpus() if d.article.source != "2021/b.txt"] + [extra_doc()]
        ref, chunks = reference_bm25(docs)
        want = ref.scores(["经开区", "汽车"])
        got = {c.id: s for c, s in fresh.search_sparse(["经开区", "汽车"], 10)}
        assert got == pytest.approx({chunks[i].id: want[i] for i in np.flatnonzero(want > 0)}, rel=1e-5)
        assert fresh.idf(["经开区"])["经开区"] == pytest.approx(float(ref.idf[ref.vocab["经开区"]]), rel=1e-9)

    def test_delete_article(self, published, settings):
        assert published.delete_article("art0") == 2
        assert published.delete_article("no-such-article") == 0
        published.publish({"files": {}})
        fresh = open_store(settings)
        assert fresh.article("art0") is None and fresh.stats().n_chunks == 3
        assert fresh.search_sparse(["专项债"], 5) == []


class PublishTest(StoreTestBase):
    def test_reader_keeps_its_version_until_it_reopens(self, published, settings):
        reader = open_store(settings)
        writer = open_store(settings)
        writer.delete_source(ODD_SOURCE)
        writer.publish({"files": {}})
        assert published_version(settings) == writer.version() != reader.version()
        assert {c.id for c, _ in reader.search_sparse(["比赛"], 5)} == {"art3-c0"}  # old version still whole
        assert open_store(settings).search_sparse(["比赛"], 5) == []

    def test_build_killed_midway_leaves_the_old_version_published(self, published, settings, tmp_path):
        before = published.version()
        self.release(settings)
        script = textwrap.dedent(
            f"""
            import os, sys
            from rag.settings import Settings
            from rag.store import open_store
            from rag.store.testing import add_docs, extra_doc
            settings = Settings(**{json.dumps({k: str(v) for k, v in self._settings_kwargs(settings).items()})})
            store = open_store(settings)
            store.delete_source("2020/a.txt")
            add_docs(store, [extra_doc()])
            """
        ) + self.crash_code + 'store.publish({"files": {}})\nos._exit(0)\n'
        done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 9, done.stderr[-2000:]
        assert published_version(settings) == before
        old = open_store(settings)
        assert old.version() == before and old.search_sparse(["专项债"], 1)[0][0].id == "art0-c0"
        # the next build publishes normally over the leftovers
        old.delete_source("2020/a.txt")
        old.publish({"files": {}})
        assert open_store(settings).search_sparse(["专项债"], 1) == []

    @staticmethod
    def _settings_kwargs(settings: Settings) -> dict[str, Any]:
        return {
            "corpus_dir": settings.corpus_dir,
            "index_dir": settings.index_dir,
            "store": settings.store,
            "milvus_uri": settings.milvus_uri,
            "milvus_collection": settings.milvus_collection,
            "milvus_bm25": settings.milvus_bm25,
        }


class StoreConformance(RoundTripTest, SparseSearchTest, FilterTest, IncrementalTest, PublishTest):
    """Every mixin: what a backend's test class inherits."""
