"""Write path: corpus files -> articles -> chunks -> tokens + embeddings -> published index.

Incremental: the previous published index is reused when it was built with the same embedder,
tokenizer and chunking; only files whose fingerprint (content hash + sidecar year/date)
changed are re-segmented, and only chunks whose text is not in the embedding cache are
embedded. Anything else (another embedder, chunk size, schema) rebuilds from scratch, still
reusing cached vectors for unchanged chunk texts.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .chunk import chunk_articles
from .embed import EmbeddingCache, Embedder, embed_with_cache, make_embedder
from .load import load_corpus
from .records import Article, Page
from .segment import segment_page
from .settings import Settings
from .store import IndexProblem, LocalStore
from .tokenize import TOKENIZER_ID, tokenize

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)

_LEADING_DATE = re.compile(r"^\s*((?:19|20)\d\d)[-/年.](\d{1,2})[-/月.](\d{1,2})")


@dataclass
class BuildReport:
    version: Path | None
    n_files: int
    n_articles: int
    n_chunks: int
    files_added: list[str] = field(default_factory=list)
    files_changed: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chunks_embedded: int = 0  # computed now (cache misses)
    chunks_new: int = 0  # chunks of added/changed files
    timings_s: dict[str, float] = field(default_factory=dict)
    embed_tokens: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.files_added or self.files_changed or self.files_removed)


def index_identity(settings: Settings, embedder: Embedder) -> dict[str, Any]:
    """Manifest keys that must match for an index to be reused or served."""
    return {
        "embedder": embedder.id,
        "tokenizer": TOKENIZER_ID,
        "chunking": {"size": settings.chunk_size, "overlap": settings.chunk_overlap, "split": settings.split_articles},
        "faiss_index": settings.faiss_index,
    }


def whole_file_article(page: Page) -> Article:
    """One article per file, for corpora that are already one document a file (news dumps)."""
    text = page.text.replace("\r\n", "\n").strip()
    first_line = text.split("\n", 1)[0].strip()
    title = first_line if len(first_line) <= 60 else first_line[:40]
    date, year = page.date, page.year
    m = _LEADING_DATE.match(text)
    if m and not date:
        date = f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
        year = int(m.group(1))
    return Article(
        id=Article.make_id(page.source, title, text),
        title=title,
        body=text,
        source=page.source,
        date=date,
        year=year,
    )


def articles_of(page: Page, settings: Settings) -> list[Article]:
    return segment_page(page) if settings.split_articles else [whole_file_article(page)]


def fingerprint(page: Page) -> str:
    return f"{page.sha256}:{page.year}:{page.date}"


def build_index(
    settings: Settings,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    full: bool = False,
) -> BuildReport:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    embedder = embedder or make_embedder(settings.embedder)
    timings["load_embedder"] = time.perf_counter() - t0

    t = time.perf_counter()
    loaded = load_corpus(settings.corpus_dir, follow_symlinks=settings.follow_symlinks, max_file_bytes=settings.max_file_bytes)
    timings["load"] = time.perf_counter() - t

    identity = index_identity(settings, embedder)
    store: LocalStore | None = None
    if not full:
        try:
            store = LocalStore.load(settings.index_dir, expect=identity)
        except IndexProblem as exc:
            log.info("full build: %s", exc)
    previous_files: dict[str, str] = dict(store.manifest.get("files", {})) if store else {}
    if store is None:
        store = LocalStore(dim=embedder.dim, faiss_kind=settings.faiss_index, path=settings.index_dir)
        store.bm25_params = store.bm25_params.__class__(settings.bm25_k1, settings.bm25_b, settings.bm25_epsilon)

    current = {p.source: fingerprint(p) for p in loaded.pages}
    report = BuildReport(
        version=None,
        n_files=len(loaded.pages),
        n_articles=0,
        n_chunks=0,
        files_added=sorted(set(current) - set(previous_files)),
        files_changed=sorted(s for s in current if s in previous_files and previous_files[s] != current[s]),
        files_removed=sorted(set(previous_files) - set(current)),
        skipped=list(loaded.skipped),
        warnings=list(getattr(loaded, "warnings", [])),
    )
    for source in report.files_changed + report.files_removed:
        store.delete_source(source)

    wanted = set(report.files_added + report.files_changed)
    todo = [p for p in loaded.pages if p.source in wanted]
    t = time.perf_counter()
    articles: list[Article] = []
    for i, page in enumerate(todo):
        articles.extend(articles_of(page, settings))
        if progress:
            progress("segment", i + 1, len(todo))
    chunks = chunk_articles(articles, settings.chunk_size, settings.chunk_overlap)
    timings["segment_chunk"] = time.perf_counter() - t

    t = time.perf_counter()
    tokens = []
    for i, c in enumerate(chunks):
        tokens.append(tokenize(c.indexed_text))
        if progress and (i % 200 == 0 or i + 1 == len(chunks)):
            progress("tokenize", i + 1, len(chunks))
    timings["tokenize"] = time.perf_counter() - t

    t = time.perf_counter()
    cache = EmbeddingCache(settings.embedding_cache, embedder.id, embedder.dim)
    try:
        vectors, computed = embed_with_cache(
            embedder,
            [c.indexed_text for c in chunks],
            cache,
            batch_size=settings.embed_batch,
            progress=(lambda d, n: progress("embed", d, n)) if progress else None,
        )
    finally:
        cache.close()
    timings["embed"] = time.perf_counter() - t

    t = time.perf_counter()
    store.add(articles, chunks, vectors, tokens)
    report.chunks_new = len(chunks)
    report.chunks_embedded = computed
    if report.changed or store.path is None or not previous_files:
        manifest = {
            **identity,
            "files": current,
            "corpus_dir": str(settings.corpus_dir),
            "build_seconds": round(time.perf_counter() - t0, 2),
        }
        report.version = store.publish(manifest, root=settings.index_dir)
    timings["publish"] = time.perf_counter() - t
    report.n_articles = len(store.articles)
    report.n_chunks = len(store.chunks)
    timings["total"] = time.perf_counter() - t0
    report.timings_s = {k: round(v, 3) for k, v in timings.items()}
    return report
