"""``cgt-gateway lot-report -c FILE LOT``: the per-lot evidence pack, as HTML to sign and JSON for the MES.

Exit 0 when the data-completeness certificate finds the lot's data complete, 1 when it finds a problem
(a missing seq, a broken chain, records a sink has not delivered), 2 for a lot the journal does not know.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from gateway.config import load_site
from gateway.plugins import adapter_plugins
from gateway.reports.lot import UnknownLot, report_for_site
from gateway.reports.lot_html import write_lot_report

EXIT_OK, EXIT_BAD, EXIT_USAGE = 0, 1, 2


def register(sub: Any) -> argparse.ArgumentParser:
    """Add ``lot-report`` to the main parser's subcommands."""
    help_ = ("the evidence pack of one lot: its bindings, what happened to it on each piece of equipment and in "
             "the rooms it passed through, with a data-completeness certificate")
    sp = sub.add_parser("lot-report", help=help_, description=help_ + ". Exit 1 when the certificate finds a "
                        "problem, 2 when the journal does not know the lot.")
    sp.add_argument("-c", "--config", type=Path, required=True, help="site file (YAML)")
    sp.add_argument("lot", metavar="LOT", help="lot id, as bound")
    sp.add_argument("-o", "--output", type=Path, metavar="DIR",
                    help="folder for the JSON and HTML (default: lot-reports/ next to the journal)")
    sp.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    sp.set_defaults(func=_lot_report)
    return sp


def _lot_report(args: argparse.Namespace) -> int:
    loaded = load_site(args.config, adapter_plugins())  # simulator placeholders get stand-ins; nothing starts
    try:
        report = report_for_site(loaded, args.lot)
    except UnknownLot as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out_dir = args.output or Path(loaded.site.journal.path).parent / "lot-reports"
    json_path, html_path = write_lot_report(report, out_dir)
    cert = report["certificate"]
    seqs = cert["seq_range"]
    print(f"lot {args.lot}: {cert['verdict']}, {cert['records']} records, seqs {seqs['first']} to {seqs['last']}; "
          f"wrote {html_path} and {json_path}", file=sys.stderr)
    for problem in cert["problems"]:
        print(f"problem: {problem}", file=sys.stderr)
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    return EXIT_OK if cert["ok"] else EXIT_BAD
