"""The journal's commands: verify, export, backup and restore.

Each names its journal with ``-c SITE`` (the site's journal) or ``--journal PATH``. verify, export and
backup only read, so they run beside a running gateway; restore takes the journal's writer lock and so
refuses while the gateway runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import orjson

from gateway import journal
from gateway.config import LoadedSite, load_site
from gateway.errors import GatewayError
from gateway.plugins import adapter_plugins

EXIT_OK, EXIT_BAD, EXIT_USAGE = 0, 1, 2

Command = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def register(command: Command) -> None:
    """Add the journal's commands through the main parser's ``command(name, func, help)``."""
    sp = command("verify", _verify, "check the journal's sequence and hash chain")
    journal_args(sp)
    sp.add_argument("--json", action="store_true", help="print the report as JSON")

    sp = command("export", _export, "write journalled records as JSON lines or CSV")
    journal_args(sp)
    sp.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    sp.add_argument("--since", type=int, default=0, metavar="SEQ", help="only records after this seq")
    sp.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    sp.add_argument("--raw", action="store_true", help="jsonl only: add the raw wire bytes as base64")

    sp = command("backup", _backup,
                 "copy the journal to a new file while the gateway runs, then verify the copy against the source")
    journal_args(sp)
    sp.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="the new backup file")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = command("restore", _restore,
                 "put a verified backup in place of the journal (gateway stopped; the current journal is kept)")
    journal_args(sp)
    sp.add_argument("backup", type=Path, help="the backup file to restore")
    sp.add_argument("--by", default=None, metavar="NAME", help="who restores (audit trail; default: the OS user)")
    sp.add_argument("--reason", default=None, metavar="TEXT", help="why, e.g. the incident or change record")
    sp.add_argument("--force", action="store_true",
                    help="restore even though the current journal verifies and goes beyond the backup")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")


def journal_args(sp: argparse.ArgumentParser) -> None:
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("-c", "--config", type=Path, help="site file naming the journal")
    src.add_argument("--journal", type=Path, help="journal file (SQLite)")


def journal_path(args: argparse.Namespace) -> Path:
    if args.journal is not None:
        return existing_journal(Path(args.journal))
    return existing_journal(load_without_sims(args.config).site.journal.path)


def existing_journal(path: Path) -> Path:
    if not path.exists():
        raise GatewayError(f"no journal at {path} (run the gateway first, or check the path)")
    return path


def load_without_sims(path: Path) -> LoadedSite:
    """The site as check-config sees it: simulator placeholders get stand-ins, nothing is started."""
    return load_site(path, adapter_plugins())


def _verify(args: argparse.Namespace) -> int:
    report = journal.verify(journal_path(args))
    if args.json:
        print(orjson.dumps(dataclasses.asdict(report), option=orjson.OPT_INDENT_2).decode())
    elif report.ok:
        print(report.summary())
        for note in report.notes:
            print(f"note: {note}")
    else:
        print(report.summary(), file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_BAD


def _export(args: argparse.Namespace) -> int:
    path = journal_path(args)
    if args.raw and args.format != "jsonl":
        print("error: --raw goes with --format jsonl", file=sys.stderr)
        return EXIT_USAGE

    def write(out: TextIO) -> int:
        if args.format == "jsonl":
            return journal.export_jsonl(path, out, since_seq=args.since, include_raw=args.raw)
        return journal.export_csv(path, out, since_seq=args.since)

    if args.output is None:
        written = write(sys.stdout)
    else:
        with args.output.open("w", encoding="utf-8", newline="") as out:
            written = write(out)
        print(f"wrote {written} records to {args.output}", file=sys.stderr)
    return EXIT_OK


def _backup(args: argparse.Namespace) -> int:
    report = journal.backup(journal_path(args), args.output)
    if args.json:
        print(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(report.summary(), file=sys.stdout if report.ok else sys.stderr)
    return EXIT_OK if report.ok else EXIT_BAD


def _restore(args: argparse.Namespace) -> int:
    if args.journal is not None:
        path, gateway_id = Path(args.journal), None
    else:
        site = load_without_sims(args.config).site
        path, gateway_id = site.journal.path, site.gateway.id
    if not args.backup.is_file():
        raise GatewayError(f"no backup at {args.backup}")
    report = journal.restore(
        path, args.backup, gateway_id=gateway_id, actor=args.by or getpass.getuser(),
        reason=args.reason or f"restored from the backup {args.backup.name}", force=args.force,
    )
    if args.json:
        print(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(report.summary())
    return EXIT_OK
