"""Full-text search over the code: every line of every release file, the notes in the margins
and the cfg files' comments (which are lines of those files), by Pagefind
(https://pagefind.app, from PyPI: ``pagefind[extended]``), run on the built site after Sphinx
(``make site``: ``python -m archive.sphinxext.fulltext _build/site``). No index format of our own.

What is indexed: the ``<div class="source">`` of each source page (:mod:`sources` marks it
``data-pagefind-body``, with its file as the title and its release as a filter), nothing else:
the prose has Sphinx's own search. A release named in ``archive_search_exclude`` is left out
(conf.py leaves out cuda-convnet2: the site must stay under 100 MB). Each line's ``<span id="L<n>">`` is an element with an id, so
Pagefind records it as an anchor with its word position; ``search-code.html`` (this module's
page, ``static/archive-fulltext.js``) turns each match's word position into the line that holds it
and links ``page#L<n>``, which the source page highlights.

Size: the index holds the words and the text of every line (the anchors); :data:`GLOB` keeps it
to the source pages. The search page loads ``pagefind/pagefind.js`` as a module, so it needs
the site served over HTTP (``python -m http.server -d _build/site``), not ``file://``.

Not a port: the project's own site machinery.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from archive.sphinxext.markup import HTML, html

GLOB = "releases/**/*.html"
PAGE = "search-code"


def search_page(excluded: list[str] | tuple[str, ...] = ()) -> tuple[str, HTML]:
    body = html('<h1>Search the code</h1><p>Every line of every release file, the notes beside them and the '
                "cfg files' comments (the diaries), by <a href=\"https://pagefind.app\">Pagefind</a>: each "
                'match links to its line. Words, not substrings (<code>guppy9</code>, <code>fpropActs</code>, '
                '<code>"cost.logreg"</code>); a release narrows the search. {}For the prose, use '
                '<a href="search.html">the page search</a>; for where a name is defined and used, '
                '<a href="identifiers.html">the identifier search</a>. The index needs the site served over '
                'HTTP (<code>python -m http.server -d _build/site</code>).</p>'
                '<form class="ftsearch" role="search" onsubmit="return false">'
                '<input id="ftq" type="search" name="q" placeholder="word, e.g. guppy9" autocomplete="off" '
                'aria-label="words to find in the code"> <select id="ftrel" aria-label="release">'
                '<option value="">every release</option></select></form>'
                '<p id="ftstatus" class="meta" aria-live="polite"></p><ol id="ftres" class="ftres"></ol>'
                '<script type="module" src="_static/archive-fulltext.js"></script>',
                html("Not indexed: {} (to keep the site under 100 MB). ", ", ".join(excluded)) if excluded else "")
    return "Search the code", body


# Pagefind's own search interfaces, which search-code.html does not use (about 420 kB)
UNUSED = ("pagefind-ui.js", "pagefind-ui.css", "pagefind-component-ui.js", "pagefind-component-ui.css",
          "pagefind-modular-ui.js", "pagefind-modular-ui.css", "pagefind-highlight.js")


def index(site_dir: Path, glob: str = GLOB) -> int:
    """Pagefind over ``site_dir`` (the source pages only), its unused interfaces removed; its
    exit status. The previous index is removed first (its fragments are named by content)."""
    shutil.rmtree(site_dir / "pagefind", ignore_errors=True)
    cmd = [sys.executable, "-m", "pagefind", "--site", str(site_dir), "--glob", glob]
    rc = subprocess.run(cmd, check=False).returncode
    for name in UNUSED:
        (site_dir / "pagefind" / name).unlink(missing_ok=True)
    return rc


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    site_dir = Path(args[0] if args else "_build/site")
    if not (site_dir / "index.html").is_file():
        print(f"{site_dir}: no built site here (index.html missing); run make site", file=sys.stderr)
        return 2
    return index(site_dir)


if __name__ == "__main__":
    raise SystemExit(main())
