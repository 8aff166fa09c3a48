"""The site's drawings of the experiment history: network diagrams and the timeline strip.

:func:`diagram_svg` draws a parsed network (the port's layer dicts) as an inline SVG, one column
per GPU and one row per depth (:func:`layout`); :func:`timeline_svg` draws the experiments' start
dates as a strip. Both use ``currentColor`` only, so they follow the page's light or dark text,
and escape every name. The data they draw comes from :mod:`archive.experiment_history`.
"""
from __future__ import annotations

from datetime import date

from archive import experiment_history as eh
from archive.sphinxext.markup import HTML, html, join


def layout(layers: dict) -> tuple[dict[str, tuple[int, int]], list, list[str]]:
    """Grid positions of a layer DAG: name → (depth, gpu lane), the edges and the lane keys.

    Depth is the longest path from a layer without inputs; lanes are the layers' ``gpu`` values
    (data layers and layers without a GPU go to a lane of their own, "host"). Neuron layers
    spawned by ``neuron=`` keys are folded into their source layer."""
    names = list(layers)
    fold = eh.folded_neurons(layers)
    nodes = [n for n in names if n not in fold]
    ins_of = {n: sorted({fold.get(i, i) for i in eh.layer_inputs(layers[n], names)} - {n}, key=names.index)
              for n in nodes}
    depth: dict[str, int] = {}
    for start in nodes:              # iterative longest-path depth (the dict need not be sorted)
        stack = [start]
        while stack:
            n = stack[-1]
            if n in depth:
                stack.pop()
                continue
            todo = [i for i in ins_of[n] if i not in depth]
            if todo:
                if any(t in stack for t in todo):
                    raise ValueError(f"layer {n!r}: its inputs form a cycle")
                stack.extend(todo)
                continue
            depth[n] = 1 + max((depth[i] for i in ins_of[n]), default=-1)
            stack.pop()
    edges = [(i, n) for n in nodes for i in ins_of[n]]

    def lane(name):
        g = layers[name].get("gpu")
        if isinstance(g, (list, tuple)):
            g = g[0] if g else None
        if layers[name].get("type") == "data" or g is None or (isinstance(g, int) and g < 0):
            return "host"
        return f"GPU {g}"

    lanes = sorted({lane(n) for n in nodes}, key=lambda s: (s != "host", s))
    return {n: (depth[n], lanes.index(lane(n))) for n in nodes}, edges, lanes


def diagram_svg(layers: dict, title: str = "") -> str:
    """An inline SVG of a parsed network: one column per GPU, one row per depth.

    Colours are ``currentColor`` (with opacity for fills), so the drawing follows the page's
    light or dark text colour. Names and labels are XML-escaped."""
    pos, edges, lanes = layout(layers)
    box_w, box_h, gap_x, gap_y, lane_pad, top = 150, 34, 12, 26, 12, 28
    per_cell: dict[tuple[int, int], list[str]] = {}
    for n, (d, l) in pos.items():
        per_cell.setdefault((d, l), []).append(n)
    widths = [max([len(v) for (d, l), v in per_cell.items() if l == li] or [1]) for li in range(len(lanes))]
    lane_x = []
    x = 0
    for w in widths:
        lane_x.append(x)
        x += w * (box_w + gap_x) - gap_x + 2 * lane_pad + gap_x
    total_w = max(x - gap_x, box_w)
    n_rows = 1 + max((d for d, _ in pos.values()), default=0)
    total_h = top + n_rows * (box_h + gap_y) + 4
    xy: dict[str, tuple[float, float]] = {}
    for (d, li), ns in per_cell.items():
        for k, n in enumerate(ns):
            xy[n] = (lane_x[li] + lane_pad + k * (box_w + gap_x), top + d * (box_h + gap_y))

    out = [html('<svg xmlns="http://www.w3.org/2000/svg" class="experiment-diagram" role="img" '
                'viewBox="0 0 {:.0f} {:.0f}" width="{:.0f}" height="{:.0f}" '
                'font-family="sans-serif" font-size="11">', total_w, total_h, total_w, total_h)]
    out.append(html("<title>{}</title>", title or "network diagram"))
    out.append(html('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
                    'markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
                    'fill="currentColor"/></marker></defs>'))
    for li, name in enumerate(lanes):
        w = widths[li] * (box_w + gap_x) - gap_x + 2 * lane_pad
        out.append(html('<rect x="{}" y="2" width="{}" height="{}" rx="6" '
                        'fill="currentColor" fill-opacity="{}" stroke="none"/>',
                        lane_x[li], w, total_h - 4, 0.03 if li % 2 else 0.06))
        out.append(html('<text x="{:.0f}" y="18" text-anchor="middle" '
                        'font-weight="bold" fill="currentColor">{}</text>', lane_x[li] + w / 2, name))
    for a, b in edges:
        (xa, ya), (xb, yb) = xy[a], xy[b]
        out.append(html('<line x1="{:.0f}" y1="{:.0f}" x2="{:.0f}" '
                        'y2="{:.0f}" stroke="currentColor" stroke-opacity="0.55" '
                        'marker-end="url(#arrow)"/>', xa + box_w / 2, ya + box_h, xb + box_w / 2, yb))
    folded = {src: layers[nl] for nl, src in eh.folded_neurons(layers).items()}
    for n, (x0, y0) in xy.items():
        layer = layers[n]
        if n in folded and not layer.get("neuron"):
            layer = {**layer, "neuron": folded[n].get("neuron")}
        out.append(html('<g class="layer"><title>{}: {}</title>'
                        '<rect x="{:.0f}" y="{:.0f}" width="{}" height="{}" rx="4" '
                        'fill="currentColor" fill-opacity="0.08" stroke="currentColor"/>'
                        '<text x="{:.0f}" y="{:.0f}" text-anchor="middle" '
                        'font-weight="bold" fill="currentColor">{}</text>'
                        '<text x="{:.0f}" y="{:.0f}" text-anchor="middle" '
                        'fill="currentColor">{}</text></g>',
                        n, eh.layer_summary(layer), x0, y0, box_w, box_h, x0 + box_w / 2, y0 + 14, n,
                        x0 + box_w / 2, y0 + 28, eh.layer_summary(layer)))
    out.append(html("</svg>"))
    return join(out, "\n")


def timeline_svg(experiments, marked: dict[str, str] | None = None, href: str = "{stem}.html",
                 width: int = 900) -> str:
    """A strip of the experiments' start dates: one dot per dated experiment, months on the axis,
    marked experiments labelled; each dot links to ``href.format(stem=...)``. XML-escaped,
    ``currentColor`` only."""
    marked = marked or {}
    dated = [(date.fromisoformat(e.diary.start_date), e) for e in experiments if e.diary.start_date]
    if not dated:
        return ""
    first = min(d for d, _ in dated).replace(day=1)
    last_day = max(d for d, _ in dated)
    end = date(last_day.year + (last_day.month == 12), last_day.month % 12 + 1, 1)
    span = max((end - first).days, 1)
    left, right, axis_y, row_h = 10, 10, 30, 9
    x_of = lambda d: left + (d - first).days / span * (width - left - right)
    rows: dict[int, float] = {}
    placed = []
    for d, e in sorted(dated, key=lambda t: (t[0], t[1].stem)):
        x = x_of(d)
        row = 0
        while rows.get(row, -1e9) > x - 7:
            row += 1
        rows[row] = x + (8 + 6 * len(e.stem) if e.stem in marked else 0)   # room for the label
        placed.append((x, row, e))
    height = axis_y + (max(rows) + 1) * row_h + 40
    out = [html('<svg xmlns="http://www.w3.org/2000/svg" class="experiment-timeline" role="img" '
                'viewBox="0 0 {} {}" width="{}" height="{}" '
                'style="max-width: 100%; height: auto" font-family="sans-serif" font-size="10">',
                width, height, width, height),
           html("<title>experiments by start date</title>"),
           html('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="currentColor"/>',
                left, axis_y, width - right, axis_y)]
    m = first
    while m < end:
        x = x_of(m)
        out.append(html('<line x1="{:.1f}" y1="{}" x2="{:.1f}" y2="{}" stroke="currentColor"/>'
                        '<text x="{:.1f}" y="{}" fill="currentColor">{:%Y-%m}</text>',
                        x, axis_y - 4, x, axis_y, x + 2, axis_y - 8, m))
        m = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
    for x, row, e in placed:
        y = axis_y + 8 + row * row_h
        mark = e.stem in marked
        tip = f"#{e.stem} ({e.diary.start_date})" + (f": {marked[e.stem]}" if mark else "")
        out.append(html('<a href="{}"><circle cx="{:.1f}" cy="{}" '
                        'r="{}" fill="currentColor" fill-opacity="{}">'
                        '<title>{}</title></circle></a>',
                        href.format(stem=e.stem), x, y, 4 if mark else 3, 1 if mark else 0.45, tip))
        if mark:
            out.append(html('<text x="{:.1f}" y="{}" fill="currentColor" font-weight="bold">'
                            '#{}</text>', x + 6, y + 3, e.stem))
    out.append(html("</svg>"))
    return join(out, "\n")


def results_svg(experiments, marked: dict[str, str] | None = None, href: str = "{stem}.html",
                width: int = 900, height: int = 300) -> HTML:
    """Error over time: for each dated experiment with a recorded result, its headline top-1
    (filled) and top-5 (hollow) error in % against its start date (one rule:
    ``archive.experiment_history.DATE_RULE``); each point links to the experiment's page, the
    marked ones are labelled. ``currentColor`` only. On a phone the chart keeps 660 px (its box
    scrolls sideways) so that its labels stay >= 10 px and each point's hit circle >= 17 px."""
    marked = marked or {}
    pts = [(date.fromisoformat(e.diary.start_date), e, e.diary.headline) for e in experiments
           if e.diary.start_date and e.diary.headline]
    if not pts:
        return HTML("")
    first = min(d for d, _, _ in pts).replace(day=1)
    last_day = max(d for d, _, _ in pts)
    end = date(last_day.year + (last_day.month == 12), last_day.month % 12 + 1, 1)
    span = max((end - first).days, 1)
    vals = [100 * v for _, _, r in pts for v in (r.top1, r.top5)]
    lo, hi = 5 * int(min(vals) // 5), 5 * (int(max(vals) // 5) + 1)
    left, right, top, bottom = 50, 12, 14, 40
    x_of = lambda d: left + (d - first).days / span * (width - left - right)  # noqa: E731
    y_of = lambda v: top + (hi - v) / max(hi - lo, 1) * (height - top - bottom)  # noqa: E731
    out = [html('<svg xmlns="http://www.w3.org/2000/svg" class="experiment-results" role="img" '
                'viewBox="0 0 {} {}" width="{}" height="{}" style="max-width: 100%; min-width: 660px; '
                'height: auto" font-family="sans-serif" font-size="14">', width, height, width, height),
           html("<title>error rates recorded in the diaries, by start date: top-1 filled, top-5 hollow</title>")]
    for v in range(lo, hi + 1, 5):
        y = y_of(v)
        out.append(html('<line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" stroke="currentColor" stroke-opacity="0.2"/>'
                        '<text x="{}" y="{:.1f}" fill="currentColor" text-anchor="end">{}%</text>',
                        left, y, width - right, y, left - 4, y + 4, v))
    m = first
    while m < end:
        x = x_of(m)
        out.append(html('<line x1="{:.1f}" y1="{}" x2="{:.1f}" y2="{}" stroke="currentColor"/>'
                        '<text x="{:.1f}" y="{}" fill="currentColor">{:%Y-%m}</text>',
                        x, height - bottom, x, height - bottom + 4, x + 2, height - bottom + 20, m))
        m = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
    for d, e, r in sorted(pts, key=lambda t: (t[0], t[1].stem)):
        x = x_of(d)
        mark = e.stem in marked
        tip = (f"#{e.stem} ({e.diary.start_date}): {100 * r.top1:.2f} / {100 * r.top5:.2f} % ({r.label or 'no label'})"
               + (f"; {marked[e.stem]}" if mark else ""))
        out.append(html('<a href="{}"><title>{}</title><line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" '
                        'stroke="currentColor" stroke-opacity="0.3"/>'
                        '<circle cx="{:.1f}" cy="{:.1f}" r="{}" fill="currentColor"/>'
                        '<circle cx="{:.1f}" cy="{:.1f}" r="{}" fill="none" stroke="currentColor"/>'
                        '<circle cx="{:.1f}" cy="{:.1f}" r="12" fill="transparent"/></a>',
                        href.format(stem=e.stem), tip, x, y_of(100 * r.top1), x, y_of(100 * r.top5),
                        x, y_of(100 * r.top1), 5 if mark else 3.5, x, y_of(100 * r.top5), 4 if mark else 3,
                        x, y_of(100 * r.top1)))
        if mark:
            out.append(html('<text x="{:.1f}" y="{:.1f}" fill="currentColor" font-weight="bold">#{}</text>',
                            x + 7, y_of(100 * r.top1) + 4, e.stem))
    out.append(html("</svg>"))
    return join(out, "\n")
