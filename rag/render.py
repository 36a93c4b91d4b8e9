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

import datetime as dt
import html
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .records import Answer, Article, Citation, Hit

ABSTAIN_LABEL = "最接近的资料（未能直接回答）"
SOURCES_LABEL = "来源"
RETRIEVAL_LABEL = "检索问题："
MISSING_INDEX_HINT = "资料库还没有建立索引，暂时无法回答。请打开“资料库”页面上传报纸文本，再点击“更新索引”。"
MISMATCH_HINT = "资料库的索引需要重新生成（程序或设置已更新）。请打开“资料库”页面点击“更新索引”。"
ACTIONS = (("copy", "复制"), ("export", "导出 Markdown"))

Lookup = Callable[[str], Article | None]
Labels = Mapping[str, str]  # corpus file -> page label ("经开时报 2020-05-25 第3版")

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


def date_label(date: str = "", year: int | None = None) -> str:
    """"2020-05-25" -> "2020年5月25日", "2020-06" -> "2020年6月", a year alone -> "2020年", else ""."""
    m = re.match(r"^(\d{4})-(\d{1,2})(?:-(\d{1,2}))?", date or "")
    if m:
        return f"{m[1]}年{int(m[2])}月" + (f"{int(m[3])}日" if m[3] else "")
    return f"{year}年" if year else ""


def caption(source: str, date: str, year: int | None, labels: Labels | None) -> str:
    """Where a passage comes from, for people: issue date and page label, never the file's hash name."""
    when = date_label(date, year)
    label = (labels or {}).get(source, "")
    if not label:
        return when or "日期不详"
    if not when or when in label or (date and date in label):
        return label
    return f"{when} · {label}"


def _meta(text: str) -> str:
    return f'<span class="rag-src-meta">{esc(text)}</span>'


def _entry(head: str, title: str, meta: str, shown: str, full: str | None, elem_id: str = "") -> str:
    """One source: title, issue date and page, the passage shown, the full article folded away."""
    id_attr = f' id="{elem_id}"' if elem_id else ""
    folded = f'<details class="rag-full"><summary>展开全文</summary><div class="rag-body">{full}</div></details>' if full is not None else ""
    return (
        f'<div class="rag-src"{id_attr}>'
        f'<div class="rag-src-head">{head}<span class="rag-src-title">《{esc(title or "无标题")}》</span>{_meta(meta)}</div>'
        f'<div class="rag-quote">{shown}</div>{folded}</div>'
    )


def _citation_entry(c: Citation, turn: int, lookup: Lookup, labels: Labels | None) -> str:
    """The quote marked in its context and in the full article, at the citation's offsets."""
    article = lookup(c.article_id)
    head = f'<span class="rag-src-n">&#91;{c.n}&#93;</span>'
    meta = caption(c.source, c.date or (article.date if article else ""), article.year if article else None, labels)
    if article is None:  # the index changed under the answer: the quote is all we have
        return _entry(head, c.title, meta, f"<mark>{esc(c.quote)}</mark>", None, anchor_id(turn, c.n))
    shown = passage(article.body, c.start, c.end)
    return _entry(head, c.title, meta, shown, highlight(article.body, c.start, c.end), anchor_id(turn, c.n))


def _context_entry(h: Hit, lookup: Lookup, labels: Labels | None, preview: int = 120) -> str:
    """A retrieved passage that did not answer: shown plainly, nothing marked as if quoted."""
    article = lookup(h.chunk.article_id)
    c = h.chunk
    text = " ".join(c.text.split())
    shown = esc(text[:preview] + ("…" if len(text) > preview else ""))
    meta = caption(c.source, c.date, c.year, labels)
    return _entry('<span class="rag-src-n">·</span>', c.title, meta, shown, esc(article.body) if article else None)


def _user_notes(note: str) -> list[str]:
    """Parts of Answer.note written for people (Chinese); diagnostic English codes stay out."""
    return [p for p in re.split(r"[；;]", note or "") if _CJK.search(p)]


def filter_note(year_from: int | None, year_to: int | None, sources: Sequence[str] = (), labels: Labels | None = None) -> str:
    """"已筛选：2020–2021年 · 经开时报 2020年6月" for an answer made under a filter, "" without one."""
    parts = []
    if year_from and year_to:
        parts.append(f"{year_from}年" if year_from == year_to else f"{year_from}–{year_to}年")
    elif year_from:
        parts.append(f"{year_from}年起")
    elif year_to:
        parts.append(f"{year_to}年及以前")
    if sources:
        names = [(labels or {}).get(s, s) for s in sorted(sources)]
        parts.append(names[0] if len(names) == 1 else f"{names[0]} 等 {len(names)} 版")
    return "已筛选：" + " · ".join(parts) if parts else ""


def _unique_citations(answer: Answer) -> list[Citation]:
    seen: set[int] = set()
    out = []
    for c in answer.citations:
        if c.n not in seen:
            seen.add(c.n)
            out.append(c)
    return out


def _year_of(article_id: str, lookup: Lookup) -> int | None:
    article = lookup(article_id)
    return article.year if article else None


def split_lead(answer: Answer) -> tuple[str, str]:
    """(lead line, rest of the answer text). The answerer writes its short answer (`lead`) as the
    first line of `answer.answer` ("13.92亿元[1]\n截至目前…[1]"); an answer whose text does not
    start with it gets the lead alone as its first line."""
    lead = getattr(answer, "lead", "") or ""
    if not lead:
        return "", answer.answer
    first, _, rest = answer.answer.partition("\n")
    if first.startswith(lead):
        return first, rest
    return lead, answer.answer


def answer_text(answer: Answer, lookup: Lookup, labels: Labels | None = None, chip: str = "") -> str:
    """The answer as plain text for the clipboard: lead, answer, sources."""
    lead, rest = split_lead(answer)
    lines = [lead] if lead else []
    lines.append(rest)
    if chip:
        lines.append(f"（{chip}）")
    cites = _unique_citations(answer)
    if cites:
        lines.append("来源：")
        for c in cites:
            lines.append(f"[{c.n}]《{c.title}》{caption(c.source, c.date, _year_of(c.article_id, lookup), labels)}")
    return "\n".join(lines)


def answer_markdown(answer: Answer, lookup: Lookup, labels: Labels | None = None, chip: str = "") -> str:
    """One answer with its sources as a Markdown document (the 导出 Markdown link)."""
    lead, rest = split_lead(answer)
    out = [f"# 经开问答：{answer.question}", ""]
    if chip:
        out += [f"*{chip}*", ""]
    if lead:
        out += [f"**{lead}**", ""]
    out += [rest, ""]
    cites = _unique_citations(answer)
    if cites:
        out += ["## 来源", ""]
        for c in cites:
            where = caption(c.source, c.date, _year_of(c.article_id, lookup), labels)
            out.append(f"{c.n}. 《{c.title}》，{where}")
            out += [f"   > {line}" for line in c.quote.splitlines() if line.strip()]
        out.append("")
    return "\n".join(out)


def _actions(copy_text: str, markdown: str) -> str:
    """复制 / 导出 links (plain #-links survive the chat's sanitizer; app.HEAD handles the click)
    with their payloads in hidden blocks, escaped like everything else."""
    links = "".join(f'<a class="rag-act" href="#rag-{key}">{label}</a>' for key, label in ACTIONS)
    return (
        f'<div class="rag-acts">{links}</div>'
        f'<div class="rag-copytext" hidden>{esc(copy_text)}</div><div class="rag-md" hidden>{esc(markdown)}</div>'
    )


def render_answer(
    answer: Answer,
    lookup: Lookup,
    turn: int,
    n_closest: int = 3,
    labels: Labels | None = None,
    chip: str = "",
    suggestions: Sequence[str] = (),
) -> str:
    """The whole assistant message for one turn; `turn` makes anchor ids unique in the chat.

    `chip` says which filter the answer was made under. The standalone query is shown only when
    the follow-up logic changed the question, so the user can see what was actually searched.
    The short answer (`lead`, when the answerer gives one) comes first, in bold."""
    citations = _unique_citations(answer)
    numbers = {c.n for c in citations}
    cls = "rag-answer rag-abstained" if answer.abstained else "rag-answer"
    out = [f'<div class="{cls}">']
    if chip:
        out.append(f'<div class="rag-chip">{esc(chip)}</div>')
    rq = answer.retrieval_question or answer.question
    if rq != answer.question:
        out.append(f'<div class="rag-rq">{RETRIEVAL_LABEL}{esc(rq)}</div>')
    lead, rest = split_lead(answer)
    if lead:
        out.append(f'<div class="rag-lead"><strong>{_linked_answer(lead, turn, numbers)}</strong></div>')
    out.append(f'<div class="rag-text">{_linked_answer(rest, turn, numbers)}</div>')
    for note in _user_notes(answer.note):
        out.append(f'<div class="rag-note">说明：{esc(note.strip())}</div>')
    entries = [_citation_entry(c, turn, lookup, labels) for c in citations]
    if answer.abstained:
        shown = {c.article_id for c in citations}
        for h in answer.contexts:
            if len(shown) >= len(citations) + n_closest:
                break
            if h.chunk.article_id in shown:
                continue
            shown.add(h.chunk.article_id)
            entries.append(_context_entry(h, lookup, labels))
        if entries:
            out.append(f'<div class="rag-sources rag-closest"><div class="rag-sources-label">{ABSTAIN_LABEL}</div>{"".join(entries)}</div>')
    elif entries:
        out.append(f'<div class="rag-sources"><div class="rag-sources-label">{SOURCES_LABEL}</div>{"".join(entries)}</div>')
    if suggestions:
        out.append(render_suggestions(suggestions))
    out.append(_actions(answer_text(answer, lookup, labels, chip), answer_markdown(answer, lookup, labels, chip)))
    out.append("</div>")
    return "".join(out)


def render_suggestions(questions: Sequence[str]) -> str:
    links = "".join(f'<a class="rag-suggest" href="#rag-ask">{esc(q)}</a>' for q in questions)
    return f'<div class="rag-suggests"><span class="rag-suggests-label">还可以问：</span>{links}</div>'


def with_suggestions(answer_html: str, questions: Sequence[str]) -> str:
    """An already rendered answer with follow-up questions added above its 复制/导出 links."""
    marker = '<div class="rag-acts">'
    if not questions or marker not in answer_html or "rag-suggests" in answer_html:
        return answer_html
    head, _, tail = answer_html.rpartition(marker)
    return head + render_suggestions(questions) + marker + tail


def published_label(published_at: str, now: dt.datetime | None = None) -> str:
    """"2026-12-01T20:18:49+0000" -> "12月1日 20:18" (the year only when it is not this year)."""
    try:
        t = dt.datetime.strptime(published_at, "%Y-%m-%dT%H:%M:%S%z")
    except (TypeError, ValueError):
        return ""
    now = now or dt.datetime.now(t.tzinfo)
    year = "" if t.year == now.year else f"{t.year}年"
    return f"{year}{t.month}月{t.day}日 {t:%H:%M}"


def status_text(status: Mapping[str, Any]) -> str:
    """"已收录 5 版报纸 · 32 篇文章 · 更新于 12月1日 20:18"."""
    parts = [f"已收录 {int(status.get('files', 0) or 0)} 版报纸", f"{int(status.get('articles', 0) or 0)} 篇文章"]
    when = published_label(str(status.get("published_at", "")))
    if when:
        parts.append(f"更新于 {when}")
    if status.get("dense_label"):
        parts.append(str(status["dense_label"]))
    return " · ".join(parts)


def render_status(status: Mapping[str, object] | None, problem: str = "", rebuilding: str = "") -> str:
    """The one-line index status; `problem` (e.g. no index yet) replaces it with what to do."""
    if problem or not status:
        return f'<div class="rag-status rag-error">{esc(problem or MISSING_INDEX_HINT)}</div>'
    extra = f'<span class="rag-status-busy"> · {esc(rebuilding)}</span>' if rebuilding else ""
    return f'<div class="rag-status">{esc(status_text(status))}{extra}</div>'


# -- archive page ------------------------------------------------------------------------------
def _time_label(iso: str) -> str:
    try:
        t = dt.datetime.fromisoformat(iso)
    except ValueError:
        return esc(iso)
    year = "" if t.year == dt.datetime.now(t.tzinfo).year else f"{t.year}年"
    return f"{year}{t.month}月{t.day}日 {t:%H:%M}"


def render_archive(entries: Sequence[Any]) -> str:
    """The archive table (rag.archive.ArchiveEntry rows): one line a page, problems spelled out.

    Each cell names its column (data-label), so a phone shows a row as a card (app.CSS)."""
    if not entries:
        return '<div class="rag-archive-empty">资料库是空的。请在上方选择报纸文本文件（.txt 或 .md）上传。</div>'
    rows = []
    for e in entries:
        titles = "；".join(f"《{t}》" for t in e.titles[:6]) + (f" 等 {len(e.titles)} 篇" if len(e.titles) > 6 else "")
        state_cls = {"已收录": "ok", "待重建": "todo", "有问题": "bad"}.get(e.state, "todo")
        problem = f'<div class="rag-problem">{esc(e.problem)}</div>' if e.problem else ""
        rows.append(
            "<tr>"
            f'<td class="rag-file"><div class="rag-file-label">{esc(e.label)}</div><div class="rag-file-name">{esc(e.file)}</div></td>'
            f'<td data-label="报纸日期">{esc(e.issue_date or "日期不详")}</td>'
            f'<td class="rag-num" data-label="文章数">{e.articles}</td>'
            f'<td class="rag-titles" data-label="文章标题">{esc(titles) or "—"}</td>'
            f'<td data-label="收录时间">{_time_label(e.indexed_at) if e.indexed_at else "—"}</td>'
            f'<td data-label="状态"><span class="rag-state rag-state-{state_cls}">{esc(e.state)}</span>{problem}</td>'
            "</tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("文件", "报纸日期", "文章数", "文章标题", "收录时间", "状态"))
    return f'<div class="rag-archive-wrap"><table class="rag-archive"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} 秒"
    return f"{seconds // 60} 分 {seconds % 60:02d} 秒"


def render_rebuild(status: Mapping[str, Any]) -> str:
    """The rebuild job (RebuildStatus.to_json()) as a progress bar with an ETA, or its outcome."""
    state = status.get("state", "idle")
    if state == "idle":
        return '<div class="rag-job rag-job-idle">上传或移除文件后，点击“更新索引”使改动生效；更新期间问答照常使用现有资料。</div>'
    pct = int(round(100 * float(status.get("fraction", 0) or 0)))
    message = esc(str(status.get("message", "")))
    if state == "running":
        eta = status.get("eta_s")
        eta_text = f"，预计还需约 {_duration(eta)}" if eta is not None else "，正在估算剩余时间"
        return (
            f'<div class="rag-job rag-job-running"><div class="rag-job-line">正在更新索引：{esc(str(status.get("stage", "")))} {pct}%{eta_text}'
            f'（问答仍使用更新前的资料）</div><div class="rag-bar"><div class="rag-bar-fill" style="width:{pct}%"></div></div>'
            f'<div class="rag-job-detail">{message}</div></div>'
        )
    cls = "rag-job-done" if state == "done" else "rag-job-failed"
    took = ""
    if status.get("started_at") and status.get("finished_at"):
        took = f"（用时 {_duration(float(status['finished_at']) - float(status['started_at']))}）"
    skipped = "".join(f'<li>{esc(s["file"])}：{esc(s["reason"])}</li>' for s in status.get("skipped", []))
    skipped = f'<ul class="rag-job-skipped">{skipped}</ul>' if skipped else ""
    return f'<div class="rag-job {cls}"><div class="rag-job-line">{message}{took}</div>{skipped}</div>'


def render_uploads(results: Sequence[Any]) -> str:
    """What happened to each uploaded file (rag.archive.UploadResult)."""
    if not results:
        return ""
    items = "".join(f'<li class="{"rag-up-ok" if r.ok else "rag-up-bad"}">{"✓" if r.ok else "✗"} {esc(r.message)}</li>' for r in results)
    return f'<ul class="rag-uploads">{items}</ul>'
