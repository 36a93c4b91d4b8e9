"""Parallel tokenizing (issue 13 item 6) gives the very tokens of one process, in order."""

from __future__ import annotations

import pytest

from rag.profile import load_profile
from rag.settings import BUNDLED_CORPUS
from rag.tokenize import tokenize_many, tokenizer_for


def test_below_the_threshold_it_stays_in_this_process():
    texts = ["经开区2020年专项债发行13.92亿元", "城市精细化管理推进会"]
    seen = []
    assert tokenize_many(texts, min_parallel=3, progress=lambda d, n: seen.append((d, n))) == [tokenizer_for().tokenize(t) for t in texts]
    assert seen[-1] == (2, 2)


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["jingkai", "news"])
def test_worker_processes_give_identical_tokens(profile):
    lines = [line for p in sorted(BUNDLED_CORPUS.glob("*.txt")) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    prof = load_profile(profile)
    seen = []
    parallel = tokenize_many(lines, prof, workers=2, min_parallel=0, batch=37, progress=lambda d, n: seen.append(d))
    assert parallel == [tokenizer_for(prof).tokenize(t) for t in lines]
    assert seen[-1] == len(lines) and seen == sorted(seen)
