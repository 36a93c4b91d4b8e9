"""Staff feedback on answers (👍/👎 and an optional comment), in SQLite beside the index.

Each row keeps what is needed to turn a 👎 into an evaluation case later: the question as asked,
the full Answer JSON that was shown, the index version that produced it, and the time.
`python -m eval.feedback --export FILE` writes the 👎 rows as gold-set candidates.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILENAME = "feedback.sqlite"
MAX_COMMENT_CHARS = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at TEXT NOT NULL,
  rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
  question TEXT NOT NULL,
  answer_json TEXT NOT NULL,
  index_version TEXT NOT NULL,
  comment TEXT NOT NULL DEFAULT ''
)
"""


@dataclass(frozen=True)
class FeedbackItem:
    id: int
    created_at: str
    rating: int  # 1 = 👍, -1 = 👎
    question: str
    answer: dict[str, Any]
    index_version: str
    comment: str


def feedback_path(index_dir: Path) -> Path:
    return Path(index_dir) / FILENAME


class FeedbackStore:
    """A thread-safe handle on one feedback database (the web app writes from worker threads)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        with self._db:
            self._db.execute(_SCHEMA)

    def add(self, question: str, answer: dict[str, Any], rating: int, index_version: str, comment: str = "") -> int:
        if rating not in (-1, 1):
            raise ValueError("rating must be 1 (👍) or -1 (👎)")
        now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        with self._lock, self._db:
            cur = self._db.execute(
                "INSERT INTO feedback (created_at, rating, question, answer_json, index_version, comment) VALUES (?, ?, ?, ?, ?, ?)",
                (now, rating, question, json.dumps(answer, ensure_ascii=False), index_version, _clean(comment)),
            )
            return int(cur.lastrowid)

    def set_comment(self, item_id: int, comment: str) -> bool:
        with self._lock, self._db:
            return self._db.execute("UPDATE feedback SET comment = ? WHERE id = ?", (_clean(comment), item_id)).rowcount == 1

    def remove(self, item_id: int) -> bool:
        """An undone 👍/👎 (the person clicked it again)."""
        with self._lock, self._db:
            return self._db.execute("DELETE FROM feedback WHERE id = ?", (item_id,)).rowcount == 1

    def items(self, rating: int | None = None) -> list[FeedbackItem]:
        sql = "SELECT id, created_at, rating, question, answer_json, index_version, comment FROM feedback"
        args: tuple = ()
        if rating is not None:
            sql, args = sql + " WHERE rating = ?", (rating,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [FeedbackItem(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _clean(comment: str) -> str:
    return " ".join((comment or "").split())[:MAX_COMMENT_CHARS]


def gold_candidate(item: FeedbackItem) -> dict[str, Any]:
    """A 👎 as a gold-set line for a person to complete: `answers` and `evidence` left empty."""
    a = item.answer
    cited = [c.get("source", "") for c in a.get("citations", [])]
    return {
        "id": f"fb-{item.id:04d}",
        "question": item.question,
        "answers": [],
        "evidence": [],
        "kind": a.get("kind", ""),
        "source": cited[0] if cited else "",
        "answer_given": a.get("answer", ""),
        "lead_given": a.get("lead", ""),
        "abstained": bool(a.get("abstained", False)),
        "comment": item.comment,
        "index_version": item.index_version,
        "created_at": item.created_at,
    }
