"""The ASTM link when things go wrong, against the BacT/ALERT simulator through the real supervisor and
journal: each fault shows the right NAK / retransmit / abort on the wire and the right records and events,
a message is never half-committed, and what was cut off is kept with its raw frames."""

from __future__ import annotations

from pathlib import Path

from test_astm_support import Gateway, bactalert, checksum_ok, equipment, frames_of

from gateway.records import Quality


def delivered_once(gw: Gateway) -> bool:
    return len(gw.of("astm_message", "received")) == 1


async def test_a_corrupted_checksum_is_nakked_and_the_retransmission_committed(tmp_path: Path) -> None:
    sim = bactalert()
    sim.inject("corrupt_checksum", count=2)
    async with sim, Gateway(sim, equipment(sim), tmp_path) as gw:
        await gw.until(lambda: delivered_once(gw), "the message")
    assert sim.state().naks == 2 and sim.state().retransmissions == 2 and sim.state().aborts == 0
    rejected = gw.of("astm_link", "frame_rejected")
    assert len(rejected) == 2 and all("checksum" in (r.detail or "") for r, _ in rejected)
    assert all(raw is not None and not checksum_ok(raw) for _, raw in rejected), "the bad frame is kept as it came"


async def test_a_wrong_frame_number_is_nakked(tmp_path: Path) -> None:
    sim = bactalert()
    sim.inject("wrong_frame_number")
    async with sim, Gateway(sim, equipment(sim), tmp_path) as gw:
        await gw.until(lambda: delivered_once(gw), "the message")
    (rejected, _), = gw.of("astm_link", "frame_rejected")
    assert "frame number" in (rejected.detail or "") and sim.state().naks == 1


async def test_six_naks_abort_the_send_and_the_partial_message_is_discarded_then_sent_whole(tmp_path: Path) -> None:
    sim = bactalert()
    sim.inject("corrupt_checksum", count=6)  # frame 1 refused six times
    async with sim, Gateway(sim, equipment(sim), tmp_path) as gw:
        await gw.until(lambda: delivered_once(gw), "the message, sent again")
    assert sim.state().aborts == 1 and sim.state().naks == 6
    assert len(gw.of("astm_link", "frame_rejected")) == 6
    assert gw.of("astm_message", "discarded") == [], "nothing of the aborted message was accepted"
    assert [r.value for r, _ in gw.of("culture_status")] == ["in_progress"]


async def test_an_oversize_record_is_nakked_to_the_abort_and_the_partial_message_kept(tmp_path: Path) -> None:
    sim = bactalert()
    sim.inject("oversize", chars=300)
    async with sim, Gateway(sim, equipment(sim), tmp_path) as gw:
        await gw.until(lambda: delivered_once(gw), "the message, sent again")
    assert sim.state().aborts == 1
    rejected = gw.of("astm_link", "frame_rejected")
    assert len(rejected) == 6 and all("more than the 240" in (r.detail or "") for r, _ in rejected)
    (cut, raw), = gw.of("astm_message", "discarded")
    assert cut.quality is Quality.BAD_COMMUNICATION_ERROR and "EOT" in (cut.detail or "")
    assert raw is not None and len(frames_of(raw)) == 4  # H P O R accepted before the oversize comment
    assert gw.of("culture_status") and len(gw.of("culture_status")) == 1, "no record from the cut-off message"


async def test_a_long_record_goes_in_etb_frames_and_the_frame_number_wraps(tmp_path: Path) -> None:
    sim = bactalert([{"lot": "LOT-A", "ttd_h": 1.0}], report_loads=False)
    sim.inject("long_record", chars=300)
    async with sim, Gateway(sim, equipment(sim), tmp_path) as gw:
        await gw.until(lambda: delivered_once(gw), "the positive")
    (_, raw), = gw.of("astm_message", "received")
    assert raw is not None
    frames = frames_of(raw)
    assert [f[1:2] for f in frames] == [b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"0"]
    assert frames[5][-5:-4] == b"\x17" and all(checksum_ok(f) for f in frames)
    (bottle, _), = gw.of("bottle_id")
    assert bottle.value == sim.bottles[0].bottle_id


async def test_a_duplicate_frame_is_acked_and_discarded(tmp_path: Path) -> None:
    sim = bactalert()
    sim.inject("duplicate_frame")
    async with sim, Gateway(sim, equipment(sim), tmp_path) as gw:
        await gw.until(lambda: delivered_once(gw), "the message")
    assert len(gw.of("astm_link", "duplicate_frame")) == 1
    assert len(gw.of("culture_status")) == 1 and len(gw.of("astm_message")) == 1


async def test_a_slow_sender_is_cut_off_by_the_receive_timer_and_sends_again(tmp_path: Path) -> None:
    sim = bactalert()
    sim.inject("slow_sender", pause_s=1.5, at_frame=3)
    async with sim, Gateway(sim, equipment(sim, timers={"receive_s": 0.5}), tmp_path) as gw:
        await gw.until(lambda: delivered_once(gw), "the message, sent again")
    (cut, raw), = gw.of("astm_message", "discarded")
    assert "no frame or EOT within 0.5 s" in (cut.detail or "")
    assert raw is not None and len(frames_of(raw)) == 2
    assert sim.state().timeouts >= 1, "the simulator's frame went unanswered and it gave up"
    assert len(gw.of("culture_status")) == 1


async def test_a_line_drop_mid_message_is_a_gap_and_the_message_comes_whole_afterwards(tmp_path: Path) -> None:
    sim = bactalert()
    sim.inject("line_drop", at_frame=4)
    async with sim, Gateway(sim, equipment(sim), tmp_path) as gw:
        await gw.until(lambda: gw.of("communication", "lost"), "the outage")
        (cut, raw), = gw.of("astm_message", "discarded")
        assert raw is not None and len(frames_of(raw)) == 3 and "closed" in (cut.detail or "")
        await sim.restore()
        await gw.until(lambda: delivered_once(gw), "the message after the line is back")
        await gw.until(lambda: gw.of("communication", "restored"), "the restored event")
    params = [r.parameter for r, _ in gw.records()]
    assert params.index("astm_message") < params.index("communication"), "the cut-off part is kept before the gap"
    assert len(gw.of("culture_status", "in_progress")) == 1
    lost_status = [r for r, _ in gw.of("culture_status") if r.quality is Quality.BAD_COMMUNICATION_ERROR]
    assert lost_status, "the outage is data for every parameter"


async def test_garbage_on_the_line_is_kept_as_noise_and_the_next_message_is_fine(tmp_path: Path) -> None:
    sim = bactalert(report_loads=False, bottles=[{"lot": "LOT-A", "ttd_h": 2.0}])
    async with sim, Gateway(sim, equipment(sim), tmp_path) as gw:
        await gw.until(lambda: gw.supervisor.health.state == "up", "the line open")
        sim.inject("garbage", bytes=40)
        await gw.until(lambda: delivered_once(gw), "the positive")
        await gw.until(lambda: gw.of("astm_link", "line_noise"), "the noise")
    noise = gw.of("astm_link", "line_noise")
    assert sum(len(raw or b"") for _, raw in noise) == 40
    assert [r.value for r, _ in gw.of("culture_status")] == ["positive"]


async def test_contention_the_gateway_yields_receives_and_queries_later(tmp_path: Path) -> None:
    sim = bactalert([{"lot": "LOT-A"}, {"lot": "LOT-A"}], report_loads=False)
    sim.inject("contention")
    async with sim, Gateway(sim, equipment(sim, query_interval_s=600, timers={"contention_s": 0.5}), tmp_path) as gw:
        await gw.until(lambda: sim.state().queries == 1, "the query, after the instrument went first")
        await gw.until(lambda: len(gw.of("astm_message", "received")) == 3, "the status message and the answers")
    assert len(gw.of("astm_link", "contention")) == 1
    assert sim.state().contentions == 1
    assert sim.state().sent[0].endswith(":status"), "the instrument's message went first"


async def test_no_ack_the_gateways_query_times_out_and_is_given_up(tmp_path: Path) -> None:
    sim = bactalert(report_loads=False)
    sim.inject("no_ack")
    timers = {"reply_s": 0.3, "busy_retry_s": 0.2}
    async with sim, Gateway(sim, equipment(sim, query_interval_s=600, max_attempts=2, timers=timers), tmp_path) as gw:
        await gw.until(lambda: gw.of("astm_link", "send_failed"), "the query given up")
    assert len(gw.of("astm_link", "no_reply")) == 2 and sim.state().ignored_enqs == 2
    (failed, _), = gw.of("astm_link", "send_failed")
    assert "never answered ENQ (2 attempts)" in (failed.detail or "")
    assert gw.supervisor.health.state == "up", "a silent receiver is not a lost line"
