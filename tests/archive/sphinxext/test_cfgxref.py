"""archive.sphinxext.cfgxref: in a cfg's source page ``inputs=`` names link to their sections,
``type=``/``neuron=`` values to the class the release's C++ makes for them, and a def file and its
params file (the compat table's pairs) link each other, section to section. Built on a copy of
the test root with made-up cfg and C++ files."""
from __future__ import annotations

import html as html_mod
import json
import re
from pathlib import Path

from archive import manifest
from tests.archive.sphinxext.siteroot import build, copy_site, regenerate_manifests

DEF = "[data]\ntype=data\n\n[pool1a]\ntype=pool\ninputs=data\n\n[fc9]\ntype=fc\ninputs=pool1a, data\nneuron=tanh[1,2]\n"
PARAMS = "[pool1a]\nepsW=0.1\n\n[fc9]\nepsW=0.01\n\n# killed on guppy9 at epoch 3\n"
MAKER = ("class FCLayer {\n};\n\nclass TanhNeuron {\n};\n\nvoid* make(const char* type) {\n"
         '    if (type == "fc") {\n        return new FCLayer();\n    }\n'
         '    if (type == "tanh") {\n        return new TanhNeuron();\n    }\n    return 0;\n}\n')


def test_cfg_cross_references(tmp_path):
    src = copy_site(tmp_path / "site")
    rel = src / "releases" / "rel-a"
    (rel / "layers" / "layers-9.cfg").write_text(DEF)
    (rel / "layers" / "layer-params-9.cfg").write_text(PARAMS)
    (rel / "src" / "maker.cu").write_text(MAKER)
    for m in regenerate_manifests(src).values():
        manifest.write(m, src / "manifests")
    (src / "compat").mkdir()
    (src / "compat" / "alexnet-2012.json").write_text(json.dumps({"release": "rel-a", "rows": [
        {"cfg": "layers/layers-9.cfg", "params": ["layers/layer-params-9.cfg"], "parsed": True}]}))
    with open(src / "conf.py", "a") as f:
        f.write("archive_search_exclude = ['rel-b']\n")
    app, _, warnings = build(src)
    out = Path(app.outdir)
    page = (out / "releases" / "rel-a" / "layers" / "layers-9.cfg.html").read_text()
    links = dict(re.findall(r'<a class="cfgx" href="([^"]+)"[^>]*>([^<]+)</a>', page))
    by_name = {v: k for k, v in links.items()}
    assert by_name["pool1a"] == "#L4" and by_name["data"] == "#L1"               # inputs= to [section]
    assert by_name["fc"] == "../src/maker.cu.html#L1"                              # type= to the class
    assert by_name["tanh"] == "../src/maker.cu.html#L4"                            # neuron= to its class
    assert "pool" not in by_name                                                   # no class: no link
    assert 'href="layer-params-9.cfg.html#L4"' in page                             # [pool1a] in the params file
    assert 'Def file; its params files: <a href="layer-params-9.cfg.html">' in page
    code = "".join(re.findall(r'<pre class="code highlight[^"]*">(.*?)</pre>', page, re.S))
    assert html_mod.unescape(re.sub(r"<[^>]+>", "", code)) == DEF                   # the text unchanged
    assert "&lt;code&gt;" not in page
    # the full-text index (fulltext.py) takes the listings of the releases not excluded
    assert 'data-pagefind-body data-pagefind-meta="title:rel-a/layers/layers-9.cfg"' in page
    assert "data-pagefind-body" not in (out / "releases" / "rel-b" / "src2" / "kern.cu.html").read_text()
    assert "Not indexed: rel-b" in (out / "search-code.html").read_text()   # the merge of issues 21 and 23b: "who wrote each line" is markup
    params = (out / "releases" / "rel-a" / "layers" / "layer-params-9.cfg.html").read_text()
    assert 'Params file of the def file <a href="layers-9.cfg.html">' in params
    assert 'href="layers-9.cfg.html#L8"' in params                                 # [fc9] in the def file
