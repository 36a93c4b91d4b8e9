"""`python -m eval.cmrc`: CMRC 2018 trial (256 Wikipedia passages, 1,002 questions) as a dataset
adapter on the harness loop, optionally mixed with CRUD news distractors.

Each passage becomes one file "<title>\\n<context>" of a whole-files corpus; each question becomes
a gold item of kind "span" whose evidence is its answer spans and whose source is its passage's
file. The questions then run through `run_eval` exactly like the gold set, so every metric and
table is the harness's: passage hit@k is "source-file hit@k" (the retrieved article came from the
question's file), "gold span inside lead-or-quote" is the issue-9 target, and the abstention rate
is the false-abstention rate (every question is answerable). CMRC questions were written for one
given passage, so many are ambiguous over a whole collection; passage hit@k is the cleaner number.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import shlex
import sys
from pathlib import Path

from rag.load import CorpusError
from rag.progress import progress_bars
from rag.store import IndexProblem

from .harness import MODES, OUT_ROOT, EvalConfig, EvalError, EvalRun, Progress, run_eval, shared_path, write_results
from .metrics import GoldItem
from .report import metrics_table, write_report

log = logging.getLogger(__name__)

CMRC = "datasets/cmrc2018_trial.json"
NEWS = "datasets/crud_news_30k.jsonl.gz"


def load_cmrc(path: Path | None = None) -> tuple[dict[str, str], list[GoldItem]]:
    """(file name -> file text, questions as gold items), in the dataset's order. The trial set
    has a blank question and one whose answer text is empty; both are left out (logged), so
    1,000 of its 1,002 questions run."""
    path = path or shared_path(CMRC)
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    files: dict[str, str] = {}
    items: list[GoldItem] = []
    for doc in data["data"]:
        for para in doc["paragraphs"]:
            name = f"{para['id']}.txt"
            files[name] = f"{doc.get('title', '').strip()}\n{para['context'].strip()}\n"
            for qa in para["qas"]:
                answers = tuple(dict.fromkeys(a["text"].strip() for a in qa["answers"] if a["text"].strip()))
                if not qa["question"].strip() or not answers:
                    log.warning("skipping CMRC question %s: empty question or no answer", qa["id"])
                    continue
                items.append(GoldItem(qa["id"], qa["question"].strip(), answers, answers, "span", name))
    return files, items


def sample_news(n: int, seed: int = 0, path: Path | None = None) -> dict[str, str]:
    """n news articles drawn at random (fixed seed) from crud_news_30k: file name -> text."""
    if n <= 0:
        return {}
    with gzip.open(path or shared_path(NEWS), "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    if n > len(rows):
        raise EvalError(f"--distractors {n}: only {len(rows)} news articles available")
    picked = random.Random(seed).sample(rows, n)
    return {f"{r['id']}.txt": r["text"] for r in picked}


def write_corpus(files: dict[str, str], root: Path) -> Path:
    """Write (only changed) files and remove stale .txt ones, so the incremental build stays cheap."""
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("*.txt"):
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        p = root / name
        if not p.exists() or p.read_text(encoding="utf-8") != text:
            p.write_text(text, encoding="utf-8")
    return root


def run_cmrc(
    distractors: int = 0,
    modes: tuple[str, ...] = (),
    k: int | None = None,
    limit: int | None = None,
    index: Path | None = None,
    out: Path | None = None,
    progress: Progress | None = None,
) -> EvalRun:
    files, items = load_cmrc()
    files.update(sample_news(distractors))
    corpus = write_corpus(files, OUT_ROOT / f"cmrc-corpus-d{distractors}")
    config = EvalConfig(
        gold=shared_path(CMRC),
        corpus=corpus,
        # one index dir for every distractor count: its embedding cache makes switching cheap
        index=index or OUT_ROOT / "index-cmrc",
        out=out,
        k=k,
        whole_files=True,
        modes=modes,
        limit=limit,
    )
    return run_eval(config, progress=progress, items=items)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.cmrc", description="CMRC 2018 trial through the eval harness.")
    p.add_argument("--distractors", type=int, default=0, help="CRUD news articles mixed in (fixed seed)")
    p.add_argument("--compare", help=f"comma-separated retrieval modes: {','.join(MODES)} (default: the configured one)")
    p.add_argument("-k", type=int, help="articles the answerer reads (default: settings top_k)")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--index", type=Path, help="index directory (default: eval/out/index-cmrc)")
    p.add_argument("--out", type=Path, help="output directory (default: eval/out/cmrc-d<N>)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = "python -m eval.cmrc " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    out = args.out or OUT_ROOT / f"cmrc-d{args.distractors}"
    try:
        modes = tuple(m.strip() for m in args.compare.split(",") if m.strip()) if args.compare else ()
        if args.distractors < 0:
            raise EvalError("--distractors must be >= 0")
        run = run_cmrc(args.distractors, modes, args.k, args.limit, args.index, out, None if args.quiet else progress_bars(leave=False))
    except (EvalError, CorpusError, IndexProblem, ValueError, FileNotFoundError) as exc:
        print(f"错误 error: {exc}", file=sys.stderr)
        return 2
    written = write_results(run, out) + write_report(run, out, command)
    print("\n".join(metrics_table(run.runs)))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
