"""`python -m eval`: the gold set through Engine.ask; results.jsonl, report.json/.md/.png.

`python -m eval --check` is the CI gate: the gold set on the bundled corpus, failing (exit 1)
when a metric drops below eval/thresholds.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

from rag.load import CorpusError
from rag.progress import progress_bars
from rag.store import IndexProblem

from .harness import (
    DEFAULT_GOLD,
    MODES,
    THRESHOLDS,
    EvalConfig,
    EvalError,
    default_out_dir,
    gate,
    load_thresholds,
    run_eval,
    write_results,
)
from .metrics import GoldError
from .report import metrics_table, write_report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m eval", description="Evaluate retrieval and answers on a gold set.")
    p.add_argument("--gold", type=Path, default=DEFAULT_GOLD, help="gold JSON lines (default: eval/gold.jsonl)")
    p.add_argument("--corpus", type=Path, help="corpus directory (default: the bundled 经开时报 pages)")
    p.add_argument("--index", type=Path, help="index directory (default: eval/out/index-<corpus dir name>)")
    p.add_argument("--out", type=Path, help="output directory (default: eval/out/<gold file name>)")
    p.add_argument("-k", type=int, help="articles the answerer reads (default: settings top_k)")
    p.add_argument("--whole-files", action="store_true", help="one article per file (news dumps such as crud_qa_dev)")
    p.add_argument("--compare", help="comma-separated retrieval modes (Settings.fusion names) to run side by side: sparse,dense,score,rrf (score = the default; bm25 and hybrid are accepted for sparse and score)")
    p.add_argument("--llm", action="store_true", help="answer with the LLM configured by RAG_LLM_* (else extractive)")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--check", action="store_true", help=f"CI gate: fail if a metric is below {THRESHOLDS.name}")
    p.add_argument("--thresholds", type=Path, default=THRESHOLDS, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--store", choices=["local", "milvus"], help="index backend (default: settings store)")
    p.add_argument(
        "--compare-runs",
        nargs=2,
        type=Path,
        metavar=("BEFORE", "AFTER"),
        help="compare two results.jsonl files per question kind (re-judged alike; nothing is run); --gold names their gold file "
        "when their report.json does not",
    )
    return p.parse_args(argv)


def compare_main(args: argparse.Namespace) -> int:
    from .harness import compare_runs
    from .report import compare_markdown

    gold = args.gold if args.gold != DEFAULT_GOLD else None
    a, b = compare_runs(*args.compare_runs, gold=gold)
    md = compare_markdown(a, b, names=(args.compare_runs[0].parent.name or "before", args.compare_runs[1].parent.name or "after"))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "compare.md").write_text(md, encoding="utf-8")
    print(md, end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = "python -m eval " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    if args.compare_runs:
        try:
            return compare_main(args)
        except (GoldError, EvalError, ValueError) as exc:
            print(f"错误 error: {exc}", file=sys.stderr)
            return 2
    try:
        modes = tuple(m.strip() for m in args.compare.split(",") if m.strip()) if args.compare else ()
        if args.compare and not modes:
            raise EvalError(f"--compare needs mode names: {','.join(MODES)}")
        if args.check and (args.corpus or args.gold != DEFAULT_GOLD or args.limit or args.llm):
            raise EvalError("--check runs the committed gold set on the bundled corpus; drop --corpus/--gold/--limit/--llm")
        floors = load_thresholds(args.thresholds) if args.check else {}
        config = EvalConfig(
            gold=args.gold,
            corpus=args.corpus,
            index=args.index,
            out=args.out,
            k=args.k,
            whole_files=args.whole_files,
            modes=modes,
            llm=args.llm,
            limit=args.limit,
            store=args.store,
        )
        run = run_eval(config, progress=None if args.quiet else progress_bars(leave=False))
    except (GoldError, EvalError, CorpusError, IndexProblem, ValueError, ImportError, FileNotFoundError) as exc:
        print(f"错误 error: {exc}", file=sys.stderr)
        return 2
    out = args.out or default_out_dir(args.gold)
    written = write_results(run, out) + write_report(run, out, command)
    print("\n".join(metrics_table(run.runs, llm=args.llm)))
    print("wrote " + ", ".join(str(p) for p in written))
    if args.check:
        gated = next((r for r in run.runs if MODES[r.name] == run.settings.fusion), run.runs[0])
        problems = gate(gated.metrics, floors)
        for line in problems:
            print(f"FAIL {line}", file=sys.stderr)
        print(
            json.dumps({"gate": "fail" if problems else "pass", "floors": floors}, ensure_ascii=False),
            file=sys.stderr if problems else sys.stdout,
        )
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
