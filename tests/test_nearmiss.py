"""The near-miss generator: its absence check on hand-made sentences, the one-constraint swaps,
determinism, and the committed eval/nearmiss.jsonl against the bundled pages."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from eval.metrics import GoldItem, load_gold
from eval.nearmiss import (
    DEFAULT_CORPUS,
    DEFAULT_GOLD,
    DEFAULT_OUT,
    Lexicon,
    Sentence,
    answer_absent,
    anchors_of,
    candidates,
    generate,
    read_sentences,
    rephrase,
    variants,
)

PAGE = [
    Sentence("2020年,经开区地区生产总值1202亿元,同比增长13.5%;", "", "p4.txt", 2022),
    Sentence("进出口总额220亿元,同比增长91%;", "2020年,经开区地区生产总值1202亿元,同比增长13.5%;", "p4.txt", 2022),
    Sentence("经开区建设局分配安置房3636套。", "", "p1.txt", 2023),
    Sentence("第三巡察组巡察开放办工作动员会召开。", "", "p2.txt", 2023),
]


def test_absent_when_no_sentence_pairs_the_new_year_with_the_indicator():
    assert answer_absent("2021年", ["地区生产总值"], PAGE, "year")
    assert not answer_absent("2020年", ["地区生产总值"], PAGE, "year")


def test_year_named_sentences_before_counts_as_context():
    # the 进出口 sentence names no year, the one before it does: 2020 is not absent for it
    assert not answer_absent("2020年", ["进出口总额"], PAGE, "year")
    assert answer_absent("2019年", ["进出口总额"], PAGE, "year")


def test_page_year_counts_for_a_sentence_without_a_year():
    assert not answer_absent("2023年", ["安置房"], PAGE, "year")
    assert answer_absent("2021年", ["安置房"], PAGE, "year")


def test_aliases_are_checked_both_ways():
    assert not answer_absent("2020年", ["GDP"], PAGE, "year")  # GDP = 地区生产总值
    assert "党政办公室" in variants("党政办") and "明湖" in variants("明湖办事处")


def test_office_anywhere_on_the_page_blocks_a_sentence_holding_most_anchors():
    # 开放办 and 第三巡察组 share page p2: asking the 巡察组 of 开放办 is answered there
    assert not answer_absent("开放办", ["第三", "巡察组", "动员会"], PAGE, "office")
    # 建设局 is on another page than the 巡察 sentence
    assert answer_absent("建设局", ["第三", "巡察组", "动员会"], PAGE, "office")


def test_no_anchor_means_not_provably_absent():
    assert not answer_absent("2021年", [], PAGE, "year")


@pytest.mark.slow  # jieba's dictionary loads in 1-40 s, by machine load
def test_anchors_drop_the_swapped_value_years_and_generic_words():
    got = anchors_of("2020年经开区进出口总额是多少", ["进出口总额"], generic={"经开区"})
    assert "进出口" not in got and "总额" not in got and not any(ch.isdigit() for w in got for ch in w)


@pytest.mark.slow  # jieba's dictionary loads in 1-40 s, by machine load
def test_candidates_swap_exactly_one_constraint():
    item = GoldItem("g1", "2020年经开区进出口总额是多少", ("220亿元",), ("进出口总额220亿元",), "number", "p4.txt")
    lex = Lexicon(years=["2020", "2021"], indicators={"进出口总额": "总额", "税收收入": "收入"})
    got = {(c.swap, c.original, c.asked, c.question) for c in candidates(item, lex, generic=set())}
    assert got == {
        ("year", "2020年", "2021年", "2021年经开区进出口总额是多少"),
        ("indicator", "进出口总额", "税收收入", "2020年经开区税收收入是多少"),
    }


@pytest.mark.slow  # jieba's dictionary loads in 1-40 s, by machine load
def test_office_swaps_skip_aliases_and_person_titles():
    lex = Lexicon(offices=["宣传部", "文明办", "建设局", "统计局", "党建办"])
    both = GoldItem("g", "宣传部(文明办)推出了多少篇稿件", ("9篇",), ("稿件9篇",), "number")
    assert candidates(both, lex, set()) == []  # swapping one name would leave the other
    titled = GoldItem("g", "区党建办主任程晓华去了哪两个社区", ("甲", "乙"), ("甲、乙",), "list")
    assert [c for c in candidates(titled, lex, set()) if c.swap == "office"] == []
    plain = GoldItem("g", "建设局分配了多少套安置房", ("3636套",), ("安置房3636套",), "number")
    assert {c.asked for c in candidates(plain, lex, set())} == {"统计局"}  # 局 for 局 only


def test_rephrase_never_touches_the_swapped_value():
    import random

    rng = random.Random(0)
    for _ in range(50):
        q = rephrase("2021年经开区GDP是多少？", rng, keep="2021年")
        assert "2021年" in q and "GDP" in q


@pytest.mark.slow  # jieba's dictionary loads in 1-40 s, by machine load
def test_generate_is_deterministic_and_writes_twins_after_near_misses():
    gold = [GoldItem("g1", "2020年经开区进出口总额是多少", ("220亿元",), ("进出口总额220亿元",), "number", "p4.txt")]
    pages = [
        Sentence("2020年,经开区进出口总额220亿元。", "", "p4.txt", 2020),
        Sentence("2021年召开了党建会议。", "", "p1.txt", 2021),
    ]
    a, rep = generate(gold, pages, seed=3)
    b, _ = generate(gold, pages, seed=3)
    assert a == b
    near = [r for r in a if r["kind"] == "nearmiss"]
    assert near and all(r["twin_id"] == "g1" and r["nearby_answers"] == ["220亿元"] for r in near)
    assert {r["asked"] for r in near} == {"2021年"}
    assert a[-1] == {"id": "g1", "question": gold[0].question, "answers": ["220亿元"], "evidence": ["进出口总额220亿元"],
                     "kind": "number", "source": "p4.txt", "role": "twin"}
    assert rep.kept == len(near)


# -- the committed set -----------------------------------------------------------------------

COMMITTED = [json.loads(line) for line in DEFAULT_OUT.read_text(encoding="utf-8").splitlines() if line.strip()]
NEAR = [r for r in COMMITTED if r["kind"] == "nearmiss"]


def test_committed_set_size_and_fields():
    assert len(NEAR) >= 100
    fields = {"id", "question", "kind", "swap", "asked", "original", "nearby_answers", "twin_id", "answers", "evidence"}
    assert all(fields <= set(r) for r in NEAR)
    assert all(r["answers"] == [] and r["nearby_answers"] for r in NEAR)
    assert len(Counter(r["swap"] for r in NEAR)) >= 3
    assert len({r["question"] for r in NEAR}) == len(NEAR)


def test_committed_set_loads_as_a_gold_file_with_every_twin():
    items = {it.id: it for it in load_gold(DEFAULT_OUT)}
    gold = {g.id: g for g in load_gold(DEFAULT_GOLD)}
    for r in NEAR:
        twin = items[r["twin_id"]]
        assert twin.answerable and twin == gold[r["twin_id"]]
        assert not items[r["id"]].answerable
        assert r["original"] != r["asked"]


@pytest.fixture(scope="module")
def pages():
    return read_sentences(DEFAULT_CORPUS)


def test_committed_near_misses_pass_the_absence_check_on_the_bundled_pages(pages):
    for r in NEAR:
        assert answer_absent(r["asked"], r["anchors"], pages, r["swap"]), r["id"]


def test_committed_near_misses_ask_a_value_the_pages_print(pages):
    text = "".join(s.text for s in pages)
    for r in NEAR:
        assert any(v in text for v in variants(r["asked"])), r["id"]


@pytest.mark.slow  # mines the pages with jieba: 5-60 s by machine load
def test_committed_file_is_what_the_generator_writes(tmp_path):
    from eval.nearmiss import main

    assert main(["--out", str(tmp_path / "nm.jsonl")]) == 0
    assert (tmp_path / "nm.jsonl").read_text(encoding="utf-8") == DEFAULT_OUT.read_text(encoding="utf-8")
