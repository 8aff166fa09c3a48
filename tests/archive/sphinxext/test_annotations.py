"""archive.sphinxext.annotations: annotations in the margin, the {src} role."""
from __future__ import annotations

import re

from tests.archive.sphinxext.siteroot import margin_of, page


def test_annotation_in_margin(built):
    out = built[0]
    src = page(out, "releases/rel-a/src/kern.cu.html")
    margin = margin_of(src)
    assert "<strong>scaled</strong>" in margin
    # the {src} link inside the note works from the source page's folder
    assert 'href="../tail.py.html#L1-L2"' in margin
    notes = page(out, "annotations/notes.html")
    assert 'href="../releases/rel-a/src/kern.cu.html#L3-L7"' in notes
    assert re.search(r'<span class="ln pc an[^"]*" id="L3">', src)


def test_src_role(built):
    index = page(built[0], "index.html")
    assert 'href="releases/rel-a/src/kern.cu.html#L3-L7"' in index
    assert 'href="releases/rel-a/page.html.html"' in index
