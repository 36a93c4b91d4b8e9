"""One build at a time per index folder (issue 10 item 3): stale locks are taken over, a held
lock makes a second build exit with status 2 naming the holder, or wait with --wait."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from rag.buildlock import LOCK_NAME, BuildLock, BuildLocked, LockHolder, build_running
from rag.settings import BUNDLED_CORPUS, PROJECT_ROOT


def _dead_pid() -> int:
    """A pid no process has (from the top of the range, where pids are rarely handed out)."""
    return next(p for p in range(4_000_000, 1, -1) if not os.path.exists(f"/proc/{p}"))


def test_stale_lock_is_taken_over_with_a_warning(tmp_path):
    pid = _dead_pid()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": "2026-01-01T00:00:00"}))
    warnings: list[str] = []
    with BuildLock(tmp_path, warnings=warnings):
        holder = LockHolder.read(tmp_path / LOCK_NAME)
        assert holder is not None and holder.pid == os.getpid()
        assert build_running(tmp_path)
    assert len(warnings) == 1 and str(pid) in warnings[0] and "过期" in warnings[0]
    assert not (tmp_path / LOCK_NAME).exists() and not build_running(tmp_path)
    assert not list(tmp_path.glob(f"{LOCK_NAME}.stale-*"))


def test_garbled_old_lock_counts_as_stale(tmp_path):
    path = tmp_path / LOCK_NAME
    path.write_text("{not json")
    old = time.time() - 60
    os.utime(path, (old, old))
    warnings: list[str] = []
    with BuildLock(tmp_path, warnings=warnings):
        pass
    assert warnings


def test_live_holder_is_named_and_wait_queues_behind_it(tmp_path):
    first = BuildLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(BuildLocked, match=rf"进程 {os.getpid()}.*--wait"):
            BuildLock(tmp_path).acquire()
        threading.Timer(0.3, first.release).start()
        t = time.monotonic()
        with BuildLock(tmp_path, wait=True, poll_s=0.05):
            assert time.monotonic() - t >= 0.25
    finally:
        first.release()


@pytest.mark.slow
def test_second_rag_index_exits_2_naming_the_holder_then_waits(tmp_path):
    """Two real processes: a holder of the lock, and `python -m rag.index` without and with --wait.

    Both builds start together; the holder lets go (a line on its stdin) once the refused one has
    exited and the waiting one is still queued, so nothing sleeps for a fixed time."""
    index = tmp_path / "index"
    index.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from rag.buildlock import BuildLock; l=BuildLock(sys.argv[1]); l.acquire(); print('held', flush=True); sys.stdin.readline(); l.release()", str(index)],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    waited = None
    try:
        assert holder.stdout.readline().strip() == "held"
        cmd = [sys.executable, "-m", "rag.index", "--quiet", "--dense-later", "--corpus", str(BUNDLED_CORPUS), "--index", str(index)]
        waited = subprocess.Popen(cmd + ["--wait"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        refused = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2
        assert f"进程 {holder.pid}" in refused.stderr and "--wait" in refused.stderr
        assert not (index / "CURRENT").exists()
        assert waited.poll() is None  # queued behind the holder, not refused
        holder.stdin.write("release\n")
        holder.stdin.close()
        _, err = waited.communicate(timeout=300)
        assert waited.returncode == 0, err
        assert holder.wait(timeout=30) == 0
        assert (index / "CURRENT").exists() and not (index / LOCK_NAME).exists()
    finally:
        for proc in (holder, waited):
            if proc is not None:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_archive_rebuild_takes_the_same_lock(tmp_path, embedder):
    from rag.archive import Archive
    from rag.settings import Settings

    settings = Settings(corpus_dir=BUNDLED_CORPUS, index_dir=tmp_path / "index")
    archive = Archive(settings, embedder_factory=lambda: embedder)
    with BuildLock(settings.index_dir):  # as `python -m rag.index` would hold it
        assert archive.start_rebuild()
        status = archive.wait(timeout=60)
    assert status.state == "failed" and f"进程 {os.getpid()}" in status.message
    assert not (settings.index_dir / "CURRENT").exists()
