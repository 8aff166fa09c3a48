"""archive.sphinxext.listing: a listing cut into segments at each cited range, the port box of
the range in the segment that starts at its first line (the test root, and the real site)."""
from __future__ import annotations

import re

import pytest

from archive.sphinxext.listing import segment_bounds
from tests.archive.sphinxext.siteroot import page


def segments(html: str) -> list[tuple[int, int, str]]:
    """(first line, last line, HTML) of each segment of a listing."""
    starts = [m.start() for m in re.finditer(r'<div class="seg[ "]', html)] + [len(html)]
    out = []
    for a, b in zip(starts, starts[1:]):
        m = re.match(r'<div class="seg[^"]*" data-first="(\d+)" data-last="(\d+)"', html[a:])
        out.append((int(m[1]), int(m[2]), html[a:b]))
    return out


def test_segment_bounds_cut_at_each_range_and_after_it():
    assert segment_bounds(100, [10, 50], {10: 20, 50: 50}) == [1, 10, 21, 50, 51, 101]
    assert segment_bounds(100, [1], {1: 100}) == [1, 101]
    assert segment_bounds(5, [], {}) == [1, 6]


def test_a_port_box_beside_each_cited_range(built):
    """far_apart ports two ranges 2,760 lines apart: a box at each, in the segment that starts
    at the range's first line and ends at its last; no box elsewhere."""
    segs = segments(page(built[0], "releases/rel-b/src2/long.cu.html"))
    boxed = {(a, b): re.findall(r'data-ranges="([^"]*)"', h) for a, b, h in segs}
    assert boxed[(40, 60)] == ["40-60"] and boxed[(2800, 2820)] == ["2800-2820"]
    assert sum(len(v) for v in boxed.values()) == 2
    assert [a for a, _, _ in segs] == [1, 40, 61, 2800, 2821]
    lone = next(h for a, _, h in segs if a == 2800)
    assert 'href="#L40-L60"' in lone and "far_apart" in lone  # the box links the other range


@pytest.mark.slow
@pytest.mark.xdist_group("real_site")
def test_real_site_every_cited_range_has_its_box_beside_it(real_site):
    """Every ``Ports:`` range of every release file: the segment holding its first line starts
    there and carries its port box. Every page is under 1.5 MB; no build state is shipped."""
    from archive import ROOT, xref
    refs, _ = xref.scan([ROOT / "port"], ROOT)
    assert len(refs) > 300
    cache: dict[str, list[tuple[int, int, str]]] = {}
    missing = []
    for r in refs:
        name = f"releases/{r.release}/{r.path}.html"
        if name not in cache:
            html = page(real_site, name)
            cache[name] = segments(html[html.index('<div class="listing'):])
        seg = next(s for s in cache[name] if s[0] <= r.first <= s[1])
        if seg[0] != r.first or f"{r.first}-{r.last}" not in " ".join(re.findall(r'data-ranges="([^"]*)"', seg[2])):
            missing.append(f"{r.port_file}:{r.line} {r.target}")
    assert missing == []
    big = [(p, p.stat().st_size) for p in real_site.rglob("*.html") if p.stat().st_size > 1_500_000]
    assert big == []
    assert not list(real_site.rglob("*.pickle")) and not list(real_site.rglob("*.doctree"))


@pytest.mark.slow
@pytest.mark.xdist_group("real_site")
def test_real_site_stays_within_100_mb(real_site):
    """The whole site, search index and history pages included, is at most 100 MB (the limit the
    reader's site and the history pages were built to)."""
    total = sum(p.stat().st_size for p in real_site.rglob("*") if p.is_file() and not p.is_symlink())
    assert total <= 100_000_000, f"{total:,} bytes"
