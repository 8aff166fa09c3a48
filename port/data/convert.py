"""Converters from public data layouts to the batch files the providers read (``python -m port.data``).

What this is: ``cifar10`` turns the official CIFAR-10 python release (the tarball, its unpacked
``cifar-10-batches-py`` folder, or any folder with ``data_batch_1`` … [+ ``test_batch``]) into the
cuda-convnet layout read by ``cifar`` / ``cifar-cropped``; ``imagenet`` turns a folder tree of class
folders of images into the JPEG batches read by ``inet-lr-cropped-jpeg``. What this is not: a
downloader of ImageNet.

Not a port: the release ships neither tool (its data scripts are missing); the output formats are
those the providers read (inventory §5).

CIFAR-10 output: ``data_batch_<i>`` = {'data': (3072, N) uint8, one image per column, row
c·1024 + y·32 + x (RGB); 'labels': list of N ints; 'batch_label'} and ``batches.meta`` = {'data_mean':
(3072, 1) float32 mean of the training images, 'label_names', 'num_vis': 3072,
'num_cases_per_batch'}. The official row of an image is already c·1024 + y·32 + x, so a
batch is the transpose of the official ``data``. Training batches come first, the test batch
follows (``data_batch_6`` for the full release); ``split=True`` holds out the last training batch of
a release without a test batch (the shared subset) as the test batch.

ImageNet output: ``data_batch_<i>`` = pickled (jpeg_strings, orig_sizes (w, h), labels
[(class folder name, class id)]) of ``batch_size`` images each, and ``batches.meta`` = {'data_mean':
(3·S·S, 1) float32 channel-major, 'color_pca': (σ (3,), eigenvectors as columns (3, 3)) of the
training pixels' RGB covariance (0–255 scale, σ = standard deviations, eigenvalues ascending),
'label_names', 'num_vis', 'batch_size', 'dp_type': 'inet-lr-cropped-jpeg'}. Each image is rescaled
so its shorter side is S (256) and the central S×S square is kept (the paper's §2; cc2's make-data
does the same), then JPEG-encoded. The mean and PCA are computed from the decoded JPEGs, i.e. from
exactly what the provider will see. The ImageNet converter (official tars, devkit, Kaggle labels,
process pool, resume) lives in ``imagenet.py``.
"""
from __future__ import annotations

import hashlib
import sys
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
from tqdm import tqdm

from port.data.imagenet import IMAGE_SUFFIXES, convert_imagenet, resize_jpeg  # noqa: F401 (re-exported)
from port.errors import UserError
from port.util import atomic_write_bytes, pickle, unpickle, unpickle_bytes

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                  "truck"]
CIFAR_DIM = 3 * 32 * 32


def _progress(iterable=None, **kw):
    """tqdm only when stderr is a terminal."""
    return tqdm(iterable, disable=not sys.stderr.isatty(), **kw)


# ---- CIFAR-10 --------------------------------------------------------------------------------

def download_cifar10(dest_dir: Path, url: str = CIFAR10_URL, md5: str = CIFAR10_MD5) -> Path:
    """Download the CIFAR-10 python tarball into ``dest_dir`` (atomically) and check its MD5."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / "cifar-10-python.tar.gz"

    def fetch(f) -> None:  # a failure here leaves no file behind (atomic_write_bytes)
        digest = hashlib.md5()
        try:
            with urllib.request.urlopen(url) as r:  # noqa: S310 (fixed https URL)
                total = int(r.headers.get("Content-Length") or 0) or None
                with _progress(total=total, unit="B", unit_scale=True, desc="cifar-10") as bar:
                    while chunk := r.read(1 << 20):
                        f.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
        except OSError as e:
            raise UserError(f"{url}: download failed ({e}); pass --source with the tarball or "
                            f"cifar-10-batches-py folder instead") from None
        if digest.hexdigest() != md5:
            raise UserError(f"{url}: MD5 {digest.hexdigest()} does not match the published {md5}")

    atomic_write_bytes(out, fetch)
    return out


def _read_cifar_source(source: Path) -> tuple[list[tuple[str, dict]], dict | None, dict]:
    """(training batches [(name, dict)], test batch or None, meta or {}) from a tarball or folder."""
    if source.is_file():
        try:
            tar = tarfile.open(source)
        except (tarfile.TarError, OSError) as e:
            why = " ".join(str(e).split())  # tarfile lists every method it tried, one per line
            raise UserError(f"{source}: not a CIFAR-10 tarball ({why})") from None
        with tar:
            files = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

            def load(name):
                where = f"{source}:{files[name].name}"
                try:
                    payload = tar.extractfile(files[name]).read()
                except (tarfile.TarError, OSError, EOFError) as e:
                    raise UserError(f"{where}: cannot be read ({e})") from None
                return unpickle_bytes(payload, where, name)
            return _collect(source, set(files), load)
    if not source.is_dir():
        raise UserError(f"{source}: CIFAR-10 source does not exist (give the tarball or a folder "
                        f"with data_batch_1 …)")
    if (source / "cifar-10-batches-py").is_dir():
        source = source / "cifar-10-batches-py"
    names = {p.name for p in source.iterdir() if p.is_file()}
    return _collect(source, names, lambda name: unpickle(source / name, name))


def _collect(source: Path, names: set[str], load) -> tuple[list[tuple[str, dict]], dict | None, dict]:
    train_names = []
    while f"data_batch_{len(train_names) + 1}" in names:
        train_names.append(f"data_batch_{len(train_names) + 1}")
    if not train_names:
        raise UserError(f"{source}: no data_batch_1 (expected the CIFAR-10 python release)")
    train = [(n, _check_cifar_batch(source, n, load(n))) for n in _progress(train_names, desc="read")]
    test = _check_cifar_batch(source, "test_batch", load("test_batch")) if "test_batch" in names else None
    meta = load("batches.meta") if "batches.meta" in names else {}
    return train, test, _str_keys(meta) if isinstance(meta, dict) else {}


def _str_keys(dic: dict) -> dict:
    """Keys of a Python-2 pickle read as bytes -> str."""
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in dic.items()}


def _check_cifar_batch(source: Path, name: str, dic) -> dict:
    where = f"{source}/{name}"
    if not isinstance(dic, dict):
        raise UserError(f"{where}: expected a dict with 'data' and 'labels'")
    dic = _str_keys(dic)
    if "data" not in dic or "labels" not in dic:
        raise UserError(f"{where}: expected a dict with 'data' and 'labels'")
    data = np.asarray(dic["data"])
    if data.ndim != 2 or data.shape[1] != CIFAR_DIM or data.dtype != np.uint8:
        raise UserError(f"{where}: 'data' is {data.dtype} {data.shape}; expected uint8 (N, {CIFAR_DIM})")
    labels = [int(x) for x in dic["labels"]]
    if len(labels) != data.shape[0]:
        raise UserError(f"{where}: {len(labels)} labels for {data.shape[0]} images")
    if labels and not 0 <= min(labels) <= max(labels) < 10:
        raise UserError(f"{where}: labels must lie in 0..9")
    return {"data": data, "labels": labels}


def convert_cifar10(source: Path | None, out: Path, split: bool = False) -> dict:
    """Write the cuda-convnet CIFAR-10 layout into ``out``; returns a summary (ranges, counts).

    ``source`` None downloads the official tarball into ``out`` first (and deletes it afterwards).
    """
    out = Path(out)
    downloaded = None
    if source is None:
        source = downloaded = download_cifar10(out)
    try:
        train, test, meta = _read_cifar_source(Path(source))
    finally:
        if downloaded is not None:
            downloaded.unlink(missing_ok=True)
    if split:
        if test is not None:
            raise UserError(f"{source}: has a test_batch already; --split is for a source with "
                            f"training batches only")
        if len(train) < 2:
            raise UserError(f"{source}: --split needs at least 2 training batches to hold one out")
        *train, (name, test) = train
    sources = [n for n, _ in train] + ([name if split else "test_batch"] if test is not None else [])
    batches = [b for _, b in train] + ([test] if test is not None else [])
    total = np.zeros(CIFAR_DIM, dtype=np.float64)
    count = 0
    for _, b in train:
        total += b["data"].sum(axis=0, dtype=np.float64)
        count += b["data"].shape[0]
    data_mean = (total / count).astype(np.float32).reshape(CIFAR_DIM, 1)        # (3072, 1)
    out.mkdir(parents=True, exist_ok=True)
    for i, (src, b) in enumerate(_progress(list(zip(sources, batches)), desc="write"), start=1):
        pickle(out / f"data_batch_{i}", {
            "data": np.ascontiguousarray(b["data"].T),                         # (3072, N) uint8
            "labels": b["labels"],
            "batch_label": f"data_batch_{i} (from {src})",
        })
    label_names = [x.decode("latin1") if isinstance(x, bytes) else str(x)
                   for x in meta.get("label_names", CIFAR10_LABELS)]
    pickle(out / "batches.meta", {
        "data_mean": data_mean,
        "label_names": label_names,
        "num_vis": CIFAR_DIM,
        "num_cases_per_batch": train[0][1]["data"].shape[0],
    })
    ntrain = len(train)
    return {"train_range": (1, ntrain),
            "test_range": (ntrain + 1, ntrain + 1) if test is not None else None,
            "train_cases": count, "test_cases": 0 if test is None else test["data"].shape[0]}
