"""`python -m eval.nearmiss`: near-miss questions over the bundled pages (eval/nearmiss.jsonl).

A near miss is an answerable gold question with exactly one constraint swapped for another value
of the same type that the archive has: another year, office, ordinal (第N巡察组), place or
indicator. The archive then holds the *twin's* fact right next to the asked one, which is the
trap issue 9 describes ("经开区2021年GDP" answered with the 2020 figure). Each kept question is
checked automatically: no sentence of the pages may carry the swapped-in value (in the sentence
or the sentences just before it, where a year or office is often named once for several) together
with any specific word of the question. The check is deliberately one-sided: a question is dropped
whenever the archive *might* answer it.

Values are mined from the pages, not listed by hand: years by regex, offices and places by suffix
regexes plus jieba POS tags (nt/ns), ordinals by "第N<counter>", indicators as noun phrases with a statistical
head word (总值, 总额, 收入, 增加值, 投资). The output is deterministic for a seed; the twins (the gold lines
they came from) are written into the same file, so the file runs as a gold set:
`python -m eval --gold eval/nearmiss.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from rag.settings import PROJECT_ROOT
from rag.zh import YEAR_RE

from .metrics import GoldItem, load_gold

DEFAULT_CORPUS = PROJECT_ROOT / "data" / "jingkai"
DEFAULT_GOLD = PROJECT_ROOT / "eval" / "gold.jsonl"
DEFAULT_OUT = PROJECT_ROOT / "eval" / "nearmiss.jsonl"
SWAP_TYPES = ("year", "office", "ordinal", "place", "indicator")

# How many sentences before the one holding the anchor still lend it a year or an office: the
# pages name the year once ("2020年，经开区地区生产总值…") and then list figures sentence by sentence.
CONTEXT_SENTENCES = 3
# A question word in more than this share of the pages' sentences ("经开区", "工作") identifies no
# fact, so it is not an anchor of the absence check.
GENERIC_SHARE = 0.04

SENTENCE_END = re.compile(r"(?<=[。！？!?；;])")
YEAR = YEAR_RE  # group 1: the four digits of "2020年"
CN_NUM = "一二三四五六七八九十"
# rag.zh.ORDINAL_RE takes a one-character counter (第三届, 第二批); the pages' inspection teams and
# quarters have longer ones (第一巡察组, 第八巡回指导组, 第二季度)
ORDINAL = re.compile(rf"第([{CN_NUM}]{{1,3}})(巡察组|巡回指导组|季度)")
OFFICE_SUFFIX = ("局", "办公室", "办", "部", "工委", "室")
PLACE_SUFFIX = ("办事处", "社区", "小区", "产业园", "园区", "村")
NOT_NAMES = ("乡村", "农村", "干部", "布局", "大局", "全局", "格局", "内部", "全部", "局部", "会议室", "党工委", "党支部", "党委")
NAME_PREFIXES = ("经开区", "郑州市", "区", "市")
# An indicator is a noun phrase with a statistical head word; it is swapped only for one with
# another head (营业收入 for 主营业务收入 would ask nearly the same thing).
INDICATOR_HEADS = ("生产总值", "总额", "收入", "增加值", "产值", "投资", "外资")
INDICATOR_BEFORE = ("，", ",", "、", ";", ":", "。", "(", "区", "市", "的", "年", "企业", "单位", "扩大")
STOP = {
    "多少", "几个", "哪些", "什么", "是否", "哪个", "哪里", "哪天", "一共", "总共", "目前", "今年", "时候", "怎么",
    "经开区", "郑州", "全区", "区里", "咱们", "开展", "工作", "进行", "情况", "是不是", "有没有", "哪位", "是谁",
}
# Two names for one thing, in both directions: the check must see a sentence that says it the other way.
ALIASES = {
    "GDP": ("地区生产总值",),
    "地区生产总值": ("GDP",),
    "综合执法局": ("综合行政执法局", "执法局"),
    "综合行政执法局": ("综合执法局", "执法局"),
    "纪检监察工委": ("纪工委", "纪检监察"),
    "纪工委": ("纪检监察工委",),
    "宣传部": ("文明办",),
    "文明办": ("宣传部",),
    "经济发展局": ("经发局",),
    "经发局": ("经济发展局",),
    "营收": ("营业收入", "主营业务收入"),
    "专项债": ("专项债券",),
    "党政办": ("党政办公室",),
    "党政办公室": ("党政办",),
    "科技局": ("科技人才局",),
    "科技人才局": ("科技局",),
    "党建办": ("组织部",),
}


@lru_cache(maxsize=1)
def _jieba():
    """A private jieba with only its default dictionary: the project's user dictionary (loaded
    into jieba's global tokenizer by rag.tokenize) must not change which questions come out."""
    import logging

    import jieba
    import jieba.posseg

    logging.getLogger("jieba").setLevel(logging.WARNING)
    tok = jieba.Tokenizer()
    return tok, jieba.posseg.POSTokenizer(tok)


def _cut(text: str) -> list[str]:
    return _jieba()[0].lcut(text)


def _pos(text: str) -> list[tuple[str, str]]:
    return [(p.word, p.flag) for p in _jieba()[1].cut(text)]


def norm(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


@dataclass(frozen=True)
class Sentence:
    """One sentence of a page and the text just before it in its paragraph (for years/offices)."""

    text: str
    context: str
    source: str
    page_year: int | None = None


@dataclass
class Lexicon:
    """Values of each swap type the archive has, mined from the pages."""

    years: list[str] = field(default_factory=list)  # "2021"
    offices: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)
    ordinals: dict[str, list[str]] = field(default_factory=dict)  # counter -> numerals seen
    indicators: dict[str, str] = field(default_factory=dict)  # indicator -> its head word


def read_sentences(corpus: Path) -> list[Sentence]:
    """Sentences of every page, whitespace removed (PDF line breaks fall mid-sentence)."""
    out: list[Sentence] = []
    for path in sorted(Path(corpus).glob("*.txt")):
        meta = path.with_name(path.name + ".meta.json")
        year = json.loads(meta.read_text(encoding="utf-8")).get("year") if meta.is_file() else None
        for para in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
            parts = [s for s in SENTENCE_END.split(norm(para)) if s]
            for i, s in enumerate(parts):
                out.append(Sentence(s, "".join(parts[max(0, i - CONTEXT_SENTENCES) : i]), path.name, year))
    return out


def mine_lexicon(sentences: Sequence[Sentence]) -> Lexicon:
    text = "".join(s.text for s in sentences)
    lex = Lexicon()
    lex.years = sorted(set(YEAR.findall(text)))
    lex.offices = _longest(_names_ending(text, OFFICE_SUFFIX, office=True))
    lex.places = _longest(_names_ending(text, PLACE_SUFFIX, min_len=3))
    for word, flag in _pos(text):
        if flag == "ns" and word.endswith(PLACE_SUFFIX) and len(word) >= 3 and _nounish(word):
            lex.places = sorted({*lex.places, word})
    for numeral, counter in ORDINAL.findall(text):
        lex.ordinals.setdefault(counter, [])
        if numeral not in lex.ordinals[counter]:
            lex.ordinals[counter].append(numeral)
    found = _names_ending(text, INDICATOR_HEADS, min_len=3, max_len=7, office=True, before=INDICATOR_BEFORE, strong=INDICATOR_BEFORE)
    # the shortest reading: "工业增加值", not "单位工业增加值"; nothing with an office in it
    found = {n for n in found if not any(o != n and n.endswith(o) for o in found) and not re.search("[局办部]", n)}
    for name in sorted(n for n in found if not n.startswith(("助力", "单位"))):
        lex.indicators[name] = next(h for h in INDICATOR_HEADS if name.endswith(h))
    return lex


_BAD_START = set("的了在对为与和及把将从到向由被让使于等是有中各该其")


def _longest(names: set[str]) -> list[str]:
    """Drop a name that only ends a longer one ("管理局" of "城市管理局")."""
    return sorted(n for n in names if not any(o != n and o.endswith(n) for o in names))


def _names_ending(
    text: str,
    suffixes: tuple[str, ...],
    min_len: int = 3,
    max_len: int = 7,
    office: bool = False,
    before: tuple[str, ...] | None = None,
    strong: tuple[str, ...] | None = None,
) -> set[str]:
    """Names such as "统计局", "开放办", "前程办事处": a span that starts where jieba starts a word,
    ends with a name suffix, is all nouns, and does not start with a particle ("各办事处")."""
    starts, pos = set(), 0
    for w in _cut(text):
        starts.add(pos)
        pos += len(w)
    names: set[str] = set()
    for m in re.finditer("(?:" + "|".join(sorted(suffixes, key=len, reverse=True)) + ")(?![门署件分长员事公])", text):
        end = m.end()
        for start in range(max(0, end - max_len), end - min_len + 1):
            span = text[start:end]
            if start not in starts or span.endswith(NOT_NAMES) or span[0] in _BAD_START:
                continue
            for prefix in NAME_PREFIXES:
                if span.startswith(prefix) and len(span) - len(prefix) >= min_len:
                    span = span[len(prefix):]
                    break
            if len(span) <= min(len(x) for x in suffixes if span.endswith(x)) + 1 or span.startswith(VERB_STARTS):
                continue
            if span.endswith(NOT_NAMES):
                continue
            # all nouns: a name wherever it starts; with a verb stem (开放办, but also 确保办) only
            # where the pages print it after 区/市 or as what is inspected (巡察…)
            if (_nounish(span) and _is_name(span, text, before or NAME_BEFORE)) or (office and _nounish(span, NAME_TAGS) and _is_name(span, text, strong or STRONG_BEFORE)):
                names.add(span)
    return names


NOUN_TAGS = ("n", "nt", "ns", "nz", "vn", "j", "nr")
NAME_TAGS = (*NOUN_TAGS, "v", "a", "b", "l")  # office names take a verb or adjective stem: 开放办, 经济发展局
VERB_STARTS = ("督促", "联合", "巡察", "到", "由", "是", "对", "在", "召开", "组织")


def _nounish(phrase: str, tags: tuple[str, ...] = NOUN_TAGS) -> bool:
    """Every jieba word of the phrase is a noun (POS n*, vn, j): "主营业务收入", not "共发行成功"."""
    return all(flag.startswith(tags) for _, flag in _pos(phrase))


# text is NFKC-normalised, so "；：（）" are already ";:()"
NAME_BEFORE = ("区", "市", "巡察", "督促", "联合", "到", "由", "是", "与", "和", "及", "、", ",", "。", ";", ":", "“", "(", ")")


STRONG_BEFORE = ("区", "市", "巡察")


def _is_name(name: str, text: str, before: tuple[str, ...] = NAME_BEFORE) -> bool:
    """Printed at least once where a name starts: after 区/市, punctuation or a verb that takes an office."""
    if len(name) < 3 or name[0] in _BAD_START:
        return False
    for m in re.finditer(re.escape(name), text):
        if m.start() == 0 or text[: m.start()].endswith(before):
            return True
    return False


def variants(value: str) -> tuple[str, ...]:
    """Forms of a value a sentence may print: aliases, the 办事处 place without 办事处, 2021 for 2021年."""
    forms = {value, *ALIASES.get(value, ())}
    if value.endswith("办事处") and len(value) > 3:
        forms.add(value[: -len("办事处")])
    if re.fullmatch(r"\d{4}", value):
        forms.add(value)
    return tuple(sorted(forms, key=len, reverse=True))


def anchors_of(question: str, removed: Iterable[str], generic: set[str]) -> list[str]:
    """The question's specific words (jieba), without the swapped value, stop words and generic words."""
    gone = [norm(r) for r in removed]
    text = re.sub(r"(?:19|20)\d{2}年?|\d[\d.,%~]*", " ", norm(question))
    out = []
    for w in _cut(text):
        if len(w) < 2 or w in STOP or w in generic or re.search(r"\d", w) or not re.search(r"[\u4e00-\u9fffA-Za-z]", w):
            continue
        if any(w in g or g in w for g in gone):
            continue
        out.append(w)
    return list(dict.fromkeys(out))


def generic_words(sentences: Sequence[Sentence]) -> set[str]:
    df: Counter[str] = Counter()
    for s in sentences:
        df.update(set(_cut(s.text)))
    limit = max(GENERIC_SHARE * len(sentences), 2)  # a handful of sentences has no generic words
    return {w for w, n in df.items() if n > limit}


# Swap types whose value a page states once for everything on it: page 000 prints each office's
# name only in a title set apart from its column, so an office anywhere on the page may own a fact.
PAGE_WIDE = ("office", "place")


def answer_absent(asked: str, anchors: Sequence[str], sentences: Sequence[Sentence], swap: str) -> bool:
    """True when no sentence holds an anchor word (or an alias) while the swapped-in value is in
    the sentence or its context (the few sentences before it; for a year also the page's own
    year), and no sentence holding half the anchors is on a page that names the swapped-in office
    or place anywhere. No anchors: not provable, so False."""
    if not anchors:
        return False
    forms = variants(asked)
    pages: dict[str, str] = {}
    if swap in PAGE_WIDE:
        for s in sentences:
            pages[s.source] = pages.get(s.source, "") + s.text
    anchor_forms = [variants(a) for a in anchors]
    for s in sentences:
        held = sum(any(f in s.text for f in forms_) for forms_ in anchor_forms)
        if not held:
            continue
        where = s.context + s.text
        if any(f in where for f in forms):
            return False
        if swap == "year" and s.page_year is not None and str(s.page_year) == asked.rstrip("年") and not YEAR.search(where):
            return False
        # a sentence that says most of what the question asks, on a page naming the value anywhere
        if swap in PAGE_WIDE and held * 2 >= len(anchors) and any(f in pages[s.source] for f in forms):
            return False
    return True


@dataclass(frozen=True)
class Candidate:
    twin: GoldItem
    swap: str
    original: str
    asked: str
    question: str
    anchors: tuple[str, ...]


def _replace_once(question: str, old: str, new: str) -> str | None:
    return question.replace(old, new, 1) if question.count(old) == 1 else None


def candidates(item: GoldItem, lex: Lexicon, generic: set[str]) -> list[Candidate]:
    """Every one-constraint swap of one gold question (before the absence check)."""
    q = norm(item.question)
    out: list[Candidate] = []

    def add(swap: str, old: str, new: str, old_surface: str, new_surface: str, removed: Sequence[str]) -> None:
        nq = _replace_once(q, old_surface, new_surface)
        if nq and nq != q:
            out.append(Candidate(item, swap, old, new, nq, tuple(anchors_of(q, [*removed, old_surface], generic))))

    for year in sorted(set(YEAR.findall(q))):
        for other in lex.years:
            if other != year:
                add("year", f"{year}年", f"{other}年", year, other, [])
    for office in lex.offices:
        if office in q and not any(office != o and office in o and o in q for o in lex.offices):
            if any(a in q for a in variants(office) if a != office) or re.search(rf"\({re.escape(office)}|{re.escape(office)}\(", q):
                continue  # "宣传部（文明办）", "财政局（审计局）": swapping one name would leave the other
            if re.search(re.escape(office) + "(?:主任|副主任|书记|局长|部长)", q):
                continue  # "党建办主任程晓华": the person, not the office, is what is asked about
            for other in lex.offices:
                if other in variants(office) or any(v in q for v in variants(other)):
                    continue
                if _same_office_type(office, other) and other not in DISTANT_OFFICES:
                    add("office", office, other, office, other, [])
    for place in lex.places:
        if place in q:
            for other in lex.places:
                if other != place and _suffix(place) == _suffix(other) and other not in q:
                    add("place", place, other, place, other, [])
    for m in ORDINAL.finditer(q):
        numeral, counter = m.group(1), m.group(2)
        for other in lex.ordinals.get(counter, []):
            if other != numeral:
                add("ordinal", m.group(0), f"第{other}{counter}", m.group(0), f"第{other}{counter}", [])
    for ind, cls in lex.indicators.items():
        if ind in q and any(ind in norm(e) for e in item.evidence) and not re.search(re.escape(ind) + "[和及与]", q):
            for other, ocls in lex.indicators.items():
                # same head word (主营业务收入 / 营业收入) would ask nearly the same thing
                if other != ind and ocls != cls and other not in q and ind not in other and other not in ind:
                    add("indicator", ind, other, ind, other, [])
    return out


# Offices of the province or the state: the pages name them, but "商务部组织媒体发了多少篇报道" is
# not a question a district employee asks.
DISTANT_OFFICES = ("商务部", "财政厅", "水利局")


def _suffix(name: str) -> str:
    return next((s for s in ("办事处", "社区", "小区", "产业园", "园区", "村") if name.endswith(s)), "")


def _same_office_type(a: str, b: str) -> bool:
    """局 for 局, 办/部/工委/室 among themselves (the district's offices), never 局 for 部."""
    return (a.endswith("局") and b.endswith("局")) or (not a.endswith("局") and not b.endswith("局"))


# Light rephrasings a district employee might type: a polite opener, "有多少" for "是多少", a
# dropped question mark, "咱们区" for "经开区". One is drawn per question (seeded); the swapped-in
# value is never touched.
OPENERS = ("", "", "请问", "想问一下，", "我想了解一下，", "麻烦查一下，")
REWRITES = (
    (re.compile(r"是多少[？?]?$"), "有多少？"),
    (re.compile(r"是哪天[开的]*[？?]?$"), "是什么时候？"),
    (re.compile(r"是谁[？?]?$"), "叫什么名字？"),
    (re.compile(r"[？?]$"), ""),
)


def rephrase(question: str, rng: random.Random, keep: str) -> str:
    q = question
    if rng.random() < 0.5:
        for pattern, repl in REWRITES:
            if pattern.search(q):
                q = pattern.sub(repl, q)
                break
    if rng.random() < 0.2 and "经开区" in q and "经开区" not in keep:
        q = q.replace("经开区", "咱们区", 1)
    opener = rng.choice(OPENERS)
    return opener + q


@dataclass
class GenerateReport:
    candidates: int = 0
    rejected_present: int = 0
    rejected_no_anchor: int = 0
    kept: int = 0
    by_swap: dict[str, int] = field(default_factory=dict)


def generate(
    gold: Sequence[GoldItem],
    sentences: Sequence[Sentence],
    seed: int = 9,
    per_twin: int = 4,
    target: int = 130,
) -> tuple[list[dict[str, Any]], GenerateReport]:
    """Near-miss records (then their twins), deterministic for `seed`."""
    rng = random.Random(seed)
    lex = mine_lexicon(sentences)
    generic = generic_words(sentences)
    rep = GenerateReport()
    passing: dict[str, list[Candidate]] = {}
    for item in gold:
        if not item.answerable:
            continue
        for c in candidates(item, lex, generic):
            rep.candidates += 1
            if not c.anchors:
                rep.rejected_no_anchor += 1
            elif not answer_absent(c.asked, c.anchors, sentences, c.swap):
                rep.rejected_present += 1
            else:
                passing.setdefault(item.id, []).append(c)
    # at most per_twin a twin, preferring distinct swap types, round-robin over twins until target
    picked: list[Candidate] = []
    pools = {tid: rng.sample(cs, len(cs)) for tid, cs in passing.items()}
    for round_ in range(per_twin):
        for tid in sorted(pools):
            if len(picked) >= target:
                break
            pool = pools[tid]
            used = {c.swap for c in picked if c.twin.id == tid}
            pool.sort(key=lambda c: c.swap in used)
            if pool:
                picked.append(pool.pop(0))
    records: list[dict[str, Any]] = []
    for i, c in enumerate(picked, 1):
        question = rephrase(c.question, rng, keep=c.asked)
        records.append(
            {
                "id": f"nm-{i:03d}",
                "question": question,
                "answers": [],
                "evidence": [],
                "kind": "nearmiss",
                "source": c.twin.source,
                "swap": c.swap,
                "asked": c.asked,
                "original": c.original,
                "nearby_answers": list(c.twin.answers),
                "twin_id": c.twin.id,
                "anchors": list(c.anchors),
            }
        )
        rep.by_swap[c.swap] = rep.by_swap.get(c.swap, 0) + 1
    rep.kept = len(records)
    twins = sorted({c.twin.id for c in picked})
    by_id = {g.id: g for g in gold}
    for tid in twins:
        g = by_id[tid]
        records.append(
            {"id": g.id, "question": g.question, "answers": list(g.answers), "evidence": list(g.evidence), "kind": g.kind,
             "source": g.source, "role": "twin"}
        )
    return records, rep


def write_jsonl(records: Sequence[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.nearmiss", description="Generate near-miss questions over the bundled pages.")
    p.add_argument("--gold", type=Path, default=DEFAULT_GOLD)
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--seed", type=int, default=9)
    p.add_argument("--target", type=int, default=130, help="near-miss questions to keep")
    p.add_argument("--per-twin", type=int, default=4, help="near misses drawn from one gold question at most")
    args = p.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"错误 error: corpus directory not found: {args.corpus}", file=sys.stderr)
        return 2
    records, rep = generate(load_gold(args.gold), read_sentences(args.corpus), seed=args.seed, per_twin=args.per_twin, target=args.target)
    write_jsonl(records, args.out)
    print(
        f"{rep.kept} near misses ({', '.join(f'{k} {rep.by_swap[k]}' for k in SWAP_TYPES if k in rep.by_swap)}) + "
        f"{len(records) - rep.kept} twins -> {args.out}; {rep.candidates} candidates, "
        f"{rep.rejected_present} dropped as possibly answered, {rep.rejected_no_anchor} with no anchor word"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
