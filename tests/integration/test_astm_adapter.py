"""The ASTM adapter against the BacT/ALERT simulator, under the real supervisor, pipeline and journal:
results become records with their raw frames, a positive alarms in the same commit, the last frame is
ACKed only after the commit, lots are checked, and a query brings every bottle."""

from __future__ import annotations

from pathlib import Path

from test_astm_support import Gateway, bactalert, checksum_ok, equipment, frames_of

from gateway.records import Kind, Quality


async def test_a_positive_and_a_negative_bottle_reach_the_journal(tmp_path: Path) -> None:
    bottles = [{"lot": "LOT-A", "ttd_h": 12.0, "bottle_id": "B-POS"}, {"lot": "LOT-A", "bottle_id": "B-NEG"}]
    async with bactalert(bottles, protocol_days=1.0) as sim, \
            Gateway(sim, equipment(sim), tmp_path) as gw:
        await gw.until(lambda: gw.of("culture_status", "negative"), "the negative result")
        await gw.until(lambda: sim.state().pending == 0, "every message delivered")
    statuses = [r.value for r, _ in gw.of("culture_status")]
    assert statuses.count("in_progress") == 2 and statuses.count("positive") == 1 and statuses[-1] == "negative"
    (ttd, raw), = gw.of("time_to_detection")
    assert ttd.value == 12.0 and ttd.unit == "h" and ttd.kind is Kind.MEASUREMENT and ttd.lot_id == "LOT-A"
    assert raw is not None and raw.startswith(b"\x02") and b"^TTD|12.0|h|" in raw
    (alarm, _), = gw.of("culture_positive")
    assert alarm.kind is Kind.ALARM and alarm.value == "positive" and alarm.lot_id == "LOT-A"
    assert alarm.detail is not None and alarm.detail.startswith("HIGH priority") and "bottle_id=B-POS" in alarm.detail
    positive_status = next(r for r, _ in gw.of("culture_status", "positive"))
    assert alarm.seq > positive_status.seq
    messages = gw.of("astm_message", "received")
    assert len(messages) == 4 and all(r.quality is Quality.GOOD for r, _ in messages)
    for _, raw in messages:  # the original frames, each checking out
        assert raw is not None and all(checksum_ok(f) for f in frames_of(raw))
    negative = next(r for r, _ in gw.of("culture_status", "negative"))
    assert negative.source.startswith("astm+serial://") and negative.source.endswith("/R1/4")
    assert sim.state().bottles["B-POS"]["status"] == "positive"


async def test_the_last_frame_is_acked_only_after_the_commit(tmp_path: Path) -> None:
    async with bactalert([{"lot": "LOT-A", "ttd_h": 1.0}]) as sim, Gateway(sim, equipment(sim), tmp_path) as gw:
        await gw.until(lambda: len(sim.state().sent) == 2, "the load and positive messages delivered")
    message_commits = [(before, params) for before, params in gw.commits if "astm_message" in params]
    assert len(message_commits) == 2
    assert message_commits[0][0] == (), "the load message was not yet delivered when its commit began"
    assert message_commits[1][0] == (sim.state().sent[0],), "nor was the positive"


async def test_a_result_for_a_lot_bound_nowhere_is_kept_and_flagged(tmp_path: Path) -> None:
    async with bactalert([{"lot": "LOT-STRAY"}]) as sim, Gateway(sim, equipment(sim), tmp_path) as gw:
        await gw.until(lambda: gw.of("identity_exception"), "the identity exception")
    (flag, _), *_ = gw.of("identity_exception")
    assert flag.kind is Kind.EVENT and flag.value == "unmatched_specimen" and flag.lot_id == "LOT-STRAY"
    assert "bound to no equipment" in (flag.detail or "")
    status = gw.of("culture_status")
    assert status and all(r.lot_id is None for r, _ in status)


async def test_a_result_for_a_bound_lot_carries_its_chain_of_identity(tmp_path: Path) -> None:
    async with bactalert([{"lot": "LOT-A"}]) as sim, Gateway(sim, equipment(sim), tmp_path) as gw:
        await gw.until(lambda: gw.of("culture_status"), "a result")
    (status, _), *_ = gw.of("culture_status")
    assert (status.lot_id, status.coi_id) == ("LOT-A", "COI-LOT-A") and not gw.of("identity_exception")


async def test_a_query_at_connect_brings_every_bottle(tmp_path: Path) -> None:
    async with bactalert([{"lot": "LOT-A"}, {"lot": "LOT-A"}], report_loads=False) as sim, \
            Gateway(sim, equipment(sim, query_interval_s=600), tmp_path) as gw:
        await gw.until(lambda: len(gw.of("culture_status")) >= 2, "both bottles' status")
    assert sim.state().queries == 1
    assert {r.value for r, _ in gw.of("specimen_id")} == {b["specimen_id"] for b in sim.state().bottles.values()}
