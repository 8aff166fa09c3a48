"""archive.sphinxext.sources: a source page per release file, exactly as stored, with its
provenance header and the per-line provenance across releases."""
from __future__ import annotations

import re

from tests.archive.sphinxext.siteroot import SITE, page, site_file


def test_every_line_has_an_anchor(built):
    html = page(built[0], "releases/rel-a/src/kern.cu.html")
    n = site_file("releases/rel-a/src/kern.cu").count("\n")
    ids = re.findall(r'<span class="ln[^"]*" id="L(\d+)">', html)
    assert [int(i) for i in ids] == list(range(1, n + 1))
    assert f'href="#L{n}"' in html and f'id="L{n + 1}"' not in html


def test_code_is_escaped_and_shown_as_stored(built):
    html = page(built[0], "releases/rel-a/page.html.html")
    assert "<script>alert" not in html and "<b>bold" not in html
    code = "".join(re.findall(r'<pre class="code highlight">(.*?)</pre>', html, re.S))
    assert "&lt;" in code and "&amp;" in code
    import html as html_mod
    assert html_mod.unescape(re.sub(r"<[^>]+>", "", code)) == site_file("releases/rel-a/page.html")  # shown as text
    kern = page(built[0], "releases/rel-a/src/kern.cu.html")
    assert "\t\t" in kern  # tabs kept (CSS tab-size), not expanded
    text = re.sub(r"<[^>]+>", "", "".join(re.findall(r'<pre class="code highlight">(.*?)</pre>', kern, re.S)))
    assert text == site_file("releases/rel-a/src/kern.cu")  # exactly the stored text, once the markup is removed


def test_missing_final_newline_is_kept_and_said(built):
    html = page(built[0], "releases/rel-a/tail.py.html")
    assert "No newline at end of file" in html
    assert re.search(r'id="L2">.*?return.*?1</span></span></pre>', html, re.S), "no newline added"
    kern = page(built[0], "releases/rel-a/src/kern.cu.html")
    assert "No newline at end of file" not in kern


def test_provenance_header(built):
    html = page(built[0], "releases/rel-a/src/kern.cu.html")
    import hashlib
    data = site_file("releases/rel-a/src/kern.cu").encode()
    assert hashlib.sha256(data).hexdigest() in html
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    assert f"swh:1:cnt:{blob};origin=https://example.org/rel-a;anchor=swh:1:rev:{'1' * 40};path=/src/kern.cu" in html
    assert f'href="https://example.org/rel-a/blob/{"1" * 40}/src/kern.cu"' in html
    assert f"{len(data)} bytes" in html
    assert (built[0] / "releases/rel-a/src/kern.cu").read_bytes() == data  # raw file beside the page


def test_image_is_an_image(built):
    html = page(built[0], "releases/rel-a/img/pic.png.html")
    assert '<img src="pic.png"' in html
    assert "bytes, binary</dd>" in html and "no final newline" not in html
    assert (built[0] / "releases/rel-a/img/pic.png").read_bytes() == (SITE / "releases/rel-a/img/pic.png").read_bytes()


def test_a_release_file_a_browser_would_render_is_never_served_live(built):
    """The release's own readme.html redirected the browser off-site when its raw copy was
    opened; the raw copy is now ``<name>.txt`` and the page shows the file as text."""
    from archive.sphinxext.model import raw_of_source

    out = built[0]
    assert not (out / "releases/rel-a/page.html").exists()
    assert (out / "releases/rel-a/page.html.txt").read_bytes() == (SITE / "releases/rel-a/page.html").read_bytes()
    html = page(out, "releases/rel-a/page.html.html")
    assert 'href="page.html.txt" download>raw file</a>' in html
    assert "<script>alert(1)</script>" not in html and ">alert<" in html  # highlighted as text
    assert [raw_of_source(p) for p in ("a/b.HTM", "x.svg", "y.xhtml", "k.cu", "pic.png", "README")] == \
        ["a/b.HTM.txt", "x.svg.txt", "y.xhtml.txt", "k.cu", "pic.png", "README"]


def test_per_line_provenance(built):
    """kern.cu in rel-b: line 1 was changed, line 10 is new, the rest was already in rel-a."""
    src = page(built[0], "releases/rel-b/src2/kern.cu.html")
    assert re.search(r'<span class="ln pv-n" id="L1">', src) and re.search(r'<span class="ln pv-n" id="L10">', src)
    assert re.search(r'<span class="ln pv-o" id="L3">', src)
    assert "11 lines already in rel-a" not in src and "10 lines already in rel-a" in src
    old = page(built[0], "releases/rel-a/src/kern.cu.html")
    assert re.search(r'<span class="ln pc an pv-k" id="L3">', old) and "kept by rel-b" in old
    assert not re.search(r'<span class="ln[^"]*pv-k[^"]*" id="L1">', old)  # changed in rel-b
