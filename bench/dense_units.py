"""`python -m bench.dense_units`: what each `dense_unit` costs (vectors, tokens, embed seconds)
and gives (article hit@1, passage hit@5, answer accuracy) on the gold set of the bundled pages
and on a crud_qa_dev subset, through the app's own code path (build_index, Engine.ask, eval's
judge). One index per unit and dataset under bench/data/dense-units/, one embedding cache per
unit, so each unit's embed seconds are from scratch (a rerun finds them cached: `embedded_now`).

The crud subset keeps each variant's embedding under ~10 minutes on 2 shared cores:
`--crud-questions` answerable questions drawn with a fixed seed plus the unanswerable ones among
the first questions, their supporting articles and as many random distractors. Query vectors
are memoised across variants (they do not depend on the unit), so the answer latencies in the
eval rows are not query latencies; embed seconds hold the bench lock and record the load.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

from rag.build import build_index
from rag.dense import unit_texts
from rag.embed import Embedder, EmbedderWrapper, make_embedder
from rag.engine import Engine
from rag.settings import BUNDLED_CORPUS, DENSE_UNITS, Settings, shared_dir
from rag.store import open_store

from eval.harness import DEFAULT_GOLD, LastQueryMemo, ask_all
from eval.metrics import load_gold, summarize

from .common import DATA, NEWS, save_result
from .embed_throughput import DEFAULT_LOCK, bench_lock, uptime

CRUD = shared_dir() / "datasets" / "crud_qa_dev"
MODES = ("score", "dense")


class QueryMemo(EmbedderWrapper):
    """Query vectors remembered by text across runs (a question's vector does not depend on the unit)."""

    def __init__(self, inner: Embedder):
        super().__init__(inner)
        self._memo: dict[str, object] = {}

    def embed_query(self, text: str):
        if text not in self._memo:
            self._memo[text] = self.inner.embed_query(text)
        return self._memo[text]


def crud_subset(n_answerable: int, n_unanswerable: int, seed: int, root: Path) -> tuple[Path, Path]:
    """(corpus dir, gold file) of a crud_qa_dev subset; written once, then reused."""
    corpus, gold_path = root / "corpus", root / "gold.jsonl"
    if (root / ".complete").exists():
        return corpus, gold_path
    gold = [json.loads(line) for line in (CRUD / "gold.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    answerable = [g for g in gold if g["kind"] != "unanswerable"]
    picked = random.Random(seed).sample(answerable, n_answerable) + [g for g in gold if g["kind"] == "unanswerable"][:n_unanswerable]
    need = {g["article_id"] for g in picked if g.get("article_id")}
    texts: dict[str, str] = {}
    pool = []
    for path in (CRUD / "support_extra.jsonl.gz", NEWS):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                d = json.loads(line)
                if d["id"] in need:
                    texts[d["id"]] = d["text"]
                elif path == NEWS:
                    pool.append(d)
    support = set(texts.values())
    pool = [d for d in pool if d["text"] not in support]
    all_support = {g["article_id"] for g in gold if g.get("article_id")}
    pool = [d for d in pool if d["id"] not in all_support]  # no other question's article either
    random.Random(seed).shuffle(pool)
    for d in pool[: len(need)]:
        texts[d["id"]] = d["text"]
    corpus.mkdir(parents=True, exist_ok=True)
    for k, t in texts.items():
        (corpus / f"{k}.txt").write_text(t, encoding="utf-8")
    gold_path.write_text("".join(json.dumps(g, ensure_ascii=False) + "\n" for g in picked), encoding="utf-8")
    (root / ".complete").write_text(f"{len(picked)} questions, {len(texts)} articles", encoding="utf-8")
    return corpus, gold_path


def run_unit(name: str, corpus: Path, gold: Path, unit: str, embedder: QueryMemo, cache_dir: Path, lock: Path | None) -> dict:
    settings = Settings.load(
        llm_base_url="", corpus_dir=corpus, index_dir=DATA / "dense-units" / f"index-{name}-{unit}", cache_dir=cache_dir / unit, dense_unit=unit
    )
    with bench_lock(lock):
        before, t = uptime(), time.perf_counter()
        report = build_index(settings, embedder=embedder)
        build_s, after = time.perf_counter() - t, uptime()
    store = open_store(settings)
    articles = list(store.articles())
    chunks = list(store.chunks)  # the local store's chunk list
    texts = list(dict.fromkeys(unit_texts(articles, chunks, settings)))
    row = {
        "dataset": name,
        "unit": unit,
        "articles": report.n_articles,
        "chunks": report.n_chunks,
        "vectors_embedded": len(texts),
        "tokens_embedded": sum(embedder.count_tokens(x) for x in texts),
        "embedded_now": report.chunks_embedded,
        "embed_s": report.timings_s.get("embed"),
        "build_s": round(build_s, 1),
        "uptime_before": before,
        "uptime_after": after,
        "modes": {},
    }
    items = load_gold(gold)
    engine = Engine(settings, embedder=LastQueryMemo(embedder))
    for mode in MODES:
        m = summarize(items, [r["judgement"] for r in ask_all(engine, items, settings.top_k, mode)])
        row["modes"][mode] = {k: m[k] for k in ("article_hit@1", "hit@1", "hit@5", "accuracy")}
    print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| data | dense_unit | vectors | tokens embedded | embed s | score: article hit@1 | passage hit@5 | accuracy | dense alone: article hit@1 | passage hit@5 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        s, d = r["modes"]["score"], r["modes"]["dense"]
        lines.append(
            f"| {r['dataset']} | {r['unit']} | {r['vectors_embedded']} | {r['tokens_embedded']} | {r['embed_s']} | "
            f"{s['article_hit@1']:.3f} | {s['hit@5']:.3f} | {s['accuracy']:.3f} | {d['article_hit@1']:.3f} | {d['hit@5']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.dense_units")
    p.add_argument("--units", default=",".join(DENSE_UNITS))
    p.add_argument("--datasets", default="gold,crud")
    p.add_argument("--crud-questions", type=int, default=90, help="answerable crud_qa_dev questions (seeded sample)")
    p.add_argument("--crud-unanswerable", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lock", type=lambda v: Path(v) if v else None, default=DEFAULT_LOCK)
    p.add_argument("--name", default="dense_units")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    root = DATA / "dense-units"
    sets = {}
    if "gold" in args.datasets:
        sets["gold"] = (BUNDLED_CORPUS, DEFAULT_GOLD)
    if "crud" in args.datasets:
        sets["crud"] = crud_subset(args.crud_questions, args.crud_unanswerable, args.seed, root / f"crud-q{args.crud_questions}-s{args.seed}")
    embedder = QueryMemo(make_embedder(Settings.load(llm_base_url="")))
    rows = [
        run_unit(name, corpus, gold, unit, embedder, root / "caches", args.lock)
        for name, (corpus, gold) in sets.items()
        for unit in args.units.split(",")
    ]
    result = {"command": "python -m bench.dense_units " + " ".join(argv if argv is not None else sys.argv[1:]), "rows": rows}
    print(table(rows))
    print(f"wrote {save_result(args.name, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
