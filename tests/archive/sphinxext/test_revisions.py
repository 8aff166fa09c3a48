"""archive.sphinxext.revisions: who wrote each line, the revision pages and the timeline.

A copy of the test root gets made-up histories (git commands, no upstream code): rel-a in two
SVN-like revisions (r7 writes ``Layer::fpropActs``, r9 adds ``bpropActs``), rel-b one commit of
its own tree on top (its ``src2/kern.cu`` is rel-a's ``src/kern.cu`` moved, one line changed,
one added). The manifests of the copy name those commits. Without histories (the shared
build) the pages say so and the source pages keep the comparison with the other release.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from archive import history as h
from archive.manifest import load, write
from tests.archive.sphinxext.siteroot import build, copy_site, page
from tests.archive.test_history import commit, git

KERN_R7 = "".join((Path(__file__).parent / "roots/test-site/releases/rel-a/src/kern.cu")
                  .read_text().splitlines(keepends=True)[:7])


def _history(root: Path, base: Path) -> dict[str, str]:
    pins = {}
    rels = root / "releases"
    a = base / "up-a"
    a.mkdir()
    git(a, "init", "-q")
    commit(a, {"src/kern.cu": KERN_R7}, "fprop\n\ngit-svn-id: http://example.invalid/svn/trunk@7 u",
           "2011-03-01T12:00:00+00:00")
    shutil.copytree(rels / "rel-a", a, dirs_exist_ok=True)
    git(a, "add", "-A")
    pins["rel-a"] = commit(a, {}, "bprop & <b>tags</b>\n\ngit-svn-id: http://example.invalid/svn/trunk@9 u",
                           "2011-04-01T12:00:00+00:00")
    b = base / "up-b"
    shutil.copytree(rels / "rel-b", b)
    git(b, "init", "-q")
    git(b, "add", "-A")
    pins["rel-b"] = commit(b, {}, "successor", "2014-07-15T12:00:00+00:00")
    for rel, repo in (("rel-a", a), ("rel-b", b)):
        git(repo, "branch", "-q", "-f", rel, pins[rel])
        bundle = base / f"{rel}.bundle"
        git(repo, "bundle", "create", "-q", str(bundle), f"refs/heads/{rel}")
        h.fetch_bundle(rel, pins[rel], bundle, rels)
        m = load(rel, root / "manifests")
        write(dataclasses.replace(m, commit=pins[rel]), root / "manifests")
    return pins


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("revisions")
    root = copy_site(base / "test-site")
    pins = _history(root, base)
    app, status, warnings = build(root)
    assert "ERROR" not in warnings, warnings
    return Path(app.outdir), pins, status


def test_provenance_json_per_file(site):
    out, pins, status = site
    d = json.loads((out / "provenance/rel-b/src2/kern.cu.json").read_text())
    assert set(d) == {"lines", "revisions"}
    labels = [d["revisions"][i]["svn"] or d["revisions"][i]["summary"] for i in d["lines"]]
    assert labels == ["successor", 7, 7, 7, 7, 7, 7, 9, 9, "successor", 9, 9]
    assert {r["id"] for r in d["revisions"]} >= {pins["rel-b"]}
    assert all(set(r) == {"id", "svn", "date", "summary"} for r in d["revisions"])
    a = json.loads((out / "provenance/rel-a/src/kern.cu.json").read_text())
    assert [a["revisions"][i]["svn"] for i in a["lines"]] == [7] * 7 + [9] * 4
    assert a["revisions"][0]["date"] == "2011-03-01"
    assert (out / "provenance/rel-a/img/pic.png.json").is_file()  # binary: one entry
    assert "blame of" in status


def test_source_page_origin(site):
    out, _, _ = site
    src = page(out, "releases/rel-b/src2/kern.cu.html")
    assert "10 of 12 lines were public before this release" in src
    assert "2 were written in its own history (1 revision)" in src
    assert 'class="ln oe1" id="L1" data-r="2"' in src and 'id="L2" data-r="0"' in src
    data = json.loads(src.split('<script type="application/json" class="origin-data">')[1].split("</script>")[0])
    assert [r[1] for r in data] == ["r7", "r9", data[2][1]]
    assert data[0][0] == "../../../revisions/r7.html" and data[0][4] == 0 and data[2][4] == 1
    assert 'class="pv-legend"' not in src  # the old gutter gives way
    assert 'href="../../../provenance/rel-b/src2/kern.cu.json"' in src


def test_revision_pages_and_timeline(site):
    out, pins, _ = site
    r9 = page(out, "revisions/r9.html")
    assert "bprop &amp; &lt;b&gt;tags&lt;/b&gt;" in r9 and "<b>tags" not in r9  # escaped
    assert 'rel="prev" href="r7.html"' in r9 and f"revisions/{pins['rel-b'][:8]}.html" not in r9
    assert f'rel="next" href="{pins["rel-b"][:8]}.html"' in r9
    assert "<dt>SVN revision</dt><dd>9</dd>" in r9
    assert "src/kern.cu" in r9 and 'class="t ins">void Layer::bpropActs(int inpIdx) {' in r9
    index = page(out, "revisions/index.html")
    assert 'src="timeline.svg"' in index and (out / "revisions/timeline.svg").read_bytes().startswith(b"<?xml")
    assert index.count('<tr><td><span class="oe') == 3


def test_without_history_the_site_says_so(built):
    out = built[0]
    assert "Not shown: the history of rel-a, rel-b is not fetched" in page(out, "revisions/index.html")
    src = page(out, "releases/rel-b/src2/kern.cu.html")
    assert 'class="pv-legend"' in src and "Who wrote each line is not shown" in src
    assert not (out / "provenance").exists()


def test_function_history_through_the_revisions(site):
    from archive.sphinxext.idents import ctags_available
    if not ctags_available():
        pytest.skip("Universal Ctags is not installed (apt-get install universal-ctags)")
    out, pins, _ = site
    hist = page(out, "history/src/kern.cu.html")
    fprop = hist[hist.index('id="f-Layer-fpropActs"'):hist.index('id="f-Layer-bpropActs"')]
    bprop = hist[hist.index('id="f-Layer-bpropActs"'):]
    assert "Changed in 1 public revision " in fprop and 'href="../../revisions/r7.html"' in fprop
    assert "Changed in 2 public revisions " in bprop
    assert 'href="../../revisions/r9.html"' in bprop and f'href="../../revisions/{pins["rel-b"][:8]}.html"' in bprop
