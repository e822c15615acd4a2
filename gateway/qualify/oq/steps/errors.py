"""How a step can go wrong: it could not be carried out (the case fails), or the gateway refused it."""

from __future__ import annotations


class StepFailed(Exception):
    """A step could not be carried out (a wait ran out, a simulator refused a fault): the case fails."""


class StepRefused(Exception):
    """The gateway refused what the step asked (a bad DIN, a role too low, a changed config, a disk floor).

    A step with ``expect_refusal`` records it for a ``refused`` criterion; any other step fails on it.
    """


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
