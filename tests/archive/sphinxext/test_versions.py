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
