"""Records that flow through the pipeline: Page -> Article -> Chunk -> Hit -> Answer.

They are small frozen dataclasses, normalised once at the boundary where they are
made, so later stages never re-clean or re-guess.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any


def short_hash(*parts: str, n: int = 16) -> str:
    """Content hash used for ids: stable across rebuilds while the content is unchanged."""
    h = hashlib.sha1()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:n]


@dataclass(frozen=True)
class Page:
    """One decoded corpus file, before it is split into articles."""

    source: str  # path relative to the corpus root, with forward slashes
    text: str  # decoded, not yet cleaned
    encoding: str
    sha256: str  # of the raw bytes: the manifest's change detector
    year: int | None = None  # from a sidecar file, else inferred
    date: str = ""  # ISO date or prefix from a sidecar ("2020-06-03", "2020-06")


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    body: str  # cleaned text; paragraphs separated by "\n"
    source: str
    byline: str = ""  # 记者/通讯员 line, as printed
    date: str = ""  # "2020-05-28", "2020-05" or "" when unknown
    year: int | None = None
    order: int = 0  # position on the page

    @staticmethod
    def make_id(source: str, title: str, body: str) -> str:
        return short_hash(source, title, body)


@dataclass(frozen=True)
class Chunk:
    """A passage of one article; start/end are character offsets into Article.body."""

    id: str
    article_id: str
    text: str
    start: int
    end: int
    title: str
    source: str
    date: str = ""
    year: int | None = None

    @property
    def indexed_text(self) -> str:
        """What BM25 and the embedder see: the title travels with every chunk."""
        return f"{self.title}\n{self.text}" if self.title else self.text


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and its rank in the fused list."""

    chunk: Chunk
    score: float
    rank: int


@dataclass(frozen=True)
class Citation:
    n: int
    article_id: str
    title: str
    date: str
    source: str
    quote: str  # verbatim passage of the article body
    start: int  # offsets of quote in Article.body
    end: int


@dataclass
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    contexts: list[Hit] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    mode: str = "extractive"  # "extractive" | "llm" | "llm-fallback"
    kind: str = ""  # what the question asks for (number, date, ...)
    note: str = ""  # why a fallback or an abstention happened
    retrieval_question: str = ""  # the standalone question actually searched
    lead: str = ""  # the short answer (13.92亿元, 5月25日, a name, list items), cut from a quote
    nearby: dict[str, str] | None = None  # abstained on a nearby fact: {"reason", "asked", "found"}
    dense_coverage: float = 1.0  # share of the index's chunks with a vector (< 1 while a build embeds)

    def to_json(self) -> dict[str, Any]:
        """The answer contract shared by rag.ask --json, the web chat API and the eval harness."""
        return {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "mode": self.mode,
            "kind": self.kind,
            "note": self.note,
            "retrieval_question": self.retrieval_question or self.question,
            "lead": self.lead,
            "nearby": self.nearby,
            "dense_coverage": round(self.dense_coverage, 4),
            "citations": [asdict(c) for c in self.citations],
            "contexts": [
                {
                    "rank": h.rank,
                    "chunk_id": h.chunk.id,
                    "article_id": h.chunk.article_id,
                    "title": h.chunk.title,
                    "date": h.chunk.date,
                    "source": h.chunk.source,
                    "text": h.chunk.text,
                    "start": h.chunk.start,
                    "end": h.chunk.end,
                    "score": round(h.score, 6),
                }
                for h in self.contexts
            ],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }
