"""Issue 9's answer metrics on hand-made answers: short leads, near misses and their twins, false
abstention, gold span in lead-or-quote, evidence in what a model is shown, source-file hits, the
per-kind table, re-judging old results files and the before/after comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.__main__ import main as eval_main
from eval.harness import EvalError, compare_runs, rejudge, shared_path
from eval.metrics import GoldItem, judge, judge_answer, summarize, answer_metrics
from eval.report import answers_by_kind, compare_markdown

NUM = GoldItem("n1", "2020年专项债发行多少", ("13.92亿元",), ("累计发行5个项目13.92亿元",), "number", "p3.txt")
LST = GoldItem("l1", "去了哪些办事处", ("明湖", "潮河"), ("到明湖、潮河、前程办事处",), "list", "p2.txt")
NEAR = GoldItem("m1", "2021年专项债发行多少", (), (), "nearmiss", "p3.txt",
                {"swap": "year", "twin_id": "n1", "nearby_answers": ["13.92亿元", "13.92亿"]})
UNA = GoldItem("u1", "电话多少", (), (), "unanswerable")


def answer(text: str, abstained: bool = False, lead: str | None = None, quotes=(), contexts=(), ms: float = 5.0) -> dict:
    a = {
        "question": "q", "answer": text, "abstained": abstained, "mode": "extractive",
        "citations": [{"quote": q, "title": "", "date": ""} for q in quotes],
        "contexts": [{"text": t} for t in contexts], "timings_ms": {"total_ms": ms},
    }
    if lead is not None:
        a["lead"] = lead
    return a


def test_lead_fields_tolerate_answers_without_a_lead():
    j = judge_answer(NUM, answer("全区累计发行13.92亿元[1]", quotes=["累计发行5个项目13.92亿元"]))
    assert (j["lead_chars"], j["lead_short"]) == (0, False)
    j = judge_answer(NUM, answer("13.92亿元[1]", lead="13.92 亿元", quotes=["累计发行5个项目13.92亿元"]))
    assert (j["lead_chars"], j["lead_short"]) == (7, True)  # width and spaces ignored
    j = judge_answer(NUM, answer("x", lead="甲" * 31))
    assert not j["lead_short"]


def test_span_in_lead_or_quote_ignores_the_template_text_and_abstentions():
    assert judge_answer(NUM, answer("发行了", lead="13.92亿元"))["span_in_lead_or_quote"]
    assert judge_answer(NUM, answer("发行了", quotes=["共13.92亿元"]))["span_in_lead_or_quote"]
    assert not judge_answer(NUM, answer("13.92亿元", quotes=["无关"]))["span_in_lead_or_quote"]
    assert not judge_answer(NUM, answer("资料中没有", abstained=True, quotes=["13.92亿元"]))["span_in_lead_or_quote"]
    assert not judge_answer(LST, answer("x", lead="明湖"))["span_in_lead_or_quote"]  # a list needs all items
    assert judge_answer(LST, answer("x", lead="明湖、潮河"))["span_in_lead_or_quote"]


def test_evidence_shown_reads_quotes_paragraph_context_and_contexts():
    assert judge_answer(NUM, answer("x", contexts=["……累计发行5个项目13.92亿元……"]))["evidence_shown"]
    cited = answer("x")
    cited["citations"] = [{"quote": "短", "context": "全区累计发行5个项目13.92亿元。"}]
    assert judge_answer(NUM, cited)["evidence_shown"]
    assert not judge_answer(NUM, answer("x", quotes=["13.92亿元"], contexts=["无关"]))["evidence_shown"]
    assert "evidence_shown" not in judge_answer(UNA, answer("x", abstained=True))


def test_nearby_named_needs_an_abstention_that_quotes_the_twin_fact():
    assert judge_answer(NEAR, answer("资料中没有2021年的数据；最接近的是2020年：发行13.92亿元[1]", abstained=True))["nearby_named"]
    assert not judge_answer(NEAR, answer("资料中没有找到。", abstained=True))["nearby_named"]
    assert not judge_answer(NEAR, answer("13.92亿元[1]"))["nearby_named"]  # answered: wrong, names nothing
    assert judge_answer(NEAR, answer("资料中没有", abstained=True))["correct"]
    assert "nearby_named" not in judge_answer(NUM, answer("13.92亿元"))


def test_source_rank_is_the_rank_of_the_question_file():
    j = judge(NUM, answer("x"), ["a", "b"], ["a", "b"], ["p1.txt", "p3.txt", "p3.txt"])
    assert j["source_rank"] == 2
    assert "source_rank" not in judge(NUM, answer("x"), [], [])


def _summary():
    twin = GoldItem("n1", NUM.question, NUM.answers, NUM.evidence, "number", "p3.txt", {"role": "twin"})
    items = [twin, LST, NEAR, UNA,
             GoldItem("m2", "q", (), (), "nearmiss", "", {"swap": "office", "twin_id": "l1", "nearby_answers": ["明湖"]})]
    answers = [
        answer("13.92亿元[1]", lead="13.92亿元", quotes=["累计发行5个项目13.92亿元"]),
        answer("资料中没有", abstained=True),
        answer("没有2021年的；最接近：13.92亿元", abstained=True),
        answer("是5次[1]", lead="5次", quotes=["会议5次"]),
        answer("明湖、潮河[1]", lead="明湖、潮河" + "甲" * 30, quotes=["到明湖、潮河"]),
    ]
    judged = [judge(it, a, [], []) for it, a in zip(items, answers)]
    return items, judged


def test_answer_metrics_exact_values():
    items, judged = _summary()
    m = answer_metrics(items, judged)
    assert m["false_abstention_rate"] == 0.5  # the list question abstained, the number did not
    assert m["lead_short_share"] == 1.0 and m["lead_short_share_number_date_entity"] == 1.0
    assert m["lead_median_chars"] == 7
    assert m["span_in_lead_or_quote"] == 0.5
    near = m["nearmiss"]
    assert (near["n"], near["abstained"], near["abstained_naming_nearby"]) == (2, 0.5, 0.5)
    assert (near["n_twins"], near["twins_answered"], near["twins_correct"]) == (1, 1.0, 1.0)
    assert near["by_swap"]["year"] == {"n": 1, "correct": 1, "accuracy": 1.0, "abstained": 1.0, "lead_short": None,
                                       "lead_median_chars": None, "answer_median_chars": None, "nearby_named": 1.0}
    assert m["answer_median_chars"] == 7  # the one answered answerable: "13.92亿元[1]" without its marker
    assert m["by_kind"]["unanswerable"]["lead_short"] == 1.0  # answered with a short lead: wrongly
    assert list(m["by_kind"]) == ["number", "list", "unanswerable", "nearmiss"]


def test_summarize_counts_near_misses_as_abstention_positives():
    items, judged = _summary()
    m = summarize(items, judged)
    assert m["n_unanswerable"] == 3 and m["abstention"]["tp"] == 1 and m["abstention"]["fn"] == 2
    table = answers_by_kind(m)
    assert table[0].startswith("| kind | n | accuracy |")
    assert any(line.startswith("| nearmiss: year | 1 | 1.000 (1) | 1.000 |") for line in table)


def _results(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    d = tmp_path / name
    d.mkdir()
    p = d / "results.jsonl"
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return p


def _row(item: GoldItem, a: dict) -> dict:
    return {"id": item.id, "kind": item.kind, **a, "answer_kind": "", "gold_answers": list(item.answers),
            "judgement": {"correct": False, "evidence_rank": 1, "article_rank": 1}}


def test_rejudge_recomputes_answer_judgements_and_keeps_retrieval_ones():
    row = _row(NUM, answer("13.92亿元[1]", lead="13.92亿元", quotes=["13.92亿元"]))
    items, judged = rejudge([row], {"n1": NUM})
    assert items == [NUM] and judged[0]["correct"] and judged[0]["evidence_rank"] == 1 and judged[0]["lead_short"]
    items, judged = rejudge([row], {})  # no gold file: judged from the row's own kind and answers
    assert items[0].answers == ("13.92亿元",) and judged[0]["correct"]


def test_compare_runs_per_kind(tmp_path, capsys):
    before = _results(tmp_path, "before", [_row(NUM, answer("全区累计发行13.92亿元。")), _row(NEAR, answer("13.92亿元"))])
    after = _results(tmp_path, "after", [_row(NUM, answer("13.92亿元", lead="13.92亿元")), _row(NEAR, answer("没有；最接近：13.92亿元", abstained=True))])
    gold = tmp_path / "g.jsonl"
    gold.write_text("".join(json.dumps({"id": i.id, "question": i.question, "answers": list(i.answers), "evidence": list(i.evidence),
                                        "kind": i.kind, "source": i.source, **i.extra}, ensure_ascii=False) + "\n" for i in (NUM, NEAR)),
                    encoding="utf-8")
    a, b = compare_runs(before, after, gold=gold)
    assert (a["accuracy"], b["accuracy"]) == (0.5, 1.0)
    assert (a["nearmiss"]["abstained_naming_nearby"], b["nearmiss"]["abstained_naming_nearby"]) == (0.0, 1.0)
    md = compare_markdown(a, b)
    assert "| answers whose lead is a short span | 0.000 | 1.000 |" in md
    assert "| nearmiss | 1 | 0.000 | 1.000 | 0.000 | 1.000 |" in md
    assert eval_main(["--compare-runs", str(before), str(after), "--gold", str(gold), "--out", str(tmp_path / "cmp")]) == 0
    assert "| near misses abstained | 0.000 | 1.000 |" in capsys.readouterr().out
    assert (tmp_path / "cmp" / "compare.md").is_file()


def test_compare_runs_errors(tmp_path, capsys):
    with pytest.raises(EvalError, match="results file not found"):
        compare_runs(tmp_path / "a.jsonl", tmp_path / "b.jsonl")
    a = _results(tmp_path, "a", [_row(NUM, answer("x"))])
    b = _results(tmp_path, "b", [_row(LST, answer("x"))])
    with pytest.raises(EvalError, match="share no question ids"):
        compare_runs(a, b)
    assert eval_main(["--compare-runs", str(a), str(tmp_path / "none.jsonl")]) == 2
    assert "results file not found" in capsys.readouterr().err


def test_missing_shared_dataset_is_an_error_naming_the_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_SHARED_DIR", str(tmp_path))
    with pytest.raises(EvalError, match=r"shared dataset not found: .*cmrc.*RAG_SHARED_DIR"):
        shared_path("datasets/cmrc2018_trial.json")


def test_compare_runs_of_a_dataset_adapter_judges_from_the_rows(tmp_path):
    """CMRC's report.json names its SQuAD JSON, which is no gold file: the rows' own answers count."""
    span = GoldItem("c1", "问", ("踢爆",), ("踢爆",), "span", "TRIAL_1.txt")
    a = _results(tmp_path, "a", [_row(span, answer("踢爆[1]", lead="踢爆", quotes=["生命数耗完即算踢爆"]))])
    squad = tmp_path / "cmrc.json"
    squad.write_text('{"data": []}', encoding="utf-8")
    (a.parent / "report.json").write_text(json.dumps({"gold": str(squad)}), encoding="utf-8")
    m, _ = compare_runs(a, a)
    assert m["accuracy"] == 1.0 and m["span_in_lead_or_quote"] == 1.0 and m["by_kind"]["span"]["n"] == 1
