"""`python -m rag.ask "问题"`: answer one question from the published index."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .engine import Engine, QuestionError
from .settings import FUSION_ALIASES, FUSIONS, Settings
from .store import Filter, IndexProblem


def format_plain(result: dict) -> str:
    lines = [result["answer"], ""]
    if result["citations"]:
        lines.append("来源 Sources:")
        for c in result["citations"]:
            lines.append(f"[{c['n']}] 《{c['title']}》 {c['date'] or ''} {c['source']} (字符 {c['start']}–{c['end']})")
    elif result["contexts"]:
        lines.append("最接近的文章 Closest articles:")
        for h in result["contexts"][:3]:
            lines.append(f"- 《{h['title']}》 {h['date'] or ''} {h['source']}")
    if result.get("note"):
        lines.append(f"说明 note: {result['note']}")
    return "\n".join(lines).rstrip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rag.ask", description="Ask the archive a question.")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the answer JSON (the API contract)")
    p.add_argument("-k", type=int, help="number of articles to retrieve (default: settings top_k)")
    p.add_argument("--index", type=Path, help="index directory (default: ./index)")
    p.add_argument("--year", type=int, help="only articles of this year")
    p.add_argument("--source", action="append", help="only this source file (repeatable)")
    p.add_argument("--mode", choices=[*FUSIONS, *FUSION_ALIASES], help="retrieval mode (default: settings fusion)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.load(index_dir=args.index)
        if args.k is not None and args.k < 1:
            raise ValueError("-k must be greater than 0")
        engine = Engine(settings)
        where = Filter(year_from=args.year, year_to=args.year, sources=frozenset(args.source or ()))
        result = engine.ask(args.question, k=args.k, where=where, mode=args.mode).to_json()
    except QuestionError as exc:
        print(f"错误 error: {exc}", file=sys.stderr)
        return 2
    except (IndexProblem, ValueError, ImportError) as exc:
        print(f"错误 error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False, indent=2) if args.json else format_plain(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
