"""The numbered code listing shared by source pages, port pages and margin excerpts.

Each line is one ``<span class="ln" id="L<n>">`` holding a line-number link (its number is
drawn by CSS from ``data-n``, so copying code does not copy numbers) and the line's
highlighted HTML. The listing is cut into segments where margin notes start; each segment is a
row of the code and its margin (annotations, port code), stacked on narrow screens; the code
of a segment is cut into blocks of :data:`CHUNK` lines that the browser lays out only when
they come into view (CSS ``content-visibility``), so long files open fast. This
module knows nothing of releases or the port: it places HTML it is given.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from archive.sphinxext.markup import HTML, html, join

CHUNK = 100  # lines per <pre>; full chunks are skipped by the browser while off screen


def line_html(n: int, code: HTML, *, cls: str = "", anchor: bool = True, newline: bool = True,
              attrs: HTML | str = "") -> HTML:
    """One line (``code``: its highlighted markup); ``anchor=False`` (excerpts) gives a number
    without id or link; ``attrs``: more attributes of its span, as HTML (`` data-r="3"``)."""
    if anchor:  # one template per case: this runs for every line of the site
        return html('<span class="ln{}" id="L{}"{}><a class="lno" href="#L{}" data-n="{}"></a>{}{}</span>',
                    " " + cls if cls else "", n, HTML(attrs), n, n, code, "\n" if newline else "")
    return html('<span class="ln{}"{}><i class="lno" data-n="{}"></i>{}{}</span>',
                " " + cls if cls else "", HTML(attrs), n, code, "\n" if newline else "")


def render_lines(lines: list[HTML], first: int = 1, *, marks: Mapping[int, str] | None = None,
                 anchor: bool = True, final_newline: bool = True,
                 attrs: Mapping[int, str] | None = None) -> HTML:
    """Lines ``first..`` of a file as numbered spans (the last without newline if the file
    has none); ``attrs``: extra attributes of a line's span (`` data-r="3"``)."""
    marks = marks or {}
    attrs = attrs or {}
    out = []
    total = first + len(lines) - 1
    for i, code in enumerate(lines):
        n = first + i
        out.append(line_html(n, code, cls=marks.get(n, ""), anchor=anchor,
                             newline=final_newline or n != total, attrs=attrs.get(n, "")))
    return join(out)


def segment_bounds(nlines: int, starts: Iterable[int], ends: Mapping[int, int]) -> list[int]:
    """Where segments begin: line 1, every line where notes start and the line after each
    note's range (``ends[start]`` = the last line the notes at ``start`` are about), so a
    segment holds exactly the lines its margin speaks of; ``nlines + 1`` closes the last."""
    cuts = {1, nlines + 1}
    for n in starts:
        if 1 <= n <= nlines:
            cuts.add(n)
            end = ends.get(n, n)
            if n <= end < nlines:
                cuts.add(end + 1)
    return sorted(cuts)


def render_listing(lines: list[HTML], *, final_newline: bool, marks: Mapping[int, str],
                   notes: Mapping[int, Iterable[HTML]], ends: Mapping[int, int] | None = None,
                   attrs: Mapping[int, str] | None = None) -> HTML:
    """The whole file, cut into segments at every line that has notes and after the lines they
    are about (``ends``); the notes go in that segment's margin, in a box that stays in view
    (CSS ``sticky``) while any of the segment's lines are on screen."""
    starts = sorted(n for n, items in notes.items() if items and 1 <= n <= len(lines))
    bounds = segment_bounds(len(lines), starts, ends or {}) if lines else [1]
    segs = []
    for a, b in zip(bounds, bounds[1:]):
        chunks = []
        for c in range(a, b, CHUNK):  # blocks the browser may skip while off screen
            d = min(c + CHUNK, b)
            code = render_lines(lines[c - 1:d - 1], c, marks=marks, attrs=attrs,
                                final_newline=final_newline or d != len(lines) + 1)
            full = " full" if d - c == CHUNK else ""
            chunks.append(html('<pre class="code highlight{}">{}</pre>', full, code))
        margin = join(notes.get(a, ()))
        inner = html('<div class="mwrap">{}</div>', margin) if margin else ""
        segs.append(html('<div class="seg{}" data-first="{}" data-last="{}">'
                         '<div class="codecol">{}</div><div class="margin">{}</div></div>',
                         ' has-notes' if margin else '', a, b - 1, join(chunks), inner))
    if not lines:
        segs.append(html('<div class="seg"><div class="codecol"><pre class="code highlight"></pre></div>'
                         '<div class="margin"></div></div>'))
    plain = "" if starts else " no-notes"  # nothing in the margin: the code takes the width
    return html('<div class="listing{}">{}</div>', plain, join(segs))


def line_classes(ranges: Mapping[str, Iterable[tuple[int, int]]]) -> dict[int, str]:
    """``{"pc": [(10, 20)], "an": [(15, 15)]}`` → ``{10: "pc", ..., 15: "pc an", ...}``."""
    out: dict[int, list[str]] = {}
    for cls, spans in ranges.items():
        for first, last in spans:
            for n in range(first, last + 1):
                if cls not in out.setdefault(n, []):
                    out[n].append(cls)
    return {n: " ".join(v) for n, v in out.items()}
