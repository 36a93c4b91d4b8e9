"""`python -m eval.crud [--distractors 500] [eval options]`: the CRUD-RAG news QA dev set.

Builds its corpus once with the dataset's own make_corpus.py (supporting articles + N seeded
random distractors, one `<id>.txt` a file, standard library only) into eval/out/crud-d<N>, then
runs `python -m eval` on it with the dev gold. The files are passed as they are, without
`--whole-files`: a user will not know that flag, so the loader must recognise a one-article news
file by its timestamp header ("2023-08-15 19:40:26，正文：…") by itself. `--whole-files` is still
forwarded when given (the "before" runs of issue 9 used it). The index dir is shared by every N
(its embedding cache makes a second distractor count cheap), one per layout.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .__main__ import main as eval_main
from .harness import OUT_ROOT, EvalError, shared_path

DEV = "datasets/crud_qa_dev"


def make_corpus(distractors: int, root: Path | None = None) -> Path:
    """Run the dataset's own corpus builder once; a finished corpus is reused."""
    dev = shared_path(DEV)
    root = root or OUT_ROOT / f"crud-d{distractors}"
    done = root / ".complete"
    if done.exists() and done.read_text(encoding="utf-8").strip() == str(distractors):
        return root
    subprocess.run(
        [sys.executable, str(dev / "make_corpus.py"), "--distractors", str(distractors), "--out", str(root)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    done.write_text(str(distractors), encoding="utf-8")
    return root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.crud", description="crud_qa_dev through python -m eval.")
    p.add_argument("--distractors", type=int, default=500)
    args, rest = p.parse_known_args(argv)
    try:
        if args.distractors < 0:
            raise EvalError("--distractors must be >= 0")
        gold = shared_path(DEV) / "gold.jsonl"
        corpus = make_corpus(args.distractors)
    except (EvalError, subprocess.CalledProcessError) as exc:
        print(f"错误 error: {exc}", file=sys.stderr)
        return 2
    layout = "whole-files" if "--whole-files" in rest else "auto"
    forwarded = ["--gold", str(gold), "--corpus", str(corpus)]
    if "--index" not in rest:
        forwarded += ["--index", str(OUT_ROOT / f"index-crud-{layout}")]
    if "--out" not in rest:
        forwarded += ["--out", str(OUT_ROOT / f"crud_qa_dev-d{args.distractors}" + ("-whole-files" if layout == "whole-files" else ""))]
    return eval_main(forwarded + rest)


if __name__ == "__main__":
    raise SystemExit(main())
