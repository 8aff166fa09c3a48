"""archive.sphinxext.gaps: what a file uses but its release lacks."""
from __future__ import annotations

from tests.archive.sphinxext.siteroot import margin_of, page


def test_missing_header_is_marked(built):
    margin = margin_of(page(built[0], "releases/rel-a/src/kern.cu.html"))
    assert "not in rel-a" in margin
    assert '<code>kern.cuh</code>: <a href="../../rel-b/include/kern.cuh.html">rel-b/include/kern.cuh</a>' in margin
    assert "not in rel-b" not in margin_of(page(built[0], "releases/rel-b/src2/kern.cu.html"))
