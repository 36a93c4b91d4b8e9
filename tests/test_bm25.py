"""BM25 parity with rank-bm25 on real tokens of the real seed pages."""

from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from rag.bm25 import BM25Index, BM25Params, term_matrix
from rag.tokenize import tokenize

CORPUS = Path(__file__).resolve().parent.parent / "data" / "jingkai"


@pytest.fixture(scope="module")
def docs() -> list[list[str]]:
    # paragraphs of the real pages, tokenised exactly as the index does
    out = []
    for f in sorted(CORPUS.glob("*.txt")):
        for para in f.read_text(encoding="utf-8").split("\n\n"):
            toks = tokenize(para)
            if toks:
                out.append(toks)
    return out


QUERIES = ["经开区2020年专项债发行多少", "郑大二附院周边道路什么时候通车", "政府采购节约资金", "的", "不存在的词汇xyz", "经开区 经开区 财政局"]


@pytest.mark.parametrize("query", QUERIES)
def test_scores_equal_rank_bm25(docs, query):
    vocab: dict[str, int] = {}
    index = BM25Index(term_matrix(docs, vocab), vocab, BM25Params())
    ref = BM25Okapi(docs)
    q = tokenize(query) or [query]
    np.testing.assert_allclose(index.scores(q), ref.get_scores(q), rtol=1e-9, atol=1e-9)


def test_parity_with_custom_parameters(docs):
    vocab: dict[str, int] = {}
    index = BM25Index(term_matrix(docs, vocab), vocab, BM25Params(k1=1.2, b=0.5, epsilon=0.1))
    ref = BM25Okapi(docs, k1=1.2, b=0.5, epsilon=0.1)
    q = tokenize("经开区党工委召开民主生活会")
    np.testing.assert_allclose(index.scores(q), ref.get_scores(q), rtol=1e-9, atol=1e-9)


def test_empty_index_and_unknown_tokens():
    vocab: dict[str, int] = {}
    empty = BM25Index(term_matrix([], vocab), vocab)
    assert empty.scores(["经开区"]).shape == (0,)
    vocab = {}
    index = BM25Index(term_matrix([["经开区", "专项债"], ["财政局"]], vocab), vocab)
    assert index.scores(["没有"]).tolist() == [0.0, 0.0]
    assert index.scores([]).tolist() == [0.0, 0.0]


def test_tokenizer_keeps_numbers_and_years():
    toks = tokenize("全区2020年已累计发行5个项目13.92亿元")
    assert "13.92" in toks and "2020年" in toks and "2020" in toks
    assert "专项债" in tokenize("经开区专项债券") and "专项债" in tokenize("专项债发行多少")
    assert "的" not in tokenize("经开区的专项债")
    assert tokenize("１３．９２亿元")[0] == "13.92"  # full-width digits fold to half-width
