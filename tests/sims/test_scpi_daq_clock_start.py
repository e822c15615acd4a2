"""The DAQ simulator's clock set to a date (``clock_start``), asked over its real TCP socket: a site file
can put the instrument's local clock just before a DST change, whatever day it runs."""

from __future__ import annotations

import asyncio

import pytest

from device_sims.scpi_daq import ScpiDaqSim
from tests.sims.test_scpi_daq_sim import tcp


async def test_the_clock_starts_at_the_instant_given_in_the_instruments_zone_when_first_asked() -> None:
    # 00:59:50Z on the day Berlin springs ahead is 01:59:50 CET: ten seconds before the skipped hour
    sim = ScpiDaqSim(seed=3, timezone="Europe/Berlin", clock_start="2025-03-30T00:59:50Z")
    async with sim, tcp(sim) as line:
        await asyncio.sleep(2)  # a gateway slow to start: the clock must not have run meanwhile
        assert await line.ask("SYST:DATE?") == "2025,3,30"
        hour, minute, second = (await line.ask("SYST:TIME?")).split(",")
        assert (hour, minute) == ("1", "59") and 50 <= float(second) < 52
        assert sim.state().clock_skew_s < 0, "a date in the past is a clock behind the host's"


def test_a_clock_start_without_its_offset_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="needs its UTC offset"):
        ScpiDaqSim(clock_start="2025-03-30T00:59:50")
    with pytest.raises(ValueError, match="not an ISO 8601"):
        ScpiDaqSim(clock_start="next Sunday")
