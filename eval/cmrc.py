"""`python -m eval.cmrc`: CMRC 2018 trial (256 Wikipedia passages, 1,002 questions) as an
independent retrieval + answer benchmark, optionally mixed with CRUD news distractors.

Each passage becomes one file "<title>\\n<context>" of a whole-files corpus, built by the same
rag.build path as the app's index, so the passage hit is simply "the retrieved article came
from the question's file". Answers are judged like the gold set: not abstained and containing a
gold answer span (NFKC, whitespace ignored). CMRC questions were written for reading
comprehension of one given passage, so many are ambiguous over a whole collection; passage
hit@k is the cleaner number.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.build import build_index
from rag.embed import make_embedder
from rag.engine import Engine
from rag.verify import contains_answer

from .harness import MODES, MODE_NAMES, OUT_ROOT, EvalConfig, EvalError, LastQueryMemo, Progress, settings_for
from .metrics import hit_at, mrr, percentile

log = logging.getLogger(__name__)

CMRC = Path("/work/shared/datasets/cmrc2018_trial.json")
NEWS = Path("/work/shared/datasets/crud_news_30k.jsonl.gz")
DEPTH = 10


@dataclass(frozen=True)
class CmrcQuestion:
    id: str
    question: str
    answers: tuple[str, ...]
    source: str  # the passage's corpus file


def load_cmrc(path: Path = CMRC) -> tuple[dict[str, str], list[CmrcQuestion]]:
    """(file name -> file text, questions), in the dataset's order."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    files: dict[str, str] = {}
    questions: list[CmrcQuestion] = []
    for doc in data["data"]:
        for para in doc["paragraphs"]:
            name = f"{para['id']}.txt"
            files[name] = f"{doc.get('title', '').strip()}\n{para['context'].strip()}\n"
            for qa in para["qas"]:
                answers = tuple(dict.fromkeys(a["text"].strip() for a in qa["answers"] if a["text"].strip()))
                if not qa["question"].strip() or not answers:
                    log.warning("skipping CMRC question %s: empty question or no answer", qa["id"])
                    continue
                if qa["question"].strip():  # the trial set has a blank question; the app refuses those
                    questions.append(CmrcQuestion(qa["id"], qa["question"].strip(), answers, name))
    return files, questions


def sample_news(n: int, seed: int = 0, path: Path = NEWS) -> dict[str, str]:
    """n news articles drawn at random (fixed seed) from crud_news_30k: file name -> text."""
    if n <= 0:
        return {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
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
    modes: tuple[str, ...] = ("hybrid",),
    k: int | None = None,
    limit: int | None = None,
    index: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    files, questions = load_cmrc()
    files.update(sample_news(distractors))
    if limit:
        questions = questions[:limit]
    corpus = write_corpus(files, OUT_ROOT / f"cmrc-corpus-d{distractors}")
    # one index dir for every distractor count: its embedding cache makes switching cheap
    settings = settings_for(EvalConfig(corpus=corpus, index=index or OUT_ROOT / "index-cmrc", whole_files=True))
    embedder = make_embedder(settings.embedder)
    build = build_index(settings, embedder=embedder, progress=progress)
    memo = LastQueryMemo(embedder)
    engine = Engine(settings, embedder=memo)
    answer_k = k or settings.top_k
    report: dict[str, Any] = {
        "dataset": str(CMRC),
        "passages": sum(1 for f in files if not f.startswith("crud-")),
        "distractors": distractors,
        "questions": len(questions),
        "answer_k": answer_k,
        "index_status": engine.status,
        "build_timings_s": build.timings_s,
        "modes": {},
        "rows": {},
    }
    for name in modes:
        ranks: list[int | None] = []
        correct: list[bool] = []
        in_top1: list[bool] = []
        abstained: list[bool] = []
        latency: list[float] = []
        rows = []
        for i, q in enumerate(questions):
            memo.forget()
            answer = engine.ask(q.question, k=answer_k, mode=MODES[name])
            hits = engine.retriever().search(answer.retrieval_question or q.question, k=max(answer_k, DEPTH), mode=MODES[name])
            rank = next((h.rank for h in hits[:DEPTH] if h.chunk.source == q.source), None)
            ok = (not answer.abstained) and contains_answer(answer.answer, q.answers)
            assert engine.store is not None
            top1 = bool(hits) and contains_answer(engine.store.article(hits[0].chunk.article_id).body, q.answers)
            ranks.append(rank)
            correct.append(ok)
            in_top1.append(top1)
            abstained.append(answer.abstained)
            latency.append(answer.timings_ms.get("total_ms", 0.0))
            rows.append({"id": q.id, "question": q.question, "answers": list(q.answers), "source": q.source, "passage_rank": rank,
                         "correct": ok, "abstained": answer.abstained, "answer": answer.answer})
            if progress:
                progress(name, i + 1, len(questions))
        n = len(questions) or 1
        report["modes"][name] = {
            "passage_hit@1": hit_at(ranks, 1),
            "passage_hit@5": hit_at(ranks, 5),
            "passage_hit@10": hit_at(ranks, 10),
            "mrr": mrr(ranks),
            "answer_contains_gold": sum(correct) / n,
            "top1_article_contains_gold": sum(in_top1) / n,
            "abstention_rate": sum(abstained) / n,
            "latency_ms": {"p50": percentile(latency, 50), "p95": percentile(latency, 95)},
        }
        report["rows"][name] = rows
    report["seconds"] = round(time.perf_counter() - t0, 1)
    return report


def render(report: dict[str, Any], command: str) -> str:
    modes = list(report["modes"])
    keys = [
        ("passage hit@1", "passage_hit@1"),
        ("passage hit@5", "passage_hit@5"),
        ("passage hit@10", "passage_hit@10"),
        ("passage MRR@10", "mrr"),
        ("answer contains a gold span", "answer_contains_gold"),
        ("top-1 article contains a gold span", "top1_article_contains_gold"),
        ("abstention rate", "abstention_rate"),
    ]
    st = report["index_status"]
    lines = [
        "# CMRC 2018 trial",
        "",
        f"- {report['passages']} passages + {report['distractors']} CRUD news distractors "
        f"({st.get('articles')} articles, {st.get('chunks')} chunks, embedder {st.get('embedder')}); "
        f"{report['questions']} questions; answerer reads k={report['answer_k']}",
        f"- run time {report['seconds']} s; command: `{command}`",
        "",
        "| metric | " + " | ".join(modes) + " |",
        "|---|" + "---:|" * len(modes),
    ]
    for label, key in keys:
        lines.append(f"| {label} | " + " | ".join(f"{report['modes'][m][key]:.3f}" for m in modes) + " |")
    lines.append("| latency p50 / p95 (ms) | " + " | ".join(
        f"{report['modes'][m]['latency_ms']['p50']:.0f} / {report['modes'][m]['latency_ms']['p95']:.0f}" for m in modes) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.cmrc", description="CMRC 2018 trial retrieval + answer benchmark.")
    p.add_argument("--distractors", type=int, default=0, help="CRUD news articles mixed in (fixed seed)")
    p.add_argument("--compare", help="comma-separated retrieval modes: bm25,dense,hybrid (default: the configured one)")
    p.add_argument("-k", type=int, help="articles the answerer reads (default: settings top_k)")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--out", type=Path, help="output directory (default: eval/out/cmrc-d<N>)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = "python -m eval.cmrc " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        modes = tuple(m.strip() for m in args.compare.split(",") if m.strip()) if args.compare else ()
        bad = [m for m in modes if m not in MODES]
        if bad:
            raise EvalError(f"unknown retrieval mode(s) {', '.join(bad)}; choose from {', '.join(MODES)}")
        if args.distractors < 0:
            raise EvalError("--distractors must be >= 0")
        from .__main__ import _progress

        report = run_cmrc(
            distractors=args.distractors,
            modes=modes or (MODE_NAMES["score"],),
            k=args.k,
            limit=args.limit,
            progress=None if args.quiet else _progress(),
        )
    except (EvalError, ValueError, FileNotFoundError) as exc:
        print(f"错误 error: {exc}", file=sys.stderr)
        return 2
    out = args.out or OUT_ROOT / f"cmrc-d{args.distractors}"
    out.mkdir(parents=True, exist_ok=True)
    rows = report.pop("rows")
    for name, rs in rows.items():
        with (out / f"results-{name}.jsonl").open("w", encoding="utf-8") as fh:
            for r in rs:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    (out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    md = render(report, command)
    (out / "report.md").write_text(md, encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
