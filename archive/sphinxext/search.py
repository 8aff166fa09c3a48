"""Identifier search: Sphinx's search indexes documents only, so the site adds a client-side
index of the identifiers in the code (Pygments ``Name`` tokens of every release file and port
module → page and line), written as ``identifiers.js``, and a search page,
``identifiers.html`` (``?q=<name>``), driven by ``_static/archive-search.js``. Offline: the
index is a script, so it loads from ``file://`` too.
"""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict

from archive.sphinxext.highlight import VERSION as HL_VERSION
from archive.sphinxext.highlight import Cache
from archive.sphinxext.model import Site, page_of_port, page_of_source
from archive.sphinxext.sidebyside import port_highlighted

MAX_HITS = 60  # occurrences kept per identifier (definitions first); the count is kept too


def build_index(site: Site, cache: Cache) -> dict:
    """``{"files": [label, url]..., "ids": {name: [count, [file, line, defining]...]}}``."""
    files: list[list[str]] = []
    hits: dict[str, list[tuple[int, int, int]]] = defaultdict(list)

    def add(label: str, url: str, names: list[tuple[str, int, bool]]) -> None:
        fi = len(files)
        files.append([label, url + ".html"])
        seen = set()
        for name, line, defining in names:
            if (name, line) not in seen:
                seen.add((name, line))
                hits[name].append((fi, line, int(defining)))

    for release in site.order:
        for e in site.files(release):
            text = site.text(release, e.path)
            if text is None or site.is_binary(release, e.path):
                continue
            add(f"{release}/{e.path}", page_of_source(release, e.path), cache.get(text, e.path).names)
    for pf in site.port_files:
        hl = port_highlighted(site, pf, cache)
        if hl is not None:
            add(pf, page_of_port(pf), hl.names)
    ids = {}
    for name, occ in sorted(hits.items()):
        occ.sort(key=lambda h: (-h[2], h[0], h[1]))
        ids[name] = [len(occ), [list(h) for h in occ[:MAX_HITS]]]
    return {"files": files, "ids": ids}


def index_key(site: Site) -> str:
    """A hash of everything the index is computed from (to skip rebuilding it)."""
    h = hashlib.sha256(f"{MAX_HITS}:{HL_VERSION}".encode())
    for release in site.order:
        for e in site.files(release):
            h.update(f"{release}/{e.path}:{e.sha256}:{site.data(release, e.path) is not None}\n".encode())
    for pf in site.port_files:
        f = site.root / pf
        h.update(pf.encode() + (hashlib.sha256(f.read_bytes()).digest() if f.is_file() else b"-"))
    return h.hexdigest()


def index_script(index: dict) -> str:
    return "window.ARCHIVE_IDENTIFIERS=" + json.dumps(index, separators=(",", ":")) + ";\n"


def search_page() -> tuple[str, str]:
    body = ('<h1>Identifier search</h1><p>Finds identifiers in the code of every release and of the port '
            '(function, class, variable and cfg key names, from the highlighter), not only words in the prose; '
            'definitions are listed first. For the prose, use the page search.</p>'
            '<form class="idsearch" role="search" onsubmit="return false">'
            '<input id="idq" type="search" name="q" placeholder="identifier, e.g. fpropActs" autocomplete="off" '
            'aria-label="identifier"></form><div id="idres" aria-live="polite"></div>'
            '<script src="identifiers.js"></script><script src="_static/archive-search.js"></script>')
    return "Identifier search", body
