"""Alignments → Decision: answer, abstain offering a labelled nearby fact, or abstain.

The probability that a span answers its question is a logistic model over the alignment
features (align.FEATURES). Its weights and threshold are fitted on data, not set by hand:
`python -m eval.decision_train` fits them with k-fold cross-validation over the gold set,
the near-miss set, crud_qa_dev and the CMRC trial, and writes `rag/answer/decision.json`
(plain JSON coefficients; no pickle). Conflicts are also a hard rule on top of the model: a
span whose year, office or ordinal contradicts the question, or whose page never names an office
or place the question asks about, is never quoted as the answer, whatever its score; it can
only be offered as the nearby fact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from .align import CONFLICT_FEATURES, FEATURES
from .types import MISSING, Alignment, Analysis, AnswerParams, Decision

MODEL_DIR = Path(__file__).resolve().parent

# Conflict -> the feature values of the same span had the constraint been met.
_FREED = {
    "year_conflict": "year_match",
    "entity_conflict": "entity_match",
    "ordinal_conflict": "ordinal_match",
    "indicator_missing": "indicator_match",
}


# A number question is never answered by a span without a quantity of the asked unit, a date
# question never by one without a date: the quote would not hold the answer.
HARD_SLOTS = frozenset({"number", "date"})

# What the answer/abstain model sees of a question's best span: how far the ranker prefers it,
# how well it covers the question, and which constraints it leaves unmet.
QUESTION_FEATURES = (
    "bias",
    "rank_logit",
    "margin",
    "coverage",
    "context_coverage",
    "bigram_overlap",
    "missing_weight",
    "unseen_weight",
    "slot_fit",
    "unit_fit",
    "year_missing",
    "entity_missing",
    "entity_in_article",
    "entity_in_page",
    "entity_before",
    "ordinal_missing",
    "indicator_match",
    "indicator_missing",
    "answer_clause",
    "indicator_clause",
    "lead_found",
    "inv_rank",
    "slot_number",
    "slot_date",
    "slot_person",
    "slot_list",
    "slot_description",
)


@dataclass(frozen=True)
class DecisionModel:
    """Two logistic models: `rank_weights` order a question's spans (which one answers), and
    `answer_weights` say, from the best span's features, whether it answers at all."""

    rank_weights: dict[str, float]
    answer_weights: dict[str, float]
    threshold: float
    meta: dict
    # A labelled nearby fact is an abstention, not an answer, so it may be offered on less
    # certainty than an answer needs; fitted on the near-miss set (None: the answer threshold).
    nearby_threshold: float | None = None

    @property
    def nearby_bar(self) -> float:
        return self.threshold if self.nearby_threshold is None else self.nearby_threshold

    def rank_logit(self, features: dict[str, float]) -> float:
        weights = self.rank_weights
        return sum(weights[name] * value for name, value in features.items() if value and name in weights)

    def answer_probability(self, features: dict[str, float]) -> float:
        z = sum(self.answer_weights.get(name, 0.0) * value for name, value in features.items())
        return _sigmoid(z)

    def to_json(self) -> dict:
        return {
            "rank_features": list(FEATURES),
            "rank_weights": self.rank_weights,
            "answer_features": list(QUESTION_FEATURES),
            "answer_weights": self.answer_weights,
            "threshold": self.threshold,
            "nearby_threshold": self.nearby_threshold,
            "meta": self.meta,
        }


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


@lru_cache(maxsize=8)
def load_model(name: str) -> DecisionModel:
    path = Path(name) if Path(name).is_absolute() else MODEL_DIR / name
    data = json.loads(path.read_text(encoding="utf-8"))
    for key, names in (("rank_weights", FEATURES), ("answer_weights", QUESTION_FEATURES)):
        unknown = set(data[key]) - set(names)
        if unknown:
            raise ValueError(f"{path}: {key} for unknown features {sorted(unknown)}")
    return DecisionModel(
        {k: float(v) for k, v in data["rank_weights"].items()},
        {k: float(v) for k, v in data["answer_weights"].items()},
        float(data["threshold"]),
        data.get("meta", {}),
        None if data.get("nearby_threshold") is None else float(data["nearby_threshold"]),
    )


def freed(features: dict[str, float]) -> dict[str, float]:
    """The features with every conflict (and a missing indicator) turned into a match."""
    out = dict(features)
    for bad, good in _FREED.items():
        if out.get(bad):
            out[bad] = 0.0
            out[good] = 1.0
    return out


def score(alignments: Sequence[Alignment], model: DecisionModel) -> list[Alignment]:
    """The alignments with their ranking logits (`score`, and `free_score` with conflicts
    ignored: for a span about another year, as if the question had asked that year), best first."""
    scored = []
    for a in alignments:
        logit = model.rank_logit(a.features)
        free = model.rank_logit(freed(a.free_features)) if any(a.features.get(bad) for bad in _FREED) else logit
        scored.append(replace(a, score=logit, free_score=free))
    scored.sort(key=lambda a: (-a.score, a.span.hit.rank, a.span.start))
    return scored


def question_features(best: Alignment, logit: float, runner_up: float | None, features: dict[str, float] | None = None) -> dict[str, float]:
    f = features or best.features
    out = {name: f.get(name, 0.0) for name in QUESTION_FEATURES}
    out["bias"] = 1.0
    out["rank_logit"] = logit
    out["margin"] = min(logit - runner_up, 5.0) if runner_up is not None else 5.0
    return out


def quotable(scored: Sequence[Alignment], analysis: Analysis | None = None) -> list[Alignment]:
    """Spans that may be quoted as the answer, best first: no conflict, from the question's own
    search, and for a number or date question holding a quantity of the asked unit or a date."""
    hard = analysis is not None and analysis.slot in HARD_SLOTS
    return [
        a
        for a in scored
        if not a.conflicts and not a.absent_entity and not a.span.from_yearless and (not hard or a.features["slot_fit"])
    ]


def answer_probability(
    scored: Sequence[Alignment], model: DecisionModel, analysis: Analysis | None = None
) -> tuple[Alignment | None, float]:
    """The best quotable span and the probability that it answers."""
    clean = quotable(scored, analysis)
    if not clean:
        return None, 0.0
    top = clean[0]
    runner = next((a.score for a in clean[1:] if a.span.article.id != top.span.article.id or not _overlaps(a, [top])), None)
    return top, model.answer_probability(question_features(top, top.score, runner))


def _overlaps(a: Alignment, chosen: Sequence[Alignment]) -> bool:
    return any(
        o.span.article.id == a.span.article.id and o.span.start < a.span.end and a.span.start < o.span.end for o in chosen
    )


def decide(analysis: Analysis, scored: Sequence[Alignment], model: DecisionModel, params: AnswerParams) -> Decision:
    if not scored:
        return Decision("none", reason="no-hits")
    top, p = answer_probability(scored, model, analysis)
    # a date question whose event the archive never writes (什么时候开诊) has no answer to quote
    if top is not None and p >= model.threshold and not analysis.unseen_event:
        clean = quotable(scored, analysis)
        chosen = [top]
        many = analysis.slot == "list"
        for a in clean[1:]:
            if len(chosen) >= (params.max_citations if many else 2):
                break
            if a.score < top.score - params.second_quote_margin or _overlaps(a, chosen):
                continue
            if not many and a.span.article.id != top.span.article.id:
                continue
            if a.features["slot_fit"] >= top.features["slot_fit"]:
                chosen.append(a)
        return Decision("answer", tuple(chosen), confidence=p)
    # The nearby fact is the span the ranker would put first had its conflict not been there;
    # it is offered only if the answer model would then have answered with it.
    # A nearby fact differs from the asked one in exactly one constraint: a 2024 sentence about
    # another indicator is no "2024 figure" of the asked one.
    rivals = [
        a for a in scored if len(unmet(a)) == 1 and (a.features["slot_fit"] or analysis.slot not in HARD_SLOTS)
    ]
    if rivals:
        near = max(rivals, key=lambda a: (a.free_score, -a.span.hit.rank))
        others = [b.score for b in scored if b.span.article.id != near.span.article.id]
        pf = model.answer_probability(question_features(near, near.free_score, max(others, default=None), freed(near.free_features)))
        if pf >= model.nearby_bar and (top is None or pf > p):
            reason, asked, found = _why(analysis, near)
            return Decision("nearby", (near,), reason, asked, found, confidence=pf)
    closest = top or next(iter(scored), None)
    if closest is not None and analysis.unseen_event:
        return Decision("none", (closest,), "event_unseen", analysis.unseen_event, confidence=p)
    if closest is not None and closest.features["coverage"] >= params.nearby_min_coverage:
        reason = "no-number" if analysis.slot == "number" and top is None else "weak"
        return Decision("none", (closest,), reason, confidence=p)
    return Decision("none", reason="weak", confidence=p)


def unmet(a: Alignment) -> list[str]:
    """The question's constraints the span contradicts or lacks: a conflicting year, office or
    ordinal, an office its page never names, a missing indicator."""
    out = list(a.conflicts)
    if a.absent_entity and "entity" not in out:  # another office in its place: one constraint
        out.append("entity_absent")
    if a.indicator == MISSING:
        out.append("indicator")
    return out


def _why(analysis: Analysis, a: Alignment) -> tuple[str, str, str]:
    if a.year == "conflict":
        asked = "、".join(f"{y}年" for y in analysis.years)
        return "year", asked, f"{a.found_year}年" if a.found_year else ""
    if a.entity == "conflict":
        asked = next((e for e in analysis.entities), "")
        return "entity", asked, a.found_entity
    if a.absent_entity:
        return "entity_absent", a.absent_entity, ""
    if a.ordinal == "conflict":
        return "ordinal", "、".join(f"第{o}" for o in analysis.ordinals), f"第{a.found_ordinal}"
    return "indicator", "、".join(analysis.indicators), ""


__all__ = ["CONFLICT_FEATURES", "QUESTION_FEATURES", "DecisionModel", "decide", "freed", "load_model", "score", "unmet"]
