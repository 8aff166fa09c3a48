"""The synthetic providers: any shape, seeded, the dummy-lr-n registry key."""
from __future__ import annotations

import numpy as np

from port.data import DummyConvNetLogRegDP, SyntheticDataProvider, get_instance


def test_dummy_lr_n_from_the_registry():
    dp = get_instance("", None, type="dummy-lr-300", dp_params={"num_cases": 64, "seed": 1})
    assert isinstance(dp, DummyConvNetLogRegDP) and dp.get_data_dims(0) == 300 and dp.get_data_dims(1) == 1
    e, b, (data, labels, gates) = dp.get_next_batch()
    assert (e, b) == (1, 1) and dp.get_next_batch()[:2] == (2, 1)          # one batch per epoch
    assert data.shape == (300, 64) and labels.shape == (1, 64) and gates.shape == (1, 64)
    assert all(a.dtype == np.float32 for a in (data, labels, gates))
    assert 0 <= data.min() and data.max() < 1 and set(np.unique(labels)) <= set(range(10))
    assert dp.batch_meta["tree"][16] == [14, 15] and dp.get_num_classes() == 10
    dp.close()


def test_seeded_fixed_data_set():
    def batches(seed, test=False, n=4):
        with SyntheticDataProvider(20, [1, 2], dp_params={"seed": seed, "num_cases": 8}, test=test) as dp:
            return [dp.get_next_batch() for _ in range(n)]
    a, b = batches(0), batches(0)
    for (e1, n1, x1), (e2, n2, x2) in zip(a, b):
        assert (e1, n1) == (e2, n2) and all(np.array_equal(u, v) for u, v in zip(x1, x2))
    assert np.array_equal(a[0][2][0], a[2][2][0])                          # batch 1 is the same every epoch
    assert not np.array_equal(a[0][2][0], a[1][2][0])                      # batches differ
    assert not np.array_equal(a[0][2][0], batches(1)[0][2][0])             # seeds differ
    assert not np.array_equal(a[0][2][0], batches(0, test=True)[0][2][0])  # test differs from train


def test_signal_makes_classes_separable():
    with SyntheticDataProvider(50, dp_params={"num_cases": 400, "num_classes": 4, "signal": 2.0}) as dp:
        data, labels = dp.get_next_batch()[2]
    lab = labels[0].astype(int)
    means = np.stack([data[:, lab == k].mean(1) for k in range(4)], 1)      # (D, K)
    nearest = ((data[:, :, None] - means[:, None, :]) ** 2).sum(0).argmin(1)
    assert (nearest == lab).mean() > 0.95
