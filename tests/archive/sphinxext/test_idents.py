"""archive.sphinxext.idents: the identifier index (names and counts for the search page, the
shards a click loads: definitions with their kind, end line and scope, references with their
line of context), ctags definitions, cfg layer types leading to the classes that read them."""
from __future__ import annotations

import json
import re

import pytest

from archive.sphinxext import highlight, idents
from tests.archive.sphinxext.siteroot import page

needs_ctags = pytest.mark.skipif(not idents.ctags_available(),
                                 reason="Universal Ctags is not installed (apt-get install universal-ctags)")


def assigned(js: str) -> dict:
    """The object a ``window.NAME={...};`` script assigns."""
    return json.loads(js.split("=", 1)[1].rstrip().rstrip(";"))


def shard(out, name: str) -> tuple[dict, list[str]]:
    """The index entry of ``name`` (from its ``_ids/<k>.js``) and the labels of the indexed files."""
    text = page(out, f"_ids/{idents.shard_of(name)}.js")  # window.ARCHIVE_ID_SHARD(k,{...});
    entries = json.loads(text[text.index("(", text.index("SHARD")) + 1:].split(",", 1)[1].rstrip().rstrip(";").rstrip(")"))
    return entries[name], [f[0] for f in assigned(page(out, "_ids/files.js"))["files"]]


def test_identifier_index(built):
    out = built[0]
    names = assigned(page(out, "identifiers.js"))["names"]
    assert names["fpropActs"][0] >= 1 and names["fprop_acts"][0] >= 1
    entry, files = shard(out, "fpropActs")
    assert any(files[f] == "rel-a/src/kern.cu" and line == 3 for f, line, *_ in entry["d"])
    assert any(files[f] == "rel-a/src/kern.cu" and line == 3 and "fpropActs" in ctx for f, line, ctx in entry["r"])
    port, files = shard(out, "fprop_acts")
    assert any(files[f] == "port/mod.py" for f, *_ in port["d"])


@needs_ctags
def test_ctags_definitions_with_scope_and_end(built):
    entry, files = shard(built[0], "fpropActs")
    defs = [(files[f], line, kind, end, scope) for f, line, kind, end, scope in entry["d"]]
    assert ("rel-a/src/kern.cu", 3, "function", 7, "Layer") in defs  # the body, not a guess
    bprop, files = shard(built[0], "bprop_acts")
    assert [(files[f], line, kind) for f, line, kind, *_ in bprop["d"]] == [("port/mod.py", 16, "member")]


def test_cfg_type_leads_to_the_class_that_reads_it(built):
    """A cfg type has a namespace of its own: ``type=conv``, not the code's names ``conv``."""
    names = assigned(page(built[0], "identifiers.js"))["names"]
    assert names["type=conv"][0] == 1 and names.get("conv", [0])[0] == 0
    entry, files = shard(built[0], "type=conv")
    assert [(files[f], line) for f, line, _ in entry["r"]] == [("rel-a/layers/net.cfg", 2)]
    kinds = {(files[f], kind, cls) for f, _, kind, _, cls in entry["d"]}
    assert ("port/mod.py", "reads type", "Layer") in kinds
    if idents.ctags_available():
        assert ("port/mod.py", "layer class", "Layer") in kinds


_NAME_SPAN = re.compile(r'<span class="(n|na|nb|bp|nc|no|nd|ni|ne|nf|fm|py|nl|nn|nx|nt|nv|vc|vg|vi|vm)">([^<]*)</span>')
_NAME_LINK = re.compile(r'<a(?: class="([a-z]+)")? href>([^<]*)</a>')


def test_identifiers_are_links_and_weigh_no_more(built):
    """Issue 22 item 1: every name in a listing is an ``<a href>`` (focusable, opens in a new tab
    once the script sets its ``#i:<name>``), method calls included, and the page is no heavier
    than with the ``<span>`` s it replaces."""
    src = page(built[0], "releases/rel-b/src2/kern.cu.html")
    links = _NAME_LINK.findall(src)
    assert ("nf", "Layer::fpropActs") in links and ("", "getActs") in links, links  # a method call
    assert {c for c, _ in links} <= highlight.IDENT_CLASSES - {"n"} | {""}  # "n", the most common, has none
    assert not [t for _, t in _NAME_SPAN.findall(src) if re.fullmatch(r"[A-Za-z_]\w*((::|\.)[A-Za-z_]\w*)*", t)]
    as_spans = _NAME_LINK.sub(lambda m: f'<span class="{m[1] or "n"}">{m[2]}</span>', src)
    assert len(src.encode()) <= len(as_spans.encode()) - len(links)  # a byte less per name, 11 for "n"
    port = page(built[0], "port/mod.html")
    assert '<a class="nf" href>fprop_acts</a>' in port
    cfg = page(built[0], "releases/rel-a/layers/net.cfg.html")
    assert '<a class="na" href>type</a>' in cfg  # cfg keys, also on the lines cfgxref rewrites
    assert '<span class="s"><a href>conv</a></span>' in cfg  # a type with no class found: its panel


def test_only_names_become_links():
    """Operators, strings and a decorator's ``@`` stay ``<span>``: a link must have a name to lead to."""
    hl = highlight.highlight("@staticmethod\ndef f(self):\n    return self.x + 'Layer'\n", "m.py", port=True)
    text = "\n".join(hl.lines)
    assert '<a class="nf" href>f</a>' in text and '<a class="bp" href>self</a>' in text and "<a href>x</a>" in text
    assert '<span class="nd">@staticmethod</span>' in text and "<a class=\"s" not in text
    assert all(m[1] is None or m[1] in highlight.IDENT_CLASSES for m in _NAME_LINK.finditer(text))
