"""The login in a real browser: the gate's login page, a wrong and a right password, then the chat works."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app import create_app

AUTH = ("staff", "s3cret-pw")
Q_BONDS = "经开区2020年专项债发行多少"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def base(seed_settings, embedder, serve) -> Iterator[str]:
    yield from serve(create_app(seed_settings, auth=AUTH, embedder=embedder))


def no_sideways_scroll(page) -> bool:
    width, view = page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    return width <= view


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 900}, {"width": 390, "height": 844}], ids=["desktop", "phone"])
def test_login_page_fits_the_window_and_uploads_need_the_login(base, browser, seed_settings, viewport):
    """No sideways scroll on the login page; a browser without the login cannot upload a page."""
    context = browser.new_context(locale="zh-CN", viewport=viewport)
    page = context.new_page()
    page.goto(base + "/archive")
    assert page.locator("h1").inner_text() == "请登录" and no_sideways_scroll(page)
    before = sorted(p.name for p in seed_settings.corpus_dir.iterdir())
    # Gradio's upload from the page itself; the JSON route with the browser's cookies (a fetch there
    # would wait on Chromium's Basic-login prompt, as the route asks scripts for HTTP Basic)
    status = page.evaluate(
        """async () => {
            const form = new FormData();
            form.append('files', new File(['测试园区新闻'], 'x.txt', {type: 'text/plain'}));
            return (await fetch('/gradio_api/upload', {method: 'POST', body: form})).status;
        }"""
    )
    api = context.request.post(base + "/api/archive/upload", multipart={"files": {"name": "x.txt", "mimeType": "text/plain", "buffer": "测试园区新闻".encode()}})
    assert (status, api.status) == (401, 401) and api.json() == {"error": "请先登录。"}
    assert sorted(p.name for p in seed_settings.corpus_dir.iterdir()) == before
    context.close()


def test_login_page_then_chat(base, browser):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(base + "/")
    assert page.locator("h1").inner_text() == "请登录"
    assert all(url.startswith(base) for url in requests)  # self-contained: nothing fetched elsewhere
    page.fill("#username", AUTH[0])
    page.fill("#password", "wrong")
    page.click("button[type=submit]")
    page.wait_for_selector("#msg:has-text('用户名或密码错误')", timeout=10_000)
    page.fill("#password", AUTH[1])
    page.click("button[type=submit]")
    page.wait_for_selector("#rag-input textarea", timeout=60_000)  # the Gradio chat, after the reload
    page.fill("#rag-input textarea", Q_BONDS)
    page.keyboard.press("Enter")
    page.wait_for_selector("#rag-chat .rag-answer:not(.rag-pending)", timeout=120_000)
    assert "13.92亿元" in page.locator("#rag-chat .rag-answer").last.inner_text()
    other = browser.new_context(locale="zh-CN").new_page()  # another browser without the cookie
    response = other.goto(base + "/archive")
    assert response.status == 401 and other.locator("h1").inner_text() == "请登录"
    other.context.close()
    context.close()
