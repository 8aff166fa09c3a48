"""The port beside the original: port panels in source-page margins, the port's own pages,
and the list of divergences.

Where a ``Ports:`` line cites a range, the source page shows, in the margin at the range's
first line, the code of the port function or class that carries the line (its span from
``PortsRef.owner``), linked to the port page. A port page shows the port module line-numbered;
each ``Ports:`` target in it is a link to the cited lines, and the margin beside each function
shows the original lines it ports. One click either way. ``divergences.html`` lists every
``DIVERGES:`` line, then every ``Port-only:`` line (a check the port adds). All references come
from :func:`archive.xref.scan`.
"""
from __future__ import annotations

import re
from collections import defaultdict

from archive import xref
from archive.sphinxext.highlight import Cache, Highlighted
from archive.sphinxext.listing import line_classes, render_lines, render_listing
from archive.sphinxext.markup import HTML, esc, html, join
from archive.sphinxext.model import (Site, line_fragment, page_of_port, page_of_source,
                                     relative)

EXCERPT_LINES = 80  # longest excerpt shown in a margin; the rest is a link away
REPEAT_EXCERPT_LINES = 16  # in the boxes beside a function's second and later ranges
PORT_PAGE_EXCERPT_LINES = 40  # on port pages (many references each): keeps them under 1.5 MB


def port_text(site: Site, port_file: str) -> str | None:
    f = site.root / port_file
    return f.read_text(encoding="utf-8", errors="replace") if f.is_file() else None


def port_highlighted(site: Site, port_file: str, cache: Cache) -> Highlighted | None:
    text = port_text(site, port_file)
    return None if text is None else cache.get(text, port_file, port=True)


def _excerpt(lines: list[HTML], first: int, last: int, page: str, target_page: str,
             most: int = EXCERPT_LINES) -> HTML:
    last_shown = min(last, first + most - 1)
    body = render_lines(lines[first - 1:last_shown], first, anchor=False)
    more = HTML("")
    if last_shown < last:
        more = html('<p class="more"><a href="{}">{} more lines…</a></p>',
                    relative(page, target_page, line_fragment(last_shown + 1, last)), last - last_shown)
    return html('<pre class="code highlight excerpt">{}</pre>{}', body, more)


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
            cites = join((html('<a class="range" href="#{}">{}–{}</a>', line_fragment(r.first, r.last), r.first,
                               r.last)
                          + (html(" <code>{}</code>", r.symbol) if r.symbol else "") for r in here), " ")
            head = html('<p class="nh"><span class="tag">port</span> <a class="to-port" href="{}">{}:{}–{}</a> '
                        "<code>{}</code> ports {}</p>",
                        link, port_file, owner.first, owner.last, owner.qualname, cites)
            # the whole excerpt beside the function's first range, its head beside the others
            # (a function citing many ranges would otherwise repeat itself past 1.5 MB a page)
            most = EXCERPT_LINES if start == min(at) else REPEAT_EXCERPT_LINES
            code = _excerpt(hl.lines, owner.first, owner.last, page, ppage, most) if hl else HTML("")
            others = [o for s2, os_ in sorted(at.items()) if s2 != start for o in os_]
            if others:
                code += html('<p class="more">It also ports {}.</p>', join(
                    (html('<a href="#{}">{}–{}</a>', line_fragment(o.first, o.last), o.first, o.last)
                     for o in others), ", "))
            refs_attr = " ".join(f"{r.first}-{r.last}" for r in here)
            notes[start].append(html('<div class="note port" data-ranges="{}">{}{}</div>',
                                     refs_attr, head, code))
    return notes


def _linkify(line: HTML, ref: xref.PortsRef, page: str) -> HTML:
    """The highlighted line with the ``Ports:`` target in it linked to the cited lines."""
    url = relative(page, page_of_source(ref.release, ref.path), line_fragment(ref.first, ref.last))
    for target in (f"{ref.release}/{ref.path}:{ref.first}-{ref.last}", f"{ref.release}/{ref.path}:{ref.first}"):
        shown = esc(target)  # as the highlighted line holds it
        if shown in line:
            return HTML(str.replace(line, shown, html('<a class="to-src" href="{}">{}</a>', url, shown), 1))
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
    notes: dict[int, list[HTML]] = defaultdict(list)
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
            head = html('<p class="nh"><span class="tag">original</span> <code>{}</code> '
                        'ports <a class="to-src" href="{}">{}</a>{}</p>',
                        owner.qualname, relative(page, spage, line_fragment(r.first, r.last)), r.target,
                        html(" <code>{}</code>", r.symbol) if r.symbol else "")
            code = (_excerpt(src.lines, r.first, min(r.last, len(src.lines)), page, spage, PORT_PAGE_EXCERPT_LINES)
                    if src else HTML(""))
            notes[at].append(html('<div class="note orig">{}{}</div>', head, code))
    for d in divs:
        at = d.owner.first if d.owner.qualname != "<module>" else d.line
        tag = "diverges" if d.kind == "DIVERGES" else "port-only"
        notes[at].append(html('<div class="note {}"><p class="nh"><span class="tag">{}</span> '
                              '<a href="#{}">line {}</a>: {}</p></div>',
                              tag, tag, line_fragment(d.line, max(d.last, d.line)), d.line, plain_reason(d.reason)))
    npo = sum(d.kind == "Port-only" for d in divs)
    body = html('<h1>{}</h1><p class="meta">Port module: {} <code>Ports:</code> references, {} '
                '<code>DIVERGES:</code> marks{}. <a href="{}">All port modules</a>.</p>{}',
                port_file, len(refs), len(divs) - npo,
                html(", {} <code>Port-only:</code> checks", npo) if npo else "", relative(page, "port/index"),
                render_listing(lines, final_newline=hl.final_newline, marks=marks, notes=notes, ends=ends))
    return port_file, body


def port_index(site: Site) -> tuple[str, str]:
    page = "port/index"
    rows = []
    for pf in site.port_files:
        nref = sum(1 for r in site.refs if r.port_file == pf)
        ndiv = sum(1 for d in site.divergences if d.port_file == pf and d.kind == "DIVERGES")
        rows.append(html('<tr><td class="path"><a href="{}">{}</a></td>'
                         '<td class="num">{}</td><td class="num">{}</td></tr>',
                         relative(page, page_of_port(pf)), pf, nref, ndiv))
    body = (html('<h1>The port</h1><p>Every port module, with its <code>Ports:</code> references to the '
                 'original lines and its <code>DIVERGES:</code> marks.</p><div class="table-wrap"><table class="files">'
                 '<thead><tr><th>module</th><th>Ports:</th><th>DIVERGES:</th></tr></thead>'
                 '<tbody>{}</tbody></table></div>', join(rows)))
    return "The port", body


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")          # :func:`load` -> load
_LITERAL = re.compile(r"``(.+?)``|`([^`]+)`")
_STRONG = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*")
_CITE = re.compile(r"(?:(?P<dir>[A-Za-z0-9_]+)/|(?P<word>[A-Za-z0-9_]+) )?"
                   r"(?P<name>[A-Za-z0-9_.-]+\.(?:cuh?|py|cpp|h|cfg)):(?P<first>\d+)(?:-(?P<last>\d+))?")


def _strong(text: str) -> HTML:
    """Escaped ``text`` with its ``**…**`` as strong (the tags go around text escaped first)."""
    return HTML(_STRONG.sub(r"<strong>\1</strong>", esc(text)))


def plain_reason(text: str) -> HTML:
    """A reason's reST/MyST markup as HTML: literals as code, roles as their target, ** as strong;
    everything else escaped."""
    out, pos = [], 0
    text = _ROLE.sub(lambda m: f"``{m[1]}``", text)
    for m in _LITERAL.finditer(text):
        out.append(_strong(text[pos:m.start()]))
        out.append(html("<code>{}</code>", m[1] or m[2]))
        pos = m.end()
    out.append(_strong(text[pos:]))
    return join(out)


def _release_file(site: Site, m: re.Match, prefer: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The release file a citation like ``conv_util.cu:1084`` (or ``cudaconv3 conv_util.cu:1206``)
    in a reason names: the files the same function ports first, then the 2012 release's, then a
    file that is the only one of that name; None when it cannot be told."""
    name, hint = m["name"], m["dir"] or m["word"] or ""
    found = [(r, e.path) for r in site.order for e in site.files(r)
             if e.path == name or e.path.endswith("/" + name)]
    if hint:
        narrowed = [f for f in found if f"/{hint}/" in f"/{f[0]}/{f[1]}"]
        found = narrowed or found
    for group in (prefer, [f for f in found if f[0] == "alexnet-2012"], found):
        hits = [f for f in found if f in group]
        if len({f[0] for f in hits}) == 1 and len(hits) == 1:
            return hits[0]
    return None


def _linked_reason(site: Site, d: xref.Divergence, page: str, prefer: list[tuple[str, str]]) -> HTML:
    """The reason as text, each ``file:line`` it cites linked to those lines of the release file."""
    body = plain_reason(d.reason)

    def link(m: re.Match) -> str:
        target = _release_file(site, m, prefer)
        if target is None:
            return m[0]
        first = int(m["first"])
        last = int(m["last"]) if m["last"] else first
        url = relative(page, page_of_source(*target), line_fragment(first, last))
        lead = m["word"] + " " if m["word"] else ""  # a hint word before the name stays outside the link
        return html('{}<a class="to-src" href="{}" title="{}/{}">{}</a>',
                    lead, url, target[0], target[1], m[0][len(lead):])
    # citations are plain text in the escaped body (no markup in a file name), so link them there
    # (a citation is word characters, dots and dashes: the same escaped or not)
    parts = re.split(r"(<[^>]+>)", body)
    return HTML("".join(p if p.startswith("<") else _CITE.sub(link, p) for p in parts))


def divergences_page(site: Site) -> tuple[str, str]:
    """Every ``DIVERGES:`` line, then every ``Port-only:`` line (a check the port adds)."""
    page = "divergences"
    rows: dict[str, list[HTML]] = {"DIVERGES": [], "Port-only": []}
    refs_by_owner: dict[tuple[str, xref.Owner], list[xref.PortsRef]] = defaultdict(list)
    for r in site.refs:
        refs_by_owner[(r.port_file, r.owner)].append(r)
    for d in sorted(site.divergences, key=lambda d: (d.port_file, d.line)):
        last = max(d.last, d.line)
        url = relative(page, page_of_port(d.port_file), line_fragment(d.line, last))
        ported = refs_by_owner.get((d.port_file, d.owner), []) if d.owner.qualname != "<module>" else []
        prefer = [(r.release, r.path) for r in ported]
        orig = join((html('<a class="to-src" href="{}">{}</a>',
                          relative(page, page_of_source(r.release, r.path), line_fragment(r.first, r.last)), r.target)
                     for r in ported), "<br>") or html('<span class="status">no Ports: line</span>')
        owner = (html('<a href="{}"><code>{}</code></a>',
                      relative(page, page_of_port(d.port_file), line_fragment(d.owner.first, d.owner.last)),
                      d.owner.qualname) if d.owner.qualname != "<module>" else "the module")
        rows[d.kind].append(html('<li class="{}" id="{}:{}"><p class="where"><a class="to-port" href="{}">{}:{}{}</a>'
                                 ' in {}</p><p class="reason">{}</p>'
                                 '<p class="orig"><span class="tag">ports</span> {}</p></li>',
                                 "divergence" if d.kind == "DIVERGES" else "port-only", d.port_file, d.line, url,
                                 d.port_file, d.line, f"–{last}" if last > d.line else "", owner,
                                 _linked_reason(site, d, page, prefer), orig))
    body = (html('<h1>Divergences</h1><p>Every place where the port deliberately differs from the original, '
                 'as marked by a <code>DIVERGES:</code> line in the port ({} in all): where it '
                 'is, the whole reason, and the original lines the function ports. File and line citations in a '
                 'reason link to those lines.</p>'
                 '<ol class="divergences">{}</ol>', len(rows["DIVERGES"]), join(rows["DIVERGES"])))
    if rows["Port-only"]:
        body += (html('<h2 id="port-only">Checks the port adds</h2><p>Every input the port refuses, or output it '
                      'routes, where the original had no check, as marked by a <code>Port-only:</code> line '
                      '({} in all): the original crashed, asserted in a kernel or went on.</p>'
                      '<ol class="divergences">{}</ol>', len(rows["Port-only"]), join(rows["Port-only"])))
    return "Divergences", body
