"""Deterministic grouped k-fold splits for fitting and reporting the calibrated decision model.

Issue 9 asks for every figure of a fitted model on items it was not fitted to. Two kinds of leak
make a plain random split optimistic here:

- a near miss and its answerable twin ask about the same sentence; with one in train and the
  other in test, the model has seen the test item's evidence with the opposite label;
- questions on one article share its wording, so the model can learn the article instead of the
  decision.

So items are first joined into groups (union-find over "same article" and "near miss ↔ twin"),
and whole groups are dealt to folds: largest first, each to the fold with the fewest items so far,
ties broken by a seeded shuffle. The same items and seed give the same folds on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rag.verify import normalize_for_match

from .metrics import GoldItem


@dataclass(frozen=True)
class Fold:
    index: int
    train: tuple[str, ...]  # item ids
    test: tuple[str, ...]


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def evidence_article(bodies: Mapping[str, str]) -> Callable[[GoldItem], str | None]:
    """An `article_of` for sets without article ids (the gold set): the article whose body holds
    one of the item's evidence spans (NFKC, whitespace ignored). `bodies`: article id -> body,
    e.g. `{a.id: a.body for a in store.articles.values()}`."""
    normed = [(aid, normalize_for_match(body)) for aid, body in bodies.items()]

    def article_of(item: GoldItem) -> str | None:
        for span in item.evidence:
            s = normalize_for_match(span)
            for aid, body in normed:
                if s and s in body:
                    return aid
        return None

    return article_of


def default_article(item: GoldItem) -> str | None:
    """The item's own article id (CRUD dev gives one), else None."""
    aid = item.extra.get("article_id")
    return str(aid) if aid else None


def group_of(items: Sequence[GoldItem], article_of: Callable[[GoldItem], str | None] | None = None) -> dict[str, str]:
    """item id -> group id. Items join when they share an article (`article_of`, default: the
    item's `article_id`) or one is the other's near-miss twin (`twin_id`). An item with neither
    (an off-topic unanswerable question) is a group of its own."""
    article_of = article_of or default_article
    ids = {it.id for it in items}
    if len(ids) != len(items):
        raise ValueError("item ids must be unique")
    uf = _Union()
    for it in items:
        uf.find(it.id)
        aid = article_of(it)
        if aid:
            uf.join(it.id, f"article:{aid}")
        twin = it.extra.get("twin_id")
        if twin:
            # a twin outside the set still ties its near misses together
            uf.join(it.id, twin if twin in ids else f"twin:{twin}")
    return {it.id: uf.find(it.id) for it in items}


def union_items(*sets: Sequence[GoldItem]) -> list[GoldItem]:
    """Several question sets as one, each id once: eval/nearmiss.jsonl repeats its twins from
    eval/gold.jsonl under the same ids. The same id with another question or answers is an error."""
    seen: dict[str, GoldItem] = {}
    out: list[GoldItem] = []
    for items in sets:
        for it in items:
            first = seen.get(it.id)
            if first is None:
                seen[it.id] = it
                out.append(it)
            elif first != it:
                raise ValueError(f"id {it.id!r} names two different questions: {first.question!r} and {it.question!r}")
    return out


def kfold(
    items: Sequence[GoldItem],
    k: int = 5,
    seed: int = 0,
    article_of: Callable[[GoldItem], str | None] | None = None,
) -> list[Fold]:
    """k folds; each item is in exactly one test set, and no group is split across train/test."""
    if k < 2:
        raise ValueError("k must be at least 2")
    groups: dict[str, list[str]] = {}
    for item_id, g in group_of(items, article_of).items():
        groups.setdefault(g, []).append(item_id)
    if len(groups) < k:
        raise ValueError(f"k={k} folds need at least {k} groups; these items form {len(groups)}")
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda g: -len(groups[g]))  # stable: equal sizes keep the seeded order
    tests: list[list[str]] = [[] for _ in range(k)]
    for g in order:
        smallest = min(range(k), key=lambda f: (len(tests[f]), f))
        tests[smallest] += groups[g]
    position = {it.id: n for n, it in enumerate(items)}
    folds = []
    for f, test in enumerate(tests):
        test_set = set(test)
        folds.append(
            Fold(
                f,
                train=tuple(it.id for it in items if it.id not in test_set),
                test=tuple(sorted(test, key=position.__getitem__)),
            )
        )
    return folds
