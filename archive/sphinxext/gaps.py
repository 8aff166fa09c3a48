"""What a release refers to but lacks: ``#include`` headers and Python imports that resolve to
no file of the release but to a file of another release (the 2012 release calls cudaconv2,
nvmatrix and the Python helpers of cuda-convnet, which it does not contain). A source page
shows one margin note at the first such line, linking each missing name to where it exists.
Names found in no release (system headers, the standard library) are not mentioned.
"""
from __future__ import annotations

import re
from pathlib import PurePosixPath

from archive.sphinxext.highlight import C_SUFFIXES, CUDA_SUFFIXES
from archive.sphinxext.markup import html, join
from archive.sphinxext.model import Site, page_of_source, relative

_INCLUDE = re.compile(r'^\s*#\s*include\s*[<"](?P<name>[^>"]+)[>"]')
_IMPORT = re.compile(r"^\s*(?:from\s+(?P<from>[A-Za-z_][\w.]*)\s+import\b|import\s+(?P<mods>[\w., ]+))")


def wanted(path: str, lines: list[str]) -> list[tuple[int, str]]:
    """(line, file name it asks for) for each include / import of a C-family or Python file."""
    suffix = PurePosixPath(path).suffix
    out = []
    for n, line in enumerate(lines, 1):
        if suffix in CUDA_SUFFIXES + C_SUFFIXES:
            if m := _INCLUDE.match(line):
                out.append((n, m["name"]))
        elif suffix == ".py" and (m := _IMPORT.match(line)):
            mods = [m["from"]] if m["from"] else [x.strip().split(" ")[0] for x in m["mods"].split(",")]
            out += [(n, mod.split(".")[0] + ".py") for mod in mods if mod]
    return out


def _find(site: Site, release: str, name: str) -> list[str]:
    tail = "/" + name
    return [p for p in site.manifests[release].files if p == name or p.endswith(tail)]


def gap_notes(site: Site, release: str, path: str, lines: list[str], page: str) -> dict[int, list[str]]:
    missing: dict[str, list[str]] = {}
    first = 0
    for n, name in wanted(path, lines):
        if name in missing or _find(site, release, name):
            continue
        elsewhere = [(r, p) for r in site.order if r != release for p in _find(site, r, name)]
        if elsewhere:
            missing[name] = [html('<a href="{}">{}/{}</a>', relative(page, page_of_source(r, p)), r, p)
                             for r, p in elsewhere]
            first = first or n
    if not missing:
        return {}
    items = join(html('<li><code>{}</code>: {}</li>', name, join(links, ', '))
                 for name, links in missing.items())
    return {first: [html('<div class="note gap"><p class="nh"><span class="tag">not in {}</span> '
                         'this file uses {} file(s) the release lacks; other releases have them:'
                         '</p><ul>{}</ul></div>', release, len(missing), items)]}
