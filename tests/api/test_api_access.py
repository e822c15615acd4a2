"""Who may do what through the operator API, and what a refusal leaves behind: an audit entry, never a token."""

from __future__ import annotations

import logging

import pytest
import structlog

from gateway.api import add_user
from gateway.api.auth import Role
from gateway.journal import JournalReader
from tests.api.conftest import USERS, Site

BIND = {"equipment_id": "NO-SUCH", "lot_id": "LOT-1", "reason": "role check"}

#: (method, path, body, the least role that may). An allowed call may still fail on its input (a seq
#: that does not exist, unknown equipment): what matters here is that it got past the role check.
ACCESS = [
    ("GET", "/api/me", None, Role.VIEWER),
    ("GET", "/api/equipment", None, Role.VIEWER),
    ("GET", "/api/records?limit=5", None, Role.VIEWER),
    ("GET", "/api/alarms?state=all", None, Role.VIEWER),
    ("GET", "/api/bindings", None, Role.VIEWER),
    ("GET", "/api/exceptions?state=all", None, Role.VIEWER),
    ("GET", "/api/sinks", None, Role.VIEWER),
    ("POST", "/api/alarms/999999/acknowledge", {"comment": "seen"}, Role.OPERATOR),
    ("POST", "/api/bindings", BIND, Role.OPERATOR),
    ("POST", "/api/bindings/NO-SUCH/end", {"reason": "role check"}, Role.OPERATOR),
    ("POST", "/api/exceptions/999999/resolve", {"reason": "checked"}, Role.QA),
    ("GET", "/api/audit?limit=5", None, Role.QA),
]


async def test_each_role_is_allowed_and_refused_the_right_actions(site: Site) -> None:
    refusals = 0
    for method, path, body, least in ACCESS:
        for user, role_name in USERS.items():
            role = Role.of(role_name)
            verifier = ("oscar" if user != "oscar" else "olga") if "/bindings" in path and method == "POST" else None
            status, data = await site.call(method, path, user, verifier=verifier, body=body)
            if role >= least:
                assert status not in (401, 403), f"{user} ({role_name}) refused {method} {path}: {data}"
                assert status < 500, data
            else:
                refusals += 1
                assert status == 403, f"{user} ({role_name}) allowed {method} {path}"
                assert data == {"error": f"{user} is {role_name}; this needs {least.label} or above"}
        status, data = await site.call(method, path, None, body=body)
        refusals += 1
        assert status == 401 and "Bearer" in data["error"], (method, path)
    for path in ("/healthz", "/metrics", "/"):
        async with site.http.get(site.url + path) as response:
            assert response.status == 200, path
    failed = site.audit("auth.failed")
    assert len(failed) == refusals
    by_path = {(e["detail"]["method"], e["detail"]["path"], e["detail"]["user"]) for e in failed}
    assert ("GET", "/api/audit", "olga") in by_path and ("POST", "/api/bindings", "vera") in by_path


async def test_failed_authentication_is_audited_with_path_role_and_user_never_the_token(site: Site) -> None:
    forged = "not-a-real-token-" + "x" * 20
    async with site.http.post(site.url + "/api/alarms/1/acknowledge", json={"comment": "x"},
                              headers={"Authorization": f"Bearer {forged}"}) as response:
        assert response.status == 401
        assert await response.json() == {"error": "unknown token"}
    status, data = await site.call("GET", "/api/audit", "olga")
    assert status == 403 and data["error"] == "olga is operator; this needs qa or above"

    unknown, role = site.audit("auth.failed")
    assert unknown["actor"] == "unknown" and unknown["reason"] == "unknown token"
    assert unknown["detail"] | {"remote": None} == {
        "path": "/api/alarms/1/acknowledge", "method": "POST", "required_role": "operator", "user": None,
        "remote": None, "status": 401}
    assert (role["actor"], role["detail"]["user"], role["detail"]["required_role"], role["detail"]["status"]) == (
        "olga", "olga", "qa", 403)
    assert site.journal_path.read_bytes().find(forged.encode()) == -1
    assert all(site.journal_path.read_bytes().find(t.encode()) == -1 for t in site.tokens.values())
    # the metric counts refusals by reason
    async with site.http.get(site.url + "/metrics") as response:
        text = await response.text()
    assert 'cgt_api_auth_failures_total{reason="unknown_token"} 1.0' in text
    assert 'cgt_api_auth_failures_total{reason="role"} 1.0' in text


async def test_a_binding_needs_a_second_distinct_operator(site: Site) -> None:
    body = {"equipment_id": "CP-1", "lot_id": "LOT-7", "reason": "lot start"}
    status, data = await site.call("POST", "/api/bindings", "olga", body=body)
    assert status == 401 and data["error"] == "this change needs a second person: their token in X-Verifier-Token"
    status, data = await site.call("POST", "/api/bindings", "olga", verifier="olga", body=body)
    assert status == 403 and data["error"] == "olga cannot verify their own change: a second person must"
    status, data = await site.call("POST", "/api/bindings", "olga", verifier="vera", body=body)
    assert status == 403 and data["error"] == "verifier vera is viewer; verifying needs operator or above"
    with JournalReader(site.journal_path) as reader:
        assert list(reader.of_parameter("lot_binding")) == []
    assert [e["detail"]["user"] for e in site.audit("auth.failed")] == ["olga", "olga", "olga"]
    assert site.audit("binding.created") == []

    status, data = await site.call("POST", "/api/bindings", "olga", verifier="quinn", body=body)
    assert status == 200 and data["ok"] is True
    (created,) = site.audit("binding.created")
    assert created["actor"] == "olga" and created["detail"]["binding"]["verified_by"] == "quinn"
    status, data = await site.call("POST", "/api/bindings/CP-1/end", "oscar", verifier="oscar",
                                   body={"reason": "harvest"})
    assert status == 403
    status, data = await site.call("POST", "/api/bindings/CP-1/end", "oscar", verifier="olga",
                                   body={"reason": "harvest"})
    assert status == 200 and data["binding"]["ended_by"] == "oscar"


async def test_a_user_added_while_running_can_call_at_once_and_a_removed_one_cannot(site: Site) -> None:
    token = add_user(site.users_file, "nina", "qa")
    async with site.http.get(site.url + "/api/me", headers={"Authorization": f"Bearer {token}"}) as response:
        assert await response.json() == {"name": "nina", "role": "qa"}


@pytest.mark.parametrize("level", [logging.DEBUG])
async def test_tokens_never_appear_in_logs(site: Site, caplog: pytest.LogCaptureFixture, level: int) -> None:
    caplog.set_level(level)
    forged = "forged-token-" + "y" * 24
    with structlog.testing.capture_logs() as events:
        await site.call("GET", "/api/me", "vera")
        await site.call("POST", "/api/bindings", "olga", verifier="oscar",
                        body={"equipment_id": "FR-1", "lot_id": "LOT-2", "reason": "r"})
        async with site.http.get(site.url + "/api/me", headers={"Authorization": f"Bearer {forged}"}) as r:
            assert r.status == 401
        async with site.http.get(site.url + f"/api/stream?token={forged}") as r:
            assert r.status == 401
        async with site.http.get(site.url + f"/api/stream?token={site.tokens['vera']}") as r:
            assert r.status == 200
            await r.content.readuntil(b"\n\n")
    assert any(e["event"] == "API request refused" for e in events)
    assert any(e["event"] == "API request" and e["path"] == "/api/me" for e in events)
    logged = repr(events) + caplog.text
    for secret in [forged, *site.tokens.values()]:
        assert secret not in logged
