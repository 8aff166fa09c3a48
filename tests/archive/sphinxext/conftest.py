"""The test root ``roots/test-site`` built once per test process (see :mod:`siteroot`)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.archive.sphinxext.siteroot import build, copy_site


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> tuple[Path, str, str]:
    """(output dir, status text, warnings text) of the test root, built once per test process."""
    app, status, warnings = build(copy_site(tmp_path_factory.mktemp("site") / "test-site"))
    return Path(app.outdir), status, warnings
