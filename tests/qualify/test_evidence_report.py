"""The evidence report as a reviewer opens it: rendered by a browser, verdict and plots shown, nothing fetched."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from gateway.qualify.evidence import Evidence, Item, environment, software_manifest, svg_line_plot, write_evidence
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, MISSING

if TYPE_CHECKING:
    from playwright.async_api import Browser

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _evidence() -> Evidence:
    curve = [(t, 4.0 - 0.02 * t) for t in range(0, 600, 10)]
    plot = svg_line_plot({"product": curve}, title="Freezer curve against its band", x_label="time (s)",
                         y_label="temperature (°C)", bands=[(0, 600, -10, 5)], hlines={"limit": -8.0})
    ok = Item("OQ-12", "Alarm at the Grade A limit", ["Annex 1 §4.29", "21 CFR 11.10(e)"], "alarm at 3 521/m³",
              "alarm at 3 521/m³", True, T0, T0 + timedelta(seconds=3), ["drove 3 520, then 3 521"], {"curve": plot})
    bad = Item("OQ-05", "Store and forward <MES down>", ["Annex 11 §16"], "all delivered once", "2 missing",
               False, T0, T0 + timedelta(seconds=9), attachments={"log": "sink mes: <gap> seq 4-5"})
    return Evidence("OQ", "Rig OQ", "/site/rig.yaml", "ab" * 32, T0, T0 + timedelta(seconds=20), [ok, bad],
                    environment(), software_manifest())


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium as the dashboard tests drive it; the test fails (never skips) when it is missing."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail(f"the playwright package is not installed: {MISSING}")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is not installed: {MISSING}")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def test_evidence_html_renders_with_verdict_traceability_and_plots(browser: Browser, tmp_path: Path) -> None:
    json_path, html_path = write_evidence(_evidence(), tmp_path)
    assert json_path.name == "oq-20260301T080020Z.json" and html_path.suffix == ".html"
    context = await browser.new_context()
    page = await context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        await page.goto(html_path.as_uri())
        assert (await page.inner_text("#verdict")).strip() == "FAIL"
        rows = await page.locator("#traceability tr.trace").all_inner_texts()
        assert any("Annex 11 §16" in r and "OQ-05" in r and "FAIL" in r for r in rows), rows
        assert len(rows) == 3
        plot = page.locator("#OQ-12 svg.plot")
        assert await plot.count() == 1
        box = await plot.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 150  # drawn, not collapsed
        assert await page.locator("#OQ-12 svg polyline.series").count() == 1
        assert await page.locator("#OQ-12 svg rect.band").count() == 1
        assert await page.locator("#OQ-12 svg line.limit").count() == 1
        assert "<MES down>" in await page.inner_text("#OQ-05 h3")  # escaped, shown as text
        assert "Approved by" in await page.inner_text("table.sig")
        assert errors == [] and requests == [html_path.as_uri()]  # self-contained: nothing else fetched
        pdf = await page.pdf()
        assert pdf.startswith(b"%PDF")  # printable
    finally:
        await context.close()
