"""The answerer's steps on hand-made articles: analysis, alignment, decision, composition.

Fast tier: a real in-memory BM25 store and real jieba, no embedding model. The hits are made by
hand, so each test fixes exactly what the answerer is shown.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from rag.answer import AnswerParams, ExtractiveAnswerer, classify
from rag.answer.leads import quantities
from rag.answer.align import _indicators_met
from rag.answer.analysis import entities_in, indicators_in
from rag.answer.compose import lead_is_quoted
from rag.answer.leads import modifier_lead, number_lead, quoted_lead
from rag.chunk import chunk_article
from rag.followup import standalone_question
from rag.profile import load_profile
from rag.records import Article, Hit
from rag.store import LocalStore
from rag.tokenize import tokenize

PROFILE = load_profile("jingkai")

BONDS = Article(
    id="bonds",
    title="积极申报专项债券 助力经开快速发展",
    body=(
        "本报讯为支持全省经济和社会发展，省财政厅于5月25日发行2020河南省政府专项债券409亿元。\n"
        "截至目前，全区2020年已累计发行5个项目13.92亿元，是2019年专项债券全年发行额1.86倍。"
    ),
    source="003.txt",
    date="2020-05-25",
    year=2020,
)
OFFICES = Article(
    id="offices",
    title="党建连连看",
    body=(
        "前程办事处召开扶贫领域以案促改集中行动动员大会，会上通报了3起扶贫领域典型案例。\n"
        "祥云办事处组织开展“亮赛比”观摩活动，对辖区9个社区党建工作进行全面检查。"
    ),
    source="003.txt",
    date="2020-06-01",
    year=2020,
)
MEETINGS = Article(
    id="meetings",
    title="经开区召开第三届职工运动会",
    body="本报讯3月13日，经开区第三届职工运动会开幕，共有1200名职工参加。\n督导组先后到农贸市场、主次干道、公共广场、建筑工地等点位督导检查。",
    source="002.txt",
    date="2023-03-13",
    year=2023,
)
PEOPLE = Article(
    id="people",
    title="城市精细化管理工作推进会召开",
    body="本报讯3月13日，经开区党工委委员、管委会副主任张磊主持召开城市精细化管理工作推进会。",
    source="002.txt",
    date="2023-03-13",
    year=2023,
)
ARTICLES = [BONDS, OFFICES, MEETINGS, PEOPLE]


@pytest.fixture(scope="module")
def store() -> LocalStore:
    s = LocalStore(dim=1)
    chunks = [c for a in ARTICLES for c in chunk_article(a)]
    s.add(ARTICLES, chunks, np.zeros((len(chunks), 1), dtype=np.float32), [tokenize(c.indexed_text) for c in chunks])
    return s


@pytest.fixture(scope="module")
def answerer(store) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(store, PROFILE)


def hits_for(store: LocalStore, *article_ids: str) -> list[Hit]:
    """One hit per article, in the order given, on the article's first chunk."""
    out = []
    for rank, aid in enumerate(article_ids, 1):
        chunk = next(c for c in store.chunks if c.article_id == aid)
        out.append(Hit(chunk=chunk, score=1.0 / rank, rank=rank))
    return out


def test_number_answer_leads_with_the_figure_and_its_unit(answerer, store):
    a = answerer.answer("经开区2020年专项债发行了多少", hits_for(store, "bonds", "offices"))
    assert not a.abstained
    assert a.lead == "13.92亿元"
    assert a.answer.startswith("13.92亿元[1]\n")
    assert a.citations[0].article_id == "bonds"
    assert lead_is_quoted(a.lead, [c.quote for c in a.citations])
    for c in a.citations:
        assert store.article(c.article_id).body[c.start : c.end] == c.quote


def test_another_year_is_a_nearby_fact_labelled_with_its_own_year(answerer, store):
    hits = hits_for(store, "bonds")
    a = answerer.answer("经开区2022年专项债发行了多少", hits, yearless_hits=hits)
    assert a.abstained
    assert a.answer.startswith("资料中没有2022年的数据；最接近的是2020年的资料")
    assert a.nearby == {"reason": "year", "asked": "2022年", "found": "2020年"}
    # either 2020 issuance of the article is a fair nearby fact; the quote must hold its figure
    assert a.citations[0].article_id == "bonds"
    assert "13.92亿元" in a.citations[0].quote or "409亿元" in a.citations[0].quote


def test_another_office_of_the_same_kind_is_a_nearby_fact(answerer, store):
    a = answerer.answer("明湖办事处扶贫领域以案促改动员大会通报了几起典型案例", hits_for(store, "offices"))
    assert a.abstained
    assert a.nearby and a.nearby["reason"] == "entity"
    assert a.nearby["asked"] == "明湖办事处" and a.nearby["found"] == "前程办事处"
    assert "3起" in a.answer  # the nearby fact is shown, labelled


def test_the_asked_office_answers(answerer, store):
    a = answerer.answer("前程办事处扶贫领域以案促改动员大会通报了几起典型案例", hits_for(store, "offices"))
    assert not a.abstained and a.lead == "3起"


def test_another_ordinal_is_a_nearby_fact(answerer, store):
    a = answerer.answer("经开区第四届职工运动会有多少名职工参加", hits_for(store, "meetings"))
    assert a.abstained
    assert a.nearby and a.nearby["reason"] == "ordinal" and a.nearby["found"] == "第3届"


def test_person_lead_is_the_name(answerer, store):
    a = answerer.answer("谁主持召开了城市精细化管理工作推进会", hits_for(store, "people"))
    assert not a.abstained and a.lead == "张磊"


def test_list_lead_gathers_the_items(answerer, store):
    a = answerer.answer("督导组去了哪些点位督导检查", hits_for(store, "meetings"))
    assert not a.abstained
    assert a.lead.split("、")[:2] == ["农贸市场", "主次干道"]
    assert "建筑工地" in a.lead


def test_no_hits_abstains_without_quoting(answerer):
    a = answerer.answer("经开区有多少个5G基站", [])
    assert a.abstained and a.citations == [] and a.answer.startswith("资料中没有")


def test_off_topic_question_abstains(answerer, store):
    a = answerer.answer("火星上有多少座火山", hits_for(store, "bonds", "offices"))
    assert a.abstained


@pytest.mark.parametrize(
    "question,slot",
    [
        ("经开区2020年专项债发行多少", "number"),
        ("郑大二附院周边道路什么时候通车", "date"),
        ("谁主持了会议", "person"),
        ("樊福太是什么职务", "role"),
        ("银行进入了哪些园区", "list"),
        ("是否召开了推进会", "yesno"),
        ("如何优化营商环境", "description"),
        ("督导组去了哪里", "place"),
    ],
)
def test_slots(question, slot):
    assert classify(question) == slot


def test_constraints_of_a_question():
    assert entities_in("明湖办事处组织开展了什么活动", PROFILE) == ["明湖办事处"]
    assert "经开区" not in entities_in("经开区2023年财政收入是多少", PROFILE)
    assert indicators_in("经开区2023年财政收入是多少", PROFILE) == ["财政收入"]
    assert indicators_in("经开区人口多少", PROFILE) == []  # 人口 asks for a head count (unit 人)


def test_quantities_skip_years_dates_and_ordinals():
    text = "2020年5月25日，第三届大会上，全区累计发行5个项目13.92亿元，增长14.1%。"
    assert [m.group(0) for m in quantities(text)] == ["5个", "13.92亿元", "14.1%"]


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["13.92亿元", "5个项目", "共计", "2020年", "，", "发行", "增长8%", "征集673条"]), min_size=1, max_size=8))
def test_a_number_lead_is_always_cut_from_its_text(parts):
    from rag.answer import analysis as an

    text = "".join(parts)
    q = an.analyze("发行了多少", lambda toks: {}, 1.0, PROFILE, AnswerParams())
    lead = number_lead(q, text, PROFILE)
    assert lead == "" or lead in text


def test_follow_up_rules():
    assert standalone_question("那2019年呢？", ["经开区2020年专项债发行多少"]) == "经开区2019年专项债发行多少"
    assert standalone_question("李小虎是谁", ["经开区2020年专项债发行多少"]) == "李小虎是谁"
    assert standalone_question("由哪个单位负责呢", ["郑大二附院周边道路什么时候通车"]).startswith("郑大二附院周边道路")


@pytest.mark.parametrize(
    ("question", "text", "lead"),
    [
        ("志愿服务累计服务时长有多少小时", "累计发动志愿者35万人次，提供服务时长200万小时。", "200万小时"),
        ("专项债券的期限是多少年", "发行专项债券（20~26期）409亿元，期限10~30年。", "10~30年"),
        ("这一批一共发了多少专项债", "省财政厅发行2020河南省政府专项债券（20~26期）409亿元，期限10~30年。", "409亿元"),
        ("2020年专项债项目申请金额是多少", "共申报2020年专项债券项目58个，申请金额127.58亿元。", "127.58亿元"),
        ("地区生产总值同比增长多少", "2020年，经开区地区生产总值1202亿元，同比增长13.5%；", "13.5%"),
        ("完成率多少", "截至目前已完成544条，完成率100％。", "100％"),
        ("实际使用外资是多少", "实际使用外资和外商投资企业再投资62687万美元，同比增长6.7%。", "62687万美元"),
        ("督导组一共跑了多少个点位", "督导组先后到农贸市场、社区等近30个点位进行实地查看。", "30个"),
        ("中型企业的PMI为多少", "大型企业PMI为50.3%，中型企业PMI为49.0%，小型企业PMI为47.4%。", "49.0%"),
        ("在芝加哥市的枪击事件中，有多少人死亡？", "芝加哥市发生多起致命枪击案，目前已造成至少29人中枪、6人死亡。", "6人"),
        ("死亡人数可能上升至多少人？", "毛伊岛大火死亡人数已上升至99人。", "99人"),
        ("报道数量在全市排第几", "报道数量位居全市16个开发区、区县（市）第一名。", "第一名"),
        ("考核郑州经开区排第几", "郑州经开区排名由第26位跃升至22位。", "22位"),
        ("巡察开放办的是第几巡察组", "经开区党工委第三巡察组巡察开放办工作动员会召开。", "第三巡察组"),
    ],
)
def test_number_lead_is_the_asked_quantity(answerer, question, text, lead):
    """The figure of the asked unit, rate, rank or clause, whole (multiplier, range, ％), not
    the first number of the sentence nor a bracketed label."""
    assert number_lead(answerer.analyze(question), text, PROFILE) == lead


@pytest.mark.parametrize(
    ("question", "text", "lead"),
    [
        ("雨后清除杂草遵循什么原则", "本着“除早、除小”的原则，积极开展杂草清除工作。", "除早、除小"),
        ("政府采购执行的是什么原则", "将采购工作与预算管理同步衔接，严格执行“无预算、不采购”，将资金拨付进行前置审核。", "无预算、不采购"),
        ("建设局要把“问题清单”变成什么清单", "把一个个“问题清单”变成“服务清单”，变成企业和群众的“满意清单”。", "服务清单"),
        ("推出的云课堂叫什么", "联合区纪检监察工委推出“指尖清风”云课堂。", "指尖清风"),
        ("开展了什么培训", "本着“除早、除小”的原则，积极开展杂草清除工作。", ""),
        ("整改是为了给全区什么建设营造安全稳定的环境", "紧紧围绕全市“四个高地”建设目标，为全区“三区一高地”建设营造安全稳定的环境。", "三区一高地"),
    ],
)
def test_a_what_question_leads_with_the_quoted_term_that_names_it(answerer, question, text, lead):
    assert quoted_lead(answerer.analyze(question), text, PROFILE, AnswerParams()) == lead


@pytest.mark.parametrize(
    ("question", "text", "lead"),
    [
        ("网格化基层治理要打造什么样的三级平台？", "进一步优化软件开发，做到数字赋能，打造实用、管用、好用的三级平台。", "实用、管用、好用"),
        ("要打造什么样的营商环境", "全力打造市场化、法治化、国际化的营商环境。", "市场化、法治化、国际化"),
        ("要打造什么样的三级平台", "为网格化治理“管得住、服务好”奠定坚实的数据基础。", ""),
        ("要打造什么样的三级平台", "推进三级平台建设。", ""),
    ],
)
def test_a_what_kind_question_leads_with_the_modifier_of_the_asked_noun(answerer, question, text, lead):
    """什么样的X asks for what is printed before 的X; a quote elsewhere, after another word of the
    question (治理“管得住、服务好”), is not that answer."""
    analysis = answerer.analyze(question)
    assert modifier_lead(analysis, text) == lead
    assert quoted_lead(analysis, text, PROFILE, AnswerParams()) == ""


def test_a_person_lead_is_a_titled_name_never_the_reporter(answerer):
    from rag.answer.leads import person_lead

    q = answerer.analyze("城市精细化管理工作推进会是谁主持的")
    assert person_lead(q, "经开区党工委委员、管委会副主任张磊主持召开城市精细化管理工作推进会", PROFILE) == "张磊"
    assert person_lead(q, "城市精细化管理工作推进会召开。（记者 王赛华）", PROFILE) == ""


def test_a_list_lead_is_the_run_of_items_the_question_asks_about(answerer):
    from rag.answer.leads import list_lead

    q = answerer.analyze("网格化治理调研去了哪几个办事处")
    text = "郭宏力带队到明湖、潮河、前程办事处开展网格化治理调研，要求做到底数清、情况明、服务好。"
    assert list_lead(q, [text], AnswerParams(), PROFILE) == "明湖、潮河、前程办事处"
    prose = "要加快建设进度、切实做好群众工作、全面提升服务质量和水平"
    assert list_lead(answerer.analyze("要做好哪些工作"), [prose], AnswerParams(), PROFILE) == ""


@pytest.mark.parametrize(
    ("question", "text", "lead"),
    [
        (
            "宣传部围绕廉洁文化搞了哪些主题文化活动？",
            "开展“清风盈门·文明齐家”主题文明家庭评选、“悦读·阅廉”主题阅读、“清风廉影”主题电影展播等系列文化活动，持续丰富廉洁文化产品。",
            "清风盈门·文明齐家、悦读·阅廉、清风廉影",
        ),
        ("财政局后续准备申报哪几类专项债？", "后续项目将按照三部委要求,申报棚改类专项债和其他有收益专项债,争取更多项目入库。", "棚改类专项债、其他有收益专项债"),
        ("财政局后续准备申报哪几类专项债？", "与经发、房管、国土、规划及申报主体等责任部门积极沟通对接。", "与经发、房管、国土、规划及申报主体"),
    ],
)
def test_a_list_of_quoted_names_or_of_two_joined_items_is_a_list_lead(answerer, question, text, lead):
    """Items printed as quotes (“A”主题…、“B”主题…) are the quoted names; two items joined by 和 that
    both name the asked noun are two items; a run that names neither stays as before."""
    from rag.answer.leads import items_name_head, list_lead

    analysis = answerer.analyze(question)
    assert list_lead(analysis, [text], AnswerParams(), PROFILE) == lead
    assert items_name_head(analysis, lead, text, PROFILE) == ("经发" not in lead)


def test_list_items_end_at_the_asked_noun_and_start_after_the_questions_words(answerer):
    from rag.answer.leads import list_lead

    q = answerer.analyze("纪检监察工委督促哪两个局梳理惠企政策")
    text = "持续开展优化营商环境监督治理，督促区工信局、科技局梳理近2年来各项惠企利企政策落实及科技人才落户情况。"
    assert list_lead(q, [text], AnswerParams(), PROFILE) == "区工信局、科技局"
    q = answerer.analyze("专题会集中研究了哪些项目")
    text = "会议集中研究了郑州恒海科技产业园、鼎菱跨境综合产业园等重点项目情况。"
    assert list_lead(q, [text], AnswerParams(), PROFILE) == "郑州恒海科技产业园、鼎菱跨境综合产业园"


def test_the_nearby_threshold_is_read_from_the_model_file(tmp_path):
    import json as _json

    from rag.answer.decide import MODEL_DIR, load_model

    data = _json.loads((MODEL_DIR / "decision.json").read_text(encoding="utf-8"))
    data["nearby_threshold"] = 0.2
    path = tmp_path / "m.json"
    path.write_text(_json.dumps(data), encoding="utf-8")
    model = load_model(str(path))
    assert model.nearby_bar == 0.2 and model.threshold == data["threshold"]
    data.pop("nearby_threshold")
    path2 = tmp_path / "m2.json"
    path2.write_text(_json.dumps(data), encoding="utf-8")
    assert load_model(str(path2)).nearby_bar == data["threshold"]


def test_a_per_capita_base_is_no_population_figure(answerer):
    from rag.answer.align import unit_fits

    text = "截至2020年末，经开区每万人口发明专利拥有量为95件。"
    population = answerer.analyze("经开区人口多少")
    assert population.unit == "人"
    assert not unit_fits(population, text, PROFILE)  # 95件 is no head count, 万人 of 每万人口 no quantity
    patents = answerer.analyze("经开区每万人口发明专利拥有量是多少")
    assert patents.unit == "" and number_lead(patents, text, PROFILE) == "95件"


def report(id: str, title: str, body: str, date: str = "2022-01-10") -> Article:
    return Article(id=id, title=title, body=body, source="004.txt", date=date, year=int(date[:4]))


ASSESSMENT = report(
    "assessment",
    "2021年国家级经济技术开发区考核出炉",
    "本报讯近日，商务部完成了2021年国家级经开区综合发展水平考核评价工作，对217家国家级经开区2020年度综合发展水平情况进行考核评价。"
    "郑州经开区排名由第26位跃升至22位。",
)
OFFICE_REPORT = report(
    "office-report",
    "紧抓能力作风建设 全面提升工作质效",
    "近期，经开区党政办公室以“能力作风建设年”活动为契机，提站位，强意识，统筹协调相关各项工作。\n会前共牵头征集对区党工委的意见建议673条。",
)

def answerer_over(*articles: Article) -> ExtractiveAnswerer:
    """An answerer over an in-memory BM25 store of just these articles."""
    s = LocalStore(dim=1)
    chunks = [c for a in articles for c in chunk_article(a)]
    s.add(list(articles), chunks, np.zeros((len(chunks), 1), dtype=np.float32), [tokenize(c.indexed_text) for c in chunks])
    return ExtractiveAnswerer(s, PROFILE)


@pytest.fixture(scope="module")
def report_answerer() -> ExtractiveAnswerer:
    return answerer_over(ASSESSMENT, OFFICE_REPORT)


def _alignment_of(answerer: ExtractiveAnswerer, question: str, article_id: str, needle: str):
    hits = hits_for(answerer.store, article_id)
    aligned = answerer.alignments(answerer.analyze(question), hits)
    return next(a for a in aligned if needle in a.span.text and a.span.sentences == 1)


def test_a_report_period_is_not_another_year(report_answerer):
    """A 2021 assessment of the 2020年度 figures answers for 2021, in the sentence and after it."""
    a = _alignment_of(report_answerer, "商务部2021年国家级经开区考核一共评价了多少家经开区", "assessment", "217家")
    assert a.year == "match" and not a.conflicts
    a = _alignment_of(report_answerer, "2021年国家级经开区考核郑州经开区排第几", "assessment", "22位")
    assert a.year == "match" and a.found_year == 2021


def test_an_office_named_in_the_lead_is_met_in_its_later_sentences(report_answerer):
    a = _alignment_of(report_answerer, "党政办一共征集了多少条对区党工委的意见建议", "office-report", "673条")
    assert a.entity == "match"
    assert a.features["entity_before"] == 1.0 and a.features["entity_missing"] == 0.0


def test_a_clock_question_needs_a_clock_time(answerer):
    from rag.answer.align import slot_fits
    from rag.answer.leads import date_lead

    q = answerer.analyze("政务服务大厅周末几点上班")
    assert q.slot == "date"
    assert not slot_fits(q, "以“体验式”监督的方式到辖区政务服务大厅开展政务服务专项监督检查。", PROFILE)
    text = "政务服务大厅周末上午9时至12时正常办公。"
    assert slot_fits(q, text, PROFILE)
    assert date_lead(q, text) in ("上午9时", "12时")



@pytest.mark.parametrize("polite", ["请问，", "我想了解一下，", "麻烦查一下，", "您好，请问"])
def test_a_polite_opening_changes_nothing_the_answerer_looks_for(answerer, polite):
    """The generated near misses open with such phrases and their twins do not: left in, the
    phrase's words were "missing" evidence and taught the model to refuse polite questions."""
    plain = answerer.analyze("经开区2020年专项债发行了多少")
    asked = answerer.analyze(polite + "经开区2020年专项债发行了多少")
    assert asked == plain


INSPECTION = report(
    "inspection",
    "经开区党工委第一巡察组巡察经济发展局进驻动员会召开",
    "本报讯3月13日，经开区党工委第一巡察组巡察经济发展局进驻动员会召开。",
    date="2023-03-13",
)
GDP = report(
    "gdp",
    "郑州经开区位列22位",
    "2020年，经开区地区生产总值1202亿元，同比增长13.5%；\n截至目前，全区2020年已累计发行5个项目13.92亿元，是2019年专项债券全年发行额1.86倍。",
)


@pytest.fixture(scope="module")
def office_answerer() -> ExtractiveAnswerer:
    return answerer_over(INSPECTION, GDP)


def test_an_office_jieba_cuts_into_parts_is_one_entity():
    """投资 + 促进 + 局: a bare suffix joins the words before it; a verb further off does not."""
    assert entities_in("第一巡察组巡察投资促进局的进驻动员会哪天开的", PROFILE) == ["投资促进局"]
    assert entities_in("第一巡察组巡察科技人才局的进驻动员会哪天开的", PROFILE) == ["科技人才局"]
    assert entities_in("北京市举办了什么活动", PROFILE) == ["北京市"]  # 举办 is a verb, not an office


def test_another_bureau_is_a_conflict_and_the_nearby_fact(office_answerer):
    """A one-character suffix (局) still names a rival when the analysis reads it as an office."""
    a = _alignment_of(office_answerer, "第一巡察组巡察投资促进局的进驻动员会哪天开的", "inspection", "3月13日")
    assert a.entity == "conflict" and a.found_entity == "经济发展局"
    answer = office_answerer.answer("第一巡察组巡察投资促进局的进驻动员会哪天开的", hits_for(office_answerer.store, "inspection"))
    assert answer.abstained and answer.nearby == {"reason": "entity", "asked": "投资促进局", "found": "经济发展局"}
    assert "3月13日" in answer.answer
    ok = office_answerer.answer("第一巡察组巡察经济发展局的进驻动员会哪天开的", hits_for(office_answerer.store, "inspection"))
    assert not ok.abstained and ok.lead == "3月13日"


def test_a_comparison_year_met_does_not_cover_the_year_replaced():
    """2021 vs 2019 asked, the sentence compares 2020 with 2019: the 2021 side is another year."""
    answerer = answerer_over(GDP)
    a = _alignment_of(answerer, "2021年已发行的专项债是2019年全年的几倍", "gdp", "1.86倍")
    assert a.year == "conflict" and a.found_year == 2020
    assert _alignment_of(answerer, "2020年已发行的专项债是2019年全年的几倍", "gdp", "1.86倍").year == "match"


def test_a_place_the_page_never_names_rules_the_answer_out(office_answerer):
    """中牟县 asked, only 经开区's figure printed: abstain and show it as the nearby fact."""
    a = office_answerer.answer("中牟县2020年地区生产总值是多少", hits_for(office_answerer.store, "gdp"))
    assert a.abstained
    assert a.nearby == {"reason": "entity_absent", "asked": "中牟县", "found": ""}
    assert a.answer.startswith("资料中没有关于“中牟县”的这项内容") and "1202亿元" in a.answer
    assert not office_answerer.answer("经开区2020年地区生产总值是多少", hits_for(office_answerer.store, "gdp")).abstained


def test_two_items_joined_by_a_word_fit_a_which_two_question(answerer):
    """A list of two is often written with 和, not 、; only a question that asks for items
    (哪几类, 哪两个) lets such a sentence fit."""
    from rag.answer.align import slot_fits

    joined = "后续项目将申报棚改类专项债和其他有收益专项债。"
    which = answerer.analyze("财政局后续准备申报哪几类专项债？")
    assert which.slot == "list" and slot_fits(which, joined, PROFILE)
    listed = answerer.analyze("义务植树都种了些什么树")
    assert listed.slot == "list" and not slot_fits(listed, joined, PROFILE)


def test_an_indicator_named_in_the_figures_clause_is_a_feature():
    """审减率为14.1%: the measured thing sits in the clause of the figure; 节约资金 in none."""
    audit = report("audit", "创新政府采购新模式", "今年以来，报审总金额1831.6万元，经审核后共核减258.261万元，审减率为14.1%。")
    answerer = answerer_over(audit)
    rate = _alignment_of(answerer, "政府采购报价审核的审减率是多少", "audit", "14.1%")
    assert rate.features["indicator_clause"] == 1.0
    other = _alignment_of(answerer, "政府采购节约资金多少", "audit", "14.1%")
    assert other.features["indicator_clause"] == 0.0


def test_the_outcome_of_an_action_is_what_a_number_question_counts():
    """…经开区发行成功了多少: 发行成功 is the indicator; a noun head still wins where there is one."""
    assert indicators_in("5月25日那批省专项债里，经开区发行成功了多少？", PROFILE) == ["发行成功"]
    assert indicators_in("政府采购报价审核的审减率是多少", PROFILE) == ["审减率"]


def test_an_amount_added_is_measured_by_the_change_and_what_changed():
    """贷款新增了多少 asks for the loans added (新增3.8万亿元), which a balance (余额27.4万亿元) is not."""
    assert indicators_in("2023年上半年中国银行业对普惠型小微企业贷款新增了多少？", PROFILE) == ["贷款", "新增"]
    assert indicators_in("经开区新增了多少家市级文明单位", PROFILE) == ["文明单位"]
    assert indicators_in("实际使用外资同比增长多少", PROFILE) == ["外资"]


def test_an_area_in_square_kilometres_answers_how_large():
    """面积有多大 asks 平方米; 0.304平方公里 and 1.601 km² are areas of the same measure."""
    park = report("park", "公园", "公园里有一座小型的火车博物馆。它的面积约为0.304平方公里。该区土地面积1.601 km²。")
    answerer = answerer_over(park)
    a = _alignment_of(answerer, "公园的面积有多大？", "park", "0.304平方公里")
    assert a.features["slot_fit"] == 1.0 and a.features["unit_fit"] == 1.0
    assert [m.group(0).strip() for m in quantities("该区土地面积1.601 km²。")] == ["1.601 km²"]


def test_a_rank_question_is_met_by_the_rank_whatever_its_numeral():
    """第几位皇后: 第二位 is the answer although no quantity of 位 is printed."""
    queen = report("queen", "高英", "高英是嫁入北魏皇家的第二位皇后，备受宠爱。")
    answerer = answerer_over(queen)
    a = _alignment_of(answerer, "高英是嫁入北魏皇家的第几位皇后？", "queen", "第二位")
    assert a.features["slot_fit"] == 1.0


def test_time_nouns_and_generic_measures_are_no_part_of_a_constraint():
    """什么时候 + 首钢总公司 names 首钢总公司; 人口数量 measures 人口."""
    assert entities_in("什么时候首钢总公司成为首钢集团的核心控股公司？", PROFILE)[0] == "首钢总公司"
    assert indicators_in("在2006年，该地区的人口数量是多少？", PROFILE) == ["人口"]


def test_a_date_question_about_an_event_the_archive_never_writes_abstains():
    """什么时候开诊: the archive never says 开诊, so a road's completion date is no answer."""
    hospital = report("hospital", "医院周边道路建设", "确保9月底前医院周边道路全部建成通车。新院区建成后将是园区唯一一所综合性医院。")
    answerer = answerer_over(hospital)
    a = answerer.answer("新院区什么时候开诊", hits_for(answerer.store, "hospital"))
    assert a.abstained and a.answer.startswith("资料中没有提到“开诊”")
    assert answerer.analyze("新院区周边道路什么时候通车").unseen_event == ""
    assert answerer.analyze("医院周边道路是哪天开的").unseen_event == ""  # 天开: a piece of 哪天


def test_a_growth_is_answered_by_a_rate_and_an_index_by_its_percentage():
    """出口金额同比增长了多少 asks 元 or a rate; an index (PMI) is printed as a percentage; an
    amount asked in 元 is not given by a rate."""
    trade = report("trade", "外贸", "锂电池出口金额同比增长58.1%。中型企业PMI为49.0%，比上月上升0.1个百分点。")
    answerer = answerer_over(trade)
    assert _alignment_of(answerer, "锂电池出口金额同比增长了多少？", "trade", "58.1%").features["slot_fit"] == 1.0
    assert _alignment_of(answerer, "中型企业的PMI为多少？", "trade", "49.0%").features["slot_fit"] == 1.0
    assert _alignment_of(answerer, "锂电池出口金额是多少元？", "trade", "58.1%").features["slot_fit"] == 0.0


def test_what_takes_a_share_is_the_indicator():
    assert indicators_in("2020年经开区固定资产投资占郑州市比重是多少?", PROFILE) == ["固定资产"]
    assert indicators_in("2020年经开区税收收入占郑州市比重是多少", PROFILE) == ["税收收入"]


def test_the_place_an_event_happens_at_is_not_the_indicator():
    """在地球上生存了多少年: 地球 is where, not what is measured; 在…中 marks a place or a scope."""
    assert indicators_in("扁掌龙亚科在地球上生存了多少年？", PROFILE) == []
    assert "全国" not in indicators_in("经开区在全国经开区中的排名是多少", PROFILE)
    assert indicators_in("在本次活动中共发放了多少份宣传资料", PROFILE) == ["资料"]


def test_a_year_of_history_is_a_date():
    from rag import zh

    assert zh.has_date("1659年受册为王妃") and zh.has_date("罗马人在公元前25年建立")
    assert not zh.has_date("已有500年历史")


def test_the_year_compared_with_is_not_the_figures_year():
    """较2022年同期增长: a 2023 article's figure compared with 2022 is still a 2023 figure."""
    stores = report("stores", "第二季度门店", "联营门店收入较2022年同期增长了91.1%，净新开门店1485家。", date="2023-08-01")
    answerer = answerer_over(stores)
    a = _alignment_of(answerer, "2023年第二季度净新开了多少家门店？", "stores", "1485家")
    assert a.year == "match" and not a.conflicts
    assert _alignment_of(answerer, "2022年第二季度净新开了多少家门店？", "stores", "1485家").year == "conflict"


def test_the_start_of_a_run_up_to_now_is_not_the_figures_year():
    """是2001年以来最强劲: a 2023 figure measured against every year since 2001 is a 2023 figure,
    and a nearby fact for 2021 is labelled 2023, not 2001."""
    wages = report("wages", "英国基本工资增幅创历史新高", "不含奖金的平均收入同比增长7.8%，是2001年以来最强劲的记录。", date="2023-08-16")
    answerer = answerer_over(wages, *ARTICLES)
    assert _alignment_of(answerer, "2023年英国不含奖金的平均收入同比增长了多少？", "wages", "7.8%").year == "match"
    other = _alignment_of(answerer, "2021年英国不含奖金的平均收入同比增长了多少？", "wages", "7.8%")
    assert other.year == "conflict" and other.found_year == 2023


def test_the_asked_noun_names_no_entity():
    """哪个城市 asks for a city: only 阿富汗 is a constraint."""
    assert entities_in("在哪个城市举行了阿富汗商品展？", PROFILE) == ["阿富汗"]
    assert entities_in("2020年明湖办事处完成了多少", PROFILE) == ["明湖办事处"]
    assert entities_in("巡察党政办公室的是区党工委第几巡察组", PROFILE) == ["党政办公室"]  # 办公室: an office word


def test_a_people_is_named_by_its_country():
    from rag.answer.align import _matches_entity

    assert _matches_entity("乌克兰人", "乌克兰总统签署法案，将圣诞节移至12月25日。", PROFILE)
    assert not _matches_entity("乌克兰人", "俄罗斯总统表示。", PROFILE)


def test_items_and_figures_listed_in_order_answer_respectively():
    """电动载人汽车、锂电池、太阳能电池…163.8%、58.1%、10.4%: each item's figure is at its place."""
    text = "“新三样”——电动载人汽车、锂电池、太阳能电池，均出自机械行业，出口金额同比增长163.8%、58.1%、10.4%。"
    trade = report("three", "外贸", text)
    answerer = answerer_over(trade)
    for item, figure in (("锂电池", "58.1%"), ("太阳能电池", "10.4%"), ("电动载人汽车", "163.8%")):
        assert number_lead(answerer.analyze(f"{item}出口金额同比增长了多少？"), text, PROFILE) == figure


def test_what_grew_is_the_indicator_not_the_comparison():
    """X同比增长多少: 同比 names the comparison; X is what is measured."""
    assert indicators_in("2020年经开区实际使用外资同比增长多少", PROFILE) == ["外资"]
    assert indicators_in("2020年经开区地区生产总值同比增长多少", PROFILE) == ["地区生产总值"]


FIRMS = report(
    "firms",
    "郑州经开区位列22位",
    "截至2020年末，经开区拥有高新技术企业195家，省级及以上研发机构91家。",
)


def test_a_fact_of_another_year_about_another_indicator_is_no_nearby_fact():
    """财政收入 asked for 2025: the 2020 count of firms misses the year and the indicator, so it is
    no "2020 figure" of the revenue; the same sentence is the nearby fact for the firms' count."""
    answerer = answerer_over(FIRMS, *ARTICLES)  # other articles, so that idf weighs the words
    hits = hits_for(answerer.store, "firms")
    revenue = answerer.answer("经开区2025年财政收入是多少", hits, yearless_hits=hits)
    assert revenue.abstained and (revenue.nearby or {}).get("reason") != "year"
    firms = answerer.answer("经开区2025年高新技术企业有多少家", hits, yearless_hits=hits)
    assert firms.abstained and firms.nearby == {"reason": "year", "asked": "2025年", "found": "2020年"}
    assert "195家" in firms.answer


CULTURE = report(
    "culture",
    "弘扬廉洁文化 涵养清风正气",
    "2022年上半年，全区规模以上文化企业主营业务收入完成40亿元，同比增长8.2%。",
)


def test_an_unseen_two_character_indicator_is_met_by_the_term_it_abbreviates():
    """营收, never written in the archive, is met by 主营业务收入; 人口, which is written there, is
    not read into the characters of 人员出口."""
    answerer = answerer_over(CULTURE, *ARTICLES)
    a = _alignment_of(answerer, "2022年上半年全区规模以上文化企业营收同比增长了多少", "culture", "8.2%")
    assert a.indicator == "match"
    nearby = answerer.answer("2021年上半年全区规模以上文化企业营收同比增长了多少", hits_for(answerer.store, "culture"))
    assert nearby.abstained and nearby.nearby and nearby.nearby["reason"] == "year"
    people = answerer_over(report("people-out", "人口", "全区人口68万人。"), CULTURE, *ARTICLES)
    q = replace(people.analyze("经开区人口多少"), indicators=("人口",))
    assert "人口" not in q.unseen
    assert not _indicators_met(q, "全区人员出口3万人次。", PROFILE, people.tokens)


BOND_ISSUES = report(
    "bond-issues",
    "积极申报专项债券 助力经开快速发展",
    "本报讯为支持全省经济和社会发展，省财政厅于5月25日发行2020河南省政府专项债券409亿元。\n"
    "按照上级部门的部署安排，区财政局共申报2020年专项债券项目58个，申请金额127.58亿元。\n"
    "截至目前，全区2020年已累计发行5个项目13.92亿元，是2019年专项债券全年发行额1.86倍。",
)


@pytest.mark.parametrize(
    "question, figure",
    [("区财政局一共申报了多少个2021年专项债券项目", "58个"), ("经开区2021年专项债发行多少", "13.92亿元")],
)
def test_the_nearby_year_fact_is_the_one_that_answers_the_question_asked_for_that_year(question, figure):
    """Asked for 2021 against a 2020 page, the nearby fact is what the question asked for 2020
    would quote: the 58 projects declared, not the 127.58亿元 of the same sentence's other clause."""
    answerer = answerer_over(BOND_ISSUES, *ARTICLES)
    hits = hits_for(answerer.store, "bond-issues")
    a = answerer.answer(question, hits, yearless_hits=hits)
    assert a.abstained and a.nearby == {"reason": "year", "asked": "2021年", "found": "2020年"}
    assert figure in a.citations[0].quote
    assert answerer.answer(question.replace("2021", "2020"), hits).lead == figure


def test_a_named_person_who_is_asks_for_the_title_not_another_name(answerer, store):
    """张磊是谁 asks what 张磊 is: the lead is his title, never another person of the sentence;
    负责人是谁 (a role + 是谁) still asks for a person."""
    a = answerer.answer("张磊是谁", hits_for(store, "people"))
    assert not a.abstained and "张磊" not in a.lead and "管委会副主任" in a.lead
    assert answerer.analyze("负责人是谁").slot == "person"
