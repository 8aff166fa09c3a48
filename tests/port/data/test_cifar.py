"""The cifar and cifar-cropped providers: values, crops, flips, 9 views, the batch walk, errors."""
from __future__ import annotations

import numpy as np
import pytest

from port.data import CroppedCIFARDataProvider, dp_types, get_instance
from port.errors import UserError
from port.util import unpickle


def _images(folder, b):
    return unpickle(folder / f"data_batch_{b}")["data"].astype(np.float32).reshape(3, 32, 32, -1)


def test_registry_has_the_2012_keys():
    for key in ("cifar", "cifar-cropped", "inet-lr-cropped-jpeg", "dummy-lr-n"):
        assert key in dp_types
    with pytest.raises(UserError, match="data provider 'inet-rs-lr-cropped' is not ported: broken"):
        get_instance("/nonexistent", [1], type="inet-rs-lr-cropped")
    with pytest.raises(UserError, match="not ported"):
        get_instance("/nonexistent", [1], type="dummy-ce-300")
    with pytest.raises(UserError, match="no such data provider: 'bogus'"):
        get_instance("/nonexistent", [1], type="bogus")


def test_cifar_whole_images(subset_converted):
    out, _ = subset_converted
    with get_instance(out, [5], type="cifar", test=True) as dp:
        epoch, batchnum, (x, labels, one_hot) = dp.get_next_batch()
    assert (epoch, batchnum) == (1, 5)
    raw = unpickle(out / "data_batch_5")
    mean = unpickle(out / "batches.meta")["data_mean"]
    assert x.shape == (3072, 1017) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_array_equal(x, raw["data"].astype(np.float32) - mean)
    assert labels.shape == (1, 1017) and labels.dtype == np.float32
    np.testing.assert_array_equal(labels[0], raw["labels"])
    assert one_hot.shape == (10, 1017)
    np.testing.assert_array_equal(one_hot.argmax(0), raw["labels"])
    np.testing.assert_array_equal(one_hot.sum(0), 1)
    assert dp.get_data_dims(0) == 3072 and dp.get_data_dims(2) == 10 and dp.get_num_classes() == 10


def test_cropped_training_crops_and_flips_by_hand(subset_converted):
    out, _ = subset_converted
    dp = get_instance(out, [1, 2, 3, 4], init_epoch=3, init_batchnum=2, type="cifar-cropped",
                      dp_params={"crop_border": 4, "seed": 11})
    epoch, batchnum, (crops, labels) = dp.get_next_batch()
    dp.close()
    assert (epoch, batchnum) == (3, 2) and crops.shape == (3 * 24 * 24, 1017)
    assert dp.get_data_dims(0) == 1728 and dp.get_data_dims(1) == 1
    # replay the documented draws: default_rng([seed, epoch, batchnum]); off_y, off_x, flip
    rng = np.random.default_rng([11, 3, 2])
    oy, ox = rng.integers(0, 9, 1017), rng.integers(0, 9, 1017)
    flip = rng.integers(0, 2, 1017) == 0
    y = _images(out, 2)
    mean = unpickle(out / "batches.meta")["data_mean"].reshape(3, 32, 32)[:, 4:28, 4:28]
    for c in range(1017):
        pic = y[:, oy[c]:oy[c] + 24, ox[c]:ox[c] + 24, c]
        if flip[c]:
            pic = pic[:, :, ::-1]
        np.testing.assert_array_equal(crops[:, c], (pic - mean).reshape(-1))
    # the draws are not degenerate: every offset and both flips occur
    assert set(oy) == set(range(9)) and 0.4 < flip.mean() < 0.6
    np.testing.assert_array_equal(labels[0], unpickle(out / "data_batch_2")["labels"])


def test_cropped_test_centre_and_nine_views(subset_converted):
    out, _ = subset_converted
    y = _images(out, 5)
    mean = unpickle(out / "batches.meta")["data_mean"].reshape(3, 32, 32)[:, 4:28, 4:28].reshape(-1, 1)
    with get_instance(out, [5], type="cifar-cropped", dp_params={"crop_border": 4}, test=True) as dp:
        crops, labels = dp.get_next_batch()[2]
    np.testing.assert_array_equal(crops, y[:, 4:28, 4:28, :].reshape(1728, -1) - mean)
    with get_instance(out, [5], type="cifar-cropped",
                      dp_params={"crop_border": 4, "multiview_test": 1}, test=True) as dp:
        assert dp.num_views == 9 and dp.data_mult == 9
        crops, labels = dp.get_next_batch()[2]
    n = 1017
    assert crops.shape == (1728, 9 * n) and labels.shape == (1, 9 * n)
    starts = [(0, 0), (0, 4), (0, 8), (4, 0), (4, 4), (4, 8), (8, 0), (8, 4), (8, 8)]
    for v, (sy, sx) in enumerate(starts):
        np.testing.assert_array_equal(crops[:, v * n:(v + 1) * n],
                                      y[:, sy:sy + 24, sx:sx + 24, :].reshape(1728, n) - mean)
        np.testing.assert_array_equal(labels[:, v * n:(v + 1) * n], labels[:, :n])
    # plottable data puts the mean back: the centre view is the source pixels / 255
    pl = dp.get_plottable_data(crops[:, 4 * n:4 * n + 3])
    np.testing.assert_allclose(pl[1], y[:, 4:28, 4:28, 1].transpose(1, 2, 0) / 255, atol=1e-6)


def test_batch_walk_prefetch_and_resume_are_deterministic(small_cifar):
    params = {"crop_border": 4, "seed": 5}
    with get_instance(small_cifar, [1, 2, 3], type="cifar-cropped", dp_params=params) as a:
        seq = [a.get_next_batch() for _ in range(7)]
    assert [(e, b) for e, b, _ in seq] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3), (3, 1)]
    assert not np.array_equal(seq[0][2][0], seq[3][2][0])  # new crops each epoch
    with get_instance(small_cifar, [1, 2, 3], type="cifar-cropped",
                      dp_params={**params, "prefetch": False}) as b:
        for e, n, (x, lab) in seq:
            e2, n2, (x2, lab2) = b.get_next_batch()
            assert (e, n) == (e2, n2) and np.array_equal(x, x2) and np.array_equal(lab, lab2)
    with get_instance(small_cifar, [1, 2, 3], init_epoch=2, init_batchnum=3, type="cifar-cropped",
                      dp_params=params) as c:  # a resumed run reproduces the same crops
        e, n, (x, _) = c.get_next_batch()
    assert (e, n) == (2, 3) and np.array_equal(x, seq[5][2][0])
    with get_instance(small_cifar, [1, 2, 3], type="cifar-cropped", dp_params={"seed": 6}) as d:
        assert not np.array_equal(d.get_next_batch()[2][0], seq[0][2][0])


def test_errors_name_the_file_or_batch(small_cifar, tmp_path):
    with pytest.raises(UserError, match="nowhere: data path does not exist"):
        get_instance(tmp_path / "nowhere", [1], type="cifar")
    with pytest.raises(UserError, match=r"data_batch_9: batch 9 of the batch range 1-3, 9 does not "
                                        r"exist \(batches present: 1-4\)"):
        get_instance(small_cifar, [1, 2, 3, 9], type="cifar-cropped")
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("batches.meta", "data_batch_1"):
        (bad / name).write_bytes((small_cifar / name).read_bytes())
    (bad / "data_batch_2").write_bytes((small_cifar / "data_batch_2").read_bytes()[:1000])
    with pytest.raises(UserError, match="data_batch_2: batch 2 is not a readable batch pickle"):
        get_instance(bad, [1, 2], type="cifar-cropped")
    from port.util import pickle
    pickle(bad / "data_batch_3", {"data": np.zeros((3000, 4), np.uint8), "labels": [0, 1, 2, 3]})
    with pytest.raises(UserError, match=r"data_batch_3: batch 3 'data' has shape \(3000, 4\); "
                                        r"expected \(3072, N\)"):
        get_instance(bad, [3], type="cifar-cropped")
    with pytest.raises(UserError, match=r"data_batch_3: batch 3 'data' has shape"):
        get_instance(bad, [3], type="cifar").get_next_batch()
    pickle(bad / "data_batch_4", {"data": np.zeros((3072, 2), np.uint8), "labels": [0, 12]})
    with pytest.raises(UserError, match=r"batch 4 labels must be integers in \[0, 10\)"):
        get_instance(bad, [4], type="cifar-cropped")
    with pytest.raises(UserError, match="crop-border=16"):
        get_instance(small_cifar, [1], type="cifar-cropped", dp_params={"crop_border": 16})


def test_official_layout_is_refused_with_a_hint(cifar_subset):
    with pytest.raises(UserError, match="no 'data_mean'.*python -m port.data cifar10"):
        get_instance(cifar_subset, [1], type="cifar-cropped")


def test_cropped_is_a_memory_provider(small_cifar):
    dp = get_instance(small_cifar, [1, 2], type="cifar-cropped")
    assert isinstance(dp, CroppedCIFARDataProvider) and sorted(dp.data_dic) == [1, 2]
    dp.close()
