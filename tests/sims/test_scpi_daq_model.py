"""The DAQ simulator without I/O: dewar physics on an injected clock, and the SCPI interpreter."""

from __future__ import annotations

import math
import random

import pytest

from device_sims.scpi_daq import QUEUE_DEPTH, DewarConfig, DewarModel, Identity, ScpiInstrument


def quiet(**kw: float) -> DewarModel:
    return DewarModel(DewarConfig(noise_c=0.0, **kw), random.Random(1))  # type: ignore[arg-type]


def test_a_full_dewar_holds_its_probes_between_minus_190_and_minus_150() -> None:
    model = DewarModel(DewarConfig(), random.Random(7))
    readings = [t for hour in range(24) for t in model.measure(hour * 3600.0, [101, 102, 103, 104])]
    assert all(-191.0 < t < -155.0 for t in readings)
    assert min(readings) < -189.0  # the bottom probe sits near the liquid


def test_when_the_ln2_runs_out_the_dewar_warms_slowly_across_minus_150() -> None:
    model = quiet()
    model.run_dry(0.0)
    assert model.measure(60.0, [101])[0] < -188.0  # about a degree a minute at first
    crossing = next(t for t in range(0, 20_000, 10) if model.measure(float(t), [101])[0] > -150.0)
    expected = 12_600 * math.log(210 / 170)  # first order from -190 towards +20 with tau 3.5 h
    assert crossing == pytest.approx(expected, abs=10)
    model.refill(float(crossing))
    assert model.measure(crossing + 3600.0, [101])[0] < -185.0


def test_a_lid_opening_is_a_spike_strongest_at_the_top_then_a_slow_recovery() -> None:
    model = quiet()
    model.open_lid(0.0, 60.0)
    bottom, top = model.measure(60.0, [101, 104])
    assert top > -100.0 and bottom < top - 30  # warm air reaches the neck first
    assert model.lid_open is False  # closed after its 60 s
    assert model.measure(300.0, [104])[0] > -150.0  # still above the limit minutes later
    assert model.measure(3000.0, [104])[0] < -155.0


def test_time_scale_runs_hours_in_seconds() -> None:
    fast, slow = quiet(time_scale=600.0), quiet()
    fast.run_dry(0.0)
    slow.run_dry(0.0)
    assert fast.measure(6.0, [101]) == pytest.approx(slow.measure(3600.0, [101]))


def test_a_scripted_excursion_reads_exactly_then_ends() -> None:
    model = quiet()
    model.force(0.0, -140.0, 30.0, [104])
    assert model.measure(29.9, [103, 104])[1] == -140.0
    assert model.measure(30.0, [104])[0] == pytest.approx(-162.0)
    with pytest.raises(ValueError, match="no channel"):
        model.force(0.0, -140.0, 30.0, [109])


def daq(values: dict[int, float] | None = None) -> ScpiInstrument:
    temps = values or {101: -190.0, 102: -184.0, 103: -175.0, 104: -162.0}
    return ScpiInstrument(Identity(), list(temps), lambda channels: [temps[c] for c in channels])


def test_identity_measure_and_scan_in_short_and_long_forms() -> None:
    inst = daq()
    assert inst.handle("*IDN?") == "CGT Simulated Instruments,DAQ-4TC,SIM000001,1.0.0"
    assert inst.handle("MEAS:TEMP? TC,K,(@101:104)") == (
        "-1.90000000E+02,-1.84000000E+02,-1.75000000E+02,-1.62000000E+02")
    assert inst.handle(":measure:temperature? TC,K,(@104,101)") == "-1.62000000E+02,-1.90000000E+02"
    assert inst.handle("ROUTe:SCAN (@102:103)") is None
    assert inst.handle("ROUT:SCAN?") == "(@102,103)"
    assert inst.handle("READ?") == "-1.84000000E+02,-1.75000000E+02"
    assert inst.handle("UNIT:TEMP K;READ?") == "+8.91500000E+01,+9.81500000E+01"
    assert inst.handle("*RST;UNIT:TEMP?;*OPC?") == "C;1"
    assert inst.handle("SYSTem:ERRor?") == '+0,"No error"'


@pytest.mark.parametrize(("line", "error"), [
    ("MEAS:VOLT? (@101)", '-113,"Undefined header"'),
    ("MEAS:TEMP? TC,K,(@105)", '-224,"Illegal parameter value;no such channel"'),
    ("MEAS:TEMP? XYZ,(@101)", '-224,"Illegal parameter value"'),
    ("READ?", '-221,"Settings conflict;empty scan list"'),
    ("ROUT:SCAN", '-109,"Missing parameter"'),
])
def test_a_bad_command_answers_nothing_and_queues_an_error(line: str, error: str) -> None:
    inst = daq()
    assert inst.handle(line) is None
    assert inst.handle("SYST:ERR?") == error
    assert inst.handle("SYST:ERR?") == '+0,"No error"'


def test_a_full_error_queue_ends_with_an_overflow_and_cls_empties_it() -> None:
    inst = daq()
    for _ in range(QUEUE_DEPTH + 5):
        inst.handle("BOGUS")
    replies = [inst.handle("SYST:ERR?") for _ in range(QUEUE_DEPTH + 1)]
    assert replies[: QUEUE_DEPTH - 1] == ['-113,"Undefined header"'] * (QUEUE_DEPTH - 1)
    assert replies[QUEUE_DEPTH - 1 :] == ['-350,"Queue overflow"', '+0,"No error"']
    inst.handle("BOGUS")
    inst.handle("*CLS")
    assert inst.handle("SYST:ERR?") == '+0,"No error"'


def test_instrument_faults() -> None:
    inst = daq()
    inst.faults.overload = {102}
    assert inst.handle("MEAS:TEMP? (@101:102)") == "-1.90000000E+02,+9.90000000E+37"
    inst.faults.wrong_identity = True
    assert inst.handle("*IDN?") == "CGT Simulated Instruments,DAQ-4TC,SIM000002,1.0.0"
    inst.faults.garbage = True
    garbage = inst.handle("*IDN?")
    assert garbage is not None and "," not in garbage and not garbage.isascii()
    inst.faults.silent = True
    assert inst.handle("*IDN?") is None
