"""The freezer adapter's decode path without a serial line, for the fuzzers (no tests here).

The real :class:`CrfAdapter` is built from a site entry; bytes go through its own line assembler,
translator and batching (``_translate`` / ``_group``, what its read loop calls), then through the real
pipeline (normalise, the profile-conformance monitor) and the journal's payload encoding.

The seeds are streams of lines written by the freezer simulator's own encoder (``device_sims.freezer.wire``,
written apart from the adapter's codec): identity, profile, a run from start to end with samples (an
open thermocouple, a second probe, alarm bits set and cleared), events, replies.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from adapters.serial.crf import CrfEquipmentConfig, plugin
from adapters.serial.crf.adapter import CrfAdapter
from adapters.serial.crf.translate import Translator
from device_sims.freezer.wire import crc16_ccitt, line
from gateway.journal._chain import draft_body, encode_payload
from gateway.pipeline import Entry, EquipmentPipeline
from gateway.points import DeviceMap
from gateway.records import ReadingBatch, utc_now
from tests.reliability.fuzz.mutations import Framing, pieces

EQUIPMENT = CrfEquipmentConfig.model_validate(
    {"id": "CRF-F", "class": "controlled_rate_freezer", "kind": "crf", "port": "/dev/null",
     "approved_profiles": ["classic-cell-therapy"]}
)  # fmt: skip
DEVICE_MAP: DeviceMap = plugin.device_map(EQUIPMENT)
MAX_BODY = 200
#: What the codec gives as a line error's value.
REASONS = {"bad_checksum", "bad_frame", "no_start", "too_long", "unknown_message", "field_count", "bad_field"}


# -- an independent line check (the simulator's CRC, not the adapter's) --------------------------------
_LINE = re.compile(rb"\$([\x20-\x7e]{1,%d})\*([0-9A-F]{4})" % MAX_BODY)


def line_ok(raw: bytes) -> bool:
    """``$BODY*CCCC`` (CR LF stripped): printable body without ``$`` or ``*``, its CRC-16/CCITT-FALSE right."""
    m = _LINE.fullmatch(raw)
    if m is None or b"$" in m.group(1) or b"*" in m.group(1):
        return False
    return crc16_ccitt(m.group(1)) == int(m.group(2), 16)


# -- the framing, for the mutators ---------------------------------------------------------------------
def _body(unit: bytes) -> bytes:
    return unit[1 : unit.index(b"*")]


def _wrong_check(unit: bytes, delta: int) -> bytes:
    star = unit.index(b"*")
    crc = (int(unit[star + 1 : star + 5], 16) + delta) % 0x10000
    return unit[: star + 1] + b"%04X" % crc + unit[star + 5 :]


def _oversize(unit: bytes, extra: int) -> bytes:
    """A longer body than the protocol allows (the last field padded), its CRC made right again."""
    body = _body(unit)
    body += b"x" * max(extra, MAX_BODY + 1 - len(body))
    return b"$" + body + b"*%04X" % crc16_ccitt(body) + b"\r\n"


#: Bytes that make a line break its frame wherever they are inserted: a CRC-16 catches any change of
#: up to 16 bits in place, but an inserted or deleted printable byte can, rarely, keep it right.
_STRUCTURAL = bytes(b for b in range(256) if not 0x20 <= b <= 0x7E) + b"$*,"


def _deletable(unit: bytes) -> list[int]:
    star = unit.index(b"*")
    return [i for i, b in enumerate(unit) if b in b"$*,\r\n" or star < i <= star + 4]


FRAMING = Framing(
    name="crf",
    start=ord("$"),
    controls=b"$*,\r\n",
    is_frame=lambda unit: unit[:1] == b"$",
    wrong_check=_wrong_check,
    check_range=0xFFFF,
    oversize=_oversize,
    insertable=lambda unit, i: _STRUCTURAL,
    deletable=_deletable,
)


# -- seeds ---------------------------------------------------------------------------------------------
def _sample(t: str, run: str, step: str, kind: str, secs: str, sp: str, ch: str, p1: str, p2: str, valve: str,
            alarms: str) -> bytes:
    return line("S", t, run, step, kind, secs, sp, ch, p1, p2, valve, alarms)


IDENT = [line("ID", "cgt-gateway", "CRF-SIM 560", "SIM-0001", "1.0.0"), line("PRF", "classic-cell-therapy", "1",
         "11743B3C", "7"), line("RUN", "IDLE")]  # fmt: skip
RUN = [
    line("RUN", "START", "20261122T070000Z", "R0042", "classic-cell-therapy", "11743B3C", "LOT-0042"),
    _sample("20261122T070010Z", "R0042", "1", "H", "10", "4.00", "4.02", "3.91", "-", "0.4", "0000"),
    _sample("20261122T073000Z", "R0042", "5", "R", "600", "-15.00", "-15.10", "-11.84", "-12.01", "3.4", "0000"),
    _sample("20261122T073010Z", "R0042", "5", "R", "610", "-15.17", "-15.20", "OPEN", "-12.20", "3.4", "0008"),
    _sample("20261122T073020Z", "R0042", "5", "R", "620", "-15.33", "-15.41", "-12.10", "SHORT", "12.5", "0031"),
    line("EVT", "20261122T073512Z", "POWER_RESTORED", "power back after 120 s; run R0042 resumed"),
    _sample("20261122T073530Z", "R0042", "6", "R", "0", "-40.00", "-39.80", "-35.02", "-", "100.0", "0020"),
    line("RUN", "END", "20261122T080200Z", "R0042", "COMPLETE", "5"),
]
OTHER = [
    line("RUN", "ACTIVE", "20261122T070000Z", "R0043", "classic-cell-therapy", "11743B3C", "-"),
    _sample("20261122T090000Z", "R0043", "2", "R", "30", "-1.50", "-1.62", "OVER", "UNDER", "55.0", "0106"),
    line("ACK", "START"),
    line("NAK", "START", "run R0043 is going"),
    line("PRF", "-"),
    line("RUN", "END", "20261122T100000Z", "R0043", "ABORTED", "1"),
]
STREAMS: list[list[bytes]] = [IDENT + RUN, RUN[:4], OTHER, IDENT[:2] + OTHER[:2] + RUN[1:3]]
SENT: frozenset[bytes] = frozenset(u[:-2] for s in STREAMS for u in s)


# -- the drive ---------------------------------------------------------------------------------------
@dataclass
class Decoded:
    batches: list[tuple[ReadingBatch, list[Entry]]]

    @property
    def entries(self) -> list[Entry]:
        return [e for _, entries in self.batches for e in entries]


def decode(stream: bytes, chunks: tuple[int, ...] = ()) -> Decoded:
    """``stream`` through the adapter's line assembler, translator and batching, then the pipeline."""
    ad = CrfAdapter(EQUIPMENT)
    pipeline = EquipmentPipeline(EQUIPMENT, DEVICE_MAP, "f" * 64, monitors=plugin.monitors(EQUIPMENT, DEVICE_MAP))
    batches = []
    for piece in pieces(stream, chunks):
        for batch in ad._group(ad._translate(piece)):
            drafts = pipeline.process(batch)
            for draft, raw in drafts:
                encode_payload(draft_body(draft, raw))
            batches.append((batch, drafts))
    return Decoded(batches)


@functools.cache
def line_values(raw: bytes) -> set[tuple[str, object]]:
    """(point, value) of the readings one valid line gives by itself, to a translator that saw nothing before
    (every alarm bit reported): what a Good reading carrying that line may say."""
    result = Translator("CRF-F", "crf+serial:///dev/null").line(raw, utc_now())
    return {(r.point, r.value) for r in result.readings}
