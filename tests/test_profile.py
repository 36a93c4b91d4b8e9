"""Corpus profiles and one-article news files (issue 14): fast tests on hand-made pages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.profile import PROFILE_DIR, ProfileError, available_profiles, load_profile
from rag.records import Page
from rag.segment import file_article, is_org_label, news_title, segment_page
from rag.settings import Settings
from rag.tokenize import TOKENIZER_ID, expand_query, tokenize, tokenizer_for
from rag.zh import parse_timestamp


def page(text: str, year: int | None = None, date: str = "", source: str = "a.txt") -> Page:
    return Page(source=source, text=text, encoding="utf-8", sha256="0", year=year, date=date)


def test_bundled_profiles_load():
    assert {"jingkai", "news"} <= set(available_profiles())
    jk, news = load_profile("jingkai"), load_profile("news")
    assert jk.title_after_body and not news.title_after_body
    assert "经开时报" in jk.byline_roles and "新华社讯" in news.lead_markers
    assert "局长" in jk.person_cues and "公司" in jk.org_suffixes and "亿元" in jk.units
    assert jk.id != news.id


def test_settings_picks_profile_and_rejects_unknown():
    assert Settings(profile="news").corpus_profile.name == "news"
    with pytest.raises(ValueError, match="profile 'nope' not found.*bundled profiles: .*jingkai"):
        Settings(profile="nope")


def test_profile_file_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('colour = "red"\n', encoding="utf-8")
    with pytest.raises(ProfileError, match=r"bad.toml: unknown field\(s\) colour"):
        load_profile(str(bad))
    bad.write_text('[layout]\noffice_label = "(unclosed"\n', encoding="utf-8")
    with pytest.raises(ProfileError, match="office_label is not a valid regular expression"):
        load_profile(str(bad))
    bad.write_text('user_dictionary = "missing.txt"\n', encoding="utf-8")
    with pytest.raises(ProfileError, match="user_dictionary 'missing.txt' not found"):
        load_profile(str(bad))


def test_office_label_comes_from_the_profile(tmp_path):
    assert is_org_label("经开区财政局（审计局）")
    assert not is_org_label("经开区财政局（审计局）", load_profile("news"))
    other = tmp_path / "gaoxin.toml"
    other.write_text("[layout]\noffice_label = '^高新区[\\u4e00-\\u9fff]{1,8}局$'\n", encoding="utf-8")
    assert is_org_label("高新区财政局", load_profile(str(other)))


def test_default_profile_keeps_the_tokenizer():
    """The jingkai profile's tokenizer is the one the bundled index was built with."""
    assert tokenizer_for().id == TOKENIZER_ID
    assert tokenizer_for() is tokenizer_for(load_profile("jingkai"))  # jieba's dictionary loads once
    assert "区里" not in tokenize("区里的地区生产总值")
    news = tokenizer_for(load_profile("news"))  # its jieba dictionary is not loaded here (slow)
    assert "区里" not in news.stop_words and news.id != TOKENIZER_ID
    assert expand_query("城管罚了多少").endswith("综合行政执法局")
    assert expand_query("城管罚了多少", load_profile("news")) == "城管罚了多少"


@pytest.mark.parametrize(
    "header, expected",
    [
        ("2023-08-15 19:40:26", (2023, 8, 15)),
        ("[2023/07/21  06:45]", (2023, 7, 21)),
        ("2023年07月31日 11:52:11 来自北京", (2023, 7, 31)),
        ("23-08-15 20:58", (2023, 8, 15)),
        ("07-20 23:59", (None, 7, 20)),
        ("来源：中国青年报客户端", None),
    ],
)
def test_parse_timestamp(header, expected):
    assert parse_timestamp(header) == expected


@pytest.mark.parametrize("profile", ["jingkai", "news"])
def test_news_file_is_one_article_with_header_date(profile):
    text = "2023-08-15 19:40:26，正文：人民网北京8月15日电（记者 王五）8月14日，某市召开防汛会议。会议指出……\n第二段。"
    for split in (True, False):
        arts = segment_page(page(text), load_profile(profile)) if split else [file_article(page(text), load_profile(profile))]
        (a,) = arts
        assert a.title == "8月14日，某市召开防汛会议"
        assert (a.date, a.year) == ("2023-08-15", 2023)
        assert a.body.startswith("人民网北京8月15日电") and a.body.endswith("第二段。")


def test_news_header_without_year_takes_page_year():
    text = "08-15 19:40，正文：原标题：某公司发布财报！净利润增长。"
    a = file_article(page(text, year=2023))
    assert (a.title, a.date, a.year) == ("某公司发布财报！", "2023-08-15", 2023)
    b = file_article(page(text))
    assert (b.date, b.year) == ("", None)


def test_sidecar_date_wins_over_header():
    a = file_article(page("2023-08-15，正文：正文内容很长的一句话。", year=2022, date="2022-01"))
    assert (a.date, a.year) == ("2022-01", 2022)


def test_news_title_edge_cases():
    news = load_profile("news")
    assert news_title("。。", news) == "。。"  # only separators: no endless loop
    assert news_title("牛！世界500强企业，广州6家上榜！", news) == "牛！世界500强企业，广州6家上榜！"
    long = "某" * 30 + "12345678901234567890"
    assert news_title(long, news) == "某" * 30  # cut at 40 would split the number
    assert news_title("原标题：降雨趋于结束 海河流域水位回落       正文", news) == "降雨趋于结束 海河流域水位回落"


def test_page_without_header_is_segmented_as_before():
    text = "标题一\n本报讯 5月20日，经开区召开会议。会议部署工作。\n记者 王赛华\n"
    arts = segment_page(page(text, year=2020, date="2020-06"))
    assert [a.title for a in arts] == ["标题一"]
    assert arts[0].date == "2020-05-20"


@pytest.fixture(scope="module")
def crud_corpus(shared_dir, tmp_path_factory) -> Path:
    """The CRUD dev corpus with 500 distractors (775 files), made once for both profiles."""
    import subprocess
    import sys

    corpus = tmp_path_factory.mktemp("crud") / "corpus"
    make = shared_dir / "datasets" / "crud_qa_dev" / "make_corpus.py"
    subprocess.run([sys.executable, str(make), "--distractors", "500", "--out", str(corpus)], check=True, capture_output=True)
    return corpus


@pytest.mark.slow  # the corpus is written from the 30k-article dump (~10 s)
@pytest.mark.parametrize("profile", ["jingkai", "news"])
def test_crud_news_corpus_keeps_dates_and_gets_real_titles(crud_corpus, profile):
    """Issue 14: without --whole-files, every header that carries a year gives the article its
    date and year, and no title is a timestamp (README: "News corpora")."""
    import re

    from rag.load import load_corpus
    from rag.segment import news_header

    prof = load_profile(profile)
    pages = load_corpus(crud_corpus).pages
    articles = [a for p in pages for a in segment_page(p, prof)]
    assert len(pages) == len(articles) == 775
    stamped = 0
    for p, a in zip(pages, articles):
        stamp = parse_timestamp(news_header(p.text, prof)["header"])
        if stamp and stamp[0]:
            stamped += 1
            assert (a.year, a.date) == (stamp[0], f"{stamp[0]:04d}-{stamp[1]:02d}-{stamp[2]:02d}"), p.source
    assert stamped == 630
    timestamp = re.compile(r"^[\s\d:：/\-年月日.\[\]]*$|^\s*(?:19|20)?\d\d[-/]\d{1,2}[-/]\d{1,2}")
    assert not [a.title for a in articles if timestamp.match(a.title) or not a.title]


def test_header_only_file_keeps_its_text_untitled():
    (a,) = segment_page(page("2023-08-11，正文：   "))
    assert (a.title, a.body, a.date) == ("", "2023-08-11，正文：", "2023-08-11")


def _profile_copy(folder: Path, edit=lambda text: text) -> Path:
    """The jingkai profile and its dictionary copied into `folder`, the TOML text passed through `edit`."""
    folder.mkdir()
    for name in ("jingkai.toml", "jingkai.userdict.txt"):
        shutil.copy(PROFILE_DIR / name, folder / name)
    toml = folder / "jingkai.toml"
    toml.write_text(edit(toml.read_text(encoding="utf-8")), encoding="utf-8")
    return toml


def test_profile_id_hashes_only_what_shapes_the_index(tmp_path):
    base = load_profile(str(_profile_copy(tmp_path / "base")))
    assert base.id == load_profile("jingkai").id  # the location of the file does not count

    def same(edit) -> bool:
        return load_profile(str(_profile_copy(tmp_path / f"p{len(list(tmp_path.iterdir()))}", edit))).id == base.id

    assert same(lambda t: t.replace('"书记", ', ""))  # an answer cue
    assert same(lambda t: t.replace('"城管" = "综合行政执法局"', '"城管" = "城市管理局"'))  # a question alias
    assert same(lambda t: "# a comment\n" + t.replace("description = ", "description = \"x\" #"))
    assert not same(lambda t: t.replace('stop_words = ["区里", "我区"]', 'stop_words = ["区里"]'))
    assert not same(lambda t: t.replace('"经开时报"]', '"经开时报", "见习记者"]'))  # a byline role
    assert not same(lambda t: t.replace("lead_date_window = 25", "lead_date_window = 30"))
    edited = _profile_copy(tmp_path / "dictionary")
    with (edited.parent / "jingkai.userdict.txt").open("a", encoding="utf-8") as fh:
        fh.write("滨河国际新城 5 ns\n")
    assert load_profile(str(edited)).id != base.id
