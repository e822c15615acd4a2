"""Reports a reviewer signs, built from the journal alone: the per-lot evidence pack."""

from gateway.reports.lot import UnknownLot, build_lot_report, report_for_site
from gateway.reports.lot_html import render_lot_html, write_lot_report

__all__ = ["UnknownLot", "build_lot_report", "render_lot_html", "report_for_site", "write_lot_report"]
