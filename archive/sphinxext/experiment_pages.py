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
from functools import lru_cache
from html import escape
from pathlib import Path

import pygments
import sphinx
from sphinx.application import Sphinx

from archive import ORIGINAL, ROOT
from archive import experiment_history as ex
from archive.sphinxext import diagrams
from archive.sphinxext.highlight import Cache
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

def _diary_html(e: ex.Experiment) -> str:
    rows = []
    for b in e.diary.blocks:
        head = "" if b.own else '<p><span class="exp-badge">copied notes</span></p>'
        lines = "\n".join(f'<span class="ln">{ln:4d}</span>  {escape(t)}' for ln, t in b.lines)
        link = src_url(e.params_path, b.first_line, b.last_line)
        rows.append(f'{head}<pre class="exp-diary">{lines}</pre>'
                    f'<p><a href="{link}">lines {b.first_line}–{b.last_line} on the source page</a></p>')
    return "\n".join(rows) or "<p>No diary comments.</p>"


def _results_table(e: ex.Experiment) -> str:
    rs = e.diary.results
    if not rs:
        return "<p>The diary records no error rates for this experiment.</p>"
    out = ['<table class="exp-table"><thead><tr><th>line</th><th>label in the diary</th>'
           '<th>cost</th><th>top-1 %</th><th>top-5 %</th></tr></thead><tbody>']
    for r in rs:
        out.append(f'<tr><td class="num"><a href="{src_url(e.params_path, r.line)}">{r.line}</a></td>'
                   f'<td>{escape(r.label or "—")}</td>'
                   f'<td class="num">{"" if r.cost is None else r.cost}</td>'
                   f'<td class="num">{pct(r.top1)}</td><td class="num">{pct(r.top5)}</td></tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def _diagram_html(e: ex.Experiment, base: Path) -> str:
    if not e.def_path:
        return f"<p class=\"exp-error\">No diagram: {escape(e.pairing)}.</p>"
    layers, err = _parsed(str(base / e.def_path))
    if err:
        return (f'<p class="exp-error">The port\'s cfg parser rejects '
                f'<code>{escape(e.def_path)}</code>: {escape(err)}</p>')
    try:
        svg = diagrams.diagram_svg(layers, title=f"layers-{e.def_stem}")
    except ValueError as err:
        return f'<p class="exp-error">No diagram for <code>{escape(e.def_path)}</code>: {escape(str(err))}</p>'
    return f'<div class="exp-diagram-wrap">{svg}</div>'


def _diff_html(app, a: Path, b: Path, a_name: str, b_name: str, settings_only: bool) -> str:
    d = ex.diff_files(a, b, a_name, b_name, settings_only=settings_only)
    if not d:
        return "<p>No difference.</p>"
    return app.builder.highlighter.highlight_block(d, "diff")


def _experiment_body(app, t: ex.Timeline, e: ex.Experiment, base: Path) -> str:
    parts = [f"<h1>Experiment #{escape(e.stem)}</h1>"]
    if e.stem in ex.MARKED:
        parts.append(f'<p><span class="exp-badge">{escape(ex.MARKED[e.stem])}</span></p>')
    title = e.diary.title
    dates = e.diary.dates
    parts.append("<dl>")
    if title:
        parts.append(f"<dt>The diary says</dt><dd>“{escape(title[1])}” "
                     f'(<a href="{src_url(e.params_path, title[0])}">line {title[0]}</a>)</dd>')
    parts.append(f'<dt>Params file</dt><dd><a href="{src_url(e.params_path)}"><code>{escape(e.params_path)}'
                 f"</code></a> ({e.params_lines} lines)</dd>")
    if e.def_path:
        parts.append(f'<dt>Def file</dt><dd><a href="{src_url(e.def_path)}"><code>{escape(e.def_path)}</code></a>'
                     f" — {escape(e.pairing)}</dd>")
    else:
        parts.append(f"<dt>Def file</dt><dd>none in the release — {escape(e.pairing)}</dd>")
    others = [d for d in e.named_defs if d != e.def_stem]
    if others:
        parts.append("<dt>Other def files the diary names</dt><dd>" + ", ".join(
            f'<a href="{src_url("layers/layers-" + d + ".cfg")}"><code>layers-{escape(d)}.cfg</code></a>'
            for d in others) + "</dd>")
    if dates:
        parts.append(f"<dt>Checkpoint dates</dt><dd>{dates[0]}" + (f" to {dates[1]}" if dates[1] != dates[0] else "")
                     + f" ({len(e.diary.checkpoints)} <code>ConvNet__</code> paths)</dd>")
    parent = e.diary.parent
    if parent:
        pe = t.get(parent)
        parts.append("<dt>Derived from</dt><dd>" + (f'<a href="{escape(parent)}.html">#{escape(parent)}</a>' if pe
                     else f"#{escape(parent)} (not in the release)") + "</dd>")
    prev, nxt = t.previous(e.stem), None
    stems = [x.stem for x in t.experiments]
    i = stems.index(e.stem)
    if i + 1 < len(stems):
        nxt = t.experiments[i + 1]
    parts.append("<dt>Timeline</dt><dd>" + (f'← <a href="{escape(prev.stem)}.html">#{escape(prev.stem)}</a> · ' if prev else "")
                 + '<a href="index.html">all experiments</a>'
                 + (f' · <a href="{escape(nxt.stem)}.html">#{escape(nxt.stem)}</a> →' if nxt else "") + "</dd>")
    parts.append("</dl>")
    parts.append("<h2>Results recorded in the diary</h2>")
    parts.append("<p>cost = the logreg cost in nats per case; top-1 and top-5 are error rates. "
                 "The labels are the author's (validation or test set, single or multiview).</p>")
    parts.append(_results_table(e))
    parts.append("<h2>Network</h2>")
    parts.append(_diagram_html(e, base))
    parts.append("<h2>Diary</h2>")
    parts.append(_diary_html(e))
    for other, why in ((prev, "the previous experiment"),
                       (t.get(parent) if parent else None, "the experiment it says it is like")):
        if other is None or (why.startswith("the experiment it") and prev and other.stem == prev.stem):
            continue
        parts.append(f'<h2>Diff to #{escape(other.stem)} ({why})</h2>')
        parts.append("<h3>Settings (<code>layer-params</code>, comments left out)</h3>")
        parts.append(_diff_html(app, base / other.params_path, base / e.params_path,
                                other.params_path, e.params_path, settings_only=True))
        if e.def_path and other.def_path and e.def_path != other.def_path:
            parts.append("<h3>Architecture (<code>layers</code>)</h3>")
            la, erra = _parsed(str(base / other.def_path))
            lb, errb = _parsed(str(base / e.def_path))
            if la is not None and lb is not None:
                changes = ex.structural_diff(la, lb)
                parts.append("<p>In layer terms (from the port's parse of both def files):</p><ul>"
                             + "".join(f"<li><code>{escape(c)}</code></li>" for c in changes[:60])
                             + (f"<li>… and {len(changes) - 60} more</li>" if len(changes) > 60 else "")
                             + "</ul>" if changes else "<p>The same layers, with the same keys.</p>")
            parts.append(_diff_html(app, base / other.def_path, base / e.def_path,
                                    other.def_path, e.def_path, settings_only=False))
        elif e.def_path and e.def_path == (other.def_path or ""):
            parts.append(f"<p>Both use <code>{escape(e.def_path)}</code>.</p>")
    return "\n".join(parts)


def _index_body(t: ex.Timeline, base: Path) -> str:
    parsed = {s: _parsed(str(base / "layers" / f"layers-{s}.cfg")) for s in t.def_stems}
    n_ok = sum(1 for v in parsed.values() if v[1] is None)
    paired = sum(1 for e in t.experiments if e.def_path)
    with_results = sum(1 for e in t.experiments if e.diary.results)
    parts = ["<h1>The experiments, 2012-06 to 2013-03</h1>",
             f"<p>The release's <code>layers/</code> folder holds {len(t.experiments)} params files "
             f"(<code>layer-params-*.cfg</code>) and {len(t.def_stems)} def files (<code>layers-*.cfg</code>). "
             f"Each params file ends with the author's diary in comments. {paired} params files are paired "
             f"with a def file (the diary's own “uses def file N”, else the same stem, else the stem without "
             f"its suffixes); {with_results} record error rates. The experiment numbers are roughly chronological: "
             f"the dates come from the <code>ConvNet__&lt;date&gt;</code> checkpoint paths in the diaries. "
             f"The port's cfg parser reads {n_ok} of the {len(t.def_stems)} def files; the others are shown "
             f"with the parser's one-line error on their pages.</p>",
             "<p>Rates are top-1 / top-5 error in %, as the diary records them (the label says which "
             "set and whether multiview). Marked rows are the NIPS 2012 network and the runs that "
             "reproduce the paper's ablations.</p>"]
    parts.append('<div class="exp-diagram-wrap">' + diagrams.timeline_svg(t.experiments, ex.MARKED) + "</div>")
    if t.unused_defs:
        parts.append("<p>Def files that no params file pairs with or names: " + ", ".join(
            f'<a href="{src_url("layers/layers-" + s + ".cfg")}"><code>layers-{escape(s)}.cfg</code></a>'
            for s in t.unused_defs) + ".</p>")
    parts.append('<div class="exp-table-wrap"><table class="exp-table"><thead><tr><th>#</th><th>started</th><th>def file</th>'
                 "<th>the diary says</th><th>result</th><th>top-1 / top-5 %</th></tr></thead><tbody>")
    for e in t.experiments:
        h = e.diary.headline
        title = e.diary.title[1] if e.diary.title else ""
        mark = ex.MARKED.get(e.stem)
        cls = ' class="exp-marked"' if mark else ""
        dfile = (f'<a href="{src_url(e.def_path)}">{escape(e.def_stem)}</a>' if e.def_path
                 else f"— (#{escape(e.missing_def)} missing)" if e.missing_def else "—")
        if e.def_stem and parsed.get(e.def_stem, (None, None))[1]:
            dfile += ' <span class="exp-badge" title="the port\'s parser rejects it">parse error</span>'
        parts.append(f'<tr{cls}><td class="stem"><a href="{escape(e.stem)}.html">{escape(e.stem)}</a></td>'
                     f'<td class="num">{e.diary.start_date or ""}</td><td>{dfile}</td>'
                     f"<td>{escape(title)}" + (f' <span class="exp-badge">{escape(mark)}</span>' if mark else "")
                     + f"</td><td>{escape(h.label) if h else ''}</td>"
                     f'<td class="num">{result_text(h)}</td></tr>')
    parts.append("</tbody></table></div>")
    failures = [(s, v[1]) for s, v in parsed.items() if v[1]]
    if failures:
        parts.append("<h2>Def files the port's parser rejects</h2><ul>")
        parts.extend(f"<li><code>layers-{escape(s)}.cfg</code>: {escape(err)}</li>" for s, err in failures)
        parts.append("</ul>")
    return "\n".join(parts)


def _pages(app, t: ex.Timeline, base: Path) -> list[tuple[str, str, str]]:
    """(pagename, title, body) of the index and of every experiment page."""
    pages = [("experiments/index", "Experiments", _index_body(t, base))]
    pages += [(f"experiments/{e.stem}", f"Experiment #{e.stem}", _experiment_body(app, t, e, base))
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
    (:mod:`model`), the port's cfg parser (:func:`_parser_sources`) and the diffs' highlighter."""
    h = hashlib.sha256(f"{sphinx.__version__}:{pygments.__version__}:"
                       f"{app.config.highlight_options!r}:{layers}".encode())
    here = Path(__file__)
    sources = [here, here.with_name("model.py"), Path(diagrams.__file__), Path(ex.__file__),
               *_parser_sources()]
    for f in [*sorted(p for p in layers.iterdir() if p.is_file()), *sources]:
        h.update(f"{f}\0".encode() + hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def experiment_pages(app: Sphinx, cache: Cache) -> list[tuple[str, str, str]]:
    """(pagename, title, body) of every experiments page, computed once per change of their
    inputs (:func:`_pages_key`) and kept in the build cache: parsing every def file and diffing
    every experiment with its predecessor would otherwise take seconds on every build."""
    t = timeline(app.config)
    if t is None:
        body = ("<h1>The experiments</h1><p>The 2012 release is not fetched "
                "(<code>original/alexnet-2012</code> is empty): run <code>make original</code>.</p>")
        return [("experiments/index", "Experiments", body)]
    layers = layers_dir(app.config)
    return cache.memo(f"experiments:{_pages_key(app, layers)}", lambda: _pages(app, t, layers.parent))


