"""StatusCode → Quality and Variant → value: nothing the server says is lost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from asyncua import ua

from adapters.opcua import load_node_map
from adapters.opcua.config import OpcUaEquipmentConfig, node_map_path
from adapters.opcua.session import Session, chunks, first_certificate
from adapters.opcua.status import convert_value, quality_of, status_name, timestamp
from gateway.errors import CommunicationError, DeviceTimeout
from gateway.records import Quality

S = ua.StatusCodes


@pytest.mark.parametrize(
    ("code", "quality", "detail"),
    [
        (S.Good, Quality.GOOD, None),
        (S.BadSensorFailure, Quality.BAD_SENSOR_FAILURE, None),
        (S.BadCommunicationError, Quality.BAD_COMMUNICATION_ERROR, None),
        (S.BadConfigurationError, Quality.BAD_CONFIGURATION_ERROR, None),
        (S.BadOutOfService, Quality.BAD_OUT_OF_SERVICE, None),
        (S.BadTimeout, Quality.BAD_TIMEOUT, None),
        (S.UncertainLastUsableValue, Quality.UNCERTAIN_LAST_USABLE_VALUE, None),
        (S.UncertainSensorNotAccurate, Quality.UNCERTAIN_SENSOR_NOT_ACCURATE, None),
        (S.UncertainEngineeringUnitsExceeded, Quality.UNCERTAIN_ENGINEERING_UNITS_EXCEEDED, None),
        (S.BadNodeIdUnknown, Quality.BAD, "BadNodeIdUnknown"),
        (S.BadWaitingForInitialData, Quality.BAD, "BadWaitingForInitialData"),
        (S.UncertainNoCommunicationLastUsableValue, Quality.UNCERTAIN, "UncertainNoCommunicationLastUsableValue"),
        (S.GoodClamped, Quality.GOOD, "GoodClamped"),
        (0x80FF0000, Quality.BAD, "0x80FF0000"),
        (0x40FE0000, Quality.UNCERTAIN, "0x40FE0000"),
    ],
)
def test_status_codes_keep_their_sub_code(code: int, quality: Quality, detail: str | None) -> None:
    assert quality_of(code) == (quality, detail)


def test_info_bits_are_reported_not_dropped() -> None:
    quality, detail = quality_of(S.UncertainEngineeringUnitsExceeded | 0x0480)
    assert quality is Quality.UNCERTAIN_ENGINEERING_UNITS_EXCEEDED
    assert detail == "UncertainEngineeringUnitsExceeded (info bits 0x0480)"
    assert status_name(S.BadNoMatch | 0x1) == "BadNoMatch"


def test_values_are_typed() -> None:
    assert convert_value(1.5).value == 1.5 and convert_value(True).value is True and convert_value(7).value == 7
    assert convert_value(ua.LocalizedText("Running.Execute", "en")).value == "Running.Execute"
    assert convert_value(datetime(2026, 1, 2, 3, 4, 5)).value == "2026-01-02T03:04:05+00:00"
    assert convert_value(ua.NodeId("x", 3)).value == "ns=3;s=x"
    assert convert_value(ua.MessageSecurityMode.Sign).value == 2
    u = uuid.uuid4()
    assert convert_value(u).value == str(u)


@pytest.mark.parametrize("value", [[1.0, 2.0], b"\x00\x01", ua.Argument()])
def test_values_a_record_cannot_carry_are_bad_not_formatted(value: object) -> None:
    c = convert_value(value)
    assert c.value is None and c.quality is Quality.BAD_DECODING_ERROR
    assert c.detail and type(value).__name__ in c.detail


def test_timestamps_are_aware_utc_and_min_date_is_absent() -> None:
    naive = datetime(2026, 5, 1, 12, 0)
    assert timestamp(naive) == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert timestamp(datetime(2026, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))) == datetime(
        2026, 5, 1, 12, 0, tzinfo=UTC
    )
    assert timestamp(datetime(1601, 1, 1)) is None and timestamp(None) is None


def test_chunks_respect_a_limit_and_zero_means_unlimited() -> None:
    assert chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert chunks([1, 2, 3], 0) == [[1, 2, 3]]
    assert chunks([], 3) == []


def test_first_certificate_of_a_chain() -> None:
    cert = bytes([0x30, 0x82, 0x00, 0x03, 1, 2, 3])
    assert first_certificate(cert + bytes([0x30, 0x01, 9])) == cert
    assert first_certificate(bytes([0x30, 0x02, 7, 8, 0x30])) == bytes([0x30, 0x02, 7, 8])


def test_a_service_call_the_server_left_unanswered_is_a_timeout_not_a_lost_link() -> None:
    eq = OpcUaEquipmentConfig.model_validate({
        "id": "CP-1", "class": "cell_processor", "kind": "opcua", "endpoint": "opc.tcp://127.0.0.1:4840/cgt/",
        "node_map": "lads-closed-processor", "timeout_s": 2.0,
    })
    session = Session(eq, load_node_map(node_map_path("lads-closed-processor", None)))
    silent = session.error("read failed", TimeoutError())
    assert isinstance(silent, DeviceTimeout) and silent.quality == "Bad_Timeout"
    assert "no answer within 2 s" in str(silent) and str(silent).startswith("CP-1 opc.tcp://")
    lost = session.error("read failed", ConnectionResetError("reset by peer"))
    assert type(lost) is CommunicationError and lost.quality == "Bad_CommunicationError"
