"""The kernels page's directives (archive.sphinxext.kernels) on a made-up table: the per-file
summary with its totals, each file's kernels, and the probes with their lines linked."""
from __future__ import annotations

import json
import re

from sphinx.testing.util import SphinxTestApp

ROW = {"registers": 40, "spill_stores": 0, "spill_loads": 0, "stack": 0, "smem": 4232,
       "cmem": {"0": 440}, "barriers": 1}


def _row(**kw):
    return dict(ROW) | kw


TABLE = {
    "schema": 1, "tool": "python -m archive.kernels",
    "compiler": {"nvcc": "13.0.88", "demangler": "c++filt"},
    "arches": ["sm_80", "sm_90"], "flags": ["-DUNIX", "-O2"],
    "shims": ["cutil_inline.h", "helper_cuda.h"],
    "units": [
        {"release": "cuda-convnet-r561", "path": "src/cudaconv2/a.cu", "sha256": "0" * 64,
         "compiled": True, "diagnostics": [], "kernels": [
             {"mangled": "_Z1f", "name": "void f<2, true>(float*, int)",
              "sm_80": _row(registers=64, spill_stores=8, spill_loads=12, smem=100),
              "sm_90": _row(registers=60, cmem={})},
             {"mangled": "_Z1g", "name": "void g(float*)",
              "sm_80": _row(registers=20), "sm_90": _row(registers=18, smem=9000, cmem={})}]},
        {"release": "alexnet-2012", "path": "src/b.cu", "sha256": "1" * 64,
         "compiled": True, "diagnostics": [], "kernels": [
             {"mangled": "_Z1h", "name": "void h()", "sm_80": _row(registers=30, spill_loads=4),
              "sm_90": _row(registers=31, cmem={})}]},
    ],
    "probes": [
        {"id": "x", "claim": "nvmatrix.cu calls cudaThreadSynchronize.",
         "source": "cuda-convnet-r561/src/nvmatrix/nvmatrix.cu", "flags": ["-arch=sm_90"],
         "compiled": False, "confirmed": True,
         "errors": ['cuda-convnet-r561/src/nvmatrix/nvmatrix.cu(791): error: identifier '
                    '"cudaThreadSynchronize" is undefined']},
        {"id": "y", "claim": "a wrapper <T> of __shfl_down", "source": "shim:probe.cu",
         "flags": ["-arch=sm_90"], "compiled": True, "confirmed": False, "errors": []},
    ],
}


def _build(tmp_path) -> str:
    src = tmp_path / "src"
    (src / "kernels").mkdir(parents=True)
    (src / "conf.py").write_text(
        'extensions = ["myst_parser", "archive.sphinxext.kernels"]\n'
        'source_suffix = {".md": "markdown"}\n')
    (src / "index.md").write_text("# Kernels\n\n```{kernel-table} kernels/t.json\n```\n\n"
                                  "```{kernel-probes} kernels/t.json\n```\n")
    (src / "kernels" / "t.json").write_text(json.dumps(TABLE))
    app = SphinxTestApp("html", srcdir=src)
    try:
        app.build()
    finally:
        app.cleanup()
    assert "ERROR" not in app.warning.getvalue()
    return (app.outdir / "index.html").read_text()


def _cells(html: str, row_start: str) -> list[str]:
    row = html[html.index(row_start):]
    row = row[:row.index("</tr>")]
    return re.findall(r"<td[^>]*>(.*?)</td>", row)


def test_kernel_table_and_probes(tmp_path):
    html = _build(tmp_path)
    # the summary: per file and architecture, kernels, registers, spills, max smem, max stack
    summary = html[html.index('<table class="kernel-table">'):]
    summary = summary[:summary.index("</table>")]
    rows = [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)]
            for r in re.findall(r"<tr[^>]*>(.*?)</tr>", summary[summary.index("<tbody>"):])]
    assert rows == [
        ["cuda-convnet-r561/src/cudaconv2/a.cu", "sm_80", "2", "20–64", "20", "4,232", "0"],
        ["sm_90", "2", "18–60", "0", "9,000", "0"],
        ["alexnet-2012/src/b.cu", "sm_80", "1", "30–30", "4", "4,232", "0"],
        ["sm_90", "1", "31–31", "0", "4,232", "0"],
        ["all files", "sm_80", "3", "20–64", "24", "4,232", "0"],
        ["sm_90", "3", "18–60", "0", "9,000", "0"]]
    assert ('<td class="src" rowspan="2"><a href="releases/cuda-convnet-r561/src/cudaconv2/'
            'a.cu.html"><code>') in summary
    # each file's kernels, the name short and escaped, the full signature on hover
    assert ('<td title="void f&lt;2, true&gt;(float*, int)"><code>f&lt;2, true&gt;</code></td>'
            in html)
    assert "<summary>cuda-convnet-r561/src/cudaconv2/a.cu: 2 kernels</summary>" in html
    f = _cells(html, '<tr><td title="void f&lt;2')
    # sm_80 has a cmem column (ptxas reported some), sm_90 none (it reported none)
    assert f[1:] == ["64", "8/12", "100", "440 [0]", "60", "0/0", "4,232"]
    # the probes: the error's place linked to its line; a probe not borne out says so
    assert ('<a href="releases/cuda-convnet-r561/src/nvmatrix/nvmatrix.cu.html#L791"><code>'
            "cuda-convnet-r561/<wbr>src/<wbr>nvmatrix/<wbr>nvmatrix.cu:791</code></a>: error: "
            'identifier "cudaThreadSynchronize" is undefined') in html
    y = _cells(html, "<tr><td>a wrapper &lt;T&gt; of __shfl_down")
    assert y[1:] == ["<code>archive/kernel_shims/probe.cu</code><br><code>-arch=sm_90</code>",
                     "compiles", "<strong>no</strong>"]
