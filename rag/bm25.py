"""BM25Okapi as a sparse matrix: the same scores as rank-bm25, without its Python loop.

Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond" (2009), with
rank-bm25's (v0.2.2) conventions so the two agree to float precision (tests/test_bm25.py):
idf = ln(N - n + 0.5) - ln(n + 0.5); a negative idf is replaced by epsilon * mean(idf) over the
vocabulary; a query token that occurs twice counts twice.

The per-(document, term) weight idf * tf*(k1+1) / (tf + k1*(1 - b + b*len/avglen)) does not
depend on the query, so it is computed once into a CSC matrix; a query is then a sum of a few
columns: a handful of milliseconds over 100k chunks (bench/README.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class BM25Params:
    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25


def term_matrix(docs: Sequence[Sequence[str]], vocab: dict[str, int]) -> sp.csr_matrix:
    """Raw term frequencies (docs x vocab); grows `vocab` with unseen tokens."""
    indptr = [0]
    indices: list[int] = []
    data: list[int] = []
    for tokens in docs:
        for tok, tf in Counter(tokens).items():
            j = vocab.get(tok)
            if j is None:
                j = vocab[tok] = len(vocab)
            indices.append(j)
            data.append(tf)
        indptr.append(len(indices))
    return sp.csr_matrix(
        (np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
        shape=(len(docs), len(vocab)),
    )


class BM25Index:
    """Scores documents given their term-frequency matrix; rebuilt whenever documents change,
    because idf and the average length are corpus-wide."""

    def __init__(self, tf: sp.csr_matrix, vocab: dict[str, int], params: BM25Params = BM25Params()):
        self.vocab = vocab
        self.params = params
        n_docs = tf.shape[0]
        tf = tf.tocsr().astype(np.float64)
        if tf.shape[1] < len(vocab):
            tf = sp.csr_matrix((tf.data, tf.indices, tf.indptr), shape=(n_docs, len(vocab)))
        self.n_docs = n_docs
        if n_docs == 0:
            self.idf = np.zeros(len(vocab))
            self.weights = sp.csc_matrix((0, len(vocab)))
            return
        doc_len = np.asarray(tf.sum(axis=1)).ravel()
        avgdl = doc_len.mean() if doc_len.mean() > 0 else 1.0
        df = np.diff(tf.tocsc().indptr).astype(np.float64)
        present = df > 0  # rank-bm25 only knows words that occur in some document
        idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
        mean_idf = idf[present].mean() if present.any() else 0.0
        idf = np.where(idf < 0, params.epsilon * mean_idf, idf)
        idf[~present] = 0.0
        self.idf = idf
        k1, b = params.k1, params.b
        rows = np.repeat(np.arange(n_docs), np.diff(tf.indptr))
        norm = k1 * (1 - b + b * doc_len[rows] / avgdl)
        w = idf[tf.indices] * tf.data * (k1 + 1) / (tf.data + norm)
        self.weights = sp.csr_matrix((w, tf.indices, tf.indptr), shape=tf.shape).tocsc()

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        counts = Counter(t for t in query_tokens if t in self.vocab)
        out = np.zeros(self.n_docs)
        if not counts or self.n_docs == 0:
            return out
        cols = np.fromiter((self.vocab[t] for t in counts), dtype=np.int64)
        reps = np.fromiter(counts.values(), dtype=np.float64)
        return np.asarray(self.weights[:, cols] @ reps).ravel()
