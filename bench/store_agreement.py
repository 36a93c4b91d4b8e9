"""`python -m bench.store_agreement A/results.jsonl B/results.jsonl`: do two eval runs (say the
local and the Milvus store) agree? Top-1 article, identical answer text, answer accuracy each."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rows(path: Path) -> dict[str, dict]:
    return {r["id"]: r for r in (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())}


def top_article(row: dict) -> str | None:
    return row["contexts"][0]["article_id"] if row["contexts"] else None


def compare(a: dict[str, dict], b: dict[str, dict]) -> dict:
    ids = sorted(set(a) & set(b))
    n = len(ids)
    agree_top1 = sum(top_article(a[i]) == top_article(b[i]) for i in ids)
    same_answer = sum(a[i]["answer"] == b[i]["answer"] for i in ids)
    acc = lambda r: sum(bool(r[i]["judgement"]["correct"]) for i in ids) / n  # noqa: E731
    return {
        "questions": n,
        "top1_article_agreement": round(agree_top1 / n, 4),
        "identical_answer_text": round(same_answer / n, 4),
        "accuracy_a": round(acc(a), 4),
        "accuracy_b": round(acc(b), 4),
        "disagreeing_ids": [i for i in ids if top_article(a[i]) != top_article(b[i])],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.store_agreement")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    args = p.parse_args(argv)
    print(json.dumps(compare(rows(args.a), rows(args.b)), ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
