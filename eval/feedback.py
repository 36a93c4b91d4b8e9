"""`python -m eval.feedback --export FILE`: staff 👎 feedback as gold-set candidates (JSON lines).

Each line has the gold-set fields (`id`, `question`, empty `answers` and `evidence`, `kind`,
`source`) plus what was shown (`answer_given`, `comment`, `index_version`, `created_at`), so a
person fills in `answers`/`evidence` and appends the line to eval/gold.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.feedback import FeedbackStore, feedback_path, gold_candidate
from rag.settings import Settings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.feedback", description="export 👎 feedback as gold-set candidates")
    p.add_argument("--export", required=True, metavar="FILE", help="JSON-lines file to write ('-' for stdout)")
    p.add_argument("--index", help="index directory holding feedback.sqlite (default: ./index or RAG_INDEX_DIR)")
    p.add_argument("--all", action="store_true", help="export 👍 rows too")
    args = p.parse_args(argv)
    path = feedback_path(Settings.load(index_dir=args.index).index_dir)
    if not path.is_file():
        print(f"没有反馈记录：{path} 不存在（网页上点 👍/👎 后才会创建）", file=sys.stderr)
        return 1
    store = FeedbackStore(path)
    try:
        rows = [gold_candidate(item) for item in store.items(None if args.all else -1)]
    finally:
        store.close()
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if args.export == "-":
        sys.stdout.write(text)
    else:
        Path(args.export).write_text(text, encoding="utf-8")
        print(f"已导出 {len(rows)} 条反馈到 {args.export}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
