"""The port beside the original: port panels in source-page margins, the port's own pages,
and the list of divergences.

Where a ``Ports:`` line cites a range, the source page shows, in the margin at the range's
first line, the code of the port function or class that carries the line (its span from
``PortsRef.owner``), linked to the port page. A port page shows the port module line-numbered;
each ``Ports:`` target in it is a link to the cited lines, and the margin beside each function
shows the original lines it ports. One click either way. ``divergences.html`` lists every
``DIVERGES:`` line. All references come from :func:`archive.xref.scan`.
"""
from __future__ import annotations

import html
from collections import defaultdict

from archive import xref
from archive.sphinxext.highlight import Cache, Highlighted
from archive.sphinxext.listing import line_classes, render_lines, render_listing
from archive.sphinxext.model import (Site, line_fragment, page_of_port, page_of_source,
                                     relative)

EXCERPT_LINES = 80  # longest excerpt shown in a margin; the rest is a link away


def port_text(site: Site, port_file: str) -> str | None:
    f = site.root / port_file
    return f.read_text(encoding="utf-8", errors="replace") if f.is_file() else None


def port_highlighted(site: Site, port_file: str, cache: Cache) -> Highlighted | None:
    text = port_text(site, port_file)
    return None if text is None else cache.get(text, port_file, port=True)


def _excerpt(lines: list[str], first: int, last: int, page: str, target_page: str) -> str:
    last_shown = min(last, first + EXCERPT_LINES - 1)
    body = render_lines(lines[first - 1:last_shown], first, anchor=False)
    more = ""
    if last_shown < last:
        more = (f'<p class="more"><a href="{relative(page, target_page, line_fragment(last_shown + 1, last))}">'
                f'{last - last_shown} more lines…</a></p>')
    return f'<pre class="code highlight excerpt">{body}</pre>{more}'


def port_notes(site: Site, release: str, path: str, page: str, cache: Cache) -> dict[int, list[str]]:
    """Margin notes of a source page: beside each cited range (at its first line), the code of
    the port function or class that cites it. A function citing several ranges of the file has a
    box beside each, linking to the others."""
    groups: dict[tuple[str, xref.Owner], list[xref.PortsRef]] = defaultdict(list)
    for r in site.refs_by_file.get((release, path), []):
        groups[(r.port_file, r.owner)].append(r)
    notes: dict[int, list[str]] = defaultdict(list)
    for (port_file, owner), refs in sorted(groups.items(), key=lambda kv: (min(r.first for r in kv[1]), kv[0][0])):
        hl = port_highlighted(site, port_file, cache)
        ppage = page_of_port(port_file)
        link = relative(page, ppage, line_fragment(owner.first, owner.last))
        at: dict[int, list[xref.PortsRef]] = defaultdict(list)
        for r in refs:
            at[r.first].append(r)
        for start, here in sorted(at.items()):
            cites = " ".join(
                f'<a class="range" href="#{line_fragment(r.first, r.last)}">{r.first}–{r.last}</a>'
                + (f" <code>{html.escape(r.symbol)}</code>" if r.symbol else "") for r in here)
            head = (f'<p class="nh"><span class="tag">port</span> <a class="to-port" href="{link}">'
                    f'{html.escape(port_file)}:{owner.first}–{owner.last}</a> '
                    f'<code>{html.escape(owner.qualname)}</code> ports {cites}</p>')
            code = _excerpt(hl.lines, owner.first, owner.last, page, ppage) if hl else ""
            others = [o for s2, os_ in sorted(at.items()) if s2 != start for o in os_]
            if others:
                code += ('<p class="more">It also ports ' + ", ".join(
                    f'<a href="#{line_fragment(o.first, o.last)}">{o.first}–{o.last}</a>' for o in others) + ".</p>")
            refs_attr = " ".join(f"{r.first}-{r.last}" for r in here)
            notes[start].append(f'<div class="note port" data-ranges="{refs_attr}">{head}{code}</div>')
    return notes


def _linkify(line: str, ref: xref.PortsRef, page: str) -> str:
    url = relative(page, page_of_source(ref.release, ref.path), line_fragment(ref.first, ref.last))
    for text in (f"{ref.release}/{ref.path}:{ref.first}-{ref.last}", f"{ref.release}/{ref.path}:{ref.first}"):
        esc = html.escape(text, quote=False)
        if esc in line:
            return line.replace(esc, f'<a class="to-src" href="{url}">{esc}</a>', 1)
    return line


def port_page(site: Site, port_file: str, cache: Cache) -> tuple[str, str] | None:
    hl = port_highlighted(site, port_file, cache)
    if hl is None:
        return None
    page = page_of_port(port_file)
    refs = [r for r in site.refs if r.port_file == port_file]
    divs = [d for d in site.divergences if d.port_file == port_file]
    lines = list(hl.lines)
    for r in refs:
        lines[r.line - 1] = _linkify(lines[r.line - 1], r, page)
    marks = line_classes({"xr": [(r.line, r.line) for r in refs],
                          "dv": [(d.line, d.line) for d in divs],
                          "pc": sorted({(r.owner.first, r.owner.last) for r in refs if r.owner.qualname != "<module>"})})
    notes: dict[int, list[str]] = defaultdict(list)
    ends: dict[int, int] = {}
    by_owner: dict[xref.Owner, list[xref.PortsRef]] = defaultdict(list)
    for r in refs:
        by_owner[r.owner].append(r)
    for owner, rs in by_owner.items():
        at = owner.first if owner.qualname != "<module>" else min(r.line for r in rs)
        ends[at] = max(ends.get(at, at), owner.last if owner.qualname != "<module>" else at)
        for r in rs:
            spage = page_of_source(r.release, r.path)
            text = site.text(r.release, r.path)
            src = cache.get(text, r.path) if text is not None and not site.is_binary(r.release, r.path) else None
            head = (f'<p class="nh"><span class="tag">original</span> <code>{html.escape(owner.qualname)}</code> '
                    f'ports <a class="to-src" href="{relative(page, spage, line_fragment(r.first, r.last))}">'
                    f'{html.escape(r.target)}</a>' + (f" <code>{html.escape(r.symbol)}</code>" if r.symbol else "")
                    + "</p>")
            code = _excerpt(src.lines, r.first, min(r.last, len(src.lines)), page, spage) if src else ""
            notes[at].append(f'<div class="note orig">{head}{code}</div>')
    for d in divs:
        at = d.owner.first if d.owner.qualname != "<module>" else d.line
        notes[at].append(f'<div class="note diverges"><p class="nh"><span class="tag">diverges</span> '
                         f'<a href="#L{d.line}">line {d.line}</a>: {html.escape(d.reason)}</p></div>')
    body = (f'<h1>{html.escape(port_file)}</h1><p class="meta">Port module: {len(refs)} <code>Ports:</code> '
            f'references, {len(divs)} <code>DIVERGES:</code> marks. '
            f'<a href="{relative(page, "port/index")}">All port modules</a>.</p>'
            + render_listing(lines, final_newline=hl.final_newline, marks=marks, notes=notes, ends=ends))
    return port_file, body


def port_index(site: Site) -> tuple[str, str]:
    page = "port/index"
    rows = []
    for pf in site.port_files:
        nref = sum(1 for r in site.refs if r.port_file == pf)
        ndiv = sum(1 for d in site.divergences if d.port_file == pf)
        rows.append(f'<tr><td class="path"><a href="{relative(page, page_of_port(pf))}">{html.escape(pf)}</a></td>'
                    f'<td class="num">{nref}</td><td class="num">{ndiv}</td></tr>')
    body = ('<h1>The port</h1><p>Every port module, with its <code>Ports:</code> references to the '
            'original lines and its <code>DIVERGES:</code> marks.</p><div class="table-wrap"><table class="files">'
            '<thead><tr><th>module</th><th>Ports:</th><th>DIVERGES:</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')
    return "The port", body


def divergences_page(site: Site) -> tuple[str, str]:
    page = "divergences"
    rows = []
    for d in sorted(site.divergences, key=lambda d: (d.port_file, d.line)):
        url = relative(page, page_of_port(d.port_file), f"L{d.line}")
        rows.append(f'<tr><td class="path"><a href="{url}">{html.escape(d.port_file)}:{d.line}</a></td>'
                    f'<td><code>{html.escape(d.owner.qualname)}</code></td><td>{html.escape(d.reason)}</td></tr>')
    body = ('<h1>Divergences</h1><p>Every place where the port deliberately differs from the original, '
            f'as marked by a <code>DIVERGES:</code> line in the port ({len(rows)} in all).</p>'
            '<div class="table-wrap"><table class="files divergences"><thead><tr><th>where</th><th>in</th>'
            f'<th>reason</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
    return "Divergences", body
