"""What a journal row costs SQLite, by index layout: the raw insert loop on the journal's own table.

    python bench/journal_rows.py               # 17 and 100 parameters, about 40 s
    python bench/journal_rows.py --json

Journal version 3 indexed every record by parameter; version 4 indexes only events and alarms (a
partial index). On a journal that has grown, each transaction of an index over every reading touches
one index page per parameter it holds, so that index costs more the more parameters a read carries.
Both layouts are measured here side by side, after the same warm-up fill, with rows of the size the
gateway writes (WAL, synchronous=FULL, one transaction per device read).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from gateway.journal._schema import EVENTS_CONDITION, INSERT_RECORD, connect_writer  # noqa: E402

#: The size of a Modbus reading's stored payload (bench/peer.py's register map): about 690 bytes.
PAYLOAD = b"x" * 690
LAYOUTS = {
    "v3: every record by parameter": "CREATE INDEX records_parameter ON records (parameter, seq)",
    f"v4: only {EVENTS_CONDITION}": None,
}


def measure(path: Path, index: str | None, parameters: int, warmup_rows: int, seconds: float) -> dict[str, float]:
    conn = connect_writer(path, "gw-bench", "full")
    if index:
        conn.execute(index)
    seq = 0

    def transaction() -> None:
        nonlocal seq
        rows = [(seq + i + 1, "2026-11-22T12:00:00.000000Z", "DAQ-1", f"channel_{(seq + i) % parameters:03d}",
                 PAYLOAD, b"\x00\x01", "ab" * 32, "measurement") for i in range(parameters)]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT_RECORD, rows)
        conn.execute("COMMIT")
        seq += parameters

    while seq < warmup_rows:
        transaction()
    cpu0, t0 = time.process_time(), time.monotonic()
    start = seq
    while time.monotonic() - t0 < seconds:
        transaction()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    conn.close()
    rows = seq - start
    return {"rows_per_s": rows / wall, "cpu_us_per_row": cpu / rows * 1e6}


def main(argv: Sequence[str] | None = None) -> int:
    head, rest = __doc__.split("\n\n", 1)
    p = argparse.ArgumentParser(description=head, epilog=rest, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parameters", type=int, nargs="+", default=[17, 100], help="readings per read (transaction)")
    p.add_argument("--warmup-rows", type=int, default=200_000, help="rows written before measuring (a grown journal)")
    p.add_argument("--seconds", type=float, default=4.0, help="length of each measurement")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="cgt-bench-rows-", dir=REPO) as work:
        for n in args.parameters:
            for i, (name, index) in enumerate(LAYOUTS.items()):
                path = Path(work) / f"rows-{n}-{i}.sqlite"
                print(f"{n} parameters, {name} ...", file=sys.stderr, flush=True)
                results.append({"parameters": n, "layout": name,
                                **measure(path, index, n, args.warmup_rows, args.seconds)})
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "results": results}, indent=2))
        return 0
    print(f"\n{'parameters':>10}  {'layout':<38} {'rows/s':>9} {'CPU µs/row':>11}")
    for r in results:
        print(f"{r['parameters']:>10}  {r['layout']:<38} {r['rows_per_s']:>9,.0f} {r['cpu_us_per_row']:>11.1f}")
    for n in args.parameters:
        old, new = (r["cpu_us_per_row"] for r in results if r["parameters"] == n)
        print(f"{n} parameters a read: v4 / v3 CPU per row {new / old:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
