"""The E1381 link state machine with an injected clock: every reply, timer, retry and contention rule."""

from __future__ import annotations

from adapters.serial.astm.frames import build_frame, message_frames
from adapters.serial.astm.link import (
    Action,
    Link,
    LinkEvent,
    LinkSettings,
    RecordIn,
    SendResult,
    State,
    TransferEnded,
    Write,
)
from tests.adapters.astm.worked import ACK, BACTALERT_POSITIVE, ENQ, EOT, NAK, records_of


def writes(actions: list[Action]) -> bytes:
    return b"".join(a.data for a in actions if isinstance(a, Write))


def events(actions: list[Action]) -> list[str]:
    return [a.name for a in actions if isinstance(a, LinkEvent)]


def records(actions: list[Action]) -> list[RecordIn]:
    return [a for a in actions if isinstance(a, RecordIn)]


def receiving(settings: LinkSettings | None = None) -> Link:
    link = Link(settings)
    assert writes(link.feed(ENQ, 0.0)) == ACK
    assert link.state is State.RECEIVING
    return link


def test_a_whole_message_is_acked_frame_by_frame_except_the_last_which_waits_for_the_commit() -> None:
    link = receiving()
    got: list[RecordIn] = []
    for i, frame in enumerate(BACTALERT_POSITIVE[:-1]):
        actions = link.feed(frame, 1.0 + i)
        assert writes(actions) == ACK
        got += records(actions)
    last = link.feed(BACTALERT_POSITIVE[-1], 9.0)
    assert writes(last) == b"" and link.state is State.HOLDING
    assert link.deadline is None, "no receive timer runs while the gateway itself is committing"
    got += records(last)
    assert [r.text for r in got] == records_of(BACTALERT_POSITIVE)
    assert [r.held for r in got] == [False] * 6 + [True]
    assert got[2].frames == (BACTALERT_POSITIVE[2],)
    assert writes(link.release(100.0)) == ACK
    assert link.state is State.RECEIVING and link.deadline == 130.0
    ended = link.feed(EOT, 101.0)
    assert ended == [TransferEnded("normal", "EOT")] and link.state is State.NEUTRAL


def test_a_frame_split_across_reads_is_one_frame() -> None:
    link = receiving()
    frame = BACTALERT_POSITIVE[0]
    assert link.feed(frame[:10], 1.0) == []
    actions = link.feed(frame[10:], 1.1)
    assert writes(actions) == ACK and len(records(actions)) == 1


def test_a_bad_checksum_is_nakked_and_the_retransmission_accepted() -> None:
    link = receiving()
    bad = BACTALERT_POSITIVE[0][:-4] + b"00\r\n"
    actions = link.feed(bad, 1.0)
    assert writes(actions) == NAK and events(actions) == ["frame_rejected"] and not records(actions)
    assert next(a for a in actions if isinstance(a, LinkEvent)).raw == bad
    again = link.feed(BACTALERT_POSITIVE[0], 2.0)
    assert writes(again) == ACK and len(records(again)) == 1


def test_a_wrong_frame_number_is_nakked() -> None:
    link = receiving()
    link.feed(BACTALERT_POSITIVE[0], 1.0)
    actions = link.feed(BACTALERT_POSITIVE[2], 2.0)  # frame 3 where 2 is due
    assert writes(actions) == NAK and "expected 2" in actions[-1].detail  # type: ignore[union-attr]


def test_a_duplicate_frame_is_acked_and_discarded() -> None:
    link = receiving()
    link.feed(BACTALERT_POSITIVE[0], 1.0)
    actions = link.feed(BACTALERT_POSITIVE[0], 2.0)  # the sender missed our ACK
    assert writes(actions) == ACK and events(actions) == ["duplicate_frame"] and not records(actions)
    assert writes(link.feed(BACTALERT_POSITIVE[1], 3.0)) == ACK


def test_etb_frames_make_one_record_and_the_frame_number_wraps() -> None:
    link = receiving()
    long_comment = b"C|1|I|" + b"x" * 300
    frames = message_frames([b"H|\\^&", b"P|1", b"O|1", b"R|1", b"R|2", b"R|3", long_comment, b"L|1|N"])
    assert [f[1:2] for f in frames[6:9]] == [b"7", b"0", b"1"]
    got: list[RecordIn] = []
    for i, frame in enumerate(frames):
        got += records(link.feed(frame, float(i)))
    assert [r.text for r in got][6] == long_comment
    assert got[6].frames == (frames[6], frames[7])
    assert got[-1].text == b"L|1|N" and got[-1].held


def test_the_receive_timer_discards_a_transfer_that_stops() -> None:
    link = receiving(LinkSettings(receive_s=2.0))
    link.feed(BACTALERT_POSITIVE[0], 1.0)
    assert link.deadline == 3.0
    assert link.tick(2.9) == []
    ended = link.tick(3.0)
    assert ended == [TransferEnded("timeout", "no frame or EOT within 2 s")] and link.state is State.NEUTRAL


def test_enq_in_the_middle_of_a_transfer_starts_over() -> None:
    link = receiving()
    link.feed(BACTALERT_POSITIVE[0], 1.0)
    actions = link.feed(ENQ, 2.0)
    assert [type(a) for a in actions] == [TransferEnded, Write] and writes(actions) == ACK
    assert writes(link.feed(BACTALERT_POSITIVE[0], 3.0)) == ACK  # frame numbers restart at 1


def test_a_frame_broken_off_by_a_new_stx_is_noise_and_the_new_frame_counts() -> None:
    link = receiving()
    actions = link.feed(BACTALERT_POSITIVE[0][:20] + BACTALERT_POSITIVE[0], 1.0)
    assert writes(actions) == ACK and len(records(actions)) == 1


def test_noise_in_neutral_is_one_event_with_its_bytes() -> None:
    link = Link()
    actions = link.feed(b"\xff\x00garbage", 0.0)
    assert events(actions) == ["line_noise"] and actions[0].raw == b"\xff\x00garbage"  # type: ignore[union-attr]
    assert writes(link.feed(ENQ, 1.0)) == ACK


# -- the gateway sending ---------------------------------------------------------------------------
QUERY = [b"H|\\^&|||cgt-gateway", b"Q|1|^ALL||^^^ALL||||||||F", b"L|1|N"]


def test_sending_a_message_enq_frames_eot() -> None:
    link = Link()
    assert writes(link.send(QUERY, 0.0)) == ENQ and link.deadline == 15.0
    frames = message_frames(QUERY)
    assert writes(link.feed(ACK, 1.0)) == frames[0]
    assert writes(link.feed(ACK, 2.0)) == frames[1]
    assert writes(link.feed(ACK, 3.0)) == frames[2]
    done = link.feed(ACK, 4.0)
    assert writes(done) == EOT and SendResult(True, "sent") in done and link.state is State.NEUTRAL


def test_a_nakked_frame_is_sent_again_and_the_last_allowed_nak_aborts() -> None:
    link = Link(LinkSettings(max_attempts=3))
    link.send(QUERY, 0.0)
    first = writes(link.feed(ACK, 1.0))
    assert writes(link.feed(NAK, 2.0)) == first  # same frame, same frame number
    assert writes(link.feed(NAK, 3.0)) == first
    aborted = link.feed(NAK, 4.0)
    assert writes(aborted) == EOT and events(aborted) == ["send_aborted"]
    assert next(a for a in aborted if isinstance(a, SendResult)).ok is False
    assert link.state is State.NEUTRAL and link.deadline is None


def test_default_abort_is_after_six_naks() -> None:
    link = Link()
    link.send(QUERY, 0.0)
    link.feed(ACK, 0.0)
    sent = [writes(link.feed(NAK, float(i))) for i in range(1, 7)]
    assert sent[:5] == [sent[0]] * 5 and sent[5] == EOT


def test_no_answer_to_a_frame_ends_in_eot_after_the_reply_timer() -> None:
    link = Link(LinkSettings(reply_s=5.0))
    link.send(QUERY, 0.0)
    link.feed(ACK, 1.0)
    assert link.deadline == 6.0
    actions = link.tick(6.0)
    assert writes(actions) == EOT and events(actions) == ["no_reply"]


def test_a_busy_receiver_gets_enq_again_after_the_busy_wait() -> None:
    link = Link(LinkSettings(busy_retry_s=10.0))
    link.send(QUERY, 0.0)
    assert events(link.feed(NAK, 1.0)) == ["receiver_busy"]
    assert link.deadline == 11.0 and link.tick(10.9) == []
    assert writes(link.tick(11.0)) == ENQ


def test_an_unanswered_enq_ends_in_eot_and_is_retried_then_given_up() -> None:
    link = Link(LinkSettings(reply_s=15.0, busy_retry_s=10.0, max_attempts=2))
    link.send(QUERY, 0.0)
    first = link.tick(15.0)
    assert writes(first) == EOT and not [a for a in first if isinstance(a, SendResult)]
    assert writes(link.tick(25.0)) == ENQ
    given_up = link.tick(40.0)
    assert writes(given_up) == EOT and [a.ok for a in given_up if isinstance(a, SendResult)] == [False]
    assert link.tick(100.0) == []


def test_contention_the_computer_yields_receives_and_sends_after_twenty_seconds() -> None:
    link = Link(role="computer")
    link.send(QUERY, 0.0)
    crossed = link.feed(ENQ, 0.5)  # the instrument's ENQ crossed ours
    assert writes(crossed) == b"" and events(crossed) == ["contention"]
    assert writes(link.feed(ENQ, 1.5)) == ACK  # the instrument's ENQ again after its 1 s: we receive
    for i, frame in enumerate(BACTALERT_POSITIVE):
        link.feed(frame, 2.0 + i)
    link.release(10.0)
    assert writes(link.feed(EOT, 11.0)) == b"", "no ENQ of ours before 20 s have passed"
    assert link.deadline == 20.5
    assert writes(link.tick(20.5)) == ENQ


def test_contention_the_instrument_keeps_priority_and_enquires_again_after_one_second() -> None:
    link = Link(role="instrument")
    link.send(QUERY, 0.0)
    assert events(link.feed(ENQ, 0.2)) == ["contention"]
    assert link.deadline == 1.2
    assert writes(link.tick(1.2)) == ENQ


def test_receiver_interrupt_stops_the_sender_who_sends_it_all_again_later() -> None:
    link = Link(LinkSettings(contention_s=20.0))
    link.send(QUERY, 0.0)
    link.feed(ACK, 0.0)
    stopped = link.feed(EOT, 1.0)
    assert writes(stopped) == EOT and events(stopped) == ["receiver_interrupt"]
    assert writes(link.feed(ENQ, 2.0)) == ACK  # the receiver takes the line
    link.feed(EOT, 3.0)
    assert writes(link.tick(21.0)) == ENQ
    assert writes(link.feed(ACK, 21.5)) == message_frames(QUERY)[0], "the whole message again, from frame 1"


def test_receiver_interrupt_can_be_answered_by_finishing_the_message() -> None:
    link = Link(LinkSettings(on_interrupt="continue"))
    link.send(QUERY, 0.0)
    link.feed(ACK, 0.0)
    actions = link.feed(EOT, 1.0)
    assert writes(actions) == message_frames(QUERY)[1] and events(actions) == ["receiver_interrupt"]


def test_two_links_talk_to_each_other() -> None:
    instrument, computer = Link(role="instrument"), Link(role="computer")
    recs = [b"H|\\^&", b"P|1", b"O|1|" + b"y" * 500, b"L|1|N"]
    to_computer = writes(instrument.send(recs, 0.0))
    got: list[RecordIn] = []
    for _ in range(50):
        if not to_computer:
            break
        actions = computer.feed(to_computer, 1.0)
        got += records(actions)
        if computer.state is State.HOLDING:
            actions += computer.release(1.0)
        to_computer = writes(instrument.feed(writes(actions), 1.0))
    assert [r.text for r in got] == recs
    assert instrument.state is State.NEUTRAL and computer.state is State.NEUTRAL


def test_a_frame_too_long_for_the_limit_is_nakked() -> None:
    link = receiving()
    actions = link.feed(build_frame(1, b"O|1|" + b"z" * 300 + b"\r", True), 1.0)
    assert writes(actions) == NAK and "more than the 240" in actions[-1].detail  # type: ignore[union-attr]
