"""`python -m eval.crud [--distractors 500] [eval options]`: the CRUD-RAG news QA dev set.

Builds its corpus once with the shared make_corpus.py (supporting articles + N seeded random
distractors, one article per file) into eval/out/crud-d<N>, then runs `python -m eval` on it
with --whole-files and the dev gold. The index dir eval/out/index-crud is shared by every N,
so its embedding cache makes a second distractor count cheap.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .__main__ import main as eval_main
from .harness import OUT_ROOT

DEV = Path("/work/shared/datasets/crud_qa_dev")


def make_corpus(distractors: int, root: Path | None = None) -> Path:
    """Run the dataset's own corpus builder once; a finished corpus is reused."""
    root = root or OUT_ROOT / f"crud-d{distractors}"
    done = root / ".complete"
    if done.exists():
        return root
    subprocess.run(
        [sys.executable, str(DEV / "make_corpus.py"), "--distractors", str(distractors), "--out", str(root)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    done.write_text(str(distractors), encoding="utf-8")
    return root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.crud", description="crud_qa_dev through python -m eval.")
    p.add_argument("--distractors", type=int, default=500)
    args, rest = p.parse_known_args(argv)
    corpus = make_corpus(args.distractors)
    forwarded = ["--gold", str(DEV / "gold.jsonl"), "--corpus", str(corpus), "--whole-files"]
    if "--index" not in rest:
        forwarded += ["--index", str(OUT_ROOT / "index-crud")]
    if "--out" not in rest:
        forwarded += ["--out", str(OUT_ROOT / f"crud_qa_dev-d{args.distractors}")]
    return eval_main(forwarded + rest)


if __name__ == "__main__":
    raise SystemExit(main())
