"""MilvusStore: the same index in Milvus (Lite on a laptop and in tests, a server or cluster in production).

One published version is four collections, named `<alias>_v<stamp>` plus suffixes:

    <alias>_v<stamp>            chunks: chunk_id (VARCHAR pk), article_id, source, title, text,
                                span_start/span_end, year and date (INT64, yyyymmdd, 0 = unknown),
                                date_text, n_tokens, tf (JSON term counts by term id),
                                dense (FLOAT_VECTOR, AUTOINDEX, IP), sparse (SPARSE_FLOAT_VECTOR,
                                SPARSE_INVERTED_INDEX)
    <alias>_v<stamp>__articles  article records as JSON, split into parts of 16k characters
    <alias>_v<stamp>__terms     the vocabulary: token -> (term id, document frequency), packed as
                                JSON into buckets by crc32(token) (one row per ~200 tokens: Lite
                                inserts cost ~2 ms a row, so 300k one-token rows would take minutes)
    <alias>_v<stamp>__meta      the manifest (files, embedder, BM25 statistics) as JSON parts

Readers resolve the alias `<alias>` (Settings.milvus_collection) once per load and then read
that version's collections by name, so a publish (a new version, then `alter_alias`) never
shows them a half-built collection, and a build killed mid-way leaves the old alias serving.

Sparse search, by default ("ours", chosen by measurement: README of the store, bench/README):
BM25 split so that Milvus computes exactly our score. The local score of a chunk is
sum_t count_q(t) * idf(t) * tf(t)(k1+1) / (tf(t) + k1(1-b+b·len/avgdl)); the stored sparse
vector holds the length-normalised tf factor per term id, the query vector count_q(t)·idf(t),
and the inner product is the same sum (float32). idf lives with the query, so a publish that
changes document frequencies does not rewrite the vectors; avgdl is rewritten at each
publish, which copies the kept rows into the new version anyway (that copy is what makes
the alias switch safe). "server" instead lets a Milvus BM25 function over the text with the
jieba analyzer score (other tokens, Lucene's idf): kept for comparison and for clusters where
a copy per publish is too dear.

Connection: Settings.milvus_uri (a `.db` path: Milvus Lite; http(s)://host:19530: a server);
the token is read from RAG_MILVUS_TOKEN at connect time and never stored, printed or logged.
Milvus Lite serves one process: `rag.index` and the app cannot hold the same `.db` at once.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..bm25 import BM25Params
from ..records import Article, Chunk
from ..settings import Settings
from .protocol import Filter, IndexMismatch, IndexMissing, StoreStats, StoreUnavailable, date_key

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CONNECT_TIMEOUT_S = 10.0
LITE_OPEN_ATTEMPTS = 8
BATCH = 2048  # rows per iterator page
# Rows are sent in batches of about 16 MB (Milvus' gRPC limit is 64 MB): Milvus Lite spends about
# a second per insert call whatever its size (measured: 44 calls of <= 512 rows took 47 s).
INSERT_BYTES = 16 << 20
INSERT_ROWS = 50_000
PART_CHARS = 16000  # JSON characters per VARCHAR(65535) row (at most 4 bytes a character)
MAX_TOKEN_BYTES = 1000  # longer tokens (never a real word) are left out of the vocabulary
TOKENS_PER_BUCKET = 200
SUFFIXES = ("__articles", "__terms", "__meta")
POINTER_SUFFIX = "__published"  # Milvus Lite's stand-in for an alias
CHUNK_FIELDS = ["chunk_id", "article_id", "source", "title", "text", "span_start", "span_end", "year", "date", "date_text"]

# One client per URI for the process: Milvus Lite starts one server per .db file and refuses a
# second one, and a server connection is worth reusing across reloads.
_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _pymilvus():
    try:
        import pymilvus
    except ImportError as exc:
        raise ImportError("the Milvus store needs the optional extra: pip install -e '.[milvus]'") from exc
    return pymilvus


def milvus_uri(settings: Settings) -> str:
    return settings.milvus_uri or str(Path(settings.index_dir) / "milvus.db")


def _is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://"))


def connect(settings: Settings):
    """The (cached) client for the configured URI; one clear Chinese error when it cannot connect."""
    uri = milvus_uri(settings)
    if not _is_server(uri):
        if not uri.endswith(".db"):
            raise ValueError(f"milvus_uri must be a Milvus Lite file ending in .db or http(s)://host:port, got {uri!r}")
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        uri = str(Path(uri).resolve())
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(uri)
        if client is not None:
            return client
        pymilvus = _pymilvus()
        # a Lite file is locked until the server of the process that used it last has stopped,
        # which can trail that process's exit by a moment: retry for a few seconds
        attempts = 1 if _is_server(uri) else LITE_OPEN_ATTEMPTS
        for attempt in range(attempts):
            try:
                client = pymilvus.MilvusClient(uri=uri, token=os.environ.get("RAG_MILVUS_TOKEN", ""), timeout=CONNECT_TIMEOUT_S)
                break
            except Exception as exc:  # pymilvus raises MilvusException or ConnectionConfigException
                failure = type(exc).__name__
            if attempt + 1 < attempts:
                time.sleep(1.0)
        else:
            hint = "请检查 RAG_MILVUS_URI、服务器是否运行、RAG_MILVUS_TOKEN 是否正确" if _is_server(uri) else (
                "Milvus Lite 只支持单个进程：请先停止正在使用该文件的应用或索引进程"
            )
            raise StoreUnavailable(f"无法连接 Milvus：{uri}（{failure}）。{hint}。")
        _CLIENTS[uri] = client
        return client


def disconnect(settings: Settings) -> None:
    """Close the client (and stop the Milvus Lite server of that file, so another process may open it)."""
    uri = milvus_uri(settings)
    if not _is_server(uri):
        uri = str(Path(uri).resolve())
    with _CLIENTS_LOCK:
        client = _CLIENTS.pop(uri, None)
        if client is None:
            return
        client.close()
        if not _is_server(uri):
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(uri)


def published_collection(settings: Settings) -> str:
    """The collection the alias names now ('' when nothing was published)."""
    client = connect(settings)
    if _is_server(milvus_uri(settings)):
        try:
            return client.describe_alias(settings.milvus_collection)["collection_name"]
        except Exception:  # no such alias
            return ""
    pointer = settings.milvus_collection + POINTER_SUFFIX
    if not client.has_collection(pointer):
        return ""
    rows = client.query(pointer, filter='key != ""', output_fields=["key", "value"])
    return max(rows, key=lambda r: r["key"])["value"] if rows else ""


def switch_alias(settings: Settings, collection: str) -> None:
    """Point the alias at `collection`: `alter_alias` on a server; on Milvus Lite, which has no
    aliases (create_alias answers UNIMPLEMENTED), a new row in an append-only pointer collection
    whose newest row wins, so a reader sees the old or the new name, never neither."""
    client = connect(settings)
    alias = settings.milvus_collection
    if _is_server(milvus_uri(settings)):
        if published_collection(settings):
            client.alter_alias(collection, alias)
        else:
            client.create_alias(collection, alias)
        return
    pointer = alias + POINTER_SUFFIX
    if not client.has_collection(pointer):
        DataType = _pymilvus().DataType
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=32)
        schema.add_field("value", DataType.VARCHAR, max_length=512)
        client.create_collection(pointer, schema=schema)
    client.insert(pointer, [{"key": f"{time.time_ns():020d}", "value": collection}])
    client.flush(pointer)
    rows = sorted(client.query(pointer, filter='key != ""', output_fields=["key"]), key=lambda r: r["key"])
    old = [r["key"] for r in rows[:-2]]
    if old:
        client.delete(pointer, filter="key in [" + ", ".join(_quote(k) for k in old) + "]")


def _quote(value: str) -> str:
    """A Milvus string literal (the parser takes \\\\ and \\" escapes; other characters raw)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def filter_expr(where: Filter) -> str:
    """Filter -> Milvus boolean expression; '' means no restriction."""
    parts: list[str] = []
    if where.sources:
        parts.append("source in [" + ", ".join(_quote(s) for s in sorted(where.sources)) + "]")
    for col, lo, hi in (("year", where.year_from, where.year_to), ("date", where.date_from, where.date_to)):
        if lo is None and hi is None:
            continue
        parts.append(f"{col} > 0")
        if lo is not None:
            parts.append(f"{col} >= {int(lo)}")
        if hi is not None:
            parts.append(f"{col} <= {int(hi)}")
    return " and ".join(parts)


def _split(text: str) -> list[str]:
    return [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]


def _raw_idf(n_docs: int, df: np.ndarray) -> np.ndarray:
    return np.log(n_docs - df + 0.5) - np.log(df + 0.5)


class MilvusStore:
    """Reads the published version by name; writes are staged and become a new version at publish."""

    backend = "milvus"

    def __init__(self, settings: Settings, dim: int, bm25_params: BM25Params, base: str = "", manifest: dict | None = None):
        self.settings = settings
        self.client = connect(settings)
        self.uri = milvus_uri(settings)
        self.alias = settings.milvus_collection
        self.dim = dim
        self.bm25_params = bm25_params
        self.mode = (manifest or {}).get("milvus_bm25", settings.milvus_bm25)
        self.base = base  # the version this object reads; "" before the first publish
        self.manifest: dict[str, Any] = dict(manifest or {})
        self._reset_staged()
        self._terms_cache: dict[str, tuple[int, float] | None] = {}
        self._article_cache: dict[str, Article | None] = {}
        self._sources: list[str] | None = None

    def _reset_staged(self) -> None:
        self._new_articles: dict[str, Article] = {}
        self._new_chunks: list[Chunk] = []
        self._new_vectors: list[np.ndarray] = []
        self._new_tokens: list[Sequence[str]] = []
        self._removed_sources: set[str] = set()
        self._removed_articles: set[str] = set()

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def create(cls, settings: Settings, dim: int, bm25_params: BM25Params) -> "MilvusStore":
        return cls(settings, dim, bm25_params)

    @classmethod
    def open(cls, settings: Settings, expect: dict[str, Any] | None = None) -> "MilvusStore":
        client = connect(settings)
        uri = milvus_uri(settings)
        base = published_collection(settings)
        if not base:
            raise IndexMissing(
                f"Milvus {uri} has no published index {settings.milvus_collection!r}: build it with "
                f"`python -m rag.index --store milvus`"
            )
        for name in (base, *(base + s for s in SUFFIXES)):
            client.load_collection(name)
        manifest = _read_manifest(client, base)
        wanted = {"schema_version": SCHEMA_VERSION, "milvus_bm25": settings.milvus_bm25, **(expect or {})}
        for key, want in wanted.items():
            if manifest.get(key) != want:
                raise IndexMismatch(
                    f"Milvus index {settings.milvus_collection!r} at {uri} was built with {key}={manifest.get(key)!r}, "
                    f"but the settings say {want!r}: rebuild it with `python -m rag.index --store milvus --full`"
                )
        bm = manifest["bm25"]
        return cls(settings, manifest["dim"], BM25Params(bm["k1"], bm["b"], bm["epsilon"]), base=base, manifest=manifest)

    # -- write path (staged until publish) ------------------------------------------------
    def add(self, articles, chunks, vectors, tokens) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(chunks) != len(vectors) or len(chunks) != len(tokens):
            raise ValueError("chunks, vectors and tokens must have the same length")
        if len(chunks) and vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, store expects {self.dim}")
        if np.isnan(vectors).any():
            raise ValueError("the Milvus store needs every chunk's vector at add (no BM25-first versions)")
        for a in articles:
            self._new_articles[a.id] = a
        self._new_chunks.extend(chunks)
        self._new_vectors.append(vectors.reshape(len(chunks), self.dim))
        self._new_tokens.extend(tokens)

    def _drop_staged(self, keep) -> int:
        vectors = np.vstack(self._new_vectors) if self._new_vectors else np.zeros((0, self.dim), np.float32)
        mask = [keep(c) for c in self._new_chunks]
        removed = mask.count(False)
        self._new_chunks = [c for c, k in zip(self._new_chunks, mask) if k]
        self._new_tokens = [t for t, k in zip(self._new_tokens, mask) if k]
        self._new_vectors = [vectors[np.asarray(mask, dtype=bool)]] if mask else []
        return removed

    def delete_article(self, article_id: str) -> int:
        self._new_articles.pop(article_id, None)
        removed = self._drop_staged(lambda c: c.article_id != article_id)
        if self.base and article_id not in self._removed_articles:
            self._removed_articles.add(article_id)
            removed += self._count(f"article_id == {_quote(article_id)}")
        return removed

    def delete_source(self, source: str) -> int:
        for aid in [a.id for a in self._new_articles.values() if a.source == source]:
            del self._new_articles[aid]
        removed = self._drop_staged(lambda c: c.source != source)
        if self.base and source not in self._removed_sources:
            self._removed_sources.add(source)
            removed += self._count(f"source == {_quote(source)}")
        return removed

    def set_vectors(self, chunk_ids, vectors) -> None:
        raise NotImplementedError("the Milvus store takes vectors only with add")

    def missing_vectors(self) -> list[Chunk]:
        return []

    def has_vectors(self, chunk_ids) -> list[bool]:
        return [True] * len(chunk_ids)

    def dense_coverage(self) -> float:
        return 1.0

    def _count(self, expr: str) -> int:
        rows = self.client.query(self.base, filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    # -- read path ------------------------------------------------------------------------
    def version(self) -> str:
        return self.base

    def stats(self) -> StoreStats:
        m = self.manifest
        return StoreStats(
            backend="milvus",
            version=self.base,
            n_articles=int(m.get("n_articles", 0)),
            n_chunks=int(m.get("n_chunks", 0)),
            embedder=m.get("embedder", ""),
            published_at=m.get("published_at", ""),
            files=dict(m.get("files", {})),
        )

    def _idf_of(self, df: int) -> float:
        s = self.manifest["bm25_stats"]
        raw = math.log(s["n_docs"] - df + 0.5) - math.log(df + 0.5)
        return raw if raw >= 0 else self.bm25_params.epsilon * s["mean_idf"]

    def _terms(self, tokens: Iterable[str]) -> dict[str, tuple[int, float]]:
        """token -> (term id, idf) for the tokens the published version knows."""
        want = {t for t in tokens if t not in self._terms_cache and len(t.encode("utf-8")) <= MAX_TOKEN_BYTES}
        if want and self.base:
            if len(self._terms_cache) > 200_000:
                self._terms_cache.clear()
            for t in want:
                self._terms_cache[t] = None
            n_buckets = int(self.manifest["term_buckets"])
            buckets = sorted({_bucket(t, n_buckets) for t in want})
            expr = "bucket in [" + ", ".join(str(b) for b in buckets) + "]"
            for row in self.client.query(self.base + "__terms", filter=expr, output_fields=["terms"]):
                for t, (tid, df) in row["terms"].items():
                    if t in want:
                        self._terms_cache[t] = (int(tid), self._idf_of(int(df)))
        return {t: v for t in tokens if (v := self._terms_cache.get(t)) is not None}

    def idf(self, tokens: Iterable[str]) -> dict[str, float]:
        tokens = list(tokens)
        return {t: idf for t, (_tid, idf) in self._terms(tokens).items()}

    def max_idf(self) -> float:
        return float(self.manifest.get("bm25_stats", {}).get("max_idf", 1.0))

    def _search(self, data, field: str, metric: str, k: int, where: Filter) -> list[tuple[Chunk, float]]:
        if not self.base or k < 1:
            return []
        res = self.client.search(
            self.base,
            data=data,
            anns_field=field,
            limit=min(int(k), 16384),
            filter=filter_expr(where),
            output_fields=CHUNK_FIELDS,
            search_params={"metric_type": metric},
        )
        return [(_chunk(hit["entity"]), float(hit["distance"])) for hit in res[0]]

    def search_sparse(self, tokens: Sequence[str], k: int, where: Filter = Filter()) -> list[tuple[Chunk, float]]:
        if self.mode == "server":
            text = " ".join(tokens)
            hits = self._search([text], "sparse", "BM25", k, where) if text.strip() else []
        else:
            counts = Counter(tokens)
            terms = self._terms(counts)
            query = {tid: counts[t] * idf for t, (tid, idf) in terms.items() if idf != 0}
            hits = self._search([query], "sparse", "IP", k, where) if query else []
        return [(c, s) for c, s in hits if s > 0]

    def search_dense(self, vector: np.ndarray, k: int, where: Filter = Filter()) -> list[tuple[Chunk, float]]:
        q = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        return self._search([q], "dense", "IP", k, where)

    def article(self, article_id: str) -> Article | None:
        if article_id in self._article_cache:
            return self._article_cache[article_id]
        article = None
        if self.base:
            rows = self.client.query(
                self.base + "__articles", filter=f"article_id == {_quote(article_id)}", output_fields=["part", "value"]
            )
            if rows:
                article = Article(**json.loads("".join(r["value"] for r in sorted(rows, key=lambda r: r["part"]))))
        if len(self._article_cache) > 10_000:
            self._article_cache.clear()
        self._article_cache[article_id] = article
        return article

    def articles(self) -> Iterator[Article]:
        parts: dict[str, dict[int, str]] = {}
        for row in self._iterate(self.base + "__articles", "", ["article_id", "part", "value"]):
            parts.setdefault(row["article_id"], {})[int(row["part"])] = row["value"]
        for pieces in parts.values():
            yield Article(**json.loads("".join(pieces[i] for i in sorted(pieces))))

    def sources(self) -> list[str]:
        if self._sources is None:
            rows = self._iterate(self.base + "__articles", "part == 0", ["source"]) if self.base else []
            self._sources = sorted({r["source"] for r in rows})
        return list(self._sources)

    def _iterate(self, collection: str, expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        if not collection or collection.startswith("__"):
            return
        pk = "chunk_id" if "__" not in collection else ("bucket" if collection.endswith("__terms") else "key")
        if pk == "bucket" and not expr:
            expr = "bucket >= 0"
        it = self.client.query_iterator(
            collection, batch_size=BATCH, filter=expr or f'{pk} != ""', output_fields=fields
        )
        try:
            while batch := it.next():
                yield from batch
        finally:
            it.close()

    # -- publish --------------------------------------------------------------------------
    def _kept(self, row: dict[str, Any], replaced: set[str]) -> bool:
        return (
            row["source"] not in self._removed_sources
            and row["article_id"] not in self._removed_articles
            and row["article_id"] not in replaced
        )

    def publish(self, manifest: dict[str, Any]) -> str:
        """Write a complete new version (kept rows copied, staged rows added), then switch the alias."""
        t0 = time.perf_counter()
        stamp = time.strftime("%Y%m%dT%H%M%S") + f"_{os.getpid()}_{time.monotonic_ns() % 10**6}"
        name = f"{self.alias}_v{stamp}"
        replaced = set(self._new_articles)
        p = self.bm25_params

        # 1. vocabulary (stable term ids) and statistics over the rows the new version will hold
        tid_of: dict[str, int] = {}
        if self.base:
            for row in self._iterate(self.base + "__terms", "", ["terms"]):
                tid_of.update((t, int(v[0])) for t, v in row["terms"].items())
        next_tid = int(self.manifest.get("next_tid", 0))
        df: Counter[int] = Counter()
        n_docs = total_len = 0
        if self.base:
            for row in self._iterate(self.base, "", ["source", "article_id", "tf", "n_tokens"]):
                if self._kept(row, replaced):
                    df.update(int(t) for t in row["tf"])
                    n_docs += 1
                    total_len += int(row["n_tokens"])
        new_tf: list[dict[int, int]] = []
        for toks in self._new_tokens:
            counts: dict[int, int] = {}
            for tok, c in Counter(toks).items():
                if len(tok.encode("utf-8")) > MAX_TOKEN_BYTES:
                    continue
                tid = tid_of.get(tok)
                if tid is None:
                    tid = tid_of[tok] = next_tid
                    next_tid += 1
                counts[tid] = c
            new_tf.append(counts)
            df.update(counts.keys())  # document frequency: one per chunk, not per occurrence
            n_docs += 1
            total_len += len(toks)
        avgdl = total_len / n_docs if n_docs and total_len else 1.0
        present = np.fromiter((v for v in df.values() if v > 0), dtype=np.float64)
        raw = _raw_idf(n_docs, present) if len(present) else np.zeros(0)
        mean_idf = float(raw.mean()) if len(raw) else 0.0
        final = np.where(raw < 0, p.epsilon * mean_idf, raw)
        bm25_stats = {"n_docs": n_docs, "avgdl": avgdl, "mean_idf": mean_idf, "max_idf": float(final.max()) if len(final) else 1.0}

        def weights(tf: dict[int, int], length: int) -> dict[int, float]:
            norm = p.k1 * (1 - p.b + p.b * length / avgdl)
            return {int(t): float(c * (p.k1 + 1) / (c + norm)) for t, c in tf.items()}

        # 2. the new version's collections
        self._create_collections(name)
        n_chunks = 0
        buffer: list[dict[str, Any]] = []
        size = [0]

        def flush_rows(collection: str, force: bool = False) -> None:
            if buffer:
                size[0] += _row_bytes(buffer[-1])
            if buffer and (force or size[0] >= INSERT_BYTES or len(buffer) >= INSERT_ROWS):
                self.client.insert(collection, list(buffer))
                buffer.clear()
                size[0] = 0

        if self.base:
            fields = CHUNK_FIELDS + ["n_tokens", "tf", "dense"]
            for row in self._iterate(self.base, "", fields):
                if not self._kept(row, replaced):
                    continue
                row = {f: row[f] for f in fields}
                row["dense"] = [float(x) for x in row["dense"]]
                self._add_text_fields(row)
                if self.mode == "ours":
                    row["sparse"] = weights({int(t): int(c) for t, c in row["tf"].items()}, int(row["n_tokens"]))
                buffer.append(row)
                n_chunks += 1
                flush_rows(name)
        vectors = np.vstack(self._new_vectors) if self._new_vectors else np.zeros((0, self.dim), np.float32)
        for chunk, vec, tf, toks in zip(self._new_chunks, vectors, new_tf, self._new_tokens):
            row = {
                "chunk_id": chunk.id,
                "article_id": chunk.article_id,
                "source": chunk.source,
                "title": chunk.title,
                "text": chunk.text,
                "span_start": chunk.start,
                "span_end": chunk.end,
                "year": chunk.year or 0,
                "date": date_key(chunk.date),
                "date_text": chunk.date,
                "n_tokens": len(toks),
                "tf": {str(t): c for t, c in tf.items()},
                "dense": vec.tolist(),
            }
            self._add_text_fields(row)
            if self.mode == "ours":
                row["sparse"] = weights(tf, len(toks))
            buffer.append(row)
            n_chunks += 1
            flush_rows(name)
        flush_rows(name, force=True)

        n_articles = 0
        art = name + "__articles"
        if self.base:
            for row in self._iterate(self.base + "__articles", "", ["key", "article_id", "source", "part", "value"]):
                if self._kept(row, replaced):
                    buffer.append(row)
                    n_articles += row["part"] == 0
                    flush_rows(art)
        for a in self._new_articles.values():
            for i, piece in enumerate(_split(json.dumps(asdict(a), ensure_ascii=False))):
                buffer.append({"key": f"{a.id}:{i}", "article_id": a.id, "source": a.source, "part": i, "value": piece})
                flush_rows(art)
            n_articles += 1
        flush_rows(art, force=True)

        terms = name + "__terms"
        live = [(tok, tid) for tok, tid in tid_of.items() if df.get(tid, 0) > 0]
        n_buckets = max(1, math.ceil(len(live) / TOKENS_PER_BUCKET))
        packed: dict[int, dict[str, list[int]]] = {}
        for tok, tid in live:
            packed.setdefault(_bucket(tok, n_buckets), {})[tok] = [tid, df[tid]]
        for b, entries in packed.items():
            buffer.append({"bucket": b, "terms": entries})
            flush_rows(terms)
        flush_rows(terms, force=True)

        manifest = {
            **manifest,
            "schema_version": SCHEMA_VERSION,
            "backend": "milvus",
            "milvus_bm25": self.mode,
            "version": name,
            "dim": self.dim,
            "bm25": asdict(p),
            "bm25_stats": bm25_stats,
            "next_tid": next_tid,
            "term_buckets": n_buckets,
            "n_articles": n_articles,
            "n_chunks": n_chunks,
            "published_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        meta = name + "__meta"
        parts = _split(json.dumps(manifest, ensure_ascii=False))
        self.client.insert(meta, [{"key": f"manifest:{i:06d}", "value": v} for i, v in enumerate(parts)])
        for c in (name, *(name + s for s in SUFFIXES)):
            self.client.flush(c)

        # 3. publish: one alias switch; readers that resolved the old name keep reading it
        switch_alias(self.settings, name)
        previous = self.base
        self.base, self.manifest = name, manifest
        self._reset_staged()
        self._terms_cache.clear()
        self._article_cache.clear()
        self._sources = None
        self._prune(keep={name, previous})
        log.info("published Milvus %s (%d articles, %d chunks) in %.1f s", name, n_articles, n_chunks, time.perf_counter() - t0)
        return name

    def _add_text_fields(self, row: dict[str, Any]) -> None:
        if self.mode == "server":
            row["bm25_text"] = f"{row['title']}\n{row['text']}" if row["title"] else row["text"]
            row.pop("sparse", None)

    def _prune(self, keep: set[str]) -> None:
        """Drop versions other than the new and the previous one (and leftovers of killed builds)."""
        prefix = f"{self.alias}_v"
        for c in self.client.list_collections():
            if c.startswith(prefix) and c.split("__", 1)[0] not in keep:
                try:
                    self.client.drop_collection(c)
                except Exception as exc:  # a reader of a very old version; the next publish retries
                    log.warning("could not drop %s: %s", c, exc)

    def _create_collections(self, name: str) -> None:
        pymilvus = _pymilvus()
        DataType = pymilvus.DataType
        c = self.client
        s = c.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=128)
        s.add_field("article_id", DataType.VARCHAR, max_length=128)
        s.add_field("source", DataType.VARCHAR, max_length=4096)
        s.add_field("title", DataType.VARCHAR, max_length=4096)
        s.add_field("text", DataType.VARCHAR, max_length=65535)
        s.add_field("span_start", DataType.INT64)
        s.add_field("span_end", DataType.INT64)
        s.add_field("year", DataType.INT64)
        s.add_field("date", DataType.INT64)
        s.add_field("date_text", DataType.VARCHAR, max_length=64)
        s.add_field("n_tokens", DataType.INT64)
        s.add_field("tf", DataType.JSON)
        s.add_field("dense", DataType.FLOAT_VECTOR, dim=self.dim)
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        index = c.prepare_index_params()
        index.add_index("dense", index_type="AUTOINDEX", metric_type="IP")
        if self.mode == "server":
            s.add_field(
                "bm25_text", DataType.VARCHAR, max_length=65535, enable_analyzer=True, analyzer_params={"tokenizer": "jieba"}
            )
            s.add_function(
                pymilvus.Function(
                    name="bm25", function_type=pymilvus.FunctionType.BM25, input_field_names=["bm25_text"], output_field_names=["sparse"]
                )
            )
            index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        else:
            index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        c.create_collection(name, schema=s, index_params=index)

        a = c.create_schema(auto_id=False, enable_dynamic_field=False)
        a.add_field("key", DataType.VARCHAR, is_primary=True, max_length=256)
        a.add_field("article_id", DataType.VARCHAR, max_length=128)
        a.add_field("source", DataType.VARCHAR, max_length=4096)
        a.add_field("part", DataType.INT64)
        a.add_field("value", DataType.VARCHAR, max_length=65535)
        c.create_collection(name + "__articles", schema=a)
        t = c.create_schema(auto_id=False, enable_dynamic_field=False)
        t.add_field("bucket", DataType.INT64, is_primary=True)
        t.add_field("terms", DataType.JSON)
        c.create_collection(name + "__terms", schema=t)
        m = c.create_schema(auto_id=False, enable_dynamic_field=False)
        m.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
        m.add_field("value", DataType.VARCHAR, max_length=65535)
        c.create_collection(name + "__meta", schema=m)


def _bucket(token: str, n_buckets: int) -> int:
    return zlib.crc32(token.encode("utf-8")) % n_buckets


def _row_bytes(row: dict[str, Any]) -> int:
    """A cheap upper estimate of a row's size on the wire (UTF-8 text, float32 vectors)."""
    n = 64
    for v in row.values():
        if isinstance(v, str):
            n += 3 * len(v)
        elif isinstance(v, (list, dict)):
            n += 24 * len(v)
        else:
            n += 8
    return n


def _read_manifest(client, base: str) -> dict[str, Any]:
    rows = client.query(base + "__meta", filter='key like "manifest:%"', output_fields=["key", "value"])
    if not rows:
        raise IndexMismatch(f"Milvus version {base} has no manifest: rebuild it with `python -m rag.index --store milvus --full`")
    return json.loads("".join(r["value"] for r in sorted(rows, key=lambda r: r["key"])))


def _chunk(e: dict[str, Any]) -> Chunk:
    return Chunk(
        id=e["chunk_id"],
        article_id=e["article_id"],
        text=e["text"],
        start=int(e["span_start"]),
        end=int(e["span_end"]),
        title=e["title"],
        source=e["source"],
        date=e["date_text"],
        year=int(e["year"]) or None,
    )
