"""ASGI guards in front of the whole web app: a request-body limit and a login that covers every route.

Both wrap the complete application (the JSON API *and* the mounted Gradio app), so they hold for
routes nobody listed by hand: Gradio 6 registers about 80 (``/gradio_api/upload``, ``/reset``,
``/cancel``, ``/heartbeat/...``, ``/runs``, ``/monitoring/...``), and its ``GET /`` inlines the
API description, which names every corpus file, even for a visitor who is not logged in (issue 10).

- ``BodyLimit`` refuses a body over the limit with 413 before the application reads it: from
  ``Content-Length`` at once, or while a chunked body streams in (it is buffered only up to the
  limit). Upload routes get their own, larger limit.
- ``LoginGate`` (only when ``RAG_AUTH`` is set) lets a request through only with the Gradio login
  cookie or HTTP Basic credentials. Without them, ``GET /`` (and a browser opening another
  top-level page such as ``/archive``) gets a small self-contained login page that names nothing
  from the archive, ``POST /login`` is checked and then reaches Gradio's login, and everything
  else gets 401 ``{"error": …}``. A state-changing request whose ``Origin`` names
  another site is refused (403), since the login cookie would otherwise ride along (CSRF).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_PATHS = frozenset({"/login", "/login/"})
# multipart upload routes (Gradio's, and the archive page's); they get `upload_limit` instead
UPLOAD_PATHS = frozenset({"/gradio_api/upload", "/api/archive/upload"})
UPLOAD_FILES = 10  # files one upload request may carry at the per-file limit

MSG_LOGIN = "请先登录。"
MSG_BAD_LOGIN = "用户名或密码错误。"
MAX_LOGIN_BYTES = 8192
MSG_CROSS_SITE = "拒绝来自其他网站的修改请求。"


def _kb(n: int) -> str:
    return f"{n // 1024} KB" if n < 1024 * 1024 else f"{n / (1024 * 1024):.0f} MB"


def too_large_message(limit: int) -> str:
    return f"请求过大（上限 {_kb(limit)}）。请缩短问题或对话历史。"


async def send_json(send: Send, status: int, payload: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    raw = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class BodyLimit:
    """413 for bodies over `limit` bytes (`upload_limit` on `upload_paths`), before the app reads them."""

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int | None = None, upload_paths: frozenset[str] = frozenset()):
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit or limit
        self.upload_paths = upload_paths

    def limit_for(self, path: str) -> int:
        return self.upload_limit if path.rstrip("/") in self.upload_paths else self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await send_json(send, 400, {"error": "请求头 Content-Length 无效。"})
                return
            if declared > limit:
                await send_json(send, 413, {"error": too_large_message(limit)}, {"connection": "close"})
                return
            await self.app(scope, _capped(receive, limit), send)
            return
        # no length given (chunked): read at most `limit` bytes, then replay them to the app
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await send_json(send, 413, {"error": too_large_message(limit)}, {"connection": "close"})
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _capped(receive: Receive, limit: int) -> Receive:
    """A client that sends more than it declared is cut off at the limit."""
    seen = 0

    async def wrapped() -> dict[str, Any]:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                return {"type": "http.disconnect"}
        return message

    return wrapped


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def credentials_match(given: tuple[str, str] | None, expected: tuple[str, str]) -> bool:
    if given is None:
        return False
    # both compared, always: the time taken does not say which one was wrong
    user_ok = secrets.compare_digest(given[0].encode(), expected[0].encode())
    password_ok = secrets.compare_digest(given[1].encode(), expected[1].encode())
    return user_ok & password_ok


class LoginGate:
    """Every request needs a login (cookie from Gradio's /login, or HTTP Basic), except the login itself.

    `sessions` returns (cookie id, tokens) of the mounted Gradio app, looked up per request because
    Gradio creates them when the app is mounted and fills `tokens` at each login."""

    def __init__(self, app: ASGIApp, auth: tuple[str, str], sessions: Callable[[], tuple[str, Mapping[str, str]]], login_page: str):
        self.app = app
        self.auth = auth
        self.sessions = sessions
        self.login_page = login_page.encode("utf-8")

    def logged_in(self, scope: Scope) -> bool:
        if credentials_match(basic_credentials(_header(scope, b"authorization")), self.auth):
            return True
        cookie_header = _header(scope, b"cookie")
        if not cookie_header:
            return False
        try:
            jar = SimpleCookie(cookie_header)
        except CookieError:
            return False
        cookie_id, tokens = self.sessions()
        for name in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"):
            morsel = jar.get(name)
            if morsel is not None and tokens.get(morsel.value) == self.auth[0]:
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if self.logged_in(scope):
            scope.setdefault("state", {})["login"] = self.auth[0]  # request.state.login, for app.require_auth
            if kind == "http" and method in UNSAFE_METHODS and _cross_site(scope):
                await send_json(send, 403, {"error": MSG_CROSS_SITE})
                return
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
            return
        if path in LOGIN_PATHS and method == "POST":
            if _cross_site(scope):
                await send_json(send, 403, {"error": MSG_CROSS_SITE})
                return
            await self._login(scope, receive, send)
            return
        if method in ("GET", "HEAD") and (path == "/" or _is_page_navigation(scope, path)):
            await send({
                "type": "http.response.start",
                "status": 200 if path == "/" else 401,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(self.login_page)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            })
            await send({"type": "http.response.body", "body": b"" if method == "HEAD" else self.login_page})
            return
        headers = {"www-authenticate": 'Basic realm="jingkai-qa", charset="UTF-8"'} if path.startswith("/api/") else {}
        await send_json(send, 401, {"error": MSG_LOGIN}, headers)


    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check a form login here (uniform Chinese error); a correct one goes on to Gradio's /login,
        which sets the session cookie."""
        body, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            size += len(message.get("body", b""))
            if size > MAX_LOGIN_BYTES:
                await send_json(send, 413, {"error": too_large_message(MAX_LOGIN_BYTES)})
                return
            body.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(body)
        if (_header(scope, b"content-type") or "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
            await send_json(send, 400, {"error": "登录请求须为表单（application/x-www-form-urlencoded）。"})
            return
        form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        given = ((form.get("username") or [""])[0].strip(), (form.get("password") or [""])[0])
        if not credentials_match(given, self.auth):
            await send_json(send, 400, {"error": MSG_BAD_LOGIN})
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _is_page_navigation(scope: Scope, path: str) -> bool:
    """A browser opening a top-level page such as /archive: it gets the login page (401), not JSON.
    Only one level deep, so the page's relative "login" link still means /login."""
    accept = _header(scope, b"accept") or ""
    return "text/html" in accept and path.count("/") == 1 and not path.startswith("/api")


def _cross_site(scope: Scope) -> bool:
    """True if the request says it comes from a page of another host (Origin header)."""
    origin = _header(scope, b"origin")
    if not origin or origin == "null":
        return bool(origin)
    host = _header(scope, b"host") or ""
    return urlsplit(origin).netloc.lower() != host.lower()


LOGIN_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>登录</title>
<style>
body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;background:#f5f6f8;margin:0;display:flex;
min-height:100vh;align-items:center;justify-content:center}
form{background:#fff;padding:2em 2.2em;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.12);width:18em}
h1{font-size:1.3em;margin:0 0 1em}label{display:block;font-size:.9em;margin:.8em 0 .3em}
input{width:100%;box-sizing:border-box;padding:.5em;border:1px solid #ccc;border-radius:4px;font-size:1em}
button{margin-top:1.3em;width:100%;padding:.6em;border:0;border-radius:4px;background:#2563eb;color:#fff;font-size:1em}
#msg{color:#b42318;font-size:.9em;min-height:1.2em;margin-top:.8em}
</style></head><body>
<form id="login" method="post" action="login">
<h1>请登录</h1>
<label for="username">用户名</label><input id="username" name="username" autocomplete="username" required>
<label for="password">密码</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">登录</button><div id="msg" role="alert"></div>
<noscript><p>请启用 JavaScript 后登录。</p></noscript>
</form>
<script>
document.getElementById("login").addEventListener("submit", async function (ev) {
  ev.preventDefault();
  var msg = document.getElementById("msg");
  msg.textContent = "";
  try {
    var r = await fetch("login", {method: "POST", body: new URLSearchParams(new FormData(ev.target)), credentials: "same-origin"});
    if (r.ok) { location.reload(); return; }
    msg.textContent = r.status === 400 ? "用户名或密码错误。" : "登录失败（" + r.status + "），请稍后再试。";
  } catch (e) { msg.textContent = "无法连接服务器，请稍后再试。"; }
});
</script>
</body></html>
"""


def route_table(app: Any, prefix: str = "") -> list[tuple[str, tuple[str, ...]]]:
    """(path, methods) of every route the app would answer, mounted and included routers expanded.

    Derived from the live route table (Starlette mounts, FastAPI included routers), so tests and the
    README list what is really exposed, not what someone remembered to write down."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for route in getattr(app, "routes", None) or getattr(getattr(app, "router", None), "routes", ()):
        original = getattr(route, "original_router", None)  # FastAPI >= 0.16x: an included router
        if original is not None:
            include_prefix = getattr(getattr(route, "include_context", None), "prefix", "")
            out += route_table(original, prefix + include_prefix)
        elif hasattr(route, "routes") and not hasattr(route, "methods"):  # a Mount
            out += route_table(route, prefix + route.path)
        elif hasattr(route, "path"):
            methods = tuple(sorted(getattr(route, "methods", None) or ("WEBSOCKET",)))
            out.append((prefix + route.path, methods))
    return out
