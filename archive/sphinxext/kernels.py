"""Sphinx module: the directives ``{kernel-table} kernels/cuda13.json`` and ``{kernel-probes}
kernels/cuda13.json``, the tables of ``python -m archive.kernels --out`` (committed under
docs/): the released kernels compiled with today's nvcc, per file with totals and per kernel
(registers, spills, shared and constant memory from ``ptxas -v``), and the probes of what no
longer compiles, each with the compiler's first error line linked to the line it names.

It reads only the JSON (no compiler and no release needed at build time).
"""
from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from archive.sphinxext.model import line_fragment, page_of_source, relative

STYLE = """<style>
.kernel-table { border-collapse: collapse; font-size: 0.82em; width: 100%; }
.kernel-wrap { overflow-x: auto; max-width: 100%; }
.kernel-table th, .kernel-table td {
  border-bottom: 1px solid color-mix(in srgb, currentColor 20%, transparent);
  padding: 0.15em 0.4em; text-align: left; vertical-align: top; }
.kernel-table td.num, .kernel-table th.num {
  text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.kernel-table tr.total td {
  font-weight: bold; border-top: 2px solid color-mix(in srgb, currentColor 40%, transparent); }
.kernel-table code { font-size: 0.95em; }
.kernel-table th { white-space: nowrap; }
.kernel-table td.src { min-width: 17em; }
details.kernel-file { margin: 0.4em 0; }
details.kernel-file > summary { cursor: pointer; }
</style>"""

_WHERE = re.compile(r"^(?P<src>[\w.+-]+/[^()\s]+)\((?P<line>\d+)\)(?P<rest>:.*)$")


def _load(directive: SphinxDirective) -> dict:
    path = Path(directive.env.srcdir) / directive.arguments[0]
    directive.env.note_dependency(str(path))
    return json.loads(path.read_text())


def _src_link(doc: str, release: str, path: str, line: int | None = None) -> str:
    frag = line_fragment(line) if line else ""
    label = f"{release}/{path}" + (f":{line}" if line else "")
    return (f'<a href="{escape(relative(doc, page_of_source(release, path), frag))}">'
            f"<code>{escape(label).replace('/', '/<wbr>')}</code></a>")


def _short(demangled: str) -> str:
    """``void f<2, true>(float*, int)`` → ``f<2, true>``."""
    from archive.kernels import short_name
    return short_name(demangled)


def _stats(kernels: list[dict], arch: str) -> dict | None:
    rows = [k[arch] for k in kernels if arch in k]
    if not rows:
        return None
    regs = [r["registers"] for r in rows]
    return {"n": len(rows), "reg_min": min(regs), "reg_max": max(regs),
            "spill": sum(r["spill_stores"] + r["spill_loads"] for r in rows),
            "spilling": sum(1 for r in rows if r["spill_stores"] + r["spill_loads"]),
            "smem": max(r["smem"] for r in rows), "stack": max(r["stack"] for r in rows)}


def _stat_cells(s: dict | None) -> str:
    if s is None:
        return '<td class="num">—</td>' * 5
    return (f'<td class="num">{s["n"]}</td><td class="num">{s["reg_min"]}–{s["reg_max"]}</td>'
            f'<td class="num">{s["spill"]:,}</td><td class="num">{s["smem"]:,}</td>'
            f'<td class="num">{s["stack"]:,}</td>')


def _arch_rows(label: str, kernels: list[dict], arches: list[str], css: str = "") -> str:
    """One row per architecture, the label spanning them."""
    rows = []
    for i, a in enumerate(arches):
        first = f'<td class="src" rowspan="{len(arches)}">{label}</td>' if i == 0 else ""
        rows.append(f"<tr{css}>{first}<td>{escape(a)}</td>{_stat_cells(_stats(kernels, a))}</tr>")
    return "".join(rows)


class KernelTable(SphinxDirective):
    """The per-file summary with totals, then one folded table of kernels per file."""
    required_arguments = 1

    def run(self):
        data, doc = _load(self), self.env.docname
        arches = data["arches"]
        head = ("<th>file</th><th>arch</th><th class=num>kernels</th><th class=num>registers</th>"
                "<th class=num>spills (B)</th><th class=num>max smem (B)</th>"
                "<th class=num>max stack (B)</th>")
        rows, every = [], []
        for u in data["units"]:
            link = _src_link(doc, u["release"], u["path"])
            if not u["compiled"]:
                why = escape(u["diagnostics"][0]) if u["diagnostics"] else "failed"
                rows.append(f'<tr><td class="src">{link}</td><td colspan="6">does not compile: '
                            f"{why}</td></tr>")
                continue
            every += u["kernels"]
            rows.append(_arch_rows(link, u["kernels"], arches))
        rows.append(_arch_rows("all files", every, arches, ' class="total"'))
        c = data["compiler"]
        html = [STYLE,
                f"<p>nvcc {escape(c['nvcc'])}, for {escape(', '.join(arches))}; "
                f"flags <code>{escape(' '.join(data['flags']))}</code>; shims "
                + ", ".join(f"<code>{escape(s)}</code>" for s in data["shims"])
                + f"; names demangled by {escape(c['demangler'])}. Spills are the bytes of "
                "spill stores and loads summed over the file's kernels.</p>",
                '<div class="kernel-wrap"><table class="kernel-table"><thead>'
                f"<tr>{head}</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"]
        for u in data["units"]:
            if u["compiled"]:
                html.append(self._file(u, arches, doc))
        return [nodes.raw("", "\n".join(html), format="html")]

    @staticmethod
    def _file(u: dict, arches: list[str], doc: str) -> str:
        # a cmem column only for the architectures where ptxas reported constant memory
        cm = {a: any(k.get(a, {}).get("cmem") for k in u["kernels"]) for a in arches}
        width = {a: 4 if cm[a] else 3 for a in arches}
        head = "".join(f'<th colspan="{width[a]}">{escape(a)}</th>' for a in arches)
        sub = "".join("<th class=num>reg</th><th class=num>spill st/ld (B)</th>"
                      "<th class=num>smem (B)</th>"
                      + ("<th class=num>cmem (B)</th>" if cm[a] else "") for a in arches)
        rows = []
        for k in u["kernels"]:
            cells = []
            for a in arches:
                r = k.get(a)
                if r is None:
                    cells.append('<td class="num">—</td>' * width[a])
                    continue
                cells.append(f'<td class="num">{r["registers"]}</td>'
                             f'<td class="num">{r["spill_stores"]}/{r["spill_loads"]}</td>'
                             f'<td class="num">{r["smem"]:,}</td>')
                if cm[a]:
                    cmem = ", ".join(f"{n:,} [{b}]" for b, n in sorted(r["cmem"].items()))
                    cells.append(f'<td class="num">{cmem or "—"}</td>')
            rows.append(f'<tr><td title="{escape(k["name"])}"><code>{escape(_short(k["name"]))}'
                        f"</code></td>{''.join(cells)}</tr>")
        stats = {a: _stats(u["kernels"], a) for a in arches}
        total = "".join(
            ('<td class="num">—</td>' * width[a]) if (s := stats[a]) is None else
            (f'<td class="num">≤ {s["reg_max"]}</td><td class="num">{s["spill"]:,}</td>'
             f'<td class="num">≤ {s["smem"]:,}</td>' + ("<td></td>" if cm[a] else ""))
            for a in arches)
        n = max((s["n"] for s in stats.values() if s), default=0)
        return (f'<details class="kernel-file"><summary>{escape(u["release"])}/'
                f'{escape(u["path"])}: {n} kernels</summary>'
                '<div class="kernel-wrap"><table class="kernel-table"><thead>'
                f"<tr><th rowspan=2>kernel (hover: the full signature)</th>{head}</tr>"
                f"<tr>{sub}</tr></thead><tbody>" + "".join(rows)
                + f'<tr class="total"><td>{n} kernels</td>{total}</tr>'
                "</tbody></table></div></details>")


def _diagnostic(doc: str, line: str) -> str:
    """``release/path(123): error: …`` with the place linked to its line on the site."""
    m = _WHERE.match(line)
    if m:
        release, _, path = m["src"].partition("/")
        if release in ("alexnet-2012", "cuda-convnet-r561", "cuda-convnet2"):
            return _src_link(doc, release, path, int(m["line"])) + escape(m["rest"])
    return f"<code>{escape(line)}</code>"


class KernelProbes(SphinxDirective):
    """What the site says does not compile any more, tried: the claim, the file and flags
    tried, the compiler's first error (and how many more), and whether it bears the claim out."""
    required_arguments = 1

    def run(self):
        data, doc = _load(self), self.env.docname
        rows = []
        for p in data["probes"]:
            if p["source"].startswith("shim:"):
                src = f'<code>archive/kernel_shims/{escape(p["source"][5:])}</code>'
            else:
                release, _, path = p["source"].partition("/")
                src = _src_link(doc, release, path)
            if p["compiled"]:
                said = "compiles"
            else:
                said = _diagnostic(doc, p["errors"][0]) if p["errors"] else "fails, no message"
                if len(p["errors"]) > 1:
                    said += "<br>" + "<br>".join(_diagnostic(doc, e) for e in p["errors"][1:6])
                    if len(p["errors"]) > 6:
                        said += f"<br>… {len(p['errors']) - 6} more"
            rows.append(f"<tr><td>{escape(p['claim'])}</td><td class=\"src\">{src}<br>"
                        f"<code>{escape(' '.join(p['flags']))}</code></td><td>{said}</td>"
                        f"<td>{'yes' if p['confirmed'] else '<strong>no</strong>'}</td></tr>")
        html = (STYLE + '<div class="kernel-wrap"><table class="kernel-table"><thead><tr>'
                "<th>claim</th><th>tried</th><th>nvcc "
                f"{escape(data['compiler']['nvcc'])} said</th><th>holds</th></tr></thead>"
                "<tbody>" + "".join(rows) + "</tbody></table></div>")
        return [nodes.raw("", html, format="html")]


def setup(app):
    app.add_directive("kernel-table", KernelTable)
    app.add_directive("kernel-probes", KernelProbes)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
