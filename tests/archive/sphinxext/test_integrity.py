"""archive.sphinxext.integrity: a wrong citation, annotation or link, or an altered original, fails the build."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from archive.sphinxext.integrity import IntegrityError
from tests.archive.sphinxext.siteroot import build, copy_site, site_file


def build_fails(tmp_path: Path, edits: dict[str, tuple[str, str]]) -> str:
    root = copy_site(tmp_path / "site", edits)
    with pytest.raises(IntegrityError) as err:
        build(root)
    return str(err.value)


def test_bad_ports_line_fails_the_build(tmp_path):
    msg = build_fails(tmp_path, {"port/mod.py": ("kern.cu:9-11", "kern.cu:9-40")})
    assert "port/mod.py:17: lines 9-40 lie outside rel-a/src/kern.cu (11 lines)" in msg


def test_ports_symbol_away_fails_the_build(tmp_path):
    msg = build_fails(tmp_path, {"port/mod.py": ("kern.cu:9-11", "kern.cu:1-2")})
    assert "port/mod.py:17: 'Layer::bpropActs' does not appear in rel-a/src/kern.cu:1-2" in msg


def test_bad_annotation_fails_the_build(tmp_path):
    msg = build_fails(tmp_path, {"annotations/notes.md": ("kern.cu:3-7", "kern.cu:8-9")})
    assert re.search(r"annotations/notes\.md:3: annotation rel-a/src/kern\.cu:8-9: "
                     r"'Layer::fpropActs' does not appear", msg), msg
    msg = build_fails(tmp_path / "b", {"annotations/notes.md": ("kern.cu:3-7", "kern.cu:3-70")})
    assert "notes.md:3: annotation rel-a/src/kern.cu:3-70: lines 3-70 lie outside" in msg


def test_bad_src_link_and_unreadable_annotation_fail_the_build(tmp_path):
    notes = site_file("annotations/notes.md")
    broken = notes.replace("tail.py:1-2", "tail.py:2-3") + "\n```{annotation} nonsense\nx\n```\n"
    msg = build_fails(tmp_path, {"annotations/notes.md": (notes, broken)})
    assert "notes.md:4: rel-a/tail.py:2-3: lines 2-3 lie outside rel-a/tail.py (2 lines)" in msg
    assert "notes.md:7: cannot read target 'nonsense'" in msg


def test_altered_original_fails_the_build(tmp_path):
    root = copy_site(tmp_path / "site")
    (root / "releases/rel-a/tail.py").write_text("altered\n")
    with pytest.raises(IntegrityError, match=r"original/rel-a/tail.py: SHA-256 differs"):
        build(root)
