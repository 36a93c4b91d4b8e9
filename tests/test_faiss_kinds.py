"""The fp16 FAISS kind: exact search over float16 copies finds the same neighbours as flat."""

from __future__ import annotations

import numpy as np
import pytest

from rag.settings import Settings
from rag.store.local import build_faiss


def test_fp16_finds_the_same_top_50_as_flat():
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((5000, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = vecs[:20] + 0.5 * rng.standard_normal((20, 384)).astype(np.float32)
    flat_s, flat_i = build_faiss(vecs, "flat").search(queries, 50)
    half_s, half_i = build_faiss(vecs, "fp16").search(queries, 50)
    assert all(set(a) == set(b) for a, b in zip(flat_i, half_i))
    np.testing.assert_allclose(half_s, flat_s, atol=2e-3)
    assert (half_i[:, 0] == flat_i[:, 0]).all()


def test_faiss_kind_is_validated():
    with pytest.raises(ValueError, match="faiss_index must be one of"):
        Settings(faiss_index="ivf")
