"""Fixtures: the synthetic project, built once per module (the build is the slow part)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.archive.sphinxext import synthetic


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str, str]:
    """(output dir, status text, warnings text) of the synthetic site."""
    root = synthetic.write_project(tmp_path_factory.mktemp("site"))
    _, status, warnings = synthetic.build(root)
    return root / "_build" / "html", status, warnings
