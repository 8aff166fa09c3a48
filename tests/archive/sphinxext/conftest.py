"""sphinx.testing's fixtures for the extension's tests: their test roots are ``roots/test-<name>``;
the test root ``roots/test-site`` is also built once per test process for the tests that only
read the site (see :mod:`siteroot`).

The fixtures are imported here rather than loaded as a plugin for the whole suite
(``pytest_plugins``), since the GPU machine runs the port's tests without Sphinx installed.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from sphinx.testing import fixtures as sphinx_fixtures
from sphinx.testing.fixtures import (app_params, make_app, shared_result,  # noqa: F401 - fixtures
                                     sphinx_test_tempdir, test_params)

from tests.archive.sphinxext.siteroot import ROOTS, build, copy_site


def pytest_configure(config: pytest.Config) -> None:
    sphinx_fixtures.pytest_configure(config)  # the sphinx(...) marker


@pytest.fixture(scope="session")
def rootdir() -> Path:
    """Where ``@pytest.mark.sphinx(testroot=...)`` finds its roots (sphinx.testing's fixture)."""
    return ROOTS


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> tuple[Path, str, str]:
    """(output dir, status text, warnings text) of the test root, built once per test process."""
    app, status, warnings = build(copy_site(tmp_path_factory.mktemp("site") / "test-site"))
    return Path(app.outdir), status, warnings
