"""Chinese tokenisation for BM25, identical at index and query time.

Choices (measured with `python -m eval --compare` on the gold set and crud_qa_dev):
- jieba's search mode (`cut_for_search`): it emits a compound and its dictionary sub-words
  (专项债券 -> 专项, 债券, 专项债, 专项债券), so a question that says 专项债 still matches a
  text that says 专项债券. Plain `cut` misses those partial matches.
- A private `jieba.Tokenizer` with a district user dictionary (rag/resources/userdict.txt), so
  the library never mutates jieba's global state for its callers.
- Numbers are kept whole (13.92, 13.5%); a year written 2020年 additionally yields the token
  "2020年", so "2020年" in a question prefers text about that year over a bare 2020 inside
  another number or a bond name.
- Punctuation, whitespace and a short list of function words are dropped: they carry no
  evidence and only dilute BM25's length normalisation.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import unicodedata
from pathlib import Path

import jieba

log = logging.getLogger(__name__)

USER_DICT = Path(__file__).with_name("resources") / "userdict.txt"

STOP_WORDS = frozenset(
    """的 了 和 与 及 或 是 在 对 为 把 被 将 等 也 都 而 并 就 又 于 以 之 其 这 那 有 个 着 中
    上 下 吗 呢 吧 啊 呀 么 哪 哪些 什么 怎么 怎样 如何 多少 几 是否 请问 一下 一个 我们 你们 他们
    这个 那个 这些 那些 进行 通过 相关 情况 请 问 谁 哪个 哪里 哪儿 哪天 何时 时候 什么时候 为什么
    怎么样 年 月 日 呢 吗 一共 总共 共计 是从 那场 那次 那个 这次 咱们 咱 区里 我区 到底 具体 都 了 去了
    知道 想 问问 告诉 一下子 哪家 哪位 哪两个 哪几个 几个 多少次 是多少 有多少 分别""".split()
)

_YEAR = re.compile(r"^(19|20)\d\d$")


def _tokenizer_id() -> str:
    """Changes whenever the dictionary or stop words change, so a stale index is detected."""
    h = hashlib.sha1(USER_DICT.read_bytes())
    h.update(" ".join(sorted(STOP_WORDS)).encode("utf-8"))
    h.update(f"jieba-{jieba.__version__}-search-year".encode("utf-8"))
    return f"jieba-search-{h.hexdigest()[:10]}"


TOKENIZER_ID = _tokenizer_id()
_KEEP = re.compile(r"[\w%]", re.UNICODE)

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None


def _get() -> jieba.Tokenizer:
    global _tokenizer
    with _lock:
        if _tokenizer is None:
            jieba.setLogLevel(logging.WARNING)
            tk = jieba.Tokenizer()
            tk.load_userdict(str(USER_DICT))
            _tokenizer = tk
        return _tokenizer


def normalize(text: str) -> str:
    """NFKC folds full-width digits/letters, so １２ and 12 are one token; Latin is lower-cased."""
    return unicodedata.normalize("NFKC", text).lower()


# Colloquial or foreign names for what the paper writes formally; applied to questions only.
QUERY_SYNONYMS = {
    "gdp": "地区生产总值",
    "专项债": "专项债券",
    "城管": "综合行政执法局",
    "纪委": "纪工委",
}


def expand_query(text: str) -> str:
    """Appends the archive's own term for a colloquial one, so BM25 can match either."""
    norm = normalize(text)
    extra = [v for k, v in QUERY_SYNONYMS.items() if k in norm and v not in norm]
    return text + (" " + " ".join(extra) if extra else "")


def tokenize(text: str) -> list[str]:
    tk = _get()
    words = [w.strip() for w in tk.cut_for_search(normalize(text))]
    out: list[str] = []
    for i, w in enumerate(words):
        if not w or not _KEEP.search(w) or w in STOP_WORDS:
            continue
        out.append(w)
        if _YEAR.match(w) and i + 1 < len(words) and words[i + 1] == "年":
            out.append(w + "年")
    return out
