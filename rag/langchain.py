"""Thin LangChain adapters over the core protocols, so the archive composes with LCEL chains.

The core (rag.embed.Embedder, rag.retrieve.Retriever) does not depend on LangChain; these
wrap it, not the other way round, so the core stays testable without LangChain and an LCEL
upgrade cannot break the CLI or the web chat. langchain-core is a core dependency, so importing
this module needs nothing extra.

    retriever = ArchiveRetriever.from_engine(engine, k=3)
    chain = retriever | RunnableLambda(format_documents)

An ArchiveRetriever holds the store that was loaded when it was made; after a new index is
published, make a new one (Engine.retriever() returns the current one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import Field, field_validator

from .embed import Embedder
from .records import Hit
from .retrieve import Retriever
from .store import Filter

if TYPE_CHECKING:
    from .engine import Engine


class E5Embeddings(Embeddings):
    """Any rag.embed.Embedder as LangChain Embeddings.

    Documents go through embed_passages and queries through embed_query, so e5's
    "passage: " / "query: " prefixes stay right; vectors are L2-normalised, as in the index."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return [[float(x) for x in row] for row in self.embedder.embed_passages(list(texts))]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.embedder.embed_query(text).reshape(-1)]


def hit_to_document(hit: Hit) -> Document:
    c = hit.chunk
    return Document(
        id=c.id,
        page_content=c.text,
        metadata={
            "chunk_id": c.id,
            "article_id": c.article_id,
            "title": c.title,
            "date": c.date,
            "year": c.year,
            "source": c.source,
            "start": c.start,
            "end": c.end,
            "score": float(hit.score),
            "rank": hit.rank,
        },
    )


class ArchiveRetriever(BaseRetriever):
    """rag.retrieve.Retriever as a LangChain retriever: one Document per hit, best first.

    page_content is the chunk text (offsets start/end into the article body); the rest of the
    hit is in metadata. `k`, `where` and `mode` of None use the retriever's settings."""

    # Typed Any and checked below: pydantic builds a schema for a dataclass field by field, and
    # Retriever's Protocol-typed fields (Store, Embedder) have none (not isinstance-checkable).
    retriever: Any
    k: int | None = Field(default=None, gt=0)
    where: Any = Filter()
    mode: Literal["score", "rrf", "sparse", "dense"] | None = None

    @field_validator("retriever")
    @classmethod
    def _is_retriever(cls, value: Any) -> Retriever:
        if not isinstance(value, Retriever):
            raise ValueError(f"retriever must be a rag.retrieve.Retriever, got {type(value).__name__}")
        return value

    @field_validator("where")
    @classmethod
    def _is_filter(cls, value: Any) -> Filter:
        if not isinstance(value, Filter):
            raise ValueError(f"where must be a rag.store.Filter, got {type(value).__name__}")
        return value

    @classmethod
    def from_engine(cls, engine: "Engine", **kwargs: Any) -> "ArchiveRetriever":
        return cls(retriever=engine.retriever(), **kwargs)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.retriever.search(query, k=self.k, where=self.where, mode=self.mode)
        return [hit_to_document(h) for h in hits]


def format_documents(docs: Sequence[Document]) -> str:
    """Documents as numbered lines "[n] 《title》 date: text", for a prompt or a display."""
    return "\n".join(
        f"[{i}] 《{d.metadata.get('title', '')}》 {d.metadata.get('date', '')}: {d.page_content}" for i, d in enumerate(docs, 1)
    )
