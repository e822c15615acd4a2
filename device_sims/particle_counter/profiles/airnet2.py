"""Particle Measuring Systems AirNet II remote sensor, Appendix B "Modbus Protocol" of its manual.

The AirNet II keeps a queue of data packets. The input registers from 30212 show the OLDEST queued
packet; the host reads it and then writes 0 to coil 2 ("data available") to pop it. When nothing is
queued the packet registers read 0 rather than raising an exception, so a host that was offline for an
hour loses nothing until the queue overflows (the simulator drops the oldest and counts the drop).

Wire addresses are 0-based: documented register 30001 is input address 0, coil 1 is coil address 0.
Data-packet status bits are ACTIVE-GOOD (set = healthy), the inverse of Lighthouse's alarm bits.
"""

from __future__ import annotations

import enum
from types import MappingProxyType
from typing import ClassVar

from pymodbus.constants import ExcCodes

from ..limits import CUBIC_FEET_PER_M3
from ..registers import join_u32, u16, u32_hi_lo
from .base import CounterDevice, Span, Table, put

MAP_VERSION = 100  # v1.00
INPUT_END = 244  # channel 8 ends at 30244


class Input(enum.IntEnum):
    """Input register wire addresses (documented 30001 + value)."""

    MAP_VERSION = 0
    DEVICE_STATUS_HI = 211  # 30212/13
    DEVICE_STATE = 213  # 30214: LSB state, MSB sub-state
    SAMPLES_IN_QUEUE = 214  # 30215
    TIMESTAMP_HI = 215  # 30216/17, time_t
    SAMPLE_TIME_HI = 217  # 30218/19, seconds x 100
    PACKET_STATUS_HI = 219  # 30220/21, bits in the low word (30221)
    FLOW_HI = 221  # 30222/23, CFM x 10
    VOLUME_HI = 223  # 30224/25, ft3 x 10
    LOCATION = 225  # 30226
    CHANNEL_COUNT = 226  # 30227
    CHANNEL_1_HI = 228  # 30229/30; channel k at 228 + 2(k-1)


class Holding(enum.IntEnum):
    """Holding register wire addresses (documented 40001 + value). Any write stops sampling."""

    RTC_HI = 0  # 40001/02, time_t
    RTC_LO = 1
    SAMPLE_INTERVAL = 2  # seconds
    HOLD_TIME = 3  # seconds
    REPEAT_COUNT = 4


class Coil(enum.IntEnum):
    """Coil wire addresses (documented coil number - 1)."""

    DATA_COLLECTION = 0
    DATA_AVAILABLE = 1
    CLEAR_QUEUE = 2
    RESET_SENSOR = 3
    GREEN_LED = 4
    RED_LED = 5
    FLOAT_MODE = 7


class DeviceState(enum.IntEnum):
    """30214 low byte (MiniCapt encoding, assumed shared by AirNet II)."""

    IDLE = 0
    SAMPLING = 1
    MAINTENANCE = 2
    ERROR = 3


class PacketStatus(enum.IntFlag):
    """30221 bits, active-good."""

    LASER_GOOD = 0x0001
    FLOW_GOOD = 0x0002
    HARDWARE_GOOD = 0x0004


class AirNet2Device(CounterDevice):
    """An AirNet II sensor: queued packets, popped by the host through coil 2."""

    profile: ClassVar[str] = "airnet2"
    function_codes: ClassVar[frozenset[int]] = frozenset({1, 3, 4, 5, 6, 15, 16, 22, 23})
    layout = MappingProxyType(
        {
            Table.COILS: (Span(0, 16, writable=True),),
            Table.HOLDING: (Span(0, 5, writable=True),),
            Table.INPUT: (Span(0, INPUT_END),),
        }
    )
    default_channels_um: ClassVar[tuple[float, ...]] = (0.5, 5.0)
    max_channels: ClassVar[int] = 8
    default_buffer_capacity: ClassVar[int] = 100

    def render(self, table: Table, now: float) -> dict[int, int]:
        if table is Table.INPUT:
            return self._render_input(now)
        if table is Table.COILS:
            return {
                Coil.DATA_COLLECTION: int(self.model.running),
                Coil.DATA_AVAILABLE: int(bool(self.model.buffer)),
                Coil.CLEAR_QUEUE: 0,
                Coil.RESET_SENSOR: 0,
                Coil.FLOAT_MODE: 0,
            }
        if table is Table.HOLDING:
            image: dict[int, int] = {
                Holding.SAMPLE_INTERVAL: u16(round(self.model.sample_time_s)),
                Holding.HOLD_TIME: u16(round(self.model.hold_time_s)),
            }
            put(image, Holding.RTC_HI, u32_hi_lo(int(self.model.device_time())))
            return {int(k): v for k, v in image.items()}
        return {}

    def write_one(self, table: Table, address: int, value: int, now: float) -> ExcCodes | None:
        if table is Table.COILS:
            return self._write_coil(address, bool(value), now)
        self.store(table, address, value)
        model = self.model
        model.stop()  # "Any change to holding registers stops sampling."
        if address == Holding.RTC_LO:
            rtc = join_u32(self.stored_value(table, Holding.RTC_HI), value)
            model.set_device_time(rtc)
        elif address == Holding.SAMPLE_INTERVAL:
            if value == 0:
                return ExcCodes.ILLEGAL_VALUE
            model.set_timing(now, sample_time_s=float(value))
        elif address == Holding.HOLD_TIME:
            model.set_timing(now, hold_time_s=float(value))
        return None

    def _write_coil(self, address: int, on: bool, now: float) -> ExcCodes | None:
        model = self.model
        if address == Coil.DATA_COLLECTION:
            if on and not model.running:
                model.start(now)
            elif not on:
                model.stop()
        elif address == Coil.DATA_AVAILABLE:
            if not on:
                model.pop()
        elif address == Coil.CLEAR_QUEUE:
            if on:
                model.clear_buffer()
        elif address == Coil.RESET_SENSOR:
            if on:
                self.restart(now)
        elif address == Coil.FLOAT_MODE:
            if on:
                return ExcCodes.ILLEGAL_VALUE  # IEEE float mode is not simulated
        else:
            self.store(Table.COILS, address, int(on))
        return None

    def _render_input(self, now: float) -> dict[int, int]:
        model = self.model
        faults = model.faults
        image: dict[int, int] = {address: 0 for address in range(INPUT_END)}
        image[Input.MAP_VERSION] = MAP_VERSION
        device_status = (1 if faults.laser_alert else 0) | (2 if faults.flow_fraction is not None else 0)
        put(image, Input.DEVICE_STATUS_HI, u32_hi_lo(device_status))
        if faults.laser_alert:
            state = DeviceState.ERROR
        elif model.sampling(now):
            state = DeviceState.SAMPLING
        else:
            state = DeviceState.IDLE
        image[Input.DEVICE_STATE] = int(state)
        image[Input.SAMPLES_IN_QUEUE] = u16(len(model.buffer))
        if not model.buffer:
            return image
        packet = model.buffer[0]
        status = PacketStatus.HARDWARE_GOOD
        if not packet.laser_alert:
            status |= PacketStatus.LASER_GOOD
        if not packet.flow_alert:
            status |= PacketStatus.FLOW_GOOD
        put(image, Input.TIMESTAMP_HI, u32_hi_lo(packet.timestamp))
        put(image, Input.SAMPLE_TIME_HI, u32_hi_lo(round(packet.sample_time_s * 100)))
        put(image, Input.PACKET_STATUS_HI, u32_hi_lo(int(status)))
        put(image, Input.FLOW_HI, u32_hi_lo(round(packet.flow_cfm * 10)))
        put(image, Input.VOLUME_HI, u32_hi_lo(round(packet.volume_m3 * CUBIC_FEET_PER_M3 * 10)))
        image[Input.LOCATION] = u16(packet.location)
        image[Input.CHANNEL_COUNT] = len(packet.counts)
        for k, count in enumerate(packet.counts):
            put(image, Input.CHANNEL_1_HI + 2 * k, u32_hi_lo(count))
        return {int(k): v for k, v in image.items()}
