"""Sentence-aware chunking of Chinese article bodies, with offsets for exact citations.

Sentences end at 。！？；… (and a closing quote right after them) or at a paragraph break.
Chunks pack whole sentences up to `size` characters and repeat the last sentences of the
previous chunk up to `overlap` characters, so a fact that straddles a boundary is whole in
at least one chunk. A sentence longer than `size` is cut at a comma, or failing that at
a character that is not inside a number (13.92亿元 never becomes 13. | 92亿元).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .records import Article, Chunk, short_hash
from .zh import CLAUSE_END_CHARS, SENTENCE_END_RE, inside_number

_SENT_END = re.compile(rf"{SENTENCE_END_RE.pattern}|\n+")
# where an over-long sentence may be cut: clause ends and the enumeration comma
_SOFT_BREAK = CLAUSE_END_CHARS + "、"


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence; whitespace-only pieces are dropped, offsets are exact."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENT_END.finditer(text):
        end = m.end() if text[m.start()] != "\n" else m.start()
        if text[start:end].strip():
            spans.append(_strip(text, start, end))
        start = m.end()
    if text[start:].strip():
        spans.append(_strip(text, start, len(text)))
    return spans


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _split_long(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    pieces: list[tuple[int, int]] = []
    while end - start > size:
        cut = -1
        for j in range(start + size, start + size // 2, -1):
            if text[j - 1] in _SOFT_BREAK:
                cut = j
                break
        if cut < 0:
            cut = start + size
            while cut > start + 1 and inside_number(text, cut):
                cut -= 1
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces


def sentence_units(text: str, size: int) -> list[tuple[int, int]]:
    """(start, end) of each sentence, over-long ones cut into pieces of at most `size`."""
    units: list[tuple[int, int]] = []
    for s, e in sentence_spans(text):
        units.extend(_split_long(text, s, e, size))
    return units


def chunk_article(article: Article, size: int = 300, overlap: int = 60) -> list[Chunk]:
    body = article.body
    units = sentence_units(body, size)
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j = i
        start = units[i][0]
        while j + 1 < len(units) and units[j + 1][1] - start <= size:
            j += 1
        end = units[j][1]
        text = body[start:end]
        chunks.append(
            Chunk(
                id=short_hash(article.id, str(start), text),
                article_id=article.id,
                text=text,
                start=start,
                end=end,
                title=article.title,
                source=article.source,
                date=article.date,
                year=article.year,
            )
        )
        if j + 1 >= len(units):
            break
        # next chunk starts with the trailing sentences that fit in the overlap budget
        k = j + 1
        while k - 1 > i and end - units[k - 1][0] <= overlap:
            k -= 1
        i = k
    return chunks


def chunk_articles(articles: Iterable[Article], size: int = 300, overlap: int = 60) -> list[Chunk]:
    return [c for a in articles for c in chunk_article(a, size, overlap)]
