"""E1394 / LIS2-A2 messages: delimiters from the header, escapes, record order, H…L assembly. Pure.

A message is a header record (H), then patient, order, result, comment, query, manufacturer and
scientific records in the order the standard allows, then a terminator (L). The header's first
characters after ``H`` define the field, repeat, component and escape delimiters (``H|\\^&``), so every
other record of the message is split with those. Field numbers follow E1394: field 1 is the record
type, so ``O.3`` is the specimen id.

The assembler never drops anything: a complete message that breaks a rule is delivered as
:class:`Rejected` with its frames, and records cut off before their terminator as :class:`Discarded`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The record that may follow each record type (python-astm's flow map, with Q, M and S added).
_NEXT: dict[str | None, frozenset[str]] = {
    None: frozenset("H"),
    "H": frozenset("CPLQMS"),
    "P": frozenset("COLMS"),
    "O": frozenset("CPORLMS"),
    "R": frozenset("CPORLMS"),
    "C": frozenset("PORCQLMS"),
    "Q": frozenset("QCLMS"),
    "M": frozenset("CPORLQMS"),
    "S": frozenset("CPORLQMS"),
    "L": frozenset("H"),
}


@dataclass(frozen=True, slots=True)
class Delimiters:
    field: str = "|"
    repeat: str = "\\"
    component: str = "^"
    escape: str = "&"

    @classmethod
    def from_header(cls, text: str) -> Delimiters:
        """The four delimiters a header declares (``H|\\^&``); ValueError if they cannot be used."""
        if len(text) < 5 or text[0] != "H":
            raise ValueError("the header record is shorter than H plus its four delimiters")
        chars = text[1:5]
        if len(set(chars)) != 4 or any(c.isalnum() or c in "\r\n " for c in chars):
            raise ValueError(f"header declares unusable delimiters {chars!r}")
        return cls(chars[0], chars[1], chars[2], chars[3])

    def unescape(self, text: str) -> str:
        """Escape sequences → characters: &F& &S& &R& &E&, &Xhh…& hex; an unknown escape becomes nothing."""
        e = self.escape
        if e not in text:
            return text
        out: list[str] = []
        i = 0
        while i < len(text):
            j = text.find(e, i)
            if j < 0:
                out.append(text[i:])
                break
            k = text.find(e, j + 1)
            if k < 0:  # an escape that never closes stands as written
                out.append(text[i:])
                break
            out.append(text[i:j])
            out.append(self._escaped(text[j + 1 : k]))
            i = k + 1
        return "".join(out)

    def _escaped(self, code: str) -> str:
        simple = {"F": self.field, "S": self.component, "R": self.repeat, "E": self.escape}
        if code in simple:
            return simple[code]
        if code[:1] == "X" and len(code) > 1 and len(code) % 2 == 1:
            try:
                return bytes.fromhex(code[1:]).decode("latin-1")
            except ValueError:
                return ""
        return ""

    def escape_text(self, text: str) -> str:
        """Characters → escape sequences (the inverse of :meth:`unescape` for the four delimiters)."""
        codes = {self.escape: "E", self.field: "F", self.component: "S", self.repeat: "R"}
        return "".join(f"{self.escape}{codes[c]}{self.escape}" if c in codes else c for c in text)


@dataclass(frozen=True, slots=True)
class Record:
    """One record split into fields → repeats → components, unescaped. Field 1 is the record type."""

    type: str
    fields: tuple[tuple[tuple[str, ...], ...], ...]
    text: str
    frames: tuple[bytes, ...] = ()

    def get(self, number: int, component: int = 1, repeat: int = 1) -> str:
        """Field ``number`` (E1394 numbering), component and repeat (1-based); '' when absent."""
        try:
            return self.fields[number - 1][repeat - 1][component - 1]
        except IndexError:
            return ""

    def components(self, number: int, repeat: int = 1) -> tuple[str, ...]:
        try:
            return self.fields[number - 1][repeat - 1]
        except IndexError:
            return ()


def parse_record(text: str, d: Delimiters, frames: tuple[bytes, ...] = ()) -> Record:
    """Split one record. The header's delimiter field (H.2) is kept as written, not split."""
    if not text:
        raise ValueError("empty record")
    parts = text.split(d.field)
    fields: list[tuple[tuple[str, ...], ...]] = []
    for i, raw in enumerate(parts):
        if text[0] == "H" and i == 1:
            fields.append(((raw,),))
            continue
        fields.append(tuple(tuple(d.unescape(c) for c in rep.split(d.component)) for rep in raw.split(d.repeat)))
    return Record(text[0], tuple(fields), text, frames)


@dataclass(frozen=True, slots=True)
class Message:
    """A complete, valid message: header first, terminator last."""

    records: tuple[Record, ...]
    delimiters: Delimiters

    @property
    def frames(self) -> tuple[bytes, ...]:
        return tuple(f for r in self.records for f in r.frames)

    @property
    def header(self) -> Record:
        return self.records[0]

    @property
    def terminator(self) -> Record:
        return self.records[-1]

    def of_type(self, record_type: str) -> list[Record]:
        return [r for r in self.records if r.type == record_type]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that arrived whole (so it is ACKed) but breaks a rule; kept with its frames."""

    reason: str
    frames: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Discarded:
    """Records whose message never ended (line drop, timeout, sender abort); kept with their frames."""

    reason: str
    frames: tuple[bytes, ...]
    records: int


Outcome = Message | Rejected | Discarded


@dataclass
class Assembler:
    """Records in, messages out. One per link; not thread-safe."""

    encoding: str = "latin-1"
    _records: list[Record] = field(default_factory=list)
    _frames: list[bytes] = field(default_factory=list)
    _delims: Delimiters | None = None
    _error: str | None = None
    _last: str | None = None

    @property
    def open(self) -> bool:
        """True while a message has begun and not ended."""
        return bool(self._frames)

    def add(self, text: bytes, frames: tuple[bytes, ...]) -> Outcome | None:
        """One record as received; a message (or a rejected one) when this record ends it."""
        record_type = text[:1].decode("latin-1")
        if record_type == "H" and self._last not in (None, "L"):
            # a new header while a message is open: the open one never ended
            lost = self._cut(f"a new header arrived after {len(self._records)} records without a terminator")
            self._frames = list(frames)
            self._start(text, frames)
            return lost
        self._frames += frames
        if self._last in (None, "L"):
            self._start(text, frames)
        else:
            self._next(text, frames, record_type)
        if record_type != "L" or self._last is None:
            return None
        return self._finish()

    def cut(self, reason: str) -> Discarded | None:
        """The transfer ended without a terminator: what was received of the open message is discarded."""
        if not self._frames:
            return None
        return self._cut(reason)

    def _start(self, text: bytes, frames: tuple[bytes, ...]) -> None:
        self._records, self._error, self._delims, self._last = [], None, None, None
        try:
            decoded = text.decode(self.encoding)
            self._delims = Delimiters.from_header(decoded)
            self._records.append(parse_record(decoded, self._delims, frames))
            self._last = "H"
        except (UnicodeDecodeError, ValueError) as exc:
            first = text[:1].decode("latin-1") or "?"
            self._error = f"first record {first!r} is not a usable header: {exc}"
            self._last = "L" if first == "L" else first  # an orphan L ends the bad message at once

    def _next(self, text: bytes, frames: tuple[bytes, ...], record_type: str) -> None:
        if self._error is None:
            if record_type not in _NEXT.get(self._last, frozenset()):
                self._error = f"record {record_type!r} may not follow {self._last!r}"
            else:
                try:
                    assert self._delims is not None
                    self._records.append(parse_record(text.decode(self.encoding), self._delims, frames))
                except (UnicodeDecodeError, ValueError) as exc:
                    self._error = f"record {len(self._records) + 1} ({record_type!r}) cannot be read: {exc}"
        self._last = record_type

    def _finish(self) -> Outcome:
        frames, error, records, delims = tuple(self._frames), self._error, self._records, self._delims
        self._frames, self._records, self._error, self._delims, self._last = [], [], None, None, "L"
        if error is not None or delims is None:
            return Rejected(error or "no header", frames)
        return Message(tuple(records), delims)

    def _cut(self, reason: str) -> Discarded:
        out = Discarded(reason, tuple(self._frames), len(self._records))
        self._frames, self._records, self._error, self._delims, self._last = [], [], None, None, None
        return out
