"""The chat page in headless Chromium: real app, real index, real browser.

Screenshots go to tests/artifacts/. The README screenshot docs/chat.png is rewritten only with
RAG_UPDATE_SCREENSHOT=1 (it needs a CJK font, e.g. Debian's fonts-wqy-microhei, to be legible).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import create_app
from rag import render
from rag.build import build_index
from rag.settings import Settings
from rag.store import current_version
Q_BONDS = "经开区2020年专项债发行多少"
BONDS_TITLE = "积极申报专项债券 助力经开快速发展"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"

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


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(chromium),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1100}, locale="zh-CN")
    pg = context.new_page()
    pg.dialogs = []  # every alert/confirm that fires; none should
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()


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


def open_chat(page, base: str) -> None:
    page.goto(base + "/")
    page.wait_for_selector("#rag-input textarea")
    page.wait_for_selector("#rag-status .rag-status")


def ask(page, question: str, n: int) -> object:
    """Type a question, press Enter, wait for the n-th final answer; returns its locator."""
    page.fill("#rag-input textarea", question)
    page.press("#rag-input textarea", "Enter")
    return wait_answer(page, n)


def wait_answer(page, n: int):
    page.wait_for_function(f"document.querySelectorAll({json.dumps(ANSWERS)}).length >= {n}", timeout=60_000)
    return page.locator(ANSWERS).nth(n - 1)


def titles(answer) -> list[str]:
    return [t.strip("《》") for t in answer.locator(".rag-src-title").all_inner_texts()]


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_conversation_with_citations_follow_up_and_abstention(page, seed_base, seed_settings):
    open_chat(page, seed_base)
    n_articles = json.loads((current_version(seed_settings.index_dir) / "manifest.json").read_text(encoding="utf-8"))["n_articles"]
    assert f"文章 {n_articles} 篇" in page.inner_text("#rag-status")

    # 1. numeric, asked by clicking its example chip
    page.get_by_role("button", name=Q_BONDS).click()
    first = wait_answer(page, 1)
    text = first.locator(".rag-text").inner_text()
    assert "13.92亿元" in text
    assert titles(first) == [BONDS_TITLE]
    assert first.locator(".rag-src mark").first.inner_text().endswith("13.92亿元，是2019年专项债券全年发行额1.86倍。")
    assert first.locator(".rag-rq").count() == 0  # asked as typed: no standalone query shown
    assert f"文章 {n_articles} 篇" in page.inner_text("#rag-status")  # refreshed after the answer
    shot(page, "01_bonds.png")
    settings_box = page.locator("#rag-settings").bounding_box()
    clip = {"x": 0, "y": 0, "width": 1280, "height": min(1100, settings_box["y"] + settings_box["height"] + 24)}
    page.screenshot(path=str(ARTIFACTS / "chat.png"), clip=clip)
    if os.environ.get("RAG_UPDATE_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(ARTIFACTS / "chat.png", ROOT / "docs" / "chat.png")

    # the marker links to its source entry: clicking opens the full article, scrolled into view
    entry = first.locator(".rag-src").first
    assert entry.get_attribute("id") == "src-1-1"
    assert first.locator("a.rag-cite").first.get_attribute("href") == "#src-1-1"
    assert entry.locator("details").evaluate("d => d.open") is False
    first.locator("a.rag-cite").first.click()
    page.wait_for_function("document.getElementById('src-1-1').querySelector('details').open")
    body = entry.locator("details .rag-body")
    assert body.locator("mark").inner_text().startswith("截至目前，全区2020年已累计发行5个项目13.92亿元")
    page.wait_for_timeout(800)  # smooth scroll
    assert entry.is_visible()
    box, chat = entry.bounding_box(), page.locator("#rag-chat").bounding_box()
    assert box["y"] < chat["y"] + chat["height"] and box["y"] + box["height"] > chat["y"]
    shot(page, "02_citation_opened.png")

    # 2. follow-up: the standalone query is shown; the 2020 article only compares with 2019
    second = ask(page, "那2019年呢？", 2)
    assert second.locator(".rag-rq").inner_text() == "检索问题：经开区2019年专项债发行多少"
    text = second.locator(".rag-text").inner_text()
    if "资料中没有" not in text:  # answering is honest only by quoting the sentence that names 2019
        assert "2019年专项债券全年发行额" in text
        assert BONDS_TITLE in titles(second)
    shot(page, "03_follow_up.png")

    # 3. a date
    third = ask(page, "郑大二附院周边道路什么时候建成通车", 3)
    assert "9月底" in third.locator(".rag-text").inner_text()
    assert titles(third)[0] == "郑大二附院周边道路 9月底建成通车"

    # 4. not in the archive: abstains, still lists the closest articles, labelled as such
    fourth = ask(page, "经开区2023年财政预算是多少", 4)
    assert "资料中没有" in fourth.locator(".rag-text").inner_text()
    assert fourth.locator(".rag-sources-label").inner_text() == render.ABSTAIN_LABEL
    assert fourth.locator(".rag-src").count() >= 3
    fourth.scroll_into_view_if_needed()
    shot(page, "04_abstain.png")

    # anchors stay unique across the conversation
    ids = page.eval_on_selector_all("#rag-chat .rag-src[id]", "els => els.map(e => e.id)")
    assert len(ids) == len(set(ids)) and "src-1-1" in ids and "src-3-1" in ids

    # an empty question gets a gentle prompt and adds no message
    page.fill("#rag-input textarea", "  ")
    page.click("#rag-send")
    page.get_by_text("请输入想查询的问题").first.wait_for(timeout=10_000)
    assert page.locator("#rag-chat .rag-q").count() == 4

    # the chat's trash button clears the conversation and its follow-up history
    page.locator("#rag-chat button[aria-label=清空对话]").click()
    page.wait_for_function("document.querySelectorAll('#rag-chat .rag-q').length === 0")
    fresh = ask(page, "那2019年呢？", 1)
    assert fresh.locator(".rag-rq").count() == 0  # nothing earlier to resolve it against
    assert page.dialogs == []


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
    assert all(h.startswith("#src-") for h in found["links"]), found["links"]
    page.wait_for_timeout(500)
    assert page.dialogs == []


def test_missing_index_page_says_how_to_build(page, empty_base):
    open_chat(page, empty_base)
    assert "python -m rag.index" in page.inner_text("#rag-status")
    page.fill("#rag-input textarea", Q_BONDS)
    page.press("#rag-input textarea", "Enter")
    notice = page.locator("#rag-chat .rag-notice.rag-error")
    notice.wait_for(timeout=30_000)
    assert "python -m rag.index" in notice.inner_text()
    shot(page, "06_no_index.png")


def test_year_filter_in_settings(page, seed_base):
    open_chat(page, seed_base)
    page.get_by_text("筛选与设置").click()
    page.get_by_label("起始年份").fill("2022")
    page.get_by_label("起始年份").press("Tab")
    answer = ask(page, Q_BONDS, 1)
    assert "13.92" not in answer.inner_text()  # the 2020 article is filtered out
    assert BONDS_TITLE not in titles(answer)
