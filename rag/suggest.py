"""Suggested follow-up questions under an answer, built offline from the cited article's other facts.

A suggestion is only worth showing if the system can answer it, so each candidate is asked
through the same answerer (`ask`) and kept only when the answer is not an abstention and cites
the article the fact came from with the fact's number in it. Candidates are the article's other
clauses that state a number with a measure word ("共征集意见建议673条"): the number is replaced
by 多少 and the article's title is put in front when the clause alone names no subject. A
clause whose number is one item of a list (执法局、6家公司组建8支队伍) or that states a second
number gives no clean question and is skipped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from .records import Answer, Article

# A number with the measure words the archive uses most (counts, money, areas, shares).
_NUMBER = re.compile(
    r"(\d+(?:\.\d+)?)\s*(亿元|万元|元|亿|万|个|家|名|人次|人|条|项|场次|场|次|件|户|所|公里|千米|米|平方米|万平方米|亩|吨|辆|台|套|天|%|％)"
)
_CLAUSE = re.compile(r"[^，。；！？,;!?\n]+")
_LEADING = re.compile(r"^(?:\s|本报讯|\d{1,2}月\d{1,2}日|其中|同时|此外|另外|并|且|累计|已|截至目前|目前|全年|今年|是|为|达|约|和|及)+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LIST_JOIN = ("、", "和", "及", "与", "或")


def candidates(article: Article, exclude: tuple[int, int] = (0, 0), limit: int = 6) -> list[tuple[str, str]]:
    """(question, expected number) pairs from the article's number clauses outside `exclude`."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for m in _CLAUSE.finditer(article.body):
        if m.start() < exclude[1] and m.end() > exclude[0]:
            continue
        clause = m.group().strip()
        n = _NUMBER.search(clause)
        if not n:
            continue
        subject = _LEADING.sub("", clause[: n.start()].strip())
        rest = clause[n.end() :].strip()
        if len(_CJK.findall(subject)) < 4 or len(clause) > 40:
            continue
        if subject.endswith(_LIST_JOIN) or re.search(r"\d", rest):
            continue
        unit = n.group(2)
        question = f"{subject}多少{unit}{rest}"
        if len(_CJK.findall(subject)) < 8 and article.title:
            question = f"{article.title.split()[0]}：{question}"
        question = question.rstrip("：:") + "？"
        if question not in seen:
            seen.add(question)
            out.append((question, n.group(1)))
        if len(out) >= limit:
            break
    return out


def suggest_questions(
    answer: dict,
    article_of: Callable[[str], Article | None],
    ask: Callable[[str], Answer],
    n: int = 3,
    budget_s: float = 5.0,
    tried: int = 6,
) -> list[str]:
    """Up to `n` follow-ups the current answerer answers from the cited article; [] for abstentions.

    `answer` is the shown answer's JSON (Answer.to_json()), as the chat page keeps it."""
    citations = answer.get("citations") or []
    if answer.get("abstained", True) or not citations:
        return []
    first = citations[0]
    article = article_of(first.get("article_id", ""))
    if article is None:
        return []
    asked = {answer.get("question"), answer.get("retrieval_question")}
    out: list[str] = []
    deadline = time.monotonic() + budget_s
    for question, number in candidates(article, (int(first.get("start", 0)), int(first.get("end", 0))), limit=tried):
        if time.monotonic() > deadline or len(out) >= n:
            break
        if question in asked:
            continue
        reply = ask(question)
        if reply.abstained or number not in reply.answer:
            continue
        if any(c.article_id == article.id for c in reply.citations):
            out.append(question)
    return out
