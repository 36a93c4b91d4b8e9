"""report.md (tables side by side per retrieval mode, then the failures) and report.png."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.settings import Fusion

from .harness import EvalRun, ModeRun, gold_label
from .metrics import HIT_KS, KINDS, lookup

ROWS: list[tuple[str, str]] = [
    ("answer accuracy (all)", "accuracy"),
    ("answer accuracy (answerable)", "accuracy_answerable"),
    *[(f"evidence hit@{k} (passage)", f"hit@{k}") for k in HIT_KS],
    ("evidence MRR@10 (passage)", "mrr"),
    *[(f"evidence hit@{k} (article)", f"article_hit@{k}") for k in (1, 5)],
    ("citation precision", "citation_precision"),
    ("abstention precision", "abstention.precision"),
    ("abstention recall", "abstention.recall"),
    ("false abstention (abstained on answerable)", "false_abstention_rate"),
    ("unsupported-number rate", "unsupported_number_rate"),
    ("answers whose lead is a short span (≤30 chars)", "lead_short_share"),
    ("… of number/date/entity answers", "lead_short_share_number_date_entity"),
    ("leads that hold the gold answer (answered, with a lead)", "lead_right_share"),
    ("… of number/date/entity answers", "lead_right_share_number_date_entity"),
    ("lead length, median (chars)", "lead_median_chars"),
    ("answer length, median (chars, answered answerable)", "answer_median_chars"),
    ("gold span inside lead-or-quote", "span_in_lead_or_quote"),
    ("evidence in what a model is shown (quotes + contexts)", "evidence_shown"),
    ("near misses abstained", "nearmiss.abstained"),
    ("near misses abstained naming the nearby fact", "nearmiss.abstained_naming_nearby"),
    ("near-miss twins answered", "nearmiss.twins_answered"),
    ("source-file hit@5", "source_hit@5"),
    ("latency p50 (ms)", "latency_ms.p50"),
    ("latency p95 (ms)", "latency_ms.p95"),
]


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
    """Rows that none of the runs measured (no near misses in the set, no lead field) are left out."""
    lines = ["| metric | " + " | ".join(r.name for r in runs) + " |", "|---|" + "---:|" * len(runs)]
    rows = ROWS + ([("LLM fallback rate", "fallback_rate")] if llm else [])
    for label, key in rows:
        values = [lookup(r.metrics, key) for r in runs]
        if all(v is None for v in values) and key not in ALWAYS:
            continue
        lines.append(f"| {label} | " + " | ".join(fmt(v, key) for v in values) + " |")
    return lines


# shown as "–" rather than dropped when not measured: the gold set's core rows
ALWAYS = {"accuracy", "accuracy_answerable", "hit@1", "hit@5", "citation_precision", "abstention.precision", "abstention.recall"}


def answers_by_kind(metrics: dict[str, Any]) -> list[str]:
    """Per kind: accuracy, abstained share, short-lead share of answered, median lead, nearby named."""
    lines = [
        "| kind | n | accuracy | abstained | lead ≤30 chars (answered) | lead median | abstention names nearby fact |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = dict(metrics.get("by_kind", {}))
    for swap, row in (metrics.get("nearmiss") or {}).get("by_swap", {}).items():
        rows[f"nearmiss: {swap}"] = row
    for kind, row in rows.items():
        lines.append(
            f"| {kind} | {row['n']} | {fmt(row['accuracy'])} ({row['correct']}) | {fmt(row['abstained'])} | "
            f"{fmt(row['lead_short'])} | {fmt(row['lead_median_chars'])} | {fmt(row.get('nearby_named'))} |"
        )
    return lines


COMPARE_ROWS = [
    ("answer accuracy (all)", "accuracy"),
    ("answer accuracy (answerable)", "accuracy_answerable"),
    ("false abstention", "false_abstention_rate"),
    ("abstention recall (unanswerable + near miss)", "abstention.recall"),
    ("near misses abstained", "nearmiss.abstained"),
    ("near misses abstained naming the nearby fact", "nearmiss.abstained_naming_nearby"),
    ("near-miss twins answered", "nearmiss.twins_answered"),
    ("answers whose lead is a short span", "lead_short_share"),
    ("… of number/date/entity answers", "lead_short_share_number_date_entity"),
    ("leads that hold the gold answer (answered, with a lead)", "lead_right_share"),
    ("… of number/date/entity answers", "lead_right_share_number_date_entity"),
    ("lead length, median (chars)", "lead_median_chars"),
    ("answer length, median (chars)", "answer_median_chars"),
    ("gold span inside lead-or-quote", "span_in_lead_or_quote"),
    ("evidence in what a model is shown", "evidence_shown"),
    ("citation precision", "citation_precision"),
    ("unsupported-number rate", "unsupported_number_rate"),
    ("latency p50 (ms)", "latency_ms.p50"),
]


def compare_markdown(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str] = ("before", "after")) -> str:
    """Before/after: the headline metrics, then accuracy / abstention / short leads per kind."""
    lines = [f"| metric | {names[0]} | {names[1]} |", "|---|---:|---:|"]
    for label, key in COMPARE_ROWS:
        va, vb = lookup(a, key), lookup(b, key)
        if va is None and vb is None:
            continue
        lines.append(f"| {label} | {fmt(va, key)} | {fmt(vb, key)} |")
    lines += [
        "",
        f"| kind | n | accuracy {names[0]} | accuracy {names[1]} | abstained {names[0]} | abstained {names[1]} "
        f"| lead ≤30 {names[0]} | lead ≤30 {names[1]} |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows_a, rows_b = dict(a.get("by_kind", {})), dict(b.get("by_kind", {}))
    for m, rows in ((a, rows_a), (b, rows_b)):
        for swap, row in (m.get("nearmiss") or {}).get("by_swap", {}).items():
            rows[f"nearmiss: {swap}"] = row
    for kind in rows_a:
        ra, rb = rows_a[kind], rows_b.get(kind, {})
        lines.append(
            f"| {kind} | {ra['n']} | {fmt(ra['accuracy'])} | {fmt(rb.get('accuracy'))} | {fmt(ra['abstained'])} | "
            f"{fmt(rb.get('abstained'))} | {fmt(ra['lead_short'])} | {fmt(rb.get('lead_short'))} |"
        )
    return "\n".join(lines) + "\n"


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
    lines += [
        "",
        f"## Answers by kind ({focus.name})",
        "",
        "Lead: the answer's short span (the answer JSON's `lead`, empty when it has none); its length in characters "
        "after NFKC and whitespace removal. Near misses: right when abstained; the last column counts abstentions "
        "whose text names one of the twin's answers.",
        "",
        *answers_by_kind(focus.metrics),
    ]
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
