"""Lighthouse REMOTE / ApexR / SOLAIR register map (Modbus map v1.48), written from the vendor manuals.

Documentation numbers registers 1-based: 40001 is holding address 0 (FC3), 30001 is input address 0
(FC4). The enums below hold wire addresses, i.e. documented number minus 40001 or 30001.

Integers that span two registers are high word first; IEEE floats are LOW word first. Particle counts
are cumulative raw counts regardless of instrument settings. Register 40025 selects which stored record
the 3xxxx input registers show (0xFFFF = the latest), and reading any 3xxxx register clears NEW DATA.
"""

from __future__ import annotations

import enum
from types import MappingProxyType
from typing import ClassVar

from pymodbus.constants import ExcCodes

from ..model import Sample
from ..registers import ascii_registers, f32_lo_hi, join_u32, u16, u32_hi_lo
from .base import CounterDevice, Span, Table, put

MAP_VERSION = 148
FIRMWARE = 210
LATEST_RECORD = 0xFFFF
MAX_SAMPLE_TIME_S = 86_399
MAX_HOLD_TIME_S = 359_999


class Holding(enum.IntEnum):
    """Holding register wire addresses (documented 40001 + value)."""

    MAP_VERSION = 0
    COMMAND = 1
    DEVICE_STATUS = 2
    FIRMWARE = 3
    SERIAL_HI = 4
    PRODUCT_NAME = 6  # 8 registers
    MODEL_NAME = 14  # 8 registers
    FLOW_RATE = 22
    RECORD_COUNT = 23
    RECORD_INDEX = 24
    LOCATION = 25
    RTC_HI = 26
    INITIAL_DELAY_HI = 28
    HOLD_TIME_HI = 30
    HOLD_TIME_LO = 31
    SAMPLE_TIME_HI = 32
    SAMPLE_TIME_LO = 33
    DATA_SET_HI = 34
    DATA_SET_LO = 35
    ALARM_MODE = 36
    CAL_DUE_HI = 46


class Input(enum.IntEnum):
    """Input register wire addresses (documented 30001 + value) of the selected record."""

    TIMESTAMP_HI = 0
    SAMPLE_TIME_HI = 2
    LOCATION_HI = 4
    DATA_STATUS_HI = 6
    CHANNEL_1_HI = 8  # channel k at 8 + 2(k-1), up to 8 channels
    ANALOG_1_LO = 40  # temperature, float32 low word first
    ANALOG_2_LO = 42  # relative humidity
    VALID_ANALOG = 72
    VALID_PARTICLE = 73
    ANALOG_ALARMS = 74
    PARTICLE_ALARMS = 75


class Command(enum.IntEnum):
    """Values written to the command register 40002."""

    SAVE_ALL = 1
    CLEAR_BUFFER = 3
    SAVE_PARAMETERS = 4
    REMOTE_CONTROL = 5
    LOCAL_CONTROL = 6
    PUMP_ON = 7
    PUMP_OFF = 8
    MANUAL_START = 9
    MANUAL_STOP = 10
    INSTRUMENT_START = 11
    INSTRUMENT_STOP = 12
    SET_RTC = 13
    BAUD_19200 = 192
    BAUD_57600 = 576
    BAUD_115200 = 1152


class DeviceStatus(enum.IntFlag):
    """40003 bits."""

    RUNNING = 0x01
    SAMPLING = 0x02
    NEW_DATA = 0x04
    DEVICE_ERROR = 0x08


class DataStatus(enum.IntFlag):
    """30007/08 bits (only the low word is used)."""

    LASER_ALERT = 0x01
    FLOW_ALERT = 0x02
    PARTICLE_OVERFLOW = 0x04
    INSTRUMENT_SERVICE = 0x08
    THRESHOLD_HIGH = 0x10
    THRESHOLD_LOW = 0x20
    SAMPLER_ERROR = 0x40


class LighthouseDevice(CounterDevice):
    """A Lighthouse remote counter with a record buffer selected by 40025."""

    profile: ClassVar[str] = "lighthouse"
    function_codes: ClassVar[frozenset[int]] = frozenset({3, 4, 6})
    layout = MappingProxyType(
        {
            Table.HOLDING: (
                Span(0, 1),  # map version
                Span(1, 1, writable=True),  # command
                Span(2, 22),  # status .. record count
                Span(24, 2, writable=True),  # record index, location
                Span(26, 2),  # RTC (set through command 13)
                Span(28, 18, writable=True),  # delay, hold, sample, data set, alarm, analog settings
                Span(46, 2),  # calibration due
            ),
            Table.INPUT: (Span(0, 76),),
        }
    )
    default_channels_um: ClassVar[tuple[float, ...]] = (0.3, 0.5, 1.0, 5.0)
    max_channels: ClassVar[int] = 8
    default_buffer_capacity: ClassVar[int] = 3000

    def render(self, table: Table, now: float) -> dict[int, int]:
        if table is Table.HOLDING:
            return self._render_holding(now)
        if table is Table.INPUT:
            return self._render_record(self.selected_record())
        return {}

    def after_read(self, table: Table, address: int, count: int, now: float) -> None:
        if table is Table.INPUT:
            self.model.new_data = False

    def selected_record(self) -> Sample | None:
        """The record 40025 points at: 0xFFFF is the newest, otherwise a 0-based index from the oldest."""
        index = self.stored_value(Table.HOLDING, Holding.RECORD_INDEX, LATEST_RECORD)
        buffer = self.model.buffer
        if index == LATEST_RECORD:
            return buffer[-1] if buffer else None
        return buffer[index] if index < len(buffer) else None

    def write_one(self, table: Table, address: int, value: int, now: float) -> ExcCodes | None:
        if address == Holding.COMMAND:
            return self._command(value, now)
        if address == Holding.SAMPLE_TIME_LO:
            seconds = join_u32(self.stored_value(table, Holding.SAMPLE_TIME_HI), value)
            if not 1 <= seconds <= MAX_SAMPLE_TIME_S:
                return ExcCodes.ILLEGAL_VALUE
            self.model.set_timing(now, sample_time_s=float(seconds))
        elif address == Holding.HOLD_TIME_LO:
            seconds = join_u32(self.stored_value(table, Holding.HOLD_TIME_HI), value)
            if seconds > MAX_HOLD_TIME_S:
                return ExcCodes.ILLEGAL_VALUE
            self.model.set_timing(now, hold_time_s=float(seconds))
        elif address == Holding.LOCATION:
            self.model.location = value
        # A 32-bit setting takes effect when its low word is written (FC6 writes one register at a time).
        self.store(table, address, value)
        return None

    def on_restart(self) -> None:
        self.stored.pop((Table.HOLDING, Holding.RECORD_INDEX), None)  # back to "latest record"

    def _command(self, value: int, now: float) -> ExcCodes | None:
        try:
            command = Command(value)
        except ValueError:
            return ExcCodes.ILLEGAL_VALUE
        model = self.model
        if command is Command.INSTRUMENT_START:
            model.start(now)
        elif command is Command.INSTRUMENT_STOP:
            model.stop()
        elif command is Command.MANUAL_START:
            model.manual_start(now)
        elif command is Command.MANUAL_STOP:
            model.manual_stop(now)
        elif command is Command.CLEAR_BUFFER:
            model.clear_buffer()
        elif command is Command.SET_RTC:
            model.set_device_time(self._stored_u32(Holding.DATA_SET_HI))
        # The other commands (EEPROM saves, remote/local, pump, baud) have no simulated effect.
        return None

    def _stored_u32(self, hi_address: int) -> int:
        return join_u32(self.stored_value(Table.HOLDING, hi_address), self.stored_value(Table.HOLDING, hi_address + 1))

    def _render_holding(self, now: float) -> dict[int, int]:
        model = self.model
        status = DeviceStatus(0)
        if model.running:
            status |= DeviceStatus.RUNNING
        if model.sampling(now):
            status |= DeviceStatus.SAMPLING
        if model.new_data:
            status |= DeviceStatus.NEW_DATA
        if model.faults.laser_alert:
            status |= DeviceStatus.DEVICE_ERROR
        flow_fraction = model.faults.flow_fraction if model.faults.flow_fraction is not None else 1.0
        image = {
            Holding.MAP_VERSION: MAP_VERSION,
            Holding.COMMAND: 0,  # write-only: reads return 0
            Holding.DEVICE_STATUS: int(status),
            Holding.FIRMWARE: FIRMWARE,
            Holding.FLOW_RATE: u16(round(model.config.flow_cfm * flow_fraction * 100)),
            Holding.RECORD_COUNT: u16(len(model.buffer)),
            Holding.RECORD_INDEX: self.stored_value(Table.HOLDING, Holding.RECORD_INDEX, LATEST_RECORD),
            Holding.LOCATION: u16(model.location),
        }
        put(image, Holding.SERIAL_HI, u32_hi_lo(51_040_000 + self.unit_id))
        put(image, Holding.PRODUCT_NAME, ascii_registers("REMOTE SIM", 8))
        put(image, Holding.MODEL_NAME, ascii_registers("5104-SIM", 8))
        put(image, Holding.RTC_HI, u32_hi_lo(int(model.device_time())))
        put(image, Holding.HOLD_TIME_HI, u32_hi_lo(round(model.hold_time_s)))
        put(image, Holding.SAMPLE_TIME_HI, u32_hi_lo(round(model.sample_time_s)))
        put(image, Holding.CAL_DUE_HI, u32_hi_lo(self.calibration_due_s()))
        return {int(k): v for k, v in image.items()}

    def _render_record(self, record: Sample | None) -> dict[int, int]:
        channels = len(self.model.config.channels_um)
        image: dict[int, int] = {address: 0 for address in range(76)}
        image[Input.VALID_ANALOG] = 0b11
        image[Input.VALID_PARTICLE] = (1 << channels) - 1
        if record is None:
            return image
        status = DataStatus(0)
        if record.laser_alert:
            status |= DataStatus.LASER_ALERT
        if record.flow_alert:
            status |= DataStatus.FLOW_ALERT
        if record.overflow:
            status |= DataStatus.PARTICLE_OVERFLOW
        if self.model.faults.calibration_overdue_days is not None:
            status |= DataStatus.INSTRUMENT_SERVICE
        if any(record.over_limit):
            status |= DataStatus.THRESHOLD_HIGH
        put(image, Input.TIMESTAMP_HI, u32_hi_lo(record.timestamp))
        put(image, Input.SAMPLE_TIME_HI, u32_hi_lo(round(record.sample_time_s)))
        put(image, Input.LOCATION_HI, u32_hi_lo(record.location))
        put(image, Input.DATA_STATUS_HI, u32_hi_lo(int(status)))
        for k, count in enumerate(record.counts):
            put(image, Input.CHANNEL_1_HI + 2 * k, u32_hi_lo(count))
        put(image, Input.ANALOG_1_LO, f32_lo_hi(record.temperature_c))
        put(image, Input.ANALOG_2_LO, f32_lo_hi(record.rh_pct))
        image[Input.PARTICLE_ALARMS] = sum(1 << k for k, over in enumerate(record.over_limit) if over)
        return image
