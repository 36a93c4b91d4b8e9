"""Bounded work on the JSON API, proved against the real app on a loopback uvicorn server.

Before issue 10: a 1 MB history kept a core busy for ten minutes, a lone surrogate gave HTTP 500,
`k="5"` was accepted, GET /api/ask was a 404 page and some errors were {"detail": …}.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from app import create_app
from rag.store import current_stamp

pytestmark = pytest.mark.slow

Q_BONDS = "经开区2020年专项债发行多少"
MB = 1 << 20


@pytest.fixture(scope="module")
def index_copy(seed_settings, tmp_path_factory):
    """A private copy of the seed index, so this module may publish versions of its own."""
    dst = tmp_path_factory.mktemp("api-index") / "index"
    shutil.copytree(seed_settings.index_dir, dst, symlinks=True)
    return seed_settings.replace(index_dir=dst)


@pytest.fixture(scope="module")
def base(index_copy, embedder, serve) -> Iterator[str]:
    yield from serve(create_app(index_copy, embedder=embedder), root_logging=True)


def post(base: str, body: bytes | dict, **kw) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return httpx.post(f"{base}/api/ask", content=content, headers={"content-type": "application/json"}, timeout=60, **kw)


def _is_error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    data = r.json()
    assert list(data) == ["error"] and isinstance(data["error"], str) and data["error"]
    return data["error"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"question": Q_BONDS, "k": "5"}, 400, "k 必须是 1 到 20 之间的整数"),
        ({"question": Q_BONDS, "k": True}, 400, "k 必须是 1 到 20 之间的整数"),
        ({"question": Q_BONDS, "k": 5.0}, 400, "k 必须是 1 到 20 之间的整数"),
        ({"question": Q_BONDS, "k": 21}, 400, "k 必须是 1 到 20 之间的整数"),
        ({"question": Q_BONDS, "year_from": "2020"}, 400, "起始年份必须是 1900 到 2100 之间的整数"),
        ({"question": "问" * 2001}, 400, "问题过长（最多 2000 个字）"),
        ({"question": Q_BONDS, "history": ["问"] * 21}, 400, "对话历史条数过多（最多 20 条）"),
        ({"question": Q_BONDS, "history": ["a", "问" * 2001]}, 400, "对话历史第2条过长（最多 2000 个字）"),
        ({"question": Q_BONDS, "history": "那2019年呢"}, 400, "对话历史的类型不对"),
        ({"question": Q_BONDS, "colour": "red"}, 400, "不认识的字段：colour"),
        ({"question": None}, 400, "问题的类型不对"),
        (b"[1, 2]", 400, "请求体必须是 JSON 对象"),
        (b"not json", 400, "请求体必须是 UTF-8 编码的 JSON 对象"),
        (b"", 400, "请求体必须是 UTF-8 编码的 JSON 对象"),
        (b'{"question": "\xff\xfe"}', 400, "请求体必须是 UTF-8 编码的 JSON 对象"),
        (b"[" * 100_000, 413, "请求过大（上限 64 KB）"),
        (b"[" * 60_000, 400, "请求体必须是 UTF-8 编码的 JSON 对象"),  # deep nesting: RecursionError, not 500
        ({"question": ""}, 400, "问题不能为空"),
    ],
)
def test_refusals_are_chinese_json_errors(base, body, status, message):
    assert message in _is_error(post(base, body), status)


def test_lone_surrogates_are_replaced_not_a_500(base):
    raw = ('{"question": "\\ud800' + Q_BONDS + '", "history": ["\\udfff", "x\\ud83d"], "sources": ["\\ud800"]}').encode()
    r = post(base, raw)
    assert r.status_code == 200
    assert r.json()["question"] == "\ufffd" + Q_BONDS
    r = post(base, {"question": Q_BONDS})  # the keep-alive connection and the server are fine
    assert r.status_code == 200 and "13.92亿元" in r.json()["answer"]


def test_over_long_question_keeps_its_end(base):
    data = post(base, {"question": "请先阅读以下材料。" + "材料内容" * 400 + "。" + Q_BONDS}).json()
    assert data["question"].endswith(Q_BONDS) and len(data["question"]) == 200
    assert "只保留了最后200个字" in data["note"]
    assert data["citations"] == [] or all(c["quote"] for c in data["citations"])


def test_methods_and_unknown_paths_are_json(base):
    r = httpx.get(f"{base}/api/ask")
    assert "不支持 GET 方法" in _is_error(r, 405) and r.headers["allow"] == "POST"
    assert "POST" in _is_error(httpx.post(f"{base}/api/status"), 405)
    assert "/api/nothing" in _is_error(httpx.get(f"{base}/api/nothing"), 404)


@pytest.mark.parametrize("field", ["question", "history"])
def test_one_megabyte_is_refused_in_under_a_second(base, field):
    body = {"question": "问" * MB} if field == "question" else {"question": "那2019年呢？", "history": ["问" * MB]}
    t = time.perf_counter()
    r = post(base, body)
    elapsed = time.perf_counter() - t
    assert "请求过大" in _is_error(r, 413)
    assert elapsed < 1.0
    t = time.perf_counter()  # chunked, without a Content-Length: cut off while it streams in
    r = httpx.post(f"{base}/api/ask", content=iter([b'{"question": "', b"x" * MB, b'"}']), timeout=60)
    assert r.status_code == 413 and time.perf_counter() - t < 1.0


@pytest.mark.parametrize("field", ["question", "history"])
def test_one_megabyte_requests_do_not_delay_a_concurrent_question(base, field):
    """Issue 10: while 1 MB bodies keep arriving, one after another, and are refused, a normal
    question takes at most twice its own time. Three tries, each against a fresh time alone, as other work shares the cores."""
    big = {"question": "问" * MB} if field == "question" else {"question": "那2019年呢？", "history": ["问" * MB]}
    raw = json.dumps(big, ensure_ascii=False).encode()
    post(base, {"question": Q_BONDS})
    tries = []
    for _ in range(3):
        t = time.perf_counter()
        assert post(base, {"question": Q_BONDS}).status_code == 200
        alone = time.perf_counter() - t
        stop = threading.Event()
        refused: list[int] = []

        def flood() -> None:
            with httpx.Client(timeout=60) as c:
                while not stop.is_set():
                    refused.append(c.post(f"{base}/api/ask", content=raw, headers={"content-type": "application/json"}).status_code)

        with ThreadPoolExecutor(1) as pool:
            floods = [pool.submit(flood)]
            while not refused:
                time.sleep(0.005)
            t = time.perf_counter()
            r = post(base, {"question": Q_BONDS})
            during = time.perf_counter() - t
            stop.set()
            for f in floods:
                f.result()
        assert r.status_code == 200 and "13.92亿元" in r.json()["answer"]
        assert refused and set(refused) == {413}
        tries.append((round(alone, 3), round(during, 3)))
        if during <= 2 * alone:
            break
    assert tries[-1][1] <= 2 * tries[-1][0], tries


def test_the_largest_accepted_request_is_fast_and_does_not_hold_up_others(base):
    """Limits are chosen so the worst accepted request costs about one normal question."""
    big = {"question": "问" * 2000, "history": ["经开区2020年专项债发行多少" + "问" * 1985] * 8}
    assert len(json.dumps(big, ensure_ascii=False).encode()) < 65536
    post(base, {"question": Q_BONDS})
    t = time.perf_counter()
    assert post(base, {"question": Q_BONDS}).status_code == 200
    alone = time.perf_counter() - t
    t = time.perf_counter()
    assert post(base, big).status_code == 200
    big_alone = time.perf_counter() - t
    with ThreadPoolExecutor(4) as pool:
        bigs = [pool.submit(post, base, big) for _ in range(3)]
        time.sleep(0.01)
        t = time.perf_counter()
        r = post(base, {"question": Q_BONDS})
        small_busy = time.perf_counter() - t
        assert all(f.result().status_code == 200 for f in bigs)
    assert r.status_code == 200 and "13.92亿元" in r.json()["answer"]
    # loaded shared machine: generous bound, but far from the 17 s a question waited before
    assert small_busy < alone + 3 * big_alone + 1.0, (alone, big_alone, small_busy)


def test_answers_carry_the_index_version_and_a_reload_mid_traffic_loses_nothing(base, index_copy):
    """Publish a new version (a renamed copy, as rag.index does: write, then replace CURRENT) while
    four clients ask: every answer is 200, from one version or the other, and the same answer."""
    root = index_copy.index_dir
    old = current_stamp(root)
    r = post(base, {"question": Q_BONDS})
    assert r.headers["x-index-version"] == old
    expected = r.json()["answer"]
    stop = threading.Event()
    seen: list[tuple[int, str, str]] = []

    def client():
        with httpx.Client(timeout=60) as c:
            while not stop.is_set():
                resp = c.post(f"{base}/api/ask", json={"question": Q_BONDS})
                seen.append((resp.status_code, resp.headers.get("x-index-version", ""), resp.json().get("answer", "")))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    new = old + "-copy"
    shutil.copytree(root / old, root / new)
    tmp = root / "CURRENT.tmp"
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(root / "CURRENT")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(v == new for _, v, _ in seen):
        time.sleep(0.1)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(60)
    assert seen and all(status == 200 for status, _, _ in seen)
    assert {v for _, v, _ in seen} <= {old, new} and any(v == new for _, v, _ in seen)
    assert all(answer == expected for _, _, answer in seen)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
any_text = st.text(alphabet=st.characters(codec=None, max_codepoint=0x10FFFF), max_size=300)
ask_bodies = st.fixed_dictionaries(
    {},
    optional={
        "question": any_text | json_values,
        "history": st.lists(any_text, max_size=25) | json_values,
        "k": st.integers(-5, 30) | json_values,
        "year_from": st.integers(1800, 2200) | json_values,
        "year_to": st.integers(1800, 2200) | json_values,
        "sources": st.lists(any_text, max_size=3) | json_values,
    },
)


@hsettings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(body=ask_bodies | json_values, raw=st.none() | st.binary(max_size=400))
def test_fuzzed_requests_never_give_a_5xx_or_an_exception(base, caplog, body, raw):
    with caplog.at_level(logging.WARNING):
        content = raw if raw is not None else json.dumps(body).encode()  # ensure_ascii: surrogates as \ud800
        r = post(base, content)
        assert r.status_code < 500, r.text
        data = r.json()
        if r.status_code == 200:
            assert isinstance(data["answer"], str)
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        else:
            assert r.status_code in (400, 413) and list(data) == ["error"]
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
