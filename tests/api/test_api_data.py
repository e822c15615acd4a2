"""What the operator API shows and changes, against the real gateway: last values, records, lots by source
time, alarms and their acknowledgement, exceptions, the live stream, health and metrics."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.api.events import LiveState
from gateway.identity import EXCEPTION_PARAMETER
from gateway.journal import JournalReader
from gateway.records import Kind, Quality, RecordDraft, utc_now
from tests.api.conftest import Site
from tests.waiting import eventually


async def test_a_binding_made_through_the_api_lands_on_records_by_their_source_time(site: Site) -> None:
    before = await site.feed("CP-1", 20.0)
    status, data = await site.call("POST", "/api/bindings", "olga", verifier="oscar", body={
        "equipment_id": "CP-1", "lot_id": "LOT-42", "coi_id": "COI-42", "dins": ["G123498654321H"],
        "process_step": "expansion", "reason": "expansion started"})
    assert status == 200, data
    bound_at = utc_now()
    during = await site.feed("CP-1", 21.0, bound_at + timedelta(milliseconds=5))
    late = await site.feed("CP-1", 19.0, before.source_time + timedelta(milliseconds=1))  # taken before, arrives after
    other = await site.feed("FR-1", -80.0)
    assert (before.lot_id, during.lot_id, late.lot_id, other.lot_id) == (None, "LOT-42", None, None)
    assert (during.coi_id, during.din, during.process_step) == ("COI-42", "G123498654321", "expansion")

    status, data = await site.call("POST", "/api/bindings/CP-1/end", "oscar", verifier="olga",
                                   body={"reason": "harvest"})
    assert status == 200, data
    after = await site.feed("CP-1", 22.0)
    in_time = await site.feed("CP-1", 23.0, during.source_time + timedelta(milliseconds=1))  # late, inside the binding
    assert (after.lot_id, in_time.lot_id) == (None, "LOT-42")

    status, rows = await site.call("GET", "/api/records?equipment=CP-1&parameter=temperature", "vera")
    assert status == 200
    assert [(r["value"], r["lot_id"]) for r in rows] == [
        (20.0, None), (21.0, "LOT-42"), (19.0, None), (22.0, None), (23.0, "LOT-42")]
    status, bindings = await site.call("GET", "/api/bindings", "vera")
    (binding,) = bindings
    assert (binding["lot_id"], binding["performed_by"], binding["verified_by"], binding["ended_by"],
            binding["active"]) == ("LOT-42", "olga", "oscar", "oscar", False)


async def test_equipment_shows_state_binding_and_last_values_with_their_age(site: Site) -> None:
    record = await site.feed("CP-1", 37.0)
    await site.call("POST", "/api/bindings", "olga", verifier="oscar",
                    body={"equipment_id": "CP-1", "lot_id": "LOT-9", "reason": "start"})

    async def cp1() -> dict:
        status, data = await site.call("GET", "/api/equipment", "vera")
        assert status == 200
        return next(e for e in data if e["id"] == "CP-1")

    eq = await cp1()
    assert (eq["class"], eq["kind"], eq["state"], eq["isa95"]) == (
        "cell_processor", "feed", "up", {"site": "plant-1", "area": "suite-3", "unit": "cp-1"})
    assert eq["binding"]["lot_id"] == "LOT-9" and eq["binding"]["performed_by"] == "olga"
    (value,) = [v for v in eq["last_values"] if v["parameter"] == "temperature"]
    assert (value["value"], value["unit"], value["quality"], value["kind"], value["seq"]) == (
        37.0, "Cel", "Good", "measurement", record.seq)
    assert 0 <= value["age_s"] < 30 and value["source_time"].endswith("Z")
    await site.feed("CP-1", 38.0)
    assert [v["value"] for v in (await cp1())["last_values"] if v["parameter"] == "temperature"] == [38.0]


async def test_an_alarm_is_listed_acknowledged_once_with_the_audit_entry_and_cleared(site: Site) -> None:
    await site.feed("FR-1", 150.0)

    async def alarms(state: str = "active") -> list[dict]:
        status, data = await site.call("GET", f"/api/alarms?state={state}", "vera")
        assert status == 200
        return data

    (alarm,) = await eventually(alarms, what="an active alarm")
    assert (alarm["equipment_id"], alarm["parameter"], alarm["value"], alarm["active"], alarm["acknowledged"]) == (
        "FR-1", "temperature_alarm", "high", True, None)
    seq = alarm["seq"]
    status, data = await site.call("POST", f"/api/alarms/{seq}/acknowledge", "olga", body={"comment": "door shut"})
    assert (status, data) == (200, {"ok": True})
    (entry,) = site.audit("alarm.acknowledged")
    assert (entry["actor"], entry["reason"], entry["detail"]) == ("olga", "door shut", {"seq": seq})
    (alarm,) = await alarms()
    assert alarm["acknowledged"]["actor"] == "olga" and alarm["acknowledged"]["reason"] == "door shut"

    status, data = await site.call("POST", f"/api/alarms/{seq}/acknowledge", "oscar", body={"comment": "again"})
    assert status == 409 and "already closed by olga" in data["error"]
    status, data = await site.call("POST", "/api/alarms/999999/acknowledge", "oscar", body={"comment": "x"})
    assert status == 404 and data["error"] == "no record with seq 999999"
    reading = await site.feed("FR-1", 20.0)  # back to normal: the alarm is no longer active
    status, data = await site.call("POST", f"/api/alarms/{reading.seq}/acknowledge", "oscar", body={"comment": "x"})
    assert status == 400 and "not an open alarm" in data["error"]
    status, data = await site.call("POST", f"/api/alarms/{seq}/acknowledge", "oscar", body={"comment": " "})
    assert status == 400 and data["error"].startswith("comment:")
    status, data = await site.call("POST", "/api/alarms/x/acknowledge", "oscar", body={"comment": "x"})
    assert status == 400
    await eventually(lambda: _no_active(site), what="the alarm cleared")
    history = await alarms("all")
    assert [(a["value"], a["active"]) for a in history] == [("normal", False), ("high", False)]
    assert len(site.audit("alarm.acknowledged")) == 1


async def _no_active(site: Site) -> bool:
    status, data = await site.call("GET", "/api/alarms", "vera")
    return status == 200 and data == []


async def test_an_identity_exception_is_open_until_qa_resolves_it(site: Site) -> None:
    draft = RecordDraft(equipment_id="FR-1", equipment_class="freezer", parameter=EXCEPTION_PARAMETER,
                        source="gateway://identity", kind=Kind.EVENT, value="unmatched_specimen",
                        quality=Quality.GOOD, gateway_time=utc_now(), lot_id="LOT-X",
                        detail="result for lot LOT-X, which is bound to no equipment", config_hash="ab" * 32)
    (record,) = await site.running.journal.append([(draft, None)])
    status, data = await site.call("GET", "/api/exceptions", "vera")
    (open_,) = data
    assert (open_["seq"], open_["value"], open_["lot_id"], open_["open"]) == (
        record.seq, "unmatched_specimen", "LOT-X", True)
    status, data = await site.call("POST", f"/api/exceptions/{record.seq}/resolve", "olga",
                                   body={"reason": "wrong lot typed"})
    assert status == 403
    status, data = await site.call("POST", f"/api/exceptions/{record.seq}/resolve", "quinn",
                                   body={"reason": "specimen relabelled, deviation DV-7"})
    assert (status, data) == (200, {"ok": True})
    assert (await site.call("GET", "/api/exceptions", "vera"))[1] == []
    (closed,) = (await site.call("GET", "/api/exceptions?state=all", "vera"))[1]
    assert closed["resolved"]["actor"] == "quinn" and closed["open"] is False
    status, trail = await site.call("GET", "/api/audit?limit=1000", "quinn")
    assert trail[-1]["action"] == "exception.resolved" and trail[-1]["actor"] == "quinn"
    since = trail[-2]["id"]
    status, tail = await site.call("GET", f"/api/audit?since_id={since}", "adam")
    assert [e["id"] for e in tail] == [trail[-1]["id"]]


async def test_the_live_stream_delivers_committed_records_and_status(site: Site) -> None:
    async with site.http.get(site.url + "/api/stream") as response:
        assert response.status == 401
    async with site.http.get(site.url + f"/api/stream?token={site.tokens['vera']}") as response:
        assert response.status == 200 and response.headers["Content-Type"] == "text/event-stream"
        first = await _event(response)
        assert first[0] == "status" and {d["id"] for d in first[1]["devices"]} == {"CP-1", "FR-1"}
        site.plugin.queue("CP-1").put_nowait((42.5, utc_now()))
        async with asyncio.timeout(5):
            while True:
                name, data = await _event(response)
                if name == "records" and any(r["value"] == 42.5 for r in data):
                    break
        (mine,) = [r for r in data if r["value"] == 42.5]
        assert (mine["equipment_id"], mine["parameter"], mine["unit"], mine["quality"], mine["kind"]) == (
            "CP-1", "temperature", "Cel", "Good", "measurement")
        with JournalReader(site.journal_path) as reader:
            assert next(reader.read(mine["seq"] - 1, 1)).value == 42.5
        async with asyncio.timeout(5):  # a status event follows within its period
            while (await _event(response))[0] != "status":
                pass


async def _event(response: object) -> tuple[str, object]:
    raw = await response.content.readuntil(b"\n\n")  # type: ignore[attr-defined]
    fields = dict(line.split(b": ", 1) for line in raw.strip().split(b"\n"))
    return fields[b"event"].decode(), orjson.loads(fields[b"data"])


async def test_health_and_metrics_report_devices_sinks_and_the_journal(site: Site) -> None:
    await site.feed("CP-1", 30.0)
    async with site.http.get(site.url + "/healthz") as response:
        health = await response.json()
    assert health["status"] == "ok" and health["gateway_id"] == "gw-api"
    assert health["devices"] == {"up": 2, "down": 0, "starting": 0}
    async with site.http.get(site.url + "/metrics") as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("cgt_device_up", (("equipment_id", "CP-1"),))] == 1.0
    assert samples[("cgt_device_records_total", (("equipment_id", "CP-1"),))] >= 1
    assert 0 <= samples[("cgt_device_last_value_age_seconds", (("equipment_id", "CP-1"),))] < 30
    assert samples[("cgt_journal_last_seq", ())] >= health["last_seq"]
    assert samples[("cgt_journal_size_bytes", ())] > 0
    assert "LOT" not in text


async def test_bad_queries_get_a_one_line_error(site: Site) -> None:
    for path, message in [
        ("/api/records?limit=5000", "limit must be a whole number 1-1000, not '5000'"),
        ("/api/records?since_seq=-1", "since_seq must be a whole number >= 0, not '-1'"),
        ("/api/alarms?state=open", "state must be one of active, all, not 'open'"),
        (f"/api/records?since_seq={10**19}", f"since_seq must be a whole number >= 0, not '{10**19}'"),
        ("/api/nothing-here", "Not Found"),
    ]:
        status, data = await site.call("GET", path, "vera")
        assert (status, data) == ((404 if "nothing" in path else 400), {"error": message}), path
    async with site.http.post(site.url + "/api/bindings", data=b"{not json", headers=site.headers(
            "olga", "oscar")) as response:
        assert response.status == 400 and (await response.json())["error"] == "the body must be a JSON object"
    status, data = await site.call("POST", "/api/alarms/1²/acknowledge", "olga", body={"comment": "x"})
    assert (status, data) == (400, {"error": "seq must be a record's seq (a whole number), not '1²'"})
    status, data = await site.call("POST", "/api/bindings", "olga", verifier="oscar", body={
        "equipment_id": "CP-1", "lot_id": "L", "reason": "r", "dins": ["G123498654321X"]})
    assert (status, data) == (400, {
        "error": "dins: DIN 'G123498654321X': check character is X, but G123498654321 gives H: mistyped"})
    status, data = await site.call("POST", "/api/bindings", "olga", verifier="oscar",
                                   body={"equipment_id": "CP-1", "lot": "L", "reason": "r"})
    assert (status, data) == (400, {"error": "lot_id: Field required"})


@pytest.mark.parametrize(("value", "active"), [("high", True), (True, True), ("normal", False), (False, False),
                                               (None, False)])
def test_an_alarm_is_active_only_while_raised(value: object, active: bool) -> None:
    """A device's own alarm flag reading false, and a gap (no value), are not active alarms."""
    state = LiveState.__new__(LiveState)
    state.latest_alarm = {("CRF-1", "alarm_door_open"): 7}
    alarm = {"equipment_id": "CRF-1", "parameter": "alarm_door_open", "seq": 7, "value": value}
    assert state.is_active(alarm) is active
