"""archive.sphinxext.idents: the identifier index (names and counts for the search page, the
shards a click loads: definitions with their kind, end line and scope, references with their
line of context), ctags definitions, cfg layer types leading to the classes that read them."""
from __future__ import annotations

import json

import pytest

from archive.sphinxext import idents
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
