"""The ASTM adapter's decode path without a serial line, for the fuzzers (no tests here).

The real :class:`AstmAdapter` is built from a site entry and given a stand-in for its serial line that
keeps what the adapter writes (ACK, NAK) and reads nothing: bytes go in through the link state machine
(``link.feed`` / ``link.tick``) and the adapter's own ``_apply``, as its read loop does; the batches it
queues go through the real pipeline (normalise, monitors) and the journal's payload encoding; a held
ACK is released after each batch, as the supervisor does once it has committed. Nothing in the path
suspends, so each coroutine is run to its end in place, with no event loop.

The seeds are whole transfers (ENQ, frames, EOT) of the domain notes' worked messages and of messages
built by the BacT/ALERT simulator's own encoder (load, positive, negative, a correction, ETB frames).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from adapters.serial.astm import AstmEquipmentConfig, plugin
from adapters.serial.astm.adapter import HELD, AstmAdapter
from adapters.serial.astm.message import Assembler, Message, Outcome
from adapters.serial.astm.profile import AstmProfile
from device_sims.bactalert.astm import bottle_message, frames
from device_sims.bactalert.model import Bottle
from gateway.journal._chain import draft_body, encode_payload
from gateway.pipeline import Entry, EquipmentPipeline
from gateway.records import ReadingBatch
from tests.adapters.astm.worked import BACTALERT_POSITIVE, MINI_LIS
from tests.reliability.fuzz.mutations import Framing, pieces, run

STX, ETX, ETB, EOT, ENQ, CR, LF = 0x02, 0x03, 0x17, 0x04, 0x05, 0x0D, 0x0A
#: Characters LIS01-A2 forbids in frame text (a frame carrying one is refused).
RESTRICTED = frozenset(b"\x01\x02\x03\x04\x05\x06\x10\x15\x16\x17\x0a\x11\x12\x13\x14")
MAX_TEXT = 240

EQUIPMENT = AstmEquipmentConfig.model_validate(
    {"id": "BTA-F", "class": "culture_reader", "kind": "astm", "port": "/dev/null", "timers": {"receive_s": 1.0}}
)
PROFILE: AstmProfile = plugin.device_map(EQUIPMENT)


# -- an independent frame check (not the adapter's) ----------------------------------------------------
def frame_ok(frame: bytes) -> bool:
    """STX FN text ETX|ETB C1 C2 CR LF with the right 8-bit sum and text LIS01-A2 allows."""
    if len(frame) < 7 or frame[0] != STX or frame[-2:] != b"\r\n" or frame[-5] not in (ETX, ETB):
        return False
    if frame[1] not in b"01234567" or len(frame) - 7 > MAX_TEXT or any(b in RESTRICTED for b in frame[2:-5]):
        return False
    return frame[-4:-2].upper() == b"%02X" % (sum(frame[1:-4]) % 256)


def frame_text(frame: bytes) -> bytes:
    return frame[2:-5]


def split_frames(raw: bytes) -> list[bytes]:
    """Concatenated frames (as a record's raw bytes keep them) one by one."""
    return [bytes([STX]) + part for part in raw.split(bytes([STX])) if part]


def record_text(frames_: tuple[bytes, ...] | list[bytes]) -> bytes:
    """A record's text from its frames: the texts joined, without the record's closing CR."""
    return b"".join(frame_text(f) for f in frames_)[:-1]


# -- the framing, for the mutators ---------------------------------------------------------------------
def _wrong_check(frame: bytes, delta: int) -> bytes:
    value = (int(frame[-4:-2], 16) + delta) % 256
    return frame[:-4] + b"%02X" % value + frame[-2:]


def _oversize(frame: bytes, extra: int) -> bytes:
    """More text than a frame may carry (the record's CR kept last), the checksum made right again."""
    text = frame_text(frame)
    pad = b"x" * max(extra, MAX_TEXT + 1 - len(text))
    body = frame[1:2] + (text[:-1] + pad + text[-1:] if frame[-5] == ETX else text + pad) + frame[-5:-4]
    return bytes([STX]) + body + b"%02X" % (sum(body) % 256) + b"\r\n"


FRAMING = Framing(
    name="astm",
    start=STX,
    controls=bytes([STX, ETX, ETB, EOT, ENQ, CR, LF]) + b"|\\^&",
    is_frame=lambda unit: unit[:1] == bytes([STX]),
    wrong_check=_wrong_check,
    check_range=255,
    oversize=_oversize,
    # any byte but NUL changes the 8-bit sum (or the frame's shape); a NUL inserted in the text does not
    insertable=lambda frame, i: range(1, 256),
    deletable=lambda frame: range(len(frame)),
)


# -- seeds ---------------------------------------------------------------------------------------------
def _bottle(status: str, **extra: Any) -> Bottle:
    loaded = datetime(2025, 1, 10, 8, 23, tzinfo=UTC)
    done = datetime(2025, 1, 12, 14, 41, tzinfo=UTC) if status != "in_progress" else None
    return Bottle("2347811234", "W123425000001", "CT-2025-0042-FP", loaded_at=loaded, status=status,  # type: ignore[arg-type]
                  detected_at=done, **extra)


def _sim(records: list[str]) -> list[bytes]:
    return [bytes([ENQ]), *frames(records), bytes([EOT])]


_AT = datetime(2025, 1, 14, 9, 30, 12)
LOAD = bottle_message(_bottle("in_progress"), _AT, "BTA3D-01", "SN1234")
POSITIVE = bottle_message(_bottle("positive"), _AT, "BTA3D-01", "SN1234")
NEGATIVE = bottle_message(_bottle("negative", bottle_type="iNST"), _AT, "BTA3D-01", "SN1234")
#: A comment long enough for ETB frames and a frame number wrapping 7 → 0.
LONG = bottle_message(_bottle("positive"), _AT, "BTA3D-01", "SN1234", comment_pad=600)
CORRECTION = [r.replace("|F||AUTO|", "|C||AUTO|") if r.startswith("R|") else r for r in POSITIVE]

#: Record lists of whole messages (for the message-level fuzzer), and transfers (for the frame level).
MESSAGES: list[list[str]] = [
    [record_text([f]).decode("latin-1") for f in MINI_LIS],
    [record_text([f]).decode("latin-1") for f in BACTALERT_POSITIVE],
    LOAD, POSITIVE, NEGATIVE, LONG, CORRECTION,
]
TRANSFERS: list[list[bytes]] = [
    [bytes([ENQ]), *MINI_LIS, bytes([EOT])],
    [bytes([ENQ]), *BACTALERT_POSITIVE, bytes([EOT])],
    _sim(LOAD) + _sim(POSITIVE),
    _sim(NEGATIVE),
    _sim(LONG),
    _sim(POSITIVE) + _sim(CORRECTION),
]


# -- the drive ---------------------------------------------------------------------------------------
class _Line:
    """Where the serial line was: keeps the adapter's writes, reads nothing."""

    def __init__(self) -> None:
        self.written = bytearray()

    async def write(self, data: bytes) -> None:
        self.written += data


@dataclass
class _Recording(Assembler):
    """The adapter's own assembler, also keeping each record it was given and each outcome."""

    records: list[tuple[bytes, tuple[bytes, ...]]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, text: bytes, frames: tuple[bytes, ...]) -> Outcome | None:
        self.records.append((text, frames))
        out = super().add(text, frames)
        if out is not None:
            self.outcomes.append(out)
        return out

    def cut(self, reason: str) -> Any:
        out = super().cut(reason)
        if out is not None:
            self.outcomes.append(out)
        return out


@dataclass
class Decoded:
    """What the adapter made of one stream: each batch with its records, the records the link gave the
    assembler (text and frames), the complete messages, and what the adapter wrote on the line."""

    batches: list[tuple[ReadingBatch, list[Entry]]]
    records: list[tuple[bytes, tuple[bytes, ...]]]
    messages: list[Message]
    written: bytes

    @property
    def entries(self) -> list[Entry]:
        return [e for _, entries in self.batches for e in entries]

    def good(self) -> set[tuple[str, object]]:
        """(parameter, value) of every Good record of the results (link events left out)."""
        return {(d.parameter, d.value) for d, _ in self.entries if d.quality == "Good" and d.parameter != "astm_link"}

    def received(self) -> list[tuple[Message, ReadingBatch, list[Entry]]]:
        """Each complete message with its batch and records, in order."""
        batches = [(b, e) for b, e in self.batches if b.readings and b.readings[0].point == "message"
                   and b.readings[0].value == "received"]
        return [(m, b, e) for m, (b, e) in zip(self.messages, batches, strict=True)]


def decode(stream: bytes, chunks: tuple[int, ...] = ()) -> Decoded:
    """``stream`` through the adapter in reads of ``chunks`` sizes, 0.4 s apart; the line drops at the end."""
    ad = AstmAdapter(EQUIPMENT, PROFILE)
    line = _Line()
    ad.line = line  # type: ignore[assignment]
    recording = _Recording(encoding=EQUIPMENT.encoding)
    ad.assembler = recording
    pipeline = EquipmentPipeline(EQUIPMENT, PROFILE, "f" * 64, None, plugin.monitors(EQUIPMENT, PROFILE))
    batches: list[tuple[ReadingBatch, list[Entry]]] = []
    now = 0.0

    def commit() -> None:
        while ad._ready:
            batch = ad._ready.popleft()
            drafts = pipeline.process(batch)
            for draft, raw in drafts:
                encode_payload(draft_body(draft, raw))
            batches.append((batch, drafts))
            if batch.token == HELD:  # committed: the ACK the instrument waits for goes out now
                run(ad._apply(ad.link.release(now)))

    for piece in pieces(stream, chunks):
        run(ad._apply(ad.link.feed(piece, now)))
        commit()
        now += 0.4
        run(ad._apply(ad.link.tick(now)))
        commit()
    run(ad._apply(ad.link.tick(now + 100.0)))
    commit()
    run(ad._apply(ad.link.close()))
    commit()
    messages = [m for m in recording.outcomes if isinstance(m, Message)]
    return Decoded(batches, recording.records, messages, bytes(line.written))


#: A decimal number as a result value may be written (sign, digits, point, exponent), ASCII only.
DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
