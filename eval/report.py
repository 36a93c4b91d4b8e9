"""report.md (tables side by side per retrieval mode, then the failures) and report.png."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.settings import Fusion

from .harness import EvalRun, ModeRun, gold_label
from .metrics import HIT_KS, KINDS

log = logging.getLogger(__name__)

ROWS: list[tuple[str, str]] = [
    ("answer accuracy (all)", "accuracy"),
    ("answer accuracy (answerable)", "accuracy_answerable"),
    *[(f"evidence hit@{k} (passage)", f"hit@{k}") for k in HIT_KS],
    ("evidence MRR@10 (passage)", "mrr"),
    *[(f"evidence hit@{k} (article)", f"article_hit@{k}") for k in (1, 5)],
    ("citation precision", "citation_precision"),
    ("abstention precision", "abstention.precision"),
    ("abstention recall", "abstention.recall"),
    ("abstained on answerable", "abstention_rate_answerable"),
    ("unsupported-number rate", "unsupported_number_rate"),
    ("latency p50 (ms)", "latency_ms.p50"),
    ("latency p95 (ms)", "latency_ms.p95"),
]


def lookup(metrics: dict[str, Any], dotted: str) -> Any:
    value: Any = metrics
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "–"
    if key.startswith("latency"):
        return f"{value:.0f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _cell(text: str, limit: int = 90) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def metrics_table(runs: Sequence[ModeRun], llm: bool = False) -> list[str]:
    lines = ["| metric | " + " | ".join(r.name for r in runs) + " |", "|---|" + "---:|" * len(runs)]
    rows = ROWS + ([("LLM fallback rate", "fallback_rate")] if llm else [])
    for label, key in rows:
        lines.append(f"| {label} | " + " | ".join(fmt(lookup(r.metrics, key), key) for r in runs) + " |")
    return lines


def kind_table(runs: Sequence[ModeRun]) -> list[str]:
    lines = ["| kind | n | " + " | ".join(r.name for r in runs) + " |", "|---|---:|" + "---:|" * len(runs)]
    first = runs[0].metrics["accuracy_by_kind"]
    for kind in KINDS:
        if kind not in first:
            continue
        cells = []
        for r in runs:
            k = r.metrics["accuracy_by_kind"][kind]
            cells.append(f"{k['accuracy']:.3f} ({k['correct']})")
        lines.append(f"| {kind} | {first[kind]['n']} | " + " | ".join(cells) + " |")
    return lines


def failures(run: ModeRun, per_kind: int | None = None) -> list[str]:
    """Wrong answers and wrong abstentions, grouped by gold kind, for tuning the answerer."""
    lines: list[str] = []
    for kind in KINDS:
        wrong = [r for r in run.rows if r["kind"] == kind and not r["judgement"]["correct"]]
        if not wrong:
            continue
        shown = wrong if per_kind is None else wrong[:per_kind]
        lines += ["", f"### {kind}: {len(wrong)} wrong", "", "| id | question | expected | got | rank | note |", "|---|---|---|---|---:|---|"]
        for r in shown:
            j = r["judgement"]
            got = ("[abstained] " if r["abstained"] else "") + r["answer"]
            expected = " + ".join(r["gold_answers"]) if kind == "list" else " / ".join(r["gold_answers"]) or "(abstain)"
            rank = fmt(j["evidence_rank"]) if kind != "unanswerable" else ""
            lines.append(
                f"| {r['id']} | {_cell(r['question'], 60)} | {_cell(expected, 40)} | {_cell(got, 110)} | {rank} | {_cell(r.get('note', ''), 30)} |"
            )
        if len(shown) < len(wrong):
            lines.append(f"| … | {len(wrong) - len(shown)} more in results | | | | |")
    return lines


def render_markdown(run: EvalRun, command: str = "", chart: str = "report.png", failures_per_kind: int | None = None) -> str:
    rep = run.report()
    st = rep["index_status"]
    n_ans = sum(it.answerable for it in run.items)
    lines = [
        f"# Eval: {gold_label(Path(rep['gold']))}",
        "",
        f"- questions: {rep['n_questions']} ({n_ans} answerable, {rep['n_questions'] - n_ans} unanswerable)",
        f"- corpus: `{rep['corpus']}`{' (one article per file)' if rep['whole_files'] else ''}; index `{rep['index']}` "
        f"version {st.get('version', '')}: {st.get('articles', 0)} articles, {st.get('chunks', 0)} chunks, embedder {st.get('embedder', '')}",
        f"- answerer: {rep['answerer']}, answering from the top k={rep['answer_k']} retrieved articles (the app's Engine.ask); "
        f"retrieval metrics over the same ranking at depth {rep['retrieval_depth']}",
        f"- code: {rep['git']}; run time: {rep['seconds']} s",
    ]
    if command:
        lines.append(f"- command: `{command}`")
    lines += [
        "",
        "Evidence hit@k (passage): a gold evidence span (NFKC, whitespace ignored) lies in one of the top-k retrieved "
        "passages; (article): in the full article of one of them. Citation precision: citations of answered answerable "
        "questions whose quote contains, lies in, or shares half of an evidence span. Abstention: positive class = "
        "abstained. Unsupported-number rate: answered questions with a number in none of the cited quotes, titles, "
        "dates or the question.",
        "",
        "## Metrics",
        "",
        *metrics_table(run.runs, llm=run.config.llm),
        "",
        "## Answer accuracy by kind (correct count in brackets)",
        "",
        *kind_table(run.runs),
        "",
        f"![accuracy by kind and hit@k]({chart})",
    ]
    focus = next((r for r in run.runs if r.name == Fusion.SCORE), run.runs[0])
    lines += ["", f"## Failures ({focus.name})", *failures(focus, failures_per_kind)]
    return "\n".join(lines) + "\n"


def plot(runs: Sequence[ModeRun], path: Path, title: str = "") -> Path:
    """Accuracy by kind and hit@k, one bar per retrieval mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in KINDS if k in runs[0].metrics["accuracy_by_kind"]] + ["all"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.8 / len(runs)
    for i, r in enumerate(runs):
        acc = [r.metrics["accuracy_by_kind"][k]["accuracy"] if k != "all" else r.metrics["accuracy"] for k in kinds]
        ax1.bar([x + i * width for x in range(len(kinds))], acc, width, label=r.name)
        hits = [r.metrics[f"hit@{k}"] for k in HIT_KS]
        ax2.bar([x + i * width for x in range(len(HIT_KS))], hits, width, label=r.name)
    ax1.set_xticks([x + width * (len(runs) - 1) / 2 for x in range(len(kinds))], kinds, rotation=20, fontsize=9)
    ax1.set_ylim(0, 1)
    ax1.set_title("answer accuracy by kind")
    ax2.set_xticks([x + width * (len(runs) - 1) / 2 for x in range(len(HIT_KS))], [f"hit@{k}" for k in HIT_KS])
    ax2.set_ylim(0, 1)
    ax2.set_title("evidence hit@k (passage)")
    for ax in (ax1, ax2):
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(run: EvalRun, out: Path, command: str = "") -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    png = plot(run.runs, out / "report.png", title=gold_label(Path(run.config.gold)))
    md = out / "report.md"
    md.write_text(render_markdown(run, command, chart=png.name), encoding="utf-8")
    return [md, png]
