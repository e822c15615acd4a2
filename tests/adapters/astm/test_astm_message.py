"""E1394 messages: delimiters from the header, escapes, record order, assembly and what is never dropped."""

from __future__ import annotations

import pytest

from adapters.serial.astm.message import Assembler, Delimiters, Discarded, Message, Rejected, parse_record
from tests.adapters.astm.worked import BACTALERT_POSITIVE, records_of


def feed(assembler: Assembler, texts: list[bytes]) -> list[object]:
    out = []
    for i, text in enumerate(texts):
        got = assembler.add(text, (b"frame%d" % i,))
        if got is not None:
            out.append(got)
    return out


def test_the_bactalert_message_assembles_with_its_fields() -> None:
    (msg,) = feed(Assembler(), records_of(BACTALERT_POSITIVE))
    assert isinstance(msg, Message)
    assert [r.type for r in msg.records] == list("HPORRCL")
    assert msg.header.get(5, 2) == "BACT/ALERT 3D" and msg.header.get(13) == "LIS2-A2"
    order = msg.of_type("O")[0]
    assert order.components(3) == ("W123425000001", "CT-2025-0042-FP", "iAST")
    assert msg.of_type("R")[1].get(4) == "54.3" and msg.of_type("R")[1].get(3, 5) == "TTD"
    assert len(msg.frames) == 7


def test_delimiters_come_from_the_header() -> None:
    texts = [b"H!@#$!!!other sender", b"P!1", b"O!1!SPEC#LOT-7#iAST@SPEC2#LOT-8", b"L!1!N"]
    (msg,) = feed(Assembler(), texts)
    assert isinstance(msg, Message)
    assert msg.delimiters == Delimiters("!", "@", "#", "$")
    order = msg.of_type("O")[0]
    assert order.get(3, 2) == "LOT-7" and order.get(3, 2, repeat=2) == "LOT-8"


def test_escape_sequences() -> None:
    d = Delimiters()
    rec = parse_record("C|1|I|a&F&b&S&c&R&d&E&e&X41&f&Q&g", d)
    assert rec.get(4) == "a|b^c\\d&eAfg"  # an unknown escape (&Q&) is null
    assert d.unescape(d.escape_text("x|y^z\\w&v")) == "x|y^z\\w&v"
    assert d.unescape("open &F") == "open &F"


@pytest.mark.parametrize(
    ("texts", "reason"),
    [
        ([b"H|\\^&", b"R|1", b"L|1|N"], "record 'R' may not follow 'H'"),
        ([b"P|1", b"O|1", b"L|1|N"], "not a usable header"),
        ([b"H|||||", b"L|1|N"], "unusable delimiters"),
        ([b"H|\\^&", b"P|1", b"L|1|N|\xff"], None),  # latin-1 decodes anything: accepted
    ],
)
def test_a_message_breaking_a_rule_is_rejected_whole(texts: list[bytes], reason: str | None) -> None:
    (out,) = feed(Assembler(), texts)
    if reason is None:
        assert isinstance(out, Message)
        return
    assert isinstance(out, Rejected) and reason in out.reason
    assert out.frames == tuple(b"frame%d" % i for i in range(len(texts)))


def test_utf8_that_is_not_utf8_is_rejected_not_dropped() -> None:
    (out,) = feed(Assembler(encoding="utf-8"), [b"H|\\^&", b"P|1|\xff", b"L|1|N"])
    assert isinstance(out, Rejected) and "cannot be read" in out.reason


def test_a_transfer_cut_before_the_terminator_is_discarded_with_its_frames() -> None:
    asm = Assembler()
    assert feed(asm, records_of(BACTALERT_POSITIVE)[:4]) == []
    assert asm.open
    cut = asm.cut("line dropped")
    assert isinstance(cut, Discarded) and cut.records == 4 and len(cut.frames) == 4
    assert not asm.open and asm.cut("again") is None
    (msg,) = feed(asm, records_of(BACTALERT_POSITIVE))  # the resend assembles from scratch
    assert isinstance(msg, Message)


def test_a_new_header_in_an_open_message_discards_the_open_one() -> None:
    asm = Assembler()
    texts = records_of(BACTALERT_POSITIVE)
    out = feed(asm, texts[:3] + texts)
    assert isinstance(out[0], Discarded) and len(out[0].frames) == 3
    assert isinstance(out[1], Message) and len(out[1].frames) == 7


def test_several_messages_in_one_transfer() -> None:
    texts = records_of(BACTALERT_POSITIVE)
    out = feed(Assembler(), texts + texts)
    assert [type(o) for o in out] == [Message, Message]


def test_query_records_and_manufacturer_records_are_in_order() -> None:
    (msg,) = feed(Assembler(), [b"H|\\^&", b"Q|1|^ALL||^^^ALL||||||||F", b"M|1|x", b"L|1|N"])
    assert isinstance(msg, Message) and [r.type for r in msg.records] == list("HQML")
