"""Run the SCPI DAQ simulator by hand: `cgt-gateway sim scpi-daq --transport tcp --port 5025`.

Prints exactly one line to stdout once the endpoint is open (the VISA resource string, or a JSON object
with `--json`), so a script can start it, read the line and connect. Logs go to stderr. Runs until
SIGINT or SIGTERM and then exits 0; exits 2 with one line if it cannot start.
"""

from __future__ import annotations

import argparse
import json
import sys

from device_sims.cli_support import run_until_signalled

from .sim import TRANSPORTS, ScpiDaqSim


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cgt-gateway sim scpi-daq",
        description="Simulated SCPI temperature DAQ on LN2 storage probes, on a TCP socket or a pty.",
    )
    parser.add_argument("--transport", choices=TRANSPORTS, default="tcp", help="raw SCPI socket or a pty")
    parser.add_argument("--host", default="127.0.0.1", help="TCP address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (default)")
    parser.add_argument("--channels", type=int, default=4, help="number of probes, channels 101.. (default 4)")
    parser.add_argument("--serial", default="SIM000001", help="serial number *IDN? reports")
    parser.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per second (default 1)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for repeatable noise")
    parser.add_argument("--skew-s", type=float, default=0.0,
                        help="set the instrument's clock this many seconds off the host's (negative: behind)")
    parser.add_argument("--timezone", default="UTC", help="IANA zone the clock shows local time in (default UTC)")
    parser.add_argument("--json", action="store_true", help="print the endpoint as one JSON line")
    return parser


def _ready_line(sim: ScpiDaqSim, as_json: bool) -> str:
    identity = sim.instrument.identity.reply()
    if as_json:
        return json.dumps({
            "resource": sim.resource, "host": sim.host, "port": sim.port, "serial_path": sim.serial_path,
            "channels": list(sim.instrument.channels), "identity": identity,
        })
    return f"scpi-daq {identity} on {sim.resource}; Ctrl-C to stop"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 after a signal, 2 on a start failure)."""
    args = build_parser().parse_args(argv)
    if args.channels < 1 or args.channels > 20:
        build_parser().error("--channels must be within 1..20")

    def make_sim() -> ScpiDaqSim:
        return ScpiDaqSim(
            transport=args.transport, host=args.host, port=args.port,
            channels=range(101, 101 + args.channels), serial=args.serial,
            time_scale=args.time_scale, seed=args.seed, skew_s=args.skew_s, timezone=args.timezone,
        )

    return run_until_signalled(make_sim, lambda sim: _ready_line(sim, args.json))


if __name__ == "__main__":
    sys.exit(main())
