"""The per-lot evidence pack against a real journal: bindings made by two people, records attributed the way the
pipeline attributes them, before, during and after the lot; then what a QA reviewer relies on: the lot's story,
the rooms it was in, and a certificate that fails when the journal was tampered with or a sink is behind.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.identity import Attribution, BindingBook, Identity
from gateway.journal import Journal
from gateway.records import Isa95Path, Kind, Quality, RecordDraft
from gateway.reports import UnknownLot, build_lot_report, render_lot_html, write_lot_report
from gateway.reports.lot import SinkInfo

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LOT = "LOT-A-0001"
DIN = "G123498654321H"
SUITE = Isa95Path(site="plant-1", area="suite-3", unit="x")
EQUIPMENT = {
    "CP-1": ("cell_processor", SUITE.model_copy(update={"unit": "cp-1"})),
    "CRF-1": ("controlled_rate_freezer", SUITE.model_copy(update={"unit": "crf-1"})),
    "PC-1": ("particle_counter", SUITE.model_copy(update={"unit": "isolator-1"})),
    "PC-9": ("particle_counter", Isa95Path(site="plant-1", area="suite-9", unit="other")),
    "BTA-1": ("culture_reader", Isa95Path(site="plant-1", area="qc-micro", unit="bta-1")),
}
SIZE = "particle_concentration_0_5um"
LIMITS = {"PC-1": {"basis": "EU GMP Annex 1 (2022) Table 1, Grade A in operation",
                   "sizes": {SIZE: {"alert": 2000.0, "action": 3520.0}}}}
SINKS = [SinkInfo("mes"), SinkInfo("files")]


@dataclass
class Lot:
    journal: Journal
    identity: Identity
    seqs: dict[str, int]  # named records of the story, by seq


def minutes(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


class Story:
    """Appends rows the way the pipeline does: each gets the binding of its equipment at its source time."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.seqs: dict[str, int] = {}

    async def add(self, equipment_id: str, parameter: str, kind: Kind, value: Any, at: datetime, *,
                  name: str | None = None, quality: Quality = Quality.GOOD, unit: str | None = None,
                  detail: str | None = None, step: str | None = None, device_lot: str | None = None) -> int:
        equipment_class, isa95 = EQUIPMENT[equipment_id]
        row: dict[str, Any] = {
            "equipment_id": equipment_id, "equipment_class": equipment_class, "isa95": isa95,
            "parameter": parameter, "source": f"equipment://{equipment_id}", "kind": kind, "value": value,
            "unit": unit, "quality": quality, "source_time": at, "gateway_time": at, "detail": detail,
            "config_hash": "ab" * 32,
        }
        mode = "specimen" if equipment_id == "BTA-1" else "equipment"
        extra = Attribution(equipment_id, self.identity.book, mode).apply([row], device_lot, step)
        rows = [row] + [{**row, **e, "source": row["source"]} for e in extra]
        committed = await self.identity.journal.append([(RecordDraft(**r), None) for r in rows])
        if name is not None:
            self.seqs[name] = committed.seqs[0]
            if extra:
                self.seqs[name + ".exception"] = committed.seqs[-1]
        return committed.seqs[0]


@pytest.fixture
async def lot(tmp_path: Path) -> AsyncIterator[Lot]:
    async with Journal.open(tmp_path / "journal.sqlite", gateway_id="gw-lot") as journal:
        identity = Identity(journal, BindingBook(), EQUIPMENT, "ab" * 32)
        s = Story(identity)
        m = Kind.MEASUREMENT
        # before the lot
        await s.add("CP-1", "temperature", m, 36.9, minutes(-10), unit="Cel")
        await s.add("PC-1", SIZE, m, 5000.0, minutes(-5), unit="/m3")
        # the processor, with the lot bound by two people
        await identity.bind("CP-1", LOT, performed_by="alice", verified_by="bob", reason="CAR-T lot start",
                            coi_id="COI-0001", dins=[DIN], at=T0)
        await s.add("CP-1", "device_event", Kind.EVENT, "run_started", minutes(1), detail="run R-7 lot LOT-A-0001",
                    step="activation")
        await s.add("CP-1", "temperature", m, 37.0, minutes(1.5), unit="Cel", step="activation")
        await s.add("CP-1", "temperature", m, 37.1, minutes(2), unit="Cel", step="expansion", name="expansion")
        for i, value in enumerate((1000.0, 4000.0, 900.0)):
            await s.add("PC-1", SIZE, m, value, minutes(2.5 + i), unit="/m3")
        await s.add("PC-1", SIZE, Kind.ALARM, "action_limit_exceeded", minutes(3.5), name="particle_alarm",
                    detail="≥0.5 µm 4 000 /m3 above the action limit 3 520 /m3")
        await s.add("PC-9", SIZE, m, 99999.0, minutes(3), unit="/m3")  # another room: not the lot's exposure
        await s.add("CP-1", "communication", Kind.EVENT, "lost", minutes(5), quality=Quality.BAD_COMMUNICATION_ERROR,
                    detail="connection refused by 127.0.0.1:4840")
        await s.add("CP-1", "temperature", m, None, minutes(5), quality=Quality.BAD_COMMUNICATION_ERROR,
                    detail="connection refused by 127.0.0.1:4840")
        await s.add("CP-1", "communication", Kind.EVENT, "restored", minutes(6), detail="answering again after 60.0 s")
        await s.add("CP-1", "temperature_excursion", Kind.ALARM, "above_limit", minutes(7), name="excursion",
                    detail="temperature 38.5 Cel is above the limit 38 Cel", step="expansion")
        for figure, value, unit in (("", "normal", None), ("_duration", 60.0, "s"), ("_min", 38.1, "Cel"),
                                    ("_max", 38.9, "Cel")):
            await s.add("CP-1", f"temperature_excursion{figure}", Kind.ALARM if not figure else m, value,
                        minutes(8), unit=unit, step="expansion")
        await s.add("CP-1", "device_event", Kind.EVENT, "run_ended", minutes(9), detail="run R-7 completed",
                    step="expansion")
        # a culture result names the lot while it is bound
        await s.add("BTA-1", "culture_status", Kind.STATE, "positive", minutes(9.5), device_lot=LOT)
        await s.add("BTA-1", "culture_positive", Kind.ALARM, "positive", minutes(9.5), device_lot=LOT)
        await identity.unbind("CP-1", performed_by="carol", verified_by="alice", reason="harvested", at=minutes(10))
        # the freezer, in the same room
        await identity.bind("CRF-1", LOT, performed_by="bob", verified_by="carol", reason="cryopreservation",
                            process_step="freezing", at=minutes(11))
        for i in range(8):
            await s.add("CRF-1", "chamber_temperature", m, 4.0 - 10 * i, minutes(12 + i), unit="Cel")
        await s.add("CRF-1", "profile_conformance", Kind.EVENT, "conforming", minutes(19.5),
                    detail="run F-1: chamber and sample stayed within the approved profile's bands")
        await s.add("PC-1", SIZE, m, 1200.0, minutes(15), unit="/m3")
        await identity.unbind("CRF-1", performed_by="bob", verified_by="carol", reason="moved to storage",
                              at=minutes(20))
        # after the lot: a result for it arrives when it is bound nowhere
        await s.add("BTA-1", "culture_status", Kind.STATE, "negative", minutes(30), device_lot=LOT, name="late")
        await s.add("CP-1", "temperature", m, 21.0, minutes(30), unit="Cel")
        await s.add("PC-1", SIZE, m, 7000.0, minutes(30), unit="/m3")
        # a lot nobody bound, which the processor itself reports
        await s.add("CP-1", "temperature", m, 37.0, minutes(40), unit="Cel", device_lot="LOT-DEV")
        await s.add("PC-1", SIZE, m, 800.0, minutes(40), unit="/m3")
        await s.add("CP-1", "temperature", m, 37.2, minutes(41), unit="Cel", device_lot="LOT-DEV")
        await identity.acknowledge_alarm(s.seqs["excursion"], actor="op-eve", comment="door opened for a transfer")
        last = journal.last_seq
        await journal.settle("sink:mes", last)
        await journal.settle("sink:files", last)
        yield Lot(journal, identity, s.seqs)


def report(lot: Lot, **kw: Any) -> dict[str, Any]:
    return build_lot_report(lot.journal.path, LOT, sinks=SINKS, particle_limits=LIMITS, now=minutes(60), **kw)


async def test_the_pack_tells_what_happened_to_the_lot_on_each_equipment_and_in_its_room(lot: Lot) -> None:
    r = report(lot)
    cp, crf, bta = r["equipment"]
    assert [(b["equipment_id"], b["performed_by"], b["verified_by"], b["ended_by"]) for b in r["bindings"]] == [
        ("CP-1", "alice", "bob", "carol"), ("CRF-1", "bob", "carol", "bob")]
    assert r["bindings"][0]["dins"] == [DIN] and r["bindings"][0]["coi_id"] == "COI-0001"
    assert r["bindings"][0]["area"] == "suite-3"
    # the processor: only its records during the binding, counted; the run and its steps
    assert cp["equipment_id"] == "CP-1" and cp["by_parameter"]["temperature"] == 3  # not the one before or after
    assert [e["value"] for e in cp["device_events"]] == ["run_started", "run_ended"]
    assert [s["process_step"] for s in cp["process_steps"]] == ["activation", "expansion"]
    (excursion,) = cp["excursions"]
    assert excursion["raised"]["value"] == "above_limit" and excursion["ended"]["value"] == "normal"
    assert (excursion["duration"]["value"], excursion["min"]["value"], excursion["max"]["value"]) == (60.0, 38.1, 38.9)
    # the freezer: its curve and the conformance verdict
    assert crf["equipment_id"] == "CRF-1" and len(crf["freezer_curve"]["chamber_temperature"]) == 8
    assert [f["value"] for f in crf["freezer"]] == ["conforming"]
    # the culture reader, which is never bound: its result names the lot
    assert bta["equipment_id"] == "BTA-1" and bta["bindings"] == []
    assert [c["culture_status"] for c in bta["cultures"]] == ["positive"]
    # EM exposure: the isolator counter in suite-3 while the lot was there, against its limits; not suite-9
    (room,) = r["particle_exposure"]
    assert (room["room"], room["counter"]) == ("suite-3", "PC-1")
    size = room["sizes"][SIZE]
    assert (size["samples"], size["max"], size["above_action"], size["action_limit"]) == (4, 4000.0, 1, 3520.0)
    assert room["alarms_raised"] == 1
    # alarms with their acknowledgement; the identity exception of the late result, still open
    alarms = {a["seq"]: a for a in r["alarms"]}
    assert alarms[lot.seqs["excursion"]]["resolution"]["by"] == "op-eve"
    assert alarms[lot.seqs["particle_alarm"]]["resolved"] is False
    (exception,) = r["exceptions"]
    assert exception["seq"] == lot.seqs["late.exception"] and exception["value"] == "unmatched_specimen"
    assert exception["resolved"] is False
    assert r["summary"]["exceptions_open"] == 1 and r["summary"]["alarms_unacknowledged"] >= 1


async def test_the_certificate_names_the_range_the_gap_the_chain_and_delivery(lot: Lot) -> None:
    cert = report(lot)["certificate"]
    assert cert["ok"] and cert["verdict"] == "COMPLETE" and cert["problems"] == []
    assert cert["seq_range"]["first"] == 3  # the binding record: two records came before it
    assert cert["gap_free"] and cert["chain"]["ok"]
    assert [d["delivered"] for d in cert["delivery"]] == [True, True]
    (gap,) = cert["communication_gaps"]
    assert (gap["equipment_id"], gap["how"], gap["duration_s"]) == ("CP-1", "lost", 60.0)
    assert gap["cause"] == "connection refused by 127.0.0.1:4840" and gap["quality"] == "Bad_CommunicationError"


async def test_a_sink_behind_or_a_refused_record_fails_the_certificate(lot: Lot) -> None:
    await lot.journal.settle("sink:files", lot.seqs["expansion"], rejected=[(lot.seqs["expansion"], "HTTP 422")])
    cert = report(lot)["certificate"]
    assert not cert["ok"]
    files = cert["delivery"][1]
    assert files["sink"] == "files" and not files["delivered"]
    assert files["dead_letters"][0]["seq"] == lot.seqs["expansion"]
    assert any("sink files: has taken records up to seq" in p for p in cert["problems"])
    assert any("refused for good" in p for p in cert["problems"])


async def test_a_tampered_journal_fails_the_certificate(lot: Lot) -> None:
    await lot.journal.close()
    path = lot.journal.path
    with sqlite3.connect(path) as conn:  # someone edits a reading of the lot
        conn.execute("UPDATE records SET payload = CAST(replace(CAST(payload AS TEXT), '37.1', '36.1') AS BLOB)"
                     " WHERE seq = ?", (lot.seqs["expansion"],))
    cert = report(lot)["certificate"]
    assert not cert["ok"] and not cert["chain"]["ok"]
    assert cert["chain"]["first_bad_seq"] == lot.seqs["expansion"]
    assert any("hash chain broken" in p and "record edited" in p for p in cert["problems"])

    with sqlite3.connect(path) as conn:  # …and then deletes one
        conn.execute("DELETE FROM records WHERE seq = ?", (lot.seqs["excursion"],))
    cert = report(lot)["certificate"]
    n = lot.seqs["excursion"]
    assert cert["missing"] == [{"from": n, "to": n, "cause": "deleted: not a retention prune"}]
    assert f"seqs {n} to {n} are missing from the journal inside the lot's range" in cert["problems"]


async def test_the_html_is_self_contained_with_the_exposure_and_freezer_plots(lot: Lot, tmp_path: Path) -> None:
    r = report(lot)
    json_path, html_path = write_lot_report(r, tmp_path / "out")
    assert orjson.loads(json_path.read_bytes())["lot_id"] == LOT
    page = html_path.read_text(encoding="utf-8")
    assert page == render_lot_html(r)
    assert "<title>Lot LOT-A-0001: evidence pack</title>" in page and 'id="verdict">COMPLETE' in page
    assert "suite-3: PC-1 ≥0.5 µm" in page and ">action 3 520<" in page  # the exposure plot with its limit
    assert "CRF-1: freezing curve" in page
    assert page.count("<svg") == 2 and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "connection refused by 127.0.0.1:4840" in page and "op-eve" in page


async def test_a_lot_only_a_device_reported_is_placed_by_its_records(lot: Lot) -> None:
    r = build_lot_report(lot.journal.path, "LOT-DEV", sinks=SINKS, particle_limits=LIMITS, now=minutes(60))
    assert r["bindings"] == [] and [w["basis"] for w in r["windows"]] == ["records carrying the lot"]
    assert r["certificate"]["ok"] and r["certificate"]["records"] == 2
    (room,) = r["particle_exposure"]
    assert room["counter"] == "PC-1" and room["sizes"][SIZE]["max"] == 800.0  # only what was measured meanwhile


async def test_an_unknown_lot_says_so(lot: Lot) -> None:
    with pytest.raises(UnknownLot, match=r"lot 'LOT-NOPE' is not in journal .*bound lots: LOT-A-0001"):
        build_lot_report(lot.journal.path, "LOT-NOPE")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True, timeout=50,
                          check=False)


async def test_the_command_writes_the_pack_and_exits_by_the_certificate(lot: Lot, tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "gateway: {id: gw-lot}\n"
        "journal: {path: journal.sqlite}\n"
        "equipment:\n"
        "  - {id: PC-1, class: particle_counter, kind: modbus, isa95: {site: plant-1, area: suite-3, unit: iso-1},\n"
        "     transport: tcp, host: 127.0.0.1, port: 5020, device_id: 1, register_map: lighthouse-remote,\n"
        "     particle_limits: {grade: A, state: in_operation, alert_limits_per_m3: {0.5: 2000}}}\n"
        "sinks:\n"
        "  - {name: mes, type: http, url: 'http://127.0.0.1:9/records'}\n"
    )
    out = tmp_path / "packs"
    done = await asyncio.to_thread(cli, "lot-report", "-c", str(site), LOT, "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    data = orjson.loads(done.stdout)
    assert data["certificate"]["verdict"] == "COMPLETE" and data["config"]["path"].endswith("site.yaml")
    assert data["particle_exposure"][0]["sizes"][SIZE]["action_limit"] == 3520.0  # from the site's table
    assert f"lot {LOT}: COMPLETE" in done.stderr
    assert len(list(out.glob("lot-LOT-A-0001-*.html"))) == 1

    await lot.journal.settle("sink:mes", lot.seqs["expansion"])
    behind, unknown = await asyncio.gather(asyncio.to_thread(cli, "lot-report", "-c", str(site), LOT, "-o", str(out)),
                                           asyncio.to_thread(cli, "lot-report", "-c", str(site), "LOT-NOPE"))
    assert behind.returncode == 1 and "problem: sink mes: has taken records up to seq" in behind.stderr
    assert unknown.returncode == 2 and "error: lot 'LOT-NOPE' is not in journal" in unknown.stderr
