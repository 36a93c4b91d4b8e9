"""Chinese text patterns shared by every stage: years, dates, sentence and clause ends, numbers.

One definition each, so that the loader's year, the retriever's year preference and the
answerer's year check can never disagree about what "2020 年" or "5月25日" is.
"""

from __future__ import annotations

import re

CJK = "\u4e00-\u9fff"
CJK_RE = re.compile(f"[{CJK}]")

# Sentence ends: 。！？；… (full or half width), plus a closing quote or bracket right after.
SENTENCE_END_CHARS = "。！？；!?;…"
SENTENCE_END_RE = re.compile(rf"[{SENTENCE_END_CHARS}]+[”’」』）)]*")
# Clause ends inside a sentence: where a long sentence may be cut into quotable pieces.
CLAUSE_END_CHARS = "，,；;：:"
CLAUSE_END_RE = re.compile(f"[{CLAUSE_END_CHARS}]")

CN_DIGITS = "零〇一二两三四五六七八九十百千万亿"

# 2020年 / 2020 年; four digits starting 19 or 20, not inside a longer number.
YEAR_RE = re.compile(r"(?<!\d)((?:19|20)\d\d)\s*年")
# 9时, 9点30分, 14:30, 上午9时: a clock time (what "几点" asks)
CLOCK_RE = re.compile(r"(?:[上下]午|早上|晚上)?(?<!\d)\d{1,2}\s*[时点](?:\s*\d{1,2}\s*分|半)?(?![\d钟])|(?<!\d)\d{1,2}[:：]\d{2}(?!\d)")
# 2020年度: the period a report covers, which a report of another year may name
PERIOD_YEAR_RE = re.compile(r"(?<!\d)((?:19|20)\d\d)\s*年度")
YEAR_EXPR_RE = re.compile(r"(?<!\d)(?:19|20)\d\d\s*年")  # the same, matched whole ("2020年")
# 5月25日 / 5月25号 / 12月
MONTH_DAY_RE = re.compile(r"(?<!\d)(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]")
MONTH_RE = re.compile(r"(?<!\d)(\d{1,2})\s*月(?!份?\s*\d)")
# Dated expressions an answer to "什么时候" may consist of.
DATE_EXPR_RE = re.compile(
    r"(?:(?:19|20)\d\d\s*年)?\d{1,2}\s*月\s*\d{1,2}\s*[日号](?:[上下]午)?"
    r"|(?:19|20)\d\d\s*年\s*\d{1,2}\s*月(?:份|上旬|中旬|下旬|底|初)?"
    r"|\d{1,2}\s*月(?:份|上旬|中旬|下旬|底|初)"
    r"|(?:19|20)\d\d\s*年(?:底|初|上半年|下半年|[一二三四]季度)?"
    r"|公元前?\s*\d{1,4}\s*年|(?<![\d.])1\d{3}\s*年(?!代)"  # 公元前25年, 1659年: a year of history
)
# Ordinals and editions: 第三届, 第3次, 第二巡察组 (the counter word is kept: 届 vs 批 differ).
ORDINAL_RE = re.compile(rf"第\s*([\d{CN_DIGITS}]+)\s*([届次批期轮个组季名位])")
# A quantity: Arabic or Chinese numerals (or a range of them: 10~30年), an optional decimal
# part, 多/余/近/约, a multiplier (万, 亿) and then the unit if any: 200万小时, 62687万美元, 100％.
_NUMERAL = rf"(?:\d+(?:[.,]\d+)*|[{CN_DIGITS}]+)"
QUANTITY_RE = re.compile(
    rf"{_NUMERAL}(?:\s*[%％]?\s*[~～至到\-—–]\s*{_NUMERAL})?\s*(?:多|余|近|约)?\s*[万亿]*(?:千(?![瓦米]))?"
    r"(?:个百分点|美元|欧元|港元|元|人次|台次|架次|平方公里|平方千米|平方米|km²|m²|公里|千米|米|亩|公顷|吨|千瓦时|千瓦|小时|分钟|周岁|标箱"
    r"|%|％|‰|倍|成|个月|[人名位家个项条次场期件套天年月日篇台辆株棵亩户所批起座栋类支份架例艘只头部列趟层岁])?"
    r"(?:以上|以下|左右)?"
)
# A rank: 第一名, 第3位, 位列22位 (the answer to 排第几).
RANK_RE = re.compile(rf"第\s*[\d{CN_DIGITS}]+\s*[名位]|(?<=位列)\s*\d+\s*位|(?<=排名)\s*\d+\s*位?|(?<=排)\s*\d+\s*[名位]|(?<=至)\s*\d+\s*位|(?<=到)\s*\d+\s*位")


def years_in(text: str) -> list[int]:
    """Distinct years written as 2020年 in the text, sorted."""
    return sorted({int(y) for y in YEAR_RE.findall(text)})


def year_mentions(text: str) -> list[int]:
    """Years written as 2020年 in the text, in order of appearance (duplicates kept)."""
    return [int(y) for y in YEAR_RE.findall(text)]


def ordinals_in(text: str) -> list[str]:
    """Ordinal expressions normalised to digits + counter word: 第三届 -> '3届'."""
    return [f"{cn_to_int(n)}{unit}" for n, unit in ORDINAL_RE.findall(text)]


def cn_to_int(text: str) -> int:
    """'三' -> 3, '十二' -> 12, '二十' -> 20, '123' -> 123; 0 for what is not a small numeral."""
    if text.isdigit():
        return int(text)
    values = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
    total, current = 0, 0
    for ch in text:
        if ch in values:
            current = values[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
        elif ch == "千":
            total += (current or 1) * 1000
            current = 0
        else:
            return 0
    return total + current


def has_date(text: str) -> bool:
    return bool(DATE_EXPR_RE.search(text))


# 请问 / 我想了解一下 / 麻烦查一下: the courtesy a user opens with, not what is asked
COURTESY_RE = re.compile(
    r"^(?:\s*(?:你好|您好|请问|请帮我查一下|请帮我查查|帮我查一下|帮我查查|麻烦查一下|麻烦问一下|麻烦问下|"
    r"我?想问一下|我?想问下|我?想了解一下|我?想了解下|我想知道|想知道)[，,：:\s]*)+"
)


def strip_courtesy(question: str) -> str:
    """The question without the polite phrases it opens with ("" stays "")."""
    rest = COURTESY_RE.sub("", question)
    return rest if rest.strip() else question


def strip_years(text: str) -> str:
    """The text without its 2020年 mentions (for a search that ignores the asked year)."""
    return YEAR_RE.sub("", text)


def replace_years(text: str, mapping: dict[int, int]) -> str:
    """The text with its 2020年 mentions of the years in `mapping` written as the mapped years
    (the question re-asked for the year a nearby fact speaks of)."""
    return YEAR_RE.sub(lambda m: f"{mapping[int(m.group(1))]}年" if int(m.group(1)) in mapping else m.group(0), text)


YEAR_NUMBER_RE = re.compile(r"^(?:19|20)\d\d$")


def is_year_number(word: str) -> bool:
    """A bare four-digit year (2020), as a tokenizer sees it before the 年 that follows."""
    return bool(YEAR_NUMBER_RE.match(word))


# Han characters including extension A and compatibility ideographs (rare names in old pages).
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Marks that end a printed line's sentence for the purpose of joining PDF lines: a line ending
# in ； or ， goes on in the next line, so ；is not among them (unlike SENTENCE_END_CHARS).
LINE_SENTENCE_END_CHARS = "。！？!?…"
# What may follow a sentence end and still belong to the sentence (quotes, brackets).
CLOSERS = "”’）)》」』】\"'"


def inside_number(text: str, i: int) -> bool:
    """True if a cut before index i would split a number such as 13.92 or 1,000."""
    if i <= 0 or i >= len(text):
        return False
    a, b = text[i - 1], text[i]
    return (a.isdigit() or a in ".．,") and (b.isdigit() or b in "0123456789.,%．")


def is_han(ch: str) -> bool:
    o = ord(ch)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF


# A timestamp as news sites print it: 2023-08-15, 2023/08/15, 2023年08月15日, 23-08-15, 202308/03,
# or without a year (08-15 19:40). Groups: year (2 or 4 digits, optional), month, day.
NUMERIC_DATE_RE = re.compile(
    r"(?<!\d)(?:((?:19|20)\d\d|\d\d)\s*[-/年.]?\s*)?(\d{1,2})\s*[-/月.]\s*(\d{1,2})(?!\d)"
)


def parse_timestamp(text: str) -> tuple[int | None, int, int] | None:
    """(year or None, month, day) of the first plausible numeric date in text, else None."""
    for m in NUMERIC_DATE_RE.finditer(text):
        year = None
        if m[1]:
            year = int(m[1]) + (2000 if len(m[1]) == 2 else 0)
        month, day = int(m[2]), int(m[3])
        if 1 <= month <= 12 and 1 <= day <= 31:
            return year, month, day
    return None
