"""Checks that an answer says nothing the archive does not: numbers and citation markers.

Used on every generated (LLM) answer before it is shown, by the tests on the extractive
answerer, and by the eval harness's unsupported-number rate.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

# 13.92 / 1,361.26 / 62.5% / 2020 ; a Chinese date like 5月25日 yields 5 and 25
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*%?")
_MARKER = re.compile(r"\[(\d{1,3})\]")


def normalize_for_match(text: str) -> str:
    """NFKC (width) and no whitespace: how evidence and answers are compared everywhere."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def numbers_in(text: str) -> list[str]:
    text = _MARKER.sub(" ", unicodedata.normalize("NFKC", text))
    return [n.replace(",", "") for n in _NUMBER.findall(text)]


def unsupported_numbers(answer: str, passages: Iterable[str], question: str = "") -> list[str]:
    """Numbers in the answer found neither in a cited passage nor in the question itself."""
    support = " ".join(normalize_for_match(p).replace(",", "") for p in passages)
    asked = set(numbers_in(question))
    bad = []
    for n in numbers_in(answer):
        core = n.rstrip("%")
        if n in asked or core in asked:
            continue
        if not re.search(rf"(?<![\d.]){re.escape(core)}(?!\d|\.\d)", support):
            bad.append(n)
    return bad


def markers_in(answer: str) -> list[int]:
    return [int(m) for m in _MARKER.findall(answer)]


def bad_markers(answer: str, n_passages: int) -> list[int]:
    return [m for m in markers_in(answer) if not 1 <= m <= n_passages]


def contains_answer(text: str, answers: Sequence[str], require_all: bool = False) -> bool:
    """Gold matching: NFKC, whitespace ignored; any answer suffices unless require_all (lists)."""
    if not answers:
        return False
    t = normalize_for_match(text)
    hits = [normalize_for_match(a) in t for a in answers]
    return all(hits) if require_all else any(hits)
