"""The store conformance suite on Milvus Lite (real milvus-lite server per test, our BM25 weights)."""

from __future__ import annotations

import pytest

from rag.store.milvus import disconnect
from rag.store.testing import StoreConformance


@pytest.mark.slow
class TestMilvusStore(StoreConformance):
    backend = "milvus"
    # dies after every collection of the new version is written, just before the alias switch
    crash_code = "import os\nimport rag.store.milvus as m\nm.switch_alias = lambda *a, **k: os._exit(9)\n"

    def release(self, settings):
        disconnect(settings)

    @pytest.fixture(autouse=True)
    def _one_server_per_test(self, settings):
        yield
        disconnect(settings)
