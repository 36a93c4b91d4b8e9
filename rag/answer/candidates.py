"""Retrieved articles → quotable spans: sentences, clipped clause windows, adjacent pairs.

Only text addressed to a reader is quotable: a sentence that reads as an instruction to a
model, and the rest of its paragraph, is never a candidate (rag.verify.trusted_limit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

from .. import zh
from ..chunk import sentence_spans
from ..records import Article, Hit
from ..verify import trusted_limit
from .types import AnswerParams, Analysis, Span

PAIR_SLOTS = frozenset({"list", "description", "person", "role", "organization", "place"})


@lru_cache(maxsize=4096)
def _sentences(body: str) -> tuple[tuple[int, int], ...]:
    return tuple((s, e) for s, e in sentence_spans(body) if e <= trusted_limit(body, s))


def spans_for(
    analysis: Analysis,
    hits: Sequence[Hit],
    article: Callable[[str], Article],
    params: AnswerParams,
    token_set: Callable[[str], frozenset[str]],
    from_yearless: bool = False,
) -> list[Span]:
    out: list[Span] = []
    passage = analysis.slot == "description"  # a why/how/what-is-it answer runs over sentences: quote more
    max_quote = params.passage_max if passage else params.max_quote
    for hit in hits[: params.max_articles]:
        art = article(hit.chunk.article_id)
        body = art.body
        sentences = _sentences(body)
        for s, e in sentences:
            for cs, ce in clip(body, s, e, analysis.weights, max_quote, token_set):
                out.append(Span(art, hit, cs, ce, 1, from_yearless))
        if analysis.slot in PAIR_SLOTS:
            for (s1, e1), (s2, e2) in zip(sentences, sentences[1:]):
                if "\n" not in body[e1:s2] and e2 - s1 <= params.pair_max:
                    out.append(Span(art, hit, s1, e2, 2, from_yearless))
        if passage:
            for (s1, e1), (s2, _), (s3, e3) in zip(sentences, sentences[1:], sentences[2:]):
                if "\n" not in body[e1:s3] and e3 - s1 <= params.passage_max:
                    out.append(Span(art, hit, s1, e3, 3, from_yearless))
    return out


def clip(
    body: str,
    start: int,
    end: int,
    weights: dict[str, float],
    max_chars: int,
    token_set: Callable[[str], frozenset[str]],
) -> list[tuple[int, int]]:
    """A long sentence becomes its best window of whole clauses, at most `max_chars`.

    The window is widened leftwards to the clause naming a year when the best window itself
    names none, so a clipped quote never loses the year it is about (进出口总额)."""
    if end - start <= max_chars:
        return [(start, end)]
    cuts = sorted({start, end, *(m.end() for m in zh.CLAUSE_END_RE.finditer(body, start, end))})
    best: tuple[float, int, int] | None = None
    for i in range(len(cuts) - 1):
        for j in range(i + 1, len(cuts)):
            if cuts[j] - cuts[i] > max_chars and j > i + 1:
                break
            toks = token_set(body[cuts[i] : cuts[j]])
            value = sum(w for t, w in weights.items() if t in toks) - 0.001 * (cuts[j] - cuts[i])
            if best is None or value > best[0]:
                best = (value, cuts[i], cuts[j])
    assert best is not None
    s, e = best[1], best[2]
    if not zh.YEAR_RE.search(body[s:e]):
        earlier = list(zh.YEAR_RE.finditer(body, start, s))
        if earlier:
            clause = max((c for c in cuts if c <= earlier[-1].start()), default=start)
            if e - clause <= max_chars * 1.5:
                s = clause
    while e > s and body[e - 1] in zh.CLAUSE_END_CHARS + " ":
        e -= 1
    return [(s, e)]
