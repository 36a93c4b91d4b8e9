"""`python -m bench.bm25_speed --index bench/data/index-news-30000 --chunks 10000,30000`: BM25
scoring time of rag.bm25 against rank-bm25's BM25Okapi.get_scores on the same tokens.

The tokens are the index's own: each chunk's bag of words is read back from the stored
term-frequency matrix (BM25 sees only counts and lengths, so a bag is as good as the list),
taking the first N chunks. Scores are checked equal (np.allclose) on every query."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
from rank_bm25 import BM25Okapi

from rag.bm25 import BM25Index, BM25Params, term_matrix
from rag.store import LocalStore
from rag.tokenize import tokenize

from .common import news_questions, percentile, save_result


def bags(store: LocalStore, n: int) -> list[list[str]]:
    terms = np.empty(len(store.vocab), dtype=object)
    for tok, j in store.vocab.items():
        terms[j] = tok
    tf = store.tf.tocsr()[:n]
    out = []
    for i in range(tf.shape[0]):
        lo, hi = tf.indptr[i], tf.indptr[i + 1]
        out.append([t for t, c in zip(terms[tf.indices[lo:hi]], tf.data[lo:hi]) for _ in range(int(c))])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bm25_speed")
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--chunks", default="10000,30000")
    p.add_argument("--queries", type=int, default=30)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    store = LocalStore.load(args.index)
    queries = [tokenize(q) for q in news_questions(args.queries)]
    result: dict = {"index": str(args.index), "queries": len(queries), "sizes": {}}
    for n in [int(x) for x in args.chunks.split(",")]:
        docs = bags(store, n)
        t = time.perf_counter()
        ref = BM25Okapi(docs)
        ref_build = time.perf_counter() - t
        vocab: dict[str, int] = {}
        t = time.perf_counter()
        ours = BM25Index(term_matrix(docs, vocab), vocab, BM25Params())
        our_build = time.perf_counter() - t
        ref_ms, our_ms, equal = [], [], True
        for q in queries:
            t = time.perf_counter()
            a = ref.get_scores(q)
            ref_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            b = ours.scores(q)
            our_ms.append((time.perf_counter() - t) * 1000)
            equal &= bool(np.allclose(a, b, rtol=1e-9, atol=1e-9))
        result["sizes"][str(len(docs))] = {
            "rank_bm25_get_scores_ms": {"p50": round(percentile(ref_ms, 50), 2), "p95": round(percentile(ref_ms, 95), 2)},
            "rag_bm25_scores_ms": {"p50": round(percentile(our_ms, 50), 3), "p95": round(percentile(our_ms, 95), 3)},
            "speedup_p50": round(percentile(ref_ms, 50) / max(percentile(our_ms, 50), 1e-9), 1),
            "build_s": {"rank_bm25": round(ref_build, 2), "rag_bm25": round(our_build, 2)},
            "scores_equal": equal,
        }
        print(len(docs), result["sizes"][str(len(docs))])
    print(f"wrote {save_result('bm25_speed', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
