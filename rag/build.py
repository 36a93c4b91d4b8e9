"""Write path: corpus files -> articles -> chunks -> tokens + embeddings -> published index.

Incremental: the previous published index is reused when it was built with the same embedder,
tokenizer and chunking; only files whose fingerprint (content hash + sidecar year/date)
changed are re-segmented, and only chunks whose text is not in the embedding cache are
embedded. Anything else (another embedder, chunk size, schema) rebuilds from scratch, still
reusing cached vectors for unchanged chunk texts.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .chunk import chunk_articles
from .dense import dense_identity, embed_chunks
from .embed import EmbeddingCache, Embedder, make_embedder
from .load import load_corpus
from .records import Article, Page
from .segment import file_article as whole_file_article
from .segment import segment_page
from .settings import Settings
from .store import IndexDamaged, IndexProblem, Store, new_store, open_store
from .tokenize import tokenizer_for

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class BuildReport:
    version: str | None  # where the new version lives (folder, Milvus collection); None: unchanged
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

    @property
    def changed(self) -> bool:
        return bool(self.files_added or self.files_changed or self.files_removed)


def index_identity(settings: Settings, embedder: Embedder) -> dict[str, Any]:
    """Manifest keys that must match for an index to be reused or served."""
    return {
        "embedder": embedder.id,
        "tokenizer": tokenizer_for(settings.corpus_profile).id,
        "profile": settings.corpus_profile.id,
        "chunking": {"size": settings.chunk_size, "overlap": settings.chunk_overlap, "split": settings.split_articles},
        "faiss_index": settings.faiss_index,
        "dense_unit": dense_identity(settings),
    }


def articles_of(page: Page, settings: Settings) -> list[Article]:
    profile = settings.corpus_profile
    if settings.split_articles:
        return segment_page(page, profile)
    return [whole_file_article(page, profile)]


def fingerprint(page: Page) -> str:
    return f"{page.sha256}:{page.year}:{page.date}"


def open_cache(path: Path, embedder: Embedder, warnings: list[str]) -> EmbeddingCache:
    """The embedding cache; a damaged one is moved aside (kept for inspection) and started afresh,
    with a warning: losing cached vectors costs time, never correctness."""
    if path.exists():
        problem = ""
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                row = db.execute("PRAGMA quick_check").fetchone()
                db.execute("SELECT COUNT(*) FROM vectors").fetchone()
            if not row or row[0] != "ok":
                problem = str(row[0] if row else "no answer")
        except sqlite3.DatabaseError as exc:
            problem = str(exc)
        if problem:
            aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
            os.replace(path, aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            warnings.append(f"向量缓存 {path} 已损坏（{problem[:100]}），已移到 {aside.name} 并重新建立；本次需重新计算向量")
    return EmbeddingCache(path, embedder.id, embedder.dim)


def build_index(
    settings: Settings,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    full: bool = False,
) -> BuildReport:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    embedder = embedder or make_embedder(settings)
    timings["load_embedder"] = time.perf_counter() - t0

    t = time.perf_counter()
    loaded = load_corpus(settings.corpus_dir, follow_symlinks=settings.follow_symlinks, max_file_bytes=settings.max_file_bytes)
    timings["load"] = time.perf_counter() - t

    identity = index_identity(settings, embedder)
    store: Store | None = None
    healed: list[str] = []
    if not full:
        try:
            store = open_store(settings, expect=identity, verify=True)
        except IndexDamaged as exc:
            healed.append(f"已发布的索引已损坏，本次从语料和向量缓存完整重建：{exc}")
        except IndexProblem as exc:
            log.info("full build: %s", exc)
    previous_files: dict[str, str] = dict(store.stats().files) if store else {}
    if store is None:
        store = new_store(settings, dim=embedder.dim)

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
        warnings=healed + list(getattr(loaded, "warnings", [])),
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
    tokenizer = tokenizer_for(settings.corpus_profile)
    for i, c in enumerate(chunks):
        tokens.append(tokenizer.tokenize(c.indexed_text))
        if progress and (i % 200 == 0 or i + 1 == len(chunks)):
            progress("tokenize", i + 1, len(chunks))
    timings["tokenize"] = time.perf_counter() - t

    t = time.perf_counter()
    cache = open_cache(settings.embedding_cache, embedder, report.warnings)
    try:
        vectors, computed = embed_chunks(
            articles,
            chunks,
            settings,
            embedder,
            cache,
            progress=(lambda d, n: progress("embed", d, n)) if progress else None,
        )
    finally:
        cache.close()
    timings["embed"] = time.perf_counter() - t

    t = time.perf_counter()
    store.add(articles, chunks, vectors, tokens)
    report.chunks_new = len(chunks)
    report.chunks_embedded = computed
    if report.changed or not previous_files:
        manifest = {
            **identity,
            "files": current,
            "corpus_dir": str(settings.corpus_dir),
            "build_seconds": round(time.perf_counter() - t0, 2),
        }
        report.version = store.publish(manifest)
    timings["publish"] = time.perf_counter() - t
    stats = store.stats()
    report.n_articles, report.n_chunks = stats.n_articles, stats.n_chunks
    timings["total"] = time.perf_counter() - t0
    report.timings_s = {k: round(v, 3) for k, v in timings.items()}
    return report
