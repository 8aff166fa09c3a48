"""Deterministic synthetic providers for tests and smoke runs (``dummy-lr-n``).

What this is: :class:`SyntheticDataProvider`, labelled random data of any shape that needs no
files, and :class:`DummyConvNetLogRegDP`, the ``dummy-lr-<n>`` provider of the 2012 driver on top of
it. What this is not: a data set; with ``signal`` = 0 (the default, as the original) the labels carry
no information about the data.

Layout: data (D, N) float32 uniform in [0, 1) (plus ``signal`` × a class prototype when asked),
labels (1, N) float32 integers in [0, classes).

Determinism: batch b's cases come from ``default_rng([seed, b, test])``; they do not depend on the
epoch, so the batches form a fixed data set that repeats every epoch (and the test batches differ
from the training batches of the same number).
DIVERGES: the original drew fresh unseeded random data on every call and returned the epoch and
batch number *after* advancing; here data is seeded per batch and the numbers are those of the
batch handed out, as for every other provider.
"""
from __future__ import annotations

import numpy as np

from port.data.provider import DataProvider


class SyntheticDataProvider(DataProvider):
    """Labelled random batches of shape (D, N) with no files behind them.

    ``dp_params``: ``seed`` (0), ``num_cases`` (512), ``num_classes`` (10), ``signal`` (0.0),
    ``prefetch`` (True).
    """

    def __init__(self, data_dim: int, batch_range=None, init_epoch: int = 1, init_batchnum=None,
                 dp_params: dict | None = None, test: bool = False):
        p = dict(dp_params or {})
        self.data_dim = int(data_dim)
        self.num_cases = int(p.get("num_cases", 512))
        self.num_classes = int(p.get("num_classes", 10))
        self.signal = float(p.get("signal", 0.0))
        self.batch_range = list(batch_range) if batch_range else [1]
        self.curr_epoch = init_epoch
        self.curr_batchnum = init_batchnum if init_batchnum in self.batch_range else self.batch_range[0]
        self.batch_idx = self.batch_range.index(self.curr_batchnum)
        self.dp_params, self.test = p, test
        self.seed = int(p.get("seed", 0))
        self.data_dir = None
        self.batch_meta = {"num_vis": self.data_dim, "data_in_rows": True,
                           "label_names": [str(x) for x in range(self.num_classes)]}
        self.protos = (np.random.default_rng([self.seed, 0, 2]).standard_normal(
            (self.data_dim, self.num_classes)).astype(np.float32) if self.signal else None)  # (D, K)
        self._init_prefetch(default=True)

    def get_num_classes(self) -> int:
        return self.num_classes

    def get_data_dims(self, idx: int = 0) -> int:
        return self.data_dim if idx == 0 else 1

    def cases(self, batchnum: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
        """(data (D, N), labels (1, N), the batch's generator for further draws)."""
        rng = np.random.default_rng([self.seed, batchnum, int(self.test)])
        data = rng.random((self.data_dim, self.num_cases), dtype=np.float32)     # (D, N)
        labels = rng.integers(0, self.num_classes, size=self.num_cases)          # (N,)
        if self.signal:
            data += np.float32(self.signal) * self.protos[:, labels]
        return data, labels.astype(np.float32).reshape(1, -1), rng

    def make_batch(self, epoch: int, batchnum: int) -> list[np.ndarray]:
        data, labels, _ = self.cases(batchnum)
        return [data, labels]


class DummyConvNetLogRegDP(SyntheticDataProvider):
    """``dummy-lr-<n>``: random n-dimensional cases, their labels and random gates.

    Ports: alexnet-2012/convdata.py:311-336 DummyConvNetLogRegDP
    """

    def __init__(self, data_dim: int, batch_range=None, init_epoch: int = 1, init_batchnum=None,
                 dp_params: dict | None = None, test: bool = False):
        super().__init__(data_dim, batch_range, init_epoch, init_batchnum, dp_params, test)
        tree = {i: [] for i in range(self.num_classes)}
        tree.update({10: [0, 1, 2], 11: [3, 4, 5], 12: [6, 7], 13: [8, 9], 14: [10, 11],
                     15: [12, 13], 16: [14, 15]})
        self.batch_meta["tree"] = tree
        self.batch_meta["all_wnids"] = {"gproot": 16}
        self.img_size = int((data_dim / 3) ** 0.5)

    def make_batch(self, epoch: int, batchnum: int) -> list[np.ndarray]:
        """[data (n, N), labels (1, N), gates (1, N)], float32.

        Ports: alexnet-2012/convdata.py:326-332 DummyConvNetLogRegDP.get_next_batch
        """
        data, labels, rng = self.cases(batchnum)
        gates = rng.random((1, self.num_cases), dtype=np.float32)                # (1, N)
        return [data, labels, gates]
