"""archive.sphinxext.history: function history pages (matched by name, then content), linked
from the file outline (ctags; cfg sections) of the source pages."""
from __future__ import annotations

import pytest

from archive.sphinxext.idents import ctags_available
from tests.archive.sphinxext.siteroot import page


@pytest.mark.skipif(not ctags_available(), reason="Universal Ctags is not installed (apt-get install universal-ctags)")
def test_function_history_and_outline(built):
    hist = page(built[0], "history/src/kern.cu.html")
    assert 'id="f-Layer-fpropActs"' in hist and 'id="f-Layer-bpropActs"' in hist
    same = hist[hist.index('id="f-Layer-fpropActs"'):hist.index('id="f-Layer-bpropActs"')]
    assert "rel-a → rel-b: the same 5 lines." in same
    changed = hist[hist.index('id="f-Layer-bpropActs"'):]
    assert 'id="f-Layer-bpropActs-rel-b-b10">10</td><td class="t ins">    int x = inpIdx;' in changed
    assert 'href="../../releases/rel-b/src2/kern.cu.html#L9-L12"' in hist
    src = page(built[0], "releases/rel-a/src/kern.cu.html")
    outline = src[src.index('<details class="outline">'):src.index("</details>")]
    assert 'href="#L3-L7">Layer::fpropActs</a>' in outline
    assert 'href="../../../history/src/kern.cu.html#f-Layer-fpropActs">history</a>' in outline
    cfg = page(built[0], "releases/rel-a/layers/net.cfg.html")
    assert 'href="#L1-L3">conv1</a> <span class="kind">section 1</span>' in cfg
