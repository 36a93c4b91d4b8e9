"""The one code path from a question to an Answer, shared by the CLI, the web chat and eval.

It owns the loaded index and picks it up again when a rebuild is published (the CURRENT
pointer changed), so a running app never needs a restart and never sees a half-written index.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from .answer import ExtractiveAnswerer
from .build import index_identity
from .embed import Embedder, make_embedder
from .followup import standalone_question
from .limits import bounded_history, clip_end
from .records import Answer
from .retrieve import Retriever
from .settings import Settings
from .store import Filter, LocalStore, current_stamp
from .textnorm import clean_line
from .tokenize import tokenize

if TYPE_CHECKING:
    from .llm import LLMAnswerer

log = logging.getLogger(__name__)


class QuestionError(ValueError):
    """A question that cannot be asked (empty); the message is meant for the user."""


@dataclass(frozen=True)
class CheckedQuestion:
    text: str
    truncated: bool


def check_question(question: str | None, settings: Settings) -> CheckedQuestion:
    """Cleaned (rag/textnorm.py) and clipped to its last characters: in long text the question comes last."""
    q = clean_line(question or "")
    if not q:
        raise QuestionError("问题不能为空，请输入想查询的内容。")
    q, truncated = clip_end(q, settings.max_question_chars)
    return CheckedQuestion(q, truncated)


class Engine:
    def __init__(self, settings: Settings, embedder: Embedder | None = None, reload_on_ask: bool = True):
        self.settings = settings
        self.reload_on_ask = reload_on_ask  # False: the caller reloads (app.py, under its write gate)
        self.embedder = embedder or make_embedder(settings.embedder)
        self._lock = threading.Lock()
        self._stamp = ""
        self.store: LocalStore | None = None
        self.reload()
        tokenize("经开区")  # load jieba's dictionary now, not on the first question (~1 s)

    def reload(self) -> bool:
        """Load the published index if it changed since the last load; True if it did."""
        stamp = current_stamp(self.settings.index_dir)
        if self.store is not None and stamp == self._stamp:
            return False
        with self._lock:
            if self.store is not None and stamp == self._stamp:
                return False
            store = LocalStore.load(self.settings.index_dir, expect=index_identity(self.settings, self.embedder))
            self.store, self._stamp = store, stamp
            log.info("loaded index %s", stamp)
            return True

    @property
    def status(self) -> dict:
        m = self.store.manifest if self.store else {}
        return {
            "version": self._stamp,
            "articles": m.get("n_articles", 0),
            "chunks": m.get("n_chunks", 0),
            "embedder": m.get("embedder", ""),
            "published_at": m.get("published_at", ""),
            "files": len(m.get("files", {})),
        }

    def retriever(self) -> Retriever:
        assert self.store is not None
        return Retriever(self.store, self.embedder, self.settings)

    def ask(
        self,
        question: str,
        history: Sequence[str] = (),
        k: int | None = None,
        where: Filter = Filter(),
        mode: str | None = None,
    ) -> Answer:
        """Answer one turn. `history`: earlier user questions, oldest first. `mode`: fusion override."""
        *_, result = self._turn(question, history, k, where, mode, streaming=False)
        return result

    def _turn(
        self, question: str, history: Sequence[str], k: int | None, where: Filter, mode: str | None, streaming: bool
    ) -> Iterator[str | Answer]:
        """ask and stream: pieces of text when streaming, then the final Answer."""
        t0 = time.perf_counter()
        checked = check_question(question, self.settings)
        history = bounded_history(history, self.settings)
        try:
            if self.reload_on_ask:
                self.reload()
        except Exception as exc:  # keep serving the old index if a reload fails
            if self.store is None:
                raise
            log.warning("index reload failed, keeping the loaded one: %s", exc)
        settings = self.settings.replace(fusion=mode) if mode else self.settings
        retriever = Retriever(self.store, self.embedder, settings)
        # ---- generated answer (rag/llm.py, issue #5): only with an LLM endpoint configured ----
        if self.settings.llm_enabled:
            t = time.perf_counter()
            query = self.llm.retrieval_question(checked.text, history)  # model rewrite, else rules
            rewrite_ms = (time.perf_counter() - t) * 1000
            fallback = ExtractiveAnswerer(retriever, settings).answer(checked.text, k=k, where=where, retrieval_question=query)
            if history:
                fallback.timings_ms["rewrite_ms"] = rewrite_ms
            items: Iterable[str | Answer] = (
                self.llm.answer_stream(checked.text, fallback) if streaming else [self.llm.answer(checked.text, fallback)]
            )
        # ---- extractive answer (unchanged) ----
        else:
            query = standalone_question(checked.text, history)
            result = ExtractiveAnswerer(retriever, settings).answer(checked.text, k=k, where=where, retrieval_question=query)
            items = [result.answer, result] if streaming else [result]
        for item in items:
            if isinstance(item, Answer):
                result = item
                break
            yield item
        if checked.truncated:
            result.note = (result.note + "；" if result.note else "") + f"问题过长，只保留了最后{self.settings.max_question_chars}个字"
        result.timings_ms["total_ms"] = (time.perf_counter() - t0) * 1000
        yield result

    @cached_property
    def llm(self) -> "LLMAnswerer":
        """Built on first use, so langchain-openai is imported only when an endpoint is configured."""
        from .llm import LLMAnswerer

        return LLMAnswerer(self.settings)

    def stream(
        self,
        question: str,
        history: Sequence[str] = (),
        k: int | None = None,
        where: Filter = Filter(),
        mode: str | None = None,
    ) -> Iterator[str | Answer]:
        """Yields pieces of answer text as they are produced, then the final Answer.

        The extractive answer is produced at once, so it arrives as one piece; a generated
        answer streams token by token. The final Answer is authoritative (it may replace
        streamed text with the extractive fallback)."""
        yield from self._turn(question, history, k, where, mode, streaming=True)
