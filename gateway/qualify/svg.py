"""Small line plots as inline SVG, with no plotting library: curves, tolerance bands and limit lines.

For evidence a reviewer prints and signs: the page must carry its plots itself, not fetch them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

_COLOURS = ("#1f5fbf", "#c0392b", "#27864a", "#8e44ad", "#d35400", "#16a085", "#7f8c8d")


def _esc(value: object) -> str:
    return escape(str(value), quote=True)


def svg_line_plot(
    series: dict[str, list[tuple[float, float]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    bands: Sequence[tuple[float, float, float, float]] = (),
    hlines: Mapping[str, float] | None = None,
) -> str:
    """A small dependency-free SVG line plot: curves against tolerance bands and limit lines.

    ``bands`` are rectangles ``(x0, x1, y_low, y_high)`` (a tolerance band over a time span); ``hlines``
    are named horizontal limits (``{"Grade A alert": 3520}``).
    """
    hlines = dict(hlines or {})
    width, height, left, right, top, bottom = 640, 320, 64, 150, 30, 46
    pw, ph = width - left - right, height - top - bottom
    xs = [x for pts in series.values() for x, _ in pts] + [v for b in bands for v in b[:2]]
    ys = [y for pts in series.values() for _, y in pts] + [v for b in bands for v in b[2:]] + list(hlines.values())
    xs = [x for x in xs if _finite(x)] or [0.0, 1.0]
    ys = [y for y in ys if _finite(y)] or [0.0, 1.0]
    x0, x1 = _span(min(xs), max(xs))
    y0, y1 = _span(min(ys), max(ys), pad=0.05)

    def sx(x: float) -> float:
        return left + (min(max(x, x0), x1) - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + ph - (min(max(y, y0), y1) - y0) / (y1 - y0) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="Helvetica,Arial,sans-serif" font-size="11">',
        f"<title>{_esc(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{left + pw / 2:.1f}" y="18" text-anchor="middle" font-size="13" font-weight="bold">'
        f"{_esc(title)}</text>",
    ]
    for bx0, bx1, by0, by1 in bands:
        if not all(_finite(v) for v in (bx0, bx1, by0, by1)):
            continue
        out.append(f'<rect class="band" x="{sx(min(bx0, bx1)):.1f}" y="{sy(max(by0, by1)):.1f}" '
                   f'width="{abs(sx(bx1) - sx(bx0)):.1f}" height="{abs(sy(by0) - sy(by1)):.1f}" '
                   'fill="#2ecc71" fill-opacity="0.15" stroke="#27864a" stroke-opacity="0.4"/>')
    for tick in _ticks(y0, y1):
        y = sy(tick)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>')
    for tick in _ticks(x0, x1):
        x = sx(tick)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#333"/>'
                   f'<text x="{x:.1f}" y="{top + ph + 16}" text-anchor="middle">{_fmt(tick)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    for name, value in hlines.items():
        if not _finite(value):
            continue
        y = sy(value)
        out.append(f'<line class="limit" x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#b00020" '
                   f'stroke-dasharray="6 4"/><text x="{left + pw + 4}" y="{y + 4:.1f}" '
                   f'fill="#b00020">{_esc(name)}</text>')
    for i, (name, points) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        pts = [(x, y) for x, y in points if _finite(x) and _finite(y)]
        if len(pts) == 1:
            out.append(f'<circle cx="{sx(pts[0][0]):.1f}" cy="{sy(pts[0][1]):.1f}" r="3" fill="{colour}"/>')
        elif pts:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            out.append(f'<polyline class="series" points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        ly = top + 14 * (i + len(hlines)) + 8
        out.append(f'<line x1="{left + pw + 4}" x2="{left + pw + 20}" y1="{ly}" y2="{ly}" stroke="{colour}" '
                   f'stroke-width="2"/><text x="{left + pw + 24}" y="{ly + 4}">{_esc(name)}</text>')
    out += [
        f'<text x="{left + pw / 2:.1f}" y="{height - 8}" text-anchor="middle">{_esc(x_label)}</text>',
        f'<text transform="translate(14 {top + ph / 2:.1f}) rotate(-90)" text-anchor="middle">{_esc(y_label)}</text>',
        "</svg>",
    ]
    return "".join(out)


def _finite(v: float) -> bool:
    try:
        return v == v and abs(v) != float("inf")
    except TypeError:
        return False


def _span(lo: float, hi: float, pad: float = 0.0) -> tuple[float, float]:
    if hi <= lo:
        delta = abs(lo) * 0.1 or 1.0
        return lo - delta, hi + delta
    extra = (hi - lo) * pad
    return lo - extra, hi + extra


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    raw = (hi - lo) / n
    magnitude = 10 ** int(f"{raw:e}".split("e")[1])
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = -(-lo // step) * step
    ticks, t = [], first
    while t <= hi + step * 1e-9 and len(ticks) < 20:
        ticks.append(t)
        t += step
    return ticks


def _fmt(v: float) -> str:
    if v == int(v) and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.3g}"


