"""Grouped, deterministic k-fold splits (eval/folds.py) on hand-made items and on the near-miss set."""

from __future__ import annotations

import pytest

from eval.folds import evidence_article, group_of, kfold, union_items
from eval.metrics import GoldItem, load_gold
from eval.nearmiss import DEFAULT_GOLD, DEFAULT_OUT


def item(i: str, article: str | None = None, twin: str | None = None, kind: str = "number", evidence: tuple[str, ...] = ()) -> GoldItem:
    extra = {k: v for k, v in (("article_id", article), ("twin_id", twin)) if v}
    answers = () if kind == "nearmiss" else ("a",)
    return GoldItem(i, "q", answers, evidence, kind, "", extra)


ITEMS = [
    item("a1", "A"), item("a2", "A"), item("b1", "B"), item("c1", "C"), item("d1", "D"),
    item("m1", twin="b1", kind="nearmiss"), item("m2", twin="b1", kind="nearmiss"), item("m3", twin="zz", kind="nearmiss"),
    item("m4", twin="zz", kind="nearmiss"), item("u1", kind="unanswerable"),
]


def test_groups_join_articles_and_twins():
    g = group_of(ITEMS)
    assert g["a1"] == g["a2"] != g["b1"]
    assert g["m1"] == g["m2"] == g["b1"]
    assert g["m3"] == g["m4"] != g["b1"]  # a twin outside the set still ties its near misses
    assert len({g["u1"], g["c1"], g["d1"], g["a1"]}) == 4


def test_each_item_is_tested_once_and_no_group_straddles_train_and_test():
    folds = kfold(ITEMS, k=3, seed=1)
    tested = [i for f in folds for i in f.test]
    assert sorted(tested) == sorted(it.id for it in ITEMS)
    g = group_of(ITEMS)
    for f in folds:
        assert set(f.train).isdisjoint(f.test) and len(f.train) + len(f.test) == len(ITEMS)
        assert {g[i] for i in f.train}.isdisjoint({g[i] for i in f.test})


def test_folds_are_deterministic_balanced_and_seeded():
    a, b = kfold(ITEMS, k=3, seed=1), kfold(ITEMS, k=3, seed=1)
    assert a == b
    sizes = sorted(len(f.test) for f in a)
    assert sizes[-1] - sizes[0] <= 2  # the largest group has 3 items
    assert any(kfold(ITEMS, k=3, seed=s) != a for s in range(2, 8))


def test_test_ids_keep_input_order():
    for f in kfold(ITEMS, k=2, seed=0):
        order = [it.id for it in ITEMS if it.id in f.test]
        assert list(f.test) == order


def test_bad_k_and_duplicate_ids():
    with pytest.raises(ValueError, match="k must be at least 2"):
        kfold(ITEMS, k=1)
    with pytest.raises(ValueError, match="need at least 20 groups; these items form 6"):
        kfold(ITEMS, k=20)
    with pytest.raises(ValueError, match="unique"):
        group_of([item("x"), item("x")])


def test_evidence_article_groups_gold_items_by_the_article_holding_their_evidence():
    bodies = {"art1": "全区 2020年 累计发行13.92亿元。", "art2": "种下树苗180株。"}
    items = [item("g1", evidence=("累计发行１３.９２亿元",)), item("g2", evidence=("树苗180株",)), item("g3", evidence=("发行13.92亿元",))]
    g = group_of(items, evidence_article(bodies))
    assert g["g1"] == g["g3"] != g["g2"]


def test_near_miss_set_keeps_every_near_miss_with_its_twin():
    items = load_gold(DEFAULT_OUT)
    folds = kfold(items, k=5, seed=0)
    fold_of = {i: f.index for f in folds for i in f.test}
    for it in items:
        if it.kind == "nearmiss":
            assert fold_of[it.id] == fold_of[it.extra["twin_id"]]


def test_union_of_gold_and_near_misses_keeps_each_twin_once():
    gold, near = load_gold(DEFAULT_GOLD), load_gold(DEFAULT_OUT)
    both = union_items(gold, near)
    assert len(both) == len(gold) + sum(it.kind == "nearmiss" for it in near)
    assert len({it.id for it in both}) == len(both)
    with pytest.raises(ValueError, match="id 'a1' names two different questions"):
        union_items([item("a1")], [GoldItem("a1", "another", ("b",), (), "number")])
