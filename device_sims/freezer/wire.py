"""The freezer's side of the line protocol, written again from the protocol description (not from the
adapter's codec), so that a disagreement between the two shows up as a failing integration test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..clock import DeviceClock
from .model import Reading


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, bit by bit: poly 0x1021, init 0xFFFF."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def line(*fields: str, corrupt: bool = False) -> bytes:
    """``$f1,f2,...*CCCC\\r\\n``; ``corrupt`` sends a wrong CRC (a fault)."""
    body = ",".join(fields).encode("ascii")
    crc = crc16_ccitt(body) ^ (0x5A5A if corrupt else 0)
    return b"$" + body + b"*" + f"{crc:04X}".encode("ascii") + b"\r\n"


def parse_command(raw: bytes) -> list[str] | None:
    """The fields of a command line (CR LF stripped), or None if its frame or CRC is wrong."""
    if not raw.startswith(b"$") or len(raw) < 7 or raw[-5:-4] != b"*":
        return None
    body = raw[1:-5]
    try:
        sent = int(raw[-4:], 16)
        text = body.decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    if crc16_ccitt(body) != sent:
        return None
    return text.split(",")


class FreezerClock(DeviceClock):
    """Device time: the wall clock at power-on plus simulated seconds since (runs ``time_scale`` fast), plus
    the clock's offset (``skew_s``, how far the freezer's clock was set off, and a clock_skew fault on top)."""

    def __init__(self, epoch: datetime | None = None, skew_s: float = 0.0) -> None:
        super().__init__(skew_s)
        self.epoch = epoch or datetime.now(UTC)

    def stamp(self, sim_s: float) -> str:
        """The clock's second, as the protocol writes it (truncated, as a clock display shows it)."""
        return (self.epoch + timedelta(seconds=sim_s + self.offset_s)).strftime("%Y%m%dT%H%M%SZ")


def _temp(value: float | None) -> str:
    return "OPEN" if value is None else f"{value:.2f}"


def sample_line(r: Reading, clock: FreezerClock, *, corrupt: bool = False) -> bytes:
    probes = [_temp(p) for p in r.probes] + ["-"] * (2 - len(r.probes))
    return line(
        "S", clock.stamp(r.time_s), r.run_id or "-", str(r.step), r.step_type, str(r.step_elapsed_s),
        f"{r.set_point:.2f}", _temp(r.chamber), *probes, f"{r.valve_pct:.1f}", f"{r.alarms:04X}",
        corrupt=corrupt,
    )
