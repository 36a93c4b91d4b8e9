"""With RAG_AUTH set, every route the app registers needs the login; the login page shows nothing.

The route list comes from the app's own route table (rag.webguard.route_table), so a route that
Gradio or a later change adds is swept too. Real app, real uvicorn server on loopback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from app import create_app
from rag.store import current_version
from rag.webguard import route_table

pytestmark = pytest.mark.slow

AUTH = ("staff", "s3cret-pw")
PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


@pytest.fixture(scope="module")
def app(seed_settings, embedder):
    return create_app(seed_settings, auth=AUTH, embedder=embedder)


@pytest.fixture(scope="module")
def base(app, serve) -> Iterator[str]:
    yield from serve(app)


@pytest.fixture(scope="module")
def archive_words(seed_settings) -> list[str]:
    """File names and article titles of the indexed archive: none may show before login."""
    version = current_version(seed_settings.index_dir)
    words = set()
    for line in (version / "articles.jsonl").read_text(encoding="utf-8").splitlines():
        article = json.loads(line)
        words.add(article["source"])
        if len(article["title"]) >= 4:
            words.add(article["title"])
    return sorted(words)


def _concrete(path: str) -> str:
    return PARAM.sub(lambda m: "x.txt" if m.group(1) in ("name", "path", "file_name") else "x", path)


def test_the_route_table_is_the_whole_app(app):
    routes = dict(route_table(app))
    # the ones issue 10 found open, all present in the table the sweep walks
    for path in ("/api/ask", "/gradio_api/upload", "/gradio_api/reset", "/gradio_api/cancel", "/gradio_api/token",
                 "/gradio_api/user", "/gradio_api/app_id", "/gradio_api/runs", "/gradio_api/heartbeat/{session_hash}"):
        assert path in routes, path
    assert len(routes) > 60


def test_every_route_refuses_without_login(app, base, archive_words):
    opened = []
    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as client:
        for path, methods in route_table(app):
            url = _concrete(path)
            for method in methods:
                if method == "WEBSOCKET":
                    continue
                r = client.request(method, url, content=b"{}", headers={"content-type": "application/json"})
                if path == "/" and method in ("GET", "HEAD"):
                    assert r.status_code == 200 and "请登录" in r.text or method == "HEAD"
                    continue
                if path in ("/login", "/login/"):
                    assert r.status_code == 400 and "error" in r.json()
                    continue
                if r.status_code != 401 or (method != "HEAD" and r.json() != {"error": "请先登录。"}):
                    opened.append(f"{method} {url} -> {r.status_code}")
                assert not any(word in r.text for word in archive_words), f"{method} {url} shows archive text"
    assert opened == []


def test_login_page_names_nothing(base, archive_words):
    page = httpx.get(base + "/").text
    for word in archive_words + ["gradio_api", "api_info", "/api/ask", "来源文件", ".txt"]:
        assert word not in page, word


def test_basic_and_cookie_logins_work_and_cross_site_posts_are_refused(base):
    assert httpx.get(base + "/api/status", auth=AUTH).status_code == 200
    assert httpx.get(base + "/api/status", auth=("staff", "wrong")).status_code == 401
    r = httpx.post(base + "/api/ask", json={"question": "经开区2020年专项债发行多少"}, auth=AUTH, timeout=60)
    assert r.status_code == 200 and "13.92亿元" in r.json()["answer"]
    assert httpx.post(base + "/login", data={"username": "staff", "password": "nope"}).json() == {"error": "用户名或密码错误。"}
    login = httpx.post(base + "/login", data={"username": AUTH[0], "password": AUTH[1]})
    assert login.status_code == 200
    with httpx.Client(base_url=base, cookies=login.cookies, timeout=30) as client:
        assert client.get("/config").status_code == 200
        assert "gradio" in client.get("/").text.lower()
        assert client.get("/api/status").status_code == 200
        upload = client.post("/gradio_api/upload", files={"files": ("a.txt", b"hello")}, headers={"origin": "http://evil.example"})
        assert upload.status_code == 403 and upload.json() == {"error": "拒绝来自其他网站的修改请求。"}
        same = client.post("/gradio_api/upload", files={"files": ("a.txt", b"hello")}, headers={"origin": base})
        assert same.status_code == 200
    forged = httpx.Client(base_url=base, cookies={k: "forged" for k in login.cookies.keys()})
    assert forged.get("/config").status_code == 401
