"""archive.sphinxext.versions: diffs across releases and the release trees."""
from __future__ import annotations

from tests.archive.sphinxext.siteroot import page


def test_versions_diff_and_tree(built):
    out = built[0]
    diff = page(out, "versions/src/kern.cu.html")  # moved src/ → src2/ and changed
    assert "rel-a → rel-b" in diff and "moved+changed" in diff
    assert 'id="rel-a-a10"' in diff and 'id="rel-b-b11"' in diff
    assert '<td class="t ins">    int x = inpIdx;</td>' in diff
    assert '<td class="t del">// a <span class="wd">made-up</span> kernel file</td>' in diff  # words marked
    assert '<td class="t ins">// a <span class="wd">changed</span> kernel file</td>' in diff
    same = page(out, "versions/page.html.html")
    assert "Byte-identical" in same
    tree = page(out, "releases/rel-b/index.html")
    assert "new.sh" in tree and ">added<" in tree
    assert "tail.py" in tree  # listed as absent here
    assert "moved-changed" in tree


def test_whitespace_only_changes_are_marked_and_folds_say_what_they_hold():
    """A changed line whose words are the same (spaces, tabs, trailing blanks) is marked ``ws``
    (shown "whitespace only"); a line whose words changed is not; a folded run carries the id
    prefixes, first lines and count that the page script unfolds in place."""
    from archive.sphinxext.versions import _diff_rows
    a = ["keep 1", "keep 2", "keep 3", "keep 4", "keep 5", "\tx = 1;", "y = 2;   ", "z = 3;", "", "end"]
    b = ["keep 1", "keep 2", "keep 3", "keep 4", "keep 5", "    x = 1;", "y = 2;", "z = 4;", "  ", "end"]
    rows, added, removed = _diff_rows(a, b, "A", "B", "a.html", "b.html")
    assert (added, removed) == (4, 4)
    trs = rows.split("</tr>")
    ws = [t for t in trs if t.startswith('<tr class="ws">')]
    assert len(ws) == 3  # the re-indented line, the trailing blanks, the blank that gained spaces
    assert all('class="t del ws"' in t and 'class="t ins ws"' in t for t in ws)
    z = next(t for t in trs if 'id="A8"' in t)
    assert "ws" not in z and 'class="t ins"' in z  # z = 3 → z = 4 is a real change
    assert '<tr class="skip" data-fold="A 1 B 1 2">' in rows  # lines 1-2 folded (3-5 are context)
