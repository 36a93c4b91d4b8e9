"""A real OpenAI-compatible chat server on 127.0.0.1 for tests, with scripted replies.

It speaks the part of the API that vLLM, Ollama and Xinference serve and that ChatOpenAI
uses: POST /v1/chat/completions, plain JSON or, with `"stream": true`, server-sent events
(`data: {chunk}\\n\\n` ... `data: [DONE]\\n\\n`), plus GET /v1/models. Replies come from a
queue (`push`) or else from a function of the request body (`responder`); every request is
recorded with its headers so tests can assert on exactly what the client sent. A reply can
wait before answering (`delay`) or between stream chunks, to test timeouts, and can be an
HTTP error.

    with OpenAIServer() as server:
        server.push("经开区……[1]")
        settings = Settings(llm_base_url=server.base_url, llm_model="test-model", ...)
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    content: str = ""
    status: int = 200  # anything but 200 answers with an OpenAI-style error body
    delay: float = 0.0  # seconds before the response starts
    chunk_delay: float = 0.0  # seconds between stream chunks
    chunk_chars: int = 2  # stream the content this many characters a chunk


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    def message(self, role: str) -> str:
        """The text of the first message with this role ("system", "user")."""
        for m in self.messages:
            if m.get("role") == role:
                content = m.get("content")
                return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        return ""


Responder = Callable[[dict[str, Any]], "Reply | str"]


@dataclass
class OpenAIServer:
    responder: Responder | None = None
    model: str = "test-model"
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting --------------------------------------------------------------------
    def push(self, *replies: Reply | str) -> None:
        with self._lock:
            self._queue.extend(r if isinstance(r, Reply) else Reply(r) for r in replies)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            r = self.responder(body)
            return r if isinstance(r, Reply) else Reply(r)
        return Reply("", status=500)

    # -- lifecycle --------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "OpenAIServer":
        server = self

        class Handler(_Handler):
            owner = server

        self._stop.clear()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="openai-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes handlers that are sleeping through a delay
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "OpenAIServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    owner: OpenAIServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": self.owner.model, "object": "model", "owned_by": "test"}]})
        else:
            self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw.decode("utf-8") or "{}")
        except ValueError:
            self._json(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
            return
        self.owner.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
            return
        reply = self.owner._next_reply(body)
        if reply.delay and self.owner._stop.wait(reply.delay):
            return
        try:
            if reply.status != 200:
                self._json(reply.status, {"error": {"message": "scripted failure", "type": "server_error", "code": reply.status}})
            elif body.get("stream"):
                self._stream(reply, body)
            else:
                self._json(200, self._completion(reply.content, body))
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    # -- responses --------------------------------------------------------------------
    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _completion(self, content: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.owner.model),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": len(content), "total_tokens": len(content)},
        }

    def _stream(self, reply: Reply, body: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        model = body.get("model", self.owner.model)
        step = max(1, reply.chunk_chars)
        pieces = [reply.content[i : i + step] for i in range(0, len(reply.content), step)]
        for i, piece in enumerate(pieces):
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            self._event(self._chunk(model, delta, None))
            if reply.chunk_delay and self.owner._stop.wait(reply.chunk_delay):
                return
        self._event(self._chunk(model, {}, "stop"))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    @staticmethod
    def _chunk(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def _event(self, payload: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\n\n")
        self.wfile.flush()
