"""The reader's features of the site, read from the synthetic build's HTML: a port box beside
every cited range, whole divergence reasons linked both ways, readable colours, a clean output."""
from __future__ import annotations

import re

import pytest
from pygments.styles import get_style_by_name

from archive.sphinxext import styles
from archive.sphinxext.listing import segment_bounds
from archive.sphinxext.sidebyside import plain_reason


def page(out, name: str) -> str:
    return (out / name).read_text(encoding="utf-8")


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


@pytest.mark.parametrize("style, base, dark", [(styles.Light, "default", False), (styles.Dark, "monokai", True)])
def test_every_token_colour_readable_on_every_background(style, base, dark):
    bgs = styles.DARK_BACKGROUNDS if dark else styles.LIGHT_BACKGROUNDS
    assert len(bgs) == 8 and len(set(bgs)) == 8
    checked = 0
    for ttype, spec in style.styles.items():
        for part in spec.split():
            if part.startswith("#"):
                checked += 1
                assert min(styles.contrast(part, bg) for bg in bgs) >= 4.5, (ttype, part)
    assert checked > 10
    # the hue is the base style's: only the lightness moved
    assert get_style_by_name(base).styles.keys() == style.styles.keys()


@pytest.mark.parametrize("var", ["--fg", "--muted", "--link", "--p", "--a", "--dv"])
def test_theme_text_colours_readable(var):
    light, dark = styles.palettes()
    assert min(styles.contrast(light[var], bg) for bg in styles.LIGHT_BACKGROUNDS) >= 4.5
    assert min(styles.contrast(dark[var], bg) for bg in styles.DARK_BACKGROUNDS) >= 4.5


def test_the_site_uses_the_readable_styles(built):
    css = page(built[0], "_static/pygments_dark.css")
    monokai_operator = "#FF4689"
    assert monokai_operator.lower() not in css.lower()
    assert styles.Dark.styles[next(t for t in styles.Dark.styles if str(t) == "Token.Operator")].upper() in css.upper()


def test_output_holds_no_build_state(built):
    out = built[0]
    assert not list(out.rglob("*.pickle")) and not list(out.rglob("*.doctree"))
    assert not list(out.rglob("archive-pages.json")) and (out / "index.html").is_file()


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


def _shard(out, name: str) -> tuple[dict, list[str]]:
    import json

    from archive.sphinxext import idents
    text = page(out, f"_ids/{idents.shard_of(name)}.js")
    shard = json.loads(text[text.index(",") + 1:].rstrip().rstrip(";").rstrip(")"))
    files = page(out, "_ids/files.js")
    return shard[name], [f[0] for f in json.loads(files.split("=", 1)[1].rstrip().rstrip(";"))["files"]]


@pytest.mark.skipif(not __import__("archive.sphinxext.idents", fromlist=["x"]).ctags_available(),
                    reason="Universal Ctags is not installed (apt-get install universal-ctags)")
def test_ctags_definitions_with_scope_and_end(built):
    entry, files = _shard(built[0], "fpropActs")
    defs = [(files[f], line, kind, end, scope) for f, line, kind, end, scope in entry["d"]]
    assert ("rel-a/src/kern.cu", 3, "function", 7, "Layer") in defs  # the body, not a guess
    bprop, files = _shard(built[0], "bprop_acts")
    assert [(files[f], line, kind) for f, line, kind, *_ in bprop["d"]] == [("port/mod.py", 16, "member")]


def test_cfg_type_leads_to_the_class_that_reads_it(built):
    entry, files = _shard(built[0], "conv")
    assert [(files[f], line) for f, line, _ in entry["r"]] == [("rel-a/layers/net.cfg", 2)]
    kinds = {(files[f], kind, cls) for f, _, kind, _, cls in entry["d"]}
    assert ("port/mod.py", "reads type", "Layer") in kinds
    if __import__("archive.sphinxext.idents", fromlist=["x"]).ctags_available():
        assert ("port/mod.py", "layer class", "Layer") in kinds


@pytest.mark.skipif(not __import__("archive.sphinxext.idents", fromlist=["x"]).ctags_available(),
                    reason="Universal Ctags is not installed (apt-get install universal-ctags)")
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


def test_per_line_provenance(built):
    """kern.cu in rel-b: line 1 was changed, line 10 is new, the rest was already in rel-a."""
    src = page(built[0], "releases/rel-b/src2/kern.cu.html")
    assert re.search(r'<span class="ln pv-n" id="L1">', src) and re.search(r'<span class="ln pv-n" id="L10">', src)
    assert re.search(r'<span class="ln pv-o" id="L3">', src)
    assert "11 lines already in rel-a" not in src and "10 lines already in rel-a" in src
    old = page(built[0], "releases/rel-a/src/kern.cu.html")
    assert re.search(r'<span class="ln pc an pv-k" id="L3">', old) and "kept by rel-b" in old
    assert not re.search(r'<span class="ln[^"]*pv-k[^"]*" id="L1">', old)  # changed in rel-b
