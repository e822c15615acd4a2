"""Run a closed-processor simulator by hand: `cgt-gateway sim closed-processor --time-scale 600`.

Prints exactly one line to stdout once the endpoint is open (the endpoint, or a JSON object with
`--json`), so a script can start it, read the line and connect. Logs go to stderr. Runs until SIGINT or
SIGTERM and then exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys

from device_sims.cli_support import run_until_signalled

from .nodes import PROFILES
from .server import SECURITY_MODES
from .sim import ClosedProcessorSim


def build_parser() -> argparse.ArgumentParser:
    """The command line; `prog` matches how the gateway CLI exposes it."""
    parser = argparse.ArgumentParser(
        prog="cgt-gateway sim closed-processor",
        description="Simulated closed-system cell processor (LADS-shaped) on a real OPC UA endpoint.",
    )
    parser.add_argument("--profile", choices=PROFILES, default="lads", help="node layout (default lads)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (default)")
    parser.add_argument("--time-scale", type=float, default=60.0, help="simulated seconds per real second (default 60)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for repeatable values")
    parser.add_argument("--security", choices=SECURITY_MODES, default="none", help="endpoint security")
    parser.add_argument("--cert-dir", default=None, help="where the server certificate is kept (secure modes)")
    parser.add_argument("--json", action="store_true", help="print the endpoint as one JSON line")
    return parser


def _ready_line(sim: ClosedProcessorSim, as_json: bool) -> str:
    cert = str(sim.certificate_path) if sim.certificate_path else None
    if as_json:
        return json.dumps(
            {
                "profile": sim.profile,
                "endpoint": sim.endpoint,
                "port": sim.port,
                "security": sim.security,
                "certificate": cert,
            }
        )
    return f"closed-processor {sim.profile} listening on {sim.endpoint} (security {sim.security}); Ctrl-C to stop"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 after a signal, 2 on a start failure)."""
    args = build_parser().parse_args(argv)

    def make_sim() -> ClosedProcessorSim:
        return ClosedProcessorSim(
            profile=args.profile,
            host=args.host,
            port=args.port,
            seed=args.seed,
            time_scale=args.time_scale,
            security=args.security,
            cert_dir=args.cert_dir,
        )

    return run_until_signalled(make_sim, lambda sim: _ready_line(sim, args.json))


if __name__ == "__main__":
    sys.exit(main())
