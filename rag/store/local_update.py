"""An incremental build's view of a published local version: change it without loading it.

Adding one page to a 10k-article index used to read every record and array of the version and
write them all again (issue 13: 8.2 s). A version is instead a list of *segments* (see
local.py): the full one a complete publish writes, plus small ones that incremental builds
add, and the rows deleted from each. `LocalUpdate` reads only the manifest, the vocabulary, each
segment's `sources.json` (which rows belong to which page) and `has_vector.npy`; a publish
hard-links every old segment's files, writes the new rows as one new segment and the deletions
into the manifest. Readers (`LocalStore.load`) put the segments together and drop the deleted
rows, so what they serve equals a full rebuild (BM25 statistics are computed at load over the
rows that are left).

Records or vectors of an old segment are read only when needed: a resumed embedding fills in
vectors of rows that lack one (that segment's vectors are then written again, the rest linked).
The build compacts (a full publish through `LocalStore`) when there are `segment_max` segments
or more than `segment_compact_share` of the rows are deleted, and always for an HNSW index
(its graph covers every vector).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..bm25 import BM25Params
from ..records import Article, Chunk
from .local import (
    SCHEMA_VERSION,
    SEGMENT_FILES,
    LocalStore,
    _abandon,
    _check_files,
    _read_jsonl,
    _reading,
    _sha256,
    _switch_current,
    _write_manifest,
    prune_versions,
    read_manifest,
    seg_file,
)
from .protocol import Filter, StoreStats

log = logging.getLogger(__name__)


class LocalUpdate:
    """Write side of the Store protocol over a published segmented version (see module doc).

    Searches and record look-ups read the published version (loaded on first use): a build
    never needs them."""

    def __init__(self, root: Path, version: Path, manifest: dict[str, Any]):
        self.path = Path(root)
        self.manifest = manifest
        self.dim = int(manifest["dim"])
        self.faiss_kind = manifest["faiss_index"]
        self.bm25_params = BM25Params(**manifest["bm25"])
        self._base = version
        self._files: dict[str, dict[str, Any]] = dict(manifest.get("version_files", {}))
        with _reading(version / "vocab.json"):
            self.vocab: dict[str, int] = json.loads((version / "vocab.json").read_text(encoding="utf-8"))
        self._vocab_written = len(self.vocab)
        self.segments: list[dict[str, Any]] = [dict(s) for s in manifest["segments"]]
        self._sources: dict[str, dict[str, dict[str, list[int]]]] = {}
        self._has: dict[str, np.ndarray] = {}
        for seg in self.segments:
            name = seg["name"]
            with _reading(version / seg_file(name, "sources.json")):
                self._sources[name] = json.loads((version / seg_file(name, "sources.json")).read_text(encoding="utf-8"))
            with _reading(version / seg_file(name, "has_vector.npy")):
                self._has[name] = np.load(version / seg_file(name, "has_vector.npy"), allow_pickle=False).astype(bool)
                if self._has[name].shape != (seg["n_rows"],):
                    raise ValueError(f"shape {self._has[name].shape}")
        deleted = manifest.get("deleted") or {}
        self._gone_rows = {s["name"]: set(deleted.get(s["name"], {}).get("rows", [])) for s in self.segments}
        self._gone_articles = {s["name"]: set(deleted.get(s["name"], {}).get("articles", [])) for s in self.segments}
        self._staged: LocalStore | None = None  # rows added by this build, not yet a segment
        self._live: dict[str, LocalStore] = {}  # segments this object wrote: their arrays stay in memory
        self._vectors: dict[str, np.ndarray] = {}  # old segments' vectors read to be filled in
        self._dirty_vectors: set[str] = set()
        self._where: dict[str, tuple[str, int]] = {}  # chunk id -> (segment, row), for set_vectors
        self._published: LocalStore | None = None

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        root: Path,
        expect: dict[str, Any] | None = None,
        verify: bool = False,
        max_segments: int = 8,
        compact_share: float = 0.2,
    ) -> "LocalUpdate | None":
        """The published version opened for an incremental build; None when it should be
        compacted instead (or is an older layout): then the caller loads it whole."""
        version, manifest = read_manifest(root, expect, verify)
        segments = manifest.get("segments")
        files = manifest.get("version_files", {})
        if not segments or manifest.get("faiss_index") != "flat" or len(segments) >= max_segments:
            return None
        if any(seg_file(s["name"], "sources.json") not in files for s in segments):
            return None
        rows = sum(s["n_rows"] for s in segments)
        gone = sum(len(v.get("rows", [])) for v in (manifest.get("deleted") or {}).values())
        if rows and gone / rows > compact_share:
            return None
        _check_files(version, files, verify)
        return cls(root, version, manifest)

    # -- write path -------------------------------------------------------------------------
    def add(self, articles, chunks, vectors, tokens) -> None:
        if self._staged is None:
            # shares the vocabulary, so new term ids continue the published ones
            self._staged = LocalStore(dim=self.dim, faiss_kind=self.faiss_kind, bm25_params=self.bm25_params, vocab=self.vocab)
        self._staged.add(articles, chunks, vectors, tokens)

    def delete_source(self, source: str) -> int:
        removed = self._staged.delete_source(source) if self._staged else 0
        for seg in self.segments:
            for article_id, rows in self._sources[seg["name"]].get(source, {}).items():
                removed += self._drop(seg["name"], article_id, rows)
        return removed

    def delete_article(self, article_id: str) -> int:
        removed = self._staged.delete_article(article_id) if self._staged else 0
        for seg in self.segments:
            for by_article in self._sources[seg["name"]].values():
                if article_id in by_article:
                    removed += self._drop(seg["name"], article_id, by_article[article_id])
        return removed

    def _drop(self, seg: str, article_id: str, rows: list[int]) -> int:
        if article_id in self._gone_articles[seg]:
            return 0
        self._gone_articles[seg].add(article_id)
        fresh = set(rows) - self._gone_rows[seg]
        self._gone_rows[seg] |= fresh
        return len(fresh)

    def missing_vectors(self) -> list[Chunk]:
        out: list[Chunk] = []
        for seg in self.segments:
            name = seg["name"]
            rows = [int(r) for r in np.flatnonzero(~self._has[name]) if int(r) not in self._gone_rows[name]]
            if name in self._live:
                out.extend(self._live[name].chunks[r] for r in rows)
                continue
            if rows:
                chunks = self._segment_chunks(name)
                for r in rows:
                    self._where[chunks[r].id] = (name, r)
                    out.append(chunks[r])
        if self._staged is not None:
            out.extend(self._staged.missing_vectors())
        return out

    def set_vectors(self, chunk_ids: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        by_store: dict[int, tuple[LocalStore, list[str], list[int]]] = {}
        for i, cid in enumerate(chunk_ids):
            if cid in self._where:
                seg, row = self._where[cid]
                if seg not in self._vectors:
                    with _reading(self._base / seg_file(seg, "vectors.npy")):
                        self._vectors[seg] = np.array(np.load(self._base / seg_file(seg, "vectors.npy"), allow_pickle=False))
                self._vectors[seg][row] = vectors[i]
                self._has[seg][row] = True
                self._dirty_vectors.add(seg)
                continue
            target = next((st for st in [*self._live.values(), self._staged] if st is not None and cid in st.positions()), None)
            if target is None:
                raise KeyError(f"chunk {cid} is not waiting for a vector")
            entry = by_store.setdefault(id(target), (target, [], []))
            entry[1].append(cid), entry[2].append(i)
        for target, ids, idx in by_store.values():
            target.set_vectors(ids, vectors[idx])
            for name, live in self._live.items():
                if live is target:
                    self._has[name] = live.has_vector
                    self._dirty_vectors.add(name)

    def dense_coverage(self) -> float:
        have, total = self._dense_counts()
        return have / total if total else 1.0

    def _dense_counts(self) -> tuple[int, int]:
        """(rows with a vector, rows) over the rows not deleted, staged ones included."""
        have = total = 0
        for seg in self.segments:
            name = seg["name"]
            alive = np.ones(seg["n_rows"], dtype=bool)
            if self._gone_rows[name]:
                alive[sorted(self._gone_rows[name])] = False
            have, total = have + int(self._has[name][alive].sum()), total + int(alive.sum())
        if self._staged is not None:
            have, total = have + int(self._staged.has_vector.sum()), total + len(self._staged.has_vector)
        return have, total

    def has_vectors(self, chunk_ids) -> list[bool]:
        return self._read().has_vectors(chunk_ids)

    # -- counts -------------------------------------------------------------------------------
    def _counts(self) -> tuple[int, int]:
        """(articles, chunks) not deleted, staged ones included."""
        n_chunks = n_articles = 0
        for seg in self.segments:
            name = seg["name"]
            n_chunks += seg["n_rows"] - len(self._gone_rows[name])
            n_articles += seg["n_articles"] - len(self._gone_articles[name])
        if self._staged is not None:
            n_chunks += len(self._staged.chunks)
            n_articles += len(self._staged.article_map)
        return n_articles, n_chunks

    def stats(self) -> StoreStats:
        m = self.manifest
        n_articles, n_chunks = self._counts()
        return StoreStats(
            backend="local",
            version=self.version(),
            n_articles=n_articles,
            n_chunks=n_chunks,
            embedder=m.get("embedder", ""),
            published_at=m.get("published_at", ""),
            files=dict(m.get("files", {})),
        )

    def version(self) -> str:
        return self.manifest.get("version", "")

    # -- publish --------------------------------------------------------------------------------
    def publish(self, manifest: dict[str, Any]) -> str:
        """A new version: old segments hard-linked (their vectors written again where filled in),
        this build's rows as one new segment, the deletions in the manifest; then CURRENT."""
        root = self.path
        stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        tmp, final = root / f".tmp-v-{stamp}", root / f"v-{stamp}"
        staged = self._staged if self._staged is not None and (self._staged.chunks or self._staged.article_map) else None
        new_name = f"s-{stamp}"
        n_articles, n_chunks = self._counts()
        n_dense = self._dense_counts()[0]
        segments = [dict(s) for s in self.segments]
        if staged is not None:
            segments.append({"name": new_name, "n_rows": len(staged.chunks), "n_articles": len(staged.article_map)})
        tmp.mkdir()
        try:
            files: dict[str, dict[str, Any]] = {}

            def record(name: str) -> None:
                files[name] = {"size": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)}

            for seg in self.segments:
                name = seg["name"]
                for group, names in SEGMENT_FILES.items():
                    if group == "vectors" and name in self._dirty_vectors:
                        live = self._live.get(name)
                        np.save(tmp / seg_file(name, "vectors.npy"), live.vectors if live else self._vectors[name], allow_pickle=False)
                        np.save(tmp / seg_file(name, "has_vector.npy"), self._has[name], allow_pickle=False)
                        for n in names:
                            record(seg_file(name, n))
                        continue
                    for n in names:
                        os.link(self._base / seg_file(name, n), tmp / seg_file(name, n))
                        files[seg_file(name, n)] = dict(self._files[seg_file(name, n)])
            if staged is not None:
                for group, names in SEGMENT_FILES.items():
                    staged._write_group(group, tmp, new_name)
                    for n in names:
                        record(seg_file(new_name, n))
            if len(self.vocab) != self._vocab_written:
                (tmp / "vocab.json").write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")
                record("vocab.json")
            else:
                os.link(self._base / "vocab.json", tmp / "vocab.json")
                files["vocab.json"] = dict(self._files["vocab.json"])
            deleted = {
                name: {"rows": sorted(self._gone_rows[name]), "articles": sorted(self._gone_articles[name])}
                for name in (s["name"] for s in self.segments)
                if self._gone_rows[name] or self._gone_articles[name]
            }
            manifest = {
                **manifest,
                "schema_version": SCHEMA_VERSION,
                "dim": self.dim,
                "faiss_index": self.faiss_kind,
                "bm25": asdict(self.bm25_params),
                "version": final.name,
                "n_articles": n_articles,
                "n_chunks": n_chunks,
                "n_dense": n_dense,
                "published_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "segments": segments,
                "deleted": deleted,
                "version_files": dict(sorted(files.items())),
            }
            _write_manifest(tmp, manifest)
        except OSError as exc:
            _abandon(tmp, root, exc)
        _switch_current(tmp, final, root)
        # what was published is the new base; the staged rows are a segment of it, kept in memory
        self.manifest, self._base, self._files = manifest, final, dict(manifest["version_files"])
        self.segments = segments
        if staged is not None:
            self._live[new_name] = staged
            self._sources[new_name] = staged.source_rows()
            self._has[new_name] = staged.has_vector
            self._gone_rows[new_name], self._gone_articles[new_name] = set(), set()
        self._staged = None
        self._vocab_written = len(self.vocab)
        self._dirty_vectors = set()
        self._published = None
        prune_versions(root, keep={final.name})
        log.info("published %s incrementally (%d segments, %d articles, %d chunks)", final, len(segments), n_articles, n_chunks)
        return str(final)

    def _segment_chunks(self, seg: str) -> list[Chunk]:
        path = self._base / seg_file(seg, "chunks.jsonl")
        with _reading(path):
            return [Chunk(**c) for c in _read_jsonl(path)]

    # -- read path: the published version ---------------------------------------------------
    def _read(self) -> LocalStore:
        if self._published is None:
            self._published = LocalStore.load(self.path)
        return self._published

    def search_sparse(self, tokens, k, where=Filter()):
        return self._read().search_sparse(tokens, k, where)

    def search_dense(self, vector, k, where=Filter()):
        return self._read().search_dense(vector, k, where)

    def article(self, article_id: str) -> Article | None:
        return self._read().article(article_id)

    def articles(self) -> Iterator[Article]:
        return self._read().articles()

    def sources(self) -> list[str]:
        return self._read().sources()

    def idf(self, tokens: Iterable[str]) -> dict[str, float]:
        return self._read().idf(tokens)

    def max_idf(self) -> float:
        return self._read().max_idf()
