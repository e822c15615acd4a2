"""Fixtures of the fuzz suite: each test's time added to its codec's tally, logs quiet while fuzzing, and
the tally printed at the end of the run.

Short form (``make test``): 1 200 examples per codec, the codec fuzzers in about a quarter of a
minute. Long form: ``CGT_FUZZ_EXAMPLES=100000 .venv/bin/pytest tests/reliability/fuzz`` runs that many
examples per codec (see ``budget.py``). Hypothesis prints a failing example with its seed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
import structlog

from tests.reliability.fuzz.budget import TALLIES, Tally


@pytest.fixture(autouse=True)
def _timed(request: pytest.FixtureRequest) -> Iterator[None]:
    """Adds each fuzz test's wall time to its module's tally (``TALLY``)."""
    start = time.perf_counter()
    yield
    module_tally = getattr(request.module, "TALLY", None)
    if isinstance(module_tally, Tally):
        module_tally.seconds += time.perf_counter() - start
        module_tally.tests.add(request.node.name)


@pytest.fixture(autouse=True, scope="module")
def _quiet_logs() -> Iterator[None]:
    """Adapters log each bad frame; over 10^5 examples pytest would keep every line in memory.

    Only critical logs pass while a fuzz module runs; the configuration is restored after it.
    """
    before = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    pymodbus = logging.getLogger("pymodbus")
    level = pymodbus.level
    pymodbus.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        pymodbus.setLevel(level)
        structlog.configure(**before)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    ran = [t for t in TALLIES.values() if t.examples]
    if not ran:
        return
    terminalreporter.section("fuzz tally")
    for t in ran:
        terminalreporter.write_line(
            f"{t.codec}: {t.examples} examples, {t.units} units fed, {t.mutated} mutated, "
            f"{t.seconds:.1f} s over {len(t.tests)} tests"
        )
