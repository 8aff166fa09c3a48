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

import gzip
import hashlib
import io
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.request
import warnings
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from port.data.imagenet import IMAGE_SUFFIXES, convert_imagenet, resize_jpeg  # noqa: F401 (re-exported)
from port.errors import UserError
from port.util import (atomic_write_bytes, check_regular_file, format_bytes, fsync_dir, pickle,
                       read_limit, unpickle, unpickle_bytes)

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


#: The official tarball's size in bytes: a file of this size is taken for the official release
#: and must have its published MD5 (a flipped byte keeps the size).
CIFAR10_SIZE = 170498071
#: The most a CIFAR tarball may decompress to (the official one: 185 MB), read as a stream.
MAX_CIFAR_TAR_BYTES = 256 << 20
#: The largest batch or meta file of a CIFAR source (an official batch is 31 MB).
MAX_CIFAR_FILE_BYTES = 64 << 20


def _cifar_file_limit() -> int:
    return read_limit(MAX_CIFAR_FILE_BYTES)


def _check_tarball_stream(source: Path) -> None:
    """Read the whole file once before its members are trusted: every gzip member to its end (its
    CRC-32 and length are checked there; tarfile stops before them), the decompressed total
    bounded, and the official file's MD5 (:data:`CIFAR10_SIZE`) compared with the published one."""
    size = check_regular_file(source, "CIFAR-10 tarball")
    digest = hashlib.md5()

    class Hashing(io.RawIOBase):  # the raw bytes, hashed on their way to the decompressor
        def __init__(self, f):
            self.f = f

        def readable(self):
            return True

        def readinto(self, b):
            n = self.f.readinto(b)
            digest.update(memoryview(b)[:n])
            return n

    with open(source, "rb") as raw:
        head = raw.read(2)
        raw.seek(0)
        if head == b"\x1f\x8b":
            total = 0
            try:
                with gzip.GzipFile(fileobj=io.BufferedReader(Hashing(raw), 1 << 20)) as g:
                    with _progress(total=size, unit="B", unit_scale=True, desc="check") as bar:
                        while chunk := g.read(1 << 20):
                            total += len(chunk)
                            bar.n = raw.tell()
                            bar.refresh()
                            if total > MAX_CIFAR_TAR_BYTES:
                                raise UserError(f"{source}: decompresses to more than "
                                                f"{format_bytes(MAX_CIFAR_TAR_BYTES)}; the CIFAR-10 "
                                                "release is 185 MB (a gzip bomb?)")
            except (OSError, EOFError, zlib.error) as e:
                raise UserError(f"{source}: corrupt or truncated gzip stream "
                                f"({type(e).__name__}: {e})") from None
        elif size == CIFAR10_SIZE:
            while chunk := raw.read(1 << 20):
                digest.update(chunk)
    if size == CIFAR10_SIZE and digest.hexdigest() != CIFAR10_MD5:
        raise UserError(f"{source}: has the official CIFAR-10 tarball's size but MD5 "
                        f"{digest.hexdigest()}, not the published {CIFAR10_MD5}; the file is corrupt")


def _read_cifar_source(source: Path) -> tuple[list[tuple[str, dict]], dict | None, dict]:
    """(training batches [(name, dict)], test batch or None, meta or {}) from a tarball or folder."""
    if source.exists() and not source.is_dir():
        _check_tarball_stream(source)
        try:
            tar = tarfile.open(source)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            why = " ".join(str(e).split())  # tarfile lists every method it tried, one per line
            raise UserError(f"{source}: not a CIFAR-10 tarball ({why})") from None
        with tar:
            try:
                files = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
                raise UserError(f"{source}: corrupt tarball ({type(e).__name__}: {e})") from None

            def load(name):
                m = files[name]
                where = f"{source}:{m.name}"
                limit = _cifar_file_limit()
                if m.size > limit:  # the header's size (a sparse member's full size), before reading
                    raise UserError(f"{where}: is {format_bytes(m.size)}, more than the "
                                    f"{format_bytes(limit)} a CIFAR-10 file may be")
                try:
                    payload = tar.extractfile(m).read(limit + 1)
                except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
                    raise UserError(f"{where}: cannot be read ({type(e).__name__}: {e})") from None
                return unpickle_bytes(payload, where, name)
            return _collect(source, set(files), load)
    if not source.is_dir():
        raise UserError(f"{source}: CIFAR-10 source does not exist (give the tarball or a folder "
                        f"with data_batch_1 …)")
    if (source / "cifar-10-batches-py").is_dir():
        source = source / "cifar-10-batches-py"
    names = {p.name for p in source.iterdir() if not p.is_dir()}
    return _collect(source, names,
                    lambda name: unpickle(source / name, name, limit=MAX_CIFAR_FILE_BYTES))


def _collect(source: Path, names: set[str], load) -> tuple[list[tuple[str, dict]], dict | None, dict]:
    train_names = []
    while f"data_batch_{len(train_names) + 1}" in names:
        train_names.append(f"data_batch_{len(train_names) + 1}")
    if not train_names:
        raise UserError(f"{source}: no data_batch_1 (expected the CIFAR-10 python release)")
    train = [(n, _check_cifar_batch(source, n, load(n))) for n in _progress(train_names, desc="read")]
    test = _check_cifar_batch(source, "test_batch", load("test_batch")) if "test_batch" in names else None
    meta = load("batches.meta") if "batches.meta" in names else {}
    meta = _str_keys(meta) if isinstance(meta, dict) else {}
    meta["label_names"] = _label_names(f"{source}/batches.meta", meta.get("label_names", CIFAR10_LABELS))
    return train, test, meta


def _label_names(where: str, names) -> list[str]:
    """The meta's class names: a list of 10 strings (bytes in a Python-2 pickle)."""
    if not isinstance(names, (list, tuple)) or len(names) != len(CIFAR10_LABELS) \
            or not all(isinstance(x, (str, bytes)) for x in names):
        raise UserError(f"{where}: 'label_names' is {_brief(names)}; expected a list of "
                        f"{len(CIFAR10_LABELS)} class names")
    return [x.decode("latin1") if isinstance(x, bytes) else x for x in names]


def _brief(x) -> str:
    """A short, one-line description of a value found in a file."""
    text = repr(x)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{type(x).__name__} {' '.join(text.split())}"


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
    data = dic["data"]
    if not isinstance(data, np.ndarray):
        raise UserError(f"{where}: 'data' is {_brief(data)}; expected a uint8 array (N, {CIFAR_DIM})")
    if data.ndim != 2 or data.shape[1] != CIFAR_DIM or data.dtype != np.uint8:
        raise UserError(f"{where}: 'data' is {data.dtype} {data.shape}; expected uint8 (N, {CIFAR_DIM})")
    raw = dic["labels"]
    if isinstance(raw, np.ndarray) and raw.ndim == 1 and raw.dtype.kind in "iu":
        raw = raw.tolist()
    if not isinstance(raw, (list, tuple)):
        raise UserError(f"{where}: 'labels' is {_brief(raw)}; expected a list of class ids 0..9")
    for i, x in enumerate(raw):
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or not 0 <= x < 10:
            raise UserError(f"{where}: label {i} is {_brief(x)}; expected a class id 0..9")
    labels = [int(x) for x in raw]
    if len(labels) != data.shape[0]:
        raise UserError(f"{where}: {len(labels)} labels for {data.shape[0]} images")
    return {"data": data, "labels": labels}


# ---- the output folder: written beside, then renamed into place ------------------------------

_BATCH_FILE = re.compile(r"^(data_batch_\d+(\.\d+)?|batches\.meta|\..+\.tmp)$")


def _leftovers(out: Path) -> list[Path]:
    """Folders that interrupted conversions into ``out`` left beside it."""
    pat = re.compile(rf"^\.{re.escape(out.name)}\.(partial|old)-[^/]+$")
    try:
        return sorted(p for p in out.parent.iterdir() if pat.match(p.name) and p.is_dir())
    except OSError:
        return []


def prepare_out(out: Path, source: Path | None) -> Path:
    """Check ``--out`` and return the new folder to write into (beside it, hidden).

    ``out`` may be missing, empty, or a folder of batches (a former conversion, replaced whole);
    anything else in it (the source, other files) is refused, as is ``out`` inside ``source``.
    Leftovers of interrupted conversions into ``out`` are removed, with a warning.
    """
    out = Path(out)
    if source is not None:
        src, o = Path(source).resolve(), out.resolve()
        if o == src or src in o.parents:
            raise UserError(f"--out {out} is inside --source {source}; converting would write "
                            f"over the source: give a folder outside it")
    if out.exists() and out.resolve() == Path.cwd().resolve():
        raise UserError(f"--out {out} is the current folder, which the conversion would replace "
                        "whole; give a folder below it")
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise UserError(f"{out}: --out exists and is not a folder")
        foreign = sorted(n for n in os.listdir(out) if not _BATCH_FILE.match(n))
        if foreign:
            raise UserError(f"{out}: --out holds '{foreign[0]}', which is not a batch file; the "
                            f"conversion replaces the whole folder, so give an empty or new one")
    out.parent.mkdir(parents=True, exist_ok=True)
    for old in _leftovers(out):
        shutil.rmtree(old, ignore_errors=True)
        warnings.warn(f"removed {old}, left by an interrupted conversion into {out}", stacklevel=2)
    return Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))


def install_out(new: Path, out: Path) -> None:
    """Rename the finished folder ``new`` to ``out``; a former ``out`` is moved aside first and
    then deleted, so a reader sees the old batches or the new ones (or, for an instant, none),
    never a mix."""
    out = Path(out)
    fsync_dir(new)
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        os.replace(out, old / "out")
        os.replace(new, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, out)
    fsync_dir(out.parent)


def convert_cifar10(source: Path | None, out: Path, split: bool = False) -> dict:
    """Write the cuda-convnet CIFAR-10 layout into ``out``; returns a summary (ranges, counts).

    ``source`` None downloads the official tarball first (into the new folder, deleted
    afterwards). The batches are written into a new folder beside ``out``, renamed into place
    when complete (:func:`prepare_out`, :func:`install_out`): a killed conversion leaves ``out``
    as it was, and no stale batch of a former conversion survives.
    """
    out = Path(os.path.abspath(out))  # "." has no name to put a sibling folder beside
    new = prepare_out(out, source)
    try:
        summary = _convert_cifar10(source, new, split)
        install_out(new, out)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    return summary


def _convert_cifar10(source: Path | None, new: Path, split: bool) -> dict:
    downloaded = None
    if source is None:
        source = downloaded = download_cifar10(new)
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
    if count == 0:
        raise UserError(f"{source}: the training batches hold no images")
    data_mean = (total / count).astype(np.float32).reshape(CIFAR_DIM, 1)        # (3072, 1)
    for i, (src, b) in enumerate(_progress(list(zip(sources, batches)), desc="write"), start=1):
        pickle(new / f"data_batch_{i}", {
            "data": np.ascontiguousarray(b["data"].T),                         # (3072, N) uint8
            "labels": b["labels"],
            "batch_label": f"data_batch_{i} (from {src})",
        })
    pickle(new / "batches.meta", {
        "data_mean": data_mean,
        "label_names": meta["label_names"],
        "num_vis": CIFAR_DIM,
        "num_cases_per_batch": train[0][1]["data"].shape[0],
    })
    ntrain = len(train)
    return {"train_range": (1, ntrain),
            "test_range": (ntrain + 1, ntrain + 1) if test is not None else None,
            "train_cases": count, "test_cases": 0 if test is None else test["data"].shape[0]}
