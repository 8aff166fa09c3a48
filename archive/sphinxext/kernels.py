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
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from archive.sphinxext.markup import HTML, esc, html, join
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
_NUM = '<td class="num">{}</td>'
_DASH = html('<td class="num">—</td>')


def _load(directive: SphinxDirective) -> dict:
    path = Path(directive.env.srcdir) / directive.arguments[0]
    directive.env.note_dependency(str(path))
    return json.loads(path.read_text())


def _src_link(doc: str, release: str, path: str, line: int | None = None) -> HTML:
    """A release file (and line) linked to its page; the label may break after each slash."""
    frag = line_fragment(line) if line else ""
    label = f"{release}/{path}" + (f":{line}" if line else "")
    return html('<a href="{}"><code>{}</code></a>',
                relative(doc, page_of_source(release, path), frag),
                join(label.split("/"), html("/<wbr>")))


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
            "smem": max(r["smem"] for r in rows), "stack": max(r["stack"] for r in rows)}


def _stat_cells(s: dict | None) -> HTML:
    if s is None:
        return join([_DASH] * 5)
    return join(html(_NUM, v) for v in (s["n"], f'{s["reg_min"]}–{s["reg_max"]}',
                                        f'{s["spill"]:,}', f'{s["smem"]:,}', f'{s["stack"]:,}'))


def _arch_rows(label, kernels: list[dict], arches: list[str], total: bool = False) -> HTML:
    """One row per architecture, the label spanning them."""
    rows = []
    for i, a in enumerate(arches):
        first = html('<td class="src" rowspan="{}">{}</td>', len(arches), label) if i == 0 else ""
        tr = html('<tr class="total">') if total else html("<tr>")
        rows.append(tr + first + html("<td>{}</td>{}</tr>", a, _stat_cells(_stats(kernels, a))))
    return join(rows)


class KernelTable(SphinxDirective):
    """The per-file summary with totals, then one folded table of kernels per file."""
    required_arguments = 1

    def run(self):
        data, doc = _load(self), self.env.docname
        arches = data["arches"]
        rows, every = [], []
        for u in data["units"]:
            link = _src_link(doc, u["release"], u["path"])
            if not u["compiled"]:
                why = u["diagnostics"][0] if u["diagnostics"] else "failed"
                rows.append(html('<tr><td class="src">{}</td><td colspan="6">does not compile: '
                                 "{}</td></tr>", link, why))
                continue
            every += u["kernels"]
            rows.append(_arch_rows(link, u["kernels"], arches))
        rows.append(_arch_rows("all files", every, arches, total=True))
        c = data["compiler"]
        page = [HTML(STYLE),
                html("<p>nvcc {}, for {}; flags <code>{}</code>; shims {}; names demangled by {}. "
                     "Spills are the bytes of spill stores and loads summed over the file's "
                     "kernels.</p>", c["nvcc"], ", ".join(arches), " ".join(data["flags"]),
                     join((html("<code>{}</code>", s) for s in data["shims"]), ", "),
                     c["demangler"]),
                html('<div class="kernel-wrap"><table class="kernel-table"><thead><tr>'
                     "<th>file</th><th>arch</th><th class=num>kernels</th>"
                     "<th class=num>registers</th><th class=num>spills (B)</th>"
                     "<th class=num>max smem (B)</th><th class=num>max stack (B)</th>"
                     "</tr></thead><tbody>{}</tbody></table></div>", join(rows))]
        page += [self._file(u, arches) for u in data["units"] if u["compiled"]]
        return [nodes.raw("", join(page, "\n"), format="html")]

    @staticmethod
    def _file(u: dict, arches: list[str]) -> HTML:
        # a cmem column only for the architectures where ptxas reported constant memory
        cm = {a: any(k.get(a, {}).get("cmem") for k in u["kernels"]) for a in arches}
        width = {a: 4 if cm[a] else 3 for a in arches}
        head = join(html('<th colspan="{}">{}</th>', width[a], a) for a in arches)
        sub = join(html("<th class=num>reg</th><th class=num>spill st/ld (B)</th>"
                        "<th class=num>smem (B)</th>")
                   + (html("<th class=num>cmem (B)</th>") if cm[a] else "") for a in arches)
        rows = []
        for k in u["kernels"]:
            cells = []
            for a in arches:
                r = k.get(a)
                if r is None:
                    cells += [_DASH] * width[a]
                    continue
                cells += [html(_NUM, r["registers"]),
                          html(_NUM, f'{r["spill_stores"]}/{r["spill_loads"]}'),
                          html(_NUM, f'{r["smem"]:,}')]
                if cm[a]:
                    cmem = ", ".join(f"{n:,} [{b}]" for b, n in sorted(r["cmem"].items()))
                    cells.append(html(_NUM, cmem or "—"))
            rows.append(html('<tr><td title="{}"><code>{}</code></td>{}</tr>',
                             k["name"], _short(k["name"]), join(cells)))
        stats = {a: _stats(u["kernels"], a) for a in arches}
        total = []
        for a in arches:
            s = stats[a]
            if s is None:
                total += [_DASH] * width[a]
                continue
            total += [html(_NUM, f'≤ {s["reg_max"]}'), html(_NUM, f'{s["spill"]:,}'),
                      html(_NUM, f'≤ {s["smem"]:,}')] + ([html("<td></td>")] if cm[a] else [])
        n = max((s["n"] for s in stats.values() if s), default=0)
        return html('<details class="kernel-file"><summary>{}/{}: {} kernels</summary>'
                    '<div class="kernel-wrap"><table class="kernel-table"><thead>'
                    "<tr><th rowspan=2>kernel (hover: the full signature)</th>{}</tr>"
                    "<tr>{}</tr></thead><tbody>{}"
                    '<tr class="total"><td>{} kernels</td>{}</tr>'
                    "</tbody></table></div></details>",
                    u["release"], u["path"], n, head, sub, join(rows), n, join(total))


def _diagnostic(doc: str, line: str) -> HTML:
    """``release/path(123): error: …`` with the place linked to its line on the site."""
    m = _WHERE.match(line)
    if m:
        release, _, path = m["src"].partition("/")
        if release in ("alexnet-2012", "cuda-convnet-r561", "cuda-convnet2"):
            return _src_link(doc, release, path, int(m["line"])) + m["rest"]
    return html("<code>{}</code>", line)


class KernelProbes(SphinxDirective):
    """What the site says does not compile any more, tried: the claim, the file and flags
    tried, the compiler's error lines (the first six), and whether they bear the claim out."""
    required_arguments = 1

    def run(self):
        data, doc = _load(self), self.env.docname
        rows = []
        for p in data["probes"]:
            if p["source"].startswith("shim:"):
                src = html("<code>archive/kernel_shims/{}</code>", p["source"][5:])
            else:
                release, _, path = p["source"].partition("/")
                src = _src_link(doc, release, path)
            if p["compiled"]:
                said = esc("compiles")
            elif not p["errors"]:
                said = esc("fails, no message")
            else:
                said = join((_diagnostic(doc, e) for e in p["errors"][:6]), html("<br>"))
                if len(p["errors"]) > 6:
                    said += html("<br>… {} more", len(p["errors"]) - 6)
            rows.append(html('<tr><td>{}</td><td class="src">{}<br><code>{}</code></td>'
                             "<td>{}</td><td>{}</td></tr>", p["claim"], src,
                             " ".join(p["flags"]), said,
                             esc("yes") if p["confirmed"] else html("<strong>no</strong>")))
        page = HTML(STYLE) + html(
            '<div class="kernel-wrap"><table class="kernel-table"><thead><tr><th>claim</th>'
            "<th>tried</th><th>nvcc {} said</th><th>holds</th></tr></thead><tbody>{}</tbody>"
            "</table></div>", data["compiler"]["nvcc"], join(rows))
        return [nodes.raw("", page, format="html")]


def setup(app):
    app.add_directive("kernel-table", KernelTable)
    app.add_directive("kernel-probes", KernelProbes)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
