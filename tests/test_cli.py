"""The command-line tools: clear messages and exit codes, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


from rag.settings import PROJECT_ROOT as ROOT


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_ask_json_contract(seed_settings):
    r = run("-m", "rag.ask", "经开区2020年专项债发行多少", "--json", "-k", "3", "--index", str(seed_settings.index_dir))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"question", "answer", "abstained", "citations", "contexts", "timings_ms"} <= set(out)
    assert "13.92亿元" in out["answer"] and out["abstained"] is False
    c = out["citations"][0]
    assert {"n", "article_id", "title", "date", "source", "quote", "start", "end"} <= set(c)
    assert c["title"] == "积极申报专项债券 助力经开快速发展" and c["n"] == 1
    assert len(out["contexts"]) == 3
    assert {"rank", "chunk_id", "article_id", "title", "text", "score"} <= set(out["contexts"][0])


def test_ask_plain_output_lists_sources(seed_settings):
    r = run("-m", "rag.ask", "经开区2020年专项债发行多少", "--index", str(seed_settings.index_dir))
    assert r.returncode == 0 and "13.92亿元" in r.stdout and "来源" in r.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["   "], "问题不能为空"),
        (["问题", "-k", "0"], "-k must be greater than 0"),
    ],
)
def test_ask_bad_input(seed_settings, args, message):
    r = run("-m", "rag.ask", *args, "--index", str(seed_settings.index_dir))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow  # each CLI run is a fresh interpreter importing jieba and FAISS (3-7 s)
def test_ask_without_index_says_how_to_build_it(tmp_path):
    r = run("-m", "rag.ask", "经开区2020年专项债发行多少", "--index", str(tmp_path / "none"))
    assert r.returncode == 2 and "python -m rag.index" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_index_with_empty_or_missing_corpus(tmp_path):
    (tmp_path / "empty").mkdir()
    for corpus in (tmp_path / "empty", tmp_path / "missing"):
        r = run("-m", "rag.index", "--corpus", str(corpus), "--index", str(tmp_path / "idx"), "--quiet")
        assert r.returncode == 2 and "error" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_bad_setting_from_env_is_reported(tmp_path):
    import os

    env = {**os.environ, "RAG_TOP_K": "many"}
    r = run("-m", "rag.ask", "问题", "--index", str(tmp_path), env=env)
    assert r.returncode == 2 and "top_k" in r.stderr and "Traceback" not in r.stderr
