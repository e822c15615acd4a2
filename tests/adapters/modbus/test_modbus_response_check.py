"""Every answer is checked against its request: unit id, function code, size. Pure, no socket."""

from __future__ import annotations

from typing import Any

import pytest
from pymodbus.pdu import ExceptionResponse
from pymodbus.pdu.bit_message import ReadCoilsResponse, WriteSingleCoilResponse
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse

from adapters.modbus.bus import BusSettings, ModbusBus, check_response
from gateway.errors import CommunicationError, ConfigError, DeviceReportedError, ProtocolError

WHERE = {"equipment_id": "PC-1", "address": "modbus+tcp://h:502/1/holding/2+23"}


def check(response: Any, fc: int = 3, unit: int = 1, count: int = 2) -> None:
    check_response(response, function_code=fc, device_id=unit, count=count, **WHERE)


def test_a_right_answer_passes() -> None:
    check(ReadHoldingRegistersResponse(dev_id=1, registers=[1, 2]))
    check(ReadInputRegistersResponse(dev_id=9, registers=[0] * 5), fc=4, unit=9, count=5)
    check(ReadCoilsResponse(dev_id=1, bits=[True] + [False] * 7), fc=1, count=2)  # bits come padded to 8
    check(WriteSingleCoilResponse(dev_id=1, address=1, bits=[False]), fc=5, count=1)


def test_an_answer_from_another_unit_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="answer from unit 2 to a request for unit 1") as err:
        check(ReadHoldingRegistersResponse(dev_id=2, registers=[1, 2]))
    assert err.value.equipment_id == "PC-1" and err.value.address == WHERE["address"]
    assert str(err.value).startswith("PC-1 modbus+tcp://h:502/1/holding/2+23: ")


def test_an_answer_to_another_function_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="answer of function 4 to a request of function 3"):
        check(ReadInputRegistersResponse(dev_id=1, registers=[1, 2]))
    with pytest.raises(ProtocolError, match="exception answer to function 4 for a request of function 3"):
        check(ExceptionResponse(4, 2, device_id=1))


@pytest.mark.parametrize(("registers", "count"), [([1], 2), ([1, 2, 3], 2), ([], 1)])
def test_a_wrong_register_count_is_a_protocol_error(registers: list[int], count: int) -> None:
    with pytest.raises(ProtocolError, match=f"asked for {count} registers, got {len(registers)}"):
        check(ReadHoldingRegistersResponse(dev_id=1, registers=registers), count=count)


def test_a_wrong_bit_count_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="asked for 9 bits, got 8"):
        check(ReadCoilsResponse(dev_id=1, bits=[False] * 8), fc=1, count=9)
    with pytest.raises(ProtocolError, match="asked for 1 bits, got 16"):
        check(ReadCoilsResponse(dev_id=1, bits=[False] * 16), fc=1, count=1)


@pytest.mark.parametrize(("code", "name"), [(1, "illegal function"), (2, "illegal data address"),
                                           (4, "server device failure"), (6, "busy"), (99, "unknown")])
def test_an_exception_answer_is_a_device_reported_error_with_its_code(code: int, name: str) -> None:
    with pytest.raises(DeviceReportedError, match=name) as err:
        check(ExceptionResponse(3, code, device_id=1))
    assert err.value.code == code
    assert err.value.quality == "Bad_DeviceFailure"


@pytest.mark.parametrize("code", [10, 11])
def test_a_gateway_saying_nobody_answered_is_a_communication_error(code: int) -> None:
    with pytest.raises(CommunicationError, match=f"exception {code}") as err:
        check(ExceptionResponse(3, code, device_id=1))
    assert err.value.quality == "Bad_CommunicationError"


def test_an_exception_from_another_unit_is_still_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="unit 5"):
        check(ExceptionResponse(3, 2, device_id=5))


def test_something_that_is_not_a_response_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        check(object())


def settings(**change: Any) -> BusSettings:
    base = {"transport": "rtu", "host": None, "port": None, "serial_port": "/dev/ttyS1", "baudrate": 19200,
            "parity": "N", "stopbits": 1, "bytesize": 8, "timeout_s": 1.0, "retries": 0}
    return BusSettings(**{**base, **change})


def test_bus_keys_are_one_per_line_or_endpoint() -> None:
    assert settings().key == ("modbus", "rtu", "/dev/ttyS1")
    assert settings(baudrate=9600).key == settings().key  # same line, whatever the settings say
    tcp = settings(transport="tcp", host="10.0.0.1", port=502, serial_port=None)
    assert tcp.key == ("modbus", "tcp", "10.0.0.1:502") and tcp.endpoint == "modbus+tcp://10.0.0.1:502"


def test_devices_on_one_line_must_agree_on_its_settings() -> None:
    bus = ModbusBus(settings())
    bus.check_compatible(settings(), "PC-2")
    with pytest.raises(ConfigError, match="PC-2: shares modbus\\+rtu:///dev/ttyS1 with another device"):
        bus.check_compatible(settings(baudrate=9600), "PC-2")
    bus.close()  # never opened: closing is harmless
