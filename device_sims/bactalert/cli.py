"""Run a BacT/ALERT simulator by hand: `cgt-gateway sim bactalert --positive-h 12 --time-scale 3600`.

Prints exactly one line to stdout once the pty is open (its path, or a JSON object with `--json`), so a
script can start it, read the line and connect. Logs go to stderr. Runs until SIGINT or SIGTERM, exit 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from device_sims.cli_support import run_until_signalled

from .sim import BactAlertSim


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cgt-gateway sim bactalert",
        description="Simulated BacT/ALERT sending bottle results as ASTM E1381/E1394 on a pty.",
    )
    parser.add_argument("--lot", default="LOT-SIM-0001", help="lot the bottles are loaded against")
    parser.add_argument("--bottles", type=int, default=3, help="bottles loaded at start (default 3)")
    parser.add_argument(
        "--positive-h", type=float, action="append", default=None, metavar="HOURS",
        help="time to detection of a positive bottle; repeat for more (default: the first bottle at 14 h)",
    )
    parser.add_argument("--protocol-days", type=float, default=5.0, help="days until a bottle is negative")
    parser.add_argument("--time-scale", type=float, default=60.0, help="simulated seconds per second (default 60)")
    parser.add_argument("--serial-path", default=None, help="where to create the client-side link to the pty")
    parser.add_argument("--seed", type=int, default=None, help="random seed (garbage bytes)")
    parser.add_argument("--start", default=None, metavar="ISO", help="the instrument clock's start (default: now)")
    parser.add_argument(
        "--correct-ttd-h", type=float, default=None, metavar="HOURS",
        help="once the first bottle's result has been sent, send a correction (R.9 = C): positive at HOURS",
    )
    parser.add_argument(
        "--resend-after-s", type=float, default=None, metavar="SECONDS",
        help="SECONDS after start, send the last message sent again, byte for byte",
    )
    parser.add_argument("--json", action="store_true", help="print the endpoint as one JSON line")
    return parser


def _ready_line(sim: BactAlertSim, as_json: bool) -> str:
    if as_json:
        return json.dumps({"serial_path": sim.serial_path, "bottles": len(sim.bottles),
                           "time_scale": sim.time_scale, "lot": sim.bottles[0].lot if sim.bottles else None})
    return f"bactalert on {sim.serial_path} ({len(sim.bottles)} bottles, x{sim.time_scale:g}); Ctrl-C to stop"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 after a signal, 2 on a start failure)."""
    args = build_parser().parse_args(argv)
    positives = args.positive_h if args.positive_h is not None else [14.0]

    scenario: list[dict[str, Any]] = []
    if args.correct_ttd_h is not None:
        scenario.append({"after_s": 0, "inject": "correct_result", "bottle": 1, "ttd_h": args.correct_ttd_h})
    if args.resend_after_s is not None:
        scenario.append({"after_s": args.resend_after_s, "inject": "resend"})

    def make_sim() -> BactAlertSim:
        bottles = [{"ttd_h": positives[i]} if i < len(positives) else {} for i in range(args.bottles)]
        return BactAlertSim(
            bottles, lot=args.lot, time_scale=args.time_scale, protocol_days=args.protocol_days,
            serial_path=args.serial_path, seed=args.seed, start=args.start, scenario=scenario,
        )

    return run_until_signalled(make_sim, lambda sim: _ready_line(sim, args.json))


if __name__ == "__main__":
    sys.exit(main())
