"""The lot report as one self-contained, printable HTML page (the JSON is the report dict itself)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.qualify.evidence import REPORT_CSS, html_escape, kv_table, svg_line_plot
from gateway.reports.lot import X_LABEL
from gateway.reports.lot_scan import PARTICLE_PREFIX, parse_time


def write_lot_report(report: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``lot-<LOT>-<UTC time>.json`` and ``.html`` into ``out_dir`` (created); return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = parse_time(report["generated"]).strftime("%Y%m%dT%H%M%SZ")
    stem = f"lot-{re.sub(r'[^A-Za-z0-9._-]', '_', report['lot_id'])}-{stamp}"
    base, n = stem, 1
    while (out_dir / f"{stem}.json").exists() or (out_dir / f"{stem}.html").exists():
        n += 1
        stem = f"{base}-{n}"
    json_path, html_path = out_dir / f"{stem}.json", out_dir / f"{stem}.html"
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    html_path.write_text(render_lot_html(report), encoding="utf-8")
    return json_path, html_path


_EXTRA_CSS = ".problem{color:#b00020;font-weight:bold}.ok{color:#0a6b1f}td.num{text-align:right}"


def render_lot_html(report: Mapping[str, Any]) -> str:
    """The evidence pack as one self-contained, printable HTML page (inline CSS and SVG, nothing fetched)."""
    e = html_escape
    cert = report["certificate"]
    sw, cfg = report["software"], report.get("config") or {}
    verdict = "PASS" if cert["ok"] else "FAIL"
    origin = _origin(report)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Lot {e(report['lot_id'])}: evidence pack</title>",
        f"<style>{REPORT_CSS}{_EXTRA_CSS}</style></head><body>",
        f"<h1>Lot {e(report['lot_id'])}: evidence pack</h1>",
        f"<p>Everything journal <code>{e(report['journal'])}</code> of gateway <b>{e(report['gateway_id'])}</b> "
        f"holds about this lot, generated {e(report['generated'])} (UTC).</p>",
        kv_table([
            ("Site configuration", f"<code>{e(cfg.get('path', 'not given'))}</code>"),
            ("Configuration hash (sha256)", f"<code>{e(cfg.get('hash', '—'))}</code>"),
            ("Software", f"{e(sw['name'])} {e(sw['version'])}, manifest <code>{e(sw['manifest_hash'])}</code>"),
            ("Journal seqs held", f"{report['journal_seq_range']['first']} to {report['journal_seq_range']['last']}"),
        ]),
        "<h2>Data-completeness certificate</h2>",
        f'<div class="verdict {verdict}" id="verdict">{e(cert["verdict"])}</div>',
    ]
    if cert["problems"]:
        out.append('<ul id="problems">' + "".join(f'<li class="problem">{e(p)}</li>' for p in cert["problems"])
                   + "</ul>")
    seq = cert["seq_range"]
    chain = cert["chain"]
    out.append(kv_table([
        ("Seq range of the lot's records", f"{e(seq['first'])} to {e(seq['last'])} ({cert['records']} records "
                                          "carry the lot)"),
        ("Journal gap-free over it", "yes" if cert["gap_free"] else '<span class="problem">NO</span>: ' + e("; ".join(
            f"seqs {m['from']}–{m['to']} ({m['cause']})" for m in cert["missing"]))),
        ("Hash chain", f'<span class="{"ok" if chain["ok"] else "problem"}">{e(chain["summary"])}</span>'),
    ]))
    out += ["<h3>Delivery per sink</h3>",
            '<table id="delivery"><tr><th>Sink</th><th>Cursor</th><th>Lot\'s last seq</th><th>Delivered</th>'
            "<th>Dead letters of the lot</th></tr>"]
    for d in cert["delivery"]:
        state = d.get("note") or ("yes" if d["delivered"] else "NO")
        cls = "" if d.get("note") else ("PASS" if d["delivered"] else "FAIL")
        letters = "; ".join(f"seq {x['seq']}: {x['reason']}" for x in d["dead_letters"]) or "none"
        out.append(f"<tr><td>{e(d['sink'])}</td><td class=\"num\">{d['cursor']}</td><td class=\"num\">"
                   f"{e(d['lot_last_seq'])}</td><td class=\"{cls}\">{e(state)}</td><td>{e(letters)}</td></tr>")
    out.append("</table>")
    out += ["<h3>Communication gaps while the lot was there</h3>",
            "<p>Recorded as data (a <code>communication</code> event and bad-quality records for every parameter): "
            "they do not fail the certificate, but say which readings the devices could not give.</p>"]
    out.append(_table(["Equipment", "Lost", "Restored", "Duration", "Cause"], [
        [g["equipment_id"], f"{g['lost']} (seq {g['lost_seq']}, {g['how']})",
         g["restored"] or "not restored", "open" if g["duration_s"] is None else f"{g['duration_s']:.1f} s",
         g["cause"] or ""] for g in cert["communication_gaps"]], "none", "gaps"))
    for note in cert["notes"]:
        out.append(f'<p class="note">{e(note)}</p>')

    out += ["<h2>Bindings</h2>", _table(
        ["Equipment", "Room", "From", "To", "Bound by / verified by", "Reason", "Ended by / verified by", "COI",
         "DINs", "Step"],
        [[b["equipment_id"], b["area"] or "", b["valid_from"], b["valid_to"] or "still bound",
          f"{b['performed_by']} / {b['verified_by']}", b["reason"],
          f"{b['ended_by']} / {b['end_verified_by']}: {b['end_reason']}" if b["ended_by"] else "",
          b["coi_id"] or "", ", ".join(b["dins"]), b["process_step"] or ""] for b in report["bindings"]],
        "no binding: the lot is known only from what a device reported", "bindings")]

    out.append("<h2>Equipment</h2>")
    for eq in report["equipment"]:
        out.append(_equipment_html(eq, origin))

    out.append("<h2>Particle exposure of the rooms the lot passed through</h2>")
    if not report["particle_exposure"]:
        out.append("<p>No particle counter stands in a room the lot was bound in.</p>")
    for p in report["particle_exposure"]:
        out.append(_exposure_html(p, origin))

    out += ["<h2>Alarms and acknowledgements</h2>", _table(
        ["Seq", "Time", "Equipment", "Alarm", "Value", "Detail", "Acknowledged"],
        [[a["seq"], a["time"], a["equipment_id"], a["parameter"], a["value"], a["detail"] or "",
          _closed(a)] for a in report["alarms"]], "no alarms", "alarms")]
    out += ["<h2>Identity exceptions</h2>", _table(
        ["Seq", "Time", "Equipment", "Exception", "Detail", "Resolved"],
        [[x["seq"], x["time"], x["equipment_id"], x["value"], x["detail"] or "", _closed(x)]
         for x in report["exceptions"]], "no identity exceptions", "exceptions")]
    out += ["<h2>Signatures</h2>",
            "<p>By signing, the signer confirms the meaning stated: prepared (generated and checked against the "
            "batch record), reviewed (evidence checked), approved (accepted for the lot's disposition).</p>",
            '<table class="sig"><tr><th style="width:18%">Role</th><th>Name</th><th>Signature</th>'
            '<th style="width:22%">Date (UTC)</th></tr>']
    for role in ("Prepared by", "Reviewed by", "Approved by"):
        out.append(f"<tr><td>{role}</td><td></td><td></td><td></td></tr>")
    out += ["</table>",
            f"<p class=\"mono\">Lot {e(report['lot_id'])} · journal head seq {e(chain['last_seq'])} hash "
            f"{e(chain['head_hash'])} · software {e(sw['manifest_hash'])}</p>",
            "</body></html>", ""]
    return "\n".join(out)


def _origin(report: Mapping[str, Any]) -> datetime:
    """Plots count minutes from the lot's first binding (or its first record)."""
    starts = [w["from"] for w in report["windows"]]
    return parse_time(min(starts)) if starts else parse_time(report["generated"])


def _minutes(points: Iterable[tuple[str, float | None]], origin: datetime) -> list[tuple[float, float]]:
    return [((parse_time(t) - origin).total_seconds() / 60, float(v)) for t, v in points if v is not None]


def _equipment_html(eq: Mapping[str, Any], origin: datetime) -> str:
    e = html_escape
    where = eq.get("isa95") or {}
    place = "/".join(str(where.get(k, "")) for k in ("site", "area", "unit")) if where else "no ISA-95 path"
    parts = [f'<div class="item" id="eq-{e(eq["equipment_id"])}">',
             f"<h3>{e(eq['equipment_id'])} ({e(eq['equipment_class'] or '?')}, {e(place)})</h3>",
             f"<p>{eq['records']} records carry the lot"
             + ("" if eq["bindings"] else " (no binding of this equipment: its records name the lot themselves)")
             + ".</p>",
             _table(["Parameter", "Records"], [[k, v] for k, v in eq["by_parameter"].items()], "none")]
    steps = eq["process_steps"]
    if steps:
        parts += ["<b>Process steps</b>", _table(["From", "Step", "Seq"],
                                                 [[s["time"], s["process_step"], s["seq"]] for s in steps], "")]
    if eq["device_events"]:
        parts += ["<b>Runs and device events</b>", _table(
            ["Seq", "Time", "Event", "Detail"],
            [[r["seq"], r["time"], r["value"], r["detail"] or ""] for r in eq["device_events"]], "")]
    if eq["freezer"]:
        parts += ["<b>Freezing run and profile conformance</b>", _table(
            ["Seq", "Time", "What", "Value", "Detail"],
            [[r["seq"], r["time"], r["parameter"], _value(r), r["detail"] or ""] for r in eq["freezer"]], "")]
    curve = {name: _minutes(points, origin) for name, points in eq["freezer_curve"].items()}
    if any(curve.values()):
        parts.append('<div class="plot">' + svg_line_plot(
            {name.replace("_", " "): pts for name, pts in curve.items() if pts},
            title=f"{eq['equipment_id']}: freezing curve", x_label=X_LABEL,
            y_label="temperature (Cel)") + "</div>")
    if eq["excursions"]:
        rows = []
        for x in eq["excursions"]:
            figures = ", ".join(f"{k} {x[k]['value']} {x[k]['unit'] or ''}".strip()
                                for k in ("duration", "min", "max") if k in x)
            rows.append([x["parameter"], f"{x['raised']['time']} ({x['raised']['value']})",
                         x["ended"]["time"] if x["ended"] else "not ended", figures, x["raised"]["detail"] or ""])
        parts += ["<b>Cold-chain excursions</b>", _table(["Limit", "Raised", "Ended", "Figures", "Detail"], rows, "")]
    if eq["cultures"]:
        parts += ["<b>Culture results</b>", _table(
            ["Time", "Specimen", "Bottle", "Type", "Status", "Time to detection", "Positive alarm"],
            [[c["time"], c.get("specimen_id", ""), c.get("bottle_id", ""), c.get("bottle_type", ""),
              c.get("culture_status", ""),
              _ttd(c),
              c.get("culture_positive", "")] for c in eq["cultures"]], "")]
    parts.append("</div>")
    return "\n".join(parts)


def _exposure_html(p: Mapping[str, Any], origin: datetime) -> str:
    e = html_escape
    windows = "; ".join(f"{w['equipment_id']} {w['from']} – {w['to'] or 'still bound'}" for w in p["windows"])
    parts = [f'<div class="item exposure" id="room-{e(p["room"])}-{e(p["counter"])}">',
             f"<h3>Room {e(p['room'])}: counter {e(p['counter'])}</h3>",
             f"<p>While the lot was there ({e(p['windows_basis'])}): {e(windows)}. "
             f"Limits: {e(p['limits_basis'] or 'none configured')}. "
             f"{p['alarms_raised']} limit alarms raised.</p>",
             _table(["Size", "Samples", "Bad", "Max /m3", "Mean /m3", "Alert", "Action", "> alert", "> action"],
                    [[_size(k), s["samples"], s["bad"], _num(s["max"]), _num(s["mean"]),
                      _num(s["alert_limit"]), _num(s["action_limit"]), s["above_alert"], s["above_action"]]
                     for k, s in p["sizes"].items()], "")]
    for parameter, s in p["sizes"].items():
        pts = _minutes(s["points"], origin)
        if not pts:
            continue
        hlines = {f"{label} {_num(s[key])}": s[key] for label, key in (("alert", "alert_limit"),
                                                                      ("action", "action_limit"))
                  if s[key] is not None}
        parts.append('<div class="plot">' + svg_line_plot(
            {p["counter"]: pts}, title=f"{p['room']}: {p['counter']} {_size(parameter)}",
            x_label=X_LABEL, y_label="particles /m3", hlines=hlines) + "</div>")
    parts.append("</div>")
    return "\n".join(parts)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], empty: str, table_id: str | None = None) -> str:
    e = html_escape
    if not rows:
        return f"<p>{e(empty)}</p>" if empty else ""
    ident = f' id="{table_id}"' if table_id else ""
    body = "".join("<tr>" + "".join(f"<td>{e('' if v is None else v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table{ident}><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + f"</tr>{body}</table>"


def _closed(row: Mapping[str, Any]) -> str:
    res = row["resolution"]
    if res is not None:
        return f"{res['by']} at {res['time']}: {res['reason']}"
    return "OPEN" if row["needs_action"] else "—"


def _size(parameter: str) -> str:
    """``particle_concentration_0_5um`` as ``≥0.5 µm``."""
    size = parameter.removeprefix(PARTICLE_PREFIX).removesuffix("um").replace("_", ".")
    return f"≥{size} µm"


def _ttd(result: Mapping[str, Any]) -> str:
    if result.get("time_to_detection") is None:
        return ""
    return f"{result['time_to_detection']} {result.get('time_to_detection_unit') or ''}".strip()


def _value(row: Mapping[str, Any]) -> str:
    return f"{row['value']} {row['unit']}" if row.get("unit") else str(row["value"])


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f}".replace(",", " ").removesuffix(".0")


