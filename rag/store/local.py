"""The local store: FAISS for dense search, a BM25 weight matrix for sparse search, JSON records.

The index is a folder of plain files (no pickle):

    index/CURRENT                  name of the published version (replaced atomically)
    index/v-<stamp>/manifest.json  schema version, embedder, tokenizer, settings, file hashes
    index/v-<stamp>/articles.jsonl, chunks.jsonl    records as UTF-8 JSON lines
    index/v-<stamp>/vectors.npy    float32 chunk vectors (allow_pickle=False); zero rows for chunks
                                   not embedded yet
    index/v-<stamp>/has_vector.npy which chunks have a vector (a progressive build fills it in)
    index/v-<stamp>/dense.faiss    faiss.write_index of the vectors that exist (Flat or HNSW)
    index/v-<stamp>/tf_*.npy, vocab.json   BM25 term-frequency matrix (CSR) and vocabulary
    index/v-<stamp>/sources.json   page -> article -> chunk rows (what an incremental build deletes by)
    index/v-<stamp>/s-<stamp>.*    segments an incremental build added (rag/store/local_update.py);
                                   the manifest lists the segments and the rows deleted from each
    index/cache/embeddings.sqlite  embedding cache shared by builds

A build writes a new version folder completely, then replaces CURRENT with os.replace: a
crash or Ctrl-C mid-build leaves the previous version published and loadable. Readers resolve
CURRENT once per load, so a running app never sees a half-written index. Files whose content
did not change since the version this store was loaded from (or last published) are hard links
to that version's files, not rewritten: a progressive build that only adds vectors rewrites
only the vector files.

Dense search covers only chunks that have a vector: FAISS holds those rows, and its ids map
back to chunk positions, so a version published before embedding finished (BM25 first) answers
from BM25 plus the vectors there are.

A `Filter` becomes a boolean mask over per-chunk columns (year, date, source code) kept as
numpy arrays next to the chunk list: one vectorised comparison per bound.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import time
from contextlib import contextmanager
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import scipy.sparse as sp

from ..bm25 import BM25Index, BM25Params, term_matrix
from ..records import Article, Chunk
from .protocol import Filter, IndexDamaged, IndexMismatch, IndexMissing, IndexProblem, StoreStats, date_key

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CURRENT = "CURRENT"
# the files of a version, by what changes them: records (add/delete), terms (add/delete),
# vectors (add/delete/set_vectors); a group unchanged since the base version is hard-linked.
# A full publish writes one segment under these names; an incremental one (local_update.py)
# adds segments whose files carry a prefix ("s-<stamp>.chunks.jsonl") and records deleted rows.
SEGMENT_FILES: dict[str, tuple[str, ...]] = {
    "records": ("articles.jsonl", "chunks.jsonl", "sources.json"),
    "terms": ("tf_data.npy", "tf_indices.npy", "tf_indptr.npy"),
    "vectors": ("vectors.npy", "has_vector.npy"),
}
FILE_GROUPS: dict[str, tuple[str, ...]] = {
    "records": SEGMENT_FILES["records"],
    "terms": (*SEGMENT_FILES["terms"], "vocab.json"),
    "vectors": (*SEGMENT_FILES["vectors"], "dense.faiss"),
}


def seg_file(segment: str, name: str) -> str:
    """A segment's file name in the version folder (the full segment "" has none of a prefix)."""
    return f"{segment}.{name}" if segment else name


@dataclass
class LocalStore:
    """FAISS for dense search, a CSC BM25 weight matrix for sparse search, JSON for records."""

    dim: int
    faiss_kind: str = "flat"
    bm25_params: BM25Params = BM25Params()
    article_map: dict[str, Article] = field(default_factory=dict)
    chunks: list[Chunk] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    tf: sp.csr_matrix = field(default_factory=lambda: sp.csr_matrix((0, 0)))
    vocab: dict[str, int] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    has_vector: np.ndarray | None = None  # bool per chunk; None: every chunk has one

    def __post_init__(self) -> None:
        if self.vectors.size == 0:
            self.vectors = np.zeros((0, self.dim), dtype=np.float32)
        if self.has_vector is None:
            self.has_vector = np.ones(len(self.vectors), dtype=bool)
        self._bm25: BM25Index | None = None
        self._faiss: faiss.Index | None = None
        self._dense_rows: np.ndarray | None = None
        self._chunk_pos: dict[str, int] = {}
        self._columns: dict[str, np.ndarray] | None = None
        self._source_codes: dict[str, int] = {}
        # file groups changed since `_base` (the version loaded or last published): only these
        # are written at publish, the others are hard-linked from `_base`
        self._dirty: set[str] = set(FILE_GROUPS)
        self._base: Path | None = None
        self._base_files: dict[str, dict[str, Any]] = {}
        # the JSON line each record was read from (kept by `load(keep_lines=True)`, for a build):
        # rewriting 40k records costs a join instead of 40k dataclass-to-JSON conversions
        self._lines: dict[str, str] = {}

    # -- write path -------------------------------------------------------------------
    def add(self, articles, chunks, vectors, tokens) -> None:
        """`vectors`: one row per chunk; a row of NaN (or `vectors=None`: every row) means the
        chunk has no vector yet (`set_vectors` adds it later)."""
        if vectors is None:
            vectors = np.full((len(chunks), self.dim), np.nan, dtype=np.float32)
        if len(chunks) != len(vectors) or len(chunks) != len(tokens):
            raise ValueError("chunks, vectors and tokens must have the same length")
        if len(chunks) and vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, store expects {self.dim}")
        vectors = np.asarray(vectors, dtype=np.float32)
        present = ~np.isnan(vectors).any(axis=1) if len(vectors) else np.zeros(0, dtype=bool)
        vectors = np.where(present[:, None], vectors, 0.0).astype(np.float32) if len(vectors) else vectors
        for a in articles:
            self.article_map[a.id] = a
        new_tf = term_matrix(tokens, self.vocab)
        old = self.tf
        if old.shape[1] < len(self.vocab):
            old = sp.csr_matrix((old.data, old.indices, old.indptr), shape=(old.shape[0], len(self.vocab)))
        self.tf = sp.vstack([old, new_tf], format="csr")
        self.chunks.extend(chunks)
        self.vectors = np.vstack([self.vectors, vectors])
        self.has_vector = np.concatenate([self.has_vector, present])
        self._invalidate()

    def delete_article(self, article_id: str) -> int:
        return self._delete({article_id})

    def delete_source(self, source: str) -> int:
        return self._delete({a.id for a in self.article_map.values() if a.source == source})

    def _delete(self, article_ids: set[str]) -> int:
        """One pass over the chunks for any number of articles (a removed page has dozens)."""
        if not article_ids:
            return 0
        keep = np.fromiter((c.article_id not in article_ids for c in self.chunks), dtype=bool, count=len(self.chunks))
        removed = int((~keep).sum())
        for a in article_ids:
            self.article_map.pop(a, None)
        self._dirty.add("records")
        if removed:
            self.chunks = [c for c, k in zip(self.chunks, keep) if k]
            self.vectors = self.vectors[keep]
            self.has_vector = self.has_vector[keep]
            self.tf = self.tf[np.flatnonzero(keep)]
            self._invalidate()
        return removed

    def positions(self) -> dict[str, int]:
        """chunk id -> position in `chunks`."""
        if not self._chunk_pos:
            self._chunk_pos = {c.id: i for i, c in enumerate(self.chunks)}
        return self._chunk_pos

    def set_vectors(self, chunk_ids, vectors) -> None:
        """Give chunks already in the store their vectors (a progressive build, after `add`)."""
        if not len(chunk_ids):
            return
        if not self._chunk_pos:
            self._chunk_pos = {c.id: i for i, c in enumerate(self.chunks)}
        rows = np.fromiter((self._chunk_pos[c] for c in chunk_ids), dtype=np.int64, count=len(chunk_ids))
        self.vectors[rows] = np.asarray(vectors, dtype=np.float32)
        self.has_vector[rows] = True
        self._faiss = None
        self._dense_rows = None
        self._dirty.add("vectors")

    def missing_vectors(self) -> list[Chunk]:
        """Chunks that have no vector yet, in index order."""
        return [self.chunks[i] for i in np.flatnonzero(~self.has_vector)]

    def has_vectors(self, chunk_ids) -> list[bool]:
        if not self._chunk_pos:
            self._chunk_pos = {c.id: i for i, c in enumerate(self.chunks)}
        pos = self._chunk_pos
        return [bool(self.has_vector[pos[c]]) if c in pos else False for c in chunk_ids]

    def dense_coverage(self) -> float:
        """Share of chunks that have a vector (1.0 for an empty store)."""
        n = len(self.has_vector)
        return float(self.has_vector.sum()) / n if n else 1.0

    def _invalidate(self) -> None:
        self._bm25 = None
        self._faiss = None
        self._dense_rows = None
        self._chunk_pos = {}
        self._columns = None
        self._dirty.update(FILE_GROUPS)

    # -- read path ----------------------------------------------------------------------
    @property
    def bm25(self) -> BM25Index:
        if self._bm25 is None:
            self._bm25 = BM25Index(self.tf, self.vocab, self.bm25_params)
        return self._bm25

    @property
    def dense_rows(self) -> np.ndarray:
        """Chunk position of each FAISS id (the chunks that have a vector)."""
        if self._dense_rows is None:
            self._dense_rows = np.flatnonzero(self.has_vector)
        return self._dense_rows

    @property
    def dense_index(self) -> faiss.Index:
        if self._faiss is None:
            rows = self.dense_rows
            self._faiss = build_faiss(self.vectors if len(rows) == len(self.vectors) else self.vectors[rows], self.faiss_kind)
        return self._faiss

    def article(self, article_id: str) -> Article | None:
        return self.article_map.get(article_id)

    def articles(self) -> Iterator[Article]:
        return iter(list(self.article_map.values()))

    def sources(self) -> list[str]:
        return sorted({a.source for a in self.article_map.values()})

    def stats(self) -> StoreStats:
        m = self.manifest
        return StoreStats(
            backend="local",
            version=self.version(),
            n_articles=len(self.article_map),
            n_chunks=len(self.chunks),
            embedder=m.get("embedder", ""),
            published_at=m.get("published_at", ""),
            files=dict(m.get("files", {})),
        )

    def version(self) -> str:
        return self.manifest.get("version", "")

    def idf(self, tokens: Iterable[str]) -> dict[str, float]:
        bm25 = self.bm25
        out: dict[str, float] = {}
        for tok in tokens:
            j = bm25.vocab.get(tok)
            if j is not None:
                out[tok] = float(bm25.idf[j])
        return out

    def max_idf(self) -> float:
        idf = self.bm25.idf
        return float(idf.max()) if len(idf) else 1.0

    def chunk(self, chunk_id: str) -> Chunk:
        if not self._chunk_pos:
            self._chunk_pos = {c.id: i for i, c in enumerate(self.chunks)}
        return self.chunks[self._chunk_pos[chunk_id]]

    def _column(self, name: str) -> np.ndarray:
        if self._columns is None:
            self._source_codes = {}
            codes = [self._source_codes.setdefault(c.source, len(self._source_codes)) for c in self.chunks]
            n = len(self.chunks)
            self._columns = {
                "year": np.fromiter((c.year or 0 for c in self.chunks), dtype=np.int64, count=n),
                "date": np.fromiter((date_key(c.date) for c in self.chunks), dtype=np.int64, count=n),
                "source": np.asarray(codes, dtype=np.int64),
            }
        return self._columns[name]

    def _mask(self, where: Filter) -> np.ndarray | None:
        """The filter as a boolean mask over chunk positions (None: no restriction)."""
        if not where.active:
            return None
        mask = np.ones(len(self.chunks), dtype=bool)
        if where.sources:
            self._column("source")
            wanted = [self._source_codes[s] for s in where.sources if s in self._source_codes]
            mask &= np.isin(self._column("source"), np.asarray(wanted, dtype=np.int64))
        for col, lo, hi in (("year", where.year_from, where.year_to), ("date", where.date_from, where.date_to)):
            if lo is None and hi is None:
                continue
            values = self._column(col)
            mask &= values > 0
            if lo is not None:
                mask &= values >= lo
            if hi is not None:
                mask &= values <= hi
        return mask

    def search_sparse(self, tokens, k, where=Filter()):
        if not self.chunks:
            return []
        scores = self.bm25.scores(tokens)
        mask = self._mask(where)
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
            if not mask.any():
                return []
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.chunks[i], float(scores[i])) for i in top if scores[i] > 0]

    def search_dense(self, vector, k, where=Filter()):
        rows = self.dense_rows
        if not len(rows):
            return []
        q = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        mask = self._mask(where)
        params = None
        if mask is not None:
            allowed = np.flatnonzero(mask if len(rows) == len(self.chunks) else mask[rows]).astype(np.int64)
            if allowed.size == 0:
                return []
            selector = faiss.IDSelectorBatch(allowed)
            params = (
                faiss.SearchParametersHNSW(sel=selector, efSearch=max(64, k))
                if self.faiss_kind == "hnsw"
                else faiss.SearchParameters(sel=selector)
            )
        k = min(k, len(rows))
        scores, ids = self.dense_index.search(q, k, params=params) if params else self.dense_index.search(q, k)
        return [(self.chunks[rows[i]], float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]

    # -- persistence --------------------------------------------------------------------
    def publish(self, manifest: dict[str, Any], root: Path | None = None) -> str:
        """Write a complete new version next to the current one, then switch CURRENT atomically."""
        root = Path(root or self.path or "index")
        root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        tmp = root / f".tmp-v-{stamp}"
        final = root / f"v-{stamp}"
        tmp.mkdir()
        try:
            manifest = {
                **manifest,
                "schema_version": SCHEMA_VERSION,
                "dim": self.dim,
                "faiss_index": self.faiss_kind,
                "bm25": asdict(self.bm25_params),
                "version": final.name,
                "n_articles": len(self.article_map),
                "n_chunks": len(self.chunks),
                "n_dense": int(self.has_vector.sum()),
                "published_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "segments": [{"name": "", "n_rows": len(self.chunks), "n_articles": len(self.article_map)}],
                "deleted": {},
            }
            files: dict[str, dict[str, Any]] = {}
            for group, names in FILE_GROUPS.items():
                if group not in self._dirty and self._link_from_base(names, tmp, files):
                    continue
                self._write_group(group, tmp)
                for name in names:
                    files[name] = {"size": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)}
            manifest["version_files"] = dict(sorted(files.items()))
            _write_manifest(tmp, manifest)
        except OSError as exc:
            _abandon(tmp, root, exc)
        _switch_current(tmp, final, root)
        self.manifest = manifest
        self.path = root
        self._set_base(final, manifest["version_files"])
        prune_versions(root, keep={final.name})
        log.info("published %s (%d articles, %d chunks)", final, len(self.article_map), len(self.chunks))
        return str(final)

    def _write_group(self, group: str, tmp: Path, segment: str = "") -> None:
        """One group's files; the full segment "" also writes the version-level vocab and FAISS
        index, a prefixed one (an incremental publish) only its own rows."""
        f = lambda name: tmp / seg_file(segment, name)  # noqa: E731
        if group == "records":
            _write_lines(f("articles.jsonl"), (self._line("a", a) for a in self.article_map.values()))
            _write_lines(f("chunks.jsonl"), (self._line("c", c) for c in self.chunks))
            f("sources.json").write_text(json.dumps(self.source_rows(), ensure_ascii=False), encoding="utf-8")
        elif group == "terms":
            tf = self.tf.tocsr()
            np.save(f("tf_data.npy"), tf.data.astype(np.float32), allow_pickle=False)
            np.save(f("tf_indices.npy"), tf.indices.astype(np.int64), allow_pickle=False)
            np.save(f("tf_indptr.npy"), tf.indptr.astype(np.int64), allow_pickle=False)
            if not segment:
                (tmp / "vocab.json").write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")
        else:
            np.save(f("vectors.npy"), self.vectors, allow_pickle=False)
            np.save(f("has_vector.npy"), self.has_vector.astype(bool), allow_pickle=False)
            if not segment:
                faiss.write_index(self.dense_index, str(tmp / "dense.faiss"))

    def source_rows(self) -> dict[str, dict[str, list[int]]]:
        """source -> article id -> its chunk rows: what an incremental build deletes by, without
        reading the records (an article without chunks has no rows)."""
        out: dict[str, dict[str, list[int]]] = {}
        for a in self.article_map.values():
            out.setdefault(a.source, {})[a.id] = []
        for i, c in enumerate(self.chunks):
            out.setdefault(c.source, {}).setdefault(c.article_id, []).append(i)
        return out

    def _line(self, kind: str, record: Article | Chunk) -> str:
        line = self._lines.get(f"{kind}:{record.id}")
        return line if line is not None else json.dumps(vars(record), ensure_ascii=False) + "\n"

    def _link_from_base(self, names: tuple[str, ...], tmp: Path, files: dict[str, dict[str, Any]]) -> bool:
        """Hard-link an unchanged group's files from the base version, checksums carried over
        from its manifest (checked when the base was loaded); False: write them instead."""
        if self._base is None or any(n not in self._base_files for n in names):
            return False
        try:
            for name in names:
                src = self._base / name
                if src.stat().st_size != self._base_files[name]["size"]:
                    raise OSError(f"{src} changed size")
                os.link(src, tmp / name)
        except OSError as exc:
            log.info("writing instead of linking: %s", exc)
            for name in names:
                (tmp / name).unlink(missing_ok=True)
            return False
        files.update({n: dict(self._base_files[n]) for n in names})
        return True

    def _set_base(self, version: Path, version_files: dict[str, dict[str, Any]], linkable: bool = True) -> None:
        """`linkable`: the version is one full segment, so its files are this store's files."""
        self._base, self._base_files = (version, dict(version_files)) if linkable else (None, {})
        self._dirty = set() if linkable else set(FILE_GROUPS)

    @classmethod
    def load(cls, root: Path, expect: dict[str, Any] | None = None, verify: bool = False, keep_lines: bool = False) -> "LocalStore":
        """Load the published version; `expect` holds manifest keys that must match (embedder...).

        Every file's size is checked against the manifest (cheap); with `verify` its sha256 too
        (the build does, so a garbled file is found and rebuilt). A damaged file raises
        IndexDamaged naming it."""
        version, manifest = read_manifest(root, expect, verify)
        files = manifest.get("version_files", {})
        _check_files(version, files, verify)
        with _reading(version / "vocab.json"):
            vocab = json.loads((version / "vocab.json").read_text(encoding="utf-8"))
        segments = manifest.get("segments") or [{"name": "", "n_rows": manifest["n_chunks"], "n_articles": manifest["n_articles"]}]
        deleted = manifest.get("deleted") or {}
        lines: dict[str, str] = {}
        articles: dict[str, Article] = {}
        chunks: list[Chunk] = []
        tfs, vecs, hass, keeps = [], [], [], []
        for seg in segments:
            name = seg["name"]
            path = lambda n: version / seg_file(name, n)  # noqa: E731
            gone = deleted.get(name, {})
            gone_rows, gone_articles = set(gone.get("rows", [])), set(gone.get("articles", []))
            with _reading(path("tf_data.npy")):
                tf = sp.csr_matrix(
                    (
                        np.load(path("tf_data.npy"), allow_pickle=False),
                        np.load(path("tf_indices.npy"), allow_pickle=False),
                        np.load(path("tf_indptr.npy"), allow_pickle=False),
                    ),
                    shape=(seg["n_rows"], len(vocab)),
                )
            with _reading(path("articles.jsonl")):
                rows = _read_jsonl(path("articles.jsonl"), lines, "a" if keep_lines else "")
                if len(rows) != seg["n_articles"]:
                    raise ValueError(f"{len(rows)} articles, the manifest says {seg['n_articles']}")
                articles.update((a["id"], Article(**a)) for a in rows if a["id"] not in gone_articles)
            with _reading(path("chunks.jsonl")):
                rows = _read_jsonl(path("chunks.jsonl"), lines, "c" if keep_lines else "")
                if len(rows) != seg["n_rows"]:
                    raise ValueError(f"{len(rows)} chunks, the manifest says {seg['n_rows']}")
                keep = np.ones(len(rows), dtype=bool)
                if gone_rows:
                    keep[sorted(gone_rows)] = False
                chunks.extend(Chunk(**c) for c, k in zip(rows, keep) if k)
            with _reading(path("vectors.npy")):
                v = np.load(path("vectors.npy"), allow_pickle=False)
                if v.shape != (seg["n_rows"], manifest["dim"]):
                    raise ValueError(f"shape {v.shape}")
            h = np.ones(seg["n_rows"], dtype=bool)
            if seg_file(name, "has_vector.npy") in files or path("has_vector.npy").exists():
                with _reading(path("has_vector.npy")):
                    h = np.load(path("has_vector.npy"), allow_pickle=False).astype(bool)
                    if h.shape != (seg["n_rows"],):
                        raise ValueError(f"shape {h.shape}")
            tfs.append(tf), vecs.append(v), hass.append(h), keeps.append(keep)
        whole = len(segments) == 1 and not deleted
        keep_all = np.concatenate(keeps) if keeps else np.zeros(0, dtype=bool)
        with _reading(version / "manifest.json"):
            if len(articles) != manifest["n_articles"]:
                raise ValueError(f"{len(articles)} articles, the manifest says {manifest['n_articles']}")
            if len(chunks) != manifest["n_chunks"] or any(c.article_id not in articles for c in chunks):
                raise ValueError("chunks do not match the manifest or the articles")
        tf = tfs[0] if whole else sp.vstack(tfs, format="csr")[np.flatnonzero(keep_all)]
        vectors = vecs[0] if whole else np.vstack(vecs)[keep_all]
        has_vector = hass[0] if whole else np.concatenate(hass)[keep_all]
        store = cls(
            dim=manifest["dim"],
            faiss_kind=manifest["faiss_index"],
            bm25_params=BM25Params(**manifest["bm25"]),
            article_map=articles,
            chunks=chunks,
            vectors=vectors,
            tf=tf,
            vocab=vocab,
            manifest=manifest,
            path=root,
            has_vector=has_vector,
        )
        if "dense.faiss" in files:  # a full version; an incremental one's flat index is built from the vectors
            with _reading(version / "dense.faiss"):
                store._faiss = faiss.read_index(str(version / "dense.faiss"))
                if store._faiss.ntotal != len(store.dense_rows):
                    raise ValueError(f"{store._faiss.ntotal} vectors for {len(store.dense_rows)} chunks that have one")
        store._set_base(version, files, linkable=whole and "dense.faiss" in files)
        store._lines = lines
        return store


def build_faiss(vectors: np.ndarray, kind: str) -> faiss.Index:
    dim = vectors.shape[1]
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 64
    elif kind == "fp16":
        index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


_VERSION_NAME = re.compile(r"v-[A-Za-z0-9_.-]+")
REPAIR = "运行 `python -m rag.index` 即可从语料和向量缓存重建（不需要 --full）"


def current_version(root: Path) -> Path:
    """The published version folder; CURRENT may only name a version folder inside `root`."""
    pointer = Path(root) / CURRENT
    if not pointer.is_file():
        raise IndexMissing(f"no index found at {root}: build it with `python -m rag.index`")
    with _reading(pointer):
        name = pointer.read_text(encoding="utf-8").strip()
    version = Path(root) / name
    if not _VERSION_NAME.fullmatch(name) or version.resolve().parent != Path(root).resolve():
        raise IndexDamaged(f"索引指针 {pointer} 指向索引目录之外或不是版本目录（{name[:80]!r}）：{REPAIR}")
    if version.is_dir() and not (version / "manifest.json").is_file():
        raise IndexDamaged(f"索引文件 {version / 'manifest.json'} 缺失：{REPAIR}")
    if not (version / "manifest.json").is_file():
        raise IndexMissing(f"index pointer {pointer} names a missing version: rebuild with `python -m rag.index`")
    return version


def current_stamp(root: Path) -> str:
    """Cheap change detector for hot reload: the published version's name, '' if none."""
    try:
        return (Path(root) / CURRENT).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def prune_versions(root: Path, keep: set[str], keep_last: int = 2) -> None:
    """Old versions go, but the newest `keep_last` stay so a reader mid-load is not pulled from under."""
    versions = sorted(p for p in root.glob("v-*") if p.is_dir())
    for p in versions[:-keep_last]:
        if p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)
    for p in root.glob(".tmp-v-*"):
        if time.time() - p.stat().st_mtime > 3600:
            shutil.rmtree(p, ignore_errors=True)


def _write_lines(path: Path, lines) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write("".join(lines))
        fh.flush()
        os.fsync(fh.fileno())


def _read_jsonl(path: Path, lines: dict[str, str] | None = None, kind: str = "") -> list[dict[str, Any]]:
    """The rows; with `kind`, also each row's line in `lines` under "<kind>:<id>"."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                rows.append(row)
                if kind and lines is not None:
                    lines[f"{kind}:{row['id']}"] = line if line.endswith("\n") else line + "\n"
    return rows


def read_manifest(root: Path, expect: dict[str, Any] | None, verify: bool) -> tuple[Path, dict[str, Any]]:
    """The published version's folder and manifest, checked: its checksum (with `verify`), the
    schema version and the `expect`ed keys (embedder, tokenizer...)."""
    version = current_version(root)
    sidecar = version / "manifest.sha256"
    if verify and sidecar.is_file() and sidecar.read_text(encoding="utf-8").strip() != _sha256(version / "manifest.json"):
        raise IndexDamaged(f"索引文件 {version / 'manifest.json'} 的校验和不符（内容被改动）：{REPAIR}")
    with _reading(version / "manifest.json"):
        manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    manifest["version"] = version.name
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise IndexMismatch(
            f"index at {root} has schema version {manifest.get('schema_version')}, this code reads "
            f"version {SCHEMA_VERSION}: rebuild it with `python -m rag.index`"
        )
    for key, want in (expect or {}).items():
        if manifest.get(key) != want:
            raise IndexMismatch(
                f"index at {root} was built with {key}={manifest.get(key)!r}, but the settings say "
                f"{want!r}: rebuild it with `python -m rag.index`"
            )
    return version, manifest


def _write_manifest(tmp: Path, manifest: dict) -> None:
    (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    # the manifest cannot hold its own checksum: a sidecar does, checked with verify
    (tmp / "manifest.sha256").write_text(_sha256(tmp / "manifest.json"), encoding="utf-8")
    _fsync_dir(tmp)


def _abandon(tmp: Path, root: Path, exc: OSError) -> None:
    """A version that could not be written: the half-written folder goes at once (left behind it
    would keep a full disk full), and a full disk is said in one line."""
    shutil.rmtree(tmp, ignore_errors=True)
    if exc.errno == errno.ENOSPC:
        raise IndexProblem(f"磁盘空间不足，无法写入新索引 {root}（已删除临时目录，已发布的索引不变）：请释放空间后重新运行 `python -m rag.index`") from None
    raise exc


def _switch_current(tmp: Path, final: Path, root: Path) -> None:
    """Publishing: the finished folder gets its name, then CURRENT points at it, both atomically."""
    os.replace(tmp, final)
    pointer = root / f".{CURRENT}.tmp"
    pointer.write_text(final.name, encoding="utf-8")
    os.replace(pointer, root / CURRENT)
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_files(version: Path, expected: dict[str, dict[str, Any]], verify: bool) -> None:
    for name, want in expected.items():
        path = version / name
        if not path.is_file():
            raise IndexDamaged(f"索引文件 {path} 缺失：{REPAIR}")
        size = path.stat().st_size
        if size != want["size"]:
            raise IndexDamaged(f"索引文件 {path} 大小为 {size} 字节，应为 {want['size']} 字节（被截断或改动）：{REPAIR}")
        if verify and _sha256(path) != want["sha256"]:
            raise IndexDamaged(f"索引文件 {path} 的校验和不符（内容被改动）：{REPAIR}")


@contextmanager
def _reading(path: Path):
    """Any failure to read or parse `path` becomes one IndexDamaged that names it."""
    try:
        yield
    except IndexDamaged:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, UnicodeDecodeError) as exc:
        what = "缺失" if isinstance(exc, FileNotFoundError) else f"无法读取：{type(exc).__name__}: {str(exc)[:120]}"
        raise IndexDamaged(f"索引文件 {path} {what}：{REPAIR}") from None
