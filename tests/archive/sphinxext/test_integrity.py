"""archive.sphinxext.integrity: a wrong citation, annotation or link, or an altered original, fails the build."""
from __future__ import annotations

import re

import pytest

from archive.sphinxext.integrity import IntegrityError
from tests.archive.sphinxext.siteroot import replace_in, site_file

site = pytest.mark.sphinx  # each test builds its own copy of the test root, in srcdir


def build_fails(app_params, make_app, name: str, old: str, new: str) -> str:
    """The message of the build of the test root with ``old`` replaced by ``new`` in file ``name``."""
    args, kwargs = app_params
    replace_in(kwargs["srcdir"] / name, old, new)
    with pytest.raises(IntegrityError) as err:
        make_app(*args, **kwargs).build()
    return str(err.value)


@site("html", testroot="site", srcdir="integrity-ports-line")
def test_bad_ports_line_fails_the_build(app_params, make_app):
    msg = build_fails(app_params, make_app, "port/mod.py", "kern.cu:9-11", "kern.cu:9-40")
    assert "port/mod.py:17: lines 9-40 lie outside rel-a/src/kern.cu (11 lines)" in msg


@site("html", testroot="site", srcdir="integrity-ports-symbol")
def test_ports_symbol_away_fails_the_build(app_params, make_app):
    msg = build_fails(app_params, make_app, "port/mod.py", "kern.cu:9-11", "kern.cu:1-2")
    assert "port/mod.py:17: 'Layer::bpropActs' does not appear in rel-a/src/kern.cu:1-2" in msg


@site("html", testroot="site", srcdir="integrity-annotation")
def test_bad_annotation_fails_the_build(app_params, make_app):
    msg = build_fails(app_params, make_app, "annotations/notes.md", "kern.cu:3-7", "kern.cu:8-9")
    assert re.search(r"annotations/notes\.md:3: annotation rel-a/src/kern\.cu:8-9: "
                     r"'Layer::fpropActs' does not appear", msg), msg
    msg = build_fails(app_params, make_app, "annotations/notes.md", "kern.cu:8-9", "kern.cu:3-70")
    assert "notes.md:3: annotation rel-a/src/kern.cu:3-70: lines 3-70 lie outside" in msg


@site("html", testroot="site", srcdir="integrity-src-link")
def test_bad_src_link_and_unreadable_annotation_fail_the_build(app_params, make_app):
    notes = site_file("annotations/notes.md")
    broken = notes.replace("tail.py:1-2", "tail.py:2-3") + "\n```{annotation} nonsense\nx\n```\n"
    msg = build_fails(app_params, make_app, "annotations/notes.md", notes, broken)
    assert "notes.md:4: rel-a/tail.py:2-3: lines 2-3 lie outside rel-a/tail.py (2 lines)" in msg
    assert "notes.md:7: cannot read target 'nonsense'" in msg


@site("html", testroot="site", srcdir="integrity-altered")
def test_altered_original_fails_the_build(app_params, make_app):
    args, kwargs = app_params
    (kwargs["srcdir"] / "releases/rel-a/tail.py").write_text("altered\n")
    with pytest.raises(IntegrityError, match=r"releases/rel-a/tail.py: SHA-256 differs"):
        make_app(*args, **kwargs).build()
