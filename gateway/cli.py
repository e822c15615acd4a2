"""``cgt-gateway``: check a config, run, commission one device, verify, export, back up and restore the journal,
run a simulator (the journal's commands are in :mod:`gateway.cli_journal`).

Exit codes: 0 success; 1 the thing checked is bad (config errors, a broken journal, a device that did
not answer); 2 wrong usage. Problems go to stderr one readable line each; ``--json`` output goes to
stdout for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from gateway import __version__, cli_journal, journal, logs
from gateway.api import add_user, read_users, remove_user
from gateway.config import site_model
from gateway.display import RecordPrinter
from gateway.errors import ConfigError, GatewayError
from gateway.plugins import adapter_plugins, sim_mains, sink_plugins
from gateway.qualify import cli as qualify_cli
from gateway.qualify.baseline import enforce_validated
from gateway.reports import cli as reports_cli
from gateway.runtime import RunningGateway, check_site, loaded_site, read_once, run_gateway
from gateway.sinks.forwarder import CURSOR_PREFIX, cursor_name
from gateway.sinks.status import sink_backlogs

EXIT_OK, EXIT_BAD, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(args.log_format, args.log_level)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return EXIT_BAD
    except GatewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cgt-gateway",
        description="Instrument-integration gateway for cell and gene therapy manufacturing.",
        epilog="Run `cgt-gateway COMMAND --help` for a command's options.",
    )
    p.add_argument("--version", action="version", version=f"cgt-gateway {__version__}")
    p.add_argument("--log-format", choices=["console", "json"], default="console", help="log style on stderr")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func)
        return sp

    sp = command("check-config", _check_config, "check a site file and everything it refers to")
    sp.add_argument("file", type=Path, help="site file (YAML)")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = command("run", _run, "run the gateway: read every device, journal every record")
    _config_arg(sp)
    sp.add_argument("--for", dest="duration_s", type=float, metavar="SECONDS", help="stop after this long")
    sp.add_argument("--show", action="store_true", help="print each committed record on stdout")
    sp.add_argument("--json", action="store_true", help="with --show: one JSON record per line")
    sp.add_argument("--validated", action="store_true",
                    help="start only if the config and software hashes equal the approved baseline (audited)")

    sp = command("read-once", _read_once, "read one device once and print its normalised sample (not journalled)")
    _config_arg(sp)
    sp.add_argument("equipment_id", help="equipment id from the site file")
    sp.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="wait at most this long")
    sp.add_argument("--json", action="store_true", help="one JSON record per line")

    cli_journal.register(command)

    sp = command("sinks", _sinks, "show how far each sink has got: cursor, backlog, its age, dead letters")
    _config_arg(sp)
    sp.add_argument("--json", action="store_true", help="print the status as JSON")

    sp = command("dead-letters", _dead_letters, "list the records a sink's receiver refused for good")
    _config_arg(sp)
    sp.add_argument("--sink", metavar="NAME", help="only this sink")
    sp.add_argument("--json", action="store_true", help="one JSON object per line")

    sp = command("sim", _sim, "run a device simulator by hand and print its endpoint")
    sp.add_argument("kind", help="simulator kind, e.g. particle-counter (`cgt-gateway sim --list`)", nargs="?")
    sp.add_argument("--list", action="store_true", help="list the installed simulators")
    sp.add_argument("sim_args", nargs=argparse.REMAINDER, help="options for the simulator (try --help)")

    sp = command("user", _user, "manage the operator API's users: add (prints a new token once), list, remove")
    actions = sp.add_subparsers(dest="user_action", required=True, metavar="ACTION")
    ap = actions.add_parser("add", help="add a user with a new random token, printed once; only its hash is kept")
    _config_arg(ap)
    ap.add_argument("name", help="the person, as the audit trail will name them")
    ap.add_argument("--role", required=True, choices=["viewer", "operator", "qa", "admin"])
    ap = actions.add_parser("list", help="list the users and their roles")
    _config_arg(ap)
    ap.add_argument("--json", action="store_true", help="print the users as JSON")
    ap = actions.add_parser("remove", help="remove a user; their token stops working at once")
    _config_arg(ap)
    ap.add_argument("name")

    reports_cli.register(sub)
    qualify_cli.register(sub)

    sp = command("schema", _schema, "print the JSON schema of the site file")
    sp.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    return p


def _config_arg(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("-c", "--config", type=Path, required=True, help="site file (YAML)")


_existing_journal = cli_journal.existing_journal
_load_without_sims = cli_journal.load_without_sims


def _sinks(args: argparse.Namespace) -> int:
    site = _load_without_sims(args.config).site
    path = _existing_journal(site.journal.path)
    rows = sink_backlogs(path, [s.name for s in site.sinks])
    if args.json:
        print(json.dumps({"journal": str(path), "sinks": [r.as_dict() for r in rows]}, indent=2))
        return EXIT_OK
    if not rows:
        print(f"{args.config}: no sinks configured")
        return EXIT_OK
    print(f"{'sink':<20} {'cursor':>10} {'backlog':>10} {'oldest (s)':>11} {'dead letters':>13}")
    for r in rows:
        print(f"{r.name:<20} {r.cursor:>10} {r.backlog:>10} {r.backlog_age_s:>11.1f} {r.dead_letters:>13}")
    return EXIT_OK


def _dead_letters(args: argparse.Namespace) -> int:
    site = _load_without_sims(args.config).site
    path = _existing_journal(site.journal.path)
    with journal.JournalReader(path) as reader:
        letters = reader.dead_letters(None if args.sink is None else cursor_name(args.sink))
    for d in letters:
        sink = d.sink.removeprefix(CURSOR_PREFIX)
        if args.json:
            print(json.dumps({"sink": sink, "seq": d.seq, "reason": d.reason, "time": d.time}))
        else:
            print(f"{sink}  seq {d.seq}  {d.time}  {d.reason}")
    if not letters and not args.json:
        print("no dead letters")
    return EXIT_OK


def _check_config(args: argparse.Namespace) -> int:
    loaded = _load_without_sims(args.file)
    check_site(loaded)
    summary = {
        "ok": True,
        "file": str(args.file),
        "gateway_id": loaded.site.gateway.id,
        "equipment": [{"id": e.id, "kind": e.kind, "class": e.equipment_class} for e in loaded.equipment],
        "simulators": [s.name for s in loaded.site.simulators],
        "sinks": [{"name": s.name, "type": s.type, "enabled": s.enabled} for s in loaded.site.sinks],
        "journal": str(loaded.site.journal.path),
        "config_hash": loaded.config_hash,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        n, sinks = len(summary["equipment"]), len(summary["sinks"])
        print(
            f"ok: {args.file}: gateway {summary['gateway_id']}, {n} equipment, {sinks} sinks, "
            f"config hash {loaded.config_hash[:16]}"
        )
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    log = structlog.get_logger("gateway.cli")
    printer = RecordPrinter(as_json=args.json) if args.show else None
    if args.validated:  # before any simulator or device starts; a refusal raises, audited, with one line
        check = enforce_validated(args.config)
        log.info("validated start", config_hash=check.config_hash[:16], software_hash=check.software_hash[:16],
                 approved_by=(check.baseline or {}).get("approved_by"))

    async def go() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with loaded_site(args.config) as loaded:
            log.info(
                "gateway starting",
                gateway_id=loaded.site.gateway.id,
                equipment=len(loaded.equipment),
                journal=str(loaded.site.journal.path),
                config_hash=loaded.config_hash[:16],
            )
            reporters: list[asyncio.Task[None]] = []
            try:
                summary = await run_gateway(
                    loaded, duration_s=args.duration_s, stop=stop, on_records=printer,
                    on_started=lambda running: reporters.append(asyncio.create_task(_report_sinks(running))),
                )
            finally:
                for task in reporters:
                    task.cancel()
        log.info("gateway stopped", records=summary.records, last_seq=summary.last_seq,
                 journal=str(summary.journal_path))
        return EXIT_OK

    return asyncio.run(go())


async def _report_sinks(running: RunningGateway, every_s: float = 30.0) -> None:
    """One log line per sink now and then: how far it has got, so an outage's backlog is visible."""
    log = structlog.get_logger("gateway.sinks")
    while running.forwarders:
        await asyncio.sleep(every_s)
        for forwarder in running.forwarders:
            s = forwarder.snapshot()
            log.info("sink status", sink=s.name, state=s.state, delivered=s.delivered, backlog=s.backlog,
                     backlog_age_s=round(s.backlog_age_s, 1), rejected=s.rejected, last_error=s.last_error)


def _read_once(args: argparse.Namespace) -> int:
    async def go() -> int:
        async with loaded_site(args.config) as loaded:
            entries = await read_once(loaded, args.equipment_id, timeout_s=args.timeout)
        RecordPrinter(as_json=args.json)([draft for draft, _ in entries])
        return EXIT_OK

    return asyncio.run(go())


def _sim(args: argparse.Namespace) -> int:
    mains = sim_mains()
    if args.list or not args.kind:
        for name in sorted(mains):
            print(name)
        return EXIT_OK if args.list else EXIT_USAGE
    if args.kind not in mains:
        print(f"error: unknown simulator {args.kind!r} (installed: {', '.join(sorted(mains)) or 'none'})",
              file=sys.stderr)
        return EXIT_USAGE
    return int(mains[args.kind](list(args.sim_args)))


def _user(args: argparse.Namespace) -> int:
    site = _load_without_sims(args.config).site
    if site.api is None:
        raise GatewayError(f"{args.config}: no api: section, so no API users (add `api: {{}}` to serve the API)")
    path = site.api.users_file
    if args.user_action == "add":
        token = add_user(path, args.name, args.role)
        print(f"added {args.name} ({args.role}) to {path}", file=sys.stderr)
        print("their token, shown this once (give it to them; it cannot be recovered):", file=sys.stderr)
        print(token)
    elif args.user_action == "remove":
        remove_user(path, args.name)
        print(f"removed {args.name} from {path}")
    else:
        users = [{"name": u.name, "role": u.role} for u in read_users(path).users]
        if args.json:
            print(json.dumps(users, indent=2))
        elif not users:
            print(f"{path}: no users (add one with `cgt-gateway user add`)")
        for u in users if not args.json else []:
            print(f"{u['name']:<24} {u['role']}")
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    schema = site_model(adapter_plugins(), sink_plugins()).model_json_schema(by_alias=True)
    text = json.dumps(schema, indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
