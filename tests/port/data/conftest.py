"""Fixtures for the data tests: converted CIFAR folders and a small JPEG class tree."""
from __future__ import annotations

import pickle as std_pickle

import numpy as np
import pytest
from PIL import Image

from port.data.convert import convert_cifar10, convert_imagenet


def write_official_cifar(folder, batches: list[tuple[np.ndarray, list[int]]], test=None, py2_keys=True):
    """A folder in the official python layout: data (N, 3072) uint8 rows, labels list."""
    folder.mkdir(parents=True, exist_ok=True)
    key = (lambda k: k.encode()) if py2_keys else (lambda k: k)
    for i, (data, labels) in enumerate(batches, start=1):
        with open(folder / f"data_batch_{i}", "wb") as f:
            std_pickle.dump({key("data"): data, key("labels"): labels}, f, protocol=2)
    if test is not None:
        with open(folder / "test_batch", "wb") as f:
            std_pickle.dump({key("data"): test[0], key("labels"): test[1]}, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        std_pickle.dump({key("label_names"): [key(f"class{i}") for i in range(10)],
                         key("num_vis"): 3072}, f, protocol=2)
    return folder


def random_cifar_batches(rng, sizes):
    return [(rng.integers(0, 256, (n, 3072), dtype=np.uint8), list(rng.integers(0, 10, n).tolist()))
            for n in sizes]


@pytest.fixture(scope="module")
def subset_converted(tmp_path_factory):
    """The shared CIFAR-10 subset converted with --split (train 1-4, test 5)."""
    from tests.conftest import CIFAR_SUBSET

    if not (CIFAR_SUBSET / "data_batch_1").is_file():
        pytest.skip(f"the CIFAR-10 subset is not at {CIFAR_SUBSET}")
    out = tmp_path_factory.mktemp("cifar-subset")
    summary = convert_cifar10(CIFAR_SUBSET, out, split=True)
    return out, summary


@pytest.fixture(scope="module")
def small_cifar(tmp_path_factory):
    """A converted synthetic CIFAR folder: 3 training batches of 40, a test batch of 24."""
    rng = np.random.default_rng(7)
    src = write_official_cifar(tmp_path_factory.mktemp("cifar-src"), random_cifar_batches(rng, [40, 40, 40]),
                               test=random_cifar_batches(rng, [24])[0])
    out = tmp_path_factory.mktemp("cifar-out")
    convert_cifar10(src, out)
    return out


def make_jpeg_tree(root, classes=("ant", "bee", "cat"), per_class=30, seed=0):
    """Class folders of JPEGs of assorted sizes (some landscape, some portrait, one PNG)."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True)
        for i in range(per_class):
            w, h = int(rng.integers(200, 400)), int(rng.integers(200, 400))
            yy, xx = np.mgrid[0:h, 0:w]
            base = np.stack([(xx * (c + 1)) % 256, (yy * 2) % 256, (xx + yy + 60 * c) % 256], -1)
            img = np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
            ext = "png" if i == 0 else "jpg"
            Image.fromarray(img).save(d / f"img{i:03d}.{ext}")
    return root


@pytest.fixture(scope="module")
def jpeg_batches(tmp_path_factory):
    """A 3-class tree (90 images) converted with batch size 40 and 20 % held out for test."""
    tree = make_jpeg_tree(tmp_path_factory.mktemp("tree"))
    out = tmp_path_factory.mktemp("jpeg-out")
    summary = convert_imagenet(tree, out, batch_size=40, test_fraction=0.2)
    return out, summary, tree
