"""Run the MES stand-in by hand: `cgt-gateway sim mes --port 8080 --token-env MES_TOKEN --jsonl received.jsonl`.

Prints exactly one line to stdout once the endpoint is open (the records URL, or a JSON object with
`--json`), so a script can start it, read the line and point a sink at it. Logs go to stderr. Faults are
driven with `POST /_control` (see README.md). Runs until SIGINT or SIGTERM and then exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from device_sims.cli_support import run_until_signalled

from .standin import MesStandIn


def build_parser() -> argparse.ArgumentParser:
    """The command line; `prog` matches how the gateway CLI exposes it."""
    parser = argparse.ArgumentParser(
        prog="cgt-gateway sim mes",
        description="A stand-in MES on a real HTTP endpoint: takes the HTTP sink's record batches.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (default)")
    parser.add_argument("--path", default="/records", help="the records path (default /records)")
    parser.add_argument(
        "--token-env", metavar="VAR", default=None, help="require the bearer token held in this environment variable"
    )
    parser.add_argument("--jsonl", metavar="FILE", default=None, help="append every first-received record to FILE")
    parser.add_argument("--no-verify-hashes", action="store_true", help="do not check each record against its hash")
    parser.add_argument("--json", action="store_true", help="print the endpoint as one JSON line")
    return parser


def _token(var: str | None) -> str | None:
    if var is None:
        return None
    token = os.environ.get(var, "").strip()
    if not token:
        raise ValueError(f"environment variable {var} (--token-env) is not set or empty")
    return token


def _ready_line(mes: MesStandIn, args: argparse.Namespace) -> str:
    if args.json:
        return json.dumps(
            {
                "endpoint": mes.endpoint,
                "port": mes.port,
                "control": f"http://{mes.host}:{mes.port}/_control",
                "token_required": args.token_env is not None,
                "jsonl": args.jsonl,
                "serial_path": None,
            }
        )
    auth = f"bearer token from {args.token_env}" if args.token_env else "no token"
    return f"mes stand-in listening on {mes.endpoint} ({auth}); Ctrl-C to stop"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 after a signal, 2 on a start failure)."""
    args = build_parser().parse_args(argv)

    def make_sim() -> MesStandIn:
        return MesStandIn(
            host=args.host,
            port=args.port,
            token=_token(args.token_env),
            path=args.path,
            jsonl_path=args.jsonl,
            verify_hashes=not args.no_verify_hashes,
        )

    return run_until_signalled(make_sim, lambda mes: _ready_line(mes, args))


if __name__ == "__main__":
    sys.exit(main())
