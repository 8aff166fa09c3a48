"""python -m port.data cifar10: the official python release -> the cuda-convnet batch layout."""
from __future__ import annotations

import hashlib
import pickle as std_pickle
import tarfile

import numpy as np
import pytest

from port.data import convert
from port.data.__main__ import main
from port.errors import UserError
from port.util import unpickle

from .conftest import random_cifar_batches, write_official_cifar


def test_subset_split_shapes_mean_labels(cifar_subset, subset_converted):
    out, summary = subset_converted
    assert summary["train_range"] == (1, 4) and summary["test_range"] == (5, 5)
    assert sorted(p.name for p in out.iterdir()) == ["batches.meta"] + [f"data_batch_{i}" for i in range(1, 6)]
    src = [unpickle(cifar_subset / f"data_batch_{i}") for i in range(1, 6)]
    for i in range(1, 6):
        b = unpickle(out / f"data_batch_{i}")
        assert b["data"].shape == (3072, 1017) and b["data"].dtype == np.uint8
        assert b["data"].flags.c_contiguous
        # the converted batch is the source's images as columns, labels unchanged
        assert np.array_equal(b["data"], src[i - 1]["data"].T)
        assert list(b["labels"]) == list(src[i - 1]["labels"])
    meta = unpickle(out / "batches.meta")
    assert meta["num_vis"] == 3072 and meta["num_cases_per_batch"] == 1017
    assert meta["label_names"] == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                   "horse", "ship", "truck"]
    assert meta["data_mean"].shape == (3072, 1) and meta["data_mean"].dtype == np.float32
    train = np.concatenate([s["data"] for s in src[:4]]).astype(np.float64)   # the held-out batch 5 excluded
    np.testing.assert_allclose(meta["data_mean"][:, 0], train.mean(axis=0), rtol=1e-6)
    assert not np.allclose(meta["data_mean"][:, 0], np.concatenate([s["data"] for s in src]).mean(0), atol=1e-3)
    # label distribution: every class in every batch, 83-120 images each (the subset's README)
    for i in range(1, 6):
        counts = np.bincount(unpickle(out / f"data_batch_{i}")["labels"], minlength=10)
        assert counts.sum() == 1017 and counts.min() >= 83 and counts.max() <= 120


def test_layout_rows_are_c1024_y32_x(tmp_path):
    """An image whose channels encode (x, y, const) lands at row c·1024 + y·32 + x."""
    img = np.zeros((3, 32, 32), np.uint8)
    img[0] = np.arange(32)[None, :]          # R = x
    img[1] = np.arange(32)[:, None] * 2      # G = 2y
    img[2] = 200                             # B constant
    data = np.zeros((2, 3072), np.uint8)
    data[1] = img.reshape(-1)                # official row: 1024 R (row-major), then G, then B
    src = write_official_cifar(tmp_path / "src", [(data, [3, 4])])
    convert.convert_cifar10(src, tmp_path / "out")
    col = unpickle(tmp_path / "out" / "data_batch_1")["data"][:, 1]
    for (c, y, x, want) in [(0, 5, 7, 7), (0, 31, 0, 0), (1, 9, 3, 18), (2, 4, 4, 200)]:
        assert col[c * 1024 + y * 32 + x] == want


def test_tarball_with_test_batch_and_py2_keys(tmp_path):
    rng = np.random.default_rng(1)
    src = write_official_cifar(tmp_path / "cifar-10-batches-py", random_cifar_batches(rng, [30] * 5),
                               test=random_cifar_batches(rng, [20])[0], py2_keys=True)
    tgz = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(src, arcname="cifar-10-batches-py")
    s = convert.convert_cifar10(tgz, tmp_path / "out")
    assert s["train_range"] == (1, 5) and s["test_range"] == (6, 6) and s["test_cases"] == 20
    six = unpickle(tmp_path / "out" / "data_batch_6")
    assert six["data"].shape == (3072, 20)
    with open(src / "test_batch", "rb") as f:
        official = std_pickle.load(f, encoding="bytes")
    assert np.array_equal(six["data"], official[b"data"].T)
    assert unpickle(tmp_path / "out" / "batches.meta")["label_names"][0] == "class0"


def test_download_checks_md5(tmp_path):
    rng = np.random.default_rng(2)
    src = write_official_cifar(tmp_path / "cifar-10-batches-py", random_cifar_batches(rng, [10, 10]))
    tgz = tmp_path / "served.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(src, arcname="cifar-10-batches-py")
    with pytest.raises(UserError, match="MD5 .* does not match"):
        convert.download_cifar10(tmp_path / "dl", url=tgz.as_uri())
    assert not list((tmp_path / "dl").iterdir())  # nothing half-written left behind


def test_download_then_convert(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    src = write_official_cifar(tmp_path / "cifar-10-batches-py", random_cifar_batches(rng, [10, 10]))
    tgz = tmp_path / "served.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(src, arcname="cifar-10-batches-py")
    md5 = hashlib.md5(tgz.read_bytes()).hexdigest()
    real = convert.download_cifar10
    monkeypatch.setattr(convert, "download_cifar10", lambda d: real(d, tgz.as_uri(), md5))
    s = convert.convert_cifar10(None, tmp_path / "out", split=True)
    assert s["train_range"] == (1, 1) and s["test_range"] == (2, 2)
    assert not (tmp_path / "out" / "cifar-10-python.tar.gz").exists()  # the download is removed


def test_cli_and_bad_input(tmp_path, capsys):
    rng = np.random.default_rng(4)
    src = write_official_cifar(tmp_path / "src", random_cifar_batches(rng, [8, 8]), test=random_cifar_batches(rng, [4])[0])
    assert main(["cifar10", "--source", str(src), "--out", str(tmp_path / "o")]) == 0
    assert "training batches 1-2 (16 images), test batches 3 (4 images)" in capsys.readouterr().out
    assert main(["cifar10", "--source", str(src), "--out", str(tmp_path / "o2"), "--split"]) == 2
    assert "has a test_batch already" in capsys.readouterr().err
    assert main(["cifar10", "--source", str(tmp_path / "nope"), "--out", str(tmp_path / "o3")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope: CIFAR-10 source does not exist" in err
    bad = tmp_path / "bad"
    write_official_cifar(bad, [(np.zeros((5, 100), np.uint8), [0] * 5)])
    assert main(["cifar10", "--source", str(bad), "--out", str(tmp_path / "o4")]) == 2
    assert "data_batch_1: 'data' is uint8 (5, 100); expected uint8 (N, 3072)" in capsys.readouterr().err
    cut = tmp_path / "cut"
    write_official_cifar(cut, random_cifar_batches(rng, [8]))
    (cut / "data_batch_1").write_bytes((cut / "data_batch_1").read_bytes()[:500])
    assert main(["cifar10", "--source", str(cut), "--out", str(tmp_path / "o5")]) == 2
    assert "data_batch_1 is not a readable batch pickle (truncated" in capsys.readouterr().err
    assert main(["cifar10", "--source", str(src)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "required: --out" in err


def test_out_that_is_a_file_is_one_line(tmp_path, capsys):
    src = write_official_cifar(tmp_path / "src", random_cifar_batches(np.random.default_rng(5), [4]))
    (tmp_path / "afile").write_text("x")
    assert main(["cifar10", "--source", str(src), "--out", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "afile: --out exists and is not a folder" in err
