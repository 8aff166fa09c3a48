"""Sphinx module: the directive ``{compat-table} compat/alexnet-2012.json``, the table that
``python -m port.compat --json`` wrote on a release (committed under docs/), one row per def
file with links to its source page, its params files' source pages and, for ``layers/``, the
experiment pages of those params files.

It reads only the JSON (no release needed at build time).
"""
from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from archive.sphinxext.markup import HTML, esc, html, join
from archive.sphinxext.model import page_of_source, relative


STYLE = """<style>
.compat-table { border-collapse: collapse; font-size: 0.85em; width: 100%; }
.compat-wrap { overflow-x: auto; max-width: 100%; }
.compat-table th, .compat-table td { border-bottom: 1px solid color-mix(in srgb, currentColor 20%, transparent);
  padding: 0.2em 0.45em; text-align: left; vertical-align: top; }
.compat-table td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
</style>"""


def _experiment(params: str) -> str | None:
    """``layers/layer-params-145.cfg`` → ``145`` (the experiment pages cover ``layers/``)."""
    p = PurePosixPath(params)
    if p.parent.as_posix() != "layers" or not p.name.startswith("layer-params-"):
        return None
    return p.name[len("layer-params-"):-len(".cfg")]


class CompatTable(SphinxDirective):
    required_arguments = 1

    def run(self):
        path = Path(self.env.srcdir) / self.arguments[0]
        self.env.note_dependency(str(path))
        data = json.loads(path.read_text())
        release, doc = data["release"], self.env.docname
        src = lambda p: relative(doc, page_of_source(release, p))  # noqa: E731
        s = data["summary"]
        rows = []
        for r in data["rows"]:
            params = join(
                (html('<a href="{}">{}</a>', src(p), PurePosixPath(p).name)
                 + (html(' (<a href="{}">#{}</a>)', relative(doc, "experiments/" + e), e)
                    if (e := _experiment(p)) else "")
                 + (" ✓" if p == r["params_used"] else "")
                 for p in r["params"]), ", ") or "—"
            mark = lambda b: "yes" if b else "—"  # noqa: E731
            why = esc(r["reason"] or "") + join(html("<br><small>{}</small>", n) for n in r["notes"])
            rows.append(
                html('<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td>'
                     '<td class="num">{:.1f}</td><td class="num">{}</td><td>{}</td><td>{}</td></tr>',
                     src(r["cfg"]), r["cfg"], mark(r["parsed"]), mark(r["built"]), mark(r["ran"]),
                     r["seconds"], f'{r["num_params"]:,}' if r["num_params"] else "", params, why))
        page = (HTML(STYLE)
                + html('<p>{} def files: <strong>{} parsed, {} built, {} ran a step</strong> (batch {}, '
                       'synthetic data).</p><div class="compat-wrap"><table class="compat-table"><thead><tr>'
                       "<th>def file</th><th>parsed</th><th>built</th><th>ran</th><th>s</th><th>parameters</th>"
                       "<th>params files (✓ the one run)</th><th>reason / notes</th></tr></thead><tbody>{}"
                       "</tbody></table></div>",
                       s["def_files"], s["parsed"], s["built"], s["ran"], data["batch"], join(rows)))
        return [nodes.raw("", page, format="html")]


def setup(app):
    app.add_directive("compat-table", CompatTable)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
