"""The chat and archive pages in headless Chromium: real app, real index, real browser.

Desktop is 1366x900 and phone 390x844 (issue 11). Screenshots go to tests/artifacts/; the README
screenshots docs/chat-desktop.png, docs/chat-phone.png and docs/archive.png are rewritten only
with RAG_UPDATE_SCREENSHOT=1 (they need a CJK font, e.g. Debian's fonts-wqy-microhei).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app import create_app
from eval.feedback import main as export_feedback
from rag import render
from rag.build import build_index
from rag.feedback import FeedbackStore, feedback_path
from rag.settings import Settings
Q_BONDS = "经开区2020年专项债发行多少"
BONDS_TITLE = "积极申报专项债券 助力经开快速发展"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
]

ANSWERS = "#rag-chat .rag-answer:not(.rag-pending)"
XSS_TITLE = "安全测试<script>alert(1)</script>"
XSS_BODY = (
    "2021年3月5日 本报讯 测试园区发布安全提示<img src=x onerror=alert(1)>，详情见[x](javascript:alert(1))。\n"
    "测试园区今年共接待企业128家<script>alert(2)</script>，<a href=\"javascript:alert(3)\">点此</a>。\n"
    "其他内容：测试园区位于经开区第九大街。"
)
# A new page for the archive test: long enough (about 25 chunks) that its rebuild can be watched.
NEW_TITLE = "测试园区新建污水处理厂投入运行"
NEW_FACT = "测试园区污水处理厂日处理能力是多少"
NEW_PAGE = (
    f"{NEW_TITLE}\n\n本报讯 2024年3月8日，经开区测试园区新建污水处理厂正式投入运行，日处理能力达到4.6万吨。\n\n"
    + "\n\n".join(
        f"第{i}项配套工程：测试园区第{i}号泵站完成调试，新铺设管网{i + 3}公里，服务企业{10 * i}家，"
        f"园区第{i}片区的雨污分流改造同步推进，预计年内可减少排放{i * 7}吨。"
        for i in range(1, 40)
    )
    + "\n"
)
# An English sentence is two or more Latin words in a row (a lone "Markdown" or "PDF" is fine).
ENGLISH = re.compile(r"[A-Za-z]{2,}(?:[ ,.'’:-]+[A-Za-z]{2,})+")


def new_page(browser, viewport=DESKTOP, context=None):
    context = context or browser.new_context(viewport=viewport, locale="zh-CN", accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    pg = context.new_page()
    pg.dialogs = []  # every alert/confirm that fires; none should
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    return pg


@pytest.fixture
def page(browser):
    pg = new_page(browser)
    yield pg
    pg.context.close()


@pytest.fixture(params=["desktop", "phone"])
def any_page(request, browser):
    pg = new_page(browser, DESKTOP if request.param == "desktop" else PHONE)
    pg.kind = request.param
    yield pg
    pg.context.close()


@pytest.fixture(scope="module")
def seed_base(seed_settings, embedder, serve) -> Iterator[str]:
    yield from serve(create_app(seed_settings, embedder=embedder))


@pytest.fixture(scope="module")
def xss_base(tmp_path_factory, embedder, serve) -> Iterator[str]:
    """A tiny corpus with one hostile article, one article a file."""
    corpus = tmp_path_factory.mktemp("xss-corpus")
    (corpus / "hostile.txt").write_text(XSS_TITLE + "\n" + XSS_BODY, encoding="utf-8")
    (corpus / "hostile.txt.meta.json").write_text(json.dumps({"year": 2021}), encoding="utf-8")
    (corpus / "plain.txt").write_text("园区简讯\n2021年4月1日 本报讯 经开区举办招聘会，提供岗位300个。", encoding="utf-8")
    settings = Settings.load(corpus_dir=corpus, index_dir=tmp_path_factory.mktemp("xss-index"), split_articles=False)
    build_index(settings, embedder=embedder)
    yield from serve(create_app(settings, embedder=embedder))


@pytest.fixture(scope="module")
def empty_base(tmp_path_factory, embedder, serve) -> Iterator[str]:
    yield from serve(create_app(Settings.load(index_dir=tmp_path_factory.mktemp("none")), embedder=embedder))


@pytest.fixture(scope="module")
def archive_site(tmp_path_factory, embedder, shared_cache, serve) -> Iterator[tuple[str, Settings]]:
    """The seed pages copied to a writable corpus (plus one unreadable page), indexed."""
    corpus = tmp_path_factory.mktemp("archive-corpus")
    for p in (ROOT / "data" / "jingkai").iterdir():
        shutil.copyfile(p, corpus / p.name)
    (corpus / "003_c4740e32d0d06a7b.txt.meta.json").write_text(
        json.dumps({"year": 2020, "date": "2020-06", "label": "经开时报 2020年6月 第3版"}, ensure_ascii=False), encoding="utf-8"
    )
    (corpus / "扫描失败.txt").write_bytes(bytes(range(256)) * 8)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path_factory.mktemp("archive-index"), cache_dir=shared_cache)
    build_index(settings, embedder=embedder)
    for base in serve(create_app(settings, embedder=embedder)):
        yield base, settings


def open_chat(page, base: str) -> None:
    page.goto(base + "/")
    page.wait_for_selector("#rag-input textarea")
    page.wait_for_selector("#rag-status .rag-loaded")  # the saved conversation (if any) is restored


def ask(page, question: str, n: int) -> object:
    """Type a question, press Enter, wait for the n-th final answer; returns its locator."""
    page.fill("#rag-input textarea", question)
    page.press("#rag-input textarea", "Enter")
    return wait_answer(page, n)


def wait_answer(page, n: int):
    page.wait_for_function(f"document.querySelectorAll({json.dumps(ANSWERS)}).length >= {n}", timeout=90_000)
    return page.locator(ANSWERS).nth(n - 1)


def titles(answer) -> list[str]:
    return [t.strip("《》") for t in answer.locator(".rag-src-title").all_inner_texts()]


def shot(page, name: str, readme: bool = False) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))
    if readme and os.environ.get("RAG_UPDATE_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(ARTIFACTS / name, ROOT / "docs" / name)


def english_on_page(page) -> list[str]:
    """Visible text runs that read as English sentences (the page must be Chinese throughout)."""
    texts = page.evaluate(
        """() => {
            const out = [];
            const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
            for (let n = walker.nextNode(); n; n = walker.nextNode()) {
                const el = n.parentElement;
                if (!el || el.closest('script, style, [hidden]') || !n.textContent.trim()) continue;
                const s = getComputedStyle(el);
                if (s.display === 'none' || s.visibility === 'hidden' || !el.getClientRects().length) continue;
                out.push(n.textContent.trim());
            }
            document.querySelectorAll('input[placeholder], textarea[placeholder]').forEach(e => out.push(e.placeholder));
            return out;
        }"""
    )
    return [t for t in texts if ENGLISH.search(t)]


def chat_box(page) -> dict:
    return box_of(page.locator("#rag-chat"))


def box_of(locator, timeout_s: float = 10) -> dict:
    """The element's box; polled, as the chat re-renders a message when its suggestions arrive."""
    deadline = time.monotonic() + timeout_s
    while True:
        box = locator.bounding_box()
        if box is not None or time.monotonic() > deadline:
            assert box is not None, locator
            return box
        time.sleep(0.05)


def scrolled_into_view(page, answer, timeout_s: float = 5) -> tuple[float, dict]:
    """The answer's top and the chat box once the chat has scrolled the answer into view (the
    scroll follows the render), or as they are at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        top, chat = box_of(answer)["y"], chat_box(page)
        if chat["y"] <= top < min(page.viewport_size["height"], chat["y"] + chat["height"]) or time.monotonic() > deadline:
            return top, chat
        time.sleep(0.05)


def assert_no_sideways_scroll(page, where: str) -> None:
    """The page is never wider than the window (a 450 px archive page on a 390 px phone was)."""
    width, view = page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert width <= view, f"{where}: the page is {width} px wide in a {view} px window"


def test_conversation_with_citations_follow_up_and_abstention(page, seed_base, seed_settings):
    open_chat(page, seed_base)
    assert page.inner_text("#rag-status").startswith("已收录 5 版报纸 · ")
    assert re.search(r"\d+ 篇文章 · 更新于 \d+月\d+日 \d\d:\d\d", page.inner_text("#rag-status"))

    # 1. numeric, asked by clicking its example in the empty chat
    page.get_by_role("button", name=Q_BONDS).click()
    first = wait_answer(page, 1)
    text = first.locator(".rag-text").inner_text()
    assert "13.92亿元" in text
    assert set(titles(first)) == {BONDS_TITLE}
    meta = first.locator(".rag-src-meta").first.inner_text()
    assert meta == "2020年5月25日 · 经开时报 第4份" and "c4740e32" not in first.inner_text()
    assert first.locator(".rag-src mark").first.inner_text().endswith("13.92亿元，是2019年专项债券全年发行额1.86倍。")
    assert first.locator(".rag-rq").count() == 0  # asked as typed: no standalone query shown
    assert first.locator(".rag-chip").count() == 0  # no filter, no chip

    # follow-up suggestions arrive after the answer; each is one the answerer answers
    first.locator(".rag-suggest").first.wait_for(timeout=90_000)
    suggestions = first.locator(".rag-suggest").all_inner_texts()
    assert 1 <= len(suggestions) <= 3
    for q in suggestions:
        data = httpx.post(f"{seed_base}/api/ask", json={"question": q}, timeout=60).json()
        assert data["abstained"] is False and data["citations"][0]["title"] == BONDS_TITLE, q
    shot(page, "chat-desktop.png", readme=True)

    # 复制 puts the answer with its sources on the clipboard; 导出 Markdown downloads one file
    first.get_by_role("link", name="复制").click()
    page.wait_for_timeout(300)
    clip = page.evaluate("navigator.clipboard.readText()")
    assert "13.92亿元" in clip and f"《{BONDS_TITLE}》2020年5月25日 · 经开时报 第4份" in clip and "<" not in clip
    with page.expect_download() as dl:
        first.get_by_role("link", name="导出 Markdown").click()
    md = Path(dl.value.path()).read_text(encoding="utf-8")
    assert md.startswith(f"# 经开问答：{Q_BONDS}\n") and "## 来源" in md and f"《{BONDS_TITLE}》" in md
    assert dl.value.suggested_filename.endswith(".md")

    # the marker links to its source entry: clicking opens the full article, scrolled into view
    entry = first.locator(".rag-src").first
    assert entry.get_attribute("id") == "src-1-1"
    assert first.locator("a.rag-cite").first.get_attribute("href") == "#src-1-1"
    first.locator("a.rag-cite").first.click()
    page.wait_for_function("document.getElementById('src-1-1').querySelector('details').open")
    assert entry.locator("details .rag-body mark").inner_text().startswith("截至目前，全区2020年已累计发行5个项目13.92亿元")

    # 2. follow-up: the standalone query is shown
    second = ask(page, "那2019年呢？", 2)
    assert second.locator(".rag-rq").inner_text() == "检索问题：经开区2019年专项债发行多少"

    # 3. not in the archive: abstains, still lists the closest articles with dates, labelled as such
    third = ask(page, "经开区2023年财政预算是多少", 3)
    assert "资料中没有" in third.locator(".rag-text").inner_text()
    assert third.locator(".rag-sources-label").inner_text() == render.ABSTAIN_LABEL
    assert third.locator(".rag-src").count() >= 3
    assert "日期不详" not in third.locator(".rag-sources").inner_text()  # the chunk's year is shown
    assert third.locator(".rag-suggest").count() == 0
    assert english_on_page(page) == []

    # an empty question gets a gentle prompt (a Chinese toast) and adds no message
    page.fill("#rag-input textarea", "  ")
    page.click("#rag-send")
    toast = page.get_by_text("请输入想查询的问题").first
    toast.wait_for(timeout=10_000)
    assert "提示" in page.locator(".toast-body, [data-testid='toast-body']").first.inner_text()
    assert page.locator("#rag-chat .rag-q").count() == 3
    assert english_on_page(page) == []

    # the chat's trash button clears the conversation and its follow-up history
    page.locator("#rag-chat button[aria-label=清空对话]").click()
    page.wait_for_function("document.querySelectorAll('#rag-chat .rag-q').length === 0")
    fresh = ask(page, "那2019年呢？", 1)
    assert fresh.locator(".rag-rq").count() == 0  # nothing earlier to resolve it against
    assert page.dialogs == []


def test_newest_answer_stays_in_view_with_one_scroll_box(any_page, seed_base):
    page = any_page
    view = page.viewport_size
    open_chat(page, seed_base)
    questions = [Q_BONDS, "那2019年呢？", "郑大二附院周边道路什么时候建成通车", "经开区2023年财政预算是多少", "谁主持召开了城市精细化管理工作推进会"]
    for n, q in enumerate(questions, 1):
        answer = ask(page, q, n)
        top, chat = scrolled_into_view(page, answer)
        assert chat["y"] <= top < min(view["height"], chat["y"] + chat["height"]), (n, top, chat)
        # one scroll container: the page itself never scrolls; the input stays at the bottom, visible
        sizes = page.evaluate("() => [document.scrollingElement.scrollHeight, innerHeight, scrollY]")
        assert sizes[0] <= sizes[1] + 1 and sizes[2] == 0, sizes
        box = box_of(page.locator("#rag-input textarea"))
        assert box["y"] + box["height"] <= view["height"] and box["y"] > view["height"] * 0.6
    assert page.locator("#rag-chat .rag-q").count() == 5
    if page.kind == "phone":
        if os.environ.get("RAG_UPDATE_SCREENSHOT") == "1":
            page.wait_for_timeout(3000)  # let the suggestion step settle (this answer names a person: none)
        shot(page, "chat-phone.png", readme=True)
    assert english_on_page(page) == []


def test_reload_keeps_the_conversation_and_its_history(any_page, seed_base):
    page = any_page
    open_chat(page, seed_base)
    ask(page, Q_BONDS, 1)
    ask(page, "郑大二附院周边道路什么时候建成通车", 2)
    page.wait_for_timeout(500)
    page.reload()
    open_chat(page, seed_base)
    page.wait_for_function("document.querySelectorAll('#rag-chat .rag-q').length === 2")
    assert page.locator("#rag-chat .rag-q").all_inner_texts() == [Q_BONDS, "郑大二附院周边道路什么时候建成通车"]
    assert "13.92亿元" in page.locator(ANSWERS).first.inner_text()
    last = box_of(page.locator(ANSWERS).last)
    assert last["y"] < page.viewport_size["height"]  # the restored chat shows its newest turn
    third = ask(page, "那2019年呢？", 3)  # the follow-up history came back too: resolved against turn 2
    assert third.locator(".rag-rq").count() == 1
    page.locator("#rag-chat button[aria-label=清空对话]").click()
    page.wait_for_function("document.querySelectorAll('#rag-chat .rag-q').length === 0")
    page.wait_for_timeout(500)
    page.reload()
    open_chat(page, seed_base)
    page.wait_for_timeout(800)
    assert page.locator("#rag-chat .rag-q").count() == 0  # cleared stays cleared


def test_thumbs_are_stored_with_a_comment_and_exported(any_page, seed_base, seed_settings, tmp_path):
    page = any_page
    open_chat(page, seed_base)
    ask(page, Q_BONDS, 1)
    ask(page, "经开区2023年财政预算是多少", 2)
    bots = page.locator("#rag-chat .message-row.bot-row, #rag-chat .bot-row")
    bots.nth(1).get_by_role("button", name="踩").click()
    page.locator("#rag-feedback").wait_for(state="visible", timeout=10_000)
    assert "能说说哪里不对吗" in page.inner_text("#rag-feedback")
    page.fill("#rag-feedback-text textarea", "资料里有2023年的预算报道")
    page.click("#rag-feedback-send")
    page.get_by_text("补充说明已记录").first.wait_for(timeout=10_000)

    def stored() -> tuple[list, list]:
        store = FeedbackStore(feedback_path(seed_settings.index_dir))
        try:
            return [i for i in store.items(-1) if i.question == "经开区2023年财政预算是多少"], [i for i in store.items(1) if i.question == Q_BONDS]
        finally:
            store.close()

    ups_before = len(stored()[1])  # the session's index: the other viewport's run may have voted
    bots.nth(0).get_by_role("button", name="赞").click()
    deadline = time.monotonic() + 10  # the 👍 is stored by its own request after the click
    while len((found := stored())[1]) == ups_before and time.monotonic() < deadline:
        time.sleep(0.1)
    down, up = found
    assert down and down[-1].comment == "资料里有2023年的预算报道"
    assert down[-1].answer["abstained"] is True and down[-1].index_version.startswith("v-")
    assert len(up) > ups_before and "13.92亿元" in up[-1].answer["answer"]

    out = tmp_path / "candidates.jsonl"
    assert export_feedback(["--export", str(out), "--index", str(seed_settings.index_dir)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    mine = [r for r in rows if r["question"] == "经开区2023年财政预算是多少"]
    assert mine and mine[-1]["answers"] == [] and mine[-1]["comment"] == "资料里有2023年的预算报道"
    assert all(r["question"] != Q_BONDS for r in rows)  # 👍 rows are not candidates


def pick(page, elem_id: str, option: str) -> None:
    page.click(f"#{elem_id} input")
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def test_filter_chip_shown_and_cleared_with_the_chat(any_page, seed_base):
    page = any_page
    open_chat(page, seed_base)
    page.get_by_text("筛选与设置").click()
    assert page.input_value("#rag-year-from input") == "不限" and page.input_value("#rag-year-to input") == "不限"
    pick(page, "rag-year-from", "2022")
    page.wait_for_function("document.querySelector('#rag-settings').innerText.includes('已筛选：2022年起')")
    answer = ask(page, Q_BONDS, 1)
    assert answer.locator(".rag-chip").inner_text() == "已筛选：2022年起"
    assert "13.92" not in answer.inner_text() and BONDS_TITLE not in titles(answer)  # the 2020 page is out
    shot(page, f"filter_chip-{page.kind}.png")
    page.locator("#rag-chat button[aria-label=清空对话]").click()
    page.wait_for_function("document.querySelectorAll('#rag-chat .rag-q').length === 0")
    page.wait_for_timeout(300)
    assert page.input_value("#rag-year-from input") == "不限"
    again = ask(page, Q_BONDS, 1)
    assert again.locator(".rag-chip").count() == 0 and "13.92亿元" in again.inner_text()


def test_hostile_article_is_shown_as_text(page, xss_base):
    open_chat(page, xss_base)
    answer = ask(page, "测试园区今年共接待企业多少家", 1)
    assert "128家" in answer.locator(".rag-text").inner_text()
    for d in answer.locator("details").all():
        d.evaluate("d => d.open = true")
    page.wait_for_timeout(500)
    shot(page, "05_hostile_source.png")
    text = answer.inner_text()
    assert "<script>alert(1)</script>" in text  # the title, as text
    assert "<img src=x onerror=alert(1)>" in text and "[x](javascript:alert(1))" in text
    found = page.evaluate(
        """() => ({
            scripts: [...document.querySelectorAll('script')].filter(s => s.textContent.includes('alert(')).length,
            imgs: document.querySelectorAll('#rag-chat img[onerror], #rag-chat img[src="x"]').length,
            handlers: [...document.querySelectorAll('#rag-chat *')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
            js_links: document.querySelectorAll('a[href^="javascript"]').length,
            links: [...document.querySelectorAll('#rag-chat a')].map(a => a.getAttribute('href')),
        })"""
    )
    assert found["scripts"] == 0 and found["imgs"] == 0 and found["handlers"] == 0 and found["js_links"] == 0
    assert all(h.startswith("#src-") or h in ("#rag-copy", "#rag-export", "#rag-ask") for h in found["links"]), found["links"]
    page.wait_for_timeout(500)
    assert page.dialogs == []


def test_missing_index_page_says_what_to_do_in_chinese(page, empty_base):
    open_chat(page, empty_base)
    status = page.inner_text("#rag-status")
    assert "资料库" in status and "python" not in status
    page.fill("#rag-input textarea", Q_BONDS)
    page.press("#rag-input textarea", "Enter")
    notice = page.locator("#rag-chat .rag-notice.rag-error")
    notice.wait_for(timeout=30_000)
    assert "资料库" in notice.inner_text() and "python" not in notice.inner_text()
    assert english_on_page(page) == []
    shot(page, "06_no_index.png")


def test_no_page_scrolls_sideways(any_page, seed_base, archive_site):
    page = any_page
    open_chat(page, seed_base)
    assert_no_sideways_scroll(page, "empty chat")
    answer = ask(page, Q_BONDS, 1)
    for d in answer.locator("details").all():
        d.evaluate("d => d.open = true")
    page.get_by_text("筛选与设置").click()
    page.wait_for_timeout(500)
    assert_no_sideways_scroll(page, "chat with an answer, its sources and the filters open")
    base, _ = archive_site
    page.goto(base + "/archive")
    page.wait_for_selector("#rag-archive table")
    page.wait_for_timeout(500)
    assert_no_sideways_scroll(page, "archive")
    shot(page, f"archive-{page.kind}.png")


def test_archive_upload_rebuild_while_answering_then_new_file_answers(browser, archive_site):
    base, settings = archive_site
    page = new_page(browser)
    page.goto(base + "/archive")
    page.wait_for_selector("#rag-archive table")
    table = page.locator("#rag-archive")
    assert "经开时报 2020年6月 第3版" in table.inner_text()  # the sidecar's label
    bad_row = table.locator("tr", has_text="扫描失败.txt")
    assert "有问题" in bad_row.inner_text() and "编码" in bad_row.inner_text()
    assert english_on_page(page) == []

    files = ROOT / "tests" / "artifacts" / "uploads"
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir(parents=True)
    (files / "测试园区.txt").write_bytes(NEW_PAGE.encode("gb18030"))
    (files / "scan.txt").write_bytes(bytes(range(256)) * 4)
    (files / "empty.md").write_bytes(b"")
    page.set_input_files("#rag-upload input[type=file]", [str(files / n) for n in ("测试园区.txt", "scan.txt", "empty.md")])
    page.wait_for_function("document.querySelector('#rag-upload').innerText.includes('empty')", timeout=30_000)
    page.click("#rag-upload-btn")
    result = page.locator("#rag-upload-result")
    result.locator("li").nth(2).wait_for(timeout=30_000)
    items = result.locator("li").all_inner_texts()
    assert items[0].startswith("✓ 已保存“测试园区.txt”")
    assert items[1].startswith("✗") and "scan.txt" in items[1] and "编码" in items[1]
    assert items[2].startswith("✗") and "empty.md" in items[2] and "文件是空的" in items[2]
    page.wait_for_function("document.querySelector('#rag-archive').innerText.includes('测试园区.txt')")
    assert "待重建" in table.locator("tr", has_text="测试园区.txt").inner_text()

    chat = new_page(browser, context=page.context)
    open_chat(chat, base)
    page.bring_to_front()
    page.click("#rag-rebuild")
    page.locator("#rag-job .rag-job-running .rag-bar-fill").wait_for(timeout=30_000)
    page.wait_for_function("document.querySelector('#rag-job').innerText.includes('预计还需')", timeout=60_000)
    shot(page, "archive-rebuilding.png")
    line = page.inner_text("#rag-job")
    assert re.search(r"正在更新索引：.+ \d+%，预计还需约 ", line) and "问答仍使用更新前的资料" in line

    # while the rebuild runs, the chat answers from the old index
    asked_at = time.time()
    during = ask(chat, NEW_FACT, 1)
    assert NEW_TITLE not in titles(during) and "4.6万吨" not in during.locator(".rag-text").inner_text()
    assert "13.92亿元" in ask(chat, Q_BONDS, 2).locator(".rag-text").inner_text()

    page.bring_to_front()
    page.wait_for_selector("#rag-job .rag-job-done", timeout=180_000)
    job = httpx.get(f"{base}/api/archive/rebuild", timeout=10).json()
    # the question was asked while the rebuild ran (and answered from the old index, above)
    assert job["state"] == "done" and job["finished_at"] > asked_at
    assert [s["file"] for s in job["skipped"]] == ["扫描失败.txt"]
    assert "新增 1 版" in page.inner_text("#rag-job")
    page.wait_for_function("document.querySelector('#rag-archive').innerText.includes('测试园区新建污水处理厂')")
    row = table.locator("tr", has_text="测试园区.txt").inner_text()
    assert "已收录" in row and "2024年3月8日" in row
    page.wait_for_timeout(300)
    shot(page, "archive.png", readme=True)

    after = ask(chat, NEW_FACT, 3)
    assert "4.6万吨" in after.locator(".rag-text").inner_text() and titles(after)[0] == NEW_TITLE
    # the filter list knows the new page without a reload of the chat
    chat.get_by_text("筛选与设置").click()
    chat.click("#rag-sources input")
    assert chat.get_by_role("option", name=re.compile("测试园区")).count() == 1
    assert page.dialogs == [] and chat.dialogs == []
    page.context.close()


def test_archive_on_a_phone_stores_a_traversal_name_inside_the_corpus_and_removes_it(browser, archive_site):
    """`../../x.txt` picked in the browser lands as x.txt in the corpus folder; 移除 takes it out again."""
    base, settings = archive_site
    corpus = Path(settings.corpus_dir)
    page = new_page(browser, PHONE)
    page.goto(base + "/archive")
    page.wait_for_selector("#rag-archive table")
    assert_no_sideways_scroll(page, "archive on a phone")
    body = "测试园区路灯改造\n\n本报讯 2024年5月6日，测试园区完成路灯改造，共更换路灯320盏。\n".encode("utf-8")
    page.set_input_files("#rag-upload input[type=file]", [{"name": "../../x.txt", "mimeType": "text/plain", "buffer": body}])
    page.wait_for_function("document.querySelector('#rag-upload').innerText.includes('x.txt')", timeout=30_000)
    page.click("#rag-upload-btn")
    item = page.locator("#rag-upload-result li").first
    item.wait_for(timeout=30_000)
    assert item.inner_text().startswith("✓ 已保存“x.txt”"), item.inner_text()
    assert (corpus / "x.txt").read_bytes() == body
    assert not (corpus.parent / "x.txt").exists() and not (corpus.parent.parent / "x.txt").exists()
    row = page.locator("#rag-archive tr", has_text="x.txt")
    row.wait_for(timeout=30_000)
    assert "待重建" in row.inner_text()
    assert_no_sideways_scroll(page, "archive on a phone after an upload")
    assert english_on_page(page) == []

    page.click("#rag-remove-pick input")
    page.get_by_role("option", name=re.compile(r"（x\.txt）")).click()
    page.click("#rag-remove")
    page.get_by_text("已移除“x.txt”").first.wait_for(timeout=30_000)
    page.wait_for_function("!document.querySelector('#rag-archive').innerText.includes('x.txt')", timeout=30_000)
    assert not (corpus / "x.txt").exists()
    assert page.dialogs == []
    page.context.close()
