"""HTML for the web chat: an answer with linked citation markers and checkable sources.

Pure functions from records to HTML strings, so the escaping can be tested without a server.

Safety: every piece of archive or user text goes through `esc`, which is `html.escape` plus
numeric entities for the characters Markdown and KaTeX act on (``[ ] ( ) * _ ` $ ~ | \\ ! { }``).
The chat component renders Markdown before its own sanitizer runs, so escaping HTML alone would
still let ``[x](javascript:...)`` in an article become a link. Each message is emitted as one
line of HTML inside a single ``<div>``: Markdown treats that as a raw HTML block and leaves it
alone (a blank line would end the block, hence paragraphs become ``<br>``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping

from .records import Answer, Article, Citation, Hit

ABSTAIN_LABEL = "最接近的资料（未能直接回答）"
SOURCES_LABEL = "来源"
RETRIEVAL_LABEL = "检索问题："
MISSING_INDEX_HINT = "尚未建立索引。请先在项目目录运行 python -m rag.index（或 bash scripts/run.sh），然后刷新本页。"

Lookup = Callable[[str], Article | None]

_MARKDOWN_SPECIALS = {ord(c): f"&#{ord(c)};" for c in "[]()*_`$~|\\!{}"}
_MARKER = re.compile(r"\[(\d+)\]")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def esc(text: str | None) -> str:
    """Text -> inert HTML: no tag, attribute, Markdown link or LaTeX can come out of it."""
    out = html.escape(text or "", quote=True).translate(_MARKDOWN_SPECIALS)
    return out.replace("\r\n", "\n").replace("\n", "<br>")


def highlight(text: str, start: int, end: int) -> str:
    """Escaped `text` with text[start:end] wrapped in <mark>; offsets are clamped to the text."""
    start = max(0, min(start, len(text)))
    end = max(start, min(end, len(text)))
    if start == end:
        return esc(text)
    return f"{esc(text[:start])}<mark>{esc(text[start:end])}</mark>{esc(text[end:])}"


def passage(body: str, start: int, end: int, margin: int = 50) -> str:
    """The quote in a little context: up to `margin` characters either side, within its paragraph."""
    start = max(0, min(start, len(body)))
    end = max(start, min(end, len(body)))
    lo = max(body.rfind("\n", 0, start) + 1, start - margin)
    nl = body.find("\n", end)
    hi = min(nl if nl >= 0 else len(body), end + margin)
    lead = "…" if lo > 0 and body[lo - 1] != "\n" else ""
    tail = "…" if hi < len(body) and body[hi] != "\n" else ""
    return lead + highlight(body[lo:hi], start - lo, end - lo) + tail


def anchor_id(turn: int, n: int) -> str:
    return f"src-{turn}-{n}"


def render_question(text: str) -> str:
    return f'<div class="rag-q">{esc(text)}</div>'


def render_pending(text: str) -> str:
    """Answer text while it streams in: plain escaped text, markers not yet linked."""
    return f'<div class="rag-answer rag-pending">{esc(text)}</div>'


def render_notice(text: str, kind: str = "info") -> str:
    cls = "rag-notice rag-error" if kind == "error" else "rag-notice"
    return f'<div class="{cls}">{esc(text)}</div>'


def _linked_answer(text: str, turn: int, numbers: set[int]) -> str:
    """Escape the answer and turn each known [n] into a link to its source entry."""
    parts: list[str] = []
    pos = 0
    for m in _MARKER.finditer(text):
        n = int(m.group(1))
        if n not in numbers:
            continue
        parts.append(esc(text[pos : m.start()]))
        parts.append(f'<a class="rag-cite" href="#{anchor_id(turn, n)}">&#91;{n}&#93;</a>')
        pos = m.end()
    parts.append(esc(text[pos:]))
    return "".join(parts)


def _meta(date: str, source: str) -> str:
    return f'<span class="rag-src-meta">{esc(date or "日期不详")} · <span class="rag-src-file">{esc(source)}</span></span>'


def _entry(head: str, title: str, date: str, source: str, shown: str, full: str | None, elem_id: str = "") -> str:
    """One source: title, date, file, the passage shown, the full article folded away."""
    id_attr = f' id="{elem_id}"' if elem_id else ""
    folded = f'<details class="rag-full"><summary>展开全文</summary><div class="rag-body">{full}</div></details>' if full is not None else ""
    return (
        f'<div class="rag-src"{id_attr}>'
        f'<div class="rag-src-head">{head}<span class="rag-src-title">《{esc(title or "无标题")}》</span>{_meta(date, source)}</div>'
        f'<div class="rag-quote">{shown}</div>{folded}</div>'
    )


def _citation_entry(c: Citation, turn: int, lookup: Lookup) -> str:
    """The quote marked in its context and in the full article, at the citation's offsets."""
    article = lookup(c.article_id)
    head = f'<span class="rag-src-n">&#91;{c.n}&#93;</span>'
    if article is None:  # the index changed under the answer: the quote is all we have
        return _entry(head, c.title, c.date, c.source, f"<mark>{esc(c.quote)}</mark>", None, anchor_id(turn, c.n))
    shown = passage(article.body, c.start, c.end)
    return _entry(head, c.title, c.date, c.source, shown, highlight(article.body, c.start, c.end), anchor_id(turn, c.n))


def _context_entry(h: Hit, lookup: Lookup, preview: int = 120) -> str:
    """A retrieved passage that did not answer: shown plainly, nothing marked as if quoted."""
    article = lookup(h.chunk.article_id)
    c = h.chunk
    text = " ".join(c.text.split())
    shown = esc(text[:preview] + ("…" if len(text) > preview else ""))
    return _entry('<span class="rag-src-n">·</span>', c.title, c.date, c.source, shown, esc(article.body) if article else None)


def _user_notes(note: str) -> list[str]:
    """Parts of Answer.note written for people (Chinese); diagnostic English codes stay out."""
    return [p for p in re.split(r"[；;]", note or "") if _CJK.search(p)]


def render_answer(answer: Answer, lookup: Lookup, turn: int, n_closest: int = 3) -> str:
    """The whole assistant message for one turn; `turn` makes anchor ids unique in the chat.

    The standalone query is shown only when the follow-up logic changed the question, so the
    user can see what was actually searched."""
    citations: list[Citation] = []
    seen: set[int] = set()
    for c in answer.citations:
        if c.n not in seen:
            seen.add(c.n)
            citations.append(c)
    cls = "rag-answer rag-abstained" if answer.abstained else "rag-answer"
    out = [f'<div class="{cls}">']
    rq = answer.retrieval_question or answer.question
    if rq != answer.question:
        out.append(f'<div class="rag-rq">{RETRIEVAL_LABEL}{esc(rq)}</div>')
    out.append(f'<div class="rag-text">{_linked_answer(answer.answer, turn, seen)}</div>')
    for note in _user_notes(answer.note):
        out.append(f'<div class="rag-note">说明：{esc(note.strip())}</div>')
    entries = [_citation_entry(c, turn, lookup) for c in citations]
    if answer.abstained:
        shown = {c.article_id for c in citations}
        for h in answer.contexts:
            if len(shown) >= len(citations) + n_closest:
                break
            if h.chunk.article_id in shown:
                continue
            shown.add(h.chunk.article_id)
            entries.append(_context_entry(h, lookup))
        if entries:
            out.append(f'<div class="rag-sources rag-closest"><div class="rag-sources-label">{ABSTAIN_LABEL}</div>{"".join(entries)}</div>')
    elif entries:
        out.append(f'<div class="rag-sources"><div class="rag-sources-label">{SOURCES_LABEL}</div>{"".join(entries)}</div>')
    out.append("</div>")
    return "".join(out)


def render_status(status: Mapping[str, object] | None, problem: str = "") -> str:
    """The index status line; `problem` (e.g. no index yet) replaces it with what to do."""
    if problem or not status:
        return f'<div class="rag-status rag-error">{esc(problem or MISSING_INDEX_HINT)}</div>'
    parts = [
        f"文章 {esc(str(status.get('articles', 0)))} 篇",
        f"片段 {esc(str(status.get('chunks', 0)))} 个",
        f"向量模型 {esc(str(status.get('embedder', '')))}",
        f"发布于 {esc(str(status.get('published_at', '')))}",
        f"版本 {esc(str(status.get('version', '')))}",
    ]
    return f'<div class="rag-status">索引：{" · ".join(parts)}</div>'
