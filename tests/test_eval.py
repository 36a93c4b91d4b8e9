"""The gold set itself, the metric functions on hand-made cases, the harness end to end on a
real index, and the CI gate (the full gold set against eval/thresholds.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.__main__ import main as eval_main
from eval.harness import (
    DEFAULT_GOLD,
    THRESHOLDS,
    EvalConfig,
    EvalError,
    gate,
    load_thresholds,
    run_eval,
    settings_for,
    write_results,
)
from eval.metrics import (
    GoldError,
    GoldItem,
    abstention_scores,
    evidence_rank,
    hit_at,
    is_correct,
    judge,
    load_gold,
    mrr,
    number_support,
    percentile,
    quote_supports,
    summarize,
)
from eval.report import write_report
from rag.settings import BUNDLED_CORPUS
from rag.store import LocalStore
from rag.verify import normalize_for_match as norm

CORPUS = BUNDLED_CORPUS
GOLD = load_gold(DEFAULT_GOLD)


# -- fixtures: `embedder` and `seed_index` (the session's index of the bundled pages) are in conftest


# -- the gold set ----------------------------------------------------------------------------


def test_gold_counts_and_unique_ids():
    assert len(GOLD) == 155
    assert len({g.id for g in GOLD}) == 155
    assert sum(not g.answerable for g in GOLD) == 18


@pytest.mark.parametrize("item", [g for g in GOLD if g.answerable], ids=lambda g: g.id)
def test_gold_evidence_in_its_page_and_answers_in_evidence(item: GoldItem):
    assert item.evidence, "answerable questions carry evidence"
    page = norm((CORPUS / item.source).read_text(encoding="utf-8"))
    for span in item.evidence:
        assert norm(span) in page, span
    for answer in item.answers:
        assert any(norm(answer) in norm(e) for e in item.evidence), answer
    if item.kind == "list":
        assert 2 <= len(item.answers) <= 4


def test_gold_evidence_in_exactly_one_indexed_article_of_its_page(seed_index):
    """Cleaning and segmentation keep every span whole: else hit@k would measure the cleaner."""
    store = LocalStore.load(seed_index)
    bodies = [(a.source, norm(a.body)) for a in store.articles()]
    for item in GOLD:
        for span in item.evidence:
            homes = [src for src, body in bodies if norm(span) in body]
            assert homes == [item.source], (item.id, span, homes)


def test_gold_unanswerable_have_no_answers_nor_evidence():
    for g in GOLD:
        if not g.answerable:
            assert g.answers == () and g.evidence == ()


def test_crud_dev_gold_loads(shared_dir):
    crud = load_gold(shared_dir / "datasets" / "crud_qa_dev" / "gold.jsonl")
    assert len(crud) == 330
    assert sum(not g.answerable for g in crud) == 30


# -- gold file validation ----------------------------------------------------------------------

GOOD = {"id": "q1", "question": "多少？", "answers": ["5次"], "evidence": ["共5次会议"], "kind": "number"}


def _write(tmp_path: Path, rows: list) -> Path:
    p = tmp_path / "g.jsonl"
    p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "bad, message",
    [
        ("{not json", r"g\.jsonl:2: not valid JSON"),
        ({**GOOD, "id": "q2", "kind": "person"}, r":2: kind 'person' is not one of"),
        ({k: v for k, v in GOOD.items() if k != "evidence"} | {"id": "q2"}, r":2: missing field\(s\) evidence"),
        ({**GOOD}, r":2: duplicate id 'q1' \(first on line 1\)"),
        ({**GOOD, "id": "q2", "kind": "unanswerable"}, r":2: an unanswerable question must have answers \[\]"),
        ({**GOOD, "id": "q2", "answers": []}, r":2: an answerable question \(kind number\) needs at least one answer"),
        ({**GOOD, "id": "q2", "answers": "5次"}, r":2: 'answers' must be a list of strings"),
        ({**GOOD, "id": " "}, r":2: 'id' must be a non-empty string"),
        ("[1, 2]", r":2: expected a JSON object, got list"),
    ],
)
def test_load_gold_names_the_bad_line(tmp_path, bad, message):
    with pytest.raises(GoldError, match=message):
        load_gold(_write(tmp_path, [GOOD, bad]))


def test_load_gold_skips_blank_lines_and_keeps_extra_fields(tmp_path):
    items = load_gold(_write(tmp_path, [GOOD, "", {**GOOD, "id": "q2", "nearby": "2020"}]))
    assert [i.id for i in items] == ["q1", "q2"]
    assert items[1].extra == {"nearby": "2020"}


def test_load_gold_missing_and_empty_file(tmp_path):
    with pytest.raises(GoldError, match="gold file not found"):
        load_gold(tmp_path / "none.jsonl")
    (tmp_path / "e.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(GoldError, match="no questions"):
        load_gold(tmp_path / "e.jsonl")


# -- metric functions on hand-made cases -------------------------------------------------------


def test_evidence_rank_normalises_width_and_whitespace():
    texts = ["无关内容", "共征集意见建议 ６７３ 条", "意见建议673条"]
    assert evidence_rank(["意见建议673条"], texts) == 2
    assert evidence_rank(["不存在", "无关"], texts) == 1
    assert evidence_rank(["不存在"], texts) is None
    assert evidence_rank([], texts) is None


def test_hit_at_and_mrr():
    ranks = [1, 3, None, 10]
    assert hit_at(ranks, 1) == 0.25
    assert hit_at(ranks, 3) == 0.5
    assert hit_at(ranks, 10) == 0.75
    assert mrr(ranks) == pytest.approx((1 + 1 / 3 + 0 + 0.1) / 4)
    assert hit_at([], 5) == 0.0 and mrr([]) == 0.0


def test_percentile_interpolates_like_numpy():
    assert percentile([10, 20, 30, 40], 50) == 25.0
    assert percentile([10, 20, 30, 40], 95) == pytest.approx(38.5)
    assert percentile([7], 95) == 7
    assert percentile([], 50) == 0.0


def test_is_correct_by_kind():
    num = GoldItem("a", "q", ("13.92亿元", "13.92亿"), ("e",), "number")
    lst = GoldItem("b", "q", ("管城", "中牟"), ("e",), "list")
    una = GoldItem("c", "q", (), (), "unanswerable")
    assert is_correct(num, "发行１３.９２亿 元[1]", abstained=False)  # width and spaces ignored
    assert not is_correct(num, "资料中没有…最接近的资料：13.92亿元[1]", abstained=True)
    assert not is_correct(lst, "管城区[1]", abstained=False)
    assert is_correct(lst, "管城、中牟[1]", abstained=False)
    assert is_correct(una, "资料中没有找到", abstained=True)
    assert not is_correct(una, "是5次[1]", abstained=False)


def test_quote_supports():
    ev = ["会前共牵头征集对区党工委的意见建议673条"]
    assert quote_supports("会前共牵头征集对区党工委的意见建议673条，其中对班子成员113条", ev)  # contains
    assert quote_supports("意见建议673条", ev)  # inside the span
    assert quote_supports("征集对区党工委的意见建议673条。另有", ev)  # cuts it, shares more than half
    assert not quote_supports("对区党工委班子成员意见113条", ev)  # same article, other fact
    assert not quote_supports("", ev)


def test_number_support_uses_quotes_titles_dates_and_question():
    answer = {
        "question": "2020年发行多少",
        "answer": "发行13.92亿元，共5批，2020年[1]",
        "citations": [{"quote": "发行专项债13.92亿元", "title": "5批项目", "date": "2020-06-03"}],
    }
    assert number_support(answer) == []
    answer["answer"] = "发行13.9亿元[1]"
    assert number_support(answer) == ["13.9"]


def test_abstention_scores():
    rows = [(True, True), (True, False), (False, True), (False, False), (True, True)]
    assert abstention_scores(rows) == {"precision": 2 / 3, "recall": 2 / 3, "tp": 2, "fp": 1, "fn": 1}
    assert abstention_scores([(False, False)])["precision"] is None


def test_summarize_exact_values():
    items = [
        GoldItem("1", "q1", ("5次",), ("共5次",), "number"),
        GoldItem("2", "q2", ("甲", "乙"), ("甲、乙两地",), "list"),
        GoldItem("3", "q3", (), (), "unanswerable"),
        GoldItem("4", "q4", (), (), "unanswerable"),
    ]

    def answer(text, abstained, quotes, ms):
        return {"question": "q", "answer": text, "abstained": abstained, "mode": "extractive",
                "citations": [{"quote": q, "title": "", "date": ""} for q in quotes], "timings_ms": {"total_ms": ms}}

    judged = [
        judge(items[0], answer("共5次[1]", False, ["共5次"], 10), ["x", "共5次"], ["x", "共5次"]),
        judge(items[1], answer("甲[1]", False, ["甲、乙两地", "别处7个"], 20), ["甲、乙两地"], ["甲、乙两地"]),
        judge(items[2], answer("资料中没有", True, [], 30), [], []),
        judge(items[3], answer("是9个[1]", False, ["8个"], 40), [], []),
    ]
    m = summarize(items, judged)
    assert (m["n"], m["n_answerable"], m["n_unanswerable"], m["n_retrieval"]) == (4, 2, 2, 2)
    assert (m["hit@1"], m["hit@3"], m["mrr"]) == (0.5, 1.0, 0.75)
    assert m["accuracy"] == 0.5 and m["accuracy_answerable"] == 0.5
    assert m["accuracy_by_kind"] == {
        "number": {"n": 1, "correct": 1, "accuracy": 1.0},
        "list": {"n": 1, "correct": 0, "accuracy": 0.0},
        "unanswerable": {"n": 2, "correct": 1, "accuracy": 0.5},
    }
    assert (m["citation_precision"], m["n_citations"]) == (2 / 3, 3)
    assert m["abstention"] == {"precision": 1.0, "recall": 0.5, "tp": 1, "fp": 0, "fn": 1}
    assert m["unsupported_number_rate"] == 1 / 3  # "9" of the answered unanswerable one
    assert m["latency_ms"]["p50"] == 25.0
    assert m["answer_modes"] == {"extractive": 4} and m["fallback_rate"] == 0.0


def test_gate_reports_each_metric_below_its_floor():
    metrics = {"accuracy": 0.5, "hit@5": 0.9, "abstention": {"recall": 0.2}}
    assert gate(metrics, {"accuracy": 0.5, "hit@5": 0.8}) == []
    assert gate(metrics, {"accuracy": 0.6, "abstention.recall": 0.3, "mrr": 0.1}) == [
        "accuracy: 0.500 is below the floor 0.600",
        "abstention.recall: 0.200 is below the floor 0.300",
        "mrr: not measured (floor 0.100)",
    ]


# -- the harness end to end ------------------------------------------------------------------


def test_harness_on_ten_questions(seed_index, embedder, tmp_path):
    run = run_eval(EvalConfig(index=seed_index, limit=10, modes=("bm25", "score")), embedder=embedder)
    assert [r.name for r in run.runs] == ["sparse", "score"]  # the old name bm25 is accepted
    assert run.answer_k == 5 and run.build is not None and not run.build.changed  # reused, not rebuilt
    files = write_results(run, tmp_path) + write_report(run, tmp_path, "python -m eval --limit 10")
    assert sorted(p.name for p in files) == sorted(
        ["results-sparse.jsonl", "results-score.jsonl", "report.json", "report.md", "report.png"]
    )
    rows = [json.loads(line) for line in (tmp_path / "results-score.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [g.id for g in GOLD[:10]]
    first = rows[0]
    assert first["kind"] == "number" and first["question"] == GOLD[0].question
    assert {"answer", "abstained", "citations", "contexts", "timings_ms", "answer_kind", "judgement"} <= set(first)
    assert len(first["contexts"]) == 5
    assert set(first["judgement"]) >= {"correct", "evidence_rank", "article_rank", "citations_supported", "unsupported_numbers"}
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["n_questions"] == 10 and report["answer_k"] == 5 and report["retrieval_depth"] == 10
    hybrid = report["modes"]["score"]
    assert hybrid["n"] == 10 and hybrid["n_unanswerable"] == 0
    assert hybrid["accuracy"] == sum(r["judgement"]["correct"] for r in rows) / 10
    # the first ten are page 000's 党政办 questions; their article is found at once
    assert hybrid["article_hit@5"] == 1.0
    ranks = [r["judgement"]["evidence_rank"] for r in rows]
    assert hybrid["hit@5"] == sum(1 for x in ranks if x is not None and x <= 5) / 10
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| metric | sparse | score |" in md and "| evidence hit@5 (passage) |" in md
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_gold_line_exits_2(tmp_path, capsys):
    bad = _write(tmp_path, [GOOD, "{oops"])
    assert eval_main(["--gold", str(bad), "--quiet"]) == 2
    assert "g.jsonl:2: not valid JSON" in capsys.readouterr().err


def test_cli_rejects_unknown_mode(capsys):
    assert eval_main(["--compare", "bm25,splade", "--quiet"]) == 2
    assert "unknown retrieval mode(s) splade" in capsys.readouterr().err


def test_llm_flag_needs_a_configured_llm(monkeypatch):
    monkeypatch.delenv("RAG_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("RAG_LLM_MODEL", raising=False)
    with pytest.raises(EvalError, match="--llm needs a configured LLM"):
        settings_for(EvalConfig(llm=True))


def test_without_llm_flag_the_generator_is_off(monkeypatch):
    monkeypatch.setenv("RAG_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("RAG_LLM_MODEL", "m")
    assert not settings_for(EvalConfig()).llm_enabled


# -- the CI gate -------------------------------------------------------------------------------


def test_gate_full_gold_set(gold_run):
    """Fails when answer accuracy, hit@5 or abstention recall fall below eval/thresholds.json."""
    metrics = gold_run.runs[0].metrics
    assert metrics["n"] == 155
    assert gate(metrics, load_thresholds(THRESHOLDS)) == []


def test_thresholds_file_names_its_floors():
    data = json.loads(THRESHOLDS.read_text(encoding="utf-8"))
    assert set(data["min"]) == {"accuracy", "hit@5", "abstention.recall"}
    assert "measured" in data
