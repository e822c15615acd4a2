"""Beckman Coulter / Hach MET ONE 6000 remote counter, Appendix A of the user manual.

Addresses are 0-based holding registers (FC3) exactly as documented. Four size channels (size 1-4) at
311/313/315/317, each a 32-bit value. What the excerpt of the manual did not state is marked [A] here and
in the README: word order (high word first), the live timestamp (the manual has YYYY/MD/H/MS at 300-303;
the simulator puts Unix seconds in 300/301), the sample volume unit (litres x 10), the status bits of 309
and the unit of the flow register 343.
"""

from __future__ import annotations

import datetime as dt
import enum
from types import MappingProxyType
from typing import ClassVar

from pymodbus.constants import ExcCodes

from ..limits import CUBIC_FEET_PER_M3, LITRES_PER_CUBIC_FOOT
from ..model import Sample
from ..registers import ascii_registers, i16, u16, u32_hi_lo
from .base import CounterDevice, Span, Table, put

FIRMWARE = 100  # V1.00


class Reg(enum.IntEnum):
    """Holding register addresses (0-based, as documented)."""

    MANUFACTURER = 0  # 15 registers, ASCII
    MODEL = 15  # 10 registers
    SERIAL = 25  # 5 registers
    SENSOR_ID = 30  # 4 registers
    LAST_CALIBRATION_HI = 34
    CALIBRATION_DUE_HI = 36
    FIRMWARE = 38
    SAMPLE_MODE = 103  # 1 auto, 2 manual
    SAMPLE_CONTROL = 104  # 1 run, 2 stop
    SAMPLE_CYCLES = 105
    SAMPLE_PERIOD_H = 106  # hours
    SAMPLE_PERIOD_MS = 107  # [A] minutes x 100 + seconds
    HOLD_PERIOD_H = 108
    HOLD_PERIOD_MS = 109
    UTC_YEAR = 112
    UTC_MONTH_DAY = 113  # [A] month x 100 + day
    UTC_HOUR = 114
    UTC_MIN_SEC = 115  # [A] minutes x 100 + seconds
    CONCENTRATION_MODE = 143  # 0 counts, 1 per ft3, 2 per L, 3 per m3
    COUNT_MODE = 144  # 0 cumulative, 1 differential
    FLOW_UNITS = 145  # 0 L/min, 1 CFM
    COMM_TIMEOUT = 146
    PROTOCOL = 147
    TIMESTAMP_HI = 300  # [A] Unix seconds, high word first
    SAMPLE_PERIOD_HI = 304  # seconds
    SAMPLE_VOLUME_HI = 307  # [A] litres x 10
    SAMPLE_STATUS = 309  # [A] bit0 laser, bit1 flow, bit2 overflow
    SIZE_1_HI = 311  # sizes 1-4 at 311, 313, 315, 317
    FLOW = 343  # [A] L/min x 10, or CFM x 100 when FLOW_UNITS = 1
    TEMPERATURE = 344  # 0.1 degC, signed
    RELATIVE_HUMIDITY = 345  # 0.1 %
    LOCATION = 353
    ERROR_CONDITION = 724  # [A] bit0 laser, bit1 flow


class SampleStatus(enum.IntFlag):
    """309 bits [A]: the manual's Table 20 was not captured."""

    LASER_FAULT = 0x01
    FLOW_FAULT = 0x02
    OVERFLOW = 0x04


#: Allowed values of the enumerated configuration registers; other values answer exception 3.
CHOICES: MappingProxyType[int, frozenset[int]] = MappingProxyType(
    {
        Reg.SAMPLE_MODE: frozenset({1, 2}),
        Reg.SAMPLE_CONTROL: frozenset({1, 2}),
        Reg.CONCENTRATION_MODE: frozenset({0, 1, 2, 3}),
        Reg.COUNT_MODE: frozenset({0, 1}),
        Reg.FLOW_UNITS: frozenset({0, 1}),
    }
)
#: Each timing register -> its (hours, MMSS) pair.
TIMING_PAIRS: MappingProxyType[int, tuple[Reg, Reg]] = MappingProxyType(
    {
        Reg.SAMPLE_PERIOD_H: (Reg.SAMPLE_PERIOD_H, Reg.SAMPLE_PERIOD_MS),
        Reg.SAMPLE_PERIOD_MS: (Reg.SAMPLE_PERIOD_H, Reg.SAMPLE_PERIOD_MS),
        Reg.HOLD_PERIOD_H: (Reg.HOLD_PERIOD_H, Reg.HOLD_PERIOD_MS),
        Reg.HOLD_PERIOD_MS: (Reg.HOLD_PERIOD_H, Reg.HOLD_PERIOD_MS),
    }
)
DEFAULTS: MappingProxyType[int, int] = MappingProxyType(
    {Reg.SAMPLE_MODE: 1, Reg.COMM_TIMEOUT: 60, Reg.PROTOCOL: 1, Reg.CONCENTRATION_MODE: 0, Reg.COUNT_MODE: 0}
)


def _h_mmss(seconds: float) -> tuple[int, int]:
    """Seconds as (hours, minutes x 100 + seconds), the manual's 'H / MS' pair."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return hours, (rest // 60) * 100 + rest % 60


def _from_h_mmss(hours: int, mmss: int) -> int | None:
    minutes, seconds = divmod(mmss, 100)
    if minutes > 59 or seconds > 59:
        return None
    return hours * 3600 + minutes * 60 + seconds


class MetOne6000Device(CounterDevice):
    """A MET ONE 6000 remote counter: live sample block 300-353, configuration 100-160."""

    profile: ClassVar[str] = "metone6000"
    function_codes: ClassVar[frozenset[int]] = frozenset({3, 6, 16})
    layout = MappingProxyType(
        {
            Table.HOLDING: (
                Span(0, 42),  # identity
                Span(100, 61, writable=True),  # configuration
                Span(200, 39),  # data labels (read 0: layout not captured)
                Span(300, 54),  # live sample
                Span(700, 25),  # diagnostics
            ),
        }
    )
    default_channels_um: ClassVar[tuple[float, ...]] = (0.3, 0.5, 1.0, 5.0)
    max_channels: ClassVar[int] = 4
    default_buffer_capacity: ClassVar[int] = 1000

    def render(self, table: Table, now: float) -> dict[int, int]:
        if table is not Table.HOLDING:
            return {}
        image = self._render_identity()
        image.update(self._render_config(now))
        image.update(self._render_live(self.model.buffer[-1] if self.model.buffer else None))
        faults = self.model.faults
        image[Reg.ERROR_CONDITION] = (1 if faults.laser_alert else 0) | (2 if faults.flow_fraction is not None else 0)
        return {int(k): v for k, v in image.items()}

    def write_one(self, table: Table, address: int, value: int, now: float) -> ExcCodes | None:
        if address in CHOICES and value not in CHOICES[address]:
            return ExcCodes.ILLEGAL_VALUE
        model = self.model
        result: ExcCodes | None = None
        if address == Reg.SAMPLE_CONTROL:
            if value == 1:
                model.start(now)
            else:
                model.stop()
        elif address in TIMING_PAIRS:
            result = self._apply_timing(address, value, now)
        elif address == Reg.UTC_MIN_SEC:
            result = self._apply_clock(value)
        else:
            model.set_timing(now)  # "Any write [to the configuration block] restarts the current sample."
        if result is None:
            self.store(table, address, value)
        return result

    def _apply_timing(self, address: int, value: int, now: float) -> ExcCodes | None:
        """Sample or hold period from its (hours, MMSS) pair, with `value` as the register just written."""
        h_reg, ms_reg = TIMING_PAIRS[address]
        is_sample = h_reg == Reg.SAMPLE_PERIOD_H
        default_h, default_ms = _h_mmss(self.model.sample_time_s if is_sample else self.model.hold_time_s)
        pair = {h_reg: self.stored_value(Table.HOLDING, h_reg, default_h)}
        pair[ms_reg] = self.stored_value(Table.HOLDING, ms_reg, default_ms)
        pair[address] = value
        seconds = _from_h_mmss(pair[h_reg], pair[ms_reg])
        if seconds is None or (is_sample and seconds == 0):
            return ExcCodes.ILLEGAL_VALUE
        if is_sample:
            self.model.set_timing(now, sample_time_s=float(seconds))
        else:
            self.model.set_timing(now, hold_time_s=float(seconds))
        return None

    def _apply_clock(self, min_sec: int) -> ExcCodes | None:
        """Set the clock from 112-114 (as last written, else the current time) and `min_sec` for 115."""
        when = dt.datetime.fromtimestamp(int(self.model.device_time()), dt.UTC)
        month_day = self.stored_value(Table.HOLDING, Reg.UTC_MONTH_DAY, when.month * 100 + when.day)
        try:
            new = dt.datetime(
                self.stored_value(Table.HOLDING, Reg.UTC_YEAR, when.year),
                month_day // 100,
                month_day % 100,
                self.stored_value(Table.HOLDING, Reg.UTC_HOUR, when.hour),
                min_sec // 100,
                min_sec % 100,
                tzinfo=dt.UTC,
            )
        except ValueError:
            return ExcCodes.ILLEGAL_VALUE
        self.model.set_device_time(new.timestamp())
        return None

    def _render_identity(self) -> dict[int, int]:
        image: dict[int, int] = {}
        put(image, Reg.MANUFACTURER, ascii_registers("Met One Instruments", 15))
        put(image, Reg.MODEL, ascii_registers("6003-SIM", 10))
        put(image, Reg.SERIAL, ascii_registers(f"SIM{self.unit_id:05d}", 5))
        put(image, Reg.SENSOR_ID, ascii_registers(f"S{self.unit_id:03d}", 4))
        due = self.calibration_due_s()
        put(image, Reg.LAST_CALIBRATION_HI, u32_hi_lo(due - 365 * 86_400))
        put(image, Reg.CALIBRATION_DUE_HI, u32_hi_lo(due))
        image[Reg.FIRMWARE] = FIRMWARE
        return image

    def _render_config(self, now: float) -> dict[int, int]:
        model = self.model
        image: dict[int, int] = {
            address: self.stored_value(Table.HOLDING, address, value) for address, value in DEFAULTS.items()
        }
        image[Reg.SAMPLE_CONTROL] = 1 if model.running else 2
        put(image, Reg.SAMPLE_PERIOD_H, _h_mmss(model.sample_time_s))
        put(image, Reg.HOLD_PERIOD_H, _h_mmss(model.hold_time_s))
        when = dt.datetime.fromtimestamp(int(model.device_time()), dt.UTC)
        put(image, Reg.UTC_YEAR, (when.year, when.month * 100 + when.day, when.hour, when.minute * 100 + when.second))
        return image

    def _render_live(self, record: Sample | None) -> dict[int, int]:
        image: dict[int, int] = {address: 0 for address in range(300, 354)}
        if record is None:
            return image
        counts = record.counts if self.stored_value(Table.HOLDING, Reg.COUNT_MODE) == 0 else record.differential()
        divisor = {
            0: 1.0,
            1: record.volume_m3 * CUBIC_FEET_PER_M3,
            2: record.volume_m3 * 1000.0,
            3: record.volume_m3,
        }[self.stored_value(Table.HOLDING, Reg.CONCENTRATION_MODE)]
        status = SampleStatus(0)
        if record.laser_alert:
            status |= SampleStatus.LASER_FAULT
        if record.flow_alert:
            status |= SampleStatus.FLOW_FAULT
        if record.overflow:
            status |= SampleStatus.OVERFLOW
        put(image, Reg.TIMESTAMP_HI, u32_hi_lo(record.timestamp))
        put(image, Reg.SAMPLE_PERIOD_HI, u32_hi_lo(round(record.sample_time_s)))
        put(image, Reg.SAMPLE_VOLUME_HI, u32_hi_lo(round(record.volume_m3 * 10_000)))
        image[Reg.SAMPLE_STATUS] = int(status)
        for k, count in enumerate(counts):
            value = round(count / divisor) if divisor > 0 else 0
            put(image, Reg.SIZE_1_HI + 2 * k, u32_hi_lo(value))
        if self.stored_value(Table.HOLDING, Reg.FLOW_UNITS) == 1:
            image[Reg.FLOW] = u16(round(record.flow_cfm * 100))
        else:
            image[Reg.FLOW] = u16(round(record.flow_cfm * LITRES_PER_CUBIC_FOOT * 10))
        image[Reg.TEMPERATURE] = i16(record.temperature_c * 10)
        image[Reg.RELATIVE_HUMIDITY] = u16(round(record.rh_pct * 10))
        image[Reg.LOCATION] = u16(record.location)
        return image
