import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from rag.clean import is_byline
from rag.load import load_corpus
from rag.records import Article, Page
from rag.segment import segment_page

SEED = Path(__file__).resolve().parent.parent / "data" / "jingkai"

TITLES = {
    "000": [
        "紧抓能力作风建设 全面提升工作质效",
        "牵总抓细强责任 成果转化筑担当",
        "弘扬廉洁文化 涵养清风正气",
        "创新政府采购新模式 打造高效廉洁交易平台",
        "加强雨后绿化养护 促进苗木生长",
        "用好专项监督检查“组合拳” 当好优化营商环境“护航员”",
    ],
    "001": [
        "培训实操齐上阵 提高应急业务技能",
        "经开区建设局强化党建引领 以巡察整改新成效推动建设工作上台阶",
        "实事办到群众心坎上 赠送锦旗以致谢",
        "金融机构进园区 惠企助企零距离",
        "科技赋能 助力企业创新发展",
    ],
    "002": [
        "市委督查室调研经开区“三个一批”项目建设情况",
        "经开区宣传部（文明办）开展文明城市创建实地督导",
        "经开区领导调研党建引领网格化基层治理工作",
        "经开区党工委第一巡察组巡察经济发展局进驻动员会召开",
        "经开区党工委第一巡察组召开巡察财政局（审计局）党支部进驻动员会",
        "城市精细化管理工作推进会召开",
        "经开区党工委第三巡察组巡察开放办工作动员会召开",
        "郑州经开发布（微信）被评选为“第一季度政务新媒体优秀账号”",
        "经开区首次开展“互联网+全民义务植树”活动",
    ],
    "003": [
        "经开区领导带队开展综合调研 用细致服务助力企业发展",
        "郑大二附院周边道路 9月底建成通车",
        "积极申报专项债券 助力经开快速发展",
        "区统计局签订2020年 个人目标责任书",
        "打造农业农村发展新优势 经开区建设智慧乡村",
        "党建连连看 前程办事处：深化以案促改 护航脱贫攻坚",
        "明湖办事处：大力营造比学赶超工作氛围",
    ],
    "004": [
        "经开区召开2021年度党（工）委书记抓基层党建工作述职评议会 以党建引领推动各项重点任务落实",
        "经开区党工委召开党史学习教育专题民主生活会 切实营造风清气正政治生态",
        "2021年国家级经济技术开发区考核出炉 郑州经开区位列22位",
        "扫雪除冰保畅通 多措并举暖人心",
        "经开区召开省市重点项目规划设计方案专题会 打造精品工程 推进项目建设进度",
    ],
}


@pytest.fixture(scope="module")
def pages() -> dict[str, Page]:
    return {p.source[:3]: p for p in load_corpus(SEED).pages}


@pytest.fixture(scope="module")
def articles(pages) -> dict[str, list[Article]]:
    return {key: segment_page(page) for key, page in pages.items()}


def _by_title(arts: list[Article], title: str) -> Article:
    (found,) = [a for a in arts if a.title == title]
    return found


def _chars(text: str) -> Counter[str]:
    return Counter(unicodedata.normalize("NFKC", re.sub(r"\s", "", text)))


@pytest.mark.parametrize("key", sorted(TITLES))
def test_article_count_and_titles(articles, key):
    assert [a.title for a in articles[key]] == TITLES[key]


@pytest.mark.parametrize("key", sorted(TITLES))
def test_article_records_are_complete(articles, pages, key):
    page = pages[key]
    arts = articles[key]
    assert [a.order for a in arts] == list(range(len(arts)))
    assert len({a.id for a in arts}) == len(arts)
    for a in arts:
        assert a.body.strip()
        assert a.source == page.source
        assert a.year == page.year
        assert a.id == Article.make_id(a.source, a.title, a.body)
        assert a.byline == "" or a.byline not in a.body
        assert not any(is_byline(line) for line in a.body.split("\n"))


@pytest.mark.parametrize("key", sorted(TITLES))
def test_no_content_character_is_lost(articles, pages, key):
    raw = _chars(pages[key].text)
    got = _chars("".join(a.title + a.body + a.byline for a in articles[key]))
    covered = sum((raw & got).values()) / sum(raw.values())
    assert covered >= 0.98
    assert got - raw == Counter()  # nothing invented or duplicated


def test_page_003(articles):
    bonds = _by_title(articles["003"], "积极申报专项债券 助力经开快速发展")
    assert "9.97亿元" in bonds.body and "13.92亿元" in bonds.body
    assert bonds.date == "2020-05-25"  # 本报讯 ... 省财政厅于5月25日发行: the first date in the lead
    road = _by_title(articles["003"], "郑大二附院周边道路 9月底建成通车")
    assert road.date == "2020-06-03"
    assert road.byline == ""
    first = articles["003"][0]
    assert first.byline == "记者 王赛华 通讯员 陈漫艺"
    assert first.date == "2020-06-01"
    assert "另讯，6月1日上午" in articles["003"][4].body  # 另讯 stays in its article


def test_page_004(articles):
    review = _by_title(articles["004"], "2021年国家级经济技术开发区考核出炉 郑州经开区位列22位")
    assert "1202亿元" in review.body
    assert review.date == "2022-01"  # 近日: no day in the lead, the page's sidecar month
    assert review.byline == "记者 王赛华"
    assert [a.date for a in articles["004"]] == [
        "2022-01-26", "2022-01-20", "2022-01", "2022-01-24", "2022-01-21",
    ]


def test_page_002(articles):
    media = _by_title(articles["002"], "郑州经开发布（微信）被评选为“第一季度政务新媒体优秀账号”")
    assert "88个政务新媒体中，郑州经开发布（微信）日常运维较好" in media.body
    assert articles["002"][0].date == "2023-03-16"
    assert articles["002"][0].byline == "记者 鲁慧 文/图"
    assert articles["002"][0].body.endswith("对经开区营商环境进行深入探讨。")


def test_page_001_titles_printed_after_the_bodies(articles):
    finance = _by_title(articles["001"], "金融机构进园区 惠企助企零距离")
    assert finance.body.startswith("本报讯为落实国家、省、市小微企业融资协调工作机制")
    assert "参会企业近150家" in finance.body
    assert finance.byline == "记者 鲁慧 通讯员 刘晨宇 李世浩 文/图"
    banner = _by_title(articles["001"], "实事办到群众心坎上 赠送锦旗以致谢")
    assert "一面锦旗送至郑州经开区综合行政执法局" in banner.body
    assert "小微企业" not in banner.body
    science = _by_title(articles["001"], "科技赋能 助力企业创新发展")
    assert science.body.startswith("本报讯近日，经开区举办了")
    assert all(a.date == "" for a in articles["001"])  # no M月D日 after 本报讯, no sidecar date


def test_page_000_special_reports_and_late_titles(articles):
    procurement = _by_title(articles["000"], "创新政府采购新模式 打造高效廉洁交易平台")
    assert "1361.26万元" in procurement.body
    assert procurement.body.startswith("经开区财政局（审计局）\n本报讯今年以来")
    assert procurement.byline == "记者 王赛华 经开时报 李洪永"
    greening = _by_title(articles["000"], "加强雨后绿化养护 促进苗木生长")
    assert "本报讯“夜来秋雨后，秋气飒然新”" in greening.body
    assert "秋肥是金" in greening.body
    assert "营商环境" not in greening.body
    assert greening.byline == "记者 王赛华 经开时报 李洪永 通讯员 李磊 文/图"
    office = _by_title(articles["000"], "牵总抓细强责任 成果转化筑担当")
    assert office.body.startswith("经开区党政办公室\n近期，经开区党政办公室")
    watchdog = articles["000"][5]
    assert watchdog.body.startswith("把优化营商环境作为专题")  # displaced column, merged
    assert watchdog.body.endswith("强化廉洁教育 以新风气提升教育质效")


def test_title_after_body_is_given_to_the_untitled_reports_in_order():
    text = (
        "本报讯 第一篇正文。\n记者 甲乙\n\n"
        "本报讯 第二篇正文。\n记者 丙丁\n\n"
        "第一篇标题\n\n第二篇标题\n\n第三篇标题\n\n"
        "本报讯 3月5日，第三篇正文。\n"
    )
    page = Page(source="x.txt", text=text, encoding="utf-8", sha256="0", year=2023)
    arts = segment_page(page)
    assert [(a.title, a.body, a.byline, a.date) for a in arts] == [
        ("第一篇标题", "本报讯第一篇正文。", "记者 甲乙", ""),
        ("第二篇标题", "本报讯第二篇正文。", "记者 丙丁", ""),
        ("第三篇标题", "本报讯3月5日，第三篇正文。", "", "2023-03-05"),
    ]


def test_sidecar_date_fills_in_and_december_belongs_to_the_year_before():
    text = "甲标题\n\n本报讯 近日，甲事。\n\n乙标题\n\n本报讯 12月30日，乙事。"
    page = Page("y.txt", text, "utf-8", "0", year=2022, date="2022-01-05")
    assert [a.date for a in segment_page(page)] == ["2022-01-05", "2021-12-30"]
    no_year = Page("z.txt", text, "utf-8", "0")
    assert [(a.date, a.year) for a in segment_page(no_year)] == [("", None), ("", None)]


def test_plain_text_without_markers_is_one_untitled_article():
    page = Page("n.md", "第一段。\n\n第二段。", "utf-8", "0", year=2020)
    (art,) = segment_page(page)
    assert (art.title, art.body) == ("", "第一段。\n第二段。")
