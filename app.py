"""经开问答 web chat: a Gradio page and a small JSON API over the published index.

`python app.py [--host 127.0.0.1] [--port 7860] [--index DIR]` serves, on one port:
  /             the chat page (Gradio Blocks; answers stream in, citations link to sources)
  /api/ask      POST, the same JSON as `python -m rag.ask --json` (Answer.to_json())
  /api/status   GET, the loaded index (articles, chunks, embedder, published_at, version)
RAG_AUTH=user:pass turns on a login for the page and HTTP Basic for the API; RAG_PORT sets the port.
Rendering lives in rag/render.py; this file builds the page and wires it to the Engine.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import gradio as gr
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, ConfigDict, Field

from rag import render
from rag.embed import Embedder, make_embedder
from rag.engine import Engine, QuestionError
from rag.records import Answer
from rag.settings import Settings
from rag.store import Filter, IndexProblem

log = logging.getLogger("app")

EXAMPLES = (
    "经开区2020年专项债发行多少",
    "郑大二附院周边道路什么时候建成通车",
    "谁主持召开了城市精细化管理工作推进会",
    "经开区组织银行进入了哪些园区",
)
MAX_K = 20

CSS = """
.rag-header h1 {margin: 0 0 .2em 0; font-size: 1.6em;}
.rag-header p {margin: 0; color: var(--body-text-color-subdued);}
.rag-status {font-size: .85em; color: var(--body-text-color-subdued); padding: .2em 0;}
.rag-status.rag-error, .rag-notice.rag-error {color: #b42318;}
.rag-answer .rag-text {line-height: 1.7;}
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
"""

# A marker click opens and shows its source entry; the href="#src-..." still works without it.
HEAD = """
<script>
document.addEventListener("click", function (ev) {
  var link = ev.target.closest && ev.target.closest("a.rag-cite");
  if (!link) return;
  var entry = document.getElementById(link.getAttribute("href").slice(1));
  if (!entry) return;
  ev.preventDefault();
  var details = entry.querySelector("details");
  if (details) details.open = true;
  entry.classList.add("rag-flash");
  entry.scrollIntoView({behavior: "smooth", block: "center"});
  setTimeout(function () { entry.classList.remove("rag-flash"); }, 2500);
});
</script>
"""


class Backend:
    """Owns the Engine and creates it once an index exists, so the page loads before the first build.

    Questions are answered one at a time: on a small machine parallel asks only compete for
    the same cores, and the embedder is not promised to be thread-safe."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        self.settings = settings
        self._embedder = embedder
        self._engine: Engine | None = None
        self._init_lock = threading.Lock()
        self.ask_lock = threading.Lock()

    def engine(self) -> Engine:
        """The loaded Engine; raises IndexProblem (with how to fix it) while there is no usable index."""
        with self._init_lock:
            if self._engine is None:
                if self._embedder is None:
                    self._embedder = make_embedder(self.settings.embedder)
                self._engine = Engine(self.settings, embedder=self._embedder)
            return self._engine

    def status(self) -> dict[str, Any]:
        engine = self.engine()
        try:
            engine.reload()
        except Exception as exc:  # a broken new version must not take the page down: keep the loaded one
            log.warning("index reload failed, keeping the loaded one: %s", exc)
        return engine.status

    def sources(self) -> list[str]:
        try:
            engine = self.engine()
        except IndexProblem:
            return []
        return engine.store.sources() if engine.store else []


def make_filter(year_from: Any, year_to: Any, sources: Any) -> Filter:
    """Form values -> Filter. An emptied number box arrives as 0: that, like None, means no limit."""
    lo = int(year_from) if year_from else None
    hi = int(year_to) if year_to else None
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    return Filter(year_from=lo, year_to=hi, sources=frozenset(sources or ()))


# -- JSON API ---------------------------------------------------------------------------------
class AskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = ""
    history: list[str] = Field(default_factory=list)
    k: int | None = None
    year_from: int | None = None
    year_to: int | None = None
    sources: list[str] = Field(default_factory=list)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def add_api(app: FastAPI, backend: Backend, auth: tuple[str, str] | None) -> None:
    basic = HTTPBasic(auto_error=False)

    def check_auth(credentials: HTTPBasicCredentials | None = Depends(basic)) -> None:
        if auth is None:
            return
        ok = credentials is not None and (
            secrets.compare_digest(credentials.username.encode(), auth[0].encode())
            & secrets.compare_digest(credentials.password.encode(), auth[1].encode())
        )
        if not ok:
            raise HTTPException(401, "login required", headers={"WWW-Authenticate": "Basic"})

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}" for e in exc.errors())
        return _error(400, f"invalid request: {problems}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.post("/api/ask", dependencies=[Depends(check_auth)])
    def api_ask(body: AskBody) -> JSONResponse:
        if body.k is not None and not 1 <= body.k <= MAX_K:
            return _error(400, f"k must be between 1 and {MAX_K}")
        try:
            engine = backend.engine()
            with backend.ask_lock:
                answer = engine.ask(
                    body.question, history=body.history, k=body.k, where=make_filter(body.year_from, body.year_to, body.sources)
                )
        except QuestionError as exc:
            return _error(400, str(exc))
        except IndexProblem as exc:
            return _error(503, str(exc))
        return JSONResponse(answer.to_json())

    @app.get("/api/status", dependencies=[Depends(check_auth)])
    def api_status() -> JSONResponse:
        try:
            return JSONResponse({"ready": True, **backend.status()})
        except IndexProblem as exc:
            return JSONResponse({"ready": False, "error": str(exc)}, status_code=503)


# -- chat page -------------------------------------------------------------------------------
def _status_html(backend: Backend) -> str:
    try:
        return render.render_status(backend.status())
    except IndexProblem as exc:
        return render.render_status(None, f"{exc}。{render.MISSING_INDEX_HINT}")


def build_ui(backend: Backend) -> gr.Blocks:
    settings = backend.settings

    def respond(question: str, chat: list[dict], asked: list[str], year_from, year_to, sources, k) -> Iterator[tuple]:
        """One turn; yields (chat, textbox, asked, status) as the answer streams in."""
        chat, asked = list(chat or []), list(asked or [])
        q = (question or "").strip()
        if not q:
            gr.Info("请输入想查询的问题，例如：" + EXAMPLES[0])
            yield chat, question, asked, gr.skip()
            return
        turn = len(chat) // 2 + 1
        chat.append({"role": "user", "content": render.render_question(q)})
        try:
            engine = backend.engine()
        except IndexProblem as exc:
            chat.append({"role": "assistant", "content": render.render_notice(f"{exc}。{render.MISSING_INDEX_HINT}", "error")})
            yield chat, "", asked, render.render_status(None, f"{exc}。{render.MISSING_INDEX_HINT}")
            return
        chat.append({"role": "assistant", "content": render.render_pending("正在检索资料…")})
        yield chat, "", asked, gr.skip()
        try:
            where = make_filter(year_from, year_to, sources)
            text, answer = "", None
            with backend.ask_lock:
                for piece in engine.stream(q, history=asked, k=int(k) if k else None, where=where):
                    if isinstance(piece, Answer):
                        answer = piece
                    else:
                        text += piece
                        chat[-1] = {"role": "assistant", "content": render.render_pending(text)}
                        yield chat, "", asked, gr.skip()
        except QuestionError as exc:
            chat[-1] = {"role": "assistant", "content": render.render_notice(str(exc))}
            yield chat, "", asked, gr.skip()
            return
        except Exception as exc:  # the page must keep working; the log has the traceback
            log.exception("question failed: %s", q)
            chat[-1] = {"role": "assistant", "content": render.render_notice(f"出错了，请稍后再试：{exc}", "error")}
            yield chat, "", asked, _status_html(backend)
            return
        assert answer is not None
        store = engine.store
        lookup = store.article if store else (lambda article_id: None)
        chat[-1] = {"role": "assistant", "content": render.render_answer(answer, lookup, turn)}
        # The follow-up logic sees the standalone form of earlier turns, so a chain like
        # "…2020年…多少" -> "那2019年呢？" -> "2018年呢？" keeps its subject.
        asked.append(answer.retrieval_question or answer.question)
        yield chat, "", asked, render.render_status(engine.status)

    def refresh() -> tuple:
        return _status_html(backend), gr.Dropdown(choices=backend.sources())

    with gr.Blocks(title="经开问答", analytics_enabled=False) as demo:
        gr.HTML(
            '<div class="rag-header"><h1>经开问答</h1><p>根据《经开时报》资料回答问题：答案摘自原文并标注出处，'
            "点击 [1] 等标记可查看原文；资料中没有的会直接说明。</p></div>",
            js_on_load=None,
        )
        status = gr.HTML(_status_html(backend), elem_id="rag-status", js_on_load=None)
        chatbot = gr.Chatbot(
            label="对话",
            show_label=False,
            elem_id="rag-chat",
            height=None,
            min_height=360,
            max_height="72vh",
            feedback_options=None,
            buttons=[],
            layout="panel",
            placeholder="在下方输入问题，或点击示例问题。",
        )
        with gr.Row():
            box = gr.Textbox(
                show_label=False,
                placeholder="输入问题，例如：经开区2020年专项债发行多少（追问可直接说“那2019年呢？”）",
                scale=8,
                max_lines=3,
                elem_id="rag-input",
            )
            send = gr.Button("提问", variant="primary", scale=1, elem_id="rag-send")
        with gr.Row(elem_id="rag-examples"):
            chips = [gr.Button(q, size="sm", variant="secondary") for q in EXAMPLES]
        with gr.Accordion("筛选与设置", open=False, elem_id="rag-settings"):
            with gr.Row():
                year_from = gr.Number(label="起始年份", precision=0, value=None, placeholder="不限")
                year_to = gr.Number(label="截止年份", precision=0, value=None, placeholder="不限")
                top_k = gr.Slider(1, MAX_K, value=settings.top_k, step=1, label="检索文章数 top-k")
            sources = gr.Dropdown(choices=backend.sources(), value=[], multiselect=True, label="来源文件（不选即全部）")
        asked = gr.State([])

        inputs = [box, chatbot, asked, year_from, year_to, sources, top_k]
        outputs = [chatbot, box, asked, status]
        box.submit(respond, inputs, outputs)
        send.click(respond, inputs, outputs)
        for chip, q in zip(chips, EXAMPLES):
            chip.click(lambda q=q: q, None, box, queue=False).then(respond, inputs, outputs)
        chatbot.clear(lambda: [], None, asked, queue=False)  # the chat's own trash button: forget the history too
        demo.load(refresh, None, [status, sources])
    return demo


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
    return gr.mount_gradio_app(
        app,
        build_ui(backend),
        path="/",
        server_name=host,
        server_port=port,
        auth=auth,
        auth_message="请登录" if auth else None,
        footer_links=[],
        app_kwargs={"docs_url": None, "redoc_url": None, "openapi_url": None},
        ssr_mode=False,
        mcp_server=False,
        show_error=False,
        css=CSS,
        head=HEAD,
        theme=gr.themes.Soft(),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="经开问答 web chat")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=int(os.environ.get("RAG_PORT") or 7860), help="port (default 7860 or RAG_PORT)")
    p.add_argument("--index", help="index directory (default: ./index)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.load(index_dir=args.index)
    auth = parse_auth(os.environ.get("RAG_AUTH"))
    app = create_app(settings, auth=auth, host=args.host, port=args.port)
    print(f"经开问答: http://{args.host}:{args.port}/  (API: POST /api/ask, GET /api/status)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
