"""The CIFAR-10 providers ``cifar`` and ``cifar-cropped`` (the twin of ``convdata_cifar.py``).

What this is: the two providers the 2012 driver registers for CIFAR batches in the cuda-convnet
layout (written by ``python -m port.data cifar10``), plus the crop and display helpers (the mean's
centre crop and :func:`plottable` are shared with the ImageNet provider). What this is not: the
converter (``convert.py``).

Layout: a batch's ``data`` is (3072, N), uint8 or float, one image per column, row
c·1024 + y·32 + x (RGB). Inside this module an image block is the 4-D view (3, 32, 32, N) of it;
the cropped outputs are (3·24·24, N) float32 with the same channel-major order.
"""
from __future__ import annotations

import numpy as np

from port.data.provider import LabeledDataProvider, LabeledMemoryDataProvider
from port.errors import UserError


# ---- crops (centre_crop_mean and plottable serve jpeg.py too) -------------------------------

def crop_images(y: np.ndarray, off_y: np.ndarray, off_x: np.ndarray, flip: np.ndarray,
                inner: int) -> np.ndarray:
    """Crop case c of ``y`` (C, S, S, N) at (off_y[c], off_x[c]), mirrored where flip[c]; -> (C·inner², N).

    The gather is one fancy-indexing operation (no loop over cases).
    """
    c, _, _, n = y.shape
    rows = off_y[:, None] + np.arange(inner)[None, :]                        # (N, inner)
    ramp = np.where(flip[:, None], np.arange(inner)[::-1][None, :], np.arange(inner)[None, :])
    cols = off_x[:, None] + ramp                                               # (N, inner)
    cases = np.arange(n)
    pic = y[:, rows[:, :, None], cols[:, None, :], cases[:, None, None]]       # (C, N, inner, inner)
    return np.ascontiguousarray(pic.transpose(0, 2, 3, 1)).reshape(c * inner * inner, n)


def centre_crop_mean(data_mean: np.ndarray, num_colors: int, img_size: int, border: int) -> np.ndarray:
    """The centre ``img_size - 2·border`` crop of a (C·S·S, 1) mean image, as (C·inner², 1) float32."""
    inner = img_size - 2 * border
    m = np.asarray(data_mean, dtype=np.float32).reshape(num_colors, img_size, img_size)
    return np.ascontiguousarray(m[:, border:border + inner, border:border + inner]).reshape(-1, 1)


def plottable(data: np.ndarray, mean, num_colors: int, size: int) -> np.ndarray:
    """(C·size², N) mean-subtracted columns -> (N, size, size, C) float32 in [0, 1] for imshow."""
    x = (np.asarray(data) + mean).T.reshape(data.shape[1], num_colors, size, size)
    return np.require(x.transpose(0, 2, 3, 1) / 255.0, dtype=np.float32)


# ---- cifar -----------------------------------------------------------------------------------

class CIFARDataProvider(LabeledDataProvider):
    """``cifar``: whole 32×32 images minus the mean image, labels as a row and as one-hot columns.

    Ports: alexnet-2012/convdata_cifar.py:6-36 CIFARDataProvider
    """

    num_colors = 3
    img_size = 32

    def __init__(self, data_dir, batch_range=None, init_epoch=1, init_batchnum=None,
                 dp_params=None, test=False):
        super().__init__(data_dir, batch_range, init_epoch, init_batchnum, dp_params, test)
        d = self.img_size ** 2 * self.num_colors
        self.data_mean = _mean_column(self, d)                                 # (3072, 1)
        self.data_dims = [d, 1, self.get_num_classes()]

    def check_meta(self) -> None:
        _mean_column(self, self.img_size ** 2 * self.num_colors)

    def make_batch(self, epoch: int, batchnum: int) -> list[np.ndarray]:
        """[x − mean (3072, N), labels (1, N), one-hot (classes, N)], all float32.

        Ports: alexnet-2012/convdata_cifar.py:14-24 CIFARDataProvider.get_next_batch

        DIVERGES: the one-hot matrix has one 1 per column. The original indexes it with the labels
        (shape (N,)) and a column vector ``n.c_[0:N]`` (shape (N, 1)), which broadcast to N × N
        pairs, so every column gets a 1 in every class present in the batch (all ones when all
        ten classes occur). No released cfg has a data layer with ``dataIdx=2``, the one that would
        read this matrix, so the fix changes no released run.
        """
        dic = self.get_batch(batchnum)
        data = self.check_data(batchnum, _field(self, batchnum, dic, "data"), self.data_dims[0])
        n = data.shape[1]
        self.check_batch_cases(batchnum, n, 4 * (2 * data.shape[0] + self.get_num_classes()))
        labels = self.check_labels(batchnum, _field(self, batchnum, dic, "labels"), n)  # (1, N)
        x = np.require(data - self.data_mean, dtype=np.float32, requirements="C")        # (3072, N)
        one_hot = np.zeros((self.get_num_classes(), n), dtype=np.float32)               # (K, N)
        one_hot[labels[0].astype(np.int64), np.arange(n)] = 1
        return [x, labels, one_hot]

    def get_data_dims(self, idx: int = 0) -> int:
        """Ports: alexnet-2012/convdata_cifar.py:28-29 CIFARDataProvider.get_data_dims"""
        return self.data_dims[idx]

    def get_plottable_data(self, data: np.ndarray) -> np.ndarray:
        """Ports: alexnet-2012/convdata_cifar.py:35-36 CIFARDataProvider.get_plottable_data"""
        return plottable(data, self.data_mean, self.num_colors, self.img_size)


# ---- cifar-cropped ---------------------------------------------------------------------------

class CroppedCIFARDataProvider(LabeledMemoryDataProvider):
    """``cifar-cropped``: 24×24 crops (crop-border 4) with flips for training; centre or 9 views for test.

    Training: every image gets its own offset (y, x) in [0, 2·border]² and a 50 % mirror.
    Test: the centre crop, or with ``multiview_test`` the 9 crops at offsets {0, b, 2b}², laid out as
    9 blocks of N columns, labels tiled 9 times. The mean subtracted is the centre crop of the mean
    image, for every view.

    Ports: alexnet-2012/convdata_cifar.py:38-99 CroppedCIFARDataProvider
    """

    num_colors = 3
    img_size = 32
    num_views = 9

    def __init__(self, data_dir, batch_range=None, init_epoch=1, init_batchnum=None,
                 dp_params=None, test=False):
        super().__init__(data_dir, batch_range, init_epoch, init_batchnum, dp_params, test)
        self.border_size = int(self.dp_params.get("crop_border", 4))
        if not 0 <= self.border_size < self.img_size // 2:
            raise UserError(f"--crop-border={self.border_size}: must be in [0, {self.img_size // 2})")
        self.inner_size = self.img_size - 2 * self.border_size
        self.multiview = bool(self.dp_params.get("multiview_test", False)) and test
        self.data_mult = self.num_views if self.multiview else 1
        full = self.img_size ** 2 * self.num_colors
        for b, d in self.data_dic.items():
            d["data"] = self.check_data(b, d["data"], full)                    # (3072, N)
            self.check_batch_cases(b, d["data"].shape[1], 2 * 4 * 3 * self.inner_size ** 2
                                   * self.data_mult)                           # float32 crops
            d["labels"] = np.tile(d["labels"], (1, self.data_mult))            # (1, N·views)
        self.data_mean = centre_crop_mean(_mean_column(self, full), self.num_colors,
                                          self.img_size, self.border_size)     # (3·inner², 1)

    def make_batch(self, epoch: int, batchnum: int) -> list[np.ndarray]:
        """[crops − centre mean (3·inner², N·views), labels (1, N·views)], float32.

        Ports: alexnet-2012/convdata_cifar.py:58-66 CroppedCIFARDataProvider.get_next_batch
        """
        d = self.data_dic[batchnum]
        cropped = self.trim_borders(d["data"], self.batch_rng(epoch, batchnum))
        cropped -= self.data_mean
        return [cropped, d["labels"].copy()]

    def check_meta(self) -> None:
        _mean_column(self, self.img_size ** 2 * self.num_colors)

    def get_data_dims(self, idx: int = 0) -> int:
        """Ports: alexnet-2012/convdata_cifar.py:68-69 CroppedCIFARDataProvider.get_data_dims"""
        return self.inner_size ** 2 * 3 if idx == 0 else 1

    def get_plottable_data(self, data: np.ndarray) -> np.ndarray:
        """Ports: alexnet-2012/convdata_cifar.py:75-76 CroppedCIFARDataProvider.get_plottable_data"""
        return plottable(data, self.data_mean, self.num_colors, self.inner_size)

    def view_offsets(self) -> list[tuple[int, int]]:
        """The 9 test offsets (y, x): {0, b, 2b}² in row-major order."""
        b = self.border_size
        return [(sy, sx) for sy in (0, b, 2 * b) for sx in (0, b, 2 * b)]

    def trim_borders(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The crops of ``x`` (3072, N) -> float32 (3·inner², N·data_mult).

        Random draws for training, in this order: off_y[N], off_x[N] (integers in [0, 2b]), then
        flip[N] (integer 0 = mirror, as the original's ``randint(2) == 0``).

        Ports: alexnet-2012/convdata_cifar.py:78-99 CroppedCIFARDataProvider.__trim_borders
        """
        n = x.shape[1]
        y = x.reshape(self.num_colors, self.img_size, self.img_size, n)        # (3, 32, 32, N)
        b, inner = self.border_size, self.inner_size
        if self.test:
            offsets = self.view_offsets() if self.multiview else [(b, b)]
            blocks = [y[:, sy:sy + inner, sx:sx + inner, :].reshape(-1, n) for sy, sx in offsets]
            return np.concatenate(blocks, axis=1).astype(np.float32)           # (3·inner², N·V)
        off_y = rng.integers(0, 2 * b + 1, size=n)
        off_x = rng.integers(0, 2 * b + 1, size=n)
        flip = rng.integers(0, 2, size=n) == 0
        return crop_images(y, off_y, off_x, flip, inner).astype(np.float32)    # (3·inner², N)


def _field(dp, batchnum: int, dic, key: str):
    if not isinstance(dic, dict) or key not in dic:
        raise UserError(f"{dp.get_data_file_name(batchnum)}: batch {batchnum} has no '{key}'")
    return dic[key]


def _mean_column(dp, rows: int) -> np.ndarray:
    """The meta's ``data_mean`` as a float32 (rows, 1) column, or a one-line error."""
    if "data_mean" not in dp.batch_meta:
        raise UserError(f"{dp.data_dir / 'batches.meta'}: no 'data_mean' (is this the official "
                        f"python release? convert it with `python -m port.data cifar10 --source "
                        f"{dp.data_dir} --out DIR`)")
    mean = dp.meta_floats("data_mean")
    if mean.size != rows:
        raise UserError(f"{dp.data_dir / 'batches.meta'}: 'data_mean' has {mean.size} values; "
                        f"expected {rows}")
    return mean.reshape(rows, 1)
