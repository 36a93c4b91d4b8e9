"""Fit the extractive answerer's decision model: `python -m eval.decision_train`.

1. Every question of the training sets (gold, near-miss, crud_qa_dev + distractors, CMRC
   trial) is retrieved once, and its candidate spans are aligned by the answerer itself
   (rag.answer), so training sees exactly the features the product computes. Retrieval here is
   BM25 over an in-memory index of the set's corpus (`sparse_store`): embedding the CRUD and
   CMRC corpora takes hours on two cores, and BM25 alone finds the right article as often as
   the fusion does on these sets (README, "Retrieval modes").
2. A logistic regression (L2, Newton's method) is fitted on candidate rows: label 1 when the
   question is answerable and the span holds a gold answer. Unanswerable and near-miss
   questions give only negatives, which is where conflicts and missing words learn their weight.
3. The threshold is the one that maximises, on the training items, +1 per right answer or right
   abstention and -`wrong_cost` per wrong answer (a confident wrong number is the worst output).
4. Grouped k-fold (eval/folds.py: a near miss and its twin, and all questions on one article,
   stay in one fold): each fold's items are decided by a model fitted on the other folds; the
   report gives those held-out figures per set. The shipped model is then fitted on everything,
   and written with the report to rag/answer/decision.json (plain JSON; no pickle).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rag.answer import AnswerParams, ExtractiveAnswerer
from rag.answer.align import FEATURES
from rag.answer.compose import compose
from rag.answer.decide import MODEL_DIR, QUESTION_FEATURES, DecisionModel, answer_probability, decide, question_features, quotable, score
from rag.answer.types import Alignment, Analysis
from rag.build import articles_of
from rag.chunk import chunk_article
from rag.load import load_corpus
from rag.records import Answer
from rag.retrieve import Retriever
from rag.settings import PROJECT_ROOT, Settings
from rag.store import LocalStore
from rag.tokenize import tokenize
from rag.verify import contains_answer
from rag import zh

from .cmrc import load_cmrc, write_corpus
from .crud import DEV, make_corpus
from .folds import evidence_article, kfold
from .harness import OUT_ROOT, shared_path
from .metrics import GoldItem, load_gold

log = logging.getLogger(__name__)

MAX_CANDIDATES = 60  # per question, by the starting model's score: the rest never win
THRESHOLD_SMOOTHING = 2  # the utility curve is averaged over this many grid steps (0.025) either side


@dataclass
class Example:
    item: GoldItem
    dataset: str
    analysis: Analysis
    hits: list
    alignments: list[Alignment]
    labels: list[int] = field(default_factory=list)


def sparse_store(corpus: Path, settings: Settings) -> LocalStore:
    """The corpus segmented, chunked and tokenised exactly as `rag.index` does, held in memory
    with BM25 only (a 1-dimensional zero vector stands for the dense side, which is not used)."""
    pages = load_corpus(corpus).pages
    store = LocalStore(dim=1)
    profile = settings.corpus_profile
    for page in pages:
        articles = articles_of(page, settings)
        chunks = [c for a in articles for c in chunk_article(a, settings.chunk_size, settings.chunk_overlap)]
        if chunks:
            store.add(articles, chunks, np.zeros((len(chunks), 1), dtype=np.float32), [tokenize(c.indexed_text, profile) for c in chunks])
    return store


def collect(name: str, items: Sequence[GoldItem], store: LocalStore, settings: Settings, params: AnswerParams) -> list[Example]:
    answerer = ExtractiveAnswerer(store, settings.corpus_profile, params)
    retriever = Retriever(store, None, settings.replace(fusion="sparse"))  # type: ignore[arg-type]
    out = []
    t0 = time.perf_counter()
    for n, item in enumerate(items, 1):
        analysis = answerer.analyze(item.question)
        hits = retriever.search(item.question, mode="sparse")
        yearless = retriever.search(zh.strip_years(item.question), mode="sparse") if analysis.years and zh.strip_years(item.question).strip() else []
        aligned = answerer.alignments(analysis, hits, yearless)[:MAX_CANDIDATES]
        labels = [int(item.answerable and contains_answer(a.span.text, item.answers)) for a in aligned]
        out.append(Example(item, name, analysis, hits, aligned, labels))
        if n % 100 == 0:
            log.info("%s: %d/%d questions (%.0f s)", name, n, len(items), time.perf_counter() - t0)
    return out


def logistic(
    X: np.ndarray, y: np.ndarray, names: Sequence[str], l2: float, sample_weight: np.ndarray | None = None, iterations: int = 30
) -> dict[str, float]:
    """Weighted logistic regression by Newton's method with an L2 penalty (not on the bias)."""
    sw = np.ones(len(y)) if sample_weight is None else sample_weight
    w = np.zeros(X.shape[1])
    penalty = np.full(X.shape[1], l2)
    penalty[list(names).index("bias")] = 1e-6
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ w, -40, 40)))
        grad = X.T @ (sw * (p - y)) + penalty * w
        hess = (X * (sw * p * (1 - p))[:, None]).T @ X + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return {f: round(float(v), 5) for f, v in zip(names, w)}


EQUAL_SETS = False  # --equal-sets; measured: worse held-out accuracy on every set but the near misses


def set_weights(examples: Sequence[Example]) -> dict[str, float]:
    """With --equal-sets, each data set weighs the same in fitting and in the threshold's utility, whatever its
    size: the 1,000 CMRC questions on Wikipedia must not outvote the newspaper sets."""
    sizes: dict[str, int] = {}
    for e in examples:
        sizes[e.dataset] = sizes.get(e.dataset, 0) + 1
    if not EQUAL_SETS:
        return {name: 1.0 for name in sizes}
    mean = len(examples) / len(sizes)
    return {name: mean / n for name, n in sizes.items()}


def fit(examples: Sequence[Example], params: AnswerParams, profile, l2: float = 1.0) -> tuple[dict[str, float], dict[str, float]]:
    """The ranking model on every candidate span, then the answer model on each question's best
    span under that ranking, labelled by whether answering with it would be right."""
    X = np.array([[a.features.get(f, 0.0) for f in FEATURES] for e in examples for a in e.alignments], dtype=float)
    y = np.array([lab for e in examples for lab in e.labels], dtype=float)
    share = set_weights(examples)
    rank = logistic(X, y, FEATURES, l2, np.array([share[e.dataset] for e in examples for _ in e.alignments]))
    forced = DecisionModel(rank, {"bias": 100.0}, 0.5, {})
    rows, labels, weights = [], [], []
    for e in examples:
        scored = score(e.alignments, forced)
        top, _ = answer_probability(scored, forced, e.analysis)
        if top is None:
            continue
        clean = quotable(scored, e.analysis)
        runner = clean[1].score if len(clean) > 1 else None
        qf = question_features(top, top.score, runner)
        rows.append([qf[f] for f in QUESTION_FEATURES])
        weights.append(share[e.dataset])
        labels.append(int(judge(e, compose(e.analysis, decide(e.analysis, scored, forced, params), e.hits, profile, params))["right"] and e.item.answerable))
    answer = logistic(np.array(rows, dtype=float), np.array(labels, dtype=float), QUESTION_FEATURES, l2, np.array(weights))
    return rank, answer


def outcome(e: Example, model: DecisionModel, params: AnswerParams, profile) -> Answer:
    scored = score(e.alignments, model)
    decision = decide(e.analysis, scored, model, params)
    return compose(e.analysis, decision, e.hits, profile, params)


def judge(e: Example, answer: Answer) -> dict[str, bool]:
    item = e.item
    shown = answer.answer
    right = (not answer.abstained) and contains_answer(shown, item.answers, require_all=item.kind == "list") if item.answerable else answer.abstained
    nearby = item.extra.get("nearby_answers") or []
    return {
        "right": bool(right),
        "answered": not answer.abstained,
        "answerable": item.answerable,
        "names_nearby": bool(answer.abstained and nearby and contains_answer(shown, nearby)),
        "short_lead": bool(answer.lead) and len(answer.lead) <= 30,
        "lead_right": None if answer.abstained or not answer.lead or not item.answerable else contains_answer(answer.lead, item.answers),
    }


def utility(judged: Sequence[dict[str, bool]], wrong_cost: float) -> float:
    return sum(1.0 if j["right"] else (-wrong_cost if j["answered"] else 0.0) for j in judged)


def answer_outcomes(examples, weights, params, profile) -> list[tuple[float, bool]]:
    """Per question: the answer model's probability, and whether answering would be right. The
    utility of any threshold follows from these two alone, so the sweep composes once."""
    forced = DecisionModel(weights[0], {"bias": 100.0}, 0.5, {})
    model = DecisionModel(*weights, 0.5, {})
    out = []
    for e in examples:
        scored = score(e.alignments, model)
        _, p = answer_probability(scored, model, e.analysis)
        right = judge(e, compose(e.analysis, decide(e.analysis, scored, forced, params), e.hits, profile, params))["right"]
        out.append((p, bool(right and e.item.answerable)))
    return out


def choose_threshold(examples, weights, params, profile, wrong_cost: float) -> float:
    """The threshold of most utility on the training items, read off the utility curve smoothed
    over neighbouring thresholds: the curve is flat near its top, and its raw maximum jumped by
    0.1 between folds that differ in a handful of questions."""
    outcomes = answer_outcomes(examples, weights, params, profile)
    share = set_weights(examples)
    grid = np.arange(0.05, 0.96, 0.025)
    curve = []
    for t in grid:
        u = 0.0
        for (p, right), e in zip(outcomes, examples):
            w = share[e.dataset]
            if p >= t:
                u += w * (1.0 if right else -wrong_cost)
            elif not e.item.answerable:
                u += w
        curve.append(u)
    half = THRESHOLD_SMOOTHING
    smooth = [float(np.mean(curve[max(0, i - half) : i + half + 1])) for i in range(len(curve))]
    return round(float(grid[int(np.argmax(smooth))]), 3)


def choose_nearby_threshold(examples, weights, threshold: float, params, profile, wrong_cost: float) -> float:
    """The least certainty at which a labelled nearby fact is offered: on the near-miss questions
    (the only ones whose nearby fact is known), +1 for an abstention naming it, minus half the
    wrong-answer cost for one offering another fact; never above the answer threshold."""
    near = [e for e in examples if e.item.extra.get("nearby_answers")]
    best = (-1e9, threshold)
    for t in np.arange(0.05, threshold + 1e-9, 0.025):
        model = DecisionModel(*weights, threshold, {}, float(t))
        u = 0.0
        for e in near:
            answer = outcome(e, model, params, profile)
            if answer.nearby is not None:
                u += 1.0 if judge(e, answer)["names_nearby"] else -0.5 * wrong_cost
        if u > best[0] + 1e-9:
            best = (u, float(t))
    return round(best[1], 3)


def summary(rows: Sequence[dict[str, bool]]) -> dict[str, float | int]:
    n = len(rows)
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    return {
        "n": n,
        "accuracy": round(sum(r["right"] for r in rows) / n, 3) if n else 0.0,
        "answerable_accuracy": round(sum(r["right"] for r in ans) / len(ans), 3) if ans else None,
        "false_abstention": round(sum(not r["answered"] for r in ans) / len(ans), 3) if ans else None,
        "unanswerable_abstained": round(sum(not r["answered"] for r in una) / len(una), 3) if una else None,
        "abstention_names_nearby": round(sum(r["names_nearby"] for r in una) / len(una), 3) if una else None,
        "short_lead_share": round(sum(r["short_lead"] for r in ans if r["answered"]) / max(1, sum(r["answered"] for r in ans)), 3),
        "lead_right_share": round(sum(bool(r["lead_right"]) for r in led) / len(led), 3) if (led := [r for r in ans if r.get("lead_right") is not None]) else None,
    }


def datasets(settings: Settings, crud_distractors: int, cmrc_limit: int | None) -> dict[str, tuple[list[GoldItem], LocalStore, Settings]]:
    seed = sparse_store(settings.corpus_dir, settings)
    sets: dict[str, tuple[list[GoldItem], LocalStore, Settings]] = {
        "gold": (load_gold(PROJECT_ROOT / "eval" / "gold.jsonl"), seed, settings),
        "nearmiss": (load_gold(PROJECT_ROOT / "eval" / "nearmiss.jsonl"), seed, settings),
    }
    crud_corpus = make_corpus(crud_distractors)
    crud_settings = settings.replace(corpus_dir=crud_corpus)
    sets["crud"] = (load_gold(shared_path(DEV) / "gold.jsonl"), sparse_store(crud_corpus, crud_settings), crud_settings)
    files, cmrc_items = load_cmrc()
    cmrc_corpus = write_corpus(files, OUT_ROOT / "cmrc-corpus-d0")
    cmrc_settings = settings.replace(corpus_dir=cmrc_corpus, split_articles=False)
    sets["cmrc"] = (cmrc_items[:cmrc_limit] if cmrc_limit else cmrc_items, sparse_store(cmrc_corpus, cmrc_settings), cmrc_settings)
    return sets


def write_dump(path: Path, by_id: dict[str, Example], held_out: dict[str, dict[str, bool]], shown: dict[str, Answer]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for key, verdict in held_out.items():
            item, answer = by_id[key].item, shown[key]
            row = {"key": key, "kind": item.kind, "question": item.question, "answers": list(item.answers),
                   "nearby_answers": item.extra.get("nearby_answers") or [], "shown": answer.answer, "lead": answer.lead,
                   "note": answer.note, "nearby": answer.nearby, **verdict}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.decision_train", description=__doc__.split("\n")[0])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--wrong-cost", type=float, default=1.5, help="utility of a wrong answer is minus this")
    p.add_argument("--l2", type=float, default=1.0)
    p.add_argument("--crud-distractors", type=int, default=500)
    p.add_argument("--cmrc-limit", type=int, help="only the first N CMRC questions")
    p.add_argument("--sets", default="gold,nearmiss,crud,cmrc")
    p.add_argument("--equal-sets", action="store_true", help="weigh every data set the same in fitting and threshold")
    p.add_argument("--out", type=Path, default=MODEL_DIR / "decision.json")
    p.add_argument("--report", type=Path, default=OUT_ROOT / "decision" / "cv.json")
    p.add_argument("--dump", type=Path, help="also write each held-out question's answer and verdict here (JSON lines), for error analysis")
    args = p.parse_args(argv)
    global EQUAL_SETS
    EQUAL_SETS = args.equal_sets
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    params = AnswerParams()
    settings = Settings.load()
    profile = settings.corpus_profile
    wanted = args.sets.split(",")
    examples: list[Example] = []
    t0 = time.perf_counter()
    for name, (items, store, set_settings) in datasets(settings, args.crud_distractors, args.cmrc_limit).items():
        if name not in wanted:
            continue
        ex = collect(name, items, store, set_settings, params)
        # group by evidence article where the set has no article ids (gold, near-miss, CMRC by file)
        bodies = {a.id: a.body for a in store.articles()}
        article_of = evidence_article(bodies)
        for e in ex:
            aid = e.item.extra.get("article_id") or (e.item.source if name == "cmrc" else None) or article_of(e.item)
            e.item.extra["group_article"] = f"{name}:{aid}" if aid else ""
        examples += ex
        log.info("collected %s: %d questions", name, len(ex))
    log.info("collected %d questions in %.0f s", len(examples), time.perf_counter() - t0)
    by_id = {f"{e.dataset}/{e.item.id}": e for e in examples}
    keyed = [
        GoldItem(key, e.item.question, e.item.answers, e.item.evidence, e.item.kind, e.item.source,
                 {"article_id": e.item.extra.get("group_article") or None,
                  **({"twin_id": f"{e.dataset}/{e.item.extra['twin_id']}".replace("nearmiss/", "gold/")} if e.item.extra.get("twin_id") else {})})
        for key, e in by_id.items()
    ]
    folds = kfold(keyed, k=args.folds, seed=args.seed)
    held_out: dict[str, dict[str, bool]] = {}
    shown: dict[str, Answer] = {}
    fold_models = []
    for fold in folds:
        train = [by_id[i] for i in fold.train]
        weights = fit(train, params, profile, l2=args.l2)
        threshold = choose_threshold(train, weights, params, profile, args.wrong_cost)
        nearby = choose_nearby_threshold(train, weights, threshold, params, profile, args.wrong_cost)
        model = DecisionModel(*weights, threshold, {}, nearby)
        fold_models.append({"fold": fold.index, "threshold": threshold, "nearby_threshold": nearby})
        for i in fold.test:
            shown[i] = outcome(by_id[i], model, params, profile)
            held_out[i] = judge(by_id[i], shown[i])
        log.info("fold %d: threshold %.2f, test %d", fold.index, threshold, len(fold.test))
    report: dict = {"held_out": {}, "folds": fold_models, "params": asdict(params), "command": "python -m eval.decision_train " + " ".join(argv or sys.argv[1:])}
    for name in wanted:
        rows = [j for key, j in held_out.items() if key.startswith(name + "/")]
        if rows:
            report["held_out"][name] = summary(rows)
            kinds = sorted({by_id[k].item.kind for k in held_out if k.startswith(name + "/")})
            report["held_out"][name]["by_kind"] = {
                kind: summary([j for key, j in held_out.items() if key.startswith(name + "/") and by_id[key].item.kind == kind])
                for kind in kinds
            }
    if args.dump:
        write_dump(args.dump, by_id, held_out, shown)
    weights = fit(examples, params, profile, l2=args.l2)
    threshold = choose_threshold(examples, weights, params, profile, args.wrong_cost)
    nearby = choose_nearby_threshold(examples, weights, threshold, params, profile, args.wrong_cost)
    final = DecisionModel(*weights, threshold, {"fitted": True, "sets": wanted, "questions": len(examples), "cv": report}, nearby)
    args.out.write_text(json.dumps(final.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report["held_out"], ensure_ascii=False, indent=1))
    print(f"wrote {args.out} (threshold {threshold}) and {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
