"""Identifier search: Sphinx's search indexes documents only, so the site adds a search page
over the identifiers of the code, ``identifiers.html`` (``?q=<name>``), driven by
``_static/archive-search.js`` over ``identifiers.js`` (names and counts) and the shards that
:mod:`idents` writes. Offline: the index is scripts, so it loads from ``file://`` too.
"""
from __future__ import annotations


def search_page() -> tuple[str, str]:
    body = ('<h1>Identifier search</h1><p>Finds identifiers in the code of every release and of the port '
            'and cfg layer types, not only words in the prose: each with its definitions (from Universal Ctags) and '
            'every reference, by release and file, with its line. Every name in a listing is a link to the same '
            'panel on its page (<code>layer.cu.html#i:getActs</code>: a URL to share or open in a new tab; Tab '
            'and Enter reach it from the keyboard). For the prose, use the page search.</p>'
            '<form class="idsearch" role="search" onsubmit="return false">'
            '<input id="idq" type="search" name="q" placeholder="identifier, e.g. fpropActs" autocomplete="off" '
            'aria-label="identifier"></form><div id="idres" aria-live="polite"></div>'
            '<script src="identifiers.js"></script><script src="_static/archive-idents.js"></script>'
            '<script src="_static/archive-search.js"></script>')
    return "Identifier search", body
