"""CI gate on news written by other people: a fixed subset of crud_qa_dev, indexed without
--whole-files (the news files' timestamp headers are recognised by the profile).

The subset is every fifth question (66: answerable and unanswerable alike), the articles that
support them and 40 distractors drawn with a fixed seed from crud_news_30k — small enough to
embed in CI (≈ 150 articles), large enough that a wrong answer or a lost abstention moves it.
Floors: eval/thresholds.json, key "crud_subset".
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from eval.harness import THRESHOLDS, EvalConfig, gate, run_eval
from eval.metrics import load_gold

EVERY = 5
DISTRACTORS = 40


def _articles(path: Path) -> dict[str, str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return {d["id"]: d["text"] for d in map(json.loads, filter(str.strip, fh))}


@pytest.fixture(scope="module")
def crud_subset(shared_dir, tmp_path_factory):
    dev = shared_dir / "datasets" / "crud_qa_dev"
    items = load_gold(dev / "gold.jsonl")[::EVERY]
    need = {it.extra["article_id"] for it in items if it.extra.get("article_id")}
    news = _articles(shared_dir / "datasets" / "crud_news_30k.jsonl.gz")
    texts = {**{k: v for k, v in _articles(dev / "support_extra.jsonl.gz").items() if k in need}, **{k: news[k] for k in need if k in news}}
    assert need <= set(texts), "supporting articles missing from the shared data"
    pool = sorted(k for k in news if k not in need and news[k] not in texts.values())
    for k in random.Random(0).sample(pool, DISTRACTORS):
        texts[k] = news[k]
    corpus = tmp_path_factory.mktemp("crud-subset")
    for k, text in texts.items():
        (corpus / f"{k}.txt").write_text(text, encoding="utf-8")
    return items, corpus


@pytest.mark.slow
def test_gate_crud_subset(crud_subset, embedder, kept_cache, tmp_path, monkeypatch):
    """A fresh index each run; its 316 chunk vectors (≈50 s of embedding on 2 cores) come from the
    shipped and kept vectors (tests/conftest.py)."""
    items, corpus = crud_subset
    cache = kept_cache
    monkeypatch.setenv("RAG_CACHE_DIR", str(cache))
    run = run_eval(EvalConfig(corpus=corpus, index=tmp_path / "index", modes=()), embedder=embedder, items=items)
    assert run.settings.cache_dir == cache
    metrics = run.runs[0].metrics
    assert metrics["n"] == len(items) == 66
    floors = json.loads(THRESHOLDS.read_text(encoding="utf-8"))["crud_subset"]["min"]
    assert gate(metrics, floors) == []
    assert metrics["unsupported_number_rate"] in (0.0, None)
