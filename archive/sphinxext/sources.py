"""Source pages: one page per file of each release, shown exactly as stored.

Every line is numbered with its own anchor (``#L123``; ranges ``#L10-L20`` are highlighted by
``archive.js``), highlighted by Pygments with no tab expansion and no newline added; a file
without a final newline says so. Images are shown as images. A provenance header gives the
release, path, size, SHA-256, git blob id, a qualified SWHID and the upstream permalink at the
pinned commit. The margin holds annotations, the port code that cites each range
(:mod:`sidebyside`) and what the file uses but the release lacks (:mod:`gaps`). The raw bytes
are copied beside the page (``<path>`` next to ``<path>.html``) for download.
"""
from __future__ import annotations

import difflib
from collections import defaultdict
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from archive.manifest import FileEntry
from archive.sphinxext.annotations import rebase_urls
from archive.sphinxext.coverage import FileCoverage
from archive.sphinxext import cfgxref, idents
from archive.sphinxext.gaps import gap_notes
from archive.sphinxext.highlight import Cache, split_lines
from archive.sphinxext.idents import Tag, cfg_outline
from archive.sphinxext.listing import line_classes, render_listing
from archive.sphinxext.markup import HTML, html, join
from archive.sphinxext.model import (Site, line_fragment, page_of_source, page_of_versions,
                                     raw_of_source, relative)
from archive.sphinxext.sidebyside import port_notes
from archive.sphinxext.versions import Chain, status

if TYPE_CHECKING:
    from archive.sphinxext.revisions import Origin
    from archive.sphinxext.cfgxref import CfgLinks


def swhid(site: Site, release: str, e: FileEntry) -> str:
    """The file's SWHID with its context qualifiers, in canonical order (lines= is added by JS)."""
    man = site.manifests[release]
    return f"{e.swhid};origin={man.upstream};anchor=swh:1:rev:{man.commit};path=/{e.path}"


def annotation_notes(site: Site, release: str, path: str, page: str,
                     bodies: dict[str, str]) -> dict[int, list[str]]:
    notes: dict[int, list[str]] = defaultdict(list)
    for a in sorted(site.annotations_by_file.get((release, path), []), key=lambda a: (a.first, a.last)):
        # the note as Sphinx rendered it from the project's own pages: markup already
        body = HTML(rebase_urls(bodies.get(f"{a.docname}#{a.node_id}", ""), "index", page))
        src = relative(page, a.docname, a.node_id)
        sym = html(' <code>{}</code>', a.symbol) if a.symbol else ""
        notes[a.first].append(
            html('<div class="note ann" id="note-{}"><p class="nh"><span class="tag">note</span> '
                 '<a class="range" href="#{}">{}–{}</a>{} '
                 '<a class="from" href="{}" title="where this note is written">¶</a></p>{}</div>',
                 a.node_id, line_fragment(a.first, a.last), a.first, a.last, sym, src, body))
    return notes


def _header(site: Site, release: str, e: FileEntry, page: str, chain: Chain | None,
            cov: FileCoverage | None, note: HTML) -> HTML:
    man = site.manifests[release]
    name = PurePosixPath(raw_of_source(e.path)).name
    other = []
    if chain is not None:
        for r in site.order:
            if r in chain.members and r != release:
                st = status(site, (r, chain.members[r]), (release, e.path))
                other.append(html('<a href="{}">{}</a> '
                                  '<span class="status">({})</span>',
                                  relative(page, page_of_source(r, chain.members[r])), r, st))
        if len(chain.members) > 1:
            other.append(html('<a href="{}">diffs</a>', relative(page, page_of_versions(chain.key))))
    covtxt = ""
    if cov is not None and cov.lines:
        covtxt = (html('<dt>Coverage</dt><dd><span class="cited">{}</span> of {} lines cited by '
                       'the port ({:.0%}), <span class="annotated">{}</span> annotated '
                       '({:.0%})</dd>',
                       cov.cited, cov.lines, cov.cited_share, cov.annotated, cov.annotated_share))
    size = ("binary" if site.is_binary(release, e.path) else
            f"{e.lines} lines" + (", no final newline" if not e.final_newline and e.size else ""))
    sw = swhid(site, release, e)
    return (html('<header class="provenance"><h1><a href="{}">{}</a>/{}</h1><dl>'
                 "<dt>Size</dt><dd>{} bytes, {}{}</dd>"
                 "<dt>SHA-256</dt><dd><code>{}</code></dd>"
                 "<dt>Git blob</dt><dd><code>{}</code></dd>"
                 '<dt>SWHID</dt><dd><code class="swhid" data-swhid="{}">{}</code></dd>'
                 '<dt>Upstream</dt><dd><a class="permalink" href="{}">{} @ {}</a> · '
                 '<a href="{}" download>raw file</a></dd>',
                 relative(page, f"releases/{release}/index"), release, e.path, e.size, size,
                 ", executable" if e.executable else "", e.sha256, e.blob, sw, sw, man.permalink(e.path),
                 man.upstream, man.commit[:8], name)
            + (html("<dt>Other releases</dt><dd>{}</dd>", join(other, " · ")) if other else "")
            + covtxt + html("</dl>{}</header>", note))


def _kept(a: list[str], b: list[str]) -> list[int]:
    """The 1-based lines of ``a`` that ``b`` keeps (difflib's matching blocks)."""
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return [i + k + 1 for i, _, n in sm.get_matching_blocks() for k in range(n)]


def provenance(site: Site, release: str, path: str, chain: Chain | None, cache: Cache,
               lines: list[str]) -> tuple[dict[str, list[tuple[int, int]]], HTML | str]:
    """Per-line provenance of a file that has versions in other releases: ``pv-o`` (already in
    the previous release), ``pv-n`` (new in this one), ``pv-k`` (kept by the next release), as
    line classes (drawn in the gutter), and the legend with the counts."""
    if chain is None or len(chain.members) < 2:
        return {}, ""
    rels = [r for r in site.order if r in chain.members]
    i = rels.index(release)
    prev = rels[i - 1] if i > 0 else None
    nxt = rels[i + 1] if i + 1 < len(rels) else None
    sha = site.manifests[release].files[path].sha256
    out: dict[str, list[tuple[int, int]]] = {}
    legend = []
    for other, cls in ((prev, "pv-o"), (nxt, "pv-k")):
        if other is None:
            continue
        text = site.text(other, chain.members[other])
        if text is None or site.is_binary(other, chain.members[other]):
            continue
        osha = site.manifests[other].files[chain.members[other]].sha256
        kept = set(cache.memo(f"kept:{sha}:{osha}", lambda t=text: _kept(lines, split_lines(t))))
        if cls == "pv-o":
            out["pv-o"] = [(n, n) for n in sorted(kept)]
            out["pv-n"] = [(n, n) for n in range(1, len(lines) + 1) if n not in kept]
            legend.append(html('<span class="pv pv-o"></span> {} lines already in {} · '
                               '<span class="pv pv-n"></span> {} new in {}',
                               len(kept), other, len(lines) - len(kept), release))
        else:
            out["pv-k"] = [(n, n) for n in sorted(kept)]
            legend.append(html('<span class="pv pv-k"></span> {} kept by {}', len(kept), nxt))
    if not legend:
        return {}, ""
    return out, html('<p class="pv-legend">Provenance of each line (gutter): {}.</p>', join(legend, " · "))


def outline_html(items: list[tuple[str, str, str, int, int]], source: str, page: str = "",
                 hist: dict[int, str] | None = None) -> HTML | str:
    """The file's outline: a folded list of its classes, functions, kernels, cfg sections."""
    if not items:
        return ""
    counts: dict[str, int] = defaultdict(int)
    for _, kind, *_ in items:
        counts[kind] += 1
    summary = ", ".join(f"{n} {k}{'es' if n != 1 and k.endswith('s') else 's' if n != 1 else ''}"
                        for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    lis = join(
        html('<li class="{}"><a href="#{}">{}{}</a> <span class="kind">{}{} {}</span>{}</li>',
             kind, line_fragment(first, last), scope + "::" if scope and kind != "method" else "", name,
             kind, " of " + scope if scope and kind == "method" else "", first,
             html(' <a class="hist" href="{}">history</a>', relative(page, *hist[first].split("#", 1)))
             if hist and first in hist else "")
        for name, kind, scope, first, last in items)
    return (html('<details class="outline"><summary>Outline: {}</summary>'
                 '<ol>{}</ol><p class="meta">From {}.</p></details>', summary, lis, source))


def source_page(site: Site, release: str, e: FileEntry, cache: Cache, bodies: dict[str, str],
                chain: Chain | None, cov: FileCoverage | None,
                tags: list[Tag] | None = None, hist: dict[int, str] | None = None,
                origin: "Origin | None" = None, origin_note: str = "",
                cfg_links: "CfgLinks | None" = None, searchable: bool = True) -> tuple[str, str]:
    """(title, body) of a source page. ``origin``: each line's revision (:mod:`revisions`), which
    replaces the comparison with the neighbouring releases; ``origin_note``: why it is absent;
    ``cfg_links``: what a cfg file's names link to (:mod:`cfgxref`); ``searchable``: the listing
    is marked for the full-text index (:mod:`fulltext`)."""
    page = page_of_source(release, e.path)
    title = f"{release}/{e.path}"
    data = site.data(release, e.path)
    if data is None:
        return title, _header(site, release, e, page, chain, cov,
                              html('<p class="warning">Not fetched: run <code>make original</code>.</p>'))
    if site.is_image(e.path):
        return title, (_header(site, release, e, page, chain, cov, HTML(""))
                       + html('<figure class="image"><img src="{}" alt="{} as stored"></figure>',
                              PurePosixPath(e.path).name, e.path))
    if site.is_binary(release, e.path):
        return title, (_header(site, release, e, page, chain, cov, HTML(""))
                       + html('<p class="warning">A binary file (it contains NUL bytes): not shown; '
                              "use the raw file link above.</p>"))
    text = site.text(release, e.path) or ""
    note = HTML("")
    if "\ufffd" in text and b"\xef\xbf\xbd" not in data:
        note = html('<p class="warning">Some bytes are not UTF-8; they are shown as �.</p>')
    hl = cache.get(text, e.path)
    refs = site.refs_by_file.get((release, e.path), [])
    anns = site.annotations_by_file.get((release, e.path), [])
    if origin is not None:
        pv, legend = {}, origin.head
    else:
        pv, legend = provenance(site, release, e.path, chain, cache, split_lines(text))
        legend += origin_note
    marks = line_classes({"pc": [(r.first, r.last) for r in refs], "an": [(a.first, a.last) for a in anns], **pv})
    if origin is not None:
        for n, cls in origin.marks.items():
            marks[n] = f"{marks[n]} {cls}" if n in marks else cls
    notes: dict[int, list[str]] = defaultdict(list)
    for n, items in annotation_notes(site, release, e.path, page, bodies).items():
        notes[n] += items
    for n, items in port_notes(site, release, e.path, page, cache).items():
        notes[n] += items
    for n, items in gap_notes(site, release, e.path, split_lines(text), page).items():
        notes[n] += items
    ends: dict[int, int] = {}  # each note's segment runs to the last line it is about
    for first, last in [(r.first, r.last) for r in refs] + [(a.first, a.last) for a in anns]:
        ends[first] = max(ends.get(first, first), last)
    man = site.manifests[release]
    cite = html(' data-release="{}" data-path="{}" data-commit="{}" data-upstream="{}" data-permalink="{}"'
                ' data-swhid="{}"', release, e.path, man.commit, man.upstream, man.permalink(e.path),
                swhid(site, release, e))
    lines = split_lines(text)
    code_lines = hl.lines
    if ".cfg" in PurePosixPath(e.path).name and cfg_links is not None:
        code_lines = cfgxref.link_lines(site, cfg_links, release, e.path, text, hl.lines)
        note = note + cfgxref.header(site, cfg_links, release, e.path)
    if ".cfg" in PurePosixPath(e.path).name:
        outline = outline_html(cfg_outline(lines), "the cfg's section headers")
    elif tags is not None:
        outline = outline_html(idents.outline(tags, lines, e.path.endswith(".py")), "Universal Ctags", page, hist)
    else:  # no Universal Ctags here: the highlighter's function and class names, first lines only
        seen = set()
        items = [(n, "definition", "", line, line) for n, line, defining in hl.names
                 if defining and (n, line) not in seen and not seen.add((n, line))]
        outline = outline_html(items, "the highlighter (Universal Ctags is not installed)", page, hist)
    tail = HTML("")
    if text and not hl.final_newline:
        tail = html('<p class="nofinalnl">⏎ No newline at end of file (shown as stored).</p>')
    return title, (_header(site, release, e, page, chain, cov, note) + outline + legend
                   + html('<div class="source" data-lexer="{}"{}{}>{}{}</div>', hl.lexer, cite,
                          html(' data-pagefind-body data-pagefind-meta="title:{}" data-pagefind-filter="release:{}"',
                               title, release) if searchable else "",
                          render_listing(code_lines, final_newline=hl.final_newline, marks=marks, notes=notes,
                                         ends=ends, attrs=origin.attrs if origin is not None else None), tail))


def releases_index(site: Site) -> tuple[str, str]:
    rows = []
    for r in site.order:
        man = site.manifests[r]
        rows.append(html('<tr><td><a href="{}/index.html">{}</a></td><td><a href="{}">'
                         '{}</a></td><td><code>{}</code></td>'
                         '<td class="num">{}</td><td>{}</td></tr>',
                         r, r, man.upstream, man.upstream, man.commit[:8], len(man.files), man.provenance))
    return "Releases", (html('<h1>Releases</h1><p>The pinned releases, in lineage order.</p><div class="table-wrap">'
                             '<table class="files releases"><thead><tr><th>release</th><th>upstream</th><th>commit</th>'
                             '<th>files</th><th>provenance</th></tr></thead><tbody>{}</tbody></table></div>',
                             join(rows)))
