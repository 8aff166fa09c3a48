"""The history of each function: its versions across the releases, side by side.

For every file that exists in more than one release (a lineage :class:`versions.Chain`), the
functions, kernels and methods that Universal Ctags finds in each version (:func:`idents.outline`)
are matched from release to release by name (with its class, and its rank among overloads of
that name), then, for those left over, by content (the most similar body, if at least
:data:`MIN_SIMILARITY` alike). ``history/<chain key>.html`` lists each function with its lines in
every release (linked), says whether it is the same, changed, new or gone, and shows the diff of
each changed step (the diff rows of :mod:`versions`: word-level marks, folded runs, stable
anchors). The outline of a source page links each function to its history.
"""
from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass, field

from archive.sphinxext.highlight import Cache, split_lines
from archive.sphinxext.idents import Tags, outline
from archive.sphinxext.markup import HTML, html, join
from archive.sphinxext.model import Site, line_fragment, page_of_source, relative
from archive.sphinxext.versions import Chain, _diff_rows

MIN_SIMILARITY = 0.6
KINDS = ("function", "kernel", "method")
PAGE_BUDGET = 1_100_000  # bytes of diffs per page; beyond it, changed steps link to the file diff


@dataclass
class Version:
    release: str
    path: str
    name: str
    scope: str
    kind: str
    first: int
    last: int
    body: list[str]


@dataclass
class Function:
    fid: str                       # the anchor on the history page
    title: str                     # "ConvLayer::fpropActs"
    versions: dict[str, Version] = field(default_factory=dict)  # release → version


def page_of_history(key: str) -> str:
    return f"history/{key}"


def _versions(site: Site, release: str, path: str, tags: Tags) -> list[Version]:
    text = site.text(release, path)
    if text is None or site.is_binary(release, path):
        return []
    lines = split_lines(text)
    out = []
    for name, kind, scope, first, last in outline(tags.get((release, path), []), lines, path.endswith(".py")):
        if kind in KINDS:
            out.append(Version(release, path, name, scope, kind, first, last, lines[first - 1:last]))
    return out


def _similar(a: list[str], b: list[str]) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def functions(site: Site, chain: Chain, tags: Tags) -> list[Function]:
    """The chain's functions, each with its version in every release that has it."""
    found: list[Function] = []
    open_by_key: dict[tuple[str, str, int], Function] = {}
    for release in site.order:
        path = chain.members.get(release)
        if path is None:
            continue
        vs = _versions(site, release, path, tags)
        rank: dict[tuple[str, str], int] = defaultdict(int)
        unmatched = []
        for v in vs:
            k = (v.scope, v.name, rank[(v.scope, v.name)])
            rank[(v.scope, v.name)] += 1
            f = open_by_key.get(k)
            if f is not None and release not in f.versions:
                f.versions[release] = v
            else:
                unmatched.append((k, v))
        # by content: a function renamed or moved into a class keeps most of its body
        orphans = [f for f in found if release not in f.versions and f.versions]
        for k, v in unmatched:
            best, score = None, MIN_SIMILARITY
            for f in orphans:
                last = f.versions[list(f.versions)[-1]]
                if abs(len(last.body) - len(v.body)) > max(len(last.body), len(v.body)) // 2:
                    continue
                s = _similar(last.body, v.body)
                if s >= score:
                    best, score = f, s
            if best is not None:
                best.versions[release] = v
                orphans.remove(best)
                open_by_key.setdefault(k, best)
                continue
            title = f"{v.scope}::{v.name}" if v.scope else v.name
            f = Function(f"f-{title.replace('::', '-').replace('.', '-')}-{k[2]}" if k[2] else
                         f"f-{title.replace('::', '-').replace('.', '-')}", title, {release: v})
            found.append(f)
            open_by_key[k] = f
    return [f for f in found if len(f.versions) > 1 or len(chain.members) > 1]


def links(site: Site, chains: list[Chain], tags: Tags | None) -> tuple[dict[tuple[str, str], dict[int, str]],
                                                                         dict[str, list[Function]]]:
    """For each source file, its functions' first lines → their history anchors; and the
    functions of each chain (only chains with a file in two releases or more)."""
    by_file: dict[tuple[str, str], dict[int, str]] = defaultdict(dict)
    per_chain: dict[str, list[Function]] = {}
    if tags is None:
        return by_file, per_chain
    for chain in chains:
        if len(chain.members) < 2:
            continue
        fs = functions(site, chain, tags)
        if not fs:
            continue
        per_chain[chain.key] = fs
        for f in fs:
            for r, v in f.versions.items():
                by_file[(r, v.path)][v.first] = f"{page_of_history(chain.key)}#{f.fid}"
    return by_file, per_chain


def _status(a: Version | None, b: Version | None) -> str:
    if a is None:
        return "new"
    if b is None:
        return "gone"
    return "same" if a.body == b.body else "changed"


def history_page(site: Site, chain: Chain, fs: list[Function], cache: Cache,
                 revs_line=None) -> tuple[str, str]:  # noqa: ANN001
    """The functions of one file across releases; ``revs_line(page, fid)``: the HTML of the
    public revisions that changed a function (:mod:`revisions`), where the history is fetched."""
    page = page_of_history(chain.key)
    releases = [r for r in site.order if r in chain.members]
    budget = PAGE_BUDGET
    head = join(html('<th>{}</th>', r) for r in releases)
    rows, sections = [], []
    for f in fs:
        cells, prev = [], None
        for r in releases:
            v = f.versions.get(r)
            st = _status(prev, v) if prev is not None or v is not None else ""
            if v is None:
                cells.append(html('<td class="absent">{}</td>', 'gone' if prev else '—'))
            else:
                url = relative(page, page_of_source(r, v.path), line_fragment(v.first, v.last))
                cells.append(html('<td class="{}"><a href="{}">{}–{}</a> '
                                  '<span class="status">{}</span></td>',
                                  st, url, v.first, v.last, st if prev is not None else ''))
            prev = v if v is not None else prev
        rows.append(html('<tr><th class="fn"><a href="#{}">{}</a></th>{}</tr>', f.fid, f.title, join(cells)))
        steps = []
        present = [(r, f.versions[r]) for r in releases if r in f.versions]
        for (ra, a), (rb, b) in zip(present, present[1:]):
            if a.body == b.body:
                steps.append(html('<p class="step">{} → {}: the same {} lines.</p>', ra, rb, len(a.body)))
                continue
            if budget <= 0:
                steps.append(html('<p class="step">{} → {}: changed; see the '
                                  '<a href="{}">file diff</a>.</p>',
                                  ra, rb, relative(page, 'versions/' + chain.key)))
                continue
            ida, idb = f"{f.fid}-{ra}-a", f"{f.fid}-{rb}-b"
            url_a = relative(page, page_of_source(ra, a.path))
            url_b = relative(page, page_of_source(rb, b.path))
            body_rows, added, removed = _diff_rows(a.body, b.body, ida, idb, url_a, url_b, a.first - 1, b.first - 1)
            budget -= len(body_rows)
            steps.append(html('<h3>{} → {} <span class="diffstat"><span class="ins">+{}</span> '
                              '<span class="del">−{}</span></span></h3>'
                              '<div class="diff-wrap"><table class="diff" data-a="{}" data-b="{}">'
                              '<colgroup><col class="lno"><col class="t"><col class="lno"><col class="t"></colgroup>'
                              '<thead><tr><th colspan="2">{}/{}</th><th colspan="2">'
                              '{}/{}</th></tr></thead><tbody>{}</tbody></table></div>',
                              ra, rb, added, removed, url_a, url_b, ra, a.path, rb, b.path, body_rows))
        kinds = sorted({v.kind for v in f.versions.values()})
        revs = HTML(revs_line(page, f.fid)) if revs_line is not None else HTML("")
        sections.append(html('<section class="fn-history" id="{}"><h2><code>{}</code> '
                             '<span class="status">{}</span></h2>{}{}</section>',
                             f.fid, f.title, join(kinds, '/'), revs, join(steps)))
    body = (html('<h1>Functions of {} across releases</h1>'
                 '<p>Each function, kernel and method of the file (Universal Ctags) in every release, matched by name, '
                 'then by content; the lines of each version, and the diff of each changed step. '
                 '<a href="{}">The whole-file diff</a>.</p>'
                 '<div class="table-wrap"><table class="files history"><thead><tr><th>function</th>{}</tr></thead>'
                 '<tbody>{}</tbody></table></div>{}',
                 chain.key, relative(page, 'versions/' + chain.key), head, join(rows), join(sections)))
    return f"Functions of {chain.key} across releases", body
