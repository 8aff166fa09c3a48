"""The public history on the site: who wrote each line, a page per revision, a timeline.

Where the releases' histories are fetched (``original/.history/<release>.git``,
:mod:`archive.history`), the build joins them into one repository (cached in the doctree folder,
keyed by the pinned ids) and asks ``git blame -w -M -C -C`` who wrote each line of every file of
every release (cached likewise). It then gives:

* ``provenance/<release>/<path>.json``: ``{"lines": [index into revisions, one per line],
  "revisions": [{"id", "svn", "date", "summary"}]}`` (upstream ids);
* on each source page, each line's origin: a mark in the gutter coloured by era (the stage of
  the history: r1-r561, the 2012 release, cuda-convnet2), a column the reader can show or hide
  (``archive-origin.js``) linking each line to its revision's page, and a summary of the counts
  at the top of the file;
* ``revisions/<label>.html``: one page per revision (date, SVN number, author as recorded,
  message, files changed and their diffs in the site's diff renderer, previous and next);
* ``revisions/index.html``: every revision, with a chart of the lines added and removed over
  time (``revisions/timeline.svg``, matplotlib);
* ``revisions/new-in-2012.html``: per file and per function, the lines of the 2012 release no
  public revision held before it.

Without the histories these pages say how to fetch them, and source pages keep the comparison
with the neighbouring releases (:func:`sources.provenance`).
"""
from __future__ import annotations

import io
import json
import subprocess
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sphinx.util import logging

from archive import history as hist
from archive.sphinxext.highlight import Cache, split_lines
from archive.sphinxext.markup import HTML, esc, html, join
from archive.sphinxext.model import Site, line_fragment, page_of_source, relative
from archive.sphinxext.versions import _diff_rows

logger = logging.getLogger(__name__)
INDEX = "revisions/index"
NEW_2012 = "revisions/new-in-2012"
SNAPSHOT_RELEASE = "alexnet-2012"
PAGE_BUDGET = 200_000   # bytes of diff rows per revision page; beyond it, files are listed only
SUMMARY_CHARS = 120
ERA_NAMES = {"cuda-convnet-r561": "cuda-convnet SVN r1–r561 (2011–2012)",
             "alexnet-2012": "first public in the 2012 release",
             "cuda-convnet2": "first public in cuda-convnet2 (2014–2015)"}


def page_of_revision(rev: hist.Revision) -> str:
    return f"revisions/{rev.slug}"


@dataclass
class Change:
    status: str        # A, M, D, R<score>, ...
    path: str
    old_path: str
    old_blob: str
    new_blob: str
    added: int | None  # None: binary
    removed: int | None


@dataclass
class SiteHistory:
    stitched: hist.Stitched
    prov: hist.Provenance
    stages: list[hist.Stage]
    eras: dict[str, int]                          # release → era index (stage order)
    by_id: dict[str, hist.Revision] = field(default_factory=dict)
    pos: dict[str, int] = field(default_factory=dict)
    changes: dict[str, list[Change]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = self.stitched.by_id()
        self.pos = {r.id: i for i, r in enumerate(self.stitched.revisions)}

    def era_of(self, rev_id: str) -> int:
        return self.eras[self.by_id[rev_id].release]

    def counts(self, release: str, path: str) -> Counter:
        """Lines of the file per era."""
        return Counter(self.era_of(i) for i in self.prov.lines.get((release, path), []))


def load(app, site: Site) -> tuple[SiteHistory | None, str]:  # noqa: ANN001
    """The site's history, or None and why not."""
    missing = [r for r in site.order if not hist.has_history(site.original, r, site.manifests[r].commit)]
    if missing:
        return None, html("the history of {} is not fetched (<code>python -m archive fetch "
                          "RELEASE --from-bundle FILE</code> keeps it in <code>original/.history/</code>)",
                          ", ".join(missing))
    cache_dir = Path(app.doctreedir) / "archive-history"
    try:
        stages = hist.default_stages(site.manifests, site.order, site.original,
                                     app.config.archive_history_snapshots)
        t0 = time.perf_counter()
        stitched = hist.cached_stitch(stages, site.original, cache_dir)
        t1 = time.perf_counter()
        files = {r: [e.path for e in site.files(r)] for r in site.order}
        binary = [(r, e.path) for r in site.order for e in site.files(r) if site.is_binary(r, e.path)]
        sizes = {(r, e.path): e.size for r in site.order for e in site.files(r)}
        prov = hist.provenance(stitched, files, cache_dir, binary=binary, sizes=sizes)
    except hist.UserError as e:
        logger.warning(f"archive: no line provenance: {e}")
        return None, esc(str(e))
    logger.info(f"archive: stitched history of {len(stitched.revisions)} commits ({t1 - t0:.1f} s), "
                f"blame of {len(prov.lines)} files "
                + (f"{prov.seconds:.1f} s" if prov.seconds else "from the cache"))
    sh = SiteHistory(stitched, prov, stages, {s.release: i for i, s in enumerate(stages)})
    sh.changes = _changes(stitched)
    return sh, ""


def _changes(stitched: hist.Stitched) -> dict[str, list[Change]]:
    """Each revision's changes against its first parent (``git diff-tree --stdin``, one call)."""
    lines = "".join(f"{r.id} {r.parents[0]}\n" if r.parents else f"{r.id}\n" for r in stitched.revisions)
    out = subprocess.run(["git", f"--git-dir={stitched.path}", "diff-tree", "--stdin", "-r", "-M", "--root",
                          "--raw", "--numstat", "-z"], input=lines.encode(), capture_output=True, check=True).stdout
    # -z: each commit's id, then its raw records ":<modes> <blobs> <status>\0<path>\0" (a rename:
    # two paths), then its numstat records "<added>\t<removed>\t<path>\0" (a rename: "\t\0<old>\0<new>\0"),
    # in the same order as the raw records.
    toks = out.split(b"\0")
    changes: dict[str, list[Change]] = {}
    cur: list[Change] | None = None
    raw_i = 0
    i = 0
    ids = {r.id for r in stitched.revisions}
    while i < len(toks):
        t = toks[i].decode("utf-8", "surrogateescape").lstrip("\n")
        i += 1
        if not t:
            continue
        head = t.split(" ")[0]
        if len(head) == 40 and head in ids and not t.startswith(":"):
            cur = changes.setdefault(head, [])
            raw_i = 0
            continue
        if cur is None:
            continue
        if t.startswith(":"):
            parts = t[1:].split(" ")
            status = parts[4]
            if status[0] in "RC":
                old, new = toks[i].decode("utf-8", "surrogateescape"), toks[i + 1].decode("utf-8", "surrogateescape")
                i += 2
            else:
                old = new = toks[i].decode("utf-8", "surrogateescape")
                i += 1
            cur.append(Change(status, new, old, parts[2], parts[3], None, None))
            continue
        a, r, p = t.split("\t", 2)
        if p == "":  # a rename's numstat: the two paths follow
            i += 2
        if raw_i < len(cur):
            cur[raw_i].added = None if a == "-" else int(a)
            cur[raw_i].removed = None if r == "-" else int(r)
        raw_i += 1
    return changes


# --- the source pages ----------------------------------------------------------------------------

@dataclass
class Origin:
    marks: dict[int, str]        # line → class (era)
    attrs: dict[int, HTML]       # line → ' data-r="k"'
    head: HTML                   # the summary and the data for the script


def _era_label(sh: SiteHistory, era: int) -> str:
    r = sh.stages[era].release
    return ERA_NAMES.get(r, r)


def summary_sentence(sh: SiteHistory, release: str, path: str) -> HTML:
    ids = sh.prov.lines.get((release, path), [])
    n = len(ids)
    if not n:
        return HTML("")
    mine = sh.eras[release]
    c = sh.counts(release, path)
    before = sum(v for k, v in c.items() if k < mine)
    parts = []
    if before:
        eras = [html('<span class="oe oe{}"></span> {:,} {}', k, c[k], _era_label(sh, k)) for k in sorted(c) if k < mine]
        parts.append(html("{:,} of {:,} lines were public before this release ({})", before, n, join(eras, "; ")))
    new = c.get(mine, 0)
    first = sh.stages[mine]
    if first.mode == hist.SNAPSHOT:
        parts.append(html('<span class="oe oe{}"></span> {:,} first appear in it', mine, new))
    else:
        revs = {i for i in ids if sh.era_of(i) == mine}
        parts.append(html('<span class="oe oe{}"></span> {:,} were written in its own history '
                          '({} revision{})', mine, new, len(revs), "s" if len(revs) != 1 else ""))
    return join(parts, "; ") + html(".")


def origin(sh: SiteHistory, release: str, path: str, page: str, note: HTML = HTML("")) -> Origin | None:
    ids = sh.prov.lines.get((release, path))
    if not ids:
        return None
    order = sorted(set(ids), key=lambda i: sh.pos[i])
    index = {i: k for k, i in enumerate(order)}
    revs = []
    for i in order:
        r = sh.by_id[i]
        revs.append([relative(page, page_of_revision(r)), r.label, r.day, r.summary[:SUMMARY_CHARS], sh.era_of(i)])
    marks = {n: f"oe{sh.era_of(i)}" for n, i in enumerate(ids, 1)}
    attrs = {n: HTML(' data-r="%d"' % index[i]) for n, i in enumerate(ids, 1)}  # the hot path: one per line
    data = HTML(json.dumps(revs, ensure_ascii=True).replace("</", "<\\/"))   # JSON in a script: no markup
    head = html('<div class="origin-summary"><p>Origin of each line (<code>git blame -w -M -C -C</code> on the '
                '<a href="{}">joined public history</a>): {} '
                '<button type="button" class="origin-toggle" aria-pressed="false">show origin column</button> '
                '<a href="{}.json">JSON</a></p>{}'
                '<script type="application/json" class="origin-data">{}</script></div>',
                relative(page, INDEX), summary_sentence(sh, release, path),
                relative(page, "provenance/" + release + "/" + path)[:-5], note, data)
    return Origin(marks, attrs, head)


def cudaconv3_note(site: Site, release: str, path: str, chain) -> HTML:  # noqa: ANN001
    """Where plain blame would fall short, said on the page: a file of a history that follows the
    2012 snapshot whose lineage skips the snapshot (cuda-convnet2's cudaconv3 from r561's
    cudaconv2, which the 2012 tree does not hold)."""
    if chain is None or release == site.order[0] or release == SNAPSHOT_RELEASE:
        return HTML("")
    members = [r for r in site.order if r in chain.members]
    if len(members) < 2 or SNAPSHOT_RELEASE in members or members[-1] != release:
        return HTML("")
    older = members[-2]
    page = page_of_source(release, path)
    return html('<p class="origin-limit">This file descends from {}\'s '
                '<a href="{}">{}</a>, which the 2012 tree (the commit before {} on the joined '
                'history) does not hold: plain <code>git blame</code> on that line credits every line it kept to '
                '{}\'s first commit. Its lines are blamed instead on a side line that holds {}\'s '
                'files beside the 2012 tree (<code>refs/archive/view/{}</code> in the repository '
                '<code>python -m archive history</code> writes), so the lines it kept go back to the revisions that wrote '
                'them. <a href="{}">The versions page</a> shows the differences.</p>',
                older, relative(page, page_of_source(older, chain.members[older])), chain.members[older], release,
                release, older, release, relative(page, "versions/" + chain.key))


# --- functions through the revisions ----------------------------------------------------------------

def function_revisions(site: Site, sh: SiteHistory, chains_fs: dict, chains: list, cache: Cache
                       ) -> dict[str, dict[str, list[hist.Revision]]]:
    """chain key → function id → the revisions that changed it, oldest first, through every
    release of the chain (:func:`archive.history.function_history`, cached by the pinned ids)."""
    import concurrent.futures
    import os
    jobs = []
    for chain in chains:
        fs = chains_fs.get(chain.key)
        if not fs:
            continue
        for r, path in chain.members.items():
            spans = [(f.fid, f.versions[r].first, f.versions[r].last) for f in fs if r in f.versions]
            if spans and r in sh.stitched.pinned:
                jobs.append((chain.key, r, path, site.manifests[r].files[path].lines, spans))

    def one(job):  # noqa: ANN001, ANN202
        key, r, path, n, spans = job
        memo = f"fnrevs:{hist.VERSION}:{sh.stitched.pinned[r]}:{path}:{json.dumps(spans)}"
        return key, cache.memo(memo, lambda: hist.function_history(sh.stitched.path, sh.stitched.pinned[r],
                                                                    path, n, spans))
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        for key, got in pool.map(one, jobs):
            for fid, ids in got.items():
                out[key][fid].update(ids)
    logger.info(f"archive: functions through the revisions, {len(jobs)} files, {time.perf_counter() - t0:.1f} s")
    return {k: {fid: sorted((sh.by_id[i] for i in ids), key=lambda r: sh.pos[r.id]) for fid, ids in v.items()}
            for k, v in out.items()}


def revisions_line(page: str, revs: list[hist.Revision], sh: SiteHistory) -> HTML:
    """A function's revisions as links, oldest first."""
    links = join((html('<a class="oe oe-t oe{}" href="{}" title="{} · {}">{}</a>', sh.eras[r.release],
                       relative(page, page_of_revision(r)), r.day, r.summary[:SUMMARY_CHARS], r.label)
                  for r in revs), " · ")
    return html('<p class="fn-revs">Changed in {} public revision{} '
                '(<code>git log -w -L</code>-like, renames followed): {}</p>',
                len(revs), "s" if len(revs) != 1 else "", links)


# --- the revision pages ----------------------------------------------------------------------------

class _Blobs:
    """Blob texts from one ``git cat-file --batch``."""

    def __init__(self, gdir: Path):
        self.p = subprocess.Popen(["git", f"--git-dir={gdir}", "cat-file", "--batch"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE)

    def get(self, blob: str) -> bytes:
        if set(blob) == {"0"}:
            return b""
        self.p.stdin.write(f"{blob}\n".encode())
        self.p.stdin.flush()
        header = self.p.stdout.readline().split()
        if len(header) != 3:
            return b""
        data = self.p.stdout.read(int(header[2]))
        self.p.stdout.read(1)
        return data

    def close(self) -> None:
        self.p.stdin.close()
        self.p.wait()


def _author(r: hist.Revision) -> HTML:
    return esc(r.author) + (html(" &lt;{}&gt;", r.email) if r.email and r.email != r.author else HTML(""))


def _upstream_url(sh: SiteHistory, r: hist.Revision) -> str:
    up = next(s.upstream for s in sh.stages if s.release == r.release)
    return f"{up}/commit/{r.upstream}"


def revision_page(site: Site, sh: SiteHistory, r: hist.Revision, blobs: _Blobs, cache: Cache) -> tuple[str, str]:
    page = page_of_revision(r)
    revs = sh.stitched.revisions
    k = sh.pos[r.id]
    nav = []
    if k > 0:
        p = revs[k - 1]
        nav.append(html('<a rel="prev" href="{}">← {} ({})</a>', relative(page, page_of_revision(p)), p.label, p.day))
    nav.append(html('<a href="{}">all revisions</a>', relative(page, INDEX)))
    if k + 1 < len(revs):
        n = revs[k + 1]
        nav.append(html('<a rel="next" href="{}">{} ({}) →</a>', relative(page, page_of_revision(n)), n.label, n.day))
    navhtml = html('<p class="rev-nav">{}</p>', join(nav, " · "))
    changes = sh.changes.get(r.id, [])
    pinned = [rel for rel, c in sh.stitched.pinned.items() if c == r.id]
    era = sh.eras[r.release]
    dl = [html("<dt>Date</dt><dd>{}</dd>", r.date),
          html("<dt>SVN revision</dt><dd>{}</dd>", r.svn if r.svn is not None else "—"),
          html("<dt>Author</dt><dd>{}</dd>", _author(r)),
          html('<dt>Upstream</dt><dd><a href="{}"><code>{}</code></a></dd>', _upstream_url(sh, r), r.upstream),
          html("<dt>Stitched commit</dt><dd><code>{}</code> (<code>python -m archive history</code>)</dd>", r.id),
          html('<dt>Era</dt><dd><span class="oe oe{}"></span> {}</dd>', era, _era_label(sh, era))]
    if len(r.parents) > 1:
        dl.append(html("<dt>Merge</dt><dd>of {} parents; the changes are those against the first</dd>", len(r.parents)))
    if pinned:
        dl.append(html("<dt>Pinned release</dt><dd>{}</dd>", join(
            (html('<a href="{}">{}</a>', relative(page, f"releases/{p}/index"), p) for p in pinned), ", ")))
    added = sum(c.added or 0 for c in changes)
    removed = sum(c.removed or 0 for c in changes)
    rows = []
    for c in changes:
        st = {"A": "added", "D": "deleted", "M": "changed"}.get(c.status[0], "renamed" if c.status[0] == "R" else c.status)
        name = esc(c.path) if c.old_path == c.path else html("{} → {}", c.old_path, c.path)
        stat = (html("binary") if c.added is None else
                html('<span class="ins">+{}</span> <span class="del">−{}</span>', c.added, c.removed))
        rows.append(html('<tr><td>{}</td><td class="path"><a href="#d-{}">{}</a></td><td class="num">{}</td></tr>',
                         st, c.path, name, stat))
    files = (html('<h2>Files changed ({}) <span class="diffstat"><span class="ins">+{}</span> '
                  '<span class="del">−{}</span></span></h2><div class="table-wrap"><table class="files">'
                  '<tbody>{}</tbody></table></div>', len(changes), added, removed, join(rows))
             if changes else html("<p>No files changed.</p>"))
    budget = PAGE_BUDGET
    diffs = []
    for c in changes:
        head = html('<h3 id="d-{}"><code>{}</code></h3>', c.path, c.path)
        if c.added is None:
            diffs.append(head + html("<p>Binary: not shown.</p>"))
            continue
        if c.status[0] in "AD":  # the whole file, one side empty: the source pages show files
            diffs.append(head + html("<p>{}: {:,} lines (not repeated here).</p>",
                                     "Added" if c.status[0] == "A" else "Deleted", c.added or c.removed))
            continue
        if budget <= 0:
            diffs.append(head + html("<p>Not shown: the page already holds as many diffs as it may (its size).</p>"))
            continue
        key = f"revdiff:1:{c.old_blob}:{c.new_blob}"

        def compute(c=c) -> tuple[str, int, int]:
            a = split_lines(blobs.get(c.old_blob).decode("utf-8", "replace"))
            b = split_lines(blobs.get(c.new_blob).decode("utf-8", "replace"))
            return _diff_rows(a, b, "a", "b")
        body_rows, _, _ = cache.memo(key, compute)
        body_rows = HTML(body_rows)  # the diff renderer's markup (a cached copy may be a plain str)
        if len(body_rows) > budget:
            diffs.append(head + html("<p>Not shown: {:,} kB of diff, more than the page has left.</p>",
                                     len(body_rows) // 1000))
            continue
        budget -= len(body_rows)
        diffs.append(head + html('<div class="diff-wrap"><table class="diff"><colgroup><col class="lno"><col class="t">'
                                 '<col class="lno"><col class="t"></colgroup><thead><tr><th colspan="2">{}'
                                 '</th><th colspan="2">{}</th></tr></thead><tbody>{}</tbody></table></div>',
                                 c.old_path if c.status[0] != "A" else "(none)",
                                 c.path if c.status[0] != "D" else "(deleted)", body_rows))
    short = r.summary if len(r.summary) <= 90 else r.summary[:88].rstrip() + "…"
    body = html('<h1><span class="oe oe{}"></span> {}: {}</h1>{}'
                '<dl class="provenance rev">{}</dl><h2>Message</h2><pre class="message">{}</pre>{}{}{}',
                era, r.label, short, navhtml, join(dl), r.message, files, join(diffs), navhtml)
    return f"{r.label}: {r.summary[:80]}", body


def _chart(sh: SiteHistory) -> bytes:
    """Lines added (up) and removed (down) per revision over time, one colour per era (SVG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from datetime import datetime
    colours = ["#5b7fa6", "#c2601d", "#1f7348", "#7a5195"]
    plt.rcParams["svg.hashsalt"] = "archive"
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for era, s in enumerate(sh.stages):
        revs = [r for r in sh.stitched.revisions if r.release == s.release]
        xs = [datetime.fromisoformat(r.date[:19]) for r in revs]
        add = [sum(c.added or 0 for c in sh.changes.get(r.id, [])) for r in revs]
        rem = [-sum(c.removed or 0 for c in sh.changes.get(r.id, [])) for r in revs]
        col = colours[era % len(colours)]
        ax.vlines(xs, 0, add, colors=col, linewidth=1.6, label=ERA_NAMES.get(s.release, s.release))
        ax.vlines(xs, rem, 0, colors=col, linewidth=1.6, alpha=.55)
    ax.set_yscale("symlog", linthresh=10)
    ax.axhline(0, color="#888", linewidth=.6)
    ax.set_ylabel("lines added (+) / removed (−)")
    ax.xaxis.set_major_locator(mdates.YearLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=.25)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    return buf.getvalue()


def index_page(site: Site, sh: SiteHistory | None, why: str) -> tuple[str, str]:
    page = INDEX
    if sh is None:
        return "Revisions", html('<h1>The public history, revision by revision</h1><p class="warning">Not shown: {}. '
                                 'The site otherwise compares the releases only (<a href="{}">versions</a>).</p>',
                                 HTML(why), relative(page, "versions/index"))
    rows = []
    for r in sh.stitched.revisions:
        ch = sh.changes.get(r.id, [])
        era = sh.eras[r.release]
        rows.append(html('<tr><td><span class="oe oe{}"></span> <a href="{}">'
                         '{}</a></td><td>{}</td><td>{}</td>'
                         '<td class="num"><span class="ins">+{}</span></td>'
                         '<td class="num"><span class="del">−{}</span></td>'
                         '<td>{}</td></tr>', era, relative(page, page_of_revision(r)), r.label, r.day, r.author,
                         sum(c.added or 0 for c in ch), sum(c.removed or 0 for c in ch), r.summary[:SUMMARY_CHARS]))
    stages = join(
        html('<li><span class="oe oe{}"></span> {}: {}</li>', i, s.release,
             html("one commit of the released tree. {}", s.why) if s.mode == hist.SNAPSHOT else
             html("{} commits, every ancestor of <code>{}</code> ({})",
                  sum(1 for r in sh.stitched.revisions if r.release == s.release), s.commit[:12], s.upstream))
        for i, s in enumerate(sh.stages))
    body = html('<h1>The public history, revision by revision</h1>'
                '<p>The histories of the pinned releases joined into one git repository '
                '(<code>python -m archive history --out DIR</code> writes it), {} commits '
                'in all, in the order they build on each other:</p><ul>{}</ul>'
                '<p>Each commit keeps its upstream id, SVN revision and original date in trailers, and holds the tree as '
                'it was, so <code>git blame</code> and <code>git log -L</code> run on it. Every line of every release file '
                'is credited to the revision that wrote it (each source page shows it; '
                '<code>provenance/&lt;release&gt;/&lt;path&gt;.json</code> has it); '
                '<a href="{}">what the 2012 release added</a> counts it per file and function.</p>'
                '<figure class="timeline"><img src="timeline.svg" alt="Lines added and removed by each revision, '
                '2011 to 2015, one colour per era"><figcaption>Lines added (up) and removed (down) by each revision '
                '(symmetric log scale). The 2012 release is one commit against r561, so it carries the whole of '
                'the unpublished year.</figcaption></figure>'
                '<div class="table-wrap"><table class="files revisions"><thead><tr><th>revision</th><th>date</th>'
                '<th>author</th><th>+</th><th>−</th><th>message</th></tr></thead><tbody>{}</tbody></table></div>',
                len(sh.stitched.revisions), stages, relative(page, NEW_2012), join(rows))
    return "Revisions", body


# --- what 2012 added ---------------------------------------------------------------------------------

def new_in_2012(site: Site, sh: SiteHistory | None, why: str, tags, chains) -> tuple[str, str]:  # noqa: ANN001
    page = NEW_2012
    title = "What the 2012 release added"
    if sh is None or SNAPSHOT_RELEASE not in sh.eras:
        return title, html('<h1>{}</h1><p class="warning">Not shown: {}.</p>', title,
                           HTML(why) if why else "no 2012 release in the history")
    from archive.sphinxext import idents
    from archive.sphinxext.versions import chains_by_file
    rel = SNAPSHOT_RELEASE
    mine = sh.eras[rel]
    later = [s.release for s in sh.stages[mine + 1:]]
    by_file = chains_by_file(chains)
    rows, fn_rows = [], []
    tot = Counter()
    wholly = 0
    nfuncs = 0
    for e in site.files(rel):
        ids = sh.prov.lines.get((rel, e.path))
        if not ids or site.is_binary(rel, e.path):
            continue
        eras = [sh.era_of(i) for i in ids]
        new = sum(1 for x in eras if x == mine)
        before = len(eras) - new
        tot["lines"] += len(eras)
        tot["new"] += new
        tot["files_new"] += new == len(eras)
        succ = None
        chain = by_file.get((rel, e.path))
        for lr in later:
            if chain is not None and lr in chain.members:
                lp = chain.members[lr]
                c = sh.counts(lr, lp)
                succ = html('<td><a href="{}">{}</a></td><td class="num">{:,}</td><td class="num">{:,}</td>',
                            relative(page, page_of_source(lr, lp)), lp, sum(c.values()), c.get(sh.eras[lr], 0))
                break
        if succ is None:
            succ = html("<td>—</td><td></td><td></td>")
        rows.append(html('<tr><td class="path"><a href="{}">{}</a></td>'
                         '<td class="num">{:,}</td><td class="num">{:,}</td><td class="num">{:,}</td>{}</tr>',
                         relative(page, page_of_source(rel, e.path)), e.path, len(eras), before, new, succ))
        if tags is None:
            continue
        lines = split_lines(site.text(rel, e.path) or "")
        for name, kind, scope, first, last in idents.outline(tags.get((rel, e.path), []), lines, e.path.endswith(".py")):
            if kind not in ("function", "kernel", "method"):
                continue
            span = eras[first - 1:last]
            n_new = sum(1 for x in span if x == mine)
            nfuncs += 1
            if n_new == 0:
                continue
            whole = n_new == len(span)
            wholly += whole
            t = f"{scope}::{name}" if scope else name
            fn_rows.append(html('<tr class="{}"><td class="path">{}</td><td><a href="{}"><code>{}</code></a></td>'
                                '<td>{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>',
                                "whole" if whole else "", e.path,
                                relative(page, page_of_source(rel, e.path), line_fragment(first, last)), t,
                                kind, len(span), n_new, "wholly new" if whole else ""))
    succ_head = html("<th>in {}</th><th>lines</th><th>new there</th>", later[0]) if later else HTML("")
    body = html('<h1>{}</h1><p>Every line of the 2012 release that no public revision before it held '
                '(r1–r561 of cuda-convnet), by <code>git blame -w -M -C -C</code> on the '
                '<a href="{}">joined history</a>: {:,} of its {:,} text lines '
                '({:.0%}); {} files are wholly new. Moves and copies '
                'between files are followed; whitespace changes are not counted as changes. The later columns give, for '
                'the same file in the next release, its lines and how many of them first appear there.</p>'
                '<h2>Per file</h2><div class="table-wrap"><table class="files"><thead><tr><th>file</th><th>lines</th>'
                '<th>public before</th><th>new in 2012</th>{}</tr></thead><tbody>{}</tbody></table></div>'
                '<h2>Per function</h2>', title, relative(page, INDEX), tot["new"], tot["lines"],
                tot["new"] / max(1, tot["lines"]), tot["files_new"], succ_head, join(rows))
    if tags is None:
        body += html("<p>Not listed: Universal Ctags is not installed (<code>apt-get install universal-ctags</code>).</p>")
    else:
        body += html('<p>{} of the {} functions, kernels and methods (Universal Ctags) hold lines new '
                     'in 2012; {} are wholly new.</p><div class="table-wrap"><table class="files fn-new"><thead><tr>'
                     '<th>file</th><th>function</th><th>kind</th><th>lines</th><th>new</th><th></th></tr></thead>'
                     '<tbody>{}</tbody></table></div>', len(fn_rows), nfuncs, wholly, join(fn_rows))
    return title, body


def pages(site: Site, sh: SiteHistory | None, why: str, cache: Cache, tags, chains):  # noqa: ANN001
    """(pagename, title, body) of the history pages."""
    yield INDEX, *index_page(site, sh, why)
    yield NEW_2012, *new_in_2012(site, sh, why, tags, chains)
    if sh is None:
        return
    blobs = _Blobs(sh.stitched.path)
    try:
        for r in sh.stitched.revisions:
            yield page_of_revision(r), *revision_page(site, sh, r, blobs, cache)
    finally:
        blobs.close()


def write_files(site: Site, sh: SiteHistory | None, outdir: Path, write) -> int:  # noqa: ANN001
    """The provenance JSON of every file and the timeline chart; ``write(path, bytes)``."""
    if sh is None:
        return 0
    n = 0
    for (release, path) in sorted(sh.prov.lines):
        if PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts:
            continue  # never outside provenance/ (the manifests' paths are checked when fetched)
        data = json.dumps(sh.prov.json_of(release, path), separators=(",", ":")).encode()
        write(outdir / "provenance" / release / f"{path}.json", data)
        n += 1
    write(outdir / "revisions" / "timeline.svg", _chart(sh))
    return n
