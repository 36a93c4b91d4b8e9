"""Deterministic follow-up handling for the offline answerer.

A turn such as "那2019年呢？" only makes sense with the previous question. Rules, in order:
1. A turn that reads as complete (long enough, no leading 那/那么/还有/另外, no trailing 呢,
   no pronoun such as 它/该/这个) is searched as it is.
2. A follow-up that names a year replaces the year of the previous question
   ("经开区2020年专项债发行多少" + "那2019年呢" -> "经开区2019年专项债发行多少");
   if the previous question had no year, the year is put in front of it.
3. Otherwise the follow-up's words are appended to the previous question
   ("郑大二附院周边道路什么时候通车" + "由哪个单位负责呢" -> both joined), which keeps the topic
   for retrieval and lets the new words decide what kind of answer is wanted.
A turn that names its own subject (a person, an office, a place: jieba's name tags) together with a
question word ("李小虎是谁", "明湖办事处在哪") is complete however short it is, and is never glued
onto the previous question.
Not handled: references back more than one turn, and pronouns that point at an answer rather
than at the question (e.g. "这个数字比去年多吗"). The LLM mode rewrites such turns itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from . import zh
from .tokenize import pos_cut

_LEAD = re.compile(r"^(?:那么|那|还有|另外|再问一下|再问|以及|和|那如果|如果是)[，,\s]*")
_TRAIL = re.compile(r"[呢吗][？?！!。.]*$|[？?！!。.]+$")
_PRONOUN = re.compile(r"^(?:它|他们|她|他|该|这个|那个|此|其)")
_YEAR = zh.YEAR_EXPR_RE


_QUESTION_WORD = re.compile(r"谁|什么|哪|多少|几|何时|是否|吗|怎么|如何")
_NAME_TAGS = ("nr", "ns", "nt", "nz")


def names_own_subject(turn: str) -> bool:
    """A named person/office/place plus a question word: "李小虎是谁" stands on its own."""
    if not _QUESTION_WORD.search(turn):
        return False
    return any(tag.startswith(_NAME_TAGS) and len(w) >= 2 for w, tag in pos_cut(turn))


def is_follow_up(turn: str) -> bool:
    t = turn.strip()
    if _LEAD.match(t) or re.search(r"呢[？?！!。.]*$", t) or _PRONOUN.match(t):
        return True
    return len(t) <= 6 and not names_own_subject(t)


def standalone_question(turn: str, history: Sequence[str]) -> str:
    """The question to search for, given earlier user questions (oldest first)."""
    turn = turn.strip()
    if not history or not is_follow_up(turn):
        return turn
    previous = history[-1].strip()
    core = _TRAIL.sub("", _LEAD.sub("", turn)).strip()
    years = _YEAR.findall(core)
    if years:
        rest = _YEAR.sub("", core).strip("，, 的")
        base = _YEAR.sub(years[0], previous, count=1) if _YEAR.search(previous) else years[0] + previous
        return f"{base}{rest}" if rest and rest not in base else base
    if not core:
        return previous
    return f"{_TRAIL.sub('', previous)} {core}"
