"""Write path: corpus files -> articles -> chunks -> tokens + embeddings -> published index.

Incremental: the previous published index is reused when it was built with the same embedder,
tokenizer and chunking; a file whose size and mtime (and its sidecar's) match the last build is
not even read, only files whose fingerprint (content hash + sidecar year/date) changed are
re-segmented, and only chunks whose text is not in the embedding cache are embedded. Anything
else (another embedder, chunk size, schema) rebuilds from scratch, still reusing cached vectors.

Progressive (issue 13): embedding is ~95% of a first build, so the local store publishes a
version as soon as the chunks are tokenized — it answers with BM25 (and the vectors the cache
already had) — then embeds what is missing and publishes again every `dense_publish_chunks`
chunks or `dense_publish_seconds`. A killed build leaves the last published version serving;
the next `rag.index` (or `--continue`) embeds only what still lacks a vector, from the cache
where the killed run got to. Milvus gets every vector before its one publish, as before.

One build at a time per index folder (`rag.buildlock`), for the CLI and the archive page alike.
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

import numpy as np

from .buildlock import BuildLock
from .chunk import chunk_articles
from .dense import dense_identity, embed_chunks
from .embed import EmbeddingCache, Embedder, make_embedder, text_hash
from .load import FileStat, load_corpus
from .records import Article, Page
from .segment import file_article as whole_file_article
from .segment import segment_page
from .settings import Settings
from .store import IndexDamaged, IndexProblem, Store, new_store, open_store
from .tokenize import tokenize_many, tokenizer_for

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
    files_unread: int = 0  # unchanged by size + mtime: not read nor hashed
    versions: list[str] = field(default_factory=list)  # every version published, BM25-first one first
    first_publish_s: float | None = None  # seconds from the start to the first published version
    dense_coverage: float = 1.0  # share of chunks with a vector in the last published version
    dense_pending: int = 0  # chunks still without a vector (--dense-later, or interrupted)

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


DENSE_MODES = ("now", "later", "continue")


def build_index(
    settings: Settings,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    full: bool = False,
    dense: str = "now",
    wait: bool = False,
) -> BuildReport:
    """Build or update the published index; holds the index folder's build lock throughout.

    `dense`: "now" embeds after the BM25-first publish, in this call (the default); "later"
    publishes the BM25 version and stops; "continue" reads no corpus, only embeds what the
    published version lacks. `wait`: queue behind a running build instead of raising BuildLocked."""
    if dense not in DENSE_MODES:
        raise ValueError(f"dense must be one of {', '.join(DENSE_MODES)}, got {dense!r}")
    warnings: list[str] = []
    with BuildLock(settings.index_dir, wait=wait, poll_s=settings.build_lock_poll, warnings=warnings):
        report = _build(settings, embedder, progress, full, dense)
    report.warnings[:0] = warnings
    return report


def _build(settings: Settings, embedder: Embedder | None, progress: Progress | None, full: bool, dense: str) -> BuildReport:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    embedder = embedder or make_embedder(settings)
    timings["load_embedder"] = time.perf_counter() - t0
    identity = index_identity(settings, embedder)
    # partial vectors need a vector per chunk from its own text: the local store, dense_unit "chunk"
    progressive = settings.store == "local" and settings.dense_unit == "chunk"

    t = time.perf_counter()
    store: Store | None = None
    healed: list[str] = []
    if not full or dense == "continue":
        try:
            store = open_store(settings, expect=identity, verify=True, for_update=True)
        except IndexDamaged as exc:
            if dense == "continue":
                raise
            healed.append(f"已发布的索引已损坏，本次从语料和向量缓存完整重建：{exc}")
        except IndexProblem as exc:
            if dense == "continue":
                raise
            log.info("full build: %s", exc)
    timings["open"] = time.perf_counter() - t
    manifest_before: dict[str, Any] = dict(getattr(store, "manifest", {}) or {}) if store else {}
    previous_files: dict[str, str] = dict(store.stats().files) if store else {}
    if store is None:
        store = new_store(settings, dim=embedder.dim)

    if dense == "continue":
        report = BuildReport(version=None, n_files=len(previous_files), n_articles=0, n_chunks=0, warnings=healed)
        current, stats = previous_files, manifest_before.get("file_stats", {})
        articles, chunks, tokens = [], [], []
    else:
        t = time.perf_counter()
        stat_started = time.time_ns()
        known = _trusted_stats(manifest_before, previous_files, settings) if previous_files else {}
        loaded = load_corpus(
            settings.corpus_dir, follow_symlinks=settings.follow_symlinks, max_file_bytes=settings.max_file_bytes, known=known
        )
        timings["load"] = time.perf_counter() - t
        current = {p.source: fingerprint(p) for p in loaded.pages}
        current.update({rel: previous_files[rel] for rel in loaded.unchanged})
        stats = {rel: list(st) for rel, st in loaded.stats.items()}
        report = BuildReport(
            version=None,
            n_files=len(current),
            n_articles=0,
            n_chunks=0,
            files_added=sorted(set(current) - set(previous_files)),
            files_changed=sorted(s for s in current if s in previous_files and previous_files[s] != current[s]),
            files_removed=sorted(set(previous_files) - set(current)),
            skipped=list(loaded.skipped),
            warnings=healed + list(getattr(loaded, "warnings", [])),
            files_unread=len(loaded.unchanged),
        )
        for source in report.files_changed + report.files_removed:
            store.delete_source(source)

        wanted = set(report.files_added + report.files_changed)
        todo = [p for p in loaded.pages if p.source in wanted]
        t = time.perf_counter()
        articles = []
        for i, page in enumerate(todo):
            articles.extend(articles_of(page, settings))
            if progress:
                progress("segment", i + 1, len(todo))
        chunks = chunk_articles(articles, settings.chunk_size, settings.chunk_overlap)
        timings["segment_chunk"] = time.perf_counter() - t

        t = time.perf_counter()
        tokens = tokenize_many(
            [c.indexed_text for c in chunks],
            settings.corpus_profile,
            workers=settings.tokenize_workers,
            min_parallel=settings.tokenize_parallel_min,
            progress=(lambda d, n: progress("tokenize", d, n)) if progress else None,
        )
        timings["tokenize"] = time.perf_counter() - t
        stats_meta = {"file_stats": stats, "file_stats_at": stat_started}

    cache = open_cache(settings.embedding_cache, embedder, report.warnings)
    try:
        t = time.perf_counter()
        if progressive:
            # vectors the cache already holds go in at once; the rest are NaN rows, filled below
            vectors = np.full((len(chunks), embedder.dim), np.nan, dtype=np.float32)
            found = cache.get_many(list(dict.fromkeys(text_hash(c.indexed_text) for c in chunks)))
            for i, c in enumerate(chunks):
                v = found.get(text_hash(c.indexed_text))
                if v is not None:
                    vectors[i] = v
            pending = len(store.missing_vectors()) + int(np.isnan(vectors[:, 0]).sum()) if len(chunks) else 0
            if dense == "now" and 0 < pending <= settings.dense_inline_chunks:
                # a small update (a page or two): embedding it costs about what a second publish
                # would, so it is published once, complete
                missing = np.flatnonzero(np.isnan(vectors[:, 0]))
                fresh, computed = embed_chunks(articles, [chunks[i] for i in missing], settings, embedder, cache, article=store.article)
                vectors[missing] = fresh
                report.chunks_embedded += computed
        else:
            vectors, computed = embed_chunks(
                articles,
                chunks,
                settings,
                embedder,
                cache,
                progress=(lambda d, n: progress("embed", d, n)) if progress else None,
            )
            report.chunks_embedded += computed
        timings["embed_cached" if progressive else "embed"] = time.perf_counter() - t

        t = time.perf_counter()
        if chunks or articles:
            store.add(articles, chunks, vectors, tokens)
        report.chunks_new = len(chunks)
        base_manifest = {**identity, "files": current, "corpus_dir": str(settings.corpus_dir)}
        if dense != "continue":
            base_manifest.update(stats_meta)
        else:
            base_manifest.update({k: manifest_before[k] for k in ("file_stats", "file_stats_at", "corpus_dir") if k in manifest_before})

        def publish(rate: float | None = None) -> None:
            manifest = {**base_manifest, "build_seconds": round(time.perf_counter() - t0, 2)}
            if rate:
                manifest["dense_progress"] = {"chunks_per_s": round(rate, 4), "at": time.time()}
            report.version = store.publish(manifest)
            report.versions.append(report.version)
            if report.first_publish_s is None:
                report.first_publish_s = round(time.perf_counter() - t0, 3)
            if progress:
                progress("publish", len(report.versions), len(report.versions))

        # a touched but unchanged page: a version of hard links records its new mtime, so that
        # the next build need not read it again
        touched = progressive and dense != "continue" and bool(previous_files) and stats != manifest_before.get("file_stats")
        if dense != "continue" and (report.changed or not previous_files or healed or touched):
            publish()
        timings["publish"] = time.perf_counter() - t

        if progressive and dense != "later":
            t = time.perf_counter()
            report.chunks_embedded += _embed_missing(settings, embedder, store, cache, progress, publish)
            timings["embed"] = time.perf_counter() - t
    finally:
        cache.close()
    stats_now = store.stats()
    report.n_articles, report.n_chunks = stats_now.n_articles, stats_now.n_chunks
    report.dense_coverage = store.dense_coverage()
    report.dense_pending = len(store.missing_vectors())
    timings["total"] = time.perf_counter() - t0
    report.timings_s = {k: round(v, 3) for k, v in timings.items()}
    return report


def _embed_missing(settings: Settings, embedder: Embedder, store: Store, cache: EmbeddingCache, progress: Progress | None, publish) -> int:
    """Embed the chunks that lack a vector, in groups of `dense_check_chunks`, publishing after
    every `dense_publish_chunks` new vectors or `dense_publish_seconds`, and at the end.
    Each batch is committed to the cache as it is computed, so a kill loses at most one."""
    missing = store.missing_vectors()
    total = len(missing)
    if not total:
        return 0
    computed = since = 0
    started = last = time.monotonic()
    step = settings.dense_check_chunks
    for start in range(0, total, step):
        group = missing[start : start + step]
        vecs, n = embed_chunks(
            [],
            group,
            settings,
            embedder,
            cache,
            progress=(lambda d, _n, s=start: progress("embed", s + d, total)) if progress else None,
            article=store.article,
        )
        store.set_vectors([c.id for c in group], vecs)
        computed += n
        since += len(group)
        done = start + len(group)
        if progress:
            progress("embed", done, total)
        now = time.monotonic()
        if done == total or since >= settings.dense_publish_chunks or now - last >= settings.dense_publish_seconds:
            elapsed = now - started
            publish(done / elapsed if elapsed > 0 and done < total else None)
            since, last = 0, time.monotonic()
    return computed


def _trusted_stats(manifest: dict[str, Any], files: dict[str, str], settings: Settings) -> dict[str, FileStat]:
    """Recorded (size, mtime) of the last build's files that can stand in for reading them: not
    for a file modified within `mtime_trust_margin` of that build's start (it may have been
    written again in the same clock tick after it was read)."""
    recorded = manifest.get("file_stats") or {}
    taken_at = int(manifest.get("file_stats_at") or 0)
    margin = int(settings.mtime_trust_margin * 1e9)
    out: dict[str, FileStat] = {}
    for rel, st in recorded.items():
        if rel not in files or not isinstance(st, list) or len(st) != 4:
            continue
        stat = FileStat(*(int(x) for x in st))
        if stat.mtime_ns < taken_at - margin and stat.side_mtime_ns < taken_at - margin:
            out[rel] = stat
    return out
