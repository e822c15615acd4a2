"""The VISA adapter when instruments misbehave: a hung one times out alone, the event loop never waits
for an instrument, and what an instrument says is wrong (errors, overload, garbage) is data."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from pathlib import Path

import pytest
import yaml
from test_visa_support import daq, of, run_until, site_file

from adapters.visa import VisaEquipmentConfig, plugin
from adapters.visa.session import VisaSession
from device_sims.scpi_daq import ScpiDaqSim
from gateway.adapter import SharedResources
from gateway.errors import CommunicationError
from gateway.records import Kind, Quality
from tests.reliability.fuzz.relays import TcpRelay
from tests.waiting import eventually

PROBE = "probe_101_temperature"


async def test_a_silent_instrument_times_out_while_another_keeps_flowing(tmp_path: Path) -> None:
    async with ScpiDaqSim(seed=21) as hung, ScpiDaqSim(seed=22, serial="SIM000002") as good:
        other = "{manufacturer: CGT Simulated Instruments, model: DAQ-4TC, serial: SIM000002}"
        path = site_file(tmp_path, daq("LN2-HUNG", hung, timeout_s=1.0),
                         daq("LN2-GOOD", good, identity=other, poll_interval_s=0.05))
        marks: dict[str, int] = {}

        def silence_then_wait(rs: list) -> None:
            if "silenced" not in marks and of(rs, "LN2-HUNG", PROBE):
                hung.inject("silent")
                marks["silenced"] = len(rs)

        records = await run_until(
            path, lambda rs: len(of(rs, "LN2-HUNG", "communication", value="lost")) == 1
            and len(of(rs[rs.index(of(rs, "LN2-HUNG", "communication")[0]):], "LN2-GOOD", PROBE)) >= 5,
            during=silence_then_wait)
    (lost,) = of(records, "LN2-HUNG", "communication", value="lost")
    assert lost.quality is Quality.BAD_TIMEOUT  # silent on a link that is up: a timeout, not a lost link
    assert "no reply to 'MEAS:TEMP? TC,K,(@101:104)' within 1 s" in (lost.detail or "")
    gap = of(records, "LN2-HUNG", PROBE)[-1]
    assert gap.value is None and gap.quality is Quality.BAD_TIMEOUT  # the outage is data
    good_times = [r.gateway_time for r in of(records, "LN2-GOOD", PROBE)[-15:]]
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(good_times)]
    assert max(steps) < 0.5, f"the good instrument was held up while the other hung: {steps}"


async def test_the_event_loop_is_not_blocked_while_a_query_hangs() -> None:
    """Measured: max loop lag while a query hangs for its 2 s timeout (bound 100 ms, typically ~10 ms)."""
    async with ScpiDaqSim(seed=23) as sim, SharedResources() as res:
        eq = VisaEquipmentConfig.model_validate({
            "id": "LN2-1", "class": "cryo_storage", "kind": "visa", "resource": sim.resource,
            "instrument_map": "scpi-temperature-daq", "timeout_s": 2.0,
            "identity": {"manufacturer": "CGT Simulated Instruments", "model": "DAQ-4TC", "serial": "SIM000001"},
        })
        lags: list[float] = []
        loop = asyncio.get_running_loop()

        async def ticker() -> None:
            while True:
                before = loop.time()
                await asyncio.sleep(0.01)
                lags.append(loop.time() - before - 0.01)

        async with plugin.create(eq, res) as adapter:
            await adapter.read_once()
            sim.inject("silent")
            tick = asyncio.create_task(ticker())
            started = time.monotonic()
            try:
                with pytest.raises(CommunicationError, match="within 2 s"):
                    await adapter.read_once()
            finally:
                tick.cancel()
                await asyncio.gather(tick, return_exceptions=True)
            hung_s = time.monotonic() - started
    assert 1.9 < hung_s < 3.0
    assert len(lags) > 100 and max(lags) < 0.1, f"max loop lag {max(lags) * 1000:.1f} ms while the query hung"


async def test_instrument_errors_overload_and_garbage_are_bad_records_and_events(tmp_path: Path) -> None:
    async with ScpiDaqSim(seed=24) as sim:
        path = site_file(tmp_path, daq("LN2-1", sim))
        step: list[str] = []

        def script(rs: list) -> None:
            readings = of(rs, "LN2-1", PROBE)
            if not step and readings:
                sim.inject("error_queue", count=2)
                sim.inject("overload", channel=102)
                step.append("errors")
            elif step == ["errors"] and of(rs, "LN2-1", "device_event", value="instrument_error"):
                sim.clear("overload")
                sim.inject("garbage")
                step.append("garbage")

        records = await run_until(
            path, lambda rs: any(r.quality is Quality.BAD_DECODING_ERROR for r in of(rs, "LN2-1", PROBE)),
            during=script)
    errors = of(records, "LN2-1", "device_event", value="instrument_error")
    assert [e.detail for e in errors] == ['-230,"Data corrupt or stale;input card fault 1"',
                                          '-230,"Data corrupt or stale;input card fault 2"']
    flagged = [r for r in records if r.seq > errors[-1].seq][:4]
    assert [r.parameter for r in flagged] == [f"probe_{c}_temperature" for c in (101, 102, 103, 104)]
    assert flagged[0].quality is Quality.BAD_DEVICE_FAILURE and flagged[0].value is not None  # kept, flagged
    assert "instrument error queue after this scan: -230" in (flagged[0].detail or "")
    assert flagged[1].quality is Quality.BAD_SENSOR_FAILURE and flagged[1].value is None  # never 9.9E37 °C
    assert "overload (+9.90000000E+37)" in (flagged[1].detail or "")
    assert all(r.value is None or r.value < 100 for r in of(records, "LN2-1", kind=Kind.MEASUREMENT))  # type: ignore[operator]
    garbled = next(r for r in of(records, "LN2-1", PROBE) if r.quality is Quality.BAD_DECODING_ERROR)
    assert garbled.value is None and "has 1 field(s), the map expects 4" in (garbled.detail or "")
    queue = of(records, "LN2-1", "device_event", value="instrument_error_queue")
    assert queue and "is not code,\"message\"" in (queue[0].detail or "")


async def test_a_dropped_connection_is_a_gap_and_the_instrument_comes_back(tmp_path: Path) -> None:
    async with ScpiDaqSim(seed=25) as sim:
        path = site_file(tmp_path, daq("LN2-1", sim, timeout_s=0.3))
        done: list[str] = []
        restoring: list[asyncio.Task[None]] = []

        def drop_then_restore(rs: list) -> None:
            if not done and of(rs, "LN2-1", PROBE):
                sim.inject("disconnect")
                done.append("dropped")
            elif done == ["dropped"] and of(rs, "LN2-1", "communication", value="lost"):
                restoring.append(asyncio.get_running_loop().create_task(sim.restore(), name="restore"))
                done.append("restoring")

        records = await run_until(path, lambda rs: bool(of(rs, "LN2-1", "communication", value="restored"))
                                  and of(rs, "LN2-1", PROBE)[-1].quality is Quality.GOOD, during=drop_then_restore)
        await asyncio.gather(*restoring)
        await eventually(lambda: sim.state().connections >= 2, what="a second connection")
    checks = of(records, "LN2-1", "device_event", value="identity_checked")
    assert len(checks) == 2, "the identity is checked again on every connect"


class StrayLineEnd(TcpRelay):
    """Once armed, puts one stray line end inside the next ``MEAS:TEMP?`` reply (after its second field)."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(target)
        self.armed = False
        self.split: bytes | None = None
        self._queries: deque[str] = deque()

    def request(self, data: bytes) -> None:
        self._queries += [line.split(b" ")[0].decode() for line in data.split(b"\n") if b"?" in line]

    def cut(self, buffer: bytearray) -> list[bytes]:
        units = []
        while (end := buffer.find(b"\n")) >= 0:
            units.append(bytes(buffer[: end + 1]))
            del buffer[: end + 1]
        return units

    def corrupt(self, unit: bytes) -> bytes:
        query = self._queries.popleft() if self._queries else ""
        if not self.armed or self.split is not None or query != "MEAS:TEMP?":
            return unit
        self.split = unit
        first, second, rest = unit.split(b",", 2)
        return first + b"," + second + b"\n," + rest


async def test_a_reply_out_of_step_is_one_bad_scan_then_the_session_reads_in_step(tmp_path: Path) -> None:
    """A stray line end inside one reply once left every later scan reading the previous query's leftover."""
    async with ScpiDaqSim(seed=26) as sim, StrayLineEnd(("127.0.0.1", sim.port)) as relay:
        path = site_file(tmp_path, daq("LN2-1", sim).replace(sim.resource, f"TCPIP0::127.0.0.1::{relay.port}::SOCKET"))

        def arm(rs: list) -> None:
            relay.armed = relay.armed or any(r.quality is Quality.GOOD for r in of(rs, "LN2-1", PROBE))

        def four_scans_after_the_split(rs: list) -> bool:
            probes = of(rs, "LN2-1", PROBE)
            bad = [i for i, r in enumerate(probes) if r.quality is Quality.BAD_DECODING_ERROR]
            return bool(bad) and len(probes) - bad[0] > 4

        records = await run_until(path, four_scans_after_the_split, during=arm)
    assert relay.split is not None
    probes = of(records, "LN2-1", PROBE)
    first_bad = next(i for i, r in enumerate(probes) if r.quality is Quality.BAD_DECODING_ERROR)
    bad = probes[first_bad]
    assert bad.value is None and "has 2 field(s), the map expects 4" in (bad.detail or "")
    after = probes[first_bad + 1 :]
    assert [r.quality for r in after] == [Quality.GOOD] * len(after), [r.detail for r in after]
    (event,) = of(records, "LN2-1", "device_event", value="reply_resynchronised")
    assert "discarded 1 stray reply line(s)" in (event.detail or "")
    sent = {float(u.split(b",")[0]) for u in relay.sent if u[:1] in b"+-" and u.count(b",") == 3}
    assert all(r.value in sent for r in after), "a Good value that is not the first field of a reply sent"
    assert not of(records, "LN2-1", "communication", value="lost"), "resynchronised without a reconnect"


async def test_a_map_with_the_wrong_field_count_is_bad_without_an_event_every_scan(tmp_path: Path) -> None:
    """Nothing is pending after a reply that is whole but does not fit the map: no resynchronisation to report."""
    shipped = yaml.safe_load((Path(__file__).parents[2] / "config/visa-maps/scpi-temperature-daq.yaml").read_text())
    shipped["scan"][0]["points"].remove("ch104")
    del shipped["points"]["ch104"]
    (tmp_path / "three.yaml").write_text(yaml.safe_dump(shipped))
    async with ScpiDaqSim(seed=27) as sim:
        path = site_file(tmp_path, daq("LN2-1", sim, instrument_map="three.yaml"))
        records = await run_until(path, lambda rs: len(of(rs, "LN2-1", PROBE)) >= 5)
    probes = of(records, "LN2-1", PROBE)
    assert all(r.quality is Quality.BAD_DECODING_ERROR for r in probes)
    assert "has 4 field(s), the map expects 3" in (probes[0].detail or "")
    assert not of(records, "LN2-1", "device_event", value="reply_resynchronised")
    assert not of(records, "LN2-1", "communication", value="lost")


@pytest.mark.parametrize("transport", ["tcp", "pty"])
async def test_discard_pending_drops_replies_nobody_read_and_the_next_query_reads_its_own(transport: str) -> None:
    async with ScpiDaqSim(transport=transport, seed=28) as sim:
        session = VisaSession(sim.resource, equipment_id="LN2-1", timeout_s=1.0, read_termination="\n",
                              write_termination="\n")
        await session.open()
        try:
            assert (await session.discard_pending(0.05)).lines == 0  # nothing pending: nothing to report
            await session.write("SYST:ERR?")  # a reply nobody reads
            await eventually(lambda: sim.state().commands >= 1, what="the unread query answered")
            dropped = await session.discard_pending(0.05)
            assert dropped.lines == 1 and dropped.size > 0
            assert (await session.query("*IDN?")).startswith(b"CGT Simulated Instruments,DAQ-4TC,")
        finally:
            await session.close()
