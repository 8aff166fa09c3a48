"""python -m port.data imagenet and the inet-lr-cropped-jpeg provider: crops per 32, 10 views, colour noise."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from port import backend
from port.data import get_instance
from port.data.__main__ import main
from port.data.jpeg import color_noise
from port.errors import UserError
from port.util import pickle, unpickle

from .conftest import make_jpeg_tree

S, B = 256, 16
INNER = S - 2 * B


def _decoded(out, b):
    strings, sizes, labels = unpickle(out / f"data_batch_{b}")
    imgs = np.stack([np.asarray(Image.open(io.BytesIO(s)).convert("RGB")) for s in strings])
    return imgs.transpose(3, 1, 2, 0).astype(np.float32), sizes, labels      # (3, S, S, N)


def test_converter_writes_the_jpeg_batch_format(jpeg_batches):
    out, summary, tree = jpeg_batches
    # 90 images, 3 classes, 20 % held out per class (6 each): 72 training (2 batches), 18 test (1 batch)
    assert summary["train_range"] == (1, 2) and summary["test_range"] == (3, 3)
    assert summary["train_cases"] == 72 and summary["classes"] == 3
    meta = unpickle(out / "batches.meta")
    assert meta["label_names"] == ["ant", "bee", "cat"] and meta["num_vis"] == 3 * S * S
    assert meta["batch_size"] == 40 and meta["dp_type"] == "inet-lr-cropped-jpeg"
    assert meta["data_mean"].shape == (3 * S * S, 1) and meta["data_mean"].dtype == np.float32
    strings, sizes, labels = unpickle(out / "data_batch_1")
    assert len(strings) == len(sizes) == len(labels) == 40
    assert all(isinstance(s, bytes) and s[:2] == b"\xff\xd8" for s in strings)       # JPEG SOI marker
    assert all(200 <= w < 400 and 200 <= h < 400 for w, h in sizes)
    assert {lab[0] for lab in labels} <= {"ant", "bee", "cat"}
    assert all(["ant", "bee", "cat"].index(n) == c for n, c in labels)
    assert len({c for _, c in labels}) == 3                                            # shuffled: mixed classes
    test_labels = unpickle(out / "data_batch_3")[2]
    assert np.bincount([c for _, c in test_labels]).tolist() == [6, 6, 6]
    # mean and colour PCA are those of the decoded training images
    x = np.concatenate([_decoded(out, b)[0] for b in (1, 2)], axis=3)                # (3, S, S, 72)
    np.testing.assert_allclose(meta["data_mean"][:, 0], x.mean(axis=3).reshape(-1), atol=1e-3)
    stdevs, vecs = meta["color_pca"]
    cov = np.cov(x.reshape(3, -1).astype(np.float64), bias=True)
    np.testing.assert_allclose(vecs @ np.diag(stdevs.astype(np.float64) ** 2) @ vecs.T, cov, rtol=1e-4,
                               atol=1e-2)
    assert np.all(np.diff(stdevs) >= 0)                                               # ascending, as cc2's meta


def test_training_crops_are_shared_per_32_images(jpeg_batches):
    out, _, _ = jpeg_batches
    with get_instance(out, [1, 2], init_epoch=4, init_batchnum=2, type="inet-lr-cropped-jpeg",
                      dp_params={"crop_border": B, "seed": 3}) as dp:
        epoch, batchnum, (crops, labels) = dp.get_next_batch()
    assert (epoch, batchnum) == (4, 2) and dp.get_data_dims(0) == 3 * INNER * INNER
    y, _, raw_labels = _decoded(out, 2)
    n = y.shape[3]
    assert n == 32 and crops.shape == (3 * INNER * INNER, n) and crops.dtype == np.float32
    np.testing.assert_array_equal(labels, [[c for _, c in raw_labels]])
    mean = unpickle(out / "batches.meta")["data_mean"].reshape(3, S, S)[:, B:S - B, B:S - B]
    rng = np.random.default_rng([3, 4, 2])
    chunks = -(-n // 32)
    oy, ox = rng.integers(0, 2 * B + 1, chunks), rng.integers(0, 2 * B + 1, chunks)
    flip = rng.integers(0, 2, chunks) == 0
    for c in range(n):
        k = c // 32
        pic = y[:, oy[k]:oy[k] + INNER, ox[k]:ox[k] + INNER, c]
        if flip[k]:
            pic = pic[:, :, ::-1]
        np.testing.assert_allclose(crops[:, c], (pic - mean).reshape(-1), atol=1e-4)


def test_chunks_of_32_share_offset_and_flip(tmp_path):
    """A batch of 70 identical images: columns equal within each chunk of 32, differ across chunks."""
    img = np.random.default_rng(0).integers(0, 256, (S, S, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95)
    pickle(tmp_path / "data_batch_1", ([buf.getvalue()] * 70, [(S, S)] * 70, [("x", 0)] * 70))
    pickle(tmp_path / "batches.meta", {"data_mean": np.zeros((3 * S * S, 1), np.float32),
                                       "color_pca": (np.ones(3), np.eye(3)), "label_names": ["x"],
                                       "num_vis": 3 * S * S, "batch_size": 70})
    for seed in range(4):
        with get_instance(tmp_path, [1], type="inet-lr-cropped-jpeg",
                          dp_params={"crop_border": B, "seed": seed}) as dp:
            crops = dp.get_next_batch()[2][0]
        for lo, hi in ((0, 32), (32, 64), (64, 70)):
            assert np.all(crops[:, lo:hi] == crops[:, lo:lo + 1])
        assert not (np.array_equal(crops[:, 0], crops[:, 32]) and np.array_equal(crops[:, 32], crops[:, 64]))


def test_ten_test_views(jpeg_batches):
    out, _, _ = jpeg_batches
    y, _, raw_labels = _decoded(out, 3)
    n = y.shape[3]
    mean = unpickle(out / "batches.meta")["data_mean"].reshape(3, S, S)[:, B:S - B, B:S - B].reshape(-1, 1)
    with get_instance(out, [3], type="inet-lr-cropped-jpeg", test=True,
                      dp_params={"crop_border": B, "multiview_test": 1, "color_noise": 0.1}) as dp:
        crops, labels = dp.get_next_batch()[2]
    assert dp.num_views == 10 and crops.shape == (3 * INNER * INNER, 10 * n) and labels.shape == (1, 10 * n)
    starts = [(0, 0), (0, 2 * B), (B, B), (2 * B, 0), (2 * B, 2 * B)]
    for v in range(10):
        sy, sx = starts[v % 5]
        pic = y[:, sy:sy + INNER, sx:sx + INNER, :]
        if v >= 5:
            pic = pic[:, :, ::-1, :]
        np.testing.assert_allclose(crops[:, v * n:(v + 1) * n], pic.reshape(-1, n) - mean, atol=1e-4)
        np.testing.assert_array_equal(labels[0, v * n:(v + 1) * n], [c for _, c in raw_labels])
    with get_instance(out, [3], type="inet-lr-cropped-jpeg", test=True, dp_params={"crop_border": B}) as dp:
        centre = dp.get_next_batch()[2][0]
    np.testing.assert_allclose(centre, crops[:, 2 * n:3 * n], atol=0)


def test_colour_noise_is_added_then_scaled(jpeg_batches):
    out, _, _ = jpeg_batches
    c = 0.1
    p = {"crop_border": B, "seed": 9}
    with get_instance(out, [1], type="inet-lr-cropped-jpeg", dp_params=p) as dp0:
        plain = dp0.get_next_batch()[2][0]
    with get_instance(out, [1], type="inet-lr-cropped-jpeg", dp_params={**p, "color_noise": c}) as dp:
        noisy = dp.get_next_batch()[2][0]
        stdevs, vecs = dp.color_stdevs, dp.color_eig
    n = plain.shape[1]
    shift = (noisy * (1 + c) - plain).reshape(3, INNER * INNER, n) / c            # the noise, per pixel
    per_image = shift.mean(axis=1)                                                 # (3, N)
    np.testing.assert_allclose(shift, per_image[:, None, :].repeat(INNER * INNER, 1), atol=0.2)
    # the same noise the documented draw order gives: crops first (3 arrays of ⌈N/32⌉), then z (N, 3)
    rng = np.random.default_rng([9, 1, 1])
    chunks = -(-n // 32)
    for _ in range(3):
        rng.integers(0, 2 * B + 1 if _ < 2 else 2, chunks)
    np.testing.assert_allclose(per_image.T, color_noise(rng, n, stdevs, vecs), rtol=1e-3, atol=0.05)


def test_colour_noise_statistics():
    """Σ z σⱼ vⱼ has covariance V diag(σ²) Vᵀ."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    stdevs = np.array([19.72, 37.09, 121.78], np.float32)                          # cc2's input_meta scale
    noise = color_noise(np.random.default_rng(1), 200_000, stdevs, q.astype(np.float32))
    assert noise.shape == (200_000, 3) and noise.dtype == np.float32
    np.testing.assert_allclose(noise.mean(0), 0, atol=1.0)
    np.testing.assert_allclose(np.cov(noise.T), q @ np.diag(stdevs.astype(np.float64) ** 2) @ q.T,
                               rtol=0.02, atol=40)


def test_label_offset_none_labels_and_bad_images(tmp_path):
    good = io.BytesIO()
    Image.fromarray(np.full((S, S, 3), 100, np.uint8)).save(good, format="JPEG")
    small = io.BytesIO()
    Image.fromarray(np.full((200, 180, 3), 50, np.uint8)).save(small, format="JPEG")
    meta = {"data_mean": np.full((3 * S * S, 1), 10, np.float32), "color_pca": (np.ones(3), np.eye(3)),
            "label_names": [str(i) for i in range(10)], "num_vis": 3 * S * S, "batch_size": 4,
            "label_offset": 2}
    pickle(tmp_path / "batches.meta", meta)
    pickle(tmp_path / "data_batch_1", ([good.getvalue(), b"not a jpeg", good.getvalue()], [(S, S)] * 3,
                                       [("a", 1), ("b", 5), ("c", None)]))
    with pytest.warns(UserWarning, match="skipped 1 images"):
        with get_instance(tmp_path, [1], type="inet-lr-cropped-jpeg", test=True, dp_params={"crop_border": B}) as dp:
            crops, labels = dp.get_next_batch()[2]
    assert crops.shape[1] == 2 and labels.tolist() == [[3.0, 0.0]]                 # 1 + offset 2; None -> 0
    pickle(tmp_path / "data_batch_2", ([small.getvalue()], [(180, 200)], [("a", 1)]))
    with pytest.raises(UserError, match=r"data_batch_2 \(batch 2\): image 0 decodes to 180×200; expected 256×256"):
        with get_instance(tmp_path, [2], type="inet-lr-cropped-jpeg", test=True) as dp:
            dp.get_next_batch()
    pickle(tmp_path / "batches.meta", {**meta, "no_crop": True})                   # centred on a mean canvas
    with get_instance(tmp_path, [2], type="inet-lr-cropped-jpeg", test=True, dp_params={"crop_border": 0}) as dp:
        x = dp.get_next_batch()[2][0].reshape(3, S, S) + dp.data_mean_crop
    assert x[0, 0, 0] == 10 and abs(x[0, 128, 128] - 50) <= 2 and x[0, 28, 38] != 10
    pickle(tmp_path / "data_batch_3", {"data": 1})
    with pytest.raises(UserError, match=r"data_batch_3 \(batch 3\): expected a pickled \(jpeg_strings"):
        with get_instance(tmp_path, [3], type="inet-lr-cropped-jpeg", test=True) as dp:
            dp.get_next_batch()


def test_cli_imagenet(tmp_path, capsys):
    tree = make_jpeg_tree(tmp_path / "tree", classes=("a", "b"), per_class=5, seed=1)
    (tree / "a" / "notes.txt").write_text("not an image")
    (tree / "b" / "broken.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.warns(UserWarning, match=r"2 files skipped .* listed in .*skipped.txt"):
        rc = main(["imagenet", "--source", str(tree), "--out", str(tmp_path / "o"), "--batch-size", "4",
                   "--size", "64", "--workers", "0"])
    assert rc == 0
    assert ("2 classes, training batches 1-3 (10 images), test batches none (0 images), 2 files skipped"
            in capsys.readouterr().out)
    report = (tmp_path / "o" / "skipped.txt").read_text().splitlines()
    assert sorted(line.split("\t")[0].rsplit("/", 1)[1] for line in report) == ["broken.jpg", "notes.txt"]
    assert unpickle(tmp_path / "o" / "batches.meta")["num_vis"] == 3 * 64 * 64
    assert main(["imagenet", "--source", str(tmp_path / "none"), "--out", str(tmp_path / "o2")]) == 2
    assert "none: does not exist (expected ILSVRC2012_img_train.tar" in capsys.readouterr().err


def _walk(dp, steps):
    out = []
    for _ in range(steps):
        epoch, batchnum, (crops, labels) = dp.get_next_batch()
        out.append((epoch, batchnum, backend.to_host(crops), labels))
    return out


def test_feed_workers_match_the_in_process_path(jpeg_batches, xp_backend):
    """Worker processes + shared memory + 3 batches in flight give the in-process path's batches,
    bit for bit, over two epochs (crops, mirrors, mean, colour noise), on NumPy and on the strict
    CuPy stand-in (where the uint8 crops are uploaded and finished on the device)."""
    out, _, _ = jpeg_batches
    p = {"crop_border": B, "seed": 5, "color_noise": 0.1}
    with get_instance(out, [1, 2], type="inet-lr-cropped-jpeg", dp_params={**p, "feed_workers": 0}) as dp:
        ref = _walk(dp, 4)
    with get_instance(out, [1, 2], type="inet-lr-cropped-jpeg",
                      dp_params={**p, "feed_workers": 2, "feed_batches": 3}) as dp:
        assert dp.uses_feed()
        got = _walk(dp, 4)
        assert len(dp._jobs) == 3                                            # K batches in flight
        first = dp.get_next_batch()[2][0]
        assert backend.get_array_module(first) is backend.xp()               # finished on the device
        files = [b.path for slot in dp._feed.all for b in (slot.inp, slot.out) if b is not None]
    assert files and not any(os.path.exists(f) for f in files)              # shared memory freed
    assert [g[:2] for g in got] == [r[:2] for r in ref] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for (_, _, c, lab), (_, _, rc, rlab) in zip(got, ref):
        np.testing.assert_array_equal(c, rc)
        np.testing.assert_array_equal(lab, rlab)


def test_feed_falls_back_on_a_bad_image(tmp_path):
    """An undecodable image: the batch is redone in process, dropping it as the original did."""
    good = io.BytesIO()
    Image.fromarray(np.full((S, S, 3), 100, np.uint8)).save(good, format="JPEG")
    pickle(tmp_path / "batches.meta", {"data_mean": np.zeros((3 * S * S, 1), np.float32),
                                       "color_pca": (np.ones(3), np.eye(3)), "label_names": ["a", "b"],
                                       "num_vis": 3 * S * S, "batch_size": 3})
    pickle(tmp_path / "data_batch_1", ([good.getvalue(), b"\xff\xd8 broken", good.getvalue()],
                                       [(S, S)] * 3, [("a", 0), ("b", 1), ("b", 1)]))
    with pytest.warns(UserWarning, match="skipped 1 images"):
        with get_instance(tmp_path, [1], type="inet-lr-cropped-jpeg",
                          dp_params={"crop_border": B, "feed_workers": 1}) as dp:
            crops, labels = dp.get_next_batch()[2]
    assert crops.shape == (3 * INNER * INNER, 2) and labels.tolist() == [[0.0, 1.0]]
    pickle(tmp_path / "data_batch_2", ([good.getvalue(), 7], [(S, S)] * 2, [("a", 0), ("b", 1)]))
    with pytest.raises(UserError, match=r"data_batch_2 \(batch 2\): JPEG string 1 is int; expected bytes"):
        with get_instance(tmp_path, [2], type="inet-lr-cropped-jpeg",
                          dp_params={"crop_border": B, "feed_workers": 1}) as dp:
            dp.get_next_batch()


def test_a_huge_jpeg_header_is_refused_before_decoding(tmp_path):
    """A 30000×30000 header in a batch: one line naming the batch and the image, nothing decoded
    (the feed's workers and the in-process path alike)."""
    small = io.BytesIO()
    Image.fromarray(np.full((S, S, 3), 100, np.uint8)).save(small, format="JPEG")
    data = bytearray(small.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (30000).to_bytes(2, "big") * 2
    pickle(tmp_path / "batches.meta", {"data_mean": np.zeros((3 * S * S, 1), np.float32),
                                       "color_pca": (np.ones(3), np.eye(3)), "label_names": ["a"],
                                       "num_vis": 3 * S * S, "batch_size": 2})
    pickle(tmp_path / "data_batch_1", ([small.getvalue(), bytes(data)], [(S, S)] * 2, [("a", 0)] * 2))
    for workers in (0, 1):
        with pytest.raises(UserError, match=r"data_batch_1 \(batch 1\): image 1 is 30000×30000; "
                                            r"larger than 256×256"):
            with get_instance(tmp_path, [1], type="inet-lr-cropped-jpeg",
                              dp_params={"crop_border": B, "feed_workers": workers}) as dp:
                dp.get_next_batch()
