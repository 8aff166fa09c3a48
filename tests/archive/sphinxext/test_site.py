"""Build the synthetic project with the extension and check every generated page kind.

The full build of the real releases runs (marked slow) only when they are fetched.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from archive.sphinxext.integrity import IntegrityError
from tests.archive.sphinxext import synthetic


def page(out: Path, name: str) -> str:
    return (out / name).read_text(encoding="utf-8")


def margin_of(html: str) -> str:
    return "".join(re.findall(r'<div class="margin">(.*?)</div></div>', html, re.S))


def test_build_is_clean(built):
    out, status, warnings = built
    assert warnings == "", warnings
    assert "generated pages written" in status


@pytest.mark.parametrize("name", [
    "releases/rel-a/src/kern.cu.html", "releases/rel-a/page.html.html", "releases/rel-a/tail.py.html",
    "releases/rel-a/img/pic.png.html", "releases/rel-b/src2/kern.cu.html", "releases/rel-a/index.html",
    "releases/index.html", "versions/index.html", "versions/src/kern.cu.html", "coverage.html",
    "divergences.html", "port/mod.html", "port/index.html", "identifiers.html", "identifiers.js",
    "annotations/notes.html"])
def test_pages_exist(built, name):
    assert (built[0] / name).is_file()


def test_every_line_has_an_anchor(built):
    html = page(built[0], "releases/rel-a/src/kern.cu.html")
    n = synthetic.KERN_A.count("\n")
    ids = re.findall(r'<span class="ln[^"]*" id="L(\d+)">', html)
    assert [int(i) for i in ids] == list(range(1, n + 1))
    assert f'href="#L{n}"' in html and f'id="L{n + 1}"' not in html


def test_code_is_escaped_and_shown_as_stored(built):
    html = page(built[0], "releases/rel-a/page.html.html")
    assert "<script>alert" not in html and "<b>bold" not in html
    code = "".join(re.findall(r'<pre class="code highlight">(.*?)</pre>', html, re.S))
    assert "&lt;" in code and "&amp;" in code
    import html as html_mod
    assert html_mod.unescape(re.sub(r"<[^>]+>", "", code)) == synthetic.HOSTILE  # shown as text
    kern = page(built[0], "releases/rel-a/src/kern.cu.html")
    assert "\t\t" in kern  # tabs kept (CSS tab-size), not expanded
    text = re.sub(r"<[^>]+>", "", "".join(re.findall(r'<pre class="code highlight">(.*?)</pre>', kern, re.S)))
    assert text == synthetic.KERN_A  # exactly the stored text, once the markup is removed


def test_missing_final_newline_is_kept_and_said(built):
    html = page(built[0], "releases/rel-a/tail.py.html")
    assert "No newline at end of file" in html
    assert re.search(r'id="L2">.*?return.*?1</span></span></pre>', html, re.S), "no newline added"
    kern = page(built[0], "releases/rel-a/src/kern.cu.html")
    assert "No newline at end of file" not in kern


def test_provenance_header(built):
    html = page(built[0], "releases/rel-a/src/kern.cu.html")
    import hashlib
    data = synthetic.KERN_A.encode()
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
    assert (built[0] / "releases/rel-a/img/pic.png").read_bytes() == synthetic.png_bytes()


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


def test_missing_header_is_marked(built):
    margin = margin_of(page(built[0], "releases/rel-a/src/kern.cu.html"))
    assert "not in rel-a" in margin
    assert '<code>kern.cuh</code>: <a href="../../rel-b/include/kern.cuh.html">rel-b/include/kern.cuh</a>' in margin
    assert "not in rel-b" not in margin_of(page(built[0], "releases/rel-b/src2/kern.cu.html"))


def test_src_role(built):
    index = page(built[0], "index.html")
    assert 'href="releases/rel-a/src/kern.cu.html#L3-L7"' in index
    assert 'href="releases/rel-a/page.html.html"' in index


def test_coverage_numbers(built):
    html = page(built[0], "coverage.html")
    # kern.cu: 11 lines; 3-7 and 9-11 cited = 8; 3-7 annotated = 5; tail.py 1-2 is only linked
    row = re.search(r'src/kern.cu</a></td><td class="num">(\d+)</td><td class="num">(\d+)</td>.*?'
                    r'<td class="num">(\d+)</td>', html, re.S)
    assert row and row.groups() == ("11", "8", "5")
    assert 'data-cited="8"' in html and 'data-annotated="5"' in html


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


def test_divergences_listed(built):
    html = page(built[0], "divergences.html")
    assert "a made-up divergence, to be listed." in html
    assert 'href="port/mod.html#L12"' in html


def _script_json(text: str) -> object:
    return json.loads(text[text.index("(", text.index("SHARD")) + 1:].split(",", 1)[1].rstrip().rstrip(";").rstrip(")"))


def test_identifier_index(built):
    from archive.sphinxext import idents
    out = built[0]
    names = json.loads(page(out, "identifiers.js").split("=", 1)[1].rstrip().rstrip(";"))["names"]
    assert names["fpropActs"][0] >= 1 and names["fprop_acts"][0] >= 1
    fjs = page(out, "_ids/files.js")
    files = [f[0] for f in json.loads(fjs.split("=", 1)[1].rstrip().rstrip(";"))["files"]]
    shard = _script_json(page(out, f"_ids/{idents.shard_of('fpropActs')}.js"))
    entry = shard["fpropActs"]
    assert any(files[f] == "rel-a/src/kern.cu" and line == 3 for f, line, *_ in entry["d"])
    assert any(files[f] == "rel-a/src/kern.cu" and line == 3 and "fpropActs" in ctx for f, line, ctx in entry["r"])
    port = _script_json(page(out, f"_ids/{idents.shard_of('fprop_acts')}.js"))["fprop_acts"]
    assert any(files[f] == "port/mod.py" for f, *_ in port["d"])


def test_offline(built):
    for f in built[0].rglob("*.html"):
        html = f.read_text(encoding="utf-8")
        assert not re.search(r'<(script|img|iframe)[^>]+src="(https?:)?//', html), f
        assert not re.search(r'<link[^>]+href="(https?:)?//', html), f
        assert "@import" not in html and "fonts.googleapis" not in html


def test_unchanged_pages_are_not_rewritten(tmp_path):
    root = synthetic.write_project(tmp_path)
    _, first, _ = synthetic.build(root)
    assert re.search(r"archive: \d+ generated pages written, 0 unchanged", first)
    (root / "docs" / "annotations" / "notes.md").write_text(synthetic.ANNOTATIONS.replace("scaled", "SCALED"))
    _, second, _ = synthetic.build(root)
    assert "archive: 1 generated pages written" in second  # only kern.cu's page
    assert "<strong>SCALED</strong>" in (root / "_build/html/releases/rel-a/src/kern.cu.html").read_text()


def test_parallel_build_merges_annotations(tmp_path):
    """With -j 2 the documents are read in worker processes; their annotations must merge."""
    root = synthetic.write_project(tmp_path)
    for n in range(1, 9):
        (root / "docs" / "annotations" / f"extra{n}.md").write_text(
            f"# Extra {n}\n\n```{{annotation}} rel-a/src/kern.cu:{n}\nExtra note number {n}.\n```\n")
    _, status, warnings = synthetic.build(root, parallel=2)
    assert warnings == "", warnings
    assert re.search(r"reading sources\.\.\. \S+ \S+ annotations/extra\d \.\. ", re.sub(r"\x1b\[[0-9;]*m", "", status))
    margin = margin_of((root / "_build/html/releases/rel-a/src/kern.cu.html").read_text())
    for n in range(1, 9):
        assert f"Extra note number {n}." in margin


def build_fails(tmp_path: Path, **kw) -> str:
    root = synthetic.write_project(tmp_path, **kw)
    with pytest.raises(IntegrityError) as err:
        synthetic.build(root)
    return str(err.value)


def test_bad_ports_line_fails_the_build(tmp_path):
    msg = build_fails(tmp_path, port=synthetic.PORT.replace("kern.cu:9-11", "kern.cu:9-40"))
    assert "port/mod.py:17: lines 9-40 lie outside rel-a/src/kern.cu (11 lines)" in msg


def test_ports_symbol_away_fails_the_build(tmp_path):
    msg = build_fails(tmp_path, port=synthetic.PORT.replace("kern.cu:9-11", "kern.cu:1-2"))
    assert "port/mod.py:17: 'Layer::bpropActs' does not appear in rel-a/src/kern.cu:1-2" in msg


def test_bad_annotation_fails_the_build(tmp_path):
    msg = build_fails(tmp_path, annotations=synthetic.ANNOTATIONS.replace("kern.cu:3-7", "kern.cu:8-9"))
    assert re.search(r"docs/annotations/notes\.md:3: annotation rel-a/src/kern\.cu:8-9: "
                     r"'Layer::fpropActs' does not appear", msg), msg
    msg = build_fails(tmp_path / "b", annotations=synthetic.ANNOTATIONS.replace("kern.cu:3-7", "kern.cu:3-70"))
    assert "notes.md:3: annotation rel-a/src/kern.cu:3-70: lines 3-70 lie outside" in msg


def test_bad_src_link_and_unreadable_annotation_fail_the_build(tmp_path):
    broken = synthetic.ANNOTATIONS.replace("tail.py:1-2", "tail.py:2-3") + "\n```{annotation} nonsense\nx\n```\n"
    msg = build_fails(tmp_path, annotations=broken)
    assert "notes.md:4: rel-a/tail.py:2-3: lines 2-3 lie outside rel-a/tail.py (2 lines)" in msg
    assert "notes.md:7: cannot read target 'nonsense'" in msg


def test_altered_original_fails_the_build(tmp_path):
    root = synthetic.write_project(tmp_path)
    (root / "original/rel-a/tail.py").write_text("altered\n")
    with pytest.raises(IntegrityError, match=r"original/rel-a/tail.py: SHA-256 differs"):
        synthetic.build(root)


@pytest.mark.slow
@pytest.mark.xdist_group("real_site")
def test_real_site(real_site):
    """The real site: all three releases (skips when they are not fetched)."""
    out = real_site
    layer = out / "releases/alexnet-2012/src/layer.cu.html"
    assert layer.stat().st_size < 1_500_000
    n_pages = sum(1 for _ in (out / "releases").rglob("*.html"))
    assert n_pages >= 407  # one per release file, plus the trees
    html = layer.read_text()
    assert 'id="L2002"' in html
    assert "No newline at end of file" in (out / "releases/alexnet-2012/src/cost.cu.html").read_text()


def test_a_release_file_a_browser_would_render_is_never_served_live(built):
    """The release's own readme.html redirected the browser off-site when its raw copy was
    opened; the raw copy is now ``<name>.txt`` and the page shows the file as text."""
    from archive.sphinxext.model import raw_of_source

    out = built[0]
    assert not (out / "releases/rel-a/page.html").exists()
    assert (out / "releases/rel-a/page.html.txt").read_bytes() == synthetic.HOSTILE.encode()
    html = page(out, "releases/rel-a/page.html.html")
    assert 'href="page.html.txt" download>raw file</a>' in html
    assert "<script>alert(1)</script>" not in html and ">alert<" in html  # highlighted as text
    assert [raw_of_source(p) for p in ("a/b.HTM", "x.svg", "y.xhtml", "k.cu", "pic.png", "README")] == \
        ["a/b.HTM.txt", "x.svg.txt", "y.xhtml.txt", "k.cu", "pic.png", "README"]
