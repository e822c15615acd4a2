"""The API across the gateway's life: what it knows after a restart, a prompt stop with streams open,
its site section, and the ``user`` command that issues tokens."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from gateway.api import read_users
from gateway.api.auth import token_hash
from gateway.cli import main
from gateway.config import load_site
from gateway.errors import ConfigError, GatewayError
from gateway.runtime import run_gateway
from tests.api.conftest import FeedPlugin, running_site


@pytest.fixture
def cli_logs_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command configures logging for a process of its own; in the test process it must not."""
    monkeypatch.setattr("gateway.cli.logs.configure", lambda *args: None)


async def test_after_a_restart_the_api_still_shows_last_values_and_the_active_alarm(tmp_path: Path) -> None:
    async with running_site(tmp_path) as site:
        await site.feed("FR-1", 150.0)
        await site.feed("CP-1", 36.5)
        tokens = site.tokens
    async with running_site(tmp_path, tokens) as site:
        status, alarms = await site.call("GET", "/api/alarms", "vera")
        assert status == 200 and [(a["equipment_id"], a["value"], a["active"]) for a in alarms] == [
            ("FR-1", "high", True)]
        status, equipment = await site.call("GET", "/api/equipment", "vera")
        cp1 = next(e for e in equipment if e["id"] == "CP-1")
        assert [v["value"] for v in cp1["last_values"] if v["parameter"] == "temperature"] == [36.5]


async def test_stopping_the_gateway_ends_open_streams_at_once(tmp_path: Path) -> None:
    async with running_site(tmp_path) as site:
        response = await site.http.get(site.url + f"/api/stream?token={site.tokens['vera']}")
        await response.content.readuntil(b"\n\n")
        loop = asyncio.get_running_loop()
        began = loop.time()
        site.stop.set()
        await asyncio.wait_for(asyncio.shield(site.runner), timeout=10)
        assert loop.time() - began < 2.0  # not the server's 3 s grace for handlers that never end
        assert await response.content.read() == b""  # the stream was ended, not cut mid-event
        response.release()


def test_the_api_section_listens_on_localhost_by_default_and_finds_the_users_file_beside_the_site(
    tmp_path: Path,
) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("gateway: {id: gw}\napi: {}\n")
    api = load_site(path, {}).site.api
    assert (api.host, api.port, api.users_file) == ("127.0.0.1", 8765, tmp_path / "users.yaml")
    path.write_text("gateway: {id: gw}\napi: {listen: '[::1]:9000'}\n")
    assert load_site(path, {}).site.api.host == "::1"
    path.write_text("gateway: {id: gw}\napi:\n  listen: 8765\n")
    with pytest.raises(ConfigError) as err:
        load_site(path, {})
    assert err.value.problems == [f"{path}:3: api.listen: Input should be a valid string"]
    path.write_text("gateway: {id: gw}\napi:\n  listen: 'localhost:99999'\n")
    with pytest.raises(ConfigError) as err:
        load_site(path, {})
    assert err.value.problems == [f"{path}:3: api.listen: listen 'localhost:99999': the port must be a number 0-65535"]


@pytest.mark.usefixtures("cli_logs_untouched")
def test_user_add_prints_the_token_once_and_keeps_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("gateway: {id: gw}\napi: {users_file: secrets/users.yaml}\n")
    assert main(["user", "add", "-c", str(site), "alice", "--role", "qa"]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert len(token) >= 40 and token not in out.err
    users_file = tmp_path / "secrets" / "users.yaml"
    assert token not in users_file.read_text()
    assert users_file.stat().st_mode & 0o077 == 0
    (alice,) = read_users(users_file).users
    assert (alice.name, alice.role, alice.token_sha256) == ("alice", "qa", token_hash(token))

    assert main(["user", "add", "-c", str(site), "alice", "--role", "viewer"]) == 1
    assert "user 'alice' exists already" in capsys.readouterr().err
    assert main(["user", "list", "-c", str(site), "--json"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == [{"name": "alice", "role": "qa"}]
    assert main(["user", "remove", "-c", str(site), "bob"]) == 1
    assert "no user 'bob' (users: alice)" in capsys.readouterr().err
    assert main(["user", "remove", "-c", str(site), "alice"]) == 0
    assert read_users(users_file).users == []


@pytest.mark.usefixtures("cli_logs_untouched")
def test_user_needs_an_api_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("gateway: {id: gw}\n")
    assert main(["user", "list", "-c", str(site)]) == 1
    assert "no api: section" in capsys.readouterr().err


async def test_a_port_in_use_stops_the_start_with_one_line(tmp_path: Path) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    try:
        (tmp_path / "site.yaml").write_text(
            f"gateway: {{id: gw}}\njournal: {{path: journal.sqlite}}\napi: {{listen: '127.0.0.1:{port}'}}\n"
            "equipment:\n  - {id: CP-1, class: cell_processor, kind: feed}\n")
        loaded = load_site(tmp_path / "site.yaml", {"feed": FeedPlugin()})  # type: ignore[dict-item]
        with pytest.raises(GatewayError, match=f"api: cannot listen on 127.0.0.1:{port}: "):
            await run_gateway(loaded, duration_s=5)
    finally:
        blocker.close()
        await blocker.wait_closed()
