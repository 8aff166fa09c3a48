"""The data-provider base classes and the registry lookup (the twin of r561 ``data.py``).

What this is: :class:`DataProvider` walks a batch range epoch after epoch and hands out
``(epoch, batchnum, [matrices])``; :class:`LabeledDataProvider` adds the class count;
:class:`LabeledMemoryDataProvider` keeps every batch in memory; :func:`get_instance` picks the
class registered under a ``--data-provider`` string in :data:`dp_types` (the one registry, at the
end of this file: r561's ``dp_classes`` and the 2012 ``convnet.py``'s registrations). What this is
not: the crops, flips and colour noise, which live with the providers that use them (``cifar.py``,
``jpeg.py``), or any GPU code: providers run on the host with NumPy and the driver copies their
output to the device, as the original's Python providers did.

Layout: every matrix handed out is float32, C-contiguous, shape (D, N), one column per case;
images inside a column are channel-major, row c·H·W + y·W + x. Multiview test batches lay the V
views out as V contiguous blocks of N columns (view v = columns v·N … (v+1)·N − 1).

On disk: a data directory holds ``batches.meta`` and ``data_batch_<n>`` files (a batch may be split
into parts ``data_batch_<n>.1``, ``.2``, … whose ``data`` matrices are stacked, as the original did).

Background loading and determinism. The original loaded the next batch in a thread while the GPU
worked, and drew its crops from NumPy's global random state, so the crops depended on thread
timing and could not be reproduced on resume. Here a training provider computes the *whole* next
batch (load, decode, crop, noise) in one background thread while the model works on the current
one; test providers load on demand, as the original's did (a 10-view ImageNet test batch is 6 GB
of float32), unless ``dp_params['prefetch']`` says otherwise. Every random draw for a batch comes
from its own generator ``numpy.random.default_rng([seed, epoch, batchnum])`` (:meth:`DataProvider.batch_rng`;
``seed`` = ``dp_params['seed']``, default 0). A batch's crops therefore depend only on
(seed, epoch, batch number): the same with or without prefetching, and the same when the driver
resumes from a checkpoint at that epoch and batch.
DIVERGES: random draws are seeded per (seed, epoch, batch) instead of coming from the unseeded
global NumPy state, so runs and resumes are reproducible.
"""
from __future__ import annotations

import os
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from port.errors import UserError
from port.util import alphanum_key, unpickle

BATCH_META_FILE = "batches.meta"


class DataProvider:
    """Walk ``batch_range`` in order, epoch after epoch, handing out one batch per call.

    Ports: cuda-convnet-r561/data.py:32-144 DataProvider
    """

    BATCH_REGEX = re.compile(r"^data_batch_(\d+)(\.\d+)?$")
    num_views = 1  # views per case in a multiview test batch (9 for CIFAR, 10 for ImageNet)

    def __init__(self, data_dir, batch_range=None, init_epoch: int = 1, init_batchnum=None,
                 dp_params: dict | None = None, test: bool = False):
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise UserError(f"{self.data_dir}: data path does not exist or is not a directory")
        if batch_range is None:
            batch_range = DataProvider.get_batch_nums(self.data_dir)
        batch_range = list(batch_range)
        if not batch_range:
            raise UserError(f"{self.data_dir}: no data_batch_<n> files and no batch range given")
        if init_batchnum is None or init_batchnum not in batch_range:
            init_batchnum = batch_range[0]
        self.batch_range = batch_range
        self.curr_epoch = init_epoch
        self.curr_batchnum = init_batchnum
        self.dp_params = dict(dp_params or {})
        self.test = test
        self.batch_meta = self.get_batch_meta(self.data_dir)
        self.batch_idx = batch_range.index(init_batchnum)
        self.seed = int(self.dp_params.get("seed", 0))
        self.check_meta()
        self._check_batches_exist()
        self._init_prefetch(default=not test)

    # ---- the batch walk -------------------------------------------------------------------

    def get_next_batch(self) -> tuple[int, int, Any]:
        """``(epoch, batchnum, data)`` for the current position, then advance one batch.

        The next batch starts computing in a background thread before this returns.

        Ports: cuda-convnet-r561/data.py:50-56 DataProvider.get_next_batch
        """
        epoch, batchnum = self.curr_epoch, self.curr_batchnum
        data = self._take(epoch, batchnum)
        self.advance_batch()
        if self._prefetch:
            self._start_prefetch(self.curr_epoch, self.curr_batchnum)
        return epoch, batchnum, data

    def make_batch(self, epoch: int, batchnum: int) -> Any:
        """Everything the provider hands out for (epoch, batchnum); subclasses process the raw batch.

        Must not change ``self``: it runs in the prefetch thread.
        """
        return self.get_batch(batchnum)

    def batch_rng(self, epoch: int, batchnum: int) -> np.random.Generator:
        """The random generator of one batch: ``default_rng([seed, epoch, batchnum])``."""
        return np.random.default_rng([self.seed, epoch, batchnum])

    def advance_batch(self) -> None:
        """Ports: cuda-convnet-r561/data.py:86-90 DataProvider.advance_batch"""
        self.batch_idx = self.get_next_batch_idx()
        self.curr_batchnum = self.batch_range[self.batch_idx]
        if self.batch_idx == 0:  # we wrapped
            self.curr_epoch += 1

    def get_next_batch_idx(self) -> int:
        """Ports: cuda-convnet-r561/data.py:92-93 DataProvider.get_next_batch_idx"""
        return (self.batch_idx + 1) % len(self.batch_range)

    def get_next_batch_num(self) -> int:
        """Ports: cuda-convnet-r561/data.py:95-96 DataProvider.get_next_batch_num"""
        return self.batch_range[self.get_next_batch_idx()]

    def _init_prefetch(self, default: bool) -> None:
        """No batch in flight yet; prefetch when ``dp_params['prefetch']`` (else ``default``) says so."""
        self._prefetch = bool(self.dp_params.get("prefetch", default))
        self._executor: ThreadPoolExecutor | None = None
        self._pending: tuple[int, int, Future] | None = None
        self._lock = threading.Lock()

    def _take(self, epoch: int, batchnum: int):
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None and pending[:2] == (epoch, batchnum):
            return pending[2].result()
        return self.make_batch(epoch, batchnum)

    def _start_prefetch(self, epoch: int, batchnum: int) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dp-prefetch")
        future = self._executor.submit(self.make_batch, epoch, batchnum)
        with self._lock:
            self._pending = (epoch, batchnum, future)

    def close(self) -> None:
        """Stop the prefetch thread (waits for a batch in progress)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._pending = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- files ----------------------------------------------------------------------------

    def get_data_file_name(self, batchnum: int | None = None) -> Path:
        """Ports: cuda-convnet-r561/data.py:99-102 DataProvider.get_data_file_name"""
        if batchnum is None:
            batchnum = self.curr_batchnum
        return self.data_dir / f"data_batch_{batchnum}"

    def get_batch(self, batch_num: int) -> Any:
        """The unpickled batch file (its parts ``.1``, ``.2``, … stacked along the rows of ``data``).

        Ports: cuda-convnet-r561/data.py:69-81 DataProvider.get_batch
        """
        path = self.get_data_file_name(batch_num)
        first_part = path.with_name(path.name + ".1")
        if not first_part.exists():
            return unpickle(path, f"batch {batch_num}")
        dic = unpickle(first_part, f"batch {batch_num} part 1")
        part = 2
        while (p := path.with_name(f"{path.name}.{part}")).exists():
            sub = unpickle(p, f"batch {batch_num} part {part}")
            dic["data"] = np.r_[dic["data"], sub["data"]]
            part += 1
        return dic

    def _check_batches_exist(self) -> None:
        for b in self.batch_range:
            path = self.get_data_file_name(b)
            if not (path.is_file() or path.with_name(path.name + ".1").is_file()):
                have = DataProvider.get_batch_nums(self.data_dir)
                raise UserError(f"{path}: batch {b} of the batch range "
                                f"{_format_range(self.batch_range)} does not exist "
                                f"(batches present: {_format_range(have) or 'none'})")

    def check_meta(self) -> None:
        """Raise a :class:`UserError` when ``batch_meta`` lacks what the provider needs (hook)."""

    def get_data_dims(self, idx: int = 0) -> int:
        """Ports: cuda-convnet-r561/data.py:83-84 DataProvider.get_data_dims"""
        return self.batch_meta["num_vis"]

    @staticmethod
    def get_batch_meta(data_dir) -> dict:
        """Ports: cuda-convnet-r561/data.py:129-131 DataProvider.get_batch_meta"""
        meta = unpickle(Path(data_dir) / BATCH_META_FILE, BATCH_META_FILE)
        if not isinstance(meta, dict):
            raise UserError(f"{Path(data_dir) / BATCH_META_FILE}: expected a dict, "
                            f"found {type(meta).__name__}")
        return meta

    @staticmethod
    def get_batch_filenames(srcdir) -> list[str]:
        """Ports: cuda-convnet-r561/data.py:133-135 DataProvider.get_batch_filenames"""
        return sorted((f for f in os.listdir(srcdir) if DataProvider.BATCH_REGEX.match(f)),
                      key=alphanum_key)

    @staticmethod
    def get_batch_nums(srcdir) -> list[int]:
        """Ports: cuda-convnet-r561/data.py:137-140 DataProvider.get_batch_nums"""
        names = DataProvider.get_batch_filenames(srcdir)
        return sorted({int(DataProvider.BATCH_REGEX.match(n).group(1)) for n in names})

    @staticmethod
    def get_num_batches(srcdir) -> int:
        """Ports: cuda-convnet-r561/data.py:142-144 DataProvider.get_num_batches"""
        return len(DataProvider.get_batch_nums(srcdir))

    # ---- meta checks shared by subclasses --------------------------------------------------

    def meta_value(self, key: str):
        """``batch_meta[key]``, or a one-line error naming the meta file and the key."""
        try:
            return self.batch_meta[key]
        except KeyError:
            raise UserError(f"{self.data_dir / BATCH_META_FILE}: key '{key}' is missing "
                            f"(needed by data provider {type(self).__name__})") from None

    def check_data(self, batchnum: int, data, rows: int, name: str = "data",
                   cases_axis: int = 1) -> np.ndarray:
        """``data`` as a 2-D array with ``rows`` rows (cases_axis=1) or columns (cases_axis=0)."""
        data = np.asarray(data)
        feat_axis = 1 - cases_axis
        if data.ndim != 2 or data.shape[feat_axis] != rows:
            expected = f"({rows}, N)" if cases_axis == 1 else f"(N, {rows})"
            raise UserError(f"{self.get_data_file_name(batchnum)}: batch {batchnum} '{name}' has "
                            f"shape {data.shape}; expected {expected}")
        return data

    def check_labels(self, batchnum: int, labels, num_cases: int) -> np.ndarray:
        """Labels as a float32 (1, N) row, checked against the case count and the class count."""
        try:
            lab = np.asarray(labels, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise UserError(f"{self.get_data_file_name(batchnum)}: batch {batchnum} 'labels' "
                            f"are not numbers") from None
        if lab.size != num_cases:
            raise UserError(f"{self.get_data_file_name(batchnum)}: batch {batchnum} has "
                            f"{lab.size} labels for {num_cases} cases")
        k = self.get_num_classes() if hasattr(self, "get_num_classes") else None
        if lab.size and (lab.min() < 0 or (k is not None and lab.max() >= k)
                         or np.any(lab != np.round(lab))):
            raise UserError(f"{self.get_data_file_name(batchnum)}: batch {batchnum} labels must be "
                            f"integers in [0, {k}); found {lab.min():g}..{lab.max():g}")
        return lab.astype(np.float32).reshape(1, num_cases)  # (1, N)


class LabeledDataProvider(DataProvider):
    """A provider whose meta names the classes.

    Ports: cuda-convnet-r561/data.py:199-204 LabeledDataProvider
    """

    def get_num_classes(self) -> int:
        """Ports: cuda-convnet-r561/data.py:203-204 LabeledDataProvider.get_num_classes"""
        return len(self.meta_value("label_names"))


class LabeledMemoryDataProvider(LabeledDataProvider):
    """A labeled provider that reads every batch of its range once, at construction.

    Ports: cuda-convnet-r561/data.py:206-218 LabeledMemoryDataProvider
    """

    def __init__(self, data_dir, batch_range=None, init_epoch: int = 1, init_batchnum=None,
                 dp_params: dict | None = None, test: bool = False):
        super().__init__(data_dir, batch_range, init_epoch, init_batchnum, dp_params, test)
        self.data_dic = {b: self.load_batch(b) for b in self.batch_range}

    def load_batch(self, batchnum: int) -> dict:
        """The batch dict with ``labels`` as a float32 (1, N) row."""
        dic = self.get_batch(batchnum)
        if not isinstance(dic, dict) or "data" not in dic or "labels" not in dic:
            raise UserError(f"{self.get_data_file_name(batchnum)}: batch {batchnum} must be a dict "
                            f"with 'data' and 'labels'")
        data = np.asarray(dic["data"])
        ncases = data.shape[-1] if data.ndim == 2 else -1
        dic["labels"] = self.check_labels(batchnum, dic["labels"], ncases)
        return dic

    def make_batch(self, epoch: int, batchnum: int):
        return self.data_dic[batchnum]


def get_instance(data_dir, batch_range=None, init_epoch: int = 1, init_batchnum=None,
                 type: str | None = "default", dp_params: dict | None = None,
                 test: bool = False) -> DataProvider:
    """The provider registered under ``type`` (``None``: the meta's ``dp_type``).

    ``dummy-<kind>-<n>`` strings select the class registered as ``dummy-<kind>-n`` with data
    dimension n, as in the original.

    Ports: cuda-convnet-r561/data.py:104-120 DataProvider.get_instance
    """
    if not type:
        type = DataProvider.get_batch_meta(data_dir).get("dp_type")
        if not type:
            raise UserError(f"{Path(data_dir) / BATCH_META_FILE}: no --data-provider given and the "
                            f"meta has no 'dp_type'")
    key = type
    if type.startswith("dummy-"):
        key = "-".join(type.split("-")[:-1]) + "-n"
        dims = type.split("-")[-1]
        if key in dp_types and dims.isdigit():
            return dp_types[key](int(dims), batch_range, init_epoch, init_batchnum, dp_params, test)
    elif type in dp_types:
        return dp_types[type](data_dir, batch_range, init_epoch, init_batchnum, dp_params, test)
    if key in not_ported:
        raise UserError(f"data provider '{type}' is not ported: {not_ported[key]}")
    raise UserError(f"no such data provider: '{type}' (known: {', '.join(sorted(dp_types))})")


DataProvider.get_instance = staticmethod(get_instance)


def _format_range(nums: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``'1-3, 5'``."""
    parts, start = [], None
    for i, n in enumerate(nums):
        if start is None:
            start = n
        if i + 1 == len(nums) or nums[i + 1] != n + 1:
            parts.append(f"{start}-{n}" if n != start else f"{n}")
            start = None
    return ", ".join(parts)


# The providers of the other modules subclass the classes above, so they are imported here, after
# them: port/data/__init__.py imports this module first, and cifar.py, jpeg.py and synthetic.py
# then find DataProvider and its subclasses defined when this import runs them.
from port.data.cifar import CIFARDataProvider, CroppedCIFARDataProvider  # noqa: E402
from port.data.jpeg import JPEGCroppedImageNetLogRegDP  # noqa: E402
from port.data.synthetic import DummyConvNetLogRegDP  # noqa: E402

# The --data-provider string -> provider class: r561's own keys, then the keys the 2012 driver
# registers (the one registry; get_instance looks a string up here).
# Ports: cuda-convnet-r561/data.py:220-231 dp_types
# Ports: alexnet-2012/convnet.py:199-209 register_data_provider
dp_types: dict[str, type] = {
    "default": DataProvider,
    "labeled": LabeledDataProvider,
    "labeled-memory": LabeledMemoryDataProvider,
    "dummy-lr-n": DummyConvNetLogRegDP,
    "inet-lr-cropped-jpeg": JPEGCroppedImageNetLogRegDP,
    "cifar": CIFARDataProvider,
    "cifar-cropped": CroppedCIFARDataProvider,
}

_RAW = ("raw-pixel ImageNet batches (D×N arrays with 'wordpres'); "
        "the 2012 runs used the JPEG provider")
# Keys the 2012 driver registers that this port does not implement, with the reason.
not_ported: dict[str, str] = {
    "inet-lr": _RAW,
    "inet-lr-cropped": _RAW,
    "inet-rs-lr-cropped": "broken in the release (get_cropped_data has the wrong signature)",
    "flickr-ce-cropped": "the Flickr tag data set is not public",
    "dummy-ce-n": "the cross-entropy dummy provider is not ported; use dummy-lr-n",
    "flatmem": "not ported; use cifar for flat in-memory batches",
    "memory": "not ported; use labeled-memory",
}
