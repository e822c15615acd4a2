"""Run a freezer simulator by hand: `cgt-gateway sim freezer --time-scale 60 --run --lot LOT-1`.

Prints exactly one line to stdout once the pty is ready (its path, or a JSON object with `--json`).
Logs go to stderr. Runs until SIGINT or SIGTERM and then exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys

from device_sims.cli_support import run_until_signalled

from .sim import FreezerSim


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cgt-gateway sim freezer",
        description="Simulated controlled-rate freezer speaking the freezer line protocol on a pty.",
    )
    parser.add_argument("--profile", default="classic-cell-therapy",
                        help="profile loaded at power-on: a name under config/freezing-profiles/ or a .yaml file")
    parser.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per real second")
    parser.add_argument("--sample-interval-s", type=float, default=10.0, help="simulated seconds between samples")
    parser.add_argument("--probes", type=int, choices=(1, 2), default=1, help="sample probes fitted")
    parser.add_argument("--seed", type=int, default=None, help="random seed for repeatable runs")
    parser.add_argument("--serial-path", default=None, help="where to create the pty link (default: a temp dir)")
    parser.add_argument("--skew-s", type=float, default=0.0,
                        help="set the freezer's clock this many seconds off the host's (negative: behind)")
    parser.add_argument("--run", action="store_true", help="start a run at once")
    parser.add_argument("--lot", default=None, help="lot or bag id entered for that run")
    parser.add_argument("--json", action="store_true", help="print the endpoint as one JSON line")
    return parser


def _ready_line(sim: FreezerSim, as_json: bool) -> str:
    state = sim.state()
    if as_json:
        return json.dumps({"serial_path": sim.serial_path, "endpoint": sim.endpoint, "profile": state.profile,
                           "profile_checksum": state.profile_checksum, "run_id": state.run_id})
    run = f", run {state.run_id}" if state.run_id else ""
    return f"freezer on {sim.serial_path} (profile {state.profile} {state.profile_checksum}{run}); Ctrl-C to stop"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 after a signal, 2 on a start failure)."""
    args = build_parser().parse_args(argv)

    def make_sim() -> FreezerSim:
        run = {"lot": args.lot} if args.run else None
        return FreezerSim(profile=args.profile, time_scale=args.time_scale, sample_interval_s=args.sample_interval_s,
                          probes=args.probes, seed=args.seed, serial_path=args.serial_path, run_on_start=run,
                          skew_s=args.skew_s)

    return run_until_signalled(make_sim, lambda sim: _ready_line(sim, args.json))


if __name__ == "__main__":
    sys.exit(main())
