"""Shared test fixtures. Tests that need the fetched releases skip, saying why, when they are
absent; with ``ARCHIVE_REQUIRE_RELEASES=1`` (set by CI once it has installed them) they fail
instead, so that a run meant to cover the real releases cannot pass by skipping them."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from archive import ORIGINAL, ROOT
from port import backend

SHARED = ROOT.parent / "shared"
CIFAR_SUBSET = SHARED / "data" / "cifar-10-subset"
RELEASES = ("alexnet-2012", "cuda-convnet-r561", "cuda-convnet2")


def releases_required() -> bool:
    return os.environ.get("ARCHIVE_REQUIRE_RELEASES") == "1"


def release_dir(release: str) -> Path:
    """``original/<release>``, or skip the test saying how to fetch it."""
    d = ORIGINAL / release
    if not (d.is_dir() and any(d.iterdir())):
        why = (f"release {release} is not fetched (original/{release} is empty); "
               f"run `make original` to run this test")
        if releases_required():
            pytest.fail(f"{why} (ARCHIVE_REQUIRE_RELEASES=1: no release may be missing)")
        pytest.skip(why)
    return d


@pytest.fixture
def alexnet_2012() -> Path:
    return release_dir("alexnet-2012")


@pytest.fixture(scope="session")
def real_site(tmp_path_factory) -> Path:
    """The site of the three real releases: ``$ARCHIVE_SITE`` when set (CI builds it with
    ``make site`` first, warnings as errors), otherwise built here once per test process.
    Tests using it carry ``xdist_group("real_site")`` so that one worker builds it."""
    for release in RELEASES:
        release_dir(release)
    if os.environ.get("ARCHIVE_SITE"):
        out = Path(os.environ["ARCHIVE_SITE"]).resolve()
        if not (out / "index.html").is_file():
            pytest.fail(f"ARCHIVE_SITE={out} holds no built site (no index.html)")
        return out
    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    tmp = tmp_path_factory.mktemp("real-site")
    out = tmp / "site"
    status, warning = io.StringIO(), io.StringIO()
    with patch_docutils(ROOT), docutils_namespace():  # as sphinx-build isolates a build
        Sphinx(ROOT / "docs", ROOT, out, tmp / "doctrees", "html", status=status, warning=warning,
               parallel=2).build()
    warnings = warning.getvalue()
    # Only errors fail here: in a test process that has run other Sphinx builds, docutils
    # warns that directives are already registered. `make site` (-W) holds the warnings.
    if "ERROR" in warnings:
        pytest.fail(f"the real site built with errors:\n{warnings}")
    return out


@pytest.fixture
def cifar_subset() -> Path:
    if not (CIFAR_SUBSET / "data_batch_1").is_file():
        pytest.skip(f"the CIFAR-10 subset is not at {CIFAR_SUBSET}")
    return CIFAR_SUBSET


# ---- the array backend ----------------------------------------------------------------------------
# Every test runs on NumPy, whatever the machine has (on a GPU machine `auto` would pick CuPy, and
# tests that compare with NumPy would then compare device arrays). The tests that can take a
# backend ask for the `xp_backend` fixture and run once per name in $ALEXNET_TEST_BACKENDS
# (default "numpy,strict": NumPy, and port.strict, the CuPy stand-in; benchmarks/gpu.sh sets
# "cupy"). Tests marked `strict_heavy` (thousands of tiny operations, ~5x slower on the stand-in)
# skip the strict run. Subprocesses inherit the test's backend through $ALEXNET_BACKEND.
TEST_BACKENDS = [b for b in os.environ.get("ALEXNET_TEST_BACKENDS", "numpy,strict").split(",") if b]


def pytest_configure(config):
    os.environ[backend.ENV_VAR] = "numpy"
    config.addinivalue_line("markers", "backend: takes the array backend (xp_backend), runs per $ALEXNET_TEST_BACKENDS")
    config.addinivalue_line("markers", "strict_heavy: too many tiny operations for the strict stand-in; not run on it")


def pytest_generate_tests(metafunc):
    if "xp_backend" in metafunc.fixturenames:
        metafunc.parametrize("xp_backend", TEST_BACKENDS, indirect=True)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "xp_backend" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.backend)


@pytest.fixture(autouse=True)
def _pinned_backend():
    saved = backend._xp
    backend.set_backend("numpy")
    yield
    backend._xp = saved


@pytest.fixture
def xp_backend(request, monkeypatch, _pinned_backend):
    """The array module under test (numpy, port.strict or cupy); the port allocates through it."""
    name = request.param
    if name == "cupy" and backend.probe().cupy is None:
        pytest.skip(f"backend cupy: {backend.why_not_cupy()}")
    if name == backend.STRICT and request.node.get_closest_marker("strict_heavy"):
        pytest.skip("too many tiny operations for the strict stand-in (runs on numpy here, on cupy in benchmarks/gpu.sh)")
    monkeypatch.setenv(backend.ENV_VAR, name)
    return backend.set_backend(name)
