"""Criteria judged on files the case left in its folder: their count, a journal restored from its backup,
an export traced line by line to the journal, a value in a JSON report."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import orjson

from gateway.journal import JournalReader
from gateway.qualify.oq.acceptance import Criterion
from gateway.qualify.oq.steps import Rig
from gateway.qualify.oq.verdict import Verdict, ranges


def files(criterion: Criterion, folder: Path) -> Verdict:
    want = criterion.files
    assert want is not None
    found = sorted(p.name for p in folder.glob(want.glob))
    shown = f"{len(found)}" + (f": {', '.join(found[:4])}" if found else "")
    if want.count is not None:
        return Verdict(len(found) == want.count, f"exactly {want.count} file(s) {want.glob}", shown)
    return Verdict(len(found) >= (want.min_count or 0), f"at least {want.min_count} file(s) {want.glob}", shown)


def _journal_contents(path: Path) -> tuple[list[tuple[int, str]], list[dict[str, Any]]]:
    with JournalReader(path) as reader:
        return [(seq, hash_) for seq, _, _, hash_ in reader.rows(raw=False)], list(reader.audit())  # type: ignore[arg-type]


def restored_from(criterion: Criterion, rig: Rig) -> Verdict:
    """The journal against its backup, and the journal the restore set aside (what the backup did not hold)."""
    want = criterion.restored_from
    assert want is not None
    expected = (f"the journal equals the backup {want.file}: same records to the same head hash, the backup's audit"
                f" trail first (same hashes), then only {', '.join(want.then)}")
    backup = rig.work_dir / want.file
    if not backup.is_file():
        return Verdict(False, expected, f"no backup file {want.file} in the case folder")
    b_rows, b_audit = _journal_contents(backup)
    j_rows, j_audit = _journal_contents(rig.journal_path)
    b_head = b_rows[-1] if b_rows else (0, "")
    j_head = j_rows[-1] if j_rows else (0, "")
    same_records = j_rows == b_rows
    b_audit_ids = [(e.get("id"), e.get("hash")) for e in b_audit]
    prefix = [(e.get("id"), e.get("hash")) for e in j_audit[:len(b_audit)]] == b_audit_ids
    after = [str(e.get("action")) for e in j_audit[len(b_audit):]]
    ok = same_records and prefix and bool(after) and all(a in want.then for a in after)
    replaced = sorted(rig.journal_path.parent.glob(rig.journal_path.name + ".replaced-*"))
    kept = ""
    for path in replaced[:1]:
        r_rows, _ = _journal_contents(path)
        later = sum(1 for seq, _ in r_rows if seq > b_head[0])
        kept = f"; the journal set aside ({path.name}) holds {len(r_rows)} records, {later} after the backup's head"
    observed = (f"backup head seq {b_head[0]} {b_head[1][:16]}, journal head seq {j_head[0]} {j_head[1][:16]}"
                f" ({'same' if same_records else 'DIFFERENT'} records); backup audit entries {len(b_audit)}"
                f" {'identical' if prefix else 'NOT identical'} in the journal, then {after or 'nothing'}{kept}")
    return Verdict(ok, expected, observed)


def export_traceable(criterion: Criterion, folder: Path, records: list[dict[str, Any]]) -> Verdict:
    want = criterion.export_traceable
    assert want is not None
    expected = (f"every record of the export {want.file} with the journal's hash; every raw copy hashing to its"
                f" record's raw_sha256; at least {want.min_raw} raw copies{f' of lot {want.lot}' if want.lot else ''}")
    path = folder / want.file
    if not path.is_file():
        return Verdict(False, expected, f"no export file {want.file} in the case folder")
    journal = {r["seq"]: r["hash"] for r in records}
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    wrong_hash = [x["seq"] for x in lines if journal.get(x["seq"]) != x.get("hash")]
    missing = sorted(set(journal) - {x["seq"] for x in lines})
    raw_ok, raw_bad, no_digest = 0, [], []
    for x in lines:
        if x.get("raw_b64") is None:
            if x.get("raw_sha256") is not None:
                no_digest.append(x["seq"])
            continue
        if hashlib.sha256(base64.b64decode(x["raw_b64"])).hexdigest() != x.get("raw_sha256"):
            raw_bad.append(x["seq"])
        elif want.lot is None or x.get("lot_id") == want.lot:
            raw_ok += 1
    ok = not wrong_hash and not missing and not raw_bad and not no_digest and raw_ok >= want.min_raw
    observed = (f"{len(lines)} exported of {len(journal)} committed (not exported {ranges(missing)}), hash"
                f" differences {ranges(wrong_hash)}; {raw_ok} raw copies tracing to their records"
                f"{f' of lot {want.lot}' if want.lot else ''}, raw_sha256 mismatches {ranges(raw_bad)},"
                f" raw missing where a digest is recorded {ranges(no_digest)}")
    return Verdict(ok, expected, observed)


def json_value(criterion: Criterion, folder: Path) -> Verdict:
    want = criterion.json_value
    assert want is not None
    expected = f"{want.path} = {want.equals!r} in {want.glob}"
    found = sorted(folder.glob(want.glob), key=lambda p: p.stat().st_mtime)
    if not found:
        return Verdict(False, expected, f"no file {want.glob} in the case folder")
    node: Any = orjson.loads(found[-1].read_bytes())
    for part in want.path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return Verdict(False, expected, f"{found[-1].name} has no {want.path}")
    return Verdict(node == want.equals, expected, f"{found[-1].name}: {want.path} = {node!r}")
