"""Files across releases: lineage (which file of one release is which of another), the
side-by-side diffs between consecutive releases, and each release's file tree with marks.

Lineage is worked out from the manifests alone. Releases are taken in lineage order (oldest
first, config ``archive_release_order``); each file of a release is matched to the newest
earlier appearance ("tip") of a file by, in turn: the same path; the same git blob (a file
moved unchanged); the same file name, when that name is unique among the files still
unmatched on both sides (a file moved, e.g. r561 ``src/cudaconv2/filter_acts.cu`` →
cuda-convnet2 ``cudaconv3/src/filter_acts.cu``, or ``src/layer.cu`` →
``cudaconvnet/src/layer.cu``). Anything else starts a new lineage. Diffs use :mod:`difflib`.
"""
from __future__ import annotations

import difflib
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from archive.manifest import FileEntry
from archive.sphinxext.highlight import Cache, split_lines
from archive.sphinxext.markup import HTML, esc, html, join
from archive.sphinxext.model import Site, page_of_source, page_of_versions, relative

CONTEXT = 3  # unchanged lines shown around each change


@dataclass
class Chain:
    """One file through the releases: release → path, in lineage order."""
    members: dict[str, str] = field(default_factory=dict)
    key: str = ""      # its versions page is versions/<key>

    def pairs(self, order: list[str]) -> list[tuple[str, str]]:
        rels = [r for r in order if r in self.members]
        return list(zip(rels, rels[1:]))


def _match(tips: dict[int, tuple[str, FileEntry]], files: list[FileEntry], order: list[str]
           ) -> dict[str, int]:
    """Path of a new release's file → index of the chain it continues."""
    rank = {r: i for i, r in enumerate(order)}
    matched: dict[str, int] = {}
    free = dict(tips)
    rules = (lambda e: e.path, lambda e: e.blob, lambda e: PurePosixPath(e.path).name)
    for rule_no, rule in enumerate(rules):
        by_key: dict[str, list[int]] = {}
        for i, (_, t) in free.items():
            by_key.setdefault(rule(t), []).append(i)
        left = [f for f in files if f.path not in matched]
        counts: dict[str, int] = {}
        for f in left:
            counts[rule(f)] = counts.get(rule(f), 0) + 1
        for f in left:
            if rule_no == 2 and counts[rule(f)] != 1:  # a file name must be unique on both sides
                continue
            cands = [i for i in by_key.get(rule(f), []) if i in free]
            if len(cands) > 1:
                newest = max(rank[free[i][0]] for i in cands)
                cands = [i for i in cands if rank[free[i][0]] == newest]
            if len(cands) == 1 and (rule_no != 2 or len(by_key[rule(f)]) == 1):
                matched[f.path] = cands[0]
                del free[cands[0]]
    return matched


def lineage(site: Site) -> list[Chain]:
    chains: list[Chain] = []
    for release in site.order:
        files = site.files(release)
        tips = {}
        for i, c in enumerate(chains):
            rel = [r for r in site.order if r in c.members][-1]
            tips[i] = (rel, site.manifests[rel].files[c.members[rel]])
        matched = _match(tips, files, site.order)
        for f in files:
            if f.path in matched:
                chains[matched[f.path]].members[release] = f.path
            else:
                chains.append(Chain({release: f.path}))
    used: set[str] = set()
    for c in chains:
        first = next(r for r in site.order if r in c.members)
        key = c.members[first]
        while key in used:
            key += "~"
        used.add(key)
        c.key = key
    return chains


def chains_by_file(chains: list[Chain]) -> dict[tuple[str, str], Chain]:
    return {(r, p): c for c in chains for r, p in c.members.items()}


def status(site: Site, a: tuple[str, str], b: tuple[str, str]) -> str:
    """"same", "moved" (same bytes, other path), "changed" or "moved+changed"."""
    ea = site.manifests[a[0]].files[a[1]]
    eb = site.manifests[b[0]].files[b[1]]
    moved = a[1] != b[1]
    if ea.blob == eb.blob:
        return "moved" if moved else "same"
    return "moved+changed" if moved else "changed"


_WORDS = re.compile(r"\w+|\s+|[^\w\s]")


def _words(a: str, b: str) -> tuple[HTML, HTML]:
    """Two changed lines as HTML, the words that differ marked (``<span class="wd">``)."""
    ta, tb = _WORDS.findall(a), _WORDS.findall(b)
    sm = difflib.SequenceMatcher(None, ta, tb, autojunk=False)
    if sm.ratio() < 0.3:  # a different line, not an edit of it: marking would be noise
        return esc(a), esc(b)
    oa, ob = [], []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        xa = esc("".join(ta[i1:i2]))
        xb = esc("".join(tb[j1:j2]))
        if tag == "equal":
            oa.append(xa)
            ob.append(xb)
        else:
            oa.append(html('<span class="wd">{}</span>', xa) if xa else "")
            ob.append(html('<span class="wd">{}</span>', xb) if xb else "")
    return join(oa), join(ob)


def _diff_rows(a: list[str], b: list[str], ida: str, idb: str, url_a: str = "", url_b: str = "",
               off_a: int = 0, off_b: int = 0) -> tuple[HTML, int, int]:
    """Table rows of a side-by-side diff of the lines ``a``/``b``; line ``n`` of each side has
    the id ``<ida>n`` / ``<idb>n`` (e.g. ``alexnet-2012-a123``: the same line of the same
    release on every page). Changed lines pair up with their words marked; each folded run of
    unchanged lines says which lines it holds, linked to the source pages (``url_a``/``url_b``).
    ``off_a``/``off_b``: the file line before the first line given (a function's diff).
    Also returns the numbers of lines added and removed."""
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    rows: list[str] = []
    added = removed = 0

    def cell(idp: str, n: int | None, code: HTML = HTML(""), cls: str = "") -> HTML:
        if n is None:
            return html('<td class="lno"></td><td class="t empty"></td>')
        n += off_a if idp == ida else off_b
        return html('<td class="lno" id="{}{}">{}</td><td class="t {}">{}</td>', idp, n, n, cls, code)

    def fold(i1: int, i2: int, j1: int, j2: int) -> str:
        def side(url: str, f: int, t: int) -> str:
            span = f"{f}–{t}" if t > f else f"{f}"
            return html('<a href="{}#L{}-L{}">{}</a>', url, f, t, span) if url else span
        return (html('<tr class="skip"><td colspan="4">⋯ {} unchanged lines '
                     '({} | {})</td></tr>',
                     i2 - i1, side(url_a, off_a + i1 + 1, off_a + i2), side(url_b, off_b + j1 + 1, off_b + j2)))

    groups = list(sm.get_grouped_opcodes(CONTEXT))
    prev_a = prev_b = 0
    for g in groups:
        if g[0][1] > prev_a:
            rows.append(fold(prev_a, g[0][1], prev_b, g[0][3]))
        for tag, i1, i2, j1, j2 in g:
            if tag == "equal":
                for k in range(i2 - i1):
                    rows.append(html("<tr>{}{}</tr>", cell(ida, i1 + k + 1, esc(a[i1 + k]), "eq"),
                                     cell(idb, j1 + k + 1, esc(b[j1 + k]), "eq")))
                continue
            removed += i2 - i1
            added += j2 - j1
            for k in range(max(i2 - i1, j2 - j1)):
                if i1 + k < i2 and j1 + k < j2:
                    xa, xb = _words(a[i1 + k], b[j1 + k])
                else:
                    xa = esc(a[i1 + k]) if i1 + k < i2 else HTML("")
                    xb = esc(b[j1 + k]) if j1 + k < j2 else HTML("")
                left = cell(ida, i1 + k + 1, xa, "del") if i1 + k < i2 else cell(ida, None)
                right = cell(idb, j1 + k + 1, xb, "ins") if j1 + k < j2 else cell(idb, None)
                rows.append(html('<tr>{}{}</tr>', left, right))
        prev_a, prev_b = g[-1][2], g[-1][4]
    if groups and prev_a < len(a):
        rows.append(fold(prev_a, len(a), prev_b, len(b)))
    return join(rows), added, removed


def versions_page(site: Site, chain: Chain, cache: Cache) -> tuple[str, str]:
    """(title, body) of the diff page of one file across releases."""
    page = page_of_versions(chain.key)
    parts = [html('<h1>{} across releases</h1><ul class="members">', chain.key)]
    for r in site.order:
        if r in chain.members:
            p = chain.members[r]
            parts.append(html('<li><a href="{}">{}/{}</a></li>', relative(page, page_of_source(r, p)), r, p))
    parts.append(html('</ul><p class="meta">Between the releases: <a href="{}">every '
                      'public revision</a>; who wrote each line is on the source pages.</p>',
                      relative(page, "revisions/index")))
    for k, (ra, rb) in enumerate(chain.pairs(site.order), 1):
        pa, pb = chain.members[ra], chain.members[rb]
        st = status(site, (ra, pa), (rb, pb))
        sec = f"{ra}..{rb}"
        ida, idb = f"{ra}-a", f"{rb}-b"
        url_a, url_b = relative(page, page_of_source(ra, pa)), relative(page, page_of_source(rb, pb))
        parts.append(html('<section class="diff-pair" id="{}"><h2>{} → {} '
                          '<span class="status {}">{}</span></h2>', sec, ra, rb, st.replace('+', '-'), st))
        ta, tb = site.text(ra, pa), site.text(rb, pb)
        if "changed" not in st:
            parts.append(html('<p>Byte-identical (same git blob '
                              '<code>{}</code>).</p></section>', site.manifests[ra].files[pa].blob))
            continue
        if ta is None or tb is None or site.is_binary(ra, pa) or site.is_binary(rb, pb):
            parts.append(html("<p>Not compared here (a release is not fetched, or the file is binary).</p>"
                              "</section>"))
            continue
        def compute() -> tuple[HTML, int, int]:  # plain text (no highlighting) keeps big diffs light
            return _diff_rows(split_lines(ta), split_lines(tb), ida, idb, url_a, url_b)

        key = (f"diff2:{CONTEXT}:{ida}:{idb}:{url_a}:{url_b}:{site.manifests[ra].files[pa].sha256}:"
               f"{site.manifests[rb].files[pb].sha256}")
        rows, added, removed = cache.memo(key, compute)
        parts.append(html('<p class="diffstat"><span class="ins">+{}</span> '
                          '<span class="del">−{}</span> lines · line <em>n</em> of each side is '
                          '<code>#{}<em>n</em></code> / <code>#{}<em>n</em></code> (on every page); '
                          'a line number opens that line of the release file</p>'
                          '<div class="diff-wrap"><table class="diff" data-a="{}" data-b="{}">'
                          '<colgroup><col class="lno">'
                          '<col class="t"><col class="lno"><col class="t"></colgroup>'
                          '<thead><tr><th colspan="2">{}/{}</th>'
                          '<th colspan="2">{}/{}</th></tr></thead>'
                          '<tbody>{}</tbody></table></div></section>',
                          added, removed, ida, idb, url_a, url_b, ra, pa, rb, pb, rows))
    return f"{chain.key} across releases", join(parts)


def versions_index(site: Site, chains: list[Chain]) -> tuple[str, str]:
    page = "versions/index"
    head = join(html("<th>{}</th>", r) for r in site.order)
    rows = []
    for c in sorted(chains, key=lambda c: c.key):
        if len(c.members) < 2:
            continue
        cells = []
        rels = [r for r in site.order if r in c.members]
        for r in site.order:
            if r not in c.members:
                cells.append(html('<td class="absent">—</td>'))
                continue
            i = rels.index(r)
            st = "first" if i == 0 else status(site, (rels[i - 1], c.members[rels[i - 1]]), (r, c.members[r]))
            cells.append(html('<td class="{}"><a href="{}">'
                              '{}</a> <span class="status">{}</span></td>',
                              st.replace('+', '-'), relative(page, page_of_source(r, c.members[r])), c.members[r], st))
        rows.append(html('<tr><td><a href="{}">{}</a></td>'
                         '{}</tr>', relative(page, page_of_versions(c.key)), c.key, join(cells)))
    body = html('<h1>Versions</h1><p>Every file present in two or more releases, matched by path, by '
                'identical content, or by a unique file name (a move). Releases in lineage order: {}. '
                'Each status compares a release with the previous one that has the file. Between the '
                'releases, <a href="{}">every public revision</a> of the joined history, with a timeline.</p>'
                '<div class="table-wrap"><table class="files"><thead><tr><th>file</th>{}</tr></thead>'
                '<tbody>{}</tbody></table></div>', " → ".join(site.order), relative(page, "revisions/index"),
                head, join(rows))
    return "Versions", body


def release_index(site: Site, release: str, chains: list[Chain], coverage) -> tuple[str, str]:  # noqa: ANN001
    """The file tree of a release, each file marked against every other release."""
    page = f"releases/{release}/index"
    man = site.manifests[release]
    others = [r for r in site.order if r != release]
    by_file = chains_by_file(chains)
    rows = []
    last_dir = None
    for e in site.files(release):
        d = posixpath.dirname(e.path)
        if d != last_dir:
            rows.append(html('<tr class="dir"><th colspan="{}">{}</th></tr>', 3 + len(others), d or '/'))
            last_dir = d
        chain = by_file[(release, e.path)]
        marks = []
        for o in others:
            if o not in chain.members:
                marks.append(html('<td class="mark absent" title="not in {}">{}</td>',
                                  o, 'added' if site.order.index(o) < site.order.index(release) else '—'))
                continue
            st = status(site, (o, chain.members[o]), (release, e.path))
            url = relative(page, page_of_versions(chain.key))
            marks.append(html('<td class="mark {}"><a href="{}" title="vs {}: '
                              '{}">{}</a></td>', st.replace('+', '-'), url, o, chain.members[o], st))
        cov = coverage.get((release, e.path))
        covtxt = f"{cov.cited_share:.0%} / {cov.annotated_share:.0%}" if cov and e.lines else ""
        rows.append(html('<tr><td class="path"><a href="{}">'
                         '{}</a></td><td class="num">{}</td>'
                         '<td class="num">{}</td>{}</tr>',
                         relative(page, page_of_source(release, e.path)), posixpath.basename(e.path), e.lines,
                         covtxt, join(marks)))
    mine = {c.members[release] for c in chains if release in c.members}
    gone = []
    for o in others:
        for c in chains:
            if o in c.members and release not in c.members:
                gone.append(html('<li><a href="{}">{}/'
                                 '{}</a></li>',
                                 relative(page, page_of_source(o, c.members[o])), o, c.members[o]))
    head = join(html("<th>vs {}</th>", o) for o in others)
    absent = "" if site.present(release) else (
        html('<p class="warning">This release is not fetched (<code>original/'
             '{}</code> is empty): run <code>make original</code>.</p>', release))
    body = (html('<h1>{}</h1>{}<dl class="provenance">'
                 '<dt>Upstream</dt><dd><a href="{}">{}</a></dd>'
                 '<dt>Commit</dt><dd><a href="{}/tree/{}"><code>{}</code></a>'
                 ' ({}) · <code>swh:1:rev:{}</code></dd>'
                 '<dt>License</dt><dd>{}</dd>'
                 '<dt>Provenance</dt><dd>{}</dd>'
                 '<dt>Files</dt><dd>{} files, {} lines</dd></dl>'
                 '<p>Marks compare each file with the same file (by lineage) in the other releases: '
                 '<em>same</em>, <em>changed</em>, <em>moved</em>; <em>added</em> where an earlier release '
                 'lacks it, — where a later one does. The third column is the share of lines cited by the '
                 'port / annotated.</p>'
                 '<div class="table-wrap"><table class="files tree"><thead><tr><th>file</th><th>lines</th>'
                 '<th>port / notes</th>{}</tr></thead><tbody>{}</tbody></table></div>'
                 '<h2>In other releases, absent here</h2><ul class="gone">{}</ul>',
                 release, absent, man.upstream, man.upstream, man.upstream, man.commit, man.commit,
                 man.commit_date, man.commit, man.license, man.provenance, len(mine),
                 sum(e.lines for e in man.files.values()), head, join(rows), join(gone) or html("<li>none</li>")))
    return release, body
