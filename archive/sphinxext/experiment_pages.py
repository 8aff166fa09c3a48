"""The experiment history pages.

They are generated with the other pages (:mod:`pages` hands them to Sphinx, cached in the one
build cache, :class:`highlight.Cache`):

- ``experiments/index.html``: the timeline of the release's ``layers/`` experiments (number,
  dates, def file, what the diary says it is, the results it records), and
  ``experiments/<stem>.html`` for each: the diary, the network diagram drawn from the def file
  by the port's cfg parser (:mod:`diagrams`), the diff to the previous experiment (and to the one
  it says it is "like"), links to the source pages. All data comes from
  :mod:`archive.experiment_history`. (The ``{experiment-results}`` directive, :mod:`tables`,
  tabulates the same diaries in MyST pages.)

The experiments are read from ``archive_experiments_dir`` (default: ``layers/`` of the
``alexnet-2012`` release under ``archive_original_dir``); the CSS is ``static/archive.css``.
"""
from __future__ import annotations

import ast
import hashlib
import json
from functools import lru_cache
from pathlib import Path

import pygments
import sphinx
from sphinx.application import Sphinx

from archive import ORIGINAL, ROOT
from archive import experiment_history as ex
from archive.sphinxext import diagrams
from archive.sphinxext.highlight import Cache
from archive.sphinxext.markup import HTML, esc, html, join
from archive.sphinxext.model import line_fragment, page_of_source, relative

RELEASE = "alexnet-2012"


# ---- data, once per build ------------------------------------------------------------------

def resolve_layers_dir(app: Sphinx, config) -> None:
    """``config-inited``: ``archive_experiments_dir`` made absolute (from the conf dir); empty,
    it is ``<archive_original_dir>/alexnet-2012/layers``."""
    if config.archive_experiments_dir:
        path = (Path(app.confdir) / config.archive_experiments_dir).resolve()
    else:
        original = (Path(app.confdir) / config.archive_original_dir).resolve() \
            if config.archive_original_dir else ORIGINAL
        path = original / RELEASE / "layers"
    config.archive_experiments_dir = str(path)


def layers_dir(config) -> Path:
    return Path(config.archive_experiments_dir)


@lru_cache(maxsize=4)
def _timeline(path: str) -> ex.Timeline | None:
    p = Path(path)
    return ex.load_experiments(p) if p.is_dir() and any(p.iterdir()) else None


def timeline(config) -> ex.Timeline | None:
    return _timeline(str(layers_dir(config)))


def compat_rows(app) -> dict[str, dict] | None:
    """The compat table (``archive_compat_table``, relative to the source folder: what
    ``python -m port.compat --json`` wrote) by def file path, e.g. ``layers/layers-145.cfg``; None
    when there is none. What the pages say the port parses, builds and runs comes from it, so
    they and ``compat.html`` say the same."""
    name = app.config.archive_compat_table
    path = Path(app.srcdir) / name if name else None
    if path is None or not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("release") != RELEASE:
        return None
    return {r["cfg"]: r for r in data["rows"]}


def port_status(row: dict | None, parse_error: str | None) -> tuple[str, str]:
    """(badge, sentence) of what the port does with a def file: its compat-table row, else (no
    table) the pages' own parse."""
    if row is None:
        if parse_error:
            return "parse error", f"the port's cfg parser rejects it: {parse_error}"
        return "", "the port's cfg parser reads it (no compat table in this build)"
    if not row["parsed"]:
        return "parse error", f"the port's parser rejects it: {row['reason'] or 'no reason given'}"
    if not row["built"]:
        return "does not build", f"parsed; the port does not build it: {row['reason']}"
    if not row["ran"]:
        return "does not run", f"parsed and built; one step does not run: {row['reason']}"
    return "", "the port parses it, builds it and runs a training step on it"


@lru_cache(maxsize=128)
def _parsed(def_path: str) -> tuple[dict | None, str | None]:
    return ex.parse_def(Path(def_path))


def src_url(path: str, first: int | None = None, last: int | None = None) -> str:
    """The source page of a release file (lines ``first``-``last``), from an experiment page."""
    return relative("experiments/index", page_of_source(RELEASE, path),
                    line_fragment(first, last) if first is not None else "")


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def result_text(r: ex.Result | None) -> str:
    return f"{pct(r.top1)} / {pct(r.top5)}" if r else ""


# ---- the generated pages -------------------------------------------------------------------

def _diary_html(e: ex.Experiment) -> HTML:
    rows = []
    for b in e.diary.blocks:
        head = HTML("") if b.own else html('<p><span class="exp-badge">copied notes</span></p>')
        lines = join((html('<span class="ln">{:4d}</span>  {}', ln, t) for ln, t in b.lines), "\n")
        link = src_url(e.params_path, b.first_line, b.last_line)
        rows.append(html('{}<pre class="exp-diary">{}</pre><p><a href="{}">lines {}–{} on the source page</a></p>',
                         head, lines, link, b.first_line, b.last_line))
    return join(rows, "\n") or html("<p>No diary comments.</p>")


def _results_table(e: ex.Experiment) -> HTML:
    rs = e.diary.results
    if not rs:
        return html("<p>The diary records no error rates for this experiment.</p>")
    out = [html('<table class="exp-table"><thead><tr><th>line</th><th>label in the diary</th>'
                "<th>cost</th><th>top-1 %</th><th>top-5 %</th></tr></thead><tbody>")]
    for r in rs:
        out.append(html('<tr><td class="num"><a href="{}">{}</a></td><td>{}</td><td class="num">{}</td>'
                        '<td class="num">{}</td><td class="num">{}</td></tr>',
                        src_url(e.params_path, r.line), r.line, r.label or "—", "" if r.cost is None else r.cost,
                        pct(r.top1), pct(r.top5)))
    out.append(html("</tbody></table>"))
    return join(out, "\n")


def _diagram_html(e: ex.Experiment, base: Path, row: dict | None = None) -> HTML:
    """The net drawn from the def file's layers (parsed as the compat table parses it, without
    initial weights, so a net whose weights the port cannot load is still drawn, and says so)."""
    if not e.def_path:
        return html('<p class="exp-error">No diagram: {}.</p>', e.pairing)
    layers, err = _parsed(str(base / e.def_path))
    if err:
        return html('<p class="exp-error">The port\'s cfg parser rejects <code>{}</code>: {}</p>', e.def_path, err)
    try:
        svg = diagrams.diagram_svg(layers, title=f"layers-{e.def_stem}")
    except ValueError as err:
        return html('<p class="exp-error">No diagram for <code>{}</code>: {}</p>', e.def_path, str(err))
    note = (html('<p class="exp-note">Drawn from the layers alone: the port does not parse the file with its '
                 'weights ({}).</p>', row["reason"]) if row is not None and not row["parsed"] else HTML(""))
    return html('{}<div class="exp-diagram-wrap">{}</div>', note, svg)


def _diff_html(app, a: Path, b: Path, a_name: str, b_name: str, settings_only: bool) -> HTML:
    d = ex.diff_files(a, b, a_name, b_name, settings_only=settings_only)
    if not d:
        return html("<p>No difference.</p>")
    return HTML(app.builder.highlighter.highlight_block(d, "diff"))  # Pygments' markup, text escaped


def _experiment_body(app, t: ex.Timeline, e: ex.Experiment, base: Path, compat: dict | None = None) -> HTML:
    parts = [html("<h1>Experiment #{}</h1>", e.stem)]
    if e.stem in ex.MARKED:
        parts.append(html('<p><span class="exp-badge">{}</span></p>', ex.MARKED[e.stem]))
    title = e.diary.title
    dates = e.diary.dates
    parts.append(html("<dl>"))
    if title:
        parts.append(html('<dt>The diary says</dt><dd>“{}” (<a href="{}">line {}</a>)</dd>',
                          title[1], src_url(e.params_path, title[0]), title[0]))
    parts.append(html('<dt>Params file</dt><dd><a href="{}"><code>{}</code></a> ({} lines)</dd>',
                      src_url(e.params_path), e.params_path, e.params_lines))
    if e.def_path:
        parts.append(html('<dt>Def file</dt><dd><a href="{}"><code>{}</code></a> — {}</dd>',
                          src_url(e.def_path), e.def_path, e.pairing))
    else:
        parts.append(html("<dt>Def file</dt><dd>none in the release — {}</dd>", e.pairing))
    if e.def_path:
        _, sentence = port_status(None if compat is None else compat.get(e.def_path),
                                  _parsed(str(base / e.def_path))[1])
        parts.append(html('<dt>The port</dt><dd class="exp-port">{}{}</dd>', sentence,
                          html(' (<a href="../compat.html">the compat table</a>)') if compat is not None else ""))
    others = [d for d in e.named_defs if d != e.def_stem]
    if others:
        parts.append(html("<dt>Other def files the diary names</dt><dd>{}</dd>", join(
            (html('<a href="{}"><code>layers-{}.cfg</code></a>', src_url("layers/layers-" + d + ".cfg"), d)
             for d in others), ", ")))
    if dates:
        parts.append(html('<dt>Dates</dt><dd>started {}{} ({} <code>ConvNet__</code> paths; '
                          '<span class="exp-date-rule">{}</span>)</dd>', dates[0],
                          f", last checkpoint {dates[1]}" if dates[1] != dates[0] else "",
                          len(e.diary.checkpoints), ex.DATE_RULE))
    parent = e.diary.parent
    if parent:
        pe = t.get(parent)
        parts.append(html("<dt>Derived from</dt><dd>{}</dd>",
                          html('<a href="{}.html">#{}</a>', parent, parent) if pe
                          else f"#{parent} (not in the release)"))
    prev, nxt = t.previous(e.stem), None
    stems = [x.stem for x in t.experiments]
    i = stems.index(e.stem)
    if i + 1 < len(stems):
        nxt = t.experiments[i + 1]
    parts.append(html('<dt>Timeline</dt><dd>{}<a href="index.html">all experiments</a>{}</dd>',
                      html('← <a href="{}.html">#{}</a> · ', prev.stem, prev.stem) if prev else "",
                      html(' · <a href="{}.html">#{}</a> →', nxt.stem, nxt.stem) if nxt else ""))
    parts.append(html("</dl>"))
    parts.append(html("<h2>Results recorded in the diary</h2>"))
    parts.append(html("<p>cost = the logreg cost in nats per case; top-1 and top-5 are error rates. "
                      "The labels are the author's (validation or test set, single or multiview).</p>"))
    parts.append(_results_table(e))
    parts.append(html("<h2>Network</h2>"))
    parts.append(_diagram_html(e, base, None if compat is None or not e.def_path else compat.get(e.def_path)))
    parts.append(html("<h2>Diary</h2>"))
    parts.append(_diary_html(e))
    for other, why in ((prev, "the previous experiment"),
                       (t.get(parent) if parent else None, "the experiment it says it is like")):
        if other is None or (why.startswith("the experiment it") and prev and other.stem == prev.stem):
            continue
        parts.append(html("<h2>Diff to #{} ({})</h2>", other.stem, why))
        parts.append(html("<h3>Settings (<code>layer-params</code>, comments left out)</h3>"))
        parts.append(_diff_html(app, base / other.params_path, base / e.params_path,
                                other.params_path, e.params_path, settings_only=True))
        if e.def_path and other.def_path and e.def_path != other.def_path:
            parts.append(html("<h3>Architecture (<code>layers</code>)</h3>"))
            la, erra = _parsed(str(base / other.def_path))
            lb, errb = _parsed(str(base / e.def_path))
            if la is not None and lb is not None:
                changes = ex.structural_diff(la, lb)
                parts.append(html("<p>In layer terms (from the port's parse of both def files):</p><ul>{}{}</ul>",
                                  join(html("<li><code>{}</code></li>", c) for c in changes[:60]),
                                  html("<li>… and {} more</li>", len(changes) - 60) if len(changes) > 60 else "")
                             if changes else html("<p>The same layers, with the same keys.</p>"))
            parts.append(_diff_html(app, base / other.def_path, base / e.def_path,
                                    other.def_path, e.def_path, settings_only=False))
        elif e.def_path and e.def_path == (other.def_path or ""):
            parts.append(html("<p>Both use <code>{}</code>.</p>", e.def_path))
    return join(parts, "\n")


def _index_body(t: ex.Timeline, base: Path, compat: dict | None = None) -> HTML:
    parsed = {s: _parsed(str(base / "layers" / f"layers-{s}.cfg")) for s in t.def_stems}
    status = {s: port_status(None if compat is None else compat.get(f"layers/layers-{s}.cfg"), parsed[s][1])
              for s in t.def_stems}
    n_ok = sum(1 for s in t.def_stems if status[s][0] != "parse error")
    n_ran = sum(1 for s in t.def_stems if not status[s][0])
    paired = sum(1 for e in t.experiments if e.def_path)
    with_results = sum(1 for e in t.experiments if e.diary.results)
    parts = [html("<h1>The experiments, 2012-06 to 2013-03</h1>"),
             html("<p>The release's <code>layers/</code> folder holds {} params files "
                  '(<code>layer-params-*.cfg</code>) and {} def files (<code>layers-*.cfg</code>). '
                  "Each params file ends with the author's diary in comments. {} params files are paired "
                  "with a def file (the diary's own “uses def file N”, else the same stem, else the stem without "
                  'its suffixes); {} record error rates. The experiment numbers are roughly chronological. '
                  '<span class="exp-date-rule">Dates: {}.</span> {}</p>',
                  len(t.experiments), len(t.def_stems), paired, with_results, ex.DATE_RULE,
                  html("The port parses {} of the {} def files and runs a training step on {} "
                       '(<a href="../compat.html">the compat table</a>, which these pages read); '
                       "the others are marked, with the reason on their pages.",
                       n_ok, len(t.def_stems), n_ran) if compat is not None else
                  html("The port's cfg parser reads {} of the {} def files; the others are shown "
                       "with the parser's one-line error on their pages.", n_ok, len(t.def_stems))),
             html("<p>Rates are top-1 / top-5 error in %, as the diary records them (the label says which "
                  "set and whether multiview). Marked rows are the NIPS 2012 network and the runs that "
                  "reproduce the paper's ablations.</p>")]
    parts.append(html('<div class="exp-diagram-wrap">{}</div>', diagrams.timeline_svg(t.experiments, ex.MARKED)))
    chart = diagrams.results_svg(t.experiments, ex.MARKED)
    if chart:
        parts.append(html('<h2 id="results-over-time">Results over time</h2><p>Each experiment\'s first own recorded '
                          "result (top-1 error filled, top-5 hollow, in %) at its start date; the label in the "
                          "table says whether it is validation or test, single patch or multiview, so points "
                          "are not all alike. Click a column head of the table to sort it.</p>"
                          '<div class="exp-diagram-wrap">{}</div>', chart))
    if t.unused_defs:
        parts.append(html("<p>Def files that no params file pairs with or names: {}.</p>", join(
            (html('<a href="{}"><code>layers-{}.cfg</code></a>', src_url("layers/layers-" + s + ".cfg"), s)
             for s in t.unused_defs), ", ")))
    parts.append(html('<div class="exp-table-wrap"><table class="exp-table sortable"><thead><tr>'
                      '<th data-type="num">#</th><th>started</th><th>def file</th><th>the diary says</th>'
                      '<th>result</th><th data-type="num">top-1 %</th><th data-type="num">top-5 %</th></tr></thead>'
                      "<tbody>"))
    for e in t.experiments:
        h = e.diary.headline
        title = e.diary.title[1] if e.diary.title else ""
        mark = ex.MARKED.get(e.stem)
        dfile = (html('<a href="{}">{}</a>', src_url(e.def_path), e.def_stem) if e.def_path
                 else esc(f"— (#{e.missing_def} missing)") if e.missing_def else esc("—"))
        badge = status.get(e.def_stem, ("", ""))[0] if e.def_stem else ""
        if badge:
            dfile += html(' <span class="exp-badge" title="{}">{}</span>', status[e.def_stem][1], badge)
        num = e.number if e.number is not None else 10**6
        parts.append(html('<tr{}><td class="stem" data-sort="{}"><a href="{}.html">{}</a></td><td class="num">{}</td>'
                          '<td>{}</td><td>{}{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td></tr>',
                          html(' class="exp-marked"') if mark else "", f"{num:07d}{e.stem}", e.stem, e.stem,
                          e.diary.start_date or "", dfile, title,
                          html(' <span class="exp-badge">{}</span>', mark) if mark else "",
                          h.label if h else "", pct(h.top1) if h else "", pct(h.top5) if h else ""))
    parts.append(html("</tbody></table></div>"))
    failures = [(s, status[s][1]) for s in t.def_stems if status[s][0]]
    if failures:
        parts.append(html("<h2>Def files the port does not parse, build or run</h2><ul>"))
        parts.extend(html("<li><code>layers-{}.cfg</code>: {}</li>", s, why) for s, why in failures)
        parts.append(html("</ul>"))
    return join(parts, "\n")


def _pages(app, t: ex.Timeline, base: Path) -> list[tuple[str, str, str]]:
    """(pagename, title, body) of the index and of every experiment page."""
    compat = compat_rows(app)
    pages = [("experiments/index", "Experiments", _index_body(t, base, compat))]
    pages += [(f"experiments/{e.stem}", f"Experiment #{e.stem}", _experiment_body(app, t, e, base, compat))
              for e in t.experiments]
    return pages


def _parser_sources() -> list[Path]:
    """The files of the port's cfg parser: ``port/layer_def.py`` (the data-size guess that the
    pages parse with) and every ``port`` module it imports, directly or through others, read off
    their import statements (so the key does not depend on what this process has imported, and
    an edit of the driver, which the parser does not import, leaves the pages cached). The whole
    package when a file cannot be read as Python (the pages then say why they cannot parse)."""
    port_dir = ROOT / "port"
    seen: set[Path] = set()
    todo = ["port.layer_def"]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # a module's packages run their __init__ first
            base = port_dir.parent.joinpath(*parts[:i])
            f = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
            if not f.is_file() or f in seen:
                continue
            seen.add(f)
            try:
                tree = ast.parse(f.read_bytes(), filename=str(f))
            except (OSError, SyntaxError, ValueError):
                return sorted(port_dir.rglob("*.py"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    todo += [a.name for a in node.names if a.name.split(".")[0] == "port"]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level \
                        and node.module.split(".")[0] == "port":
                    todo += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return sorted(seen)


def _pages_key(app, layers: Path) -> str:
    """A hash of everything the pages are computed from: the layers folder's files, this module,
    the drawings (:mod:`diagrams`), :mod:`archive.experiment_history`, the site's URL scheme
    (:mod:`model`), the escaping (:mod:`markup`), the port's cfg parser (:func:`_parser_sources`)
    and the diffs' highlighter."""
    h = hashlib.sha256(f"{sphinx.__version__}:{pygments.__version__}:"
                       f"{app.config.highlight_options!r}:{layers}".encode())
    here = Path(__file__)
    sources = [here, here.with_name("model.py"), here.with_name("markup.py"), Path(diagrams.__file__),
               Path(ex.__file__), *_parser_sources()]
    table = Path(app.srcdir) / app.config.archive_compat_table if app.config.archive_compat_table else None
    if table is not None and table.is_file():
        sources.append(table)
    for f in [*sorted(p for p in layers.iterdir() if p.is_file()), *sources]:
        h.update(f"{f}\0".encode() + hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def experiment_pages(app: Sphinx, cache: Cache) -> list[tuple[str, str, str]]:
    """(pagename, title, body) of every experiments page, computed once per change of their
    inputs (:func:`_pages_key`) and kept in the build cache: parsing every def file and diffing
    every experiment with its predecessor would otherwise take seconds on every build."""
    t = timeline(app.config)
    if t is None:
        body = html("<h1>The experiments</h1><p>The 2012 release is not fetched "
                    "(<code>original/alexnet-2012</code> is empty): run <code>make original</code>.</p>")
        return [("experiments/index", "Experiments", body)]
    layers = layers_dir(app.config)
    return cache.memo(f"experiments:{_pages_key(app, layers)}", lambda: _pages(app, t, layers.parent))


