"""``cgt-gateway qualify``: IQ checks with signable evidence, and the approved baseline for validated runs.

Progress goes to stderr one line per item; ``--json`` prints the evidence's JSON on stdout. Exit 0 when
every item passes, 1 when any fails.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

from gateway.qualify.baseline import baseline_path, record_baseline
from gateway.qualify.evidence import Item, write_evidence
from gateway.qualify.iq import run_iq

EXIT_OK, EXIT_BAD = 0, 1


def register(sub: Any) -> argparse.ArgumentParser:
    """Add ``qualify`` and its subcommands to the main parser's subcommands; return the ``qualify`` parser."""
    help_ = "qualify an installation: IQ checks and evidence, the approved baseline for `run --validated`"
    qp = sub.add_parser("qualify", help=help_, description=help_)
    steps = qp.add_subparsers(dest="qualify_step", required=True, metavar="STEP")

    sp = steps.add_parser("iq", help="installation qualification: check this machine against the site file",
                          description="Installation qualification: software and package versions, code manifest, "
                          "config and its hash, journal storage, disk, clock, ports, certificates, serial ports.")
    sp.add_argument("-c", "--config", type=Path, required=True, help="site file (YAML)")
    sp.add_argument("-o", "--output", type=Path, metavar="DIR",
                    help="folder for the JSON and HTML evidence (default: qualification/ next to the site file)")
    sp.add_argument("--json", action="store_true", help="print the evidence as JSON on stdout")
    sp.set_defaults(func=_iq)

    sp = steps.add_parser("baseline", help="record the approved config and software hashes (audited)",
                          description="Record the approved configuration hash and software manifest hash next to "
                          "the site file and in its journal's audit trail. The gateway must not be running.")
    sp.add_argument("-c", "--config", type=Path, required=True, help="site file (YAML)")
    sp.add_argument("--by", required=True, metavar="NAME", help="who approves this state (named in the audit trail)")
    sp.add_argument("--reason", required=True, metavar="TEXT", help="why, e.g. the change record or IQ/OQ report")
    sp.set_defaults(func=_baseline)

    sp = steps.add_parser("oq", help="operational qualification: run an OQ protocol against the simulators",
                          description="Run the test cases of an OQ protocol (config/oq/*.yaml): each starts its "
                          "simulators and a gateway with a fresh journal, runs its timeline and checks its "
                          "acceptance criteria. Exit 1 when any case fails.")
    where = sp.add_mutually_exclusive_group(required=True)
    where.add_argument("-c", "--config", type=Path, help="OQ protocol file (YAML)")
    where.add_argument("--protocol", metavar="NAME", help="a shipped protocol by name, e.g. oq-core")
    sp.add_argument("--case", action="append", metavar="ID", help="run only this case (repeatable), e.g. OQ-05")
    sp.add_argument("-o", "--output", type=Path, metavar="DIR",
                    help="folder for the JSON and HTML evidence (default: qualification/ next to the protocol)")
    sp.add_argument("--json", action="store_true", help="print the evidence as JSON on stdout")
    sp.set_defaults(func=_oq)
    return qp


def _iq(args: argparse.Namespace) -> int:
    site: Path = args.config
    print(f"IQ of {site}", file=sys.stderr)
    evidence = run_iq(site, progress=_progress)
    out_dir = args.output if args.output is not None else site.resolve().parent / "qualification"
    json_path, html_path = write_evidence(evidence, out_dir)
    for note in evidence.notes:
        print(f"note: {note}", file=sys.stderr)
    counts = evidence.counts
    verdict = "PASS" if evidence.passed else "FAIL"
    print(f"IQ {verdict}: {counts['passed']}/{counts['total']} passed, {counts['failed']} failed"
          + (f", {counts['warnings']} with warnings" if counts["warnings"] else ""), file=sys.stderr)
    print(f"evidence: {json_path} and {html_path}", file=sys.stderr)
    if args.json:
        sys.stdout.write(orjson.dumps(evidence.as_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z).decode())
        sys.stdout.write("\n")
    return EXIT_OK if evidence.passed else EXIT_BAD


def _oq(args: argparse.Namespace) -> int:
    from gateway.qualify.oq.protocol import protocol_path  # the OQ rig pulls in the runtime: only when asked
    from gateway.qualify.oq.runner import run_protocol

    protocol = args.config if args.config is not None else protocol_path(args.protocol)
    out_dir = args.output if args.output is not None else protocol.resolve().parent / "qualification"
    evidence, written = asyncio.run(run_protocol(protocol, case_ids=args.case, out_dir=out_dir))
    assert written is not None
    print(f"evidence: {written[0]} and {written[1]}", file=sys.stderr)
    if args.json:
        sys.stdout.write(orjson.dumps(evidence.as_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z).decode())
        sys.stdout.write("\n")
    return EXIT_OK if evidence.passed else EXIT_BAD


def _progress(item: Item) -> None:
    print(f"  {item.id} {item.verdict}  {item.title}: {item.observed}", file=sys.stderr)
    for warning in item.warnings:
        print(f"  {item.id} warning: {warning}", file=sys.stderr)


def _baseline(args: argparse.Namespace) -> int:
    baseline = record_baseline(args.config, by=args.by, reason=args.reason)
    print(f"baseline recorded in {baseline_path(args.config)} and the journal's audit trail: config hash "
          f"{baseline['config_hash'][:16]}, software {baseline['software_version']} hash "
          f"{baseline['software_hash'][:16]}, approved by {baseline['approved_by']}")
    return EXIT_OK
