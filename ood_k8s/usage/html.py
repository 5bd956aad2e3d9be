"""``ood-k8s usage --html FILE``: a one-page report an instructor would rather look at than read.

One self-contained HTML file: no script, no font, no request to anything -- charts are inline SVG.
At the top the five numbers that matter (GPU-hours, sessions, people, idle time reclaimed, cost), then
GPU-hours over time (per day, or per week over a longer span), per person (largest first, with the
per-student budget drawn as a line), per session type, and the table the CLI prints.

Accessible: each chart is an ``img`` with a title and a description stating its largest values, each
bar has a ``<title>`` (its exact value) and a text label, and the table carries the same numbers for a
screen reader.  Colours: dark blue on white (contrast above 9:1), the budget line in dark red, and text
never in a colour alone.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

from ood_k8s.usage.entry import Entry
from ood_k8s.usage.report import Row

BAR, LINE, INK, MUTED = "#1f4e79", "#a4161a", "#111111", "#444444"
WIDTH = 720
DAY = 86400.0
MAX_PEOPLE = 40  # bars in the per-person chart; the rest are summed in one bar


def _fmt(value: float) -> str:
    return f"{value:,.1f}"


def buckets(entries: list[Entry], start: float, end: float) -> tuple[list[str], list[float]]:
    """GPU-hours per day (per week past 62 days) from ``start`` to ``end``, each session split across them."""
    size = DAY if end - start <= 62 * DAY else 7 * DAY
    first = start - start % DAY
    count = max(1, int((end - first + size - 1) // size))
    values = [0.0] * count
    for e in entries:
        if not e.gpus or e.end <= e.start:
            continue
        t = max(e.start, first)
        while t < e.end:
            i = min(count - 1, int((t - first) // size))
            edge = min(e.end, first + (i + 1) * size)
            values[i] += e.gpus * (edge - t) / 3600.0
            if edge <= t:
                break
            t = edge
    labels = [time.strftime("%b %d", time.gmtime(first + i * size)) for i in range(count)]
    return labels, values


def column_chart(ident: str, title: str, labels: list[str], values: list[float], unit: str) -> str:
    """Vertical bars over time."""
    height, top, bottom, left = 220, 20, 40, 48
    n = max(1, len(values))
    peak = max(values) if values and max(values) > 0 else 1.0
    step = (WIDTH - left - 8) / n
    bars = []
    for i, (label, v) in enumerate(zip(labels, values)):
        h = (height - top - bottom) * v / peak
        x = left + i * step
        bars.append(f'<rect x="{x + 1:.1f}" y="{height - bottom - h:.1f}" width="{max(1.0, step - 2):.1f}" '
                    f'height="{h:.1f}" fill="{BAR}"><title>{escape(label)}: {_fmt(v)} {unit}</title></rect>')
        if n <= 16 or i % max(1, n // 12) == 0:
            bars.append(f'<text x="{x + step / 2:.1f}" y="{height - bottom + 14}" font-size="10" fill="{MUTED}" '
                        f'text-anchor="middle">{escape(label)}</text>')
    best = max(range(len(values)), key=lambda i: values[i]) if values else 0
    desc = f"Highest: {labels[best]} with {_fmt(values[best])} {unit}." if values else "No data."
    axis = (f'<line x1="{left}" y1="{height - bottom}" x2="{WIDTH - 8}" y2="{height - bottom}" stroke="{INK}"/>'
            f'<text x="{left - 6}" y="{top + 4}" font-size="10" fill="{MUTED}" text-anchor="end">{_fmt(peak)}</text>'
            f'<text x="{left - 6}" y="{height - bottom}" font-size="10" fill="{MUTED}" text-anchor="end">0</text>')
    return _svg(ident, title, desc, height, axis + "".join(bars))


def bar_chart(ident: str, title: str, items: list[tuple[str, float]], unit: str, limit: float = 0.0) -> str:
    """Horizontal bars, largest first; ``limit`` (a budget) drawn as a labelled line."""
    row, left, right = 18, 150, 90
    height = 30 + row * max(1, len(items))
    peak = max([v for _, v in items] + [limit, 1e-9])
    scale = (WIDTH - left - right) / peak
    parts = []
    for i, (label, v) in enumerate(items):
        y = 10 + i * row
        parts.append(f'<text x="{left - 6}" y="{y + 12}" font-size="11" fill="{INK}" text-anchor="end">'
                     f'{escape(label[:22])}</text>'
                     f'<rect x="{left}" y="{y + 2}" width="{max(0.5, v * scale):.1f}" height="{row - 5}" '
                     f'fill="{BAR}"><title>{escape(label)}: {_fmt(v)} {unit}</title></rect>'
                     f'<text x="{left + v * scale + 4:.1f}" y="{y + 12}" font-size="11" fill="{INK}">{_fmt(v)}</text>')
    if limit > 0:
        x = left + limit * scale
        parts.append(f'<line x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{height - 16}" stroke="{LINE}" '
                     f'stroke-width="2" stroke-dasharray="5 3"/><text x="{x:.1f}" y="{height - 4}" font-size="11" '
                     f'fill="{LINE}" text-anchor="middle">budget {_fmt(limit)}</text>')
    desc = (f"{len(items)} bars. Largest: {items[0][0]} with {_fmt(items[0][1])} {unit}." if items else "No data.") \
        + (f" Budget per student: {_fmt(limit)} {unit}." if limit > 0 else "")
    return _svg(ident, title, desc, height, "".join(parts))


def _svg(ident: str, title: str, desc: str, height: int, body: str) -> str:
    return (f'<figure><svg role="img" aria-labelledby="{ident}-t {ident}-d" viewBox="0 0 {WIDTH} {height}" '
            f'width="100%" style="max-width:{WIDTH}px" xmlns="http://www.w3.org/2000/svg">'
            f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape(desc)}</desc>{body}</svg>'
            f'<figcaption>{escape(title)}</figcaption></figure>')


def per(entries: list[Entry], field: str) -> list[tuple[str, float]]:
    """GPU-hours per value of ``field``, largest first; past :data:`MAX_PEOPLE`, the rest in one bar."""
    sums: dict[str, float] = {}
    for e in entries:
        key = getattr(e, field) or "(none)"
        sums[key] = sums.get(key, 0.0) + e.gpu_hours
    items = sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(items) > MAX_PEOPLE:
        rest = items[MAX_PEOPLE - 1:]
        items = [*items[:MAX_PEOPLE - 1], (f"{len(rest)} others", sum(v for _, v in rest))]
    return items


_STYLE = (f"body{{font-family:system-ui,sans-serif;color:{INK};background:#fff;max-width:760px;margin:2em auto;"
          "padding:0 1em;line-height:1.4}h1{font-size:1.5em;margin-bottom:.2em}.sub{color:#444;margin-top:0}"
          ".tiles{display:flex;flex-wrap:wrap;gap:.8em;padding:0;list-style:none}.tiles li{border:1px solid #bbb;"
          "border-radius:6px;padding:.5em .9em;min-width:7em}.tiles b{display:block;font-size:1.4em}"
          "figure{margin:1.5em 0}figcaption{font-weight:600}table{border-collapse:collapse;width:100%;"
          "font-size:.9em}th,td{border-bottom:1px solid #ccc;padding:.25em .4em;text-align:right}"
          "th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}")


def page(entries: list[Entry], report_rows: list[Row], overall: Row, *, title: str, span: tuple[float, float],
         currency: str, limit: float = 0.0) -> str:
    """The whole report."""
    start, end = span
    labels, values = buckets(entries, start, end)
    people = {e.user for e in entries}
    dates = f"{time.strftime('%Y-%m-%d', time.gmtime(start))} to {time.strftime('%Y-%m-%d', time.gmtime(end))}"
    tiles = [("GPU-hours", _fmt(overall.gpu_hours)), ("sessions", f"{overall.sessions:,}"),
             ("people", f"{len(people):,}"), ("idle hours reclaimed", _fmt(overall.idle_hours)),
             (f"estimated cost ({currency})", f"{overall.cost:,.2f}")]
    return "".join([
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_STYLE}</style></head><body>',
        f'<h1>{escape(title)}</h1><p class="sub">{escape(dates)} (UTC); running sessions counted up to now.</p>',
        '<ul class="tiles">' + "".join(f"<li><b>{escape(v)}</b>{escape(k)}</li>" for k, v in tiles) + "</ul>",
        column_chart("time", "GPU-hours per " + ("day" if end - start <= 62 * DAY else "week"), labels, values,
                     "GPU-hours"),
        bar_chart("people", "GPU-hours per person", per(entries, "user"), "GPU-hours", limit),
        bar_chart("profiles", "GPU-hours per session type", per(entries, "profile"), "GPU-hours"),
        _table(report_rows, currency), "</body></html>\n"])


def _table(report_rows: list[Row], currency: str) -> str:
    head = ["Person", "Course", "Sessions", "GPU-hours", "CPU-hours", "Idle hours reclaimed", f"Cost ({currency})"]
    cells: list[list[Any]] = [[r.user or "-", r.course or "-", r.sessions, _fmt(r.gpu_hours), _fmt(r.cpu_hours),
                               _fmt(r.idle_hours), f"{r.cost:,.2f}"] for r in report_rows]
    return ("<table><caption>Usage per person and course</caption><thead><tr>"
            + "".join(f'<th scope="col">{escape(h)}</th>' for h in head) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in cells)
            + "</tbody></table>")
