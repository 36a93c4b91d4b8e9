"""Bounded work per request: input clipping and the gate between answering and index reload.

Measured before these bounds (issue 10): a 10k-character history item took 11.6 s to answer, a
1 MB one kept a core busy for over ten minutes, and answers were served one at a time behind one
lock (20 clients: 40 answers/s, p50 491 ms). Two things fix that:

- Inputs are clipped before any tokenising. Over-long text keeps its *end*: in a pasted block or
  a long chat the question is usually last, and the follow-up rules read only the latest turns.
- Answering takes the *read* side of a reader/writer gate, so any number of questions run at
  once (the query embedder is a C call that releases the GIL, and the store is not mutated on
  the read path); only an index reload takes the *write* side, so a request never sees the
  store swapped under it. ``SerialGate`` is the old one-at-a-time behaviour, kept selectable
  (``ask_concurrency = "serial"``) so the load benchmark can compare both in one run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from .settings import Settings
from .textnorm import clean_line

ASK_CONCURRENCY = ("shared", "serial")


class Busy(TimeoutError):
    """The gate could not be entered before the request's deadline."""


def clip_end(text: str, limit: int) -> tuple[str, bool]:
    """The last `limit` characters of `text`, and whether anything was cut."""
    if limit <= 0:
        return "", bool(text)
    if len(text) <= limit:
        return text, False
    return text[-limit:], True


def bounded_history(history: Sequence[str] | None, settings: Settings) -> list[str]:
    """The latest `max_history_items` turns, each cleaned and clipped to `max_question_chars` from its end."""
    items = list(history or ())[-4 * settings.max_history_items :]  # bounded before any cleaning work
    out = []
    for item in items:
        text = clean_line(item if isinstance(item, str) else "")
        if text:
            out.append(clip_end(text, settings.max_question_chars)[0])
    return out[-settings.max_history_items :]


def deadline_after(seconds: float) -> float:
    return time.monotonic() + seconds


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


class Gate(Protocol):
    def reading(self, deadline: float | None = None) -> AbstractContextManager[None]: ...

    def writing(self, deadline: float | None = None) -> AbstractContextManager[None]: ...


class ReadWriteGate:
    """Many readers or one writer. Writers are preferred: once a reload waits, new readers queue
    behind it, so 20 busy clients cannot starve an index update."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self, deadline: float | None = None) -> Iterator[None]:
        with self._cond:
            if not self._cond.wait_for(lambda: not self._writing and not self._writers_waiting, _remaining(deadline)):
                raise Busy("index reload in progress")
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self, deadline: float | None = None) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                entered = self._cond.wait_for(lambda: not self._writing and not self._readers, _remaining(deadline))
            finally:
                self._writers_waiting -= 1
            if not entered:
                self._cond.notify_all()
                raise Busy("answers in progress")
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class SerialGate:
    """One request at a time, readers and writers alike (the behaviour before issue 10)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextmanager
    def _exclusive(self, deadline: float | None) -> Iterator[None]:
        timeout = _remaining(deadline)
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise Busy("another question is being answered")
        try:
            yield
        finally:
            self._lock.release()

    def reading(self, deadline: float | None = None):
        return self._exclusive(deadline)

    def writing(self, deadline: float | None = None):
        return self._exclusive(deadline)


def make_gate(mode: str) -> Gate:
    if mode == "shared":
        return ReadWriteGate()
    if mode == "serial":
        return SerialGate()
    raise ValueError(f"ask_concurrency must be one of {', '.join(ASK_CONCURRENCY)}, got {mode!r}")
