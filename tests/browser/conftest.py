"""Headless Chromium for the dashboard tests: Debian's own build driven by Playwright, never a downloaded one.

The browser gets the flags that keep it quiet on a closed network (no background requests, no updates,
no sync). A test that fails leaves a screenshot and the page's console next to its files.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
MISSING = "run make test (it installs chromium)"

_call_failed = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Remember whether the test body failed, so the page fixture knows to keep a screenshot."""
    report = yield
    if report.when == "call":
        item.stash[_call_failed] = report.failed
    return report


@pytest.fixture
def chromium_installed() -> None:
    """The test fails (CI must not skip it) when the browser or Playwright is missing."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.fail(f"the playwright package is not installed: {MISSING}")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is not installed: {MISSING}")


@pytest_asyncio.fixture
async def browser(chromium_installed: None) -> AsyncIterator[Browser]:
    """Headless Chromium, closed after the test."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


class PageLog:
    """What the page said on its console and which script errors it raised."""

    def __init__(self) -> None:
        self.console: list[str] = []
        self.errors: list[str] = []


@pytest_asyncio.fixture
async def page_log() -> PageLog:
    return PageLog()


@pytest_asyncio.fixture
async def page(browser: Browser, page_log: PageLog, request: pytest.FixtureRequest,
               tmp_path: Path) -> AsyncIterator[Page]:
    """A fresh page (its own context: empty sessionStorage); on failure a screenshot and the console log."""
    context = await browser.new_context(viewport={"width": 1300, "height": 1000})
    tab = await context.new_page()
    tab.on("console", lambda message: page_log.console.append(f"{message.type}: {message.text}"))
    tab.on("pageerror", lambda error: page_log.errors.append(str(error)))
    try:
        yield tab
    finally:
        if request.node.stash.get(_call_failed, False):
            shot = tmp_path / "dashboard-failure.png"
            try:
                await tab.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the failing page: {shot}")
            except Exception as exc:  # the page may be what broke; the test's own failure is what matters
                print(f"no screenshot of the failing page: {exc}")
            (tmp_path / "dashboard-console.txt").write_text("\n".join(page_log.console + page_log.errors) + "\n")
        await context.close()
