"""Index backends behind one protocol, and the factory that picks one from `Settings.store`.

    protocol.py  Store, Filter, StoreStats, the errors      (what the rest of the system imports)
    local.py     LocalStore: a folder of plain files, FAISS + a BM25 matrix (the default)
    local_update.py  LocalUpdate: a build's incremental view of it (new rows as a segment)
    milvus.py    MilvusStore: Milvus Lite (a file) or a Milvus server/cluster (optional extra [milvus])
    testing.py   the conformance suite every backend's tests inherit

pymilvus is imported only when a Milvus store is asked for, so the default install needs none of it.
"""

from __future__ import annotations

from typing import Any

from ..bm25 import BM25Params
from ..settings import Settings
from .local import CURRENT, SCHEMA_VERSION, LocalStore, build_faiss, current_stamp, current_version, prune_versions
from .protocol import (
    Filter,
    IndexDamaged,
    IndexMismatch,
    IndexMissing,
    IndexProblem,
    Store,
    StoreStats,
    StoreUnavailable,
    date_key,
)

__all__ = [
    "CURRENT",
    "SCHEMA_VERSION",
    "Filter",
    "IndexDamaged",
    "IndexMismatch",
    "IndexMissing",
    "IndexProblem",
    "LocalStore",
    "Store",
    "StoreStats",
    "StoreUnavailable",
    "build_faiss",
    "current_stamp",
    "current_version",
    "date_key",
    "new_store",
    "open_store",
    "prune_versions",
    "published_version",
]


def bm25_params(settings: Settings) -> BM25Params:
    return BM25Params(settings.bm25_k1, settings.bm25_b, settings.bm25_epsilon)


def open_store(settings: Settings, expect: dict[str, Any] | None = None, verify: bool = False, for_update: bool = False) -> Store:
    """The published index of the configured backend; `expect`: manifest keys that must match.

    Raises IndexMissing before the first publish, IndexMismatch when it was built otherwise,
    IndexDamaged when a file of it is damaged (sizes always checked; checksums with `verify`).
    `for_update`: a build will publish from it (the local store keeps what makes that cheaper)."""
    if settings.store == "milvus":
        from .milvus import MilvusStore

        return MilvusStore.open(settings, expect=expect)
    if for_update:
        from .local_update import LocalUpdate

        update = LocalUpdate.open(
            settings.index_dir,
            expect=expect,
            verify=verify,
            max_segments=settings.segment_max,
            compact_share=settings.segment_compact_share,
        )
        if update is not None:
            return update
    return LocalStore.load(settings.index_dir, expect=expect, verify=verify, keep_lines=for_update)


def new_store(settings: Settings, dim: int) -> Store:
    """An empty store of the configured backend, to build into and publish."""
    if settings.store == "milvus":
        from .milvus import MilvusStore

        return MilvusStore.create(settings, dim=dim, bm25_params=bm25_params(settings))
    return LocalStore(dim=dim, faiss_kind=settings.faiss_index, bm25_params=bm25_params(settings), path=settings.index_dir)


def published_version(settings: Settings) -> str:
    """Cheap change detector for hot reload: the published version's name, '' if none."""
    if settings.store == "milvus":
        from .milvus import published_collection

        return published_collection(settings)
    return current_stamp(settings.index_dir)
