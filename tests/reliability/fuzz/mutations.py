"""Mutated protocol streams for the fuzzers: hypothesis strategies seeded from valid frames.

A seed is a valid stream cut into units: a frame or a line, or a control byte such as ENQ. Two kinds
of mutant come out of it:

* **detectable**: up to three units, each changed in one way the protocol's own checks must catch
  (a byte changed under the checksum, a bit flipped, a byte inserted or deleted where the framing
  shows it, a truncated frame, a duplicated control character, a wrong checksum, an oversize frame
  whose checksum is made right again, noise without a frame start, a unit repeated or dropped). The
  decoder may lose what was sent, but anything it accepts must be something that was sent.
* **havoc**: any changes stacked anywhere in the stream (random bytes, slices of other seeds spliced
  in, bytes the checksum cannot see). Only "no crash, and no record from a frame that fails its own
  check" can be asked of that: an 8-bit sum or a CRC-16 is fooled now and then by design.

The protocol-specific part (where the check sits, what the framing rejects) is a :class:`Framing`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st


@dataclass(frozen=True, slots=True)
class Framing:
    """What the mutators need to know about one protocol's frames."""

    name: str
    #: The byte a frame begins with (STX, '$'); detectable noise never contains it.
    start: int
    #: Bytes whose duplication the framing must catch (control characters, delimiters).
    controls: bytes
    #: Whether a unit is a frame (as opposed to a control byte).
    is_frame: Callable[[bytes], bool]
    #: The frame with its check changed by ``delta`` (never the right one).
    wrong_check: Callable[[bytes, int], bytes]
    #: The largest ``delta`` that gives a different check.
    check_range: int
    #: The frame made longer than the protocol allows by ``extra`` bytes, with a right check.
    oversize: Callable[[bytes, int], bytes]
    #: The bytes that, inserted at a position of a frame, the protocol is sure to catch.
    insertable: Callable[[bytes, int], Sequence[int]]
    #: The positions of a frame whose byte, deleted, the protocol is sure to catch.
    deletable: Callable[[bytes], Sequence[int]]


@dataclass(frozen=True, slots=True)
class Mutant:
    """A stream as it is fed to the decoder, and what was done to its seed."""

    data: bytes
    seed: int
    ops: tuple[str, ...]
    units: int
    mutated: int
    #: Where the stream is cut into reads (the sizes of successive pieces).
    chunks: tuple[int, ...] = ()


Corpus = Sequence[Sequence[bytes]]

FRAME_OPS = ("change", "flip", "insert", "delete", "truncate", "dup_control", "wrong_check", "oversize",
             "noise", "repeat", "drop")
CONTROL_OPS = ("change", "flip", "insert", "noise", "repeat", "drop")
#: Hypothesis draws only the choices worth shrinking (the seed, which units, which operations); one
#: salt per example seeds the positions, bytes and read sizes, so 10^5 examples stay affordable.
_SALT = st.integers(0, 2**32 - 1)


def chunks(rnd: random.Random) -> tuple[int, ...]:
    """Read sizes for a stream: none (one read) half the time, else up to six of 1-300 bytes."""
    return () if rnd.random() < 0.5 else tuple(rnd.randint(1, 300) for _ in range(rnd.randint(1, 6)))


def mutate_unit(unit: bytes, framing: Framing, op: str, rnd: random.Random) -> tuple[list[bytes], str]:
    """One detectable change to one unit: the replacement units and a label."""
    if op == "dup_control" and not any(b in framing.controls for b in unit):
        op = "repeat"
    if op in ("change", "flip"):
        i = rnd.randrange(len(unit))
        new = (unit[i] + rnd.randrange(1, 256)) % 256 if op == "change" else unit[i] ^ (1 << rnd.randrange(8))
        return [unit[:i] + bytes([new]) + unit[i + 1 :]], f"{op}@{i}"
    if op == "insert":
        i = rnd.randrange(len(unit) + 1)
        allowed = framing.insertable(unit, i) if framing.is_frame(unit) else range(256)
        return [unit[:i] + bytes([rnd.choice(allowed)]) + unit[i:]], f"insert@{i}"
    if op == "delete":
        i = rnd.choice(framing.deletable(unit))
        return [unit[:i] + unit[i + 1 :]], f"delete@{i}"
    if op == "truncate":
        i = rnd.randrange(1, len(unit))
        return [unit[:i]], f"truncate@{i}"
    if op == "dup_control":
        i = rnd.choice([i for i, b in enumerate(unit) if b in framing.controls])
        return [unit[: i + 1] + unit[i:]], f"dup_control@{i}"
    if op == "wrong_check":
        return [framing.wrong_check(unit, rnd.randint(1, framing.check_range))], "wrong_check"
    if op == "oversize":
        return [framing.oversize(unit, rnd.randint(1, 400))], "oversize"
    if op == "noise":
        noise = bytes(b for b in rnd.randbytes(rnd.randint(1, 40)) if b != framing.start)
        return [noise, unit], f"noise+{len(noise)}"
    if op == "repeat":
        return [unit, unit], "repeat"
    return [], "drop"


@st.composite
def detectable(draw: st.DrawFn, corpus: Corpus, framing: Framing, most: int = 3) -> Mutant:
    """Up to ``most`` units of one seed, each changed in a way the protocol must catch."""
    seed = draw(st.integers(0, len(corpus) - 1))
    units = list(corpus[seed])
    targets = {draw(st.integers(0, len(units) - 1)) for _ in range(draw(st.integers(1, most)))}
    rnd = random.Random(draw(_SALT))
    out: list[list[bytes]] = [[u] for u in units]
    ops = []
    for t in sorted(targets):
        menu = FRAME_OPS if framing.is_frame(units[t]) else CONTROL_OPS
        op = menu[draw(st.integers(0, len(menu) - 1))]
        out[t], label = mutate_unit(units[t], framing, op, rnd)
        ops.append(f"unit {t} {label}")
    data = b"".join(b for group in out for b in group)
    return Mutant(data, seed, tuple(ops), len(units), len(targets), chunks(rnd))


HAVOC_OPS = ("change", "insert", "delete", "cut", "repeat", "splice", "unit")


@st.composite
def havoc(draw: st.DrawFn, corpus: Corpus, framing: Framing) -> Mutant:
    """One to eight changes anywhere in a seed: bytes changed, inserted, deleted or repeated, slices of
    other seeds spliced in, random bytes, and the detectable unit changes too."""
    seed = draw(st.integers(0, len(corpus) - 1))
    units = list(corpus[seed])
    stream = bytearray(b"".join(units))
    ops = []
    rnd = random.Random(draw(_SALT))
    for _ in range(draw(st.integers(1, 8))):
        op = HAVOC_OPS[draw(st.integers(0, len(HAVOC_OPS) - 1))]
        i = rnd.randrange(len(stream) + 1)
        if op == "change" and i < len(stream):
            stream[i] = rnd.randrange(256)
        elif op == "insert":
            stream[i:i] = rnd.randbytes(rnd.randint(1, 16))
        elif op == "delete":
            del stream[i : i + rnd.randint(1, 16)]
        elif op == "cut":
            del stream[i:]
        elif op == "repeat":
            stream[i:i] = stream[i : i + rnd.randint(1, 64)]
        elif op == "splice":
            other = b"".join(rnd.choice(corpus))
            j = rnd.randrange(len(other))
            stream[i:i] = other[j : j + rnd.randint(1, 300)]
        else:
            unit = rnd.choice(units)
            menu = FRAME_OPS if framing.is_frame(unit) else CONTROL_OPS
            replaced, label = mutate_unit(unit, framing, rnd.choice(menu), rnd)
            stream[i:i] = b"".join(replaced)
            op = f"unit {label}"
        ops.append(f"{op}@{i}")
    return Mutant(bytes(stream), seed, tuple(ops), len(units), min(len(ops), len(units)), chunks(rnd))


def pieces(data: bytes, chunks: Sequence[int]) -> list[bytes]:
    """``data`` cut into reads of the given sizes, the rest in one last read."""
    out, pos = [], 0
    for size in chunks:
        if pos >= len(data):
            break
        out.append(data[pos : pos + size])
        pos += size
    if pos < len(data):
        out.append(data[pos:])
    return out


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (nothing in the drive waits on I/O) to its end."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("the adapter waited on something: the drive only runs code that never suspends")
