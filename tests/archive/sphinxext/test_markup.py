"""archive.sphinxext.markup: the site's HTML is escaped by default. Values put in a template are
escaped for their place unless they are markup already; the modules build their HTML only that
way (no f-string markup, no hand-written escaping); a release file with a hostile name cannot
inject markup into any page."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from archive import ROOT, manifest
from archive.sphinxext.markup import HTML, esc, esc_attr, html, join
from tests.archive.sphinxext.siteroot import build, copy_site, regenerate_manifests

HOSTILE = 'dir"><img src=x onerror=alert(1)>'
# an HTML or SVG element in a string (not a placeholder such as "<release>/<path>" in a message)
TAG = re.compile(r"</?(?:a|b|i|p|br|em|li|ol|ul|dl|dt|dd|td|th|tr|h[1-6]|col|img|pre|div|span|code|form|"
                 r"meta|small|table|thead|tbody|input|style|title|header|figure|script|section|details|"
                 r"summary|strong|colgroup|svg|g|text|rect|line|defs|marker|circle)[\s>/]")


def test_values_are_escaped_for_their_place():
    out = html('<a href="{}" title="{}">{} {:.1%}</a>', 'x"y<', "it's", "a < b & 'c'", 0.5)
    assert out == '<a href="x&quot;y&lt;" title="it&#x27;s">a &lt; b &amp; \'c\' 50.0%</a>'
    assert isinstance(out, HTML)
    assert html("<p>{}</p>", html("<i>{}</i>", "<&>")) == "<p><i>&lt;&amp;&gt;</i></p>"  # markup kept
    assert html("{{x}} {!r}", "a") == "{x} 'a'"
    assert esc('"<') == '"&lt;' and esc_attr('"<') == "&quot;&lt;"


def test_joining_and_adding_escape_plain_strings():
    assert join([html("<br>"), "<x>"], " · ") == "<br> · &lt;x&gt;"
    assert html("<p>") + "<q>" == "<p>&lt;q&gt;" and "<q>" + html("<p>") == "&lt;q&gt;<p>"
    assert isinstance(html("<p>") + "x", HTML) and isinstance(join([]), HTML)


def test_fields_and_values_must_match():
    with pytest.raises(IndexError):
        html("<p>{}</p>")
    with pytest.raises(IndexError):
        html("<p>{}</p>", 1, 2)
    with pytest.raises(ValueError):
        html("<p>{name}</p>", 1)


def test_no_module_builds_markup_by_hand():
    """Every module of the extension builds HTML with markup.html: no f-string holds markup and
    nothing calls html.escape (the one place that does is markup.py)."""
    found = []
    for p in sorted((ROOT / "archive" / "sphinxext").glob("*.py")):
        if p.name == "markup.py":
            continue
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr) and any(
                    isinstance(v, ast.Constant) and TAG.search(v.value) for v in node.values):
                found.append(f"{p.name}:{node.lineno}: an f-string builds markup")
            if isinstance(node, (ast.Import, ast.ImportFrom)) and (
                    any(a.name == "html" for a in node.names) if isinstance(node, ast.Import)
                    else node.module == "html"):
                found.append(f"{p.name}:{node.lineno}: imports the html module")
    assert found == []


def test_a_hostile_file_name_injects_nothing(tmp_path):
    """A release file named ``dir"><img src=x onerror=alert(1)>/y.cu`` is listed, linked and
    shown, its name escaped in every href and text."""
    src = copy_site(tmp_path / "site")
    bad = src / "releases" / "rel-a" / HOSTILE
    bad.mkdir()
    (bad / "y.cu").write_text("int main() { return 0; }\n")
    for m in regenerate_manifests(src).values():
        manifest.write(m, src / "manifests")
    app, _, _ = build(src)
    out = Path(app.outdir)
    pages = [p for p in out.rglob("*.html")]
    assert not [p for p in pages if "<img src=x" in p.read_text(encoding="utf-8", errors="replace")]
    index = (out / "releases" / "rel-a" / "index.html").read_text(encoding="utf-8")
    assert 'href="dir&quot;&gt;&lt;img src=x onerror=alert(1)&gt;/y.cu.html"' in index
    page = (out / "releases" / "rel-a" / HOSTILE / "y.cu.html").read_text(encoding="utf-8")
    assert 'rel-a</a>/dir"&gt;&lt;img src=x onerror=alert(1)&gt;/y.cu</h1>' in page  # text: quotes kept
