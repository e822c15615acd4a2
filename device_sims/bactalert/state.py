"""What the BacT/ALERT simulator is told to do (faults and scripted behaviours) and what it counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Faults and their parameters (defaults). One-shot faults act on the next message and are then spent.
FAULTS: dict[str, dict[str, float]] = {
    "corrupt_checksum": {"count": 1},  # the next `count` frames sent go out with a wrong checksum
    "wrong_frame_number": {"count": 1},  # ... with a wrong frame number
    "no_ack": {},  # the instrument stops answering the gateway's ENQ (until restore)
    "slow_sender": {"pause_s": 5.0, "at_frame": 3},  # next message: a pause before frame `at_frame`
    "contention": {},  # the gateway's next ENQ crosses one of ours
    "line_drop": {"at_frame": 3},  # next message: the line drops before frame `at_frame`
    "oversize": {"chars": 300},  # next message: a record of more than 240 characters in one frame
    "long_record": {"chars": 300},  # next message: a long record sent properly, in ETB frames
    "duplicate_frame": {},  # next message: frame 2 is sent again after its ACK
    "garbage": {"bytes": 64},  # random bytes on the line, now
    # scripted results: what a LIS must cope with besides link faults
    "correct_result": {"bottle": 1, "ttd_h": 0.0},  # bottle N's result corrected (R.9 = C), once it was sent
    "resend": {"count": 1},  # the last message sent goes again `count` times, byte for byte
}


@dataclass
class Faults:
    corrupt_checksum: int = 0
    wrong_frame_number: int = 0
    no_ack: bool = False
    slow: tuple[float, int] | None = None
    contention: bool = False
    line_drop_at: int | None = None
    oversize: int = 0
    long_record: int = 0
    duplicate_frame: bool = False
    #: Corrections waiting for their bottle's result to go out: bottle index -> corrected TTD (0: +1 h).
    corrections: dict[int, float] = field(default_factory=dict)
    #: Copies of the next message to send again once it has gone through (no message sent yet).
    resend: int = 0


@dataclass(kw_only=True)
class LinkCounts:
    """What the simulator's link layer has done, counted (written once for the live counts and the snapshot)."""

    messages_sent: int = 0
    frames_sent: int = 0
    retransmissions: int = 0
    naks: int = 0
    aborts: int = 0
    timeouts: int = 0
    enq_sent: int = 0
    contentions: int = 0
    queries: int = 0
    ignored_enqs: int = 0
    line_drops: int = 0
    interrupts: int = 0


@dataclass
class SimState(LinkCounts):
    """A snapshot for assertions (a copy: changing it changes nothing in the simulator)."""

    sim_time: datetime
    bottles: dict[str, dict[str, Any]]
    pending: int
    line_up: bool
    sent: tuple[str, ...] = ()


@dataclass(kw_only=True)
class Counters(LinkCounts):
    sent: list[str] = field(default_factory=list)


@dataclass
class Outgoing:
    """One message in the instrument's queue: a label for the counts and its records."""

    label: str
    records: list[str]
