"""The one code path from a question to an Answer, shared by the CLI, the web chat and eval.

It owns the loaded index and picks it up again when a rebuild is published (the CURRENT
pointer changed), so a running app never needs a restart and never sees a half-written index.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from . import zh
from .answer import AnswerParams, ExtractiveAnswerer
from .build import index_identity
from .buildlock import build_running
from .progress import dense_label
from .embed import Embedder, make_embedder
from .followup import standalone_question
from .limits import bounded_history, clip_end
from .profile import Profile
from .records import Answer, Chunk, Hit
from .retrieve import Retriever
from .settings import Settings
from .store import Filter, Store, open_store, published_version
from .textnorm import clean_line
from .tokenize import tokenize
from .verify import trusted_limit

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


def model_passages(answer: Answer, store: Store) -> list[Hit]:
    """What a generator is shown: first the paragraph of each sentence the extractive stage chose
    (its quote, an abstention's nearby or closest fact), then the retrieved chunks, as many
    passages as were retrieved. With one hit per article, the best BM25 chunk alone misses the
    evidence sentence for about one question in ten although the article is right."""
    passages: list[Hit] = []
    covered: list[tuple[str, int, int]] = []
    for c in answer.citations:
        if any(h.chunk.article_id == c.article_id and h.chunk.start <= c.start and c.end <= h.chunk.end for h in answer.contexts):
            continue  # a retrieved chunk already holds the quote
        body = store.article(c.article_id).body
        start = body.rfind("\n", 0, c.start) + 1
        end = min(trusted_limit(body, c.start), max(c.end, trusted_limit(body, c.start)))
        if end - start > PASSAGE_MAX:  # a long paragraph: the quote with its neighbourhood
            start = max(start, c.start - (PASSAGE_MAX - (c.end - c.start)) // 2)
            end = min(end, start + PASSAGE_MAX)
        if any(aid == c.article_id and s <= start and end <= e for aid, s, e in covered):
            continue
        covered.append((c.article_id, start, end))
        chunk = Chunk(f"{c.article_id}@{start}", c.article_id, body[start:end], start, end, c.title, c.source, c.date)
        passages.append(Hit(chunk=chunk, score=answer.contexts[0].score if answer.contexts else 1.0, rank=len(passages) + 1))
    for h in answer.contexts:
        if len(passages) >= max(len(answer.contexts), 1):
            break
        passages.append(dataclasses.replace(h, rank=len(passages) + 1))
    return passages


PASSAGE_MAX = 600  # characters of one paragraph shown to a generator


class Engine:
    def __init__(self, settings: Settings, embedder: Embedder | None = None, reload_on_ask: bool = True):
        self.settings = settings
        self.reload_on_ask = reload_on_ask  # False: the caller reloads (app.py, under its write gate)
        self.embedder = embedder or make_embedder(settings)
        if settings.store == "local" and settings.search_threads:
            import faiss

            faiss.omp_set_num_threads(settings.search_threads)  # process-wide; see Settings.search_threads
        self._lock = threading.Lock()
        self._stamp = ""
        self.store: Store | None = None
        self.reload()
        tokenize("经开区")  # load jieba's dictionary now, not on the first question (~1 s)

    def reload(self) -> bool:
        """Load the published index if it changed since the last load; True if it did."""
        stamp = published_version(self.settings)
        if self.store is not None and stamp == self._stamp:
            return False
        with self._lock:
            found = self.open_published()
            if found is None:
                return False
            self.use(*found)
            return True

    def open_published(self) -> tuple[str, Store] | None:
        """(version, store) of the published index when it is not the loaded one, opened beside it.

        Opening (reading the files, building the BM25 matrix and FAISS) is the slow part of a
        reload; a server does it while answers go on, then swaps with `use` under its write gate."""
        stamp = published_version(self.settings)
        if self.store is not None and stamp == self._stamp:
            return None
        return stamp, open_store(self.settings, expect=index_identity(self.settings, self.embedder))

    def use(self, stamp: str, store: Store) -> None:
        """Answer from `store` (version `stamp`) from now on."""
        self.store, self._stamp = store, stamp
        log.info("loaded index %s", stamp)

    @property
    def status(self) -> dict:
        st = self.store.stats() if self.store else None
        return {
            "version": self._stamp,
            "articles": st.n_articles if st else 0,
            "chunks": st.n_chunks if st else 0,
            "embedder": st.embedder if st else "",
            "published_at": st.published_at if st else "",
            "files": len(st.files) if st else 0,
            **self.dense_status(),
        }

    def dense_status(self) -> dict:
        """How far the served version's vectors go, and whether a build is computing the rest."""
        coverage = self.store.dense_coverage() if self.store else 1.0
        if coverage >= 1.0:
            return {"dense_coverage": 1.0, "dense_building": False, "dense_eta_s": None, "dense_label": ""}
        building = build_running(self.settings.index_dir)
        manifest = getattr(self.store, "manifest", {}) or {}
        eta = None
        prog = manifest.get("dense_progress") or {}
        rate = float(prog.get("chunks_per_s") or 0)
        if building and rate > 0:
            n = int(manifest.get("n_chunks") or 0)
            left = n - int(manifest.get("n_dense") or 0)
            eta = max(left / rate - (time.time() - float(prog.get("at") or time.time())), 60.0)
        return {
            "dense_coverage": round(coverage, 4),
            "dense_building": building,
            "dense_eta_s": None if eta is None else round(eta),
            "dense_label": dense_label(coverage, eta, building),
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
        answerer = ExtractiveAnswerer(self.store, self.profile, self.answer_params)
        if self.settings.llm_enabled:
            t = time.perf_counter()
            query = self.llm.retrieval_question(checked.text, history)  # model rewrite, else rules
            rewrite_ms = (time.perf_counter() - t) * 1000
        else:
            query = standalone_question(checked.text, history)
        extractive = self.extractive(answerer, retriever, checked.text, query, k, where)
        if self.settings.llm_enabled:
            if history:
                extractive.timings_ms["rewrite_ms"] = rewrite_ms
            shown = dataclasses.replace(extractive, contexts=model_passages(extractive, self.store))
            items: Iterable[str | Answer] = (
                self.llm.answer_stream(checked.text, shown) if streaming else [self.llm.answer(checked.text, shown)]
            )
        else:
            items = [extractive.answer, extractive] if streaming else [extractive]
        for item in items:
            if isinstance(item, Answer):
                result = item
                break
            yield item
        if checked.truncated:
            result.note = (result.note + "；" if result.note else "") + f"问题过长，只保留了最后{self.settings.max_question_chars}个字"
        result.timings_ms["total_ms"] = (time.perf_counter() - t0) * 1000
        yield result

    @staticmethod
    def extractive(
        answerer: ExtractiveAnswerer, retriever: Retriever, question: str, query: str, k: int | None, where: Filter
    ) -> Answer:
        """Search, and when the question names a year, search again without it under the same
        filter: the answerer then offers a fact of another year, labelled, instead of nothing."""
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        hits = retriever.search(query, k=k, where=where, timings=timings)
        yearless: list = []
        if zh.years_in(query):
            stripped = zh.strip_years(query).strip()
            if stripped:
                yearless = retriever.search(stripped, k=k, where=where, mode="sparse")  # no second query embedding
        timings["retrieve_ms"] = (time.perf_counter() - t0) * 1000
        result = answerer.answer(query, hits, yearless)
        result.dense_coverage = retriever.coverage
        result.question = question
        result.retrieval_question = query
        result.timings_ms = {**timings, **result.timings_ms}
        return result

    @cached_property
    def profile(self) -> Profile:
        return self.settings.corpus_profile

    @cached_property
    def answer_params(self) -> AnswerParams:
        return AnswerParams()

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
