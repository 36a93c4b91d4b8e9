"""The store conformance suite on the local backend, and the Filter/date translation helpers."""

from __future__ import annotations

import pytest

from rag.store import Filter, date_key
from rag.store.milvus import filter_expr
from rag.store.testing import StoreConformance


class TestLocalStore(StoreConformance):
    backend = "local"


@pytest.mark.parametrize(
    "text,key",
    [("2020-05-28", 20200528), ("2020-05", 20200500), ("2020", 20200000), ("2020年5月8日", 20200508), ("", 0), ("无日期", 0)],
)
def test_date_key(text, key):
    assert date_key(text) == key


def test_filter_keeps_old_keywords_and_coerces_sources():
    f = Filter(year_from=2020, year_to=2021, sources={"a.txt"})
    assert f.sources == frozenset({"a.txt"}) and f.active and not Filter().active


@pytest.mark.parametrize(
    "where,expr",
    [
        (Filter(), ""),
        (Filter(year_from=2020, year_to=2020), "year > 0 and year >= 2020 and year <= 2020"),
        (Filter(date_to=20210331), "date > 0 and date <= 20210331"),
        (Filter(sources=frozenset({'b "x".txt', "a\\b.txt"})), 'source in ["a\\\\b.txt", "b \\"x\\".txt"]'),
    ],
)
def test_filter_to_milvus_expression(where, expr):
    assert filter_expr(where) == expr
