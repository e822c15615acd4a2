"""An SCPI instrument's clock against the gateway's, pure: the replies of ``SYST:DATE?`` and ``SYST:TIME?``
to one UTC instant. No I/O.

SCPI-99 (SYSTem:DATE / SYSTem:TIME) answers ``<year>,<month>,<day>`` and ``<hour>,<minute>,<second>``
(NR1 numbers, the second often NR2 with milliseconds, signs allowed: ``+09,+15,+03.123``) and says
nothing of a time zone: instruments keep the local time they were set to. The equipment entry says which
zone that is (``device_timezone``); the instant is that local time in that zone.

Two queries are two moments, so a reading can straddle midnight: the date is asked before and after the
time, and when the two dates differ the time says which one it belongs to (a time before noon belongs to
the later date). A local time can also be ambiguous (the hour repeated when daylight saving time ends) or
missing (the hour skipped when it starts): of the instants it can mean, the one nearest to where the last
comparison says the instrument's clock should be is taken (nearest to the gateway's clock the first time),
so a clock that follows DST is read without a jump of an hour.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_NUMBER = r"\s*([+-]?\d+(?:\.\d*)?)\s*"
_TRIPLE = re.compile(rf"^{_NUMBER},{_NUMBER},{_NUMBER}$")


class ClockReplyError(ValueError):
    """A clock reply that is not what SCPI-99 says it is; the message quotes it."""


def _triple(reply: str, what: str) -> tuple[float, float, float]:
    match = _TRIPLE.match(reply.strip())
    if match is None:
        shown = reply if len(reply) <= 40 else reply[:40] + "..."
        raise ClockReplyError(f"{what} reply {shown!r} is not three comma-separated numbers")
    a, b, c = (float(g) for g in match.groups())
    return a, b, c


def parse_date(reply: str) -> date:
    """``2026,10,25`` (or ``+2026,+10,+25``) → a date; ClockReplyError otherwise."""
    y, m, d = _triple(reply, "date")
    if not all(v.is_integer() for v in (y, m, d)):
        raise ClockReplyError(f"date reply {reply.strip()!r} has a fraction")
    try:
        return date(int(y), int(m), int(d))
    except (ValueError, OverflowError):  # OverflowError: a year too large for any date
        raise ClockReplyError(f"date reply {reply.strip()!r} is not a calendar date") from None


def parse_time(reply: str) -> time:
    """``9,15,3.123`` (or ``+09,+15,+03.123``) → a time of day; a leap second 60 reads as 59.999999."""
    h, m, s = _triple(reply, "time")
    if not (h.is_integer() and m.is_integer() and 0 <= h <= 23 and 0 <= m <= 59 and 0 <= s < 61):
        raise ClockReplyError(f"time reply {reply.strip()!r} is not hour 0-23, minute 0-59, second 0-60")
    whole = min(int(s), 59)
    micro = 999_999 if s >= 60 else round((s - whole) * 1_000_000)
    if micro > 999_999:  # 59.9999996 rounds up: stay within the second rather than roll the minute
        micro = 999_999
    return time(int(h), int(m), whole, micro)


def local_moment(before: date, at: time, after: date) -> datetime:
    """The wall-clock moment of a time read between two dates (naive: the instrument's local time)."""
    if before == after:
        day = before
    else:  # midnight passed between the two date queries: a morning time is the later date's
        day = after if at.hour < 12 else before
    return datetime.combine(day, at)


def to_utc(local: datetime, zone: ZoneInfo, expected: datetime) -> datetime:
    """The UTC instant a naive local time in ``zone`` means; of two (DST), the one nearest ``expected``."""
    candidates = {local.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)}
    return min(candidates, key=lambda c: (abs((c - expected).total_seconds()), c))


def clock_offset(local: datetime, zone: ZoneInfo, reference: datetime, last_offset_s: float | None) -> float:
    """Instrument clock minus gateway clock in seconds, ``reference`` being when the time was read.

    ClockReplyError when the local time has no UTC instant (a clock at 0001-01-01 east of UTC, at
    9999-12-31 west of it): such a clock cannot be compared, it does not stop the scan.
    """
    try:
        expected = reference + timedelta(seconds=last_offset_s or 0.0)
        return (to_utc(local, zone, expected) - reference).total_seconds()
    except OverflowError:
        where = f"{local.isoformat()} in {zone.key}"
        raise ClockReplyError(f"{where} is outside the dates a clock is compared at") from None
