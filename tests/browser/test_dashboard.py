"""The dashboard in real headless Chromium against the real gateway: simulators → gateway → API → page.

An operator signs in with a token, sees the equipment tiles fill with live values, sees the alarm a
simulated particle excursion raises, acknowledges it from the page with a comment, and the journal's
audit trail names that operator with that comment.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest

from device_sims.particle_counter import ParticleCounterSim
from gateway.config import load_site
from gateway.journal import JournalReader
from gateway.plugins import adapter_plugins
from gateway.runtime import RunningGateway, run_gateway
from tests.browser.conftest import PageLog
from tests.waiting import eventually

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture fails each test saying how to install it
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.slow

#: The excursion starts a few seconds in and lasts far longer than the test: the alarm stays active.
EXCURSION = [{"after_s": 3, "inject": "excursion", "samples": 1000, "factor": 50}]
WAIT_MS = 30_000


@dataclass
class Dashboard:
    url: str
    journal: Path
    token: str
    viewer_token: str
    verifier_token: str


def users_file(path: Path, **people: tuple[str, str]) -> None:
    """A users file as `cgt-gateway user add` writes it: names, roles and token hashes, never tokens."""
    lines = ["users:"]
    for name, (role, token) in people.items():
        lines.append(f"  - {{name: {name}, role: {role}, token_sha256: {hashlib.sha256(token.encode()).hexdigest()}}}")
    path.write_text("\n".join(lines) + "\n")


@contextlib.asynccontextmanager
async def running_dashboard(tmp_path: Path) -> AsyncIterator[Dashboard]:
    """Two simulated counters (one with an excursion scheduled) read by the real gateway serving its API."""
    token, viewer_token, verifier_token = (secrets.token_urlsafe(32) for _ in range(3))
    users_file(tmp_path / "users.yaml", olivia=("operator", token), victor=("viewer", viewer_token),
               quentin=("qa", verifier_token))
    async with (
        ParticleCounterSim(profile="lighthouse", sample_time_s=1.0, seed=5, grade="A", scenario=EXCURSION) as iso,
        ParticleCounterSim(profile="airnet2", sample_time_s=1.0, seed=2, grade="B", state="at_rest") as airlock,
    ):
        site = tmp_path / "site.yaml"
        site.write_text(
            "gateway: {id: gw-browser}\n"
            "journal: {path: journal.sqlite}\n"
            "supervisor: {backoff_initial_s: 0.05, backoff_max_s: 0.2}\n"
            "api: {listen: '127.0.0.1:0', users_file: users.yaml}\n"
            "equipment:\n"
            f"  - {{id: PC-ISO-1, class: particle_counter, kind: modbus, transport: tcp, host: 127.0.0.1,\n"
            f"     port: {iso.port}, device_id: 1, register_map: lighthouse-remote, poll_interval_s: 0.2,\n"
            "     particle_limits: {grade: A, state: in_operation}}\n"
            f"  - {{id: PC-AL-1, class: particle_counter, kind: modbus, transport: tcp, host: 127.0.0.1,\n"
            f"     port: {airlock.port}, device_id: 1, register_map: pms-airnet2, poll_interval_s: 0.2,\n"
            "     particle_limits: {grade: B, state: at_rest}}\n"
        )
        loaded = load_site(site, adapter_plugins())
        stop = asyncio.Event()
        started: list[RunningGateway] = []
        gateway = asyncio.create_task(run_gateway(loaded, stop=stop, on_started=started.append))
        try:
            url = await eventually(lambda: _api_url(started, gateway), timeout_s=15, what="the gateway's API to start")
            yield Dashboard(url, tmp_path / "journal.sqlite", token, viewer_token, verifier_token)
        finally:
            stop.set()
            await gateway


def _api_url(started: list[RunningGateway], gateway: asyncio.Task[object]) -> str | None:
    """The API's address (it listens on port 0) once the gateway has started it."""
    if gateway.done():
        gateway.result()  # the gateway stopped: say why
    return started[0].api.url if started and started[0].api is not None else None


async def bind_lot(dash: Dashboard, equipment_id: str, lot_id: str, coi_id: str) -> None:
    """Two people bind a lot through the API, as a second screen would."""
    headers = {"Authorization": f"Bearer {dash.token}", "X-Verifier-Token": dash.verifier_token}
    body = {"equipment_id": equipment_id, "lot_id": lot_id, "coi_id": coi_id, "reason": "lot start"}
    async with aiohttp.ClientSession() as session, session.post(f"{dash.url}/api/bindings", json=body,
                                                               headers=headers) as response:
        assert response.status == 200, await response.text()


async def sign_in(page: Page, token: str) -> None:
    await page.get_by_label("Operator token").fill(token)
    await page.get_by_role("button", name="Use token").click()


async def test_an_operator_sees_the_equipment_and_acknowledges_an_alarm_from_the_page(
    tmp_path: Path, page: Page, page_log: PageLog
) -> None:
    async with running_dashboard(tmp_path) as dash:
        await page.goto(dash.url + "/")
        await expect(page.get_by_role("heading", name="Equipment")).to_be_visible()
        await sign_in(page, dash.token)
        await expect(page.get_by_text("Signed in as olivia (operator).")).to_be_visible()

        # the demo equipment, up, with live values in their units and their quality
        for eq_id in ("PC-ISO-1", "PC-AL-1"):
            tile = page.get_by_role("article", name=eq_id)
            await expect(tile).to_be_visible(timeout=WAIT_MS)
            await expect(tile.locator("[data-state]")).to_have_text("UP", timeout=WAIT_MS)
            await expect(tile).to_contain_text("particle_counter")
            await expect(tile).to_contain_text("No lot bound")
        iso = page.get_by_role("article", name="PC-ISO-1")
        temperature = iso.locator("tr[data-parameter='temperature']")
        await expect(temperature).to_contain_text("Cel", timeout=WAIT_MS)
        await expect(temperature).to_contain_text("Good")

        # a lot bound meanwhile shows on its tile without a reload
        await bind_lot(dash, "PC-ISO-1", "LOT-0042", "COI-ACME-7731")
        await expect(iso.locator(".binding")).to_have_text("Lot LOT-0042 · COI COI-ACME-7731", timeout=WAIT_MS)
        await expect(page.get_by_role("article", name="PC-AL-1")).to_contain_text("No lot bound")

        # the excursion the simulator was told to make shows up as an active alarm
        alarm = page.locator("#alarm-list li", has_text="PC-ISO-1 · particle_concentration_0_5um")
        await expect(alarm).to_contain_text("action_limit_exceeded", timeout=WAIT_MS)
        seq = int(await alarm.get_attribute("data-seq") or "0")

        # acknowledged from the page, with a comment
        comment = "isolator glove port checked, excursion under investigation (dev 42)"
        await alarm.get_by_role("button", name="Acknowledge").click()
        dialog = page.get_by_role("dialog", name="Acknowledge alarm")
        await expect(dialog).to_be_visible()
        await dialog.get_by_label("Comment").fill(comment)
        await dialog.get_by_role("button", name="Acknowledge").click()
        await expect(dialog).to_be_hidden()
        await expect(alarm).to_contain_text("Acknowledged by olivia at", timeout=WAIT_MS)
        await expect(alarm).to_contain_text(comment)
        await expect(alarm.get_by_role("button", name="Acknowledge")).to_have_count(0)

        # the live stream is what keeps the page current
        await expect(page.locator("#connection")).to_have_text("live", timeout=WAIT_MS)

    with JournalReader(dash.journal) as reader:
        trail = reader.audit()
    acks = [e for e in trail if e["action"] == "alarm.acknowledged"]
    assert len(acks) == 1, trail
    assert acks[0]["actor"] == "olivia" and acks[0]["reason"] == comment
    assert acks[0]["detail"]["seq"] == seq
    assert not page_log.errors, page_log.errors


async def test_a_refused_token_shows_nothing_and_a_viewer_without_the_stream_still_sees_alarms(
    tmp_path: Path, page: Page, page_log: PageLog
) -> None:
    async with running_dashboard(tmp_path) as dash:
        await page.goto(dash.url + "/")
        await sign_in(page, "not-a-token-of-this-site")
        await expect(page.get_by_role("alert")).to_contain_text("refused")
        await expect(page.get_by_role("article")).to_have_count(0)
        assert await page.evaluate("sessionStorage.length") == 0  # a refused token is not kept

        # a proxy that breaks Server-Sent Events: the page falls back to polling every 5 s
        await page.route("**/api/stream*", lambda route: route.abort())
        await sign_in(page, dash.viewer_token)
        await expect(page.get_by_text("Signed in as victor (viewer).")).to_be_visible()
        await expect(page.locator("#connection")).to_contain_text("every 5 s")
        await expect(page.get_by_role("article", name="PC-AL-1")).to_be_visible(timeout=WAIT_MS)
        alarm = page.locator("#alarm-list li", has_text="PC-ISO-1 · particle_concentration_0_5um")
        await expect(alarm).to_contain_text("action_limit_exceeded", timeout=WAIT_MS)
        await expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)  # not a viewer's to do

        await page.reload()  # the token lasts as long as the tab
        await expect(page.get_by_text("Signed in as victor (viewer).")).to_be_visible()
    assert not page_log.errors, page_log.errors
