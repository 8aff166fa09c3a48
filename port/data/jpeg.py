"""The ImageNet JPEG provider ``inet-lr-cropped-jpeg`` (the twin of ``convdata_jpeg.py``).

What this is: the provider the 2012 runs trained with from diary #115 on. A batch file is a pickled
``(jpeg_strings, orig_sizes, labels)``; each string decodes (simplejpeg, else Pillow) to a 256×256
RGB image; training
takes random 224×224 crops (inner size 256 − 2·border) with a mirror, shared by every chunk of 32
consecutive images, adds PCA colour noise and divides by (1 + c); testing takes the centre crop or
10 views. What this is not: the converter that writes such batches (``imagenet.py``), or the
raw-pixel providers ``inet-lr`` / ``inet-lr-cropped`` of ``convdata.py`` (not ported).

Layout: decoded images are held as (3, S, S, N) uint8 (channel-major, S = 256); outputs are
float32 (3·inner², N·views), row c·inner² + y·inner + x, and labels (1, N·views).

Processes: single-view batches (training, and the test centre crop) come from the feed
(``feed.py``): ``feed_workers`` processes (``dp_params``; default every core) decode, crop and
mirror 32 cases each into shared memory, ``feed_batches`` (K, default 3) batches in flight; on
NumPy they also subtract the mean and add the noise, on CuPy that happens on the device
(:func:`finish_crops`). Multiview and ``no_crop`` batches, ``feed_workers=0``, and a batch with an
image that does not decode take the in-process path: the base class's background thread, whose
JPEGs are decoded, and whose chunks' crops are copied, by a shared pool of threads. Both paths give
the same bits. All random draws of a batch come from
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
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from PIL import Image

from port import backend
from port.data import feed as _feed
from port.data.cifar import centre_crop_mean, plottable
from port.data.provider import LabeledDataProvider
from port.errors import UserError

Image.init()  # register every plugin, so formats=[...] below can name them

try:
    import simplejpeg as _simplejpeg
except ImportError:  # declared in pyproject.toml; Pillow decodes alone without it
    _simplejpeg = None

CROP_CHUNK = 32  # this many consecutive images are cropped the same way

_decode_pool: ThreadPoolExecutor | None = None


def decode_pool() -> ThreadPoolExecutor:
    """The shared threads that decode JPEGs and copy crops (created on first use; one per core, at most 8)."""
    global _decode_pool
    if _decode_pool is None:
        _decode_pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1),
                                          thread_name_prefix="jpeg-decode")
    return _decode_pool


class ImageTooLarge(ValueError):
    """A JPEG whose header is larger than the provider's images; nothing was decoded."""

    def __init__(self, w: int, h: int):
        super().__init__(f"{w}×{h}")
        self.w, self.h = w, h


def decode_rgb(s: bytes, buffer=None, max_pixels: int | None = None) -> np.ndarray:
    """JPEG bytes -> (H, W, 3) uint8 RGB, decoded into ``buffer`` when one is given.

    simplejpeg (libjpeg-turbo, measured about twice Pillow's rate at 256 px, bit-identical to
    Pillow's decode: the tests) for YCbCr and grayscale JPEGs; Pillow for anything else (CMYK,
    PNG, ...). Raises OSError (or ValueError) when neither can read it, and
    :class:`ImageTooLarge` before decoding anything when the header says more than ``max_pixels``.
    """
    if _simplejpeg is not None and isinstance(s, (bytes, bytearray, memoryview)):
        try:
            h, w, colorspace, _ = _simplejpeg.decode_jpeg_header(s)
        except ValueError:
            colorspace = None
        if colorspace in ("YCbCr", "Gray"):
            if max_pixels is not None and h * w > max_pixels:
                raise ImageTooLarge(w, h)
            if buffer is not None and buffer.nbytes < h * w * 3:
                buffer = None
            try:
                return _simplejpeg.decode_jpeg(s, colorspace="RGB", buffer=buffer)
            except ValueError:
                pass  # Pillow decides (and names the error)
    with Image.open(io.BytesIO(s), formats=["JPEG", "PNG"]) as im:
        if max_pixels is not None and im.size[0] * im.size[1] > max_pixels:
            raise ImageTooLarge(*im.size)
        return np.asarray(im.convert("RGB"))


def _decode(s: bytes, max_pixels: int | None = None):
    """One JPEG string -> (H, W, 3) uint8; None when it cannot be read; the
    :class:`ImageTooLarge` (returned) when its header is over ``max_pixels``."""
    try:
        return decode_rgb(s, max_pixels=max_pixels)
    except ImageTooLarge as e:
        return e
    except (OSError, ValueError, TypeError, SyntaxError, Image.DecompressionBombError):
        return None  # the original skipped the images that raised IOError


def load_jpeg_batch(batch, data_mean, no_crop: bool, label_offset: int, img_size: int,
                    where: str) -> dict:
    """Decode one unpickled batch -> {'data': (3, S, S, N) uint8, 'labels': (1, N) float32}.

    Images Pillow cannot read are dropped (as in the original). The class of image k is
    ``labels[k][1] + label_offset``; ``None`` (the 2012 test set) becomes 0. With ``no_crop``,
    smaller images are centred on a canvas filled with the (scalar) mean.

    Ports: alexnet-2012/convdata_jpeg.py:27-47 JPEGBatchLoaderThread.load_jpeg_batch
    """
    strings, labels = _parse_triple(batch, where)
    limit = img_size * img_size  # a larger header is refused before anything is decoded
    images = list(decode_pool().map(lambda x: _decode(x, limit), strings))
    for k, im in enumerate(images):
        if isinstance(im, ImageTooLarge):
            raise UserError(f"{where}: image {k} is {im.w}×{im.h}; larger than {img_size}×{img_size}")
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


def _parse_triple(batch, where: str) -> tuple[list, list]:
    """(jpeg_strings, labels) of an unpickled batch, or a one-line error."""
    try:
        strings, _orig_sizes, labels = batch
        strings, labels = list(strings), list(labels)
    except (TypeError, ValueError):
        raise UserError(f"{where}: expected a pickled (jpeg_strings, orig_sizes, labels) "
                        f"triple") from None
    if len(strings) != len(labels):
        raise UserError(f"{where}: {len(strings)} JPEG strings but {len(labels)} labels")
    return strings, labels


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


def crop_draws(rng: np.random.Generator, chunks: int, border: int):
    """One (off_y, off_x) in [0, 2·border]² and one mirror flag per chunk of 32 cases, drawn in
    this order (three arrays of length ``chunks``); flip = the draw was 0, as the original's
    ``nr.randint(2) == 0``.

    Ports: alexnet-2012/convdata_jpeg.py:221-262 JPEGCroppedImageNetDP.__trim_borders
    DIVERGES: the original drew (y, x, flip) chunk after chunk from NumPy's global state; here
    three arrays come from the batch's own generator (the module's note on determinism).
    """
    off_y = rng.integers(0, 2 * border + 1, size=chunks)
    off_x = rng.integers(0, 2 * border + 1, size=chunks)
    flip = rng.integers(0, 2, size=chunks) == 0
    return off_y, off_x, flip


def finish_crops(u8, mean, noise: np.ndarray | None, coeff: float, xp=None):
    """uint8 crops (3·inner², N) -> float32 less the mean, plus c·noise per image and channel,
    divided by (1 + c), as the in-process path does, in ``xp`` (default: the chosen array module,
    :mod:`port.backend`): on CuPy the uint8 crops are uploaded and everything else happens on the
    device; on NumPy the feed's workers run it on their own columns (elementwise, so the same bits).

    Ports: alexnet-2012/convdata_jpeg.py:126-199 JPEGCroppedImageNetDP.get_next_batch
    Ports: alexnet-2012/convdata_jpeg.py:209-211 JPEGCroppedImageNetDP.subtract_mean
    """
    xp = xp or backend.xp()
    x = xp.asarray(u8).astype(xp.float32)                                     # (3·inner², N)
    x -= xp.asarray(mean)
    if noise is not None:
        n = x.shape[1]
        per_channel = x.reshape(3, -1, n)                                      # view (3, inner², N)
        per_channel += xp.asarray((noise.T * np.float32(coeff))[:, None, :])
        x /= np.float32(1.0 + coeff)
    return x


def color_noise(rng: np.random.Generator, n: int, stdevs: np.ndarray, vecs: np.ndarray) -> np.ndarray:
    """Per-image RGB shifts Σⱼ zⱼ σⱼ vⱼ with z ~ N(0, 1): (N, 3) float32 (vⱼ = column j of ``vecs``).

    Ports: alexnet-2012/convdata_jpeg.py:57-66 ColorNoiseMakerThread
    """
    z = rng.standard_normal((n, 3)).astype(np.float32)                        # (N, 3)
    return np.dot(z * stdevs.reshape(1, 3), vecs.T).astype(np.float32)        # (N, 3)


class JPEGCroppedImageNetDP(LabeledDataProvider):
    """Cropped, mirrored, colour-jittered 256×256 JPEG batches.

    dp_params read (the driver's options): ``crop_border`` (16 for 224 crops), ``multiview_test``,
    ``color_noise`` (c; 0 = off), ``scalar_mean``; and the port's ``seed``, ``prefetch``,
    ``feed_workers`` and ``feed_batches``.

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
        # the feed: worker processes decoding into shared memory, K batches in flight
        self.feed_workers = int(p.get("feed_workers", os.cpu_count() or 1))
        self.feed_batches = max(1, int(p.get("feed_batches", 3)))
        if self.feed_workers < 0:
            raise UserError(f"feed_workers={self.feed_workers}: must be at least 0")
        self._feed: _feed.Feed | None = None
        self._jobs: dict = {}
        self._finisher: ThreadPoolExecutor | None = None

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

    # ---- the feed (worker processes, shared memory, K batches prefetched) -------------------

    def uses_feed(self) -> bool:
        """Whether batches come from the worker processes: single-view crops with workers > 0.
        Multiview test batches and ``no_crop`` batches take the in-process path."""
        return self.feed_workers > 0 and not self.multiview and not self.no_crop

    def _positions(self, epoch: int, batchnum: int, k: int) -> list[tuple[int, int]]:
        idx = self.batch_range.index(batchnum)
        out = []
        for _ in range(k):
            out.append((epoch, self.batch_range[idx]))
            idx += 1
            if idx == len(self.batch_range):
                idx, epoch = 0, epoch + 1
        return out

    def _dispatch(self, epoch: int, batchnum: int) -> Future:
        """Hand (epoch, batchnum) to the workers; a future of [crops, labels]. The random draws
        are those of :meth:`make_batch` (crops, then noise), so both paths give the same batch."""
        if self._feed is None:  # on NumPy the workers finish the crops too (mean, noise)
            host = backend.xp() is np
            self._feed = _feed.Feed(self.feed_workers, self.feed_batches + 1,
                                    self.data_mean_crop if host else None)
            self._finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dp-finish")
        try:
            where = f"{self.get_data_file_name(batchnum)} (batch {batchnum})"
            batch = self.get_batch(batchnum)
            self.check_jpeg_batch(batchnum, batch, where)
            strings, labels = _parse_triple(batch, where)
            n = len(strings)
            lab = np.array([[_class_id(l, self.label_offset, where, k)
                             for k, l in enumerate(labels)]], dtype=np.float32).reshape(1, n)
            lab = self.check_labels(batchnum, lab, n)
            rng = self.batch_rng(epoch, batchnum)
            b = self.border_size
            if self.test:
                oy = ox = np.full(n, b)
                flip = np.zeros(n, dtype=bool)
            else:
                off_y, off_x, fl = crop_draws(rng, -(-n // self.crop_chunk), b)
                oy, ox, flip = (np.repeat(a, self.crop_chunk)[:n] for a in (off_y, off_x, fl))
            noise = (color_noise(rng, n, self.color_stdevs, self.color_eig)
                     if self.color_noise_coeff > 0 and not self.test else None)
            job = self._feed.submit(strings, self.img_size, self.inner_size, oy, ox, flip,
                                    noise, self.color_noise_coeff)
        except BaseException as e:  # raised when this batch is taken, not while prefetching
            failed: Future = Future()
            failed.set_exception(e)
            return failed
        return self._finisher.submit(self._finish, job, epoch, batchnum, lab, noise)

    def _finish(self, job, epoch: int, batchnum: int, lab: np.ndarray, noise) -> list:
        try:
            if job.failed():  # an image that does not decode to S×S: the in-process path decides
                job.release()
                return self.make_batch(epoch, batchnum)
            if job.host:
                crops = job.leased_crops()                                    # (3·inner², N) f32
            else:
                crops = finish_crops(job.crops(), self.data_mean_crop, noise, self.color_noise_coeff)
        finally:
            job.release()
        return [crops, self.get_labels(lab)]

    def _take(self, epoch: int, batchnum: int):
        if not self.uses_feed():
            return super()._take(epoch, batchnum)
        fut = self._jobs.pop((epoch, batchnum), None)
        if fut is None:  # not prefetched (the first batch, or a jump): drop the others
            self._drop_jobs()
            fut = self._dispatch(epoch, batchnum)
        return fut.result()

    def _start_prefetch(self, epoch: int, batchnum: int) -> None:
        if not self.uses_feed():
            return super()._start_prefetch(epoch, batchnum)
        for pos in self._positions(epoch, batchnum, self.feed_batches):
            if pos not in self._jobs:
                self._jobs[pos] = self._dispatch(*pos)

    def _drop_jobs(self) -> None:
        jobs, self._jobs = self._jobs, {}
        for fut in jobs.values():
            try:
                fut.result()
            except BaseException:  # noqa: BLE001 (a dropped batch's error is not this batch's)
                pass

    def close(self) -> None:
        """Stop the workers and free the shared memory (and the base class's prefetch thread)."""
        self._drop_jobs()
        if self._finisher is not None:
            self._finisher.shutdown(wait=True)
            self._finisher = None
        if self._feed is not None:
            self._feed.close()
            self._feed = None
        super().close()

    def check_jpeg_batch(self, batchnum: int, batch, where: str) -> None:
        """Before anything is decoded: the batch is a (strings, sizes, labels) triple of JPEG byte
        strings and its case count fits in memory. (An image whose header claims more than S×S
        pixels is refused by the decoders before they decode it: :func:`decode_rgb`.)

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
                raise UserError(f"{where}: JPEG string {k} is {type(js).__name__}; expected bytes")

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
        off_y, off_x, flip = crop_draws(rng, chunks, b)
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
