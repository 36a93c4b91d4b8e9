"""`python -m bench.tokenize_identity --articles 30000`: parallel tokenizing gives the very same
tokens as one process, and how much faster it is (issue 13 item 6).

The chunks are those a `--whole-files` build makes of the first N crud_news_30k articles (read
from the dataset, no files written); they are tokenized once by `Tokenizer.tokenize` in this
process and once by `rag.tokenize.tokenize_many` with worker processes, and compared chunk by
chunk (list equality, order included).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import time

from rag.chunk import chunk_articles
from rag.records import Page
from rag.segment import file_article
from rag.settings import Settings
from rag.tokenize import tokenize_many, tokenizer_for

from .common import NEWS, save_result


def news_chunks(n: int, settings: Settings) -> list[str]:
    profile = settings.corpus_profile
    articles = []
    with gzip.open(NEWS, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= n:
                break
            row = json.loads(line)
            page = Page(source=f"{row['id']}.txt", text=row["text"], encoding="utf-8", sha256="")
            articles.append(file_article(page, profile))
    return [c.indexed_text for c in chunk_articles(articles, settings.chunk_size, settings.chunk_overlap)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tokenize_identity")
    p.add_argument("--articles", type=int, default=30000)
    p.add_argument("--workers", type=int, default=0, help="0: one per core")
    args = p.parse_args(argv)
    settings = Settings.load(split_articles=False)
    texts = news_chunks(args.articles, settings)
    tk = tokenizer_for(settings.corpus_profile)
    tk.tokenize("经开区")  # dictionary loaded before timing, as in a build that already answered

    t = time.perf_counter()
    serial = [tk.tokenize(x) for x in texts]
    serial_s = time.perf_counter() - t
    t = time.perf_counter()
    parallel = tokenize_many(texts, settings.corpus_profile, workers=args.workers, min_parallel=0)
    parallel_s = time.perf_counter() - t

    differing = [i for i, (a, b) in enumerate(zip(serial, parallel)) if a != b]
    digest = lambda toks: hashlib.sha256("\n".join("\x1f".join(t) for t in toks).encode("utf-8")).hexdigest()  # noqa: E731
    result = {
        "articles": args.articles,
        "chunks": len(texts),
        "tokens": sum(len(t) for t in serial),
        "workers": args.workers or os.cpu_count(),
        "tokenizer": tk.id,
        "identical": len(serial) == len(parallel) and not differing,
        "chunks_differing": len(differing),
        "sha256_serial": digest(serial),
        "sha256_parallel": digest(parallel),
        "serial_s": round(serial_s, 1),
        "parallel_s": round(parallel_s, 1),
        "speed_up": round(serial_s / parallel_s, 2) if parallel_s else None,
        "serial_chunks_per_s": round(len(texts) / serial_s, 1),
        "parallel_chunks_per_s": round(len(texts) / parallel_s, 1),
    }
    print(json.dumps(result, indent=2))
    path = save_result(f"tokenize_identity_{args.articles}", result)
    print(f"wrote {path}")
    return 0 if result["identical"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
