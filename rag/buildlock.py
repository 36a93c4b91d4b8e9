"""One build at a time per index folder: `<index>/.build.lock` names the process that builds.

Two builds at once used to both embed and both publish (issue 10). The lock file is created
with O_CREAT|O_EXCL (atomic on a local file system) and holds the holder's pid, host and start
time as JSON, so a second `python -m rag.index` can say who holds it, wait for it (`--wait`)
or give up. A lock whose process is gone (same host, pid not alive: a kill -9, a crash) is
stale and is taken over with a warning. The CLI and the archive page's rebuild both take it
through `build_index`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = ".build.lock"


class BuildLocked(RuntimeError):
    """Another live process holds the build lock; the message names it (Chinese)."""

    def __init__(self, holder: "LockHolder", path: Path):
        self.holder = holder
        self.path = path
        super().__init__(
            f"另一个索引构建正在进行（进程 {holder.pid}，主机 {holder.host}，开始于 {holder.started}），"
            f"请等它结束后再运行，或加 --wait 排队等待（锁文件 {path}）"
        )


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    started: str

    @classmethod
    def read(cls, path: Path) -> "LockHolder | None":
        """The holder named in the file; None when it is gone or unreadable (being written)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(int(data["pid"]), str(data.get("host", "")), str(data.get("started", "")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return cls(-1, "", "")  # half-written or garbled: judged by the file's age

    def alive(self) -> bool:
        if self.host and self.host != socket.gethostname():
            return True  # another machine's process: cannot be checked from here, assume it lives
        if self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class BuildLock:
    """`with BuildLock(index_dir, wait=False):` holds the lock for the block.

    `wait`: poll until the holder is done instead of raising BuildLocked. `warnings` collects
    the Chinese notice when a stale lock was taken over."""

    def __init__(self, index_dir: Path, wait: bool = False, poll_s: float = 0.5, warnings: list[str] | None = None):
        self.path = Path(index_dir) / LOCK_NAME
        self.wait = wait
        self.poll_s = poll_s
        self.warnings = warnings if warnings is not None else []
        self._held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            if self._try_create():
                self._held = True
                return
            holder = LockHolder.read(self.path)
            if holder is None:
                continue  # released between our attempt and the read: try again at once
            if holder.pid == -1 and time.time() - _mtime(self.path) < 5:
                time.sleep(0.05)  # being written right now
                continue
            if not holder.alive():
                if self._take_over(holder):
                    self._held = True
                    return
                continue
            if not self.wait:
                raise BuildLocked(holder, self.path)
            time.sleep(self.poll_s)

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(_me(), fh)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def _take_over(self, stale: LockHolder) -> bool:
        """Move the stale file aside under a unique name (only one taker wins the rename), then
        create ours the normal way."""
        aside = self.path.with_name(f"{LOCK_NAME}.stale-{os.getpid()}-{time.monotonic_ns()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return False
        moved = LockHolder.read(aside)
        if moved is not None and moved.pid != stale.pid:
            # a fresh lock someone created after our read: put it back (unless a third took the
            # name meanwhile) and start over
            try:
                os.link(aside, self.path)
            except OSError:
                pass
            aside.unlink(missing_ok=True)
            log.info("build lock changed hands while taking over; retrying")
            return False
        aside.unlink(missing_ok=True)
        msg = f"发现过期的构建锁（进程 {stale.pid} 已不存在，开始于 {stale.started or '未知'}），已接管"
        self.warnings.append(msg)
        log.warning("%s", msg)
        return self._try_create()

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        holder = LockHolder.read(self.path)
        if holder is not None and holder.pid == os.getpid():
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "BuildLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _me() -> dict[str, object]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def build_running(index_dir: Path) -> bool:
    """Whether a live process holds the index folder's build lock (for status lines)."""
    holder = LockHolder.read(Path(index_dir) / LOCK_NAME)
    return holder is not None and holder.alive()
