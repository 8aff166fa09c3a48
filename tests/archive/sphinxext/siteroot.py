"""Helpers of the extension's tests, which run on Sphinx's own test machinery
(``sphinx.testing``), as Sphinx and sphinx-design test theirs: each project is a test root under
``roots/`` (``roots/test-site``: two made-up releases, a fake port module, MyST pages). A test
that builds a variant of it marks itself ``@pytest.mark.sphinx("html", testroot="site",
srcdir=<its own name>)`` and gets the root copied there by the ``app_params`` fixture and built by
``make_app`` (a :class:`sphinx.testing.util.SphinxTestApp`); the tests that only read the built
site share one build per test process (the ``built`` fixture). No upstream code: every file
there is made up.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from sphinx.testing.util import SphinxTestApp

from archive import manifest

ROOTS = Path(__file__).parent / "roots"
SITE = ROOTS / "test-site"


def site_file(path: str) -> str:
    """A file of the test root, as text (``releases/rel-a/src/kern.cu``...)."""
    return (SITE / path).read_text(encoding="utf-8")


def replace_in(f: Path, old: str, new: str) -> None:
    """Change a file of a copied test root (``old`` must be there)."""
    text = f.read_text(encoding="utf-8")
    assert old in text, f"{f}: {old!r} is not in the test root's file"
    f.write_text(text.replace(old, new), encoding="utf-8")


def copy_site(dest: Path) -> Path:
    """The test root copied to ``dest``, for a build that outlives one test."""
    shutil.copytree(SITE, dest)
    return dest


def build(srcdir: Path, *, parallel: int = 0) -> tuple[SphinxTestApp, str, str]:
    """One HTML build of ``srcdir`` outside a test's fixtures: (app, status text, warnings text)."""
    app = SphinxTestApp("html", srcdir=srcdir, parallel=parallel)
    try:
        app.build()
    finally:
        app.cleanup()
    return app, app.status.getvalue(), app.warning.getvalue()


def regenerate_manifests(root: Path = SITE) -> dict[str, manifest.Manifest]:
    """The manifests of the test root's releases, generated from their bytes (as the real ones
    are from git); ``test_pages.test_the_test_roots_manifests_match_its_files`` compares."""
    out = {}
    for i, rel in enumerate(sorted(p.name for p in (root / "releases").iterdir())):
        files = {}
        for f in sorted((root / "releases" / rel).rglob("*")):
            if f.is_file():
                path = f.relative_to(root / "releases" / rel).as_posix()
                files[path] = manifest.describe(f.read_bytes(), path,
                                                "100755" if f.stat().st_mode & 0o111 else "100644")
        out[rel] = manifest.Manifest(id=rel, upstream=f"https://example.org/{rel}", commit=f"{i + 1}" * 40,
                                     commit_date=f"201{i + 1}-01-01T00:00:00+00:00", license="made up",
                                     provenance=f"synthetic release {rel}", files=files)
    return out


def page(out: Path, name: str) -> str:
    return (out / name).read_text(encoding="utf-8")


def margin_of(html: str) -> str:
    return "".join(re.findall(r'<div class="margin">(.*?)</div></div>', html, re.S))
