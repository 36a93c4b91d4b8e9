"""Shared pieces of the benchmarks: the machine, news corpora, synthetic passage vectors, RSS.

Benchmarks are scripts, not tests: each writes bench/results/<name>.json and prints a
markdown table; bench/README.md holds the committed tables. Corpora and indexes live under
bench/data/ (git-ignored).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.embed import Embedder, EmbedderWrapper
from rag.settings import PROJECT_ROOT, shared_dir

# the shared datasets: ../shared next to the repository, or $RAG_SHARED_DIR
NEWS = shared_dir() / "datasets" / "crud_news_30k.jsonl.gz"
CRUD_GOLD = shared_dir() / "datasets" / "crud_qa_dev" / "gold.jsonl"
DATA = PROJECT_ROOT / "bench" / "data"
RESULTS = PROJECT_ROOT / "bench" / "results"


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = subprocess.run(["free", "-g"], capture_output=True, text=True, check=False).stdout.splitlines()[1].split()[1]
    except (OSError, IndexError):
        mem = "?"
    return {
        "nproc": os.cpu_count(),
        "memory_gib": mem,
        "cpu": cpu,
        "python": platform.python_version(),
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "load_avg": os.getloadavg(),
    }


def rss_mib() -> float:
    """Resident memory of this process now (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else 0.0


def news_corpus(n: int, root: Path | None = None) -> Path:
    """The first n articles of crud_news_30k as <id>.txt files (written once, then reused)."""
    root = root or DATA / f"news-{n}"
    marker = root / ".complete"
    if marker.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    with gzip.open(NEWS, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= n:
                break
            row = json.loads(line)
            (root / f"{row['id']}.txt").write_text(row["text"], encoding="utf-8")
    marker.write_text(str(n), encoding="utf-8")
    return root


def news_questions(n: int) -> list[str]:
    """Real questions about 2023 news (crud_qa_dev), for latency at news scale."""
    qs = [json.loads(line)["question"] for line in CRUD_GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    return qs[:n]


class SyntheticPassages(EmbedderWrapper):
    """Wraps the real embedder: queries are embedded for real, passages get random unit vectors
    seeded by their text hash, under the real embedder's id so the Engine serves the index.

    SYNTHETIC VECTORS: dense latency and memory are real, dense quality is not. Only for
    bench/data indexes; embedding 30k articles for real would take hours on this machine."""

    def __init__(self, real: Embedder):
        super().__init__(real)
        self.calls = 0

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha1(t.encode("utf-8")).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out


def save_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path
