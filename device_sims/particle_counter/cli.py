"""Run a particle-counter simulator by hand: `cgt-gateway sim particle-counter --profile airnet2`.

Prints exactly one line to stdout once the endpoint is open (the endpoint, or a JSON object with
`--json`), so a script can start it, read the line and connect. Logs go to stderr. Runs until SIGINT or
SIGTERM and then exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys

from device_sims.cli_support import run_until_signalled

from .limits import GRADES, ROOM_STATES
from .profiles import PROFILE_NAMES
from .sim import TRANSPORTS, ParticleCounterSim


def build_parser() -> argparse.ArgumentParser:
    """The command line; `prog` matches how the gateway CLI exposes it."""
    parser = argparse.ArgumentParser(
        prog="cgt-gateway sim particle-counter",
        description="Simulated cleanroom particle counter(s) on a real Modbus TCP or RTU endpoint.",
    )
    parser.add_argument("--profile", choices=PROFILE_NAMES, default="lighthouse", help="register layout")
    parser.add_argument("--transport", choices=TRANSPORTS, default="tcp", help="Modbus TCP or RTU over a pty pair")
    parser.add_argument("--host", default="127.0.0.1", help="TCP address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (default)")
    parser.add_argument(
        "--unit-id",
        type=int,
        action="append",
        dest="unit_ids",
        metavar="ID",
        help="Modbus unit id; repeat for several counters on one line (default 1)",
    )
    parser.add_argument("--grade", choices=GRADES, default="A", help="Annex 1 grade the counts are drawn for")
    parser.add_argument("--state", choices=ROOM_STATES, default="in_operation", help="room occupancy state")
    parser.add_argument("--sample-time-s", type=float, default=60.0, help="seconds per sample (default 60)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for repeatable counts")
    parser.add_argument("--serial-path", default=None, help="RTU only: where to create the client-side pty link")
    parser.add_argument("--json", action="store_true", help="print the endpoint as one JSON line")
    return parser


def _ready_line(sim: ParticleCounterSim, as_json: bool) -> str:
    units = list(sim.unit_ids)
    if as_json:
        return json.dumps(
            {
                "profile": sim.profile,
                "endpoint": sim.endpoint,
                "port": sim.port,
                "serial_path": sim.serial_path,
                "unit_ids": units,
            }
        )
    label = "unit" if len(units) == 1 else "units"
    ids = ", ".join(str(u) for u in units)
    return f"particle-counter {sim.profile} listening on {sim.endpoint} ({label} {ids}); Ctrl-C to stop"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 after a signal, 2 on a start failure)."""
    args = build_parser().parse_args(argv)

    def make_sim() -> ParticleCounterSim:
        return ParticleCounterSim(
            profile=args.profile,
            transport=args.transport,
            host=args.host,
            port=args.port,
            unit_ids=args.unit_ids or [1],
            grade=args.grade,
            state=args.state,
            sample_time_s=args.sample_time_s,
            seed=args.seed,
            serial_path=args.serial_path,
        )

    return run_until_signalled(make_sim, lambda sim: _ready_line(sim, args.json))


if __name__ == "__main__":
    sys.exit(main())
