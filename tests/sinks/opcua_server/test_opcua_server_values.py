"""The pure parts of the OPC UA server sink: quality → StatusCode, value → Variant, times, the config."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from asyncua import ua
from pydantic import ValidationError

from gateway.records import Quality
from gateway.sinks.opcua_server import OpcUaServerSinkConfig
from gateway.sinks.opcua_server.values import data_value, equipment_path, status_code, variant

NOW = datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize("quality", list(Quality))
def test_every_gateway_quality_has_its_own_status_code_of_the_same_severity(quality: Quality) -> None:
    code = status_code(quality.value)
    assert code.name == quality.value.replace("_", "")
    assert (code.is_good(), code.is_uncertain(), code.is_bad()) == tuple(
        quality.severity == s for s in ("good", "uncertain", "bad")
    )


@pytest.mark.parametrize(
    ("quality", "expected"),
    [
        ("Bad_SomethingNew", ua.StatusCodes.Bad),
        ("Uncertain_SomethingNew", ua.StatusCodes.Uncertain),
        ("Good_SomethingNew", ua.StatusCodes.Good),
        ("Uncertain_CommunicationError", ua.StatusCodes.Uncertain),  # a Bad code named under Uncertain
        ("nonsense", ua.StatusCodes.Bad),
    ],
)
def test_an_unknown_quality_falls_back_to_its_severity(quality: str, expected: int) -> None:
    assert status_code(quality).value == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (36.9, ua.Variant(36.9, ua.VariantType.Double)),
        (3, ua.Variant(3, ua.VariantType.Int64)),
        (True, ua.Variant(True, ua.VariantType.Boolean)),
        ("Running.Idle", ua.Variant("Running.Idle", ua.VariantType.String)),
        (2**63, ua.Variant(2**63, ua.VariantType.UInt64)),
        (2**64, ua.Variant(float(2**64), ua.VariantType.Double)),
        (None, ua.Variant(None, ua.VariantType.Null)),
    ],
)
def test_values_keep_their_type(value: object, expected: ua.Variant) -> None:
    assert variant(value) == expected


def _record(**fields: object) -> dict[str, object]:
    return {"value": 1.5, "quality": "Good", "source_time": None, "gateway_time": "2025-03-01T12:00:00.25Z"} | fields


def test_source_timestamp_is_the_device_time_or_else_the_gateway_time() -> None:
    dv = data_value(_record(source_time="2025-03-01T13:58:30+02:00"), NOW)
    assert dv.SourceTimestamp == datetime(2025, 3, 1, 11, 58, 30, tzinfo=UTC) and dv.ServerTimestamp == NOW
    assert data_value(_record(), NOW).SourceTimestamp == datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)


def test_bad_carries_no_value_and_a_missing_value_is_never_good() -> None:
    bad = data_value(_record(quality="Bad_SensorFailure", value=3.0), NOW)
    assert bad.StatusCode.value == ua.StatusCodes.BadSensorFailure and bad.Value.Value is None
    empty = data_value(_record(value=None), NOW)
    assert empty.StatusCode.value == ua.StatusCodes.Bad and empty.Value.Value is None


def test_equipment_without_isa95_path_is_unassigned() -> None:
    record = {"equipment_id": "PC-7", "isa95": None}
    assert equipment_path("gw", record) == ("gw", "_unassigned", "_unassigned", "_unassigned", "PC-7")


def _config(**fields: object) -> OpcUaServerSinkConfig:
    return OpcUaServerSinkConfig.model_validate(
        {"name": "scada", "type": "opcua-server", **fields}, context={"config_dir": "/site"}
    )


def test_the_safe_defaults() -> None:
    cfg = _config()
    assert cfg.security_policies == ["Basic256Sha256_SignAndEncrypt"]  # nothing in clear unless asked
    assert cfg.endpoint == "opc.tcp://127.0.0.1:4841/cgt-gateway/"  # this machine only unless asked
    assert cfg.certificate == Path("/site/pki/opcua-server-cert.der")  # beside the site file, not the cwd
    assert cfg.private_key == Path("/site/pki/opcua-server-key.pem")
    assert cfg.trusted_clients_dir is None
    assert _config(trusted_clients_dir="pki/trusted").trusted_clients_dir == Path("/site/pki/trusted")
    assert not _config(security_policies=["None"]).needs_certificate


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"endpoint": "http://127.0.0.1:4841/"}, "is not an opc.tcp://HOST:PORT/PATH url"),
        ({"endpoint": "opc.tcp://127.0.0.1:99999/"}, "the port is not a number in 0..65535"),
        ({"security_policies": ["Basic128Rsa15"]}, "security_policies.0"),
        ({"security_policies": []}, "security_policies"),
        ({"security_policies": ["None", "None"]}, "each policy once"),
        ({"allow_anonymous": True}, "Extra inputs are not permitted"),
        ({"certificate": "same.pem", "private_key": "same.pem"}, "two different files"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace(".", r"\.").replace("(", r"\(")):
        _config(**fields)
