"""Decoded blocks → RawReadings: raw bytes kept, decode failures isolated, status and settings judged."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

from adapters.modbus.blocks import plan_blocks
from adapters.modbus.reader import BatchBuilder, Decoded, cut_point, decode_block, point_source
from adapters.modbus.registermap import RegisterMap, load_register_map
from gateway.config import PROJECT_CONFIG_DIR
from gateway.records import Quality

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ENDPOINT = "modbus+tcp://127.0.0.1:5020"


def lighthouse() -> RegisterMap:
    return load_register_map(PROJECT_CONFIG_DIR / "registermaps" / "lighthouse-remote.yaml")


def record_registers(status: int = 0, temperature: float = 21.5, valid: int = 0b1111) -> list[int]:
    regs = [0] * 74
    regs[0:2] = [0x6900, 0x0000]  # 1 761 607 680 s
    regs[2:4] = [0, 60]
    regs[4:6] = [0, 3]
    regs[6:8] = [0, status]
    regs[8:16] = [0x0012, 0xD687, 0, 1000, 0, 100, 0, 2]
    hi, lo = struct.unpack(">HH", struct.pack(">f", temperature))
    regs[40:42] = [lo, hi]  # Lighthouse floats: low word first
    hi, lo = struct.unpack(">HH", struct.pack(">f", 45.0))
    regs[42:44] = [lo, hi]
    regs[73] = valid
    return regs


def decode_record(rmap: RegisterMap, regs: list[int]) -> dict[str, Decoded]:
    record = [p for p in rmap.points.values() if p.table == "input"]
    (block,) = plan_blocks(record, max_gap_registers=rmap.max_gap_registers)
    out: dict[str, Decoded] = {}
    decode_block(regs, [cut_point(p, block, rmap) for p in block.points], out)
    return out


def builder(rmap: RegisterMap) -> BatchBuilder:
    return BatchBuilder(rmap, endpoint=ENDPOINT, device_id=1, equipment_id="PC-1")


def test_a_record_decodes_with_its_raw_bytes_and_device_time() -> None:
    rmap = lighthouse()
    batch = builder(rmap).build(decode_record(rmap, record_registers()), NOW)
    by = {r.point: r for r in batch.readings}
    assert batch.equipment_id == "PC-1" and batch.events == [] and batch.token is None
    assert by["count_0_3um"].value == 1_234_567
    assert by["count_0_3um"].raw == b"\x00\x12\xd6\x87"
    assert by["count_0_3um"].source == "modbus+tcp://127.0.0.1:5020/1/input/8"
    assert by["temperature"].value == 21.5 and by["temperature"].raw == b"\x00\x00\x41\xac"
    assert by["sample_duration"].value == 60 and by["location_number"].value == 3
    assert by["laser_alert"].value is False
    assert all(r.quality is Quality.GOOD and r.detail is None for r in batch.readings)
    assert all(r.gateway_time == NOW for r in batch.readings)
    assert by["count_0_5um"].source_time == datetime.fromtimestamp(0x6900_0000, UTC)


def test_a_point_that_does_not_decode_is_bad_but_the_batch_stands() -> None:
    rmap = lighthouse()
    batch = builder(rmap).build(decode_record(rmap, record_registers(temperature=float("nan"))), NOW)
    by = {r.point: r for r in batch.readings}
    assert by["temperature"].value is None
    assert by["temperature"].quality is Quality.BAD_DECODING_ERROR
    assert "not a number" in (by["temperature"].detail or "")
    assert by["temperature"].raw is not None and len(by["temperature"].raw) == 4  # what came, kept
    assert by["count_0_5um"].quality is Quality.GOOD and by["relative_humidity"].value == 45.0


def test_active_alarm_status_lowers_the_named_points_and_the_status_word() -> None:
    rmap = lighthouse()
    batch = builder(rmap).build(decode_record(rmap, record_registers(status=0b110)), NOW)  # flow + overflow
    by = {r.point: r for r in batch.readings}
    counts = by["count_0_5um"]
    assert counts.quality is Quality.UNCERTAIN_SENSOR_NOT_ACCURATE  # the first of two equally uncertain
    assert "flow alert (data_status bit 1)" in (counts.detail or "")
    assert "particle overflow (data_status bit 2)" in (counts.detail or "")
    assert by["data_status"].quality.severity == "uncertain"
    assert by["data_status"].value == 6  # the word itself is kept as read
    assert by["flow_alert"].value is True and by["count_overflow"].value is True
    assert by["temperature"].quality is Quality.GOOD  # not named by any alarm


def test_laser_alert_makes_counts_bad() -> None:
    rmap = lighthouse()
    by = {r.point: r for r in builder(rmap).build(decode_record(rmap, record_registers(status=1)), NOW).readings}
    assert by["count_0_3um"].quality is Quality.BAD_SENSOR_FAILURE
    assert by["data_status"].quality is Quality.BAD_SENSOR_FAILURE


def test_unmet_expectation_is_a_configuration_error_on_the_dependent_points() -> None:
    rmap = lighthouse()
    by = {r.point: r for r in builder(rmap).build(decode_record(rmap, record_registers(valid=0b11)), NOW).readings}
    assert by["count_5_0um"].quality is Quality.BAD_CONFIGURATION_ERROR
    assert "valid_particle_channels reads 3, the map assumes 15" in (by["count_5_0um"].detail or "")
    assert by["temperature"].quality is Quality.GOOD


def test_active_good_status_is_inverted() -> None:
    rmap = load_register_map(PROJECT_CONFIG_DIR / "registermaps" / "pms-airnet2.yaml")
    b = builder(rmap)
    good = {"packet_status": Decoded(0b111, Quality.GOOD, None, b"\x00\x00\x00\x07"),
            "count_0_5um": Decoded(10, Quality.GOOD, None, b"\x00\x00\x00\x0a")}
    assert b.judge(good) == {}
    laser_off = {**good, "packet_status": Decoded(0b110, Quality.GOOD, None, b"\x00\x00\x00\x06")}
    lowered = b.judge(laser_off)
    assert lowered["count_0_5um"][0] is Quality.BAD_SENSOR_FAILURE
    assert lowered["packet_status"] == (Quality.BAD_SENSOR_FAILURE, "laser not good (packet_status bit 0)")
    undecoded = {**good, "packet_status": Decoded(None, Quality.BAD_DECODING_ERROR, "x", b"")}
    assert b.judge(undecoded)["count_0_5um"][0] is Quality.UNCERTAIN


def test_untimed_points_carry_no_device_time() -> None:
    rmap = lighthouse()
    b = builder(rmap)
    b.untimed = frozenset({"air_flow"})
    decoded = {**decode_record(rmap, record_registers()), "air_flow": Decoded(100, Quality.GOOD, None, b"\x00d")}
    by = {r.point: r for r in b.build(decoded, NOW, events=[("device_restart", "x")], token="t").readings}
    assert by["air_flow"].source_time is None and by["count_0_5um"].source_time is not None


def test_events_and_token_travel_with_the_batch() -> None:
    rmap = lighthouse()
    batch = builder(rmap).build({}, NOW, events=[("device_restart", "record count went from 5 to 0")], token=7)
    assert batch.readings == [] and batch.token == 7
    assert batch.events == [("device_restart", "record count went from 5 to 0")]


def test_source_uris() -> None:
    rmap = lighthouse()
    assert point_source("modbus+rtu:///dev/pts/3", 1, rmap.points["device_status"]) == (
        "modbus+rtu:///dev/pts/3/1/holding/2")


def test_an_unrepresentable_device_time_is_no_device_time() -> None:
    rmap = lighthouse()
    b = builder(rmap)
    assert b.source_time({"sample_timestamp": Decoded(None, Quality.BAD_DECODING_ERROR, "x", b"")}) is None
    assert b.source_time({"sample_timestamp": Decoded(2**62, Quality.GOOD, None, b"")}) is None
    assert b.source_time({}) is None
