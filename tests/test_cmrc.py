"""CMRC 2018 trial as a dataset adapter: its questions become gold items of the harness loop."""

from __future__ import annotations

from eval.cmrc import CMRC, load_cmrc
from eval.metrics import GoldItem


def test_cmrc_questions_are_span_items_with_their_passage_file(shared_dir):
    files, items = load_cmrc(shared_dir / CMRC)
    assert len(files) == 256
    assert len(items) == 1000  # of 1,002: TRIAL_776_QUERY_4 is blank, TRIAL_20_QUERY_0 has no answer text
    assert all(isinstance(it, GoldItem) and it.kind == "span" and it.answerable for it in items)
    assert len({it.id for it in items}) == len(items)
    for it in items:
        assert it.source in files and it.evidence == it.answers
        assert any(a in files[it.source] for a in it.answers), it.id


def test_span_items_run_through_the_harness_loop(tmp_path, embedder):
    """Two passages as a whole-files corpus: the adapter's items get source-file ranks and the
    lead-or-quote judgement from the same run_eval as the gold set."""
    from eval.cmrc import write_corpus
    from eval.harness import EvalConfig, run_eval

    files = {
        "p1.txt": "袋鼠岛\n袋鼠岛是澳大利亚第三大岛，位于南澳大利亚州阿德莱德西南方。岛上有大量野生动物。\n",
        "p2.txt": "针鼹\n针鼹是一种卵生哺乳动物，以蚂蚁和白蚁为食，分布于澳大利亚和新几内亚。\n",
    }
    corpus = write_corpus(files, tmp_path / "corpus")
    items = [
        GoldItem("q1", "袋鼠岛是澳大利亚第几大岛？", ("第三大岛",), ("第三大岛",), "span", "p1.txt"),
        GoldItem("q2", "针鼹以什么为食？", ("蚂蚁和白蚁",), ("蚂蚁和白蚁",), "span", "p2.txt"),
    ]
    config = EvalConfig(gold=tmp_path / "cmrc.json", corpus=corpus, index=tmp_path / "index", whole_files=True, k=2)
    run = run_eval(config, embedder=embedder, items=items)
    rows = run.runs[0].rows
    assert [r["judgement"]["source_rank"] for r in rows] == [1, 1]
    m = run.runs[0].metrics
    assert m["source_hit@1"] == 1.0 and m["n"] == 2 and set(m["by_kind"]) == {"span"}
    assert all("span_in_lead_or_quote" in r["judgement"] and "evidence_shown" in r["judgement"] for r in rows)
