"""Fuzzing the ASTM adapter: mutated E1381 transfers and garbled E1394 messages through the link state
machine, the message assembler, the profile, the pipeline and the journal's payload encoding.

Built on the property tests of ``tests/adapters/astm`` (random bytes, one changed byte), with seeds from
the simulator's own encoder and mutations of every kind. What must hold:

* nothing raises, whatever arrives;
* a frame the protocol can tell is corrupt (changed under its checksum, truncated, oversize, a wrong
  checksum, a control character doubled) never yields a record: every Good record of a detectable
  mutant is one the clean transfer gives, and every record handed to the assembler was sent;
* whatever arrives, a record is only ever assembled from frames that pass an independent check;
* a garbled value inside valid frames is a Bad_* record (a number that is not a decimal quotes its
  text) or a flagged one, never a Good value read from text that is not one.
"""

from __future__ import annotations

import math
import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.serial.astm.results import select
from device_sims.bactalert.astm import frames as sim_frames
from gateway.records import Quality
from tests.reliability.fuzz.astm_drive import (
    DECIMAL,
    ENQ,
    EOT,
    FRAMING,
    MESSAGES,
    PROFILE,
    RESTRICTED,
    TRANSFERS,
    decode,
    frame_ok,
    record_text,
    split_frames,
)
from tests.reliability.fuzz.budget import budget, tally, timeout_s
from tests.reliability.fuzz.mutations import Mutant, detectable, havoc

TALLY = tally("astm")
CLEAN = [decode(b"".join(t)) for t in TRANSFERS]
SENT = [{text for text, _ in clean.records} for clean in CLEAN]


def test_every_seed_decodes_whole_and_good() -> None:
    """The seeds themselves: every message comes through as Good records (else the oracles prove little)."""
    for transfer, clean in zip(TRANSFERS, CLEAN, strict=True):
        assert len(clean.messages) == sum(1 for u in transfer if u == bytes([EOT]))
        assert ("astm_message", "received") in clean.good()
        assert not [d for d, _ in clean.entries if d.quality.startswith("Bad")]


@pytest.mark.timeout(timeout_s(0.4))
@budget(0.4)
@given(detectable(TRANSFERS, FRAMING))
def test_a_corrupt_frame_never_yields_a_record(mutant: Mutant) -> None:
    out = decode(mutant.data, mutant.chunks)
    TALLY.add(mutant.units, mutant.mutated)
    for text, frames in out.records:
        assert text in SENT[mutant.seed], f"a record that was not sent: {text!r} ({mutant.ops})"
        assert all(frame_ok(f) for f in frames)
    stray = out.good() - CLEAN[mutant.seed].good()
    assert not stray, f"Good records the clean transfer does not give: {sorted(stray, key=str)[:5]} ({mutant.ops})"


@pytest.mark.timeout(timeout_s(0.3))
@budget(0.3)
@given(havoc(TRANSFERS, FRAMING))
def test_any_stream_never_raises_and_records_come_only_from_frames_that_check(mutant: Mutant) -> None:
    out = decode(mutant.data, mutant.chunks)
    TALLY.add(mutant.units, mutant.mutated)
    for text, frames in out.records:
        assert all(frame_ok(f) for f in frames), f"a record from a frame that fails its check ({mutant.ops})"
        assert text == record_text(frames)
    for draft, raw in out.entries:
        if draft.parameter == "astm_message" and draft.value == "received":
            assert raw is not None and all(frame_ok(f) for f in split_frames(raw))
        if draft.quality == "Good" and isinstance(draft.value, float):
            assert math.isfinite(draft.value)


# -- E1394: valid frames, garbled records ----------------------------------------------------------------
#: Latin-1 characters a frame may carry (not restricted, not CR).
_CHARS = "".join(chr(b) for b in range(256) if b not in RESTRICTED and b != 0x0D)
_TOKENS = ["|", "^", "\\", "&", "&F&", "&S&", "&R&", "&E&", "&X41&", "&Xzz&", "&X4&", "&&", "&Q&", "_", " ",
           "nan", "inf", "-inf", "Infinity", "1e999", "1_0", "+", "-", ".", "e", "E5", "0x1F", "\x00", "\t", "²",
           "POSITIVE", "NEGATIVE", "ONGOING", "TTD", "STATUS", "BOTTLE", "CELL", "C", "P", "I", "F",
           "20250230", "2025011408", "202501140930", "99999999999999", "-54.3", "+54.30", "5.43E1", ".5", "5."]
#: Where the profile reads a result: R.4 (value), R.9 (status), R.12 / R.13 (times), R.3 (test).
_RESULT_FIELDS = (3, 4, 4, 4, 9, 12, 13)
_OPS = ("value", "value", "char", "insert", "delete", "field", "type", "drop", "repeat", "swap", "delims")


def _text(rnd: random.Random) -> str:
    if rnd.random() < 0.5:
        return rnd.choice(_TOKENS)
    return "".join(rnd.choice(_CHARS) for _ in range(rnd.randint(1, 12)))


def _garble(records: list[str], op: str, rnd: random.Random) -> str:
    """One change to a message's records (in place); its label."""
    r = rnd.randrange(len(records))
    text = records[r]
    if op == "value":  # where the profile reads a result, a token or text, alone or inside the value
        results = [i for i, t in enumerate(records) if t.startswith("R|")] or [r]
        r = rnd.choice(results)
        fields = records[r].split("|")
        f = min(rnd.choice(_RESULT_FIELDS), len(fields) - 1)
        i = rnd.randint(0, len(fields[f]))
        fields[f] = _text(rnd) if rnd.random() < 0.5 else fields[f][:i] + _text(rnd) + fields[f][i:]
        records[r] = "|".join(fields)
    elif op == "char" and text:
        i = rnd.randrange(len(text))
        records[r] = text[:i] + rnd.choice(_CHARS) + text[i + 1 :]
    elif op == "insert":
        i = rnd.randint(0, len(text))
        records[r] = text[:i] + _text(rnd) + text[i:]
    elif op == "delete" and text:
        i = rnd.randrange(len(text))
        records[r] = text[:i] + text[i + rnd.randint(1, 8) :]
    elif op == "field":
        fields = text.split("|")
        fields[rnd.randrange(len(fields))] = _text(rnd)
        records[r] = "|".join(fields)
    elif op == "type" and text:
        records[r] = rnd.choice("HPORCQLMSX?h") + text[1:]
    elif op == "drop" and len(records) > 1:
        del records[r]
    elif op == "repeat":
        records.insert(r, text)
    elif op == "swap":
        s = rnd.randrange(len(records))
        records[r], records[s] = records[s], records[r]
    elif op == "delims" and text.startswith("H"):
        records[r] = "H" + "".join(rnd.choice("|\\^&!@#a ") for _ in range(4)) + text[5:]
    return f"{op} record {r}"


@st.composite
def garbled(draw: st.DrawFn) -> tuple[list[str], tuple[str, ...]]:
    """A message's records with one to four changes to their values, text, fields, types or order."""
    index = draw(st.integers(0, len(MESSAGES) - 1))
    records = list(MESSAGES[index])
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    ops = [_garble(records, _OPS[draw(st.integers(0, len(_OPS) - 1))], rnd) for _ in range(draw(st.integers(1, 4)))]
    records = [r for r in records if r] or ["H|\\^&"]
    return records, (f"message {index}", *ops)


_DATE = re.compile(r"\d{8}(\d{4}(\d{2})?)?", re.ASCII)


@pytest.mark.timeout(timeout_s(0.3))
@budget(0.3)
@given(garbled())
def test_a_garbled_value_in_valid_frames_is_bad_or_flagged_never_a_good_misreading(
    message: tuple[list[str], tuple[str, ...]],
) -> None:
    records, ops = message
    framed = sim_frames(records)
    # frame by frame, as an instrument sends them: each after the ACK of the one before
    out = decode(bytes([ENQ]) + b"".join(framed) + bytes([EOT]), (1, *map(len, framed)))
    TALLY.add(len(framed) + 2, len(framed))
    assert len(out.records) == len(records), f"every valid frame is taken ({ops})"
    for msg, batch, entries in out.received():
        drafts = [d for d, _ in entries[len(batch.events) : len(batch.events) + len(batch.readings)]]
        for reading, draft in zip(batch.readings, drafts, strict=True):
            point = PROFILE.points[reading.point]
            if point.select is None:
                continue
            found = select(msg, point.select, PROFILE.test_component)
            assert found is not None
            record, text = found
            pending = record.type == "R" and record.get(9) in point.pending_statuses
            if point.type == "number" and not pending:
                if draft.value is not None:  # Good, or flagged by the core (outside the valid range)
                    assert DECIMAL.fullmatch(text.strip(" ")), f"{text!r} read as the number {draft.value} ({ops})"
                    assert draft.value == float(text) and math.isfinite(draft.value)
                else:
                    assert draft.value is None and draft.quality.startswith("Bad"), (text, draft, ops)
                    assert repr(text) in (draft.detail or "") or "not a number" in (draft.detail or "")
            elif point.type == "datetime" and draft.quality == Quality.GOOD:
                assert _DATE.fullmatch(text), f"{text!r} read as the time {draft.value} ({ops})"
            elif point.values is not None and draft.quality == Quality.GOOD:
                assert draft.value in {*point.values.values(), point.pending_value}, (text, draft.value, ops)
