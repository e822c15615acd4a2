"""The DAQ's clock read over SCPI through the real gateway: set 5 min ahead then back (one drift alarm,
one normal), and a clock kept in local time springing an hour ahead into daylight saving time (the offset
does not jump, nothing is raised or reordered). The hour repeated when DST ends cannot be reached from a
first comparison in real time; its reading is tested in tests/adapters/visa/test_visa_clock_replies.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from test_visa_support import daq, of, run_until, site_file

from device_sims.scpi_daq import ScpiDaqSim
from gateway.config import PROJECT_CONFIG_DIR
from gateway.journal import verify
from gateway.records import Kind, ProcessRecord

SKEW_S = 300.0
#: Berlin's clocks go from 02:00 CET to 03:00 CEST at this instant.
DST_START = datetime(2027, 3, 28, 1, 0, tzinfo=UTC)


def map_reading_the_clock_every_scan(tmp_path: Path) -> Path:
    """The shipped DAQ map, with the clock read on every scan instead of every 60th (a short test)."""
    shipped = (PROJECT_CONFIG_DIR / "visa-maps" / "scpi-temperature-daq.yaml").read_text()
    assert "clock: {every_n_scans: 60}" in shipped
    path = tmp_path / "daq-clock.yaml"
    path.write_text(shipped.replace("clock: {every_n_scans: 60}", "clock: {every_n_scans: 1}"))
    return path


def readings(records: list[ProcessRecord]) -> list[ProcessRecord]:
    return [r for r in of(records, "LN2-1", kind=Kind.MEASUREMENT)]


async def test_a_daq_clock_set_ahead_and_back_is_one_alarm_and_one_return(tmp_path: Path) -> None:
    phase: list[str] = []

    def during(records: list[ProcessRecord]) -> None:
        if not phase and len(readings(records)) >= 8:
            sim.inject("clock_skew", seconds=SKEW_S)
            phase.append("ahead")
        elif phase == ["ahead"] and of(records, "LN2-1", "clock_drift", value="ahead"):
            sim.clear("clock_skew")
            phase.append("back")

    async with ScpiDaqSim(seed=21) as sim:
        path = site_file(tmp_path, daq("LN2-1", sim, instrument_map=str(map_reading_the_clock_every_scan(tmp_path))))
        records = await run_until(path, lambda rs: bool(of(rs, "LN2-1", "clock_drift", value="normal")),
                                  during=during)
    assert verify(tmp_path / "journal.sqlite").ok
    ahead, normal = of(records, "LN2-1", "clock_drift")
    assert (ahead.value, normal.value) == ("ahead", "normal")
    assert ahead.detail is not None and ahead.detail.endswith("s ahead of the gateway, above the 60 s limit")
    probes = readings(records)
    assert all(r.source_time is None for r in probes), "SCPI replies carry no time: the records keep the gateway's"
    assert all(r.clock_offset_s is not None for r in probes)
    skewed = [r for r in probes if r.clock_offset_s > SKEW_S / 2]  # type: ignore[operator]
    in_step = [r for r in probes if r.clock_offset_s <= SKEW_S / 2]  # type: ignore[operator]
    assert skewed and all(r.clock_offset_s == pytest.approx(SKEW_S, abs=1.0) for r in skewed)
    assert all(abs(r.clock_offset_s) < 1.0 for r in in_step)  # type: ignore[arg-type]
    assert skewed[0].seq < ahead.seq < normal.seq and skewed[-1].seq < normal.seq


async def test_a_local_clock_crossing_into_dst_neither_jumps_nor_alarms(tmp_path: Path) -> None:
    # The instrument's clock shows Berlin time and is set to reach 02:00 CET a few seconds after start, when
    # it shows 03:00 CEST: read as a zone-less local time the clock is an hour ahead all of a sudden; read in
    # its zone, nothing happened. The drift limit sits half an hour beyond the (months-long) offset, so an
    # hour's jump would raise it.
    skew = (DST_START - datetime.now(UTC)).total_seconds() - 3.0
    async with ScpiDaqSim(seed=22, timezone="Europe/Berlin", skew_s=skew) as sim:
        extra = f"    device_timezone: Europe/Berlin\n    clock: {{max_offset_s: {skew + 1800:.0f}}}\n"
        path = site_file(tmp_path, daq("LN2-1", sim, instrument_map=str(map_reading_the_clock_every_scan(tmp_path)),
                                       extra=extra))
        shown: list[datetime] = []

        def after_dst(records: list[ProcessRecord]) -> bool:
            shown.append(sim.device_time())
            return len([r for r in readings(records) if device_utc(r, skew) > DST_START + timedelta(seconds=1)]) >= 8

        records = await run_until(path, after_dst)
    assert max(b - a for a, b in pairwise(shown)) > timedelta(minutes=59), "the instrument's local clock sprang ahead"
    assert verify(tmp_path / "journal.sqlite").ok
    probes = readings(records)
    assert [r for r in probes if device_utc(r, skew) < DST_START], "readings before DST began (a slow start?)"
    jumps = [r.clock_offset_s - skew for r in probes if abs(r.clock_offset_s - skew) > 1.0]  # type: ignore[operator]
    assert jumps == [], "the offset must not jump by an hour with the local clock"
    assert not of(records, "LN2-1", "clock_drift")
    seqs = [r.seq for r in of(records, "LN2-1")]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(a.gateway_time <= b.gateway_time for a, b in pairwise(probes))


def device_utc(record: ProcessRecord, skew_s: float) -> datetime:
    """Where the instrument's clock stood, in UTC, when the gateway received this reading."""
    return record.gateway_time + timedelta(seconds=skew_s)


async def test_a_clock_reply_that_is_no_time_is_one_event_and_the_readings_go_on(tmp_path: Path) -> None:
    path = map_reading_the_clock_every_scan(tmp_path)
    wrong = "clock: {every_n_scans: 1, time_query: '*IDN?'}"  # a query the instrument answers, but not with a time
    path.write_text(path.read_text().replace("clock: {every_n_scans: 1}", wrong))
    async with ScpiDaqSim(seed=23) as sim:
        records = await run_until(site_file(tmp_path, daq("LN2-1", sim, instrument_map=str(path))),
                                  lambda rs: len(readings(rs)) >= 20)
    (event,) = of(records, "LN2-1", "device_event", value="device_clock_unreadable")
    assert event.detail == (
        "the instrument's clock could not be read (SYST:DATE? / *IDN?): time reply "
        "'CGT Simulated Instruments,DAQ-4TC,SIM000...' is not three comma-separated numbers")
    probes = readings(records)
    assert all(r.quality.is_good and r.clock_offset_s is None for r in probes), "nothing lost, no offset invented"
