"""Optional generated answers from an OpenAI-compatible chat server, verified before they are shown.

Staff who run a model server (vLLM, Ollama, Xinference, hosted Qwen/DeepSeek: all speak the
OpenAI chat API) get a fluent answer instead of a quote, but on the same terms as the
extractive answerer: every number must be in a passage it cites, or the answer is not shown.

The path of one question:
1. a follow-up turn is rewritten into a standalone question (prompts/rewrite_*); a failed or
   implausible rewrite (a number the user never typed) falls back to rag.followup's rules;
2. retrieval and the extractive answer run as usual: that answer is the fallback;
3. the retrieved chunks go to the model numbered [1]..[n] in the order of Answer.contexts,
   each inside <资料 n=".." 标题=".." 日期=".."> … </资料>, and the system prompt says the
   text inside is data, not instructions (prompts/answer_*);
4. the reply is checked (`check_answer`): markers must point at passages that exist, a reply
   that neither cites nor abstains is refused, every number must occur in a cited passage
   (text, title or date; the question's own numbers are allowed), and a year the question
   asks about must be in the cited passages (the "nearby fact" trap the extractive answerer
   also guards). Sentences of a passage that read like instructions to a model ("忽略以上指令…")
   are not evidence: an article cannot vouch for the figure its own injection asks for;
5. if the check fails, or the server errors or exceeds `llm_timeout`, the extractive answer is
   returned with mode "llm-fallback" and a note saying why, in Chinese, never a traceback.

The timeout is a hard deadline on the whole generation (the call runs in a worker thread), not
only httpx's per-read timeout, which a server trickling tokens would never trip.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from .followup import standalone_question
from .records import Answer, Citation, Hit
from .zh import years_in
from .settings import PROJECT_ROOT, Settings
from .verify import INSTRUCTION as _INSTRUCTION
from .verify import bad_markers, markers_in, normalize_for_match, numbers_in, trusted_text, unsupported_numbers

log = logging.getLogger(__name__)

PROMPTS_DIR = PROJECT_ROOT / "prompts"
FALLBACK_SUFFIX = "，已改用摘录答案"
UNTRUSTED_QUOTE = "资料中没有找到能可靠回答这个问题的内容。"

# How the model says "the passages do not answer this" (the prompt asks for 资料中没有…).
_ABSTAIN = re.compile(r"资料中(?:没有|并没有|未|并未|无)|资料(?:未|没有)(?:提及|提到|涉及)")
_UNIT = r"[万亿千百十]*(?:元|美元|个百分点|个|项|家|人次|人|名|次|倍|平方米|平方公里|公里|米|亩|吨|户|所|天|年|月|日|号|%)?"


# -- prompts ----------------------------------------------------------------------------------
def load_prompt(name: str, directory: Path = PROMPTS_DIR) -> ChatPromptTemplate:
    """prompts/<name>_system.txt + prompts/<name>_user.txt as one chat prompt."""
    system = (directory / f"{name}_system.txt").read_text(encoding="utf-8").strip()
    user = (directory / f"{name}_user.txt").read_text(encoding="utf-8").strip()
    return ChatPromptTemplate.from_messages([("system", system), ("human", user)])


def _attr(value: str) -> str:
    return value.replace('"', "”").replace("<", "＜").replace(">", "＞").replace("\n", " ")


def _data(text: str) -> str:
    """Article text cannot close or open a delimiter of its own."""
    return re.sub(r"<(/?)\s*资料", lambda m: f"＜{m.group(1)}资料", text)


def format_context(hits: Sequence[Hit]) -> str:
    """Passages [1]..[n] in the order of Answer.contexts, each fenced as data."""
    blocks = []
    for n, hit in enumerate(hits, 1):
        c = hit.chunk
        blocks.append(f'<资料 n="{n}" 标题="{_attr(c.title)}" 日期="{_attr(c.date or "不详")}">\n{_data(c.text)}\n</资料>')
    return "\n\n".join(blocks)


# -- verification -----------------------------------------------------------------------------
def date_forms(date: str) -> str:
    """"2020-05-25" also as 2020年5月25日, so an answer's 5月25日 counts as supported."""
    m = re.match(r"^(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?", date or "")
    if not m:
        return date or ""
    y, mo, d = m.groups()
    zh = f"{y}年" + (f"{int(mo)}月" if mo else "") + (f"{int(d)}日" if d else "")
    return f"{date} {zh}"


def passage_support(hit: Hit) -> str:
    c = hit.chunk
    year = f"{c.year}年" if c.year else ""
    return "\n".join([c.title, date_forms(c.date), year, trusted_text(c.text)])


@dataclass(frozen=True)
class Check:
    ok: bool
    reason: str = ""  # Chinese, for Answer.note; "" when ok
    markers: tuple[int, ...] = ()  # distinct, in order of first use
    abstained: bool = False


def _with_unit(answer: str, number: str) -> str:
    """"1" -> "1万亿元" as written in the answer, so the note names the figure a reader saw."""
    text = normalize_for_match(answer)
    m = re.search(rf"(?<![\d.]){re.escape(number.rstrip('%'))}(?!\d|\.\d)%?{_UNIT}", text)
    return m.group(0) if m else number


def check_answer(answer: str, hits: Sequence[Hit], question: str) -> Check:
    """Is a generated answer grounded in the passages it cites? See the module docstring, step 4."""
    text = answer.strip()
    if not text:
        return Check(False, "生成的答案为空")
    abstained = bool(_ABSTAIN.search(normalize_for_match(text)))
    missing = bad_markers(text, len(hits))
    if missing:
        shown = "".join(f"[{m}]" for m in dict.fromkeys(missing))
        return Check(False, f"生成的答案引用了不存在的资料{shown}", abstained=abstained)
    markers = tuple(dict.fromkeys(markers_in(text)))
    if not markers and not abstained:
        return Check(False, "生成的答案没有标注资料出处")
    cited = [hits[m - 1] for m in markers] if markers else list(hits)  # an uncited abstention: any passage
    support = [passage_support(h) for h in cited]
    bad = unsupported_numbers(text, support, question)
    if bad:
        shown = "、".join(dict.fromkeys(_with_unit(text, n) for n in bad))
        where = "所引资料中没有的数字" if markers else "资料中没有的数字"
        return Check(False, f"生成的答案包含{where}：{shown}", markers, abstained)
    if not abstained:
        joined = normalize_for_match(" ".join(support))
        absent = [y for y in years_in(question) if str(y) not in joined]
        if absent:
            shown = "、".join(f"{y}年" for y in absent)
            return Check(False, f"生成的答案所引资料中没有{shown}的内容", markers, abstained)
    return Check(True, "", markers, abstained)


# -- the model --------------------------------------------------------------------------------
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


def visible_text(raw: str, final: bool = True) -> str:
    """The reply without <think>…</think> reasoning (Qwen3, DeepSeek-R1 distills served by
    Ollama or vLLM without a reasoning parser put it in the content). Its scratch numbers
    would fail verification, and staff should not see it stream by. With final=False (a
    stream in progress) an unclosed block and a trailing partial "<think" are held back, so
    successive results only grow; a reply whose opening tag was in the chat template shows
    its reasoning while it streams, and the final Answer drops it."""
    text = re.sub(r"<think>.*?</think>", "", raw, flags=re.S)
    if _THINK_CLOSE in text:  # the chat template opened the block (DeepSeek-R1): only its end is in the reply
        text = text[text.rindex(_THINK_CLOSE) + len(_THINK_CLOSE) :]
    open_at = text.find(_THINK_OPEN)
    if open_at >= 0:
        text = text[:open_at]
    if not final:
        for k in range(min(len(_THINK_OPEN) - 1, len(text)), 0, -1):
            if _THINK_OPEN.startswith(text[-k:]):
                text = text[:-k]
                break
    return text.lstrip()


class LLMError(RuntimeError):
    """The server failed, timed out or answered nothing; str() is the Chinese reason for the note."""


_DONE = object()


def _describe(exc: BaseException, timeout: float) -> str:
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai depends on it
        openai = None  # type: ignore[assignment]
    if openai is not None and isinstance(exc, openai.APITimeoutError):
        return f"生成服务超时（超过{timeout:g}秒）"
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return f"生成服务出错（HTTP {status}）"
    if openai is not None and isinstance(exc, openai.APIConnectionError):
        return "无法连接生成服务"
    return f"生成服务出错（{type(exc).__name__}）"


class LLMAnswerer:
    """A verified generated answer, with the extractive Answer as fallback; see the module docstring."""

    def __init__(self, settings: Settings, prompts_dir: Path = PROMPTS_DIR):
        if not settings.llm_enabled:
            raise ValueError("LLM answers need llm_base_url and llm_model (RAG_LLM_BASE_URL, RAG_LLM_MODEL)")
        try:
            from langchain_openai import ChatOpenAI
        except ImportError as exc:
            raise ImportError("generated answers need the 'llm' extra: pip install -e '.[llm]'") from exc
        self.settings = settings
        self.model = ChatOpenAI(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            # A local server (vLLM, Ollama) needs no key, but the client insists on one; a
            # placeholder also keeps an unrelated OPENAI_API_KEY from the environment from
            # being sent to whatever server base_url points at.
            api_key=settings.llm_api_key or "EMPTY",
            temperature=settings.llm_temperature,
            timeout=settings.llm_timeout,
            max_tokens=settings.llm_max_tokens,
            # langchain-openai sends max_completion_tokens; Ollama, Xinference and older vLLM
            # read only the older max_tokens, so send both.
            extra_body={"max_tokens": settings.llm_max_tokens},
            max_retries=0,  # a retry would double the wait past llm_timeout; the fallback is instant
        )
        self.answer_chain = load_prompt("answer", prompts_dir) | self.model | StrOutputParser()
        self.rewrite_chain = load_prompt("rewrite", prompts_dir) | self.model | StrOutputParser()

    # -- raw generation ---------------------------------------------------------------------
    def _stream(self, question: str, hits: Sequence[Hit], visible: "_Visible") -> Iterator[str]:
        inputs = {"question": question, "context": format_context(hits)}
        for piece in self._deadline(lambda cancel: self._pieces(self.answer_chain.stream(inputs), cancel)):
            shown = visible.feed(piece)
            if shown:
                yield shown
        shown = visible.finish()
        if shown:
            yield shown

    def generate(self, question: str, hits: Sequence[Hit]) -> str:
        """The whole answer text in one non-streaming request, unverified, reasoning hidden; raises LLMError."""
        inputs = {"question": question, "context": format_context(hits)}
        return visible_text("".join(self._deadline(lambda cancel: [self.answer_chain.invoke(inputs)])))

    def rewrite(self, turn: str, history: Sequence[str]) -> str:
        """A follow-up as a standalone question, from the model; raises LLMError."""
        lines = "\n".join(f"{i}. {q}" for i, q in enumerate(history, 1))
        inputs = {"history": lines, "question": turn}
        return visible_text("".join(self._deadline(lambda cancel: [self.rewrite_chain.invoke(inputs)])))

    @staticmethod
    def _pieces(chunks: Iterable[str], cancel: threading.Event) -> Iterator[str]:
        for piece in chunks:
            if cancel.is_set():
                return
            if piece:
                yield piece

    def _deadline(self, produce: Callable[[threading.Event], Iterable[str]]) -> Iterator[str]:
        """Runs `produce` in a worker thread and relays its pieces until llm_timeout has passed."""
        timeout = self.settings.llm_timeout
        out: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue()
        cancel = threading.Event()

        def work() -> None:
            try:
                for piece in produce(cancel):
                    out.put((piece, None))
                out.put((_DONE, None))
            except BaseException as exc:  # relayed to the caller's thread
                out.put((None, exc))

        threading.Thread(target=work, name="llm-call", daemon=True).start()
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    piece, error = out.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise LLMError(f"生成服务超时（超过{timeout:g}秒）") from None
                if error is not None:
                    if isinstance(error, LLMError):
                        raise error
                    reason = _describe(error, timeout)
                    log.warning("LLM call failed: %s: %s", type(error).__name__, reason)
                    raise LLMError(reason) from None
                if piece is _DONE:
                    return
                yield piece
        finally:
            cancel.set()  # the worker stops at its next chunk; httpx's own timeout ends a stuck read

    # -- verified answers -------------------------------------------------------------------
    def retrieval_question(self, turn: str, history: Sequence[str]) -> str:
        """The standalone question to search: the model's rewrite, else rag.followup's rules."""
        if not history:
            return turn
        try:
            text = self.rewrite(turn, history)
        except LLMError as exc:
            log.info("rewrite failed (%s), using the rule-based follow-up", exc)
            return standalone_question(turn, history)
        rewritten = _clean_rewrite(text)
        allowed = set(numbers_in(turn + " " + " ".join(history)))
        invented = [n for n in numbers_in(rewritten) if n not in allowed]
        if not rewritten or len(rewritten) > self.settings.max_question_chars or invented:
            log.info("rewrite rejected, using the rule-based follow-up")
            return standalone_question(turn, history)
        return rewritten

    def answer(self, question: str, fallback: Answer) -> Answer:
        """Generate (non-streaming), verify, and return the LLM answer or the fallback."""
        for item in self._answer(question, fallback, streaming=False):
            if isinstance(item, Answer):
                return item
        raise AssertionError("unreachable: _answer always ends with an Answer")

    def answer_stream(self, question: str, fallback: Answer) -> Iterator[str | Answer]:
        """Yields answer text as it is generated, then the verified Answer (maybe the fallback).

        If nothing was streamed (the server failed at once), the final text is yielded as one
        piece first, so a client that only concatenates pieces still shows an answer."""
        yield from self._answer(question, fallback, streaming=True)

    def _answer(self, question: str, fallback: Answer, streaming: bool) -> Iterator[str | Answer]:
        hits = list(fallback.contexts)
        if not hits:  # nothing retrieved: nothing to generate from
            if streaming:
                yield fallback.answer
            yield fallback
            return
        query = fallback.retrieval_question or question
        t0 = time.perf_counter()
        visible = _Visible()
        streamed = False
        reason = ""
        try:
            if streaming:
                for piece in self._stream(query, hits, visible):
                    streamed = True
                    yield piece
            else:
                visible.feed(self.generate(query, hits))
        except LLMError as exc:
            reason = str(exc)
        llm_ms = (time.perf_counter() - t0) * 1000
        text = visible.text.strip()
        check = None
        if not reason:
            check = check_answer(text, hits, f"{question} {query}")
            reason = check.reason
        if reason:
            log.info("generated answer not used: %s", reason)
            result = replace(
                fallback,
                mode="llm-fallback",
                note=reason + FALLBACK_SUFFIX,
                timings_ms={**fallback.timings_ms, "llm_ms": llm_ms},
            )
            if any(_INSTRUCTION.search(c.quote) for c in fallback.citations):
                # The extractive answerer quoted an injected instruction as if it were news.
                result.answer, result.abstained, result.citations = UNTRUSTED_QUOTE, True, []
                result.note += "；摘录的句子疑似写给模型的指令，不作为答案"
        else:
            assert check is not None
            result = Answer(
                question=fallback.question,
                answer=text,
                abstained=check.abstained,
                citations=[_citation(n, hits[n - 1]) for n in check.markers],
                contexts=hits,
                timings_ms={**fallback.timings_ms, "llm_ms": llm_ms},
                mode="llm",
                kind=fallback.kind,
                note="",
                retrieval_question=fallback.retrieval_question,
            )
        if streaming and not streamed:
            yield result.answer
        yield result


class _Visible:
    """Turns raw streamed pieces into increments of `visible_text`, which only ever grow."""

    def __init__(self) -> None:
        self.raw = ""
        self.shown = ""

    def feed(self, piece: str) -> str:
        self.raw += piece
        return self._advance(visible_text(self.raw, final=False))

    def finish(self) -> str:
        return self._advance(self.text)

    @property
    def text(self) -> str:
        return visible_text(self.raw, final=True)

    def _advance(self, visible: str) -> str:
        if len(visible) <= len(self.shown) or not visible.startswith(self.shown):
            return ""  # nothing new, or reasoning already shown turned out hidden: the final Answer fixes it
        new, self.shown = visible[len(self.shown) :], visible
        return new


def _citation(n: int, hit: Hit) -> Citation:
    c = hit.chunk
    return Citation(
        n=n, article_id=c.article_id, title=c.title, date=c.date, source=c.source, quote=c.text, start=c.start, end=c.end
    )


def _clean_rewrite(text: str) -> str:
    line = next((s.strip() for s in text.strip().splitlines() if s.strip()), "")
    line = re.sub(r"^(?:改写后的(?:完整)?问题|完整问题|问题)[:：]\s*", "", line)
    return line.strip(" \"'“”‘’「」")
