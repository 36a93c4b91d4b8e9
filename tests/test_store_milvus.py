"""The store conformance suite on Milvus Lite (a real milvus-lite server for the reading tests' shared
index and one per test that changes its own, our BM25 weights)."""

from __future__ import annotations

import pytest

from rag.store.milvus import disconnect
from rag.store.testing import StoreConformance


@pytest.mark.slow
class TestMilvusStore(StoreConformance):
    backend = "milvus"
    # dies after every collection of the new version is written, just before the alias switch
    crash_code = "import os\nimport rag.store.milvus as m\nm.switch_alias = lambda *a, **k: os._exit(9)\n"

    def release(self, settings):
        disconnect(settings)

    @pytest.fixture(autouse=True)
    def _one_server_per_test(self, settings):
        yield
        disconnect(settings)


def test_unreachable_server_is_one_clear_error_without_the_token(monkeypatch, tmp_path):
    from rag.settings import Settings
    from rag.store import StoreUnavailable, open_store

    monkeypatch.setenv("RAG_MILVUS_TOKEN", "root:secret-token-123")
    settings = Settings(index_dir=tmp_path, store="milvus", milvus_uri="http://127.0.0.1:9")
    with pytest.raises(StoreUnavailable, match=r"无法连接 Milvus：http://127\.0\.0\.1:9") as err:
        open_store(settings)
    assert "secret-token" not in str(err.value)


def test_lite_uri_must_be_a_db_file(tmp_path):
    from rag.settings import Settings
    from rag.store import open_store

    with pytest.raises(ValueError, match=r"\.db"):
        open_store(Settings(index_dir=tmp_path, store="milvus", milvus_uri=str(tmp_path / "milvus")))


@pytest.mark.slow
def test_rag_index_store_milvus_is_incremental_and_answers_like_local(tmp_path, corpus_copy, embedder, seed_settings):
    """The real CLI on the seed pages: cached vectors reused, unchanged build publishes nothing,
    one added file embeds one chunk, a removed file disappears; answers match the local store."""
    import json
    import os
    import subprocess
    import sys

    from rag.settings import PROJECT_ROOT as ROOT
    from rag.engine import Engine
    from rag.settings import Settings

    index = tmp_path / "index"
    env = {**os.environ, "RAG_CACHE_DIR": str(seed_settings.cache_dir)}
    cmd = [sys.executable, "-m", "rag.index", "--store", "milvus", "--quiet", "--json", "--corpus", str(corpus_copy), "--index", str(index)]

    def build() -> dict:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout)

    first = build()
    assert first["version"] and first["chunks_embedded"] == 0 and first["n_articles"] == 32
    again = build()
    assert again["version"] is None and not again["files_added"]
    (corpus_copy / "sub").mkdir()
    (corpus_copy / "sub" / "extra.txt").write_text(
        "经开区举办测试活动\n\n本报讯 6月5日，经开区举办无人机测试活动，共有12支队伍参加。\n记者 张三\n", encoding="utf-8"
    )
    added = build()
    assert added["files_added"] == ["sub/extra.txt"] and added["chunks_embedded"] == added["chunks_new"] == 1
    (corpus_copy / "004_43c8cec8d1dedc71.txt").unlink()
    removed = build()
    assert removed["files_removed"] == ["004_43c8cec8d1dedc71.txt"] and removed["chunks_embedded"] == 0

    milvus = Engine(Settings(corpus_dir=corpus_copy, index_dir=index, store="milvus", cache_dir=seed_settings.cache_dir), embedder=embedder)
    try:
        assert milvus.store.sources() == sorted({p.name for p in corpus_copy.glob("*.txt")} | {"sub/extra.txt"})
        answer = milvus.ask("经开区2020年专项债发行多少")
        assert answer.contexts[0].chunk.source == "003_c4740e32d0d06a7b.txt"
        assert milvus.ask("无人机测试活动共有多少支队伍参加").contexts[0].chunk.source == "sub/extra.txt"
        local = Engine(seed_settings, embedder=embedder)
        for q in ("经开区2020年专项债发行多少", "暴雨灾害问题整改审核了多少份佐证材料？", "宣传部（文明办）推出了多少篇涉疫宣传稿件？"):
            mine, theirs = milvus.ask(q), local.ask(q)
            assert mine.contexts[0].chunk.article_id == theirs.contexts[0].chunk.article_id
    finally:
        disconnect(milvus.settings)
