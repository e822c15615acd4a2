"""The E1381 / LIS01-A2 data-link layer as an explicit state machine: no I/O, no asyncio, no clock.

Feed it what arrived and the time (``feed``), the time alone when a deadline passes (``tick``), a
message to send (``send``) or the news that a held message is committed (``release``); each call
returns the actions to carry out, in order: bytes to write, records received, transfers ended, link
events. ``deadline`` says when ``tick`` is due next. The same object runs as the computer (the gateway)
or as the instrument, so both sides of contention can be tested.

States::

    neutral ──ENQ in / ACK──▶ receiving ──frame / ACK──▶ receiving ──EOT──▶ neutral
                                   │ record ending a message: ACK held ──▶ holding ──release / ACK──▶ receiving
    neutral ──send / ENQ──▶ enquiring ──ACK──▶ sending ──ACK…EOT──▶ neutral
                                │ NAK: wait busy_retry_s, ENQ again (at most max_attempts)
                                │ ENQ (contention): the computer yields and waits contention_s;
                                │                   the instrument waits instrument_contention_s, ENQ again
    sending ──NAK──▶ same frame again; the max_attempts-th NAK aborts (EOT)
    sending ──EOT──▶ receiver interrupt: the frame counts as accepted; stop (EOT) or go on, by setting

Timers (seconds, all configurable): the sender waits ``reply_s`` (15) for an answer to ENQ or a frame,
then terminates with EOT; the receiver waits ``receive_s`` (30) for the next frame or EOT, then discards
the transfer. A receiver never waits on itself: while the ACK of a message's last frame is held for the
journal commit, no receive timer runs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from adapters.serial.astm.frames import (
    ACK,
    ENQ,
    EOT,
    LF,
    MAX_TEXT,
    NAK,
    STX,
    FrameError,
    message_frames,
    parse_frame,
)

Role = Literal["computer", "instrument"]
#: Bytes kept of line noise or of a frame in progress; the rest is counted, not stored.
MAX_KEPT = 4096


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """The link's timers and limits; defaults are the standard's."""

    reply_s: float = 15.0
    receive_s: float = 30.0
    busy_retry_s: float = 10.0
    contention_s: float = 20.0
    instrument_contention_s: float = 1.0
    max_attempts: int = 6
    max_text: int = MAX_TEXT
    #: What the sender does when the receiver answers a frame with EOT: stop now, or finish the message.
    on_interrupt: Literal["stop", "continue"] = "stop"


class State(StrEnum):
    NEUTRAL = "neutral"
    RECEIVING = "receiving"
    HOLDING = "holding"
    ENQUIRING = "enquiring"
    SENDING = "sending"


# -- actions ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Write:
    """Bytes to put on the line."""

    data: bytes


@dataclass(frozen=True, slots=True)
class RecordIn:
    """A complete record (text without its CR) and the frames that carried it.

    ``held``: its last frame's ACK is held until :meth:`Link.release` (the record ends a message).
    """

    text: bytes
    frames: tuple[bytes, ...]
    held: bool


@dataclass(frozen=True, slots=True)
class TransferEnded:
    """The receiving transfer is over: ``normal`` at EOT, else why it was cut off (records not yet
    ended by a message terminator are to be discarded)."""

    reason: Literal["normal", "timeout", "restarted", "closed"]
    detail: str


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """Something on the link worth keeping: a rejected frame, a duplicate, noise, a failed send."""

    name: str
    detail: str
    raw: bytes | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """How an outgoing message ended: ``ok``, or given up (``detail`` says why)."""

    ok: bool
    detail: str


Action = Write | RecordIn | TransferEnded | LinkEvent | SendResult


def ends_message(text: bytes) -> bool:
    """E1394: the terminator record (L) ends a message; its frame's ACK waits for the commit."""
    return text[:1] == b"L"


@dataclass
class _Outgoing:
    records: list[bytes]
    frames: list[bytes] = field(default_factory=list)
    index: int = 0
    attempts: int = 0  # NAKs of the current frame
    enquiries: int = 0  # ENQs that found the receiver busy or silent


class Link:
    """One side of an E1381 link. Not thread-safe; one owner feeds it."""

    def __init__(self, settings: LinkSettings | None = None, role: Role = "computer") -> None:
        self.settings = settings or LinkSettings()
        self.role = role
        self.state = State.NEUTRAL
        self._deadline: float | None = None
        self._not_before = 0.0  # no ENQ of ours before this (busy, contention, after a failed send)
        self._outbox: deque[_Outgoing] = deque()
        self._current: _Outgoing | None = None
        self._buf = bytearray()  # a frame being received, from STX
        self._overflow = 0
        self._in_frame = False
        self._noise = bytearray()
        self._noise_count = 0
        self._last_fn: int | None = None  # FN of the last frame accepted in this transfer
        self._record: list[bytes] = []  # frames of the record being received
        self._record_text = bytearray()

    # -- inputs ---------------------------------------------------------------------------------------
    @property
    def deadline(self) -> float | None:
        """When :meth:`tick` must be called next (None: nothing timed is pending)."""
        if self._deadline is not None:
            return self._deadline
        if self.state is State.NEUTRAL and self._outbox:
            return self._not_before
        return None

    @property
    def busy(self) -> bool:
        """True while a transfer is in progress in either direction."""
        return self.state is not State.NEUTRAL

    def send(self, records: list[bytes], now: float) -> list[Action]:
        """Queue a message (records without CR) and start sending when the line allows."""
        self._outbox.append(_Outgoing(records))
        return self._maybe_enquire(now)

    def release(self, now: float) -> list[Action]:
        """The held message is committed: ACK its last frame and wait for the next frame or EOT."""
        if self.state is not State.HOLDING:
            return []
        self.state = State.RECEIVING
        self._deadline = now + self.settings.receive_s
        return [Write(ACK)]

    def close(self) -> list[Action]:
        """The line is gone: a transfer in progress ends here, and so does an outgoing message."""
        actions: list[Action] = []
        if self.state in (State.RECEIVING, State.HOLDING):
            actions.append(TransferEnded("closed", "the line closed during the transfer"))
        if self.state in (State.ENQUIRING, State.SENDING) and self._current is not None:
            actions.append(SendResult(False, "the line closed while sending"))
            self._current = None
        actions += self._flush_noise()
        self._reset_receiver()
        self.state, self._deadline = State.NEUTRAL, None
        return actions

    def tick(self, now: float) -> list[Action]:
        """Run the timers that are due at ``now``."""
        due = self._deadline is not None and now >= self._deadline
        s = self.settings
        if self.state is State.RECEIVING and due:
            self._reset_receiver()
            self.state, self._deadline = State.NEUTRAL, None
            detail = f"no frame or EOT within {s.receive_s:g} s"
            return [*self._flush_noise(), TransferEnded("timeout", detail), *self._maybe_enquire(now)]
        if self.state is State.ENQUIRING and due:
            out = self._current
            assert out is not None
            out.enquiries += 1
            self.state, self._deadline = State.NEUTRAL, None
            actions: list[Action] = [Write(EOT), LinkEvent("no_reply", f"no answer to ENQ within {s.reply_s:g} s")]
            return actions + self._retry_or_give_up(out, now, "the receiver never answered ENQ")
        if self.state is State.SENDING and due:
            self._current = None
            self.state, self._deadline = State.NEUTRAL, None
            self._not_before = now + s.busy_retry_s
            detail = f"no answer to frame within {s.reply_s:g} s: message abandoned"
            return [Write(EOT), LinkEvent("no_reply", detail), SendResult(False, detail)]
        if self.state is State.NEUTRAL:
            return self._maybe_enquire(now)
        return []

    def feed(self, data: bytes, now: float) -> list[Action]:
        """Bytes from the line, in order of arrival."""
        actions: list[Action] = []
        for i in range(len(data)):
            byte = data[i : i + 1]
            if self._in_frame:
                actions += self._frame_byte(byte, now)
            elif self.state is State.NEUTRAL:
                actions += self._neutral_byte(byte, now)
            elif self.state is State.RECEIVING:
                actions += self._receiving_byte(byte, now)
            elif self.state is State.HOLDING:
                actions += self._holding_byte(byte, now)
            elif self.state is State.ENQUIRING:
                actions += self._enquiring_byte(byte, now)
            else:
                actions += self._sending_byte(byte, now)
        return actions + self._flush_noise(only_when_large=self.state is not State.NEUTRAL)

    # -- receiving ------------------------------------------------------------------------------------
    def _neutral_byte(self, byte: bytes, now: float) -> list[Action]:
        if byte == ENQ:
            return self._accept_enq(now)
        if byte != EOT:  # a stray EOT in neutral is harmless
            self._note_noise(byte)
        return []

    def _accept_enq(self, now: float) -> list[Action]:
        actions = self._flush_noise()
        self._reset_receiver()
        self.state, self._deadline = State.RECEIVING, now + self.settings.receive_s
        return [*actions, Write(ACK)]

    def _receiving_byte(self, byte: bytes, now: float) -> list[Action]:
        if byte == STX:
            self._in_frame, self._overflow = True, 0
            self._buf[:] = byte
            return []
        if byte == EOT:
            return self._end_transfer(now)
        if byte == ENQ:  # the sender started over: what it sent so far is void
            restarted = TransferEnded("restarted", "the sender sent ENQ in the middle of a transfer")
            return [*self._flush_noise(), restarted, *self._accept_enq(now)]
        self._note_noise(byte)
        return []

    def _holding_byte(self, byte: bytes, now: float) -> list[Action]:
        """While our ACK is held only EOT (the sender gave up) or ENQ (it starts over) mean anything."""
        if byte == EOT:
            return self._end_transfer(now)
        if byte == ENQ:
            restarted = TransferEnded("restarted", "the sender sent ENQ while its last frame awaited our ACK")
            return [*self._flush_noise(), restarted, *self._accept_enq(now)]
        self._note_noise(byte)
        return []

    def _end_transfer(self, now: float) -> list[Action]:
        self._reset_receiver()
        self.state, self._deadline = State.NEUTRAL, None
        return [*self._flush_noise(), TransferEnded("normal", "EOT"), *self._maybe_enquire(now)]

    def _frame_byte(self, byte: bytes, now: float) -> list[Action]:
        """Inside a frame: LF ends it (LF may not appear in text); STX, EOT or ENQ mean it was broken off."""
        if byte in (STX, EOT, ENQ):
            self._in_frame = False
            for b in self._buf:  # the broken-off start is noise; the new control byte counts
                self._note_noise(bytes((b,)))
            self._buf.clear()
            return self._receiving_byte(byte, now)
        if len(self._buf) < MAX_KEPT:
            self._buf += byte
        else:
            self._overflow += 1
        if byte != LF:
            return []
        self._in_frame = False
        raw = bytes(self._buf)
        self._deadline = now + self.settings.receive_s
        try:
            if self._overflow:
                raise FrameError(f"frame of more than {MAX_KEPT} bytes", raw)
            frame = parse_frame(raw, self.settings.max_text)
        except FrameError as exc:
            return [Write(NAK), LinkEvent("frame_rejected", f"NAK: {exc.reason}", raw)]
        if frame.fn == self._last_fn:
            return [Write(ACK), LinkEvent("duplicate_frame", f"frame {frame.fn} again: ACKed and discarded", raw)]
        expected = 1 if self._last_fn is None else (self._last_fn + 1) % 8
        if frame.fn != expected:
            return [Write(NAK), LinkEvent("frame_rejected", f"NAK: frame number {frame.fn}, expected {expected}", raw)]
        self._last_fn = frame.fn
        self._record.append(raw)
        self._record_text += frame.text
        if not frame.final:
            return [Write(ACK)]
        text = bytes(self._record_text[:-1])  # the record's CR ends the last frame's text
        record = RecordIn(text, tuple(self._record), ends_message(text))
        self._record, self._record_text = [], bytearray()
        if record.held:
            self.state, self._deadline = State.HOLDING, None
            return [record]
        return [record, Write(ACK)]

    def _reset_receiver(self) -> None:
        self._in_frame, self._overflow, self._last_fn = False, 0, None
        self._buf.clear()
        self._record, self._record_text = [], bytearray()

    def _note_noise(self, byte: bytes) -> None:
        self._noise_count += 1
        if len(self._noise) < MAX_KEPT:
            self._noise += byte

    def _flush_noise(self, only_when_large: bool = False) -> list[Action]:
        if not self._noise_count or (only_when_large and self._noise_count < MAX_KEPT):
            return []
        raw, count = bytes(self._noise), self._noise_count
        self._noise.clear()
        self._noise_count = 0
        kept = "" if count == len(raw) else f" (first {len(raw)} kept)"
        return [LinkEvent("line_noise", f"{count} bytes outside any frame ignored{kept}", raw)]

    # -- sending --------------------------------------------------------------------------------------
    def _maybe_enquire(self, now: float) -> list[Action]:
        if self.state is not State.NEUTRAL or not self._outbox or now < self._not_before:
            return []
        self._current = self._current or self._outbox.popleft()
        self.state, self._deadline = State.ENQUIRING, now + self.settings.reply_s
        return [Write(ENQ)]

    def _retry_or_give_up(self, out: _Outgoing, now: float, why: str) -> list[Action]:
        """After a busy NAK or a silent receiver: ENQ again later, or give the message up."""
        self._not_before = now + self.settings.busy_retry_s
        if out.enquiries >= self.settings.max_attempts:
            self._current = None
            return [SendResult(False, f"{why} ({out.enquiries} attempts): message abandoned")]
        self._outbox.appendleft(out)
        self._current = None
        return []

    def _enquiring_byte(self, byte: bytes, now: float) -> list[Action]:
        out = self._current
        assert out is not None
        if byte == ACK:
            out.frames = message_frames(out.records, self.settings.max_text)
            out.index, out.attempts = 0, 0
            self.state, self._deadline = State.SENDING, now + self.settings.reply_s
            return [Write(out.frames[0])]
        if byte == NAK:
            out.enquiries += 1
            self.state, self._deadline = State.NEUTRAL, None
            busy = LinkEvent("receiver_busy", f"NAK to ENQ: ENQ again in {self.settings.busy_retry_s:g} s")
            return [busy, *self._retry_or_give_up(out, now, "the receiver stayed busy")]
        if byte == ENQ:
            return self._contention(out, now)
        self._note_noise(byte)
        return []

    def _contention(self, out: _Outgoing, now: float) -> list[Action]:
        """Both sides sent ENQ: the instrument has priority."""
        self._outbox.appendleft(out)
        self._current = None
        self.state, self._deadline = State.NEUTRAL, None
        if self.role == "computer":
            # answer the instrument's next ENQ (neutral does); try again after contention_s
            self._not_before = now + self.settings.contention_s
            wait = self.settings.contention_s
            return [LinkEvent("contention", f"ENQ crossed the instrument's: yielding, ENQ again in {wait:g} s")]
        self._not_before = now + self.settings.instrument_contention_s
        wait = self.settings.instrument_contention_s
        return [LinkEvent("contention", f"ENQ crossed the computer's: ENQ again in {wait:g} s (priority)")]

    def _sending_byte(self, byte: bytes, now: float) -> list[Action]:
        out = self._current
        assert out is not None
        s = self.settings
        if byte == ACK:
            return self._next_frame(out, now)
        if byte == NAK:
            out.attempts += 1
            raw = out.frames[out.index]
            if out.attempts >= s.max_attempts:
                self._current = None
                self.state, self._deadline = State.NEUTRAL, None
                self._not_before = now + s.busy_retry_s
                detail = f"frame {raw[1:2].decode()} refused {out.attempts} times: message abandoned"
                return [Write(EOT), LinkEvent("send_aborted", detail, raw), SendResult(False, detail)]
            self._deadline = now + s.reply_s
            return [Write(raw)]
        if byte == EOT:  # receiver interrupt: the frame counts as accepted
            if s.on_interrupt == "continue":
                return [LinkEvent("receiver_interrupt", "EOT in reply: finishing the message"),
                        *self._next_frame(out, now)]
            done = out.index + 1 >= len(out.frames)
            self._current = None
            self.state, self._deadline = State.NEUTRAL, None
            if not done:  # the receiver discards the part it has: send it all again later
                self._outbox.appendleft(_Outgoing(out.records))
                self._not_before = now + (s.contention_s if self.role == "computer" else s.instrument_contention_s)
            event = LinkEvent("receiver_interrupt", "EOT in reply: stopped; the message goes again later")
            return [Write(EOT), event] + ([SendResult(True, "sent")] if done else [])
        self._note_noise(byte)
        return []

    def _next_frame(self, out: _Outgoing, now: float) -> list[Action]:
        out.index += 1
        out.attempts = 0
        if out.index < len(out.frames):
            self._deadline = now + self.settings.reply_s
            return [Write(out.frames[out.index])]
        self._current = None
        self.state, self._deadline = State.NEUTRAL, None
        return [Write(EOT), SendResult(True, "sent"), *self._maybe_enquire(now)]


__all__ = [
    "Action",
    "Link",
    "LinkEvent",
    "LinkSettings",
    "RecordIn",
    "SendResult",
    "State",
    "TransferEnded",
    "Write",
    "ends_message",
]
