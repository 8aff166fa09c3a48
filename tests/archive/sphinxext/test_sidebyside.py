"""archive.sphinxext.sidebyside: the port beside the lines it ports, and the divergences page
(every reason whole, as text, linked to the port lines, the ported lines and the lines it cites)."""
from __future__ import annotations

import re

from archive.sphinxext.sidebyside import plain_reason
from tests.archive.sphinxext.siteroot import margin_of, page


def test_ports_link_both_ways(built):
    out = built[0]
    src = page(out, "releases/rel-a/src/kern.cu.html")
    margin = margin_of(src)
    # the source page shows the porting function beside lines 3-7 and links to it (lines 9-14)
    assert 'href="../../../port/mod.html#L9-L14"' in margin
    assert "fprop_acts" in margin and "Layer.fprop_acts" in margin
    assert re.search(r'<span class="ln pc[^"]*" id="L3">', src)
    port = page(out, "port/mod.html")
    assert 'class="to-src" href="../releases/rel-a/src/kern.cu.html#L3-L7"' in port
    assert 'href="../releases/rel-a/src/kern.cu.html#L9-L11"' in port
    assert "fpropActs" in margin_of(port)  # the original lines beside the port function


def test_divergences_listed(built):
    html = page(built[0], "divergences.html")
    assert "a made-up divergence, to be listed." in html
    assert 'href="port/mod.html#L12"' in html


def test_divergence_reason_whole_plain_and_linked(built):
    html = page(built[0], "divergences.html")
    items = re.findall(r'<li class="divergence".*?</li>', html, re.S)
    assert len(items) == 2
    text = next(i for i in items if "far_apart" in i)
    assert "runs over two lines, with <code>literal</code> markup and a citation" in text  # whole, no ``
    assert "``" not in html
    assert re.search(r'<a class="to-src" href="releases/rel-b/src2/long.cu.html#L45-L46"[^>]*>long.cu:45-46</a>',
                     text)
    assert 'href="releases/rel-b/src2/long.cu.html#L40-L60"' in text  # the lines the function ports
    assert re.search(r'class="to-port" href="port/mod.html#L\d+-L\d+"', text)  # the reason's own lines


def test_plain_reason_markup():
    assert plain_reason("see :func:`load` and ``a < b`` **not** *x*") == (
        "see <code>load</code> and <code>a &lt; b</code> <strong>not</strong> *x*")


def test_port_only_checks_listed_apart(built):
    """A Port-only: line (a check the port adds) is listed on the divergences page after the
    DIVERGES: lines, in its own section, and in the port page's margin."""
    html = page(built[0], "divergences.html")
    head, _, section = html.partition('<h2 id="port-only">')
    assert section and "a made-up check the original lacks" not in head
    items = re.findall(r'<li class="port-only".*?</li>', section, re.S)
    assert len(items) == 1 and "a made-up check the original lacks, to be listed." in items[0]
    assert re.search(r'class="to-port" href="port/mod.html#L35"', items[0])
    port = page(built[0], "port/mod.html")
    assert '<span class="tag">port-only</span>' in port and "1 <code>Port-only:</code> checks" in port
