"""Chinese tokenisation for BM25, identical at index and query time.

Choices (measured with `python -m eval --compare` on the gold set and crud_qa_dev):
- jieba's search mode (`cut_for_search`): it emits a compound and its dictionary sub-words
  (专项债券 -> 专项, 债券, 专项债, 专项债券), so a question that says 专项债 still matches a
  text that says 专项债券. Plain `cut` misses those partial matches.
- A private `jieba.Tokenizer` per corpus profile, loaded with that profile's user dictionary
  (``rag/profiles/jingkai.userdict.txt`` for the default), so the library never mutates jieba's
  global state for its callers.
- Numbers are kept whole (13.92, 13.5%); a year written 2020年 additionally yields the token
  "2020年", so "2020年" in a question prefers text about that year over a bare 2020 inside
  another number or a bond name.
- Punctuation, whitespace and function words (``STOP_WORDS`` plus the profile's own) are
  dropped: they carry no evidence and only dilute BM25's length normalisation.

``tokenize(text)`` and ``expand_query(text)`` use the default profile; pass ``profile=`` (or use
``tokenizer_for(profile)``) for an index built under another one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import re
import subprocess
import sys
import threading
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import jieba

from .profile import Profile, default_profile
from .zh import is_year_number

STOP_WORDS = frozenset(
    """的 了 和 与 及 或 是 在 对 为 把 被 将 等 也 都 而 并 就 又 于 以 之 其 这 那 有 个 着 中
    上 下 吗 呢 吧 啊 呀 么 哪 哪些 什么 怎么 怎样 如何 多少 几 是否 请问 一下 一个 我们 你们 他们
    这个 那个 这些 那些 进行 通过 相关 情况 请 问 谁 哪个 哪里 哪儿 哪天 何时 时候 什么时候 为什么
    怎么样 年 月 日 一共 总共 共计 是从 那场 那次 这次 咱们 咱 到底 具体 去了
    知道 想 问问 告诉 一下子 哪家 哪位 哪两个 哪几个 几个 多少次 是多少 有多少 分别""".split()
)

_KEEP = re.compile(r"[\w%]", re.UNICODE)


def normalize(text: str) -> str:
    """NFKC folds full-width digits/letters, so １２ and 12 are one token; Latin is lower-cased."""
    return unicodedata.normalize("NFKC", text).lower()


POS_MEMO = 100_000  # tagged texts kept per tokenizer (sentences and clauses of the answerer: ~1 KB each)


class Tokenizer:
    """The BM25 tokenizer of one corpus profile; jieba's dictionary is loaded on first use."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.stop_words = STOP_WORDS | profile.stop_words
        self.id = self._make_id()
        self._lock = threading.Lock()
        self._jieba: jieba.Tokenizer | None = None
        self._pos = None
        self._pos_memo = lru_cache(maxsize=POS_MEMO)(self._pos_uncached)

    def _make_id(self) -> str:
        """Changes whenever the dictionary or stop words change, so a stale index is detected."""
        h = hashlib.sha1(self.profile.dictionary_bytes())
        h.update(" ".join(sorted(self.stop_words)).encode("utf-8"))
        h.update(f"jieba-{jieba.__version__}-search-year".encode("utf-8"))
        return f"jieba-search-{h.hexdigest()[:10]}"

    def _get(self) -> jieba.Tokenizer:
        with self._lock:
            if self._jieba is None:
                jieba.setLogLevel(logging.WARNING)
                tk = jieba.Tokenizer()
                if self.profile.dictionary_path is not None:
                    tk.load_userdict(str(self.profile.dictionary_path))
                self._jieba = tk
            return self._jieba

    def expand_query(self, text: str) -> str:
        """Appends the archive's own term for a colloquial one (profile aliases), so BM25 matches either."""
        norm = normalize(text)
        extra = [v for k, v in self.profile.aliases if k in norm and v not in norm]
        return text + (" " + " ".join(extra) if extra else "")

    def tokenize(self, text: str) -> list[str]:
        words = [w.strip() for w in self._get().cut_for_search(normalize(text))]
        out: list[str] = []
        for i, w in enumerate(words):
            if not w or not _KEEP.search(w) or w in self.stop_words:
                continue
            out.append(w)
            if is_year_number(w) and i + 1 < len(words) and words[i + 1] == "年":
                out.append(w + "年")
        return out

    def pos_cut(self, text: str) -> tuple[tuple[str, str], ...]:
        """(word, part-of-speech tag) pairs from jieba's tagger over the same dictionary: the
        answerer finds names (nr), places (ns) and organisations (nt) with them. Memoised: the
        answerer tags the sentences of the same top articles question after question, and the
        tagger's Viterbi pass was 40 % of an answer's CPU (bench/README.md, *Load*)."""
        return self._pos_memo(text)

    def _pos_uncached(self, text: str) -> tuple[tuple[str, str], ...]:
        import jieba.posseg

        base = self._get()
        with self._lock:
            if self._pos is None:
                self._pos = jieba.posseg.POSTokenizer(base)
        return tuple((p.word, p.flag) for p in self._pos.cut(normalize(text)))


def tokenizer_for(profile: Profile | None = None) -> Tokenizer:
    """The one Tokenizer of a profile per process (None: the default profile)."""
    return _tokenizer_of(profile or default_profile())


@lru_cache(maxsize=8)
def _tokenizer_of(profile: Profile) -> Tokenizer:
    return Tokenizer(profile)


def tokenize_many(
    texts: Sequence[str],
    profile: Profile | None = None,
    workers: int = 0,
    min_parallel: int = 3000,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 256,
) -> list[list[str]]:
    """Tokens of each text, in order; identical to `tokenize` one by one (bench.tokenize_identity).

    jieba is pure Python and holds the GIL, so parallel means processes: `workers` (0: one per
    core) `python -m rag.tokenize --worker` children, each loading the same profile file (so the
    same dictionary, checked by the tokenizer id), fed batches of JSON lines over a pipe; used
    only from `min_parallel` texts on. Plain child processes rather than multiprocessing: its
    spawn mode imports the caller's main script again in every worker (app.py with Gradio), and
    forking a threaded process (the app's rebuild thread) can copy a held lock."""
    tk = tokenizer_for(profile)
    n = len(texts)
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or n < max(min_parallel, 2):
        out: list[list[str]] = []
        for i, text in enumerate(texts):
            out.append(tk.tokenize(text))
            if progress and (i % 200 == 0 or i + 1 == n):
                progress(i + 1, n)
        return out
    if tk.profile.path is None:
        raise ValueError("parallel tokenizing needs a profile read from a file")
    parts = [list(texts[i : i + batch]) for i in range(0, n, batch)]
    results: list[list[list[str]] | None] = [None] * len(parts)
    todo: queue.Queue[int] = queue.Queue()
    for i in range(len(parts)):
        todo.put(i)
    done: queue.Queue[int | BaseException] = queue.Queue()
    cmd = [sys.executable, "-W", "ignore", "-m", "rag.tokenize", "--worker", str(tk.profile.path), tk.id]
    procs = [
        subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, encoding="utf-8", env=_worker_env())
        for _ in range(min(workers, len(parts)))
    ]

    def feed(proc: subprocess.Popen) -> None:
        try:
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                proc.stdin.write(json.dumps(parts[i], ensure_ascii=False) + "\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"tokenizing worker {proc.pid} ended (exit {proc.wait()})")
                results[i] = json.loads(line)
                done.put(len(parts[i]))
        except BaseException as exc:  # reported to the caller's thread
            done.put(exc)

    threads = [threading.Thread(target=feed, args=(p,), daemon=True) for p in procs]
    try:
        for t in threads:
            t.start()
        finished = 0
        while finished < n:
            item = done.get()
            if isinstance(item, BaseException):
                raise item
            finished += item
            if progress:
                progress(finished, n)
        for t in threads:
            t.join()
    finally:
        for p in procs:
            try:
                p.stdin.close()
            except OSError:
                pass
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return [tokens for part in results for tokens in part]  # type: ignore[union-attr]


def _worker_env() -> dict[str, str]:
    """The child finds this very package (a worktree, an editable install) first."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _worker(profile_path: str, expected_id: str) -> int:
    """`python -m rag.tokenize --worker PROFILE ID`: one JSON list of texts a line in, their
    token lists as one JSON line out, until stdin closes."""
    from .profile import load_profile

    tk = tokenizer_for(load_profile(profile_path))
    if tk.id != expected_id:
        print(f"tokenizer in worker is {tk.id}, the build's is {expected_id}", file=sys.stderr)
        return 2
    for line in sys.stdin:
        sys.stdout.write(json.dumps([tk.tokenize(t) for t in json.loads(line)], ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return 0


def tokenize(text: str, profile: Profile | None = None) -> list[str]:
    return tokenizer_for(profile).tokenize(text)


def pos_cut(text: str, profile: Profile | None = None) -> tuple[tuple[str, str], ...]:
    return tokenizer_for(profile).pos_cut(text)


def expand_query(text: str, profile: Profile | None = None) -> str:
    return tokenizer_for(profile).expand_query(text)


def tokenizer_id(profile: Profile | None = None) -> str:
    return tokenizer_for(profile).id


TOKENIZER_ID = tokenizer_id()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        raise SystemExit(_worker(sys.argv[2], sys.argv[3]))
    raise SystemExit("usage: python -m rag.tokenize --worker PROFILE_PATH TOKENIZER_ID")
