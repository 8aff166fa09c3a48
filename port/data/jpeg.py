"""The ImageNet JPEG provider ``inet-lr-cropped-jpeg`` (the twin of ``convdata_jpeg.py``).

What this is: the provider the 2012 runs trained with from diary #115 on. A batch file is a pickled
``(jpeg_strings, orig_sizes, labels)``; each string decodes (Pillow) to a 256×256 RGB image; training
takes random 224×224 crops (inner size 256 − 2·border) with a mirror, shared by every chunk of 32
consecutive images, adds PCA colour noise and divides by (1 + c); testing takes the centre crop or
10 views. What this is not: the converter that writes such batches (``convert.py``), or the raw-pixel
providers ``inet-lr`` / ``inet-lr-cropped`` of ``convdata.py`` (not ported).

Layout: decoded images are held as (3, S, S, N) uint8 (channel-major, S = 256); outputs are
float32 (3·inner², N·views), row c·inner² + y·inner + x, and labels (1, N·views).

Threads: the base class computes the next batch in one background thread; inside it the JPEGs of
a batch are decoded, and the crops of its chunks copied, by a shared pool of threads (Pillow and
NumPy release the GIL while they work). All random draws of a batch come from
``batch_rng(epoch, batchnum)``, in this order: for every chunk of 32 images off_y, off_x (integers
in [0, 2b]) and flip (0 = mirror) drawn as three arrays of length ⌈N/32⌉, then the colour-noise
normals z (N, 3).
DIVERGES: the original made colour noise in a separate thread and reused the previous batch's
noise when that thread was late; here each batch draws its own, so results do not depend on timing.
"""
from __future__ import annotations

import io
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from port.data.cifar import centre_crop_mean, plottable
from port.data.provider import LabeledDataProvider
from port.errors import UserError

CROP_CHUNK = 32  # this many consecutive images are cropped the same way

_decode_pool: ThreadPoolExecutor | None = None


def decode_pool() -> ThreadPoolExecutor:
    """The shared threads that decode JPEGs and copy crops (created on first use; one per core, at most 8)."""
    global _decode_pool
    if _decode_pool is None:
        _decode_pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1),
                                          thread_name_prefix="jpeg-decode")
    return _decode_pool


def _decode(s: bytes) -> np.ndarray | None:
    """One JPEG string -> (H, W, 3) uint8, or None when Pillow cannot read it."""
    try:
        with Image.open(io.BytesIO(s)) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, Image.DecompressionBombError):  # the original skipped what raised IOError
        return None


def load_jpeg_batch(batch, data_mean, no_crop: bool, label_offset: int, img_size: int,
                    where: str) -> dict:
    """Decode one unpickled batch -> {'data': (3, S, S, N) uint8, 'labels': (1, N) float32}.

    Images Pillow cannot read are dropped (as in the original). The class of image k is
    ``labels[k][1] + label_offset``; ``None`` (the 2012 test set) becomes 0. With ``no_crop``,
    smaller images are centred on a canvas filled with the (scalar) mean.

    Ports: alexnet-2012/convdata_jpeg.py:27-47 JPEGBatchLoaderThread.load_jpeg_batch
    """
    try:
        strings, _orig_sizes, labels = batch
        strings, labels = list(strings), list(labels)
    except (TypeError, ValueError):
        raise UserError(f"{where}: expected a pickled (jpeg_strings, orig_sizes, labels) "
                        f"triple") from None
    if len(strings) != len(labels):
        raise UserError(f"{where}: {len(strings)} JPEG strings but {len(labels)} labels")
    images = list(decode_pool().map(_decode, strings))
    keep = [k for k, im in enumerate(images) if im is not None]
    if len(keep) < len(images):
        warnings.warn(f"{where}: skipped {len(images) - len(keep)} images Pillow could not decode",
                      stacklevel=2)
    tgt = np.empty((len(keep), img_size, img_size, 3), dtype=np.uint8)       # (N, S, S, 3)
    lab = np.zeros((1, len(keep)), dtype=np.float32)                          # (1, N)
    fill = np.asarray(data_mean, dtype=np.float32).astype(np.uint8) if no_crop else None
    for i, k in enumerate(keep):
        ima = images[k]
        if no_crop:
            h, w = ima.shape[:2]
            if h > img_size or w > img_size:
                raise UserError(f"{where}: image {k} is {w}×{h}; larger than {img_size}×{img_size}")
            oy, ox = (img_size - h) // 2, (img_size - w) // 2
            tgt[i] = fill
            tgt[i, oy:oy + h, ox:ox + w] = ima
        elif ima.shape[:2] != (img_size, img_size):
            raise UserError(f"{where}: image {k} decodes to {ima.shape[1]}×{ima.shape[0]}; "
                            f"expected {img_size}×{img_size}")
        else:
            tgt[i] = ima
        lab[0, i] = _class_id(labels[k], label_offset, where, k)
    return {"data": tgt.transpose(3, 1, 2, 0), "labels": lab}                 # (3, S, S, N)


def _class_id(label, label_offset: int, where: str, k: int) -> int:
    if isinstance(label, (tuple, list)):
        if len(label) < 2:
            raise UserError(f"{where}: label {k} is {label!r}; expected (name, class id)")
        label = label[1]
    if label is None:
        return 0
    if not isinstance(label, (int, np.integer)):
        raise UserError(f"{where}: label {k} is {label!r}; expected an integer class id")
    return int(label) + label_offset


def color_noise(rng: np.random.Generator, n: int, stdevs: np.ndarray, vecs: np.ndarray) -> np.ndarray:
    """Per-image RGB shifts Σⱼ zⱼ σⱼ vⱼ with z ~ N(0, 1): (N, 3) float32 (vⱼ = column j of ``vecs``).

    Ports: alexnet-2012/convdata_jpeg.py:57-66 ColorNoiseMakerThread
    """
    z = rng.standard_normal((n, 3)).astype(np.float32)                        # (N, 3)
    return np.dot(z * stdevs.reshape(1, 3), vecs.T).astype(np.float32)        # (N, 3)


class JPEGCroppedImageNetDP(LabeledDataProvider):
    """Cropped, mirrored, colour-jittered 256×256 JPEG batches.

    dp_params read (the driver's options): ``crop_border`` (16 for 224 crops), ``multiview_test``,
    ``color_noise`` (c; 0 = off), ``scalar_mean``; and the port's ``seed`` and ``prefetch``.

    Ports: alexnet-2012/convdata_jpeg.py:68-262 JPEGCroppedImageNetDP
    Ports: alexnet-2012/convdata.py:37-45 ImageNetDP.init_commons
    """

    num_colors = 3
    num_views = 5 * 2

    def __init__(self, data_dir, batch_range=None, init_epoch=1, init_batchnum=None,
                 dp_params=None, test=False):
        super().__init__(data_dir, batch_range, init_epoch, init_batchnum, dp_params, test)
        p = self.dp_params
        num_vis = self.meta_int("num_vis", 3, 3 * 4096 ** 2)
        self.img_size = int(round((num_vis / self.num_colors) ** 0.5))
        if self.img_size ** 2 * self.num_colors != num_vis:
            raise UserError(f"{self.data_dir / 'batches.meta'}: num_vis={num_vis} is not 3·S²")
        self.data_mean = self.meta_floats("data_mean")
        if self.data_mean.size != num_vis:
            raise UserError(f"{self.data_dir / 'batches.meta'}: 'data_mean' has "
                            f"{self.data_mean.size} values; expected num_vis={num_vis}")
        pca = self.meta_value("color_pca")
        try:
            self.color_stdevs = np.asarray(pca[0], dtype=np.float32).reshape(3)  # (3,)
            self.color_eig = np.asarray(pca[1], dtype=np.float32).reshape(3, 3)  # (3, 3) columns
        except (TypeError, ValueError, IndexError):
            raise UserError(f"{self.data_dir / 'batches.meta'}: 'color_pca' must be "
                            f"(stdevs[3], eigenvectors 3×3)") from None
        self.color_noise_coeff = float(p.get("color_noise", 0.0))
        self.border_size = int(p.get("crop_border", 16))
        if not 0 <= self.border_size < self.img_size // 2:
            raise UserError(f"--crop-border={self.border_size}: must be in [0, {self.img_size // 2})")
        self.inner_size = self.img_size - 2 * self.border_size
        self.multiview = bool(p.get("multiview_test", False)) and test
        self.data_mult = self.num_views if self.multiview else 1
        self.crop_chunk = CROP_CHUNK
        self.batch_size = self.meta_value("batch_size")
        self.label_offset = self.meta_int("label_offset", -(2 ** 31), 2 ** 31 - 1, default=0)
        self.no_crop = bool(self.batch_meta.get("no_crop", False))
        self.scalar_mean = bool(p.get("scalar_mean", False))
        self.data_mean_crop = centre_crop_mean(self.data_mean, self.num_colors, self.img_size,
                                               self.border_size)               # (3·inner², 1)
        if self.no_crop or self.scalar_mean:
            self.data_mean_crop = np.float32(self.data_mean.mean())

    def get_data_dims(self, idx: int = 0) -> int:
        """Ports: alexnet-2012/convdata_jpeg.py:99-102 JPEGCroppedImageNetDP.get_data_dims"""
        return self.inner_size ** 2 * 3 if idx == 0 else 1

    def get_labels(self, labels: np.ndarray) -> np.ndarray:
        """Ports: alexnet-2012/convdata_jpeg.py:123-124 JPEGCroppedImageNetDP.get_labels"""
        return labels

    def make_batch(self, epoch: int, batchnum: int) -> list[np.ndarray]:
        """[crops (3·inner², N·views) float32, labels (1, N·views)] for (epoch, batchnum).

        Ports: alexnet-2012/convdata_jpeg.py:126-199 JPEGCroppedImageNetDP.get_next_batch
        """
        where = f"{self.get_data_file_name(batchnum)} (batch {batchnum})"
        batch = self.get_batch(batchnum)
        self.check_jpeg_batch(batchnum, batch, where)
        dic = load_jpeg_batch(batch, self.data_mean_crop, self.no_crop,
                              self.label_offset, self.img_size, where)
        dic["labels"] = self.check_labels(batchnum, dic["labels"], dic["labels"].shape[1])
        rng = self.batch_rng(epoch, batchnum)
        cropped = self.trim_borders(dic["data"], rng)                          # (3·inner², N·V)
        cropped -= self.data_mean_crop
        if self.color_noise_coeff > 0 and not self.test:
            # The data already has zero mean: add the noise, then scale the whole crop down so the
            # training data keeps about the scale of the test data.
            n = cropped.shape[1]
            noise = color_noise(rng, n, self.color_stdevs, self.color_eig)     # (N, 3)
            per_channel = cropped.reshape(3, self.inner_size ** 2, n)          # view (3, inner², N)
            per_channel += (noise.T * np.float32(self.color_noise_coeff))[:, None, :]
            cropped /= np.float32(1.0 + self.color_noise_coeff)
        return [cropped, self.get_labels(dic["labels"])]

    def check_jpeg_batch(self, batchnum: int, batch, where: str) -> None:
        """Before anything is decoded: the batch is a (strings, sizes, labels) triple of JPEG byte
        strings, its case count fits in memory, and no image's header claims more than S×S pixels
        (a 30000×30000 header is one line, not a 2.7 GB decode or Pillow's bomb error).

        Port-only: the original decoded whatever the batch held.
        """
        try:
            strings = batch[0]
            n = len(strings)
        except (TypeError, KeyError, IndexError):
            raise UserError(f"{where}: expected a pickled (jpeg_strings, orig_sizes, labels) "
                            f"triple") from None
        s, inner = self.img_size, self.inner_size
        self.check_batch_cases(batchnum, n, 2 * 3 * s * s + 2 * 4 * 3 * inner * inner * self.data_mult)
        for k, js in enumerate(strings):
            if not isinstance(js, (bytes, bytearray)):
                raise UserError(f"{where}: JPEG string {k} is a {type(js).__name__}, not bytes")
            try:
                with Image.open(io.BytesIO(js)) as im:
                    w, h = im.size
            except Image.DecompressionBombError as e:
                raise UserError(f"{where}: image {k} is too large to decode ({e})") from None
            except Exception:  # noqa: BLE001 (unreadable: the decoder skips it, as the original did)
                continue
            if w > s or h > s:
                raise UserError(f"{where}: image {k} is {w}×{h}; expected {s}×{s}"
                                f"{' or smaller' if self.no_crop else ''}")

    def trim_borders(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Crops of ``y`` (3, S, S, N) uint8 -> float32 (3·inner², N·data_mult).

        Test views: offsets (0,0), (0,2b), (b,b), (2b,0), (2b,2b), then the same five mirrored.

        Ports: alexnet-2012/convdata_jpeg.py:221-262 JPEGCroppedImageNetDP.__trim_borders
        """
        n = y.shape[3]
        b, inner = self.border_size, self.inner_size
        if self.test:
            if self.multiview:
                starts = [(0, 0), (0, 2 * b), (b, b), (2 * b, 0), (2 * b, 2 * b)]
                pics = [y[:, sy:sy + inner, sx:sx + inner, :] for sy, sx in starts]
                pics += [p[:, :, ::-1, :] for p in pics]
            else:
                pics = [y[:, b:b + inner, b:b + inner, :]]
            return np.concatenate([p.reshape(-1, n) for p in pics], axis=1).astype(np.float32)
        chunks = -(-n // self.crop_chunk)
        off_y = rng.integers(0, 2 * b + 1, size=chunks)
        off_x = rng.integers(0, 2 * b + 1, size=chunks)
        flip = rng.integers(0, 2, size=chunks) == 0
        target = np.empty((3, inner, inner, n), dtype=np.float32)             # (3, inner, inner, N)

        def crop_chunk(k: int) -> None:  # one strided slice per chunk of 32 cases
            lo, hi = k * self.crop_chunk, min((k + 1) * self.crop_chunk, n)
            pic = y[:, off_y[k]:off_y[k] + inner, off_x[k]:off_x[k] + inner, lo:hi]
            target[..., lo:hi] = pic[:, :, ::-1, :] if flip[k] else pic

        list(decode_pool().map(crop_chunk, range(chunks)))  # NumPy copies release the GIL
        return target.reshape(-1, n)                                           # (3·inner², N)

    def get_plottable_data(self, data: np.ndarray, add_mean: bool = True) -> np.ndarray:
        """Ports: alexnet-2012/convdata_jpeg.py:217-219 JPEGCroppedImageNetDP.get_plottable_data"""
        return plottable(data, self.data_mean_crop if add_mean else 0, 3, self.inner_size)


class JPEGCroppedImageNetLogRegDP(JPEGCroppedImageNetDP):
    """``inet-lr-cropped-jpeg``: labels as a float32 row, tiled once per view.

    Ports: alexnet-2012/convdata_jpeg.py:264-269 JPEGCroppedImageNetLogRegDP
    """

    def get_labels(self, labels: np.ndarray) -> np.ndarray:
        """Ports: alexnet-2012/convdata_jpeg.py:268-269 JPEGCroppedImageNetLogRegDP.get_labels"""
        return np.require(np.tile(labels, (1, self.data_mult)), dtype=np.float32,
                          requirements="C")                                     # (1, N·V)
