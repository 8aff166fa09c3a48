"""Reading and writing the pickled batch files of cuda-convnet (the twin of the pickle helpers of r561 ``util.py``).

What this is: :func:`unpickle` for batch and meta files written by anyone (the official CIFAR-10
release, Python-2 cuda-convnet batches, our own converters), :func:`pickle` for the files we write,
and the natural sort key the original used to order batch file names. What this is not: the
checkpoint reader (``port/checkpoint.py``), which must also rebuild the original's option objects.

**Why a restricted unpickler.** A pickle is a small program: ``pickle.load`` calls whatever callable
the file names, so a batch file from the internet could run arbitrary code. Data batches only ever
hold dicts, lists, tuples, strings, bytes, numbers and NumPy arrays, so :class:`BatchUnpickler`
resolves only the handful of globals that rebuild those (``numpy`` array/dtype/scalar
reconstruction, ``_codecs.encode`` for bytes written by Python 3 at protocol 2, ``set``,
``OrderedDict``...) and refuses any other name with a :class:`~port.errors.UserError`. Files we
write ourselves go through the ordinary :func:`pickle.dump` (trusted, local).

**Python 2 pickles** (the official CIFAR-10 files, the subset's ``batches.meta``, cuda-convnet
batches) hold byte strings; they are decoded with ``encoding='latin1'``, which NumPy documents as
the way to load Python-2 array pickles, and which turns ``'data'``-style keys into ``str``.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle as _pickle
import re
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy

from port.errors import UserError


def _numpy_core(name: str):
    """``numpy._core.<name>`` (NumPy 2) or ``numpy.core.<name>`` (NumPy 1)."""
    import importlib  # noqa: PLC0415

    try:
        return importlib.import_module(f"numpy._core.{name}")
    except ImportError:
        return importlib.import_module(f"numpy.core.{name}")


_multiarray = _numpy_core("multiarray")
_numeric = _numpy_core("numeric")

# (module, name) as written in the pickle -> the object it may resolve to. Nothing else resolves.
_SAFE_GLOBALS: dict[tuple[str, str], object] = {}
for _mod in ("numpy.core", "numpy._core"):
    _SAFE_GLOBALS[(f"{_mod}.multiarray", "_reconstruct")] = _multiarray._reconstruct
    _SAFE_GLOBALS[(f"{_mod}.multiarray", "scalar")] = _multiarray.scalar
    _SAFE_GLOBALS[(f"{_mod}.numeric", "_frombuffer")] = _numeric._frombuffer
_SAFE_GLOBALS[("numpy", "ndarray")] = numpy.ndarray
_SAFE_GLOBALS[("numpy", "dtype")] = numpy.dtype
_SAFE_GLOBALS[("_codecs", "encode")] = __import__("codecs").encode
for _builtins in ("builtins", "__builtin__"):
    for _name, _obj in (("set", set), ("frozenset", frozenset), ("complex", complex),
                        ("slice", slice), ("bytearray", bytearray), ("list", list),
                        ("tuple", tuple), ("dict", dict)):
        _SAFE_GLOBALS[(_builtins, _name)] = _obj
_SAFE_GLOBALS[("collections", "OrderedDict")] = OrderedDict


class BatchUnpickler(_pickle.Unpickler):
    """An unpickler that only rebuilds plain containers, numbers, strings and NumPy arrays."""

    def __init__(self, file, path: str | os.PathLike):
        super().__init__(file, encoding="latin1")
        self.path = path

    def find_class(self, module: str, name: str):
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise UserError(f"{self.path}: refusing to load '{module}.{name}': a data batch may hold "
                            f"only arrays, lists, dicts, strings and numbers") from None


def _open_payload(path: Path) -> bytes:
    """The pickle bytes of ``path``: plain, gzip, or the original's zip with one member ``data``."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw)
    if raw[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            return z.read("data")
    return raw


def unpickle(path: str | os.PathLike, what: str = "file"):
    """Load one pickled batch or meta file safely; every failure is a one-line :class:`UserError`.

    ``what`` names the file's role in the message (``"batch 3"``, ``"batches.meta"``).

    Ports: cuda-convnet-r561/util.py:69-83 unpickle
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} does not exist")
    try:
        payload = _open_payload(path)
    except (OSError, zipfile.BadZipFile, KeyError, EOFError) as e:
        raise UserError(f"{path}: {what} cannot be read ({type(e).__name__}: {e})") from None
    return unpickle_bytes(payload, path, what)


def unpickle_bytes(payload: bytes, where, what: str = "file"):
    """:func:`unpickle` for bytes already in memory (a member of a tarball); ``where`` names them."""
    try:
        return BatchUnpickler(io.BytesIO(payload), where).load()
    except UserError:
        raise
    except (EOFError, _pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, OSError, MemoryError) as e:
        raise UserError(f"{where}: {what} is not a readable batch pickle "
                        f"(truncated or corrupt: {type(e).__name__}: {e})") from None


def pickle(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` to ``path`` atomically (temp file in the same folder, fsync, rename).

    DIVERGES: the original wrote in place (a crash left a half-written file); we never do.

    Ports: cuda-convnet-r561/util.py:60-67 pickle
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            _pickle.dump(obj, f, protocol=_pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def alphanum_key(s: str) -> list:
    """Sort key that orders ``data_batch_10`` after ``data_batch_9``.

    Ports: cuda-convnet-r561/util.py:91-92 alphanum_key
    """
    return [int(c) if c.isdigit() else c for c in re.split("([0-9]+)", s)]
