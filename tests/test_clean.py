import re
import unicodedata
from pathlib import Path

import pytest

from rag.clean import (
    Paragraph,
    clean_paragraphs,
    clean_text,
    normalize_chars,
    remove_cjk_spaces,
    to_fullwidth_punct,
)

SEED = Path(__file__).resolve().parent.parent / "data" / "jingkai"
SEED_PAGES = sorted(SEED.glob("*.txt"))


def _content(text: str) -> str:
    """What cleaning must preserve: every character except whitespace, up to width (NFKC)."""
    return unicodedata.normalize("NFKC", re.sub(r"\s", "", text))


def test_joins_lines_broken_inside_a_sentence():
    raw = "本报讯 日前，经开区森\n防办开展全区森林防灭火培\n训。\n记者 鲁慧\n"
    assert clean_paragraphs(raw) == [
        Paragraph("本报讯日前，经开区森防办开展全区森林防灭火培训。", "text"),
        Paragraph("记者 鲁慧", "byline"),
    ]


def test_joins_across_blank_lines_when_the_sentence_goes_on():
    raw = "督导组要求,要采用多种方式提高群众对创\n\n\n\n建工作的知晓率。记者 鲁慧 文/图"
    assert clean_paragraphs(raw) == [
        Paragraph("督导组要求，要采用多种方式提高群众对创建工作的知晓率。", "text"),
        Paragraph("记者 鲁慧 文/图", "byline"),
    ]


def test_a_short_line_without_punctuation_before_a_blank_is_a_heading_not_a_fragment():
    # the price of recognising headings: a column break right after such a line is not joined
    assert clean_paragraphs("经开区建设局强化党建引领\n\n本报讯 9月份以来。") == [
        Paragraph("经开区建设局强化党建引领", "heading"),
        Paragraph("本报讯9月份以来。", "text"),
    ]


def test_paragraph_breaks_are_kept():
    raw = "第一段说完了。\n\n第二段也说完了。\n第三段。"
    assert clean_text(raw) == "第一段说完了。\n第二段也说完了。\n第三段。"


def test_titles_and_bylines_stay_separate_lines():
    raw = (
        "积极申报专项债券 助力经开快速发展\n\n"
        "本报讯 为支持全省经济和社会发展,省财政厅发行债券。\n\n"
        "记者 王赛华\n经开时报 李洪永\n\n"
        "科技赋能\n助力企业创新发展\n"
        "本报讯 近日，经开区举\n办了对接会。"
    )
    assert clean_paragraphs(raw) == [
        Paragraph("积极申报专项债券 助力经开快速发展", "heading"),
        Paragraph("本报讯为支持全省经济和社会发展，省财政厅发行债券。", "text"),
        Paragraph("记者 王赛华 经开时报 李洪永", "byline"),
        Paragraph("科技赋能 助力企业创新发展", "heading"),
        Paragraph("本报讯近日，经开区举办了对接会。", "text"),
    ]


def test_a_line_ending_in_a_comma_always_continues():
    raw = "通过以案促改问题整改，\n\n党政办以本次自查为动力。"
    assert clean_text(raw) == "通过以案促改问题整改，党政办以本次自查为动力。"


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("本 报 讯 为 落 实 国", "本报讯为落实国"),
        ("搭 建“ 政 银 企 ”三 方", "搭建“政银企”三方"),
        ("意见建议 673 条", "意见建议673条"),
        ("参会企业近 150 家", "参会企业近150家"),
        ("发布 iPhone 14 新品", "发布iPhone 14新品"),
        ("GDP  增速", "GDP增速"),
    ],
)
def test_spaces_next_to_chinese_are_removed(raw, cleaned):
    assert remove_cjk_spaces(raw) == cleaned


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("本报讯 6月1日上午,经开区", "本报讯 6月1日上午，经开区"),
        ("前程办事处:深化以案促改", "前程办事处：深化以案促改"),
        ("郑大二附院(新院区)周边", "郑大二附院（新院区）周边"),
        ("增长91%;实际使用", "增长91%；实际使用"),
        ("真的吗?好!", "真的吗？好！"),
        ("共1,000元", "共1,000元"),
        ("10:30开始", "10:30开始"),
        ("增长3.5%", "增长3.5%"),
        ("f(x, y)", "f(x, y)"),
    ],
)
def test_half_width_punctuation_in_chinese_becomes_full_width(raw, cleaned):
    assert to_fullwidth_punct(raw) == cleaned


def test_full_width_letters_and_digits_become_ascii_and_junk_goes():
    assert normalize_chars("\ufeff２０２０年ＧＤＰ增长\u200b８％\x00\r\n") == "2020年GDP增长8％\n"


def test_headline_space_is_kept_but_letter_spacing_is_not():
    assert clean_text("郑大二附院周边道路 9月底建成通车") == "郑大二附院周边道路 9月底建成通车"
    assert clean_text("金 融 机 构 进 园 区") == "金融机构进园区"


@pytest.mark.parametrize("path", SEED_PAGES, ids=lambda p: p.name[:3])
def test_cleaning_never_drops_or_alters_a_content_character(path):
    raw = path.read_text(encoding="utf-8")
    cleaned = clean_text(raw)
    assert _content(cleaned) == _content(raw)
    numbers = r"\d+(?:[.,:]\d+)*"
    nfkc = unicodedata.normalize
    assert re.findall(numbers, nfkc("NFKC", cleaned)) == re.findall(numbers, nfkc("NFKC", raw))


@pytest.mark.parametrize("path", SEED_PAGES, ids=lambda p: p.name[:3])
def test_seed_pages_have_no_broken_lines_or_cjk_spaces_left(path):
    paragraphs = clean_paragraphs(path.read_text(encoding="utf-8"))
    for p in paragraphs:
        assert "\n" not in p.text
        if p.kind == "text":
            assert not re.search(r"[\u4e00-\u9fff]\s+[\u4e00-\u9fff]", p.text), p.text
            assert not re.search(r"[\u4e00-\u9fff][,:;?!]|[,:;?!][\u4e00-\u9fff]", p.text), p.text


def test_known_repairs_on_seed_pages():
    text_001 = clean_text((SEED / "001_5adc3b2768a65fa1.txt").read_text(encoding="utf-8"))
    assert "本报讯为落实国家、省、市小微企业融资协调工作机制，解决小微企业融资难" in text_001
    assert "参会企业近150家，参与银行机构近20家。" in text_001
    text_000 = clean_text((SEED / "000_6df37518f25c994b.txt").read_text(encoding="utf-8"))
    assert "共牵头征集对区党工委的意见建议673条。" in text_000
    assert "截至目前已完成544条，完成率100％。" in text_000


def test_invariant_holds_on_random_text():
    import random

    rng = random.Random(20240601)
    alphabet = list("本报讯经开区记者鲁慧文/图。，、；：！？…“”（）,.:;()?!%0123456789１２ＡＢab \n\n\t\u3000\ufeff")
    for _ in range(500):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        cleaned = clean_text(raw)
        assert _content(cleaned) == _content(raw.replace("\ufeff", "")), repr(raw)
        for p in clean_paragraphs(raw):
            assert p.text and p.text == p.text.strip() and "\n" not in p.text
