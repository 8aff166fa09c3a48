"""A small synthetic project for the site extension, written by the tests themselves: two
fake releases (manifests generated from the bytes, like the real ones), a fake port module
with ``Ports:``/``DIVERGES:`` lines, MyST pages with an annotation and ``{src}`` links. No
upstream code: every file here is made up.
"""
from __future__ import annotations

import io
import textwrap
from pathlib import Path

from PIL import Image

from archive import manifest

KERN_A = """\
// a made-up kernel file
#include "kern.cuh"
void Layer::fpropActs(int inpIdx, float scale) {
\tif (scale == 0) {
\t\tgetActs().scale(scale);
\t}
}

void Layer::bpropActs(int inpIdx) {
    return;
}
"""
KERN_B = KERN_A.replace("return;", "int x = inpIdx;\n    return;").replace("a made-up", "a changed")
HOSTILE = "<html><body>\n<script>alert(1)</script>\n<b>bold & \"quoted\"</b>\n</body></html>\n"
TAIL = "def tail():\n    return 1"  # no final newline
# a long made-up file: lazily laid-out blocks above a deep link, one function porting two far ranges
LONG = "".join(f"float filler{n} = {n}.0f; // made-up line {n}\n" for n in range(1, 3001)) + "// " + "a made-up long line " * 30 + "\n"
CFG = "[conv1]\ntype=conv\nepsW=0.001\n"
PORT = '''\
"""A fake port module for the site tests."""


def unrelated():
    return 0


class Layer:
    def fprop_acts(self, x):
        """Ports: rel-a/src/kern.cu:3-7 Layer::fpropActs

        DIVERGES: a made-up divergence, to be listed.
        """
        return x * 2

    def bprop_acts(self, x):
        """Ports: rel-a/src/kern.cu:9-11 Layer::bpropActs"""
        return x


def far_apart(x):
    """Ports: rel-b/src2/long.cu:40-60
    Ports: rel-b/src2/long.cu:2800-2820

    DIVERGES: a made-up reason that runs over two lines, with ``literal`` markup and a
    citation of long.cu:45-46 that links to the lines.
    """
    return x


LAYERS = {"conv": Layer}  # a made-up registry: cfg type -> the class that reads it
'''
ANNOTATIONS = """\
# Notes on kern.cu

```{annotation} rel-a/src/kern.cu:3-7 Layer::fpropActs
The forward pass, **scaled**: see {src}`the tail <rel-a/tail.py:1-2>`.
```
"""
INDEX = """\
# Synthetic site

Read {src}`rel-a/src/kern.cu:3-7` and {src}`the page <rel-a/page.html>`.
"""
CONF = """\
extensions = ["myst_parser", "archive.sphinxext"]
project = "Synthetic"
html_theme = "archive"
archive_manifests_dir = "manifests"
archive_original_dir = "original"
archive_root = "."
archive_port_paths = ["port"]
archive_release_order = ["rel-a", "rel-b"]
"""


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def release_files() -> dict[str, dict[str, bytes]]:
    png = png_bytes()
    return {
        "rel-a": {"src/kern.cu": KERN_A.encode(), "page.html": HOSTILE.encode(), "tail.py": TAIL.encode(),
                  "layers/net.cfg": CFG.encode(), "img/pic.png": png},
        "rel-b": {"src2/kern.cu": KERN_B.encode(), "src2/long.cu": LONG.encode(), "page.html": HOSTILE.encode(), "img/pic.png": png,
                  "new.sh": b"#!/bin/sh\necho new\n", "include/kern.cuh": b"void f();\n"},
    }


def write_project(root: Path, *, port: str = PORT, annotations: str = ANNOTATIONS) -> Path:
    """Write the project under ``root``; returns the conf/source directory (``root/docs``...)."""
    (root / "manifests").mkdir(parents=True)
    for i, (release, files) in enumerate(release_files().items()):
        entries = {}
        for path, data in files.items():
            f = root / "original" / release / path
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(data)
            entries[path] = manifest.describe(data, path, "100755" if path.endswith(".sh") else "100644")
        manifest.write(manifest.Manifest(
            id=release, upstream=f"https://example.org/{release}", commit=f"{i + 1}" * 40,
            commit_date=f"201{i + 1}-01-01T00:00:00+00:00", license="made up",
            provenance=f"synthetic release {release}", files=entries), root / "manifests")
    (root / "port").mkdir()
    (root / "port" / "mod.py").write_text(port)
    docs = root / "docs"
    (docs / "annotations").mkdir(parents=True)
    (docs / "annotations" / "notes.md").write_text(annotations)
    (docs / "index.md").write_text(INDEX)
    (root / "conf.py").write_text(CONF)
    return root


def build(root: Path, *, parallel: int = 1):
    """Build the project's HTML with Sphinx; returns (app, status text, warnings text)."""
    return build_dirs(root / "docs", root, root / "_build" / "html", root / "_build" / "doctrees",
                      parallel=parallel)


def build_dirs(srcdir: Path, confdir: Path, outdir: Path, doctreedir: Path, *, parallel: int = 1):
    """One Sphinx HTML build in this process, isolated as ``sphinx-build`` isolates it (docutils'
    global registries are restored afterwards, so several builds can run in one test session)."""
    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    status, warning = io.StringIO(), io.StringIO()
    with patch_docutils(confdir), docutils_namespace():
        app = Sphinx(str(srcdir), str(confdir), str(outdir), str(doctreedir), "html",
                     status=status, warning=warning, parallel=parallel)
        app.build()
    return app, status.getvalue(), warning.getvalue()


def dedent(s: str) -> str:
    return textwrap.dedent(s)
