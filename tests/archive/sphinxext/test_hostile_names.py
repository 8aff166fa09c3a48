"""Release and experiment file names that carry HTML (issue 24): a name is data, never markup.

A release file ``dir"><img src=x onerror=alert(1)>/y.cu`` and an experiment params file
``layer-params-2"><img src=x>.cfg`` are added to a copy of the test root; the release index, the
file's own page and the experiment pages must show them escaped: no ``<img`` element appears
anywhere in the built HTML (the names hold the only ones), and the attribute values stay
intact. (``archive/sphinxext/markup.py`` escapes every value; this is the end-to-end check.)
"""
from __future__ import annotations

import re

import pytest

from archive import manifest
from tests.archive.sphinxext.siteroot import regenerate_manifests
from tests.archive.test_experiment_history import write_folder

EVIL_DIR = 'dir"><img src=x onerror=alert(1)>'
EVIL_PARAMS = 'layer-params-2"><img src=x>.cfg'


def _injected(html: str) -> list[str]:
    """The names' ``<img src=x ...>`` as markup (escaped, it reads ``&lt;img`` or ``%3Cimg``)."""
    return re.findall(r"<img\s+src=x[\s>][^>]*>?", html)


@pytest.mark.sphinx("html", testroot="site", srcdir="hostile-names")
def test_file_names_with_html_are_escaped(app_params, make_app):
    args, kwargs = app_params
    root = kwargs["srcdir"]
    evil = root / "releases" / "rel-a" / EVIL_DIR
    evil.mkdir()
    (evil / "y.cu").write_text("__global__ void k() {}\n", encoding="utf-8")
    layers = write_folder(root / "layers")
    (layers / EVIL_PARAMS).write_text("# uses def file layers-91.cfg\n[conv1]\nepsW=0.1\n")
    for m in regenerate_manifests(root).values():
        manifest.write(m, root / "manifests")
    with open(root / "conf.py", "a") as f:
        f.write("archive_experiments_dir = 'layers'\n")
    app = make_app(*args, **kwargs)
    app.build()
    out = app.outdir
    pages = {p.relative_to(out).as_posix(): p.read_text(encoding="utf-8", errors="replace")
             for p in out.rglob("*.html")}
    # the names reached the pages (else nothing was tested) ...
    assert any("onerror=alert(1)" in html.replace("&#61;", "=") for html in pages.values())
    assert any("2&quot;&gt;&lt;img src=x&gt;" in html or "<img src=x>" in html
               for name, html in pages.items() if name.startswith("experiments/"))
    # ... and nowhere as markup
    bad = {name: hits for name, html in pages.items() if (hits := _injected(html))}
    assert not bad, {k: v[:2] for k, v in sorted(bad.items())}
