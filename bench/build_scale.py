"""`python -m bench.build_scale --articles 10000`: indexing throughput at news scale, where the
time goes (BuildReport.timings_s), and incremental reindex after adding one article.

Passage vectors are SYNTHETIC (bench.common.SyntheticPassages): every stage but the embedder is
real; the embed stage then only measures the cache. Real embedding throughput is measured by
bench.embed_throughput. The one article added for the incremental step is embedded for real.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import shutil
import time

from rag.build import build_index
from rag.embed import make_embedder
from rag.settings import PROJECT_ROOT, Settings

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
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    corpus = news_corpus(args.articles)
    index = DATA / f"index-news-{args.articles}"
    if args.fresh and index.exists():
        shutil.rmtree(index)
    settings = Settings.load(corpus_dir=corpus, index_dir=index, split_articles=False, llm_base_url="")
    real = make_embedder(settings)
    synthetic = SyntheticPassages(real)
    result: dict = {"articles": args.articles, "index": str(index.relative_to(PROJECT_ROOT)), "vectors": "synthetic (random unit vectors)"}

    t = time.perf_counter()
    rep = build_index(settings, embedder=synthetic)
    wall = time.perf_counter() - t
    non_embed = wall - rep.timings_s.get("embed", 0.0) - rep.timings_s.get("load_embedder", 0.0)
    result["full_build"] = {
        "n_articles": rep.n_articles,
        "n_chunks": rep.n_chunks,
        "chunks_new": rep.chunks_new,
        "wall_s": round(wall, 2),
        "timings_s": rep.timings_s,
        "chunks_per_s_excluding_embed": round(rep.chunks_new / non_embed, 1) if rep.chunks_new and non_embed > 0 else None,
        "synthetic_vectors_made": synthetic.calls,
    }
    print(json.dumps(result["full_build"], indent=2))

    if args.incremental:
        name, text = extra_article(args.articles)
        added = corpus / name
        added.write_text(text, encoding="utf-8")
        try:
            t = time.perf_counter()
            rep = build_index(settings, embedder=real)  # the new article's chunks are embedded for real
            result["add_one"] = {
                "file": name,
                "wall_s": round(time.perf_counter() - t, 2),
                "chunks_embedded": rep.chunks_embedded,
                "timings_s": rep.timings_s,
            }
        finally:
            added.unlink()
        t = time.perf_counter()
        rep = build_index(settings, embedder=real)
        result["remove_one"] = {"wall_s": round(time.perf_counter() - t, 2), "timings_s": rep.timings_s}
        print(json.dumps({k: result[k] for k in ("add_one", "remove_one")}, indent=2))
    path = save_result(f"build_news_{args.articles}", result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
