"""`python -m bench.query_latency --index DIR --questions gold|crud`: query latency p50/p95 for
retrieval alone and for the full answer (Engine.ask), per retrieval mode, and the serving
process's resident memory. Run one process per index so RSS belongs to that index alone."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from rag.engine import Engine
from rag.settings import Settings
from rag.store import current_version

from .embed_throughput import uptime
from .common import news_questions, percentile, peak_rss_mib, rss_mib, save_result
from eval.metrics import load_gold
from eval.harness import DEFAULT_GOLD


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.query_latency")
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--questions", choices=["gold", "crud"], default="gold")
    p.add_argument("--n", type=int, default=100, help="questions per mode")
    p.add_argument("--modes", default="sparse,dense,score,rrf")
    p.add_argument("--name", help="result name (default: latency_<index dir name>)")
    p.add_argument("--note", default="", help="e.g. 'synthetic vectors'")
    p.add_argument("--faiss-index", choices=["flat", "fp16", "hnsw"], help="serve with this FAISS kind, built from the index's vectors at load")
    p.add_argument("--search-threads", type=int, help="Settings.search_threads (FAISS OpenMP threads)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rss0 = rss_mib()
    # serve the index as it was built: one article per file or split pages
    manifest = json.loads((current_version(args.index) / "manifest.json").read_text(encoding="utf-8"))
    split = manifest["chunking"]["split"]
    t = time.perf_counter()
    engine = Engine(Settings.load(index_dir=args.index, llm_base_url="", split_articles=split, search_threads=args.search_threads))
    load_s = time.perf_counter() - t
    assert engine.store is not None
    if args.faiss_index and args.faiss_index != engine.store.faiss_kind:
        engine.store.faiss_kind = args.faiss_index
        engine.store._invalidate()  # dense_index is rebuilt from the vectors in the new kind
    retriever = engine.retriever()
    _ = engine.store.bm25, engine.store.dense_index  # built lazily; count them in the loaded RSS
    rss_loaded = rss_mib()
    questions = [g.question for g in load_gold(DEFAULT_GOLD)][: args.n] if args.questions == "gold" else news_questions(args.n)
    for q in questions[:3]:  # warm-up (jieba, faiss, caches)
        engine.ask(q)
    result = {
        "index": str(args.index),
        "note": args.note,
        "status": engine.status,
        "questions": f"{len(questions)} from {args.questions}",
        "engine_load_s": round(load_s, 2),
        "fusion_default": engine.settings.fusion,
        "faiss_index": engine.store.faiss_kind,
        "search_threads": engine.settings.search_threads,
        "uptime_before": uptime(),
        "rss_mib": {"before_load": round(rss0, 1), "engine_loaded": round(rss_loaded, 1)},
        "modes": {},
    }
    for mode in args.modes.split(","):
        retrieval, full, parts = [], [], {}
        for q in questions:
            timings: dict[str, float] = {}
            t = time.perf_counter()
            retriever.search(q, mode=mode, timings=timings)
            retrieval.append((time.perf_counter() - t) * 1000)
            for key, v in timings.items():
                parts.setdefault(key, []).append(v)
            ans = engine.ask(q, mode=mode)
            full.append(ans.timings_ms["total_ms"])
        result["modes"][mode] = {
            "retrieval_ms": {"p50": round(percentile(retrieval, 50), 1), "p95": round(percentile(retrieval, 95), 1)},
            "answer_ms": {"p50": round(percentile(full, 50), 1), "p95": round(percentile(full, 95), 1)},
            "retrieval_parts_p50_ms": {k: round(percentile(v, 50), 2) for k, v in parts.items()},
        }
    result["uptime_after"] = uptime()
    result["rss_mib"]["after_queries"] = round(rss_mib(), 1)
    result["rss_mib"]["peak"] = round(peak_rss_mib(), 1)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"wrote {save_result(args.name or f'latency_{args.index.name}', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
