"""What the dense side embeds (`dense_unit`), and how each chunk gets its one vector.

Embedding is most of a build's time (issue 13), and the 60-character overlap of chunks makes
the embedder read ≈20% of the text twice. The store keeps one vector per chunk (BM25 and
fusion work on chunks), so every unit below is mapped back to chunks by one rule: a chunk's
vector is the mean of the vectors of the units it overlaps, weighted by the characters they
share, then L2-normalised.

- `chunk`: the chunk's own text (title + passage), as BM25 sees it. One unit = one chunk.
- `window`: the body packed into sentence-aligned windows of `chunk_size` characters without
  overlap (title + window); a chunk straddling two windows gets their weighted mean.
- `lead`: one vector per article, title + the first `dense_lead_chars` characters (whole
  sentences); every chunk of the article carries it.
- `sentence`: each sentence alone (no title); a chunk's vector is the mean of its sentences'.
  A max over sentences would need a store with several vectors per chunk.

The measured cost and quality of each are in README ("Chunking for dense").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .chunk import chunk_article, sentence_units
from .embed import EmbeddingCache, Embedder, embed_with_cache
from .records import Article, Chunk
from .settings import Settings


@dataclass(frozen=True)
class Unit:
    """A text the embedder reads, and the span of its article's body it stands for."""

    article_id: str
    start: int
    end: int
    text: str


def _titled(article: Article, text: str) -> str:
    return f"{article.title}\n{text}" if article.title else text


def dense_identity(settings: Settings) -> str:
    """The manifest's record of what the vectors stand for: an index built otherwise is rebuilt."""
    return f"lead:{settings.dense_lead_chars}" if settings.dense_unit == "lead" else settings.dense_unit


def dense_units(article: Article, unit: str, settings: Settings) -> list[Unit]:
    """The units of one article for `unit` in window | lead | sentence (`chunk` needs none)."""
    body = article.body
    if unit == "window":
        return [Unit(article.id, c.start, c.end, _titled(article, c.text)) for c in chunk_article(article, settings.chunk_size, 0)]
    if unit == "lead":
        first = chunk_article(article, settings.dense_lead_chars, 0)
        lead = first[0].text if first else ""
        return [Unit(article.id, 0, max(len(body), 1), _titled(article, lead))]
    if unit == "sentence":
        units = [Unit(article.id, a, b, body[a:b]) for a, b in sentence_units(body, settings.chunk_size)]
        return units or [Unit(article.id, 0, 1, article.title)]
    raise ValueError(f"dense_unit must be chunk, window, lead or sentence, got {unit!r}")


def chunk_vectors(chunks: Sequence[Chunk], units: Sequence[Unit], unit_vecs: np.ndarray) -> np.ndarray:
    """Each chunk's vector: the overlap-weighted mean of its article's units, normalised.

    A chunk that overlaps no unit (an empty body) takes its article's first unit."""
    by_article: dict[str, list[int]] = {}
    for i, u in enumerate(units):
        by_article.setdefault(u.article_id, []).append(i)
    out = np.zeros((len(chunks), unit_vecs.shape[1] if len(unit_vecs) else 0), dtype=np.float32)
    for r, c in enumerate(chunks):
        idx = by_article.get(c.article_id, [])
        if not idx:
            continue
        starts = np.array([units[i].start for i in idx])
        ends = np.array([units[i].end for i in idx])
        w = np.clip(np.minimum(ends, c.end) - np.maximum(starts, c.start), 0, None).astype(np.float32)
        if w.sum() <= 0:
            w[0] = 1.0
        v = w @ unit_vecs[idx]
        out[r] = v / max(float(np.linalg.norm(v)), 1e-12)
    return out


def embed_chunks(
    articles: Sequence[Article],
    chunks: Sequence[Chunk],
    settings: Settings,
    embedder: Embedder,
    cache: EmbeddingCache,
    progress: Callable[[int, int], None] | None = None,
    article: Callable[[str], Article | None] | None = None,
) -> tuple[np.ndarray, int]:
    """One vector per chunk, computed from `settings.dense_unit`; returns (vectors, texts embedded now).

    Units other than `chunk` are cut from the chunks' articles: those in `articles`, else looked up
    with `article` (the store's), so a build that embeds only some chunks can pass none."""
    if settings.dense_unit == "chunk":
        return embed_with_cache(embedder, [c.indexed_text for c in chunks], cache, batch_size=settings.embed_batch, progress=progress)
    known = {a.id: a for a in articles}
    needed: list[Article] = []
    for aid in dict.fromkeys(c.article_id for c in chunks):
        found = known.get(aid) or (article(aid) if article else None)
        if found is None:
            raise ValueError(f"dense_unit={settings.dense_unit} needs the article of every chunk; {aid} was not given")
        needed.append(found)
    units = [u for a in needed for u in dense_units(a, settings.dense_unit, settings)]
    unit_vecs, computed = embed_with_cache(embedder, [u.text for u in units], cache, batch_size=settings.embed_batch, progress=progress)
    if not chunks:
        return np.zeros((0, embedder.dim), dtype=np.float32), computed
    return chunk_vectors(chunks, units, unit_vecs), computed


def unit_texts(articles: Sequence[Article], chunks: Sequence[Chunk], settings: Settings) -> list[str]:
    """The texts a build embeds for `settings.dense_unit` (for cost accounting)."""
    if settings.dense_unit == "chunk":
        return [c.indexed_text for c in chunks]
    return [u.text for a in articles for u in dense_units(a, settings.dense_unit, settings)]
