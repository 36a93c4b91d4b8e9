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
