"""the build driver (archive.sphinxext.pages): a clean build, every page kind, offline pages, no
build state in the output, unchanged pages not rewritten, a parallel build, the real site."""
from __future__ import annotations

import re

import pytest

from archive import manifest
from tests.archive.sphinxext.siteroot import SITE, margin_of, regenerate_manifests, replace_in


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


def test_output_holds_no_build_state(built):
    out = built[0]
    assert not list(out.rglob("*.pickle")) and not list(out.rglob("*.doctree"))
    assert not list(out.rglob("archive-pages.json")) and (out / "index.html").is_file()


def test_offline(built):
    for f in built[0].rglob("*.html"):
        html = f.read_text(encoding="utf-8")
        assert not re.search(r'<(script|img|iframe)[^>]+src="(https?:)?//', html), f
        assert not re.search(r'<link[^>]+href="(https?:)?//', html), f
        assert "@import" not in html and "fonts.googleapis" not in html


@pytest.mark.sphinx("html", testroot="site", srcdir="pages-unchanged")
def test_unchanged_pages_are_not_rewritten(app_params, make_app):
    args, kwargs = app_params
    first = make_app(*args, **kwargs)
    first.build()
    assert re.search(r"archive: \d+ generated pages written, 0 unchanged", first.status.getvalue())
    replace_in(first.srcdir / "annotations" / "notes.md", "scaled", "SCALED")
    second = make_app(*args, **kwargs)
    second.build()
    assert "archive: 1 generated pages written" in second.status.getvalue()  # only kern.cu's page
    assert "<strong>SCALED</strong>" in (second.outdir / "releases/rel-a/src/kern.cu.html").read_text()


@pytest.mark.sphinx("html", testroot="site", srcdir="pages-parallel", parallel=2)
def test_parallel_build_merges_annotations(app_params, make_app):
    """With -j 2 the documents are read in worker processes; their annotations must merge."""
    args, kwargs = app_params
    for n in range(1, 9):
        (kwargs["srcdir"] / "annotations" / f"extra{n}.md").write_text(
            f"# Extra {n}\n\n```{{annotation}} rel-a/src/kern.cu:{n}\nExtra note number {n}.\n```\n")
    app = make_app(*args, **kwargs)
    app.build()
    status, warnings = app.status.getvalue(), app.warning.getvalue()
    assert warnings == "", warnings
    assert re.search(r"reading sources\.\.\. \S+ \S+ annotations/extra\d \.\. ", re.sub(r"\x1b\[[0-9;]*m", "", status))
    margin = margin_of((app.outdir / "releases/rel-a/src/kern.cu.html").read_text())
    for n in range(1, 9):
        assert f"Extra note number {n}." in margin


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


def test_the_test_roots_manifests_match_its_files():
    """The committed manifests of roots/test-site are what its files give (as the real ones are
    generated from git): after editing a file there, write ``regenerate_manifests()`` back."""
    assert manifest.load_all(SITE / "manifests") == regenerate_manifests()
