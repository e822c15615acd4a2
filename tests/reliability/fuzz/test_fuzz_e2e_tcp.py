"""End-to-end fuzzing over TCP: a particle counter (Modbus TCP) and a temperature DAQ (SCPI), each behind
a relay that corrupts the device's answers, read by one real gateway process beside a steady counter.

Neither protocol has a checksum over TCP: a changed register word or digit is a different value to any
receiver. So the relays corrupt what the protocol rules can see:

* Modbus: the answer's transaction id, protocol id, length, unit, function code or byte count; an
  exception answer instead; an answer cut short, dropped, followed by garbage or preceded by a stale one;
* SCPI: a reply with a field garbled into a non-number, a comma added or lost (the field count), the
  overload code in a field, an error-queue entry where the queue was empty, a reply garbled whole or
  never sent.

What must hold: the gateway keeps running and stops cleanly; ``verify`` passes; the steady counter's
stream has no gap, repeat or event; every Good record of the fuzzed device carries registers or a
field exactly as the simulator sent them (and the fuzzed counter's scripted counts still come out in
order: a late or stale answer is never taken for another request's); what was corrupted is a Bad
record or an outage recorded as data.
"""

from __future__ import annotations

import random
from collections import deque
from pathlib import Path

import pytest

from device_sims.particle_counter import ParticleCounterSim
from device_sims.scpi_daq import ScpiDaqSim
from tests.integration.test_visa_support import IDENTITY
from tests.reliability.fuzz.e2e import beside_a_steady_counter, with_raw
from tests.reliability.fuzz.relays import TcpRelay
from tests.reliability.gatewayproc import assert_consecutive, counter, counts_of, of_parameter, script_counts
from tests.waiting import eventually


class ModbusRelay(TcpRelay):
    """Cuts the counter's answers at their MBAP length and corrupts a share of them in their structure."""

    OPS = ("tid", "pid", "length", "unit", "fc", "count", "exception", "truncate", "drop", "garbage", "stale")

    def __init__(self, target: tuple[str, int], rng: random.Random, rate: float) -> None:
        super().__init__(target)
        self.rng, self.rate = rng, rate
        self.done: list[str] = []
        self._last: bytes | None = None

    def cut(self, buffer: bytearray) -> list[bytes]:
        out = []
        while len(buffer) >= 7 and len(buffer) >= (n := 6 + int.from_bytes(buffer[4:6], "big")):
            out.append(bytes(buffer[:n]))
            del buffer[:n]
        return out

    def connected(self) -> None:
        self._last = None

    def corrupt(self, unit: bytes) -> bytes:
        last, self._last = self._last, unit
        if len(unit) < 9 or self.rng.random() >= self.rate:
            return unit
        r, b = self.rng, bytearray(unit)
        op = r.choice(self.OPS)
        self.done.append(op)
        if op == "tid":
            b[0:2] = ((int.from_bytes(b[0:2], "big") + r.randint(1, 65534)) % 65536).to_bytes(2, "big")
        elif op == "pid":
            b[2:4] = r.randint(1, 65535).to_bytes(2, "big")
        elif op == "length":
            b[4:6] = (int.from_bytes(b[4:6], "big") + r.choice((-2, -1, 1, 2))).to_bytes(2, "big")
        elif op == "unit":
            b[6] = (b[6] + r.randint(1, 255)) % 256
        elif op == "fc":
            b[7] = (b[7] + r.randint(1, 255)) % 256
        elif op == "count":
            b[8] = (b[8] + r.randint(1, 255)) % 256
        elif op == "exception":
            b = b[:4] + b"\x00\x03" + b[6:7] + bytes([b[7] | 0x80, r.choice((1, 2, 3, 4, 6, 10, 11, 99))])
        elif op == "truncate":
            del b[r.randint(1, len(b) - 1) :]
        elif op == "drop":
            return b""
        elif op == "garbage":
            b += r.randbytes(r.randint(1, 20))
        elif op == "stale" and last is not None:
            return last + unit
        return bytes(b)


MEAS, ERR = "MEAS:TEMP?", "SYST:ERR?"
COUNT, PROBE = "particle_count_0_5um", "probe_101_temperature"


class ScpiRelay(TcpRelay):
    """Pairs each reply line with the query it answers and corrupts a share of them in ways the rules see."""

    _GARBLE = b"xq#@!?/_:;~"

    def __init__(self, target: tuple[str, int], rng: random.Random, rate: float) -> None:
        super().__init__(target)
        self.rng, self.rate = rng, rate
        self.done: list[str] = []
        self._queries: deque[str] = deque()
        self._partial = b""

    def connected(self) -> None:
        self._queries.clear()
        self._partial = b""

    def request(self, data: bytes) -> None:
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            for unit in line.decode("ascii", "replace").split(";"):
                header = unit.strip().split(" ")[0].upper()
                if "?" in header:
                    self._queries.append(header)

    def cut(self, buffer: bytearray) -> list[bytes]:
        out = []
        while (end := buffer.find(b"\n")) >= 0:
            out.append(bytes(buffer[: end + 1]))
            del buffer[: end + 1]
        return out

    def corrupt(self, unit: bytes) -> bytes:
        query = self._queries.popleft() if self._queries else ""
        r = self.rng
        if query not in (MEAS, ERR, "SYST:DATE?", "SYST:TIME?") or r.random() >= self.rate:
            return unit
        body = bytearray(unit[:-1])
        if query == ERR:
            self.done.append("error_entry")
            return b'-230,"Data corrupt or stale"\n' if r.random() < 0.5 else b"-23#,\"Dat\n"
        if query != MEAS:
            self.done.append("clock_garbled")
            return b"20#6,1?,22\n"
        op = r.choice(("garble", "comma", "uncomma", "overload", "junk", "drop"))
        self.done.append(op)
        if op == "garble":
            i = r.choice([i for i, c in enumerate(body) if c not in b","])
            body[i] = r.choice(self._GARBLE)
        elif op == "comma":
            body[r.randint(0, len(body)) : 0] = b","
        elif op == "uncomma":
            del body[r.choice([i for i, c in enumerate(body) if c == ord(",")])]
        elif op == "overload":
            fields = bytes(body).split(b",")
            fields[r.randrange(len(fields))] = b"+9.90000000E+37"
            body = bytearray(b",".join(fields))
        elif op == "junk":
            body = bytearray(r.choice(self._GARBLE) for _ in range(r.randint(0, 40)))
        else:
            return b""
        return bytes(body) + b"\n"


DAQ_ENTRY = ("  - {{id: LN2-1, class: cryo_storage, kind: visa, resource: 'TCPIP0::127.0.0.1::{port}::SOCKET',"
             " instrument_map: scpi-temperature-daq, identity: {identity}, poll_interval_s: 0.02,"
             " timeout_s: 0.3, clock: {{max_offset_s: null}}}}\n")  # fmt: skip


@pytest.mark.slow
async def test_tcp_devices_behind_corrupting_relays_never_give_a_record_from_a_corrupt_answer(
    tmp_path: Path, rng: random.Random
) -> None:
    async with (
        ParticleCounterSim(sample_time_s=0.1, seed=rng.randrange(1000)) as counter_sim,
        ScpiDaqSim(seed=rng.randrange(1000)) as daq,
    ):
        assert counter_sim.port is not None and daq.port is not None
        script_counts(counter_sim, 2000)
        async with (
            ModbusRelay(("127.0.0.1", counter_sim.port), rng, 0.12) as modbus_relay,
            ScpiRelay(("127.0.0.1", daq.port), rng, 0.15) as scpi_relay,
        ):
            entries = counter("PC-2", modbus_relay.port, timeout_s=0.3)
            entries += DAQ_ENTRY.format(port=scpi_relay.port, identity=IDENTITY)
            async with beside_a_steady_counter(tmp_path, "gw-fuzz-tcp", entries, rng) as run:

                def enough() -> bool:
                    run.gw.alive()
                    return (len(modbus_relay.done) >= 10 and len(scpi_relay.done) >= 12
                            and len(of_parameter(run.journal, COUNT, "PC-2")) >= 20
                            and len(of_parameter(run.journal, PROBE, "LN2-1")) >= 20)  # fmt: skip

                await eventually(enough, timeout_s=40, what="10 answers and 12 replies corrupted, 20 reads of each")
    _check_modbus(run.journal, modbus_relay)
    _check_scpi(run.journal, scpi_relay)


def _check_modbus(journal: Path, relay: ModbusRelay) -> None:
    """Every Good record of the fuzzed counter carries registers as the simulator sent them, and its
    scripted counts come out in order."""
    fuzzed = with_raw(journal, "PC-2")
    answers = [u[9:] for u in relay.sent if len(u) > 9 and u[7] in (3, 4)]  # the registers of each read answer
    for record, raw in fuzzed:
        if record.quality == "Good" and raw is not None:
            assert any(raw in a for a in answers), f"{record.parameter} = {record.value!r} from {raw.hex()}"
    assert_consecutive(counts_of(r for r, _ in fuzzed), "the fuzzed counter's counts (no answer taken for another's)")
    lost = [r for r, _ in fuzzed if r.parameter == "communication" and r.value == "lost"]
    print(f"Modbus: {len(relay.sent)} answers sent, {len(relay.done)} corrupted {sorted(set(relay.done))}; "
          f"{len(lost)} outages recorded, {len(fuzzed)} records checked")


def _check_scpi(journal: Path, relay: ScpiRelay) -> None:
    """Every Good probe record carries a field of a reply as the simulator sent it, read as written."""
    fields = {f.strip() for u in relay.sent for f in u.rstrip(b"\n").split(b",")}
    probes = [(r, raw) for r, raw in with_raw(journal, "LN2-1") if r.parameter.startswith("probe_")]
    for record, raw in probes:
        if record.quality == "Good":
            assert raw in fields and record.value == float(raw or b""), f"{record.value!r} from {raw!r}"
    bad = [r for r, _ in probes if r.quality != "Good"]
    assert bad, "the corrupted replies left Bad or flagged records"
    print(f"SCPI: {len(relay.sent)} replies sent, {len(relay.done)} corrupted {sorted(set(relay.done))}; "
          f"{len(bad)} probe records not Good, {len(probes)} checked")
