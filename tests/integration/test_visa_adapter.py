"""The VISA adapter against the SCPI DAQ simulator through the real gateway: records over TCP and a pty,
the identity check, and the cold-chain excursion record."""

from __future__ import annotations

from pathlib import Path

from test_visa_support import daq, of, run_until, site_file

from device_sims.scpi_daq import ScpiDaqSim
from gateway.journal import JournalReader, verify
from gateway.records import Kind, Quality

PROBES = [f"probe_{c}_temperature" for c in (101, 102, 103, 104)]


async def test_tcp_socket_readings_are_one_record_per_channel_with_units(tmp_path: Path) -> None:
    async with ScpiDaqSim(seed=11) as sim:
        path = site_file(tmp_path, daq("LN2-1", sim))
        records = await run_until(path, lambda rs: len(of(rs, "LN2-1", PROBES[3])) >= 3)
        resource = sim.resource
    first = records[0]
    assert (first.parameter, first.kind, first.value) == ("device_event", Kind.EVENT, "identity_checked")
    assert "SIM000001" in (first.detail or "")  # which instrument (and firmware) the data came from
    scan = records[1:5]
    assert [r.parameter for r in scan] == PROBES
    assert all(r.unit == "Cel" and r.quality is Quality.GOOD and -191 < r.value < -155 for r in scan)  # type: ignore[operator]
    assert scan[0].source == f"visa://{resource}/@101" == f"visa://TCPIP0::127.0.0.1::{sim.port}::SOCKET/@101"
    assert verify(tmp_path / "journal.sqlite").ok
    with JournalReader(tmp_path / "journal.sqlite") as reader:
        assert list(reader.read()) == records


async def test_pty_serial_instrument_read_through_its_scan_list(tmp_path: Path) -> None:
    async with ScpiDaqSim(transport="pty", seed=12) as sim:
        path = site_file(tmp_path, daq("SHIP-1", sim, instrument_map="scpi-temperature-daq-scan"))
        records = await run_until(path, lambda rs: len(of(rs, "SHIP-1", PROBES[0])) >= 3)
        assert sim.state().scan_list == (101, 102, 103, 104)  # ROUT:SCAN sent at connect
        serial_path = sim.serial_path
    readings = of(records, "SHIP-1", kind=Kind.MEASUREMENT)
    assert {r.parameter for r in readings} == set(PROBES)
    assert all(r.quality is Quality.GOOD and r.source.startswith(f"visa://ASRL{serial_path}::INSTR/@")
               for r in readings)


async def test_another_instrument_on_the_address_is_refused_until_the_right_one_is_back(tmp_path: Path) -> None:
    async with ScpiDaqSim(seed=13) as sim:
        sim.inject("wrong_identity")
        path = site_file(tmp_path, daq("LN2-1", sim))
        refusals: list[int] = []

        def swap_back_after_refusals(rs: list) -> None:
            if len(refusals) < 1 and sim.state().identity_queries >= 4:
                refusals.append(len(rs))
                sim.clear("wrong_identity")

        records = await run_until(path, lambda rs: len(of(rs, "LN2-1", PROBES[0])) >= 2,
                                  during=swap_back_after_refusals)
    lost = of(records, "LN2-1", "communication", value="refused")
    assert len(lost) == 1, "refused once in the journal, however many times it was asked again"
    assert lost[0].quality is Quality.BAD_CONFIGURATION_ERROR
    assert "identity check failed, instrument refused: serial 'SIM000002' (expected 'SIM000001')" in (
        lost[0].detail or "")
    before = records[: records.index(of(records, "LN2-1", "communication", value="restored")[0])]
    assert not [r for r in before if r.kind is Kind.MEASUREMENT and r.value is not None], "no data while refused"
    assert [r.value for r in of(records, "LN2-1", "device_event")] == ["identity_checked"]


async def test_refusal_keeps_asking_without_hammering(tmp_path: Path) -> None:
    async with ScpiDaqSim(seed=14) as sim:
        sim.inject("wrong_identity")
        path = site_file(tmp_path, daq("LN2-1", sim))
        records = await run_until(path, lambda rs: sim.state().identity_queries >= 6, timeout_s=10)
        asked = sim.state().identity_queries
        commands = sim.state().commands
    assert commands == asked, "a refused instrument is asked who it is, and nothing else"
    assert len(of(records, "LN2-1", "communication", value="refused")) == 1


async def test_an_excursion_above_minus_150_is_one_alarm_with_its_duration(tmp_path: Path) -> None:
    limit = ("    excursions:\n      - {parameter: probe_104_temperature, above: -150, delay_s: 0.2, deadband: 2,\n"
             "         basis: 'product label: store at or below -150 Cel'}\n")
    async with ScpiDaqSim(seed=15, noise_c=0.02) as sim:
        path = site_file(tmp_path, daq("LN2-1", sim, extra=limit))
        injected: list[bool] = []

        def inject_once(rs: list) -> None:
            if not injected and len(of(rs, "LN2-1", PROBES[3])) >= 3:
                sim.inject("excursion", temperature_c=-140.0, duration_s=1.5, channel=104)
                injected.append(True)

        records = await run_until(
            path, lambda rs: bool(of(rs, "LN2-1", "probe_104_temperature_excursion_max")), during=inject_once)
    alarms = of(records, "LN2-1", "probe_104_temperature_excursion", Kind.ALARM)
    assert [a.value for a in alarms] == ["above_limit", "normal"]
    readings = of(records, "LN2-1", PROBES[3], Kind.MEASUREMENT)
    first_warm = next(r for r in readings if r.value == -140.0)
    back = next(r for r in readings if r.seq > first_warm.seq and r.value < -152.0)  # type: ignore[operator]
    assert (alarms[0].gateway_time, alarms[0].source) == (first_warm.gateway_time, first_warm.source)
    assert alarms[1].gateway_time == back.gateway_time
    (duration,) = of(records, "LN2-1", "probe_104_temperature_excursion_duration")
    assert duration.unit == "s" and duration.value == (back.gateway_time - first_warm.gateway_time).total_seconds()
    assert 1.3 <= duration.value <= 1.9  # type: ignore[operator]  # 1.5 s, read every 0.1 s
    (high,) = of(records, "LN2-1", "probe_104_temperature_excursion_max")
    (low,) = of(records, "LN2-1", "probe_104_temperature_excursion_min")
    assert (high.value, low.value, high.unit) == (-140.0, -140.0, "Cel")
    assert "product label" in (alarms[0].detail or "")
