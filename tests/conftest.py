"""Shared test fixtures. Tests that need the fetched releases skip, saying why, when they are absent."""
from __future__ import annotations

from pathlib import Path

import pytest

from archive import ORIGINAL, ROOT

SHARED = ROOT.parent / "shared"
CIFAR_SUBSET = SHARED / "data" / "cifar-10-subset"


def release_dir(release: str) -> Path:
    """``original/<release>``, or skip the test saying how to fetch it."""
    d = ORIGINAL / release
    if not (d.is_dir() and any(d.iterdir())):
        pytest.skip(f"release {release} is not fetched (original/{release} is empty); "
                    f"run `make original` to run this test")
    return d


@pytest.fixture
def alexnet_2012() -> Path:
    return release_dir("alexnet-2012")


@pytest.fixture
def cifar_subset() -> Path:
    if not (CIFAR_SUBSET / "data_batch_1").is_file():
        pytest.skip(f"the CIFAR-10 subset is not at {CIFAR_SUBSET}")
    return CIFAR_SUBSET
