"""What every index backend offers the rest of the system, and the records it trades in.

Everything above the store (build, retrieve, answer, engine, app, eval) reaches an index only
through `Store`; a backend is one module that implements it and passes the conformance suite
in `rag/store/testing.py`. A `Filter` is plain data: each backend translates it itself (numpy
masks for the local store, a boolean expression for Milvus), so nothing runs a Python predicate
per chunk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..records import Article, Chunk


class IndexProblem(RuntimeError):
    """Base for index problems a user can fix (missing, stale, built with other settings)."""


class IndexMissing(IndexProblem):
    pass


class IndexMismatch(IndexProblem):
    pass


class IndexDamaged(IndexProblem):
    """A file of the published version is missing, truncated or garbled; the message names it."""


class StoreUnavailable(IndexProblem):
    """The backend cannot be reached (a Milvus server that does not answer)."""


_DATE = re.compile(r"^\s*((?:19|20)\d\d)(?:[-/.年](\d{1,2}))?(?:[-/.月](\d{1,2}))?")


def date_key(date: str) -> int:
    """ISO date or prefix -> yyyymmdd int; unknown parts are 00 ("2020-05" -> 20200500), no date -> 0.

    So a month-only date sorts before every day of that month: a filter from 2020-05-01 leaves it
    out, one from 2020-05-00 (or from year 2020) keeps it."""
    m = _DATE.match(date or "")
    if not m:
        return 0
    year, month, day = int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)
    return year * 10000 + month * 100 + day


def _date_bound(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 10000000 <= int(value) <= 99991231:
        raise ValueError(f"{name} must be a yyyymmdd integer such as 20200528, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Filter:
    """Restricts a search to years, source files and/or a date range; empty means no restriction.

    Bounds are inclusive. A chunk whose year (date) is unknown fails any year (date) bound.
    Dates are yyyymmdd ints (see `date_key` for partial dates)."""

    year_from: int | None = None
    year_to: int | None = None
    sources: frozenset[str] = field(default_factory=frozenset)
    date_from: int | None = None
    date_to: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", frozenset(self.sources))
        object.__setattr__(self, "date_from", _date_bound("date_from", self.date_from))
        object.__setattr__(self, "date_to", _date_bound("date_to", self.date_to))
        for name in ("year_from", "year_to"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))):
                raise ValueError(f"{name} must be an integer year, got {v!r}")

    @property
    def active(self) -> bool:
        return bool(self.sources) or any(
            v is not None for v in (self.year_from, self.year_to, self.date_from, self.date_to)
        )


@dataclass(frozen=True)
class StoreStats:
    """What the status line and the build report show about the served version."""

    backend: str  # "local" | "milvus"
    version: str  # the published version's name ("" before the first publish)
    n_articles: int
    n_chunks: int
    embedder: str = ""
    published_at: str = ""
    files: Mapping[str, str] = field(default_factory=dict)  # source -> fingerprint, as built


@runtime_checkable
class Store(Protocol):
    """An index of articles and their chunks: write, then publish; search the published version.

    Writes (`add`, `delete_*`) are staged on the object and become visible to other readers
    only at `publish`, which replaces the published version atomically (a new folder and the
    CURRENT pointer; a new collection and the alias)."""

    def add(
        self,
        articles: Sequence[Article],
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        tokens: Sequence[Sequence[str]],
    ) -> None: ...

    def delete_article(self, article_id: str) -> int:
        """Remove an article and its chunks; returns the number of chunks removed."""
        ...

    def set_vectors(self, chunk_ids: Sequence[str], vectors: np.ndarray) -> None:
        """Give chunks added without a vector (a NaN row in `add`) their vectors; a backend that
        cannot serve partial vectors (Milvus) never has such chunks and refuses."""
        ...

    def missing_vectors(self) -> list[Chunk]:
        """Chunks that have no vector yet (a BM25-first version), in index order."""
        ...

    def has_vectors(self, chunk_ids: Sequence[str]) -> list[bool]:
        """Whether each chunk has a vector (unknown ids: False)."""
        ...

    def dense_coverage(self) -> float:
        """Share of chunks that have a vector: 1.0 when complete; dense search sees only those."""
        ...

    def delete_source(self, source: str) -> int:
        """Remove every article of one corpus file; returns the number of chunks removed."""
        ...

    def search_sparse(self, tokens: Sequence[str], k: int, where: Filter = Filter()) -> list[tuple[Chunk, float]]:
        """BM25 (rank-bm25's BM25Okapi) over the query tokens, best first, only scores > 0."""
        ...

    def search_dense(self, vector: np.ndarray, k: int, where: Filter = Filter()) -> list[tuple[Chunk, float]]:
        """Inner product with the (normalised) chunk vectors, best first."""
        ...

    def article(self, article_id: str) -> Article | None:
        """The article with that id, None when the index has none."""
        ...

    def articles(self) -> Iterator[Article]: ...

    def sources(self) -> list[str]:
        """Corpus files that contributed articles, sorted."""
        ...

    def stats(self) -> StoreStats: ...

    def idf(self, tokens: Iterable[str]) -> dict[str, float]:
        """BM25 idf of each token the index knows (unknown tokens are left out)."""
        ...

    def max_idf(self) -> float:
        """The largest idf in the index (what an unseen, hence rare, word is compared with)."""
        ...

    def publish(self, manifest: dict[str, Any]) -> str:
        """Make the staged state the published version; returns where it lives (folder, collection)."""
        ...

    def version(self) -> str:
        """The version this object reads ("" when nothing was published yet)."""
        ...
