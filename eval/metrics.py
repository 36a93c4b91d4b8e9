"""Gold records and the metric functions of the harness: pure, small, tested on hand-made cases.

Matching everywhere is rag.verify's: NFKC (full/half width) and whitespace ignored, so a span
copied from a PDF line-broken page matches the cleaned article text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from rag.verify import contains_answer, normalize_for_match, unsupported_numbers

# "span": a reading-comprehension answer of any type (CMRC 2018); "nearmiss": a generated question
# whose answer is absent but whose twin's fact is printed nearby (eval/nearmiss.py)
KINDS = ("number", "date", "entity", "list", "description", "span", "unanswerable", "nearmiss")
# kinds whose right outcome is an abstention
ABSTAIN_KINDS = ("unanswerable", "nearmiss")
# issue 9: a short answer span ("13.92亿元", "5月25日", "武斌") leads the answer; for number, date and
# person/org questions it should be at most this many characters
LEAD_SHORT_CHARS = 30
SHORT_LEAD_KINDS = ("number", "date", "entity")
HIT_KS = (1, 3, 5, 10)
RETRIEVAL_DEPTH = max(HIT_KS)


class GoldError(ValueError):
    """A gold file line that does not follow the format; the message names file and line."""


@dataclass(frozen=True)
class GoldItem:
    id: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[str, ...]
    kind: str
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def answerable(self) -> bool:
        return self.kind not in ABSTAIN_KINDS


def _check_strings(value: Any, name: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GoldError(f"{where}: {name!r} must be a list of strings")
    if any(not v.strip() for v in value):
        raise GoldError(f"{where}: {name!r} has an empty string")
    return tuple(value)


def parse_gold_line(line: str, where: str) -> GoldItem:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise GoldError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(row, dict):
        raise GoldError(f"{where}: expected a JSON object, got {type(row).__name__}")
    missing = [k for k in ("id", "question", "answers", "evidence", "kind") if k not in row]
    if missing:
        raise GoldError(f"{where}: missing field(s) {', '.join(missing)}")
    for key in ("id", "question"):
        if not isinstance(row[key], str) or not row[key].strip():
            raise GoldError(f"{where}: {key!r} must be a non-empty string")
    kind = row["kind"]
    if kind not in KINDS:
        raise GoldError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    answers = _check_strings(row["answers"], "answers", where)
    evidence = _check_strings(row["evidence"], "evidence", where)
    if kind in ABSTAIN_KINDS and answers:
        raise GoldError(f"{where}: an unanswerable question must have answers []")
    if kind not in ABSTAIN_KINDS and not answers:
        raise GoldError(f"{where}: an answerable question (kind {kind}) needs at least one answer")
    source = row.get("source", "")
    if not isinstance(source, str):
        raise GoldError(f"{where}: 'source' must be a string")
    known = {"id", "question", "answers", "evidence", "kind", "source"}
    return GoldItem(
        id=row["id"],
        question=row["question"],
        answers=answers,
        evidence=evidence,
        kind=kind,
        source=source,
        extra={k: v for k, v in row.items() if k not in known},
    )


def load_gold(path: Path) -> list[GoldItem]:
    """Every line validated; the first bad line stops the run with its line number."""
    path = Path(path)
    if not path.is_file():
        raise GoldError(f"gold file not found: {path}")
    items: list[GoldItem] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            item = parse_gold_line(line, where)
            if item.id in seen:
                raise GoldError(f"{where}: duplicate id {item.id!r} (first on line {seen[item.id]})")
            seen[item.id] = lineno
            items.append(item)
    if not items:
        raise GoldError(f"{path}: no questions")
    return items


# -- per-question judgements ----------------------------------------------------------------


def evidence_rank(evidence: Sequence[str], texts: Sequence[str]) -> int | None:
    """1-based rank of the first text holding any evidence span (normalised), None if none does."""
    spans = [normalize_for_match(e) for e in evidence if e.strip()]
    if not spans:
        return None
    for rank, text in enumerate(texts, 1):
        t = normalize_for_match(text)
        if any(s in t for s in spans):
            return rank
    return None


def is_correct(item: GoldItem, answer_text: str, abstained: bool) -> bool:
    """Unanswerable: right iff it abstained. Answerable: answered and contains the gold answer
    (all of them for a list). An abstention's text may quote the nearby fact; it never counts."""
    if not item.answerable:
        return abstained
    return (not abstained) and contains_answer(answer_text, item.answers, require_all=item.kind == "list")


def quote_supports(quote: str, evidence: Sequence[str], min_common: int = 8) -> bool:
    """A citation quote is on target when, after normalisation, it contains an evidence span, an
    evidence span contains it, or the two share a run of at least half the span (and at least
    `min_common` characters): the answerer clips long sentences to clauses, so a quote may cut a
    span in two, while an unrelated sentence of the same article shares only short phrases."""
    q = normalize_for_match(quote)
    if not q:
        return False
    for e in evidence:
        s = normalize_for_match(e)
        if not s:
            continue
        if s in q or q in s:
            return True
        m = SequenceMatcher(None, q, s, autojunk=False).find_longest_match(0, len(q), 0, len(s))
        if m.size >= max(min_common, math.ceil(len(s) / 2)):
            return True
    return False


def number_support(answer: dict[str, Any]) -> list[str]:
    """Numbers of a non-abstained answer found in none of its cited quotes, titles, dates nor the question."""
    passages: list[str] = []
    for c in answer.get("citations", []):
        passages += [c.get("quote", ""), c.get("title", ""), c.get("date", "")]
    return unsupported_numbers(answer.get("answer", ""), passages, answer.get("question", ""))


def shown_texts(answer: dict[str, Any]) -> list[str]:
    """What the answerer would show a model: every citation's quote (and its paragraph, when the
    answer JSON carries one as "context") and every retrieved context passage."""
    texts = []
    for c in answer.get("citations", []):
        texts += [c.get("quote", ""), c.get("context", "")]
    texts += [c.get("text", "") for c in answer.get("contexts", [])]
    return [t for t in texts if t]


def lead_of(answer: dict[str, Any]) -> str:
    """The short answer span; "" when the answer has none (or predates the "lead" field)."""
    return str(answer.get("lead") or "")


def judge_answer(item: GoldItem, answer: dict[str, Any]) -> dict[str, Any]:
    """Everything judged from the answer JSON alone, so an old results file can be re-judged
    with new metrics (`python -m eval --compare-runs`)."""
    abstained = bool(answer.get("abstained"))
    text = answer.get("answer", "")
    cites = answer.get("citations", [])
    lead = lead_of(answer)
    quotes = " ".join(c.get("quote", "") for c in cites)
    out: dict[str, Any] = {
        "correct": is_correct(item, text, abstained),
        "abstained": abstained,
        "citations_supported": [quote_supports(c.get("quote", ""), item.evidence) for c in cites] if item.answerable else [],
        "unsupported_numbers": [] if abstained else number_support(answer),
        "lead_chars": len(normalize_for_match(lead)),
        # the whole answer text without its [n] markers: what a user reads before the quote list
        "answer_chars": len(normalize_for_match(re.sub(r"\[\d+\]", "", text))),
        "lead_short": bool(lead) and len(normalize_for_match(lead)) <= LEAD_SHORT_CHARS,
        "mode": answer.get("mode", ""),
        "total_ms": float(answer.get("timings_ms", {}).get("total_ms", 0.0)),
    }
    if item.answerable:
        # CMRC's "gold span inside the answer lead-or-quote": the lead and the quotes, not the template text
        out["span_in_lead_or_quote"] = (not abstained) and contains_answer(lead + " " + quotes, item.answers, require_all=item.kind == "list")
        if lead and not abstained:
            # a lead without the gold span is a confident wrong figure, even when the quote holds it
            out["lead_right"] = contains_answer(lead, item.answers)
        out["evidence_shown"] = evidence_rank(item.evidence or item.answers, shown_texts(answer)) is not None
    nearby = item.extra.get("nearby_answers") or []
    if nearby:
        out["nearby_named"] = abstained and contains_answer(text, nearby)
    return out


def judge(
    item: GoldItem,
    answer: dict[str, Any],
    ranked_texts: Sequence[str],
    ranked_articles: Sequence[str],
    ranked_sources: Sequence[str] = (),
) -> dict[str, Any]:
    """The per-question judgements stored in results.jsonl and summarised by `summarize`.

    `ranked_texts`: retrieved passages, best first, at depth RETRIEVAL_DEPTH; `ranked_articles`:
    the full bodies of their articles (a span cut by a chunk boundary still counts there);
    `ranked_sources`: their corpus files, for sets whose unit of truth is a file (CMRC passages)."""
    out = judge_answer(item, answer)
    out["evidence_rank"] = evidence_rank(item.evidence, ranked_texts) if item.answerable else None
    out["article_rank"] = evidence_rank(item.evidence, ranked_articles) if item.answerable else None
    if item.answerable and item.source and ranked_sources:
        out["source_rank"] = next((r for r, src in enumerate(ranked_sources, 1) if src == item.source), None)
    return out


# -- aggregates -----------------------------------------------------------------------------


def lookup(metrics: dict[str, Any], dotted: str) -> Any:
    """metrics["abstention"]["recall"] for "abstention.recall"; None where a part is missing."""
    value: Any = metrics
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def hit_at(ranks: Sequence[int | None], k: int) -> float:
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0


def mrr(ranks: Sequence[int | None]) -> float:
    """Mean reciprocal rank, a miss (None, or deeper than the retrieval depth) counting 0."""
    return sum(1.0 / r for r in ranks if r is not None) / len(ranks) if ranks else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), without numpy."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def abstention_scores(rows: Iterable[tuple[bool, bool]]) -> dict[str, Any]:
    """rows: (is_unanswerable, abstained). Positive class = abstained."""
    tp = fp = fn = 0
    for unanswerable, abstained in rows:
        if abstained and unanswerable:
            tp += 1
        elif abstained:
            fp += 1
        elif unanswerable:
            fn += 1
    return {"precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn), "tp": tp, "fp": fp, "fn": fn}


def summarize(items: Sequence[GoldItem], judged: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """All report metrics for one run; `judged[i]` is `judge(items[i], ...)`."""
    if len(items) != len(judged):
        raise ValueError("items and judgements differ in length")
    with_evidence = [(it, j) for it, j in zip(items, judged) if it.answerable and it.evidence]
    ranks = [j["evidence_rank"] for _, j in with_evidence]
    art_ranks = [j["article_rank"] for _, j in with_evidence]
    out: dict[str, Any] = {
        "n": len(items),
        "n_answerable": sum(it.answerable for it in items),
        "n_unanswerable": sum(not it.answerable for it in items),
        "n_retrieval": len(with_evidence),
    }
    for k in HIT_KS:
        out[f"hit@{k}"] = hit_at(ranks, k)
    out["mrr"] = mrr(ranks)
    for k in HIT_KS:
        out[f"article_hit@{k}"] = hit_at(art_ranks, k)
    out["accuracy"] = ratio(sum(j["correct"] for j in judged), len(judged))
    answerable = [j for it, j in zip(items, judged) if it.answerable]
    out["accuracy_answerable"] = ratio(sum(j["correct"] for j in answerable), len(answerable))
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        js = [j for it, j in zip(items, judged) if it.kind == kind]
        if js:
            correct = sum(j["correct"] for j in js)
            by_kind[kind] = {"n": len(js), "correct": correct, "accuracy": correct / len(js)}
    out["accuracy_by_kind"] = by_kind
    cites = [ok for it, j in zip(items, judged) if it.answerable and not j["abstained"] for ok in j["citations_supported"]]
    out["citation_precision"] = ratio(sum(cites), len(cites))
    out["n_citations"] = len(cites)
    out["abstention"] = abstention_scores((not it.answerable, j["abstained"]) for it, j in zip(items, judged))
    out["abstention_rate_answerable"] = ratio(sum(j["abstained"] for j in answerable), len(answerable))
    answered = [j for j in judged if not j["abstained"]]
    out["unsupported_number_rate"] = ratio(sum(bool(j["unsupported_numbers"]) for j in answered), len(answered))
    lat = [j["total_ms"] for j in judged]
    out["latency_ms"] = {"p50": percentile(lat, 50), "p95": percentile(lat, 95), "mean": sum(lat) / len(lat) if lat else 0.0}
    modes: dict[str, int] = {}
    for j in judged:
        modes[j["mode"]] = modes.get(j["mode"], 0) + 1
    out["answer_modes"] = modes
    out["fallback_rate"] = ratio(modes.get("llm-fallback", 0), len(judged))
    out.update(answer_metrics(items, judged))
    src = [j["source_rank"] for it, j in zip(items, judged) if it.answerable and "source_rank" in j]
    if src:
        for k in HIT_KS:
            out[f"source_hit@{k}"] = hit_at(src, k)
        out["source_mrr"] = mrr(src)
    return out


def _median(values: Sequence[float]) -> float | None:
    return percentile(values, 50) if values else None


def kind_row(pairs: Sequence[tuple[GoldItem, dict[str, Any]]]) -> dict[str, Any]:
    """One row of the per-kind table: accuracy, abstention, how short the leads of answers are."""
    answered = [j for _, j in pairs if not j["abstained"]]
    leads = [j["lead_chars"] for j in answered if j.get("lead_chars")]
    row: dict[str, Any] = {
        "n": len(pairs),
        "correct": sum(j["correct"] for _, j in pairs),
        "accuracy": ratio(sum(j["correct"] for _, j in pairs), len(pairs)),
        "abstained": ratio(sum(j["abstained"] for _, j in pairs), len(pairs)),
        "lead_short": ratio(sum(bool(j.get("lead_short")) for j in answered), len(answered)),
        "lead_median_chars": _median(leads),
        "answer_median_chars": _median([j.get("answer_chars", 0) for j in answered]),
    }
    named = [j["nearby_named"] for _, j in pairs if "nearby_named" in j]
    if named:
        row["nearby_named"] = ratio(sum(named), len(named))
    return row


def answer_metrics(items: Sequence[GoldItem], judged: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Issue 9's answer metrics: per-kind table, short leads, near misses and their twins, false
    abstention, gold span in lead-or-quote, evidence in what a model is shown."""
    pairs = list(zip(items, judged))
    answerable = [(it, j) for it, j in pairs if it.answerable]
    out: dict[str, Any] = {}
    out["false_abstention_rate"] = ratio(sum(j["abstained"] for _, j in answerable), len(answerable))
    out["by_kind"] = {k: kind_row([(it, j) for it, j in pairs if it.kind == k]) for k in KINDS if any(it.kind == k for it in items)}
    answered = [j for _, j in answerable if not j["abstained"]]
    out["lead_short_share"] = ratio(sum(bool(j.get("lead_short")) for j in answered), len(answered))
    short_kinds = [j for it, j in answerable if it.kind in SHORT_LEAD_KINDS and not j["abstained"]]
    out["lead_short_share_number_date_entity"] = ratio(sum(bool(j.get("lead_short")) for j in short_kinds), len(short_kinds))
    leads = [j["lead_chars"] for j in answered if j.get("lead_chars")]
    out["lead_median_chars"] = _median(leads)
    out["answer_median_chars"] = _median([j.get("answer_chars", 0) for j in answered])
    led = [j["lead_right"] for _, j in answerable if "lead_right" in j]
    out["lead_right_share"] = ratio(sum(led), len(led))
    led = [j["lead_right"] for it, j in answerable if "lead_right" in j and it.kind in SHORT_LEAD_KINDS]
    out["lead_right_share_number_date_entity"] = ratio(sum(led), len(led))
    lq = [j["span_in_lead_or_quote"] for _, j in answerable if "span_in_lead_or_quote" in j]
    out["span_in_lead_or_quote"] = ratio(sum(lq), len(lq))
    shown = [j["evidence_shown"] for _, j in answerable if "evidence_shown" in j]
    out["evidence_shown"] = ratio(sum(shown), len(shown))
    near = [(it, j) for it, j in pairs if it.kind == "nearmiss"]
    if near:
        by_swap: dict[str, Any] = {}
        for swap in sorted({str(it.extra.get("swap", "")) for it, _ in near}):
            by_swap[swap] = kind_row([(it, j) for it, j in near if it.extra.get("swap", "") == swap])
        twins = [(it, j) for it, j in pairs if it.extra.get("role") == "twin"]
        out["nearmiss"] = {
            "n": len(near),
            "abstained": ratio(sum(j["abstained"] for _, j in near), len(near)),
            "abstained_naming_nearby": ratio(sum(bool(j.get("nearby_named")) for _, j in near), len(near)),
            "n_twins": len(twins),
            "twins_answered": ratio(sum(not j["abstained"] for _, j in twins), len(twins)),
            "twins_correct": ratio(sum(j["correct"] for _, j in twins), len(twins)),
            "by_swap": by_swap,
        }
    return out
