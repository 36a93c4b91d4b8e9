"""Retrieval-only comparison of fusion settings: article and passage hit@1 / hit@5.

`python -m bench.fusion_sweep --index DIR --gold FILE [--whole-files]`. Each question is embedded
once and reused for every setting, so the sweep costs one pass of query embeddings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rag.engine import Engine
from rag.retrieve import Retriever
from rag.settings import Settings
from rag.verify import normalize_for_match

SETTINGS = [
    ("sparse", {}),
    ("dense", {}),
    ("rrf", {"dense_weight": 0.5}),
    ("rrf", {"dense_weight": 0.3}),
    ("rrf", {"dense_weight": 0.1}),
    ("score", {"dense_weight": 0.1}),
    ("score", {"dense_weight": 0.2}),
    ("score", {"dense_weight": 0.5}),
]


class _Memo:
    """Serves precomputed question vectors to the Retriever."""

    def __init__(self, vectors: dict[str, object]):
        self.vectors = vectors

    def embed_query(self, text: str):
        return self.vectors[text]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fusion_sweep")
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--gold", type=Path, required=True)
    p.add_argument("--whole-files", action="store_true")
    args = p.parse_args(argv)
    settings = Settings.load(index_dir=args.index, split_articles=False if args.whole_files else None)
    engine = Engine(settings)
    gold = [json.loads(line) for line in args.gold.read_text(encoding="utf-8").splitlines() if line.strip()]
    gold = [g for g in gold if g["kind"] != "unanswerable"]
    memo = _Memo({g["question"]: engine.embedder.embed_query(g["question"]) for g in gold})
    print("| fusion | article hit@1 | article hit@5 | passage hit@1 |")
    print("|---|---:|---:|---:|")
    for mode, kw in SETTINGS:
        retriever = Retriever(engine.store, memo, settings.replace(fusion=mode, **kw))
        a1 = a5 = p1 = 0
        for g in gold:
            hits = retriever.search(g["question"], k=5)
            ev = [normalize_for_match(x) for x in g["evidence"]]
            bodies = [normalize_for_match(engine.store.article(h.chunk.article_id).body) for h in hits]
            a1 += bool(bodies) and any(x in bodies[0] for x in ev)
            a5 += any(any(x in b for x in ev) for b in bodies)
            p1 += bool(hits) and any(x in normalize_for_match(hits[0].chunk.text) for x in ev)
        n = len(gold)
        print(f"| {mode} {kw or ''} | {a1 / n:.3f} | {a5 / n:.3f} | {p1 / n:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
