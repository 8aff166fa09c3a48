"""Pickled files and atomic writes: the twin of the pickle helpers of cuda-convnet r561 ``util.py``.

What this is: :func:`unpickle` / :func:`unpickle_bytes` for batch and meta files written by anyone
(the official CIFAR-10 release, Python-2 cuda-convnet batches, our own converters), :func:`pickle`
for the files we write, :class:`RestrictedUnpickler` (which ``port.checkpoint`` also uses for
legacy checkpoints), :func:`atomic_write_bytes` / :func:`fsync_dir` (how the port writes files),
and the natural sort key the original used to order batch file names. What this is not: the
checkpoint format (``port/checkpoint.py``, which adds stubs for the original's option classes),
nor the rest of r561 ``util.py`` (GPU lock scripts, ``/proc/cpuinfo`` probing), which the port
does not need.

**Why a restricted unpickler.** A pickle is a small program: ``pickle.load`` calls whatever callable
the file names, so a batch file from the internet could run arbitrary code. Data batches only ever
hold dicts, lists, tuples, strings, bytes, numbers and NumPy arrays, so :class:`RestrictedUnpickler`
resolves only the handful of globals that rebuild those (``numpy`` array/dtype/scalar
reconstruction, ``_codecs.encode`` for bytes written by Python 3 at protocol 2, ``set``,
``OrderedDict``...) plus the ``extra_globals`` its caller names, and refuses any other name with a
one-line :class:`~port.errors.UserError`. Nor may a small file ask for much memory: the callables
that allocate by size (``bytearray(n)``, ``numpy.ndarray(shape)``, numpy's ``_reconstruct``) are
wrapped so that a size over :data:`MAX_UNPICKLED_ARRAY_BYTES` or the memory left is refused
first, and :func:`read_payload` opens only a regular file whose size, and decompressed size,
fit under :func:`read_limit` (a FIFO or device is refused before ``open()``). Files we write
ourselves go through the ordinary :func:`pickle.dump` (trusted, local).

**Python 2 pickles** (the official CIFAR-10 files, the subset's ``batches.meta``, cuda-convnet
batches and checkpoints) hold byte strings; they are decoded with ``encoding='latin1'``, which NumPy
documents as the way to load Python-2 array pickles, and which turns ``'data'``-style keys into
``str``.

**Atomic writes.** :func:`atomic_write_bytes` writes a temporary file in the target's directory,
fsyncs it, ``os.replace``-s it onto the target and fsyncs the directory, so a crash or SIGKILL
leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import codecs
import gzip
import importlib
import io
import os
import pickle as _pickle
import re
import tempfile
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy

from port.errors import UserError


def _numpy_core(name: str):
    """``numpy._core.<name>`` (NumPy 2) or ``numpy.core.<name>`` (NumPy 1)."""
    try:
        return importlib.import_module(f"numpy._core.{name}")
    except ImportError:
        return importlib.import_module(f"numpy.core.{name}")


_multiarray = _numpy_core("multiarray")
_numeric = _numpy_core("numeric")

# (module, name) as written in the pickle -> the object it may resolve to. Nothing else resolves
# unless a caller adds it through RestrictedUnpickler's extra_globals.
_SAFE_GLOBALS: dict[tuple[str, str], object] = {}
for _mod in ("numpy.core", "numpy._core"):  # _reconstruct and ndarray: bounded, below
    _SAFE_GLOBALS[(f"{_mod}.multiarray", "scalar")] = _multiarray.scalar
    _SAFE_GLOBALS[(f"{_mod}.numeric", "_frombuffer")] = _numeric._frombuffer
_SAFE_GLOBALS[("numpy", "dtype")] = numpy.dtype
_SAFE_GLOBALS[("_codecs", "encode")] = codecs.encode

#: The most bytes one array or bytearray rebuilt by the unpickler may take (a 2012 ImageNet
#: batch's largest array is under 200 MiB). Bigger ones are refused before they are allocated:
#: a 60-byte pickle can otherwise ask for ``bytearray(10**10)`` or an ndarray of any shape.
MAX_UNPICKLED_ARRAY_BYTES = 2 << 30


def _refuse_size(nbytes: int, what: str) -> None:
    limit = min(MAX_UNPICKLED_ARRAY_BYTES, memory_ceiling())
    if nbytes > limit:
        raise _pickle.UnpicklingError(f"{what} of {format_bytes(nbytes)} is more than the "
                                      f"{format_bytes(limit)} that can be read")


def _safe_bytearray(*args):
    """``bytearray`` as pickles use it: from bytes, or a str and its encoding (protocol < 3),
    never from a size (``bytearray(n)`` allocates n bytes whatever the file's size)."""
    if args and not isinstance(args[0], (bytes, str)) or len(args) > 2:
        raise _pickle.UnpicklingError("bytearray() from something other than bytes or a str")
    return bytearray(*args)


def _array_bytes(shape, dtype) -> int:
    try:
        dims = (int(shape),) if isinstance(shape, (int, numpy.integer)) else tuple(int(d) for d in shape)
        itemsize = numpy.dtype(dtype).itemsize
    except (TypeError, ValueError) as e:
        raise _pickle.UnpicklingError(f"array with shape {str(shape)[:40]}: {e}") from None
    if any(d < 0 for d in dims):
        raise _pickle.UnpicklingError(f"array with the negative shape {dims}")
    n = itemsize
    for d in dims:
        n *= d
    return n


class _BoundedNdarray(numpy.ndarray):
    """What the name ``numpy.ndarray`` resolves to: called with a shape (a pickle may), it checks
    the size first and returns a plain ndarray; passed to ``_reconstruct`` it stands for ndarray."""

    def __new__(cls, shape, dtype=float, *args, **kwargs):
        _refuse_size(_array_bytes(shape, dtype), "an array")
        return numpy.ndarray(shape, dtype, *args, **kwargs)


def _safe_reconstruct(cls, shape, dtype):
    """numpy's pickle hook allocates ``shape`` before its data arrives; bound it first."""
    if cls is _BoundedNdarray:
        cls = numpy.ndarray
    _refuse_size(_array_bytes(shape, numpy.uint8), "an array")
    return _multiarray._reconstruct(cls, shape, dtype)


for _mod in ("numpy.core", "numpy._core"):
    _SAFE_GLOBALS[(f"{_mod}.multiarray", "_reconstruct")] = _safe_reconstruct
_SAFE_GLOBALS[("numpy", "ndarray")] = _BoundedNdarray
for _builtins in ("builtins", "__builtin__"):
    for _name, _obj in (("set", set), ("frozenset", frozenset), ("complex", complex),
                        ("slice", slice), ("bytearray", _safe_bytearray), ("list", list),
                        ("tuple", tuple), ("dict", dict)):
        _SAFE_GLOBALS[(_builtins, _name)] = _obj
_SAFE_GLOBALS[("collections", "OrderedDict")] = OrderedDict

BATCH_REFUSAL = ("{where}: refusing to load '{name}': a data batch may hold only arrays, lists, "
                 "dicts, strings and numbers")


class RestrictedUnpickler(_pickle.Unpickler):
    """An unpickler that resolves only whitelisted globals, so loading a file cannot run code.

    The whitelist is the base one above (plain containers, numbers, strings, NumPy arrays) plus
    ``extra_globals`` (``{(module, name): object}``, names as the file spells them). Any other
    global raises a :class:`UserError`: ``refusal`` formatted with ``where`` (the file) and
    ``name`` (the refused ``module.name``). Names are matched as written (``fix_imports`` plays no
    part once ``find_class`` is overridden), which is why Python 2's ``__builtin__`` spelling is
    listed beside ``builtins``.
    """

    def __init__(self, file: BinaryIO, extra_globals: dict[tuple[str, str], Any] | None = None,
                 where: str | os.PathLike = "pickle", refusal: str = BATCH_REFUSAL):
        super().__init__(file, encoding="latin1", fix_imports=False)
        self.where = where
        self.refusal = refusal
        self._allowed = {**_SAFE_GLOBALS, **extra_globals} if extra_globals else _SAFE_GLOBALS

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            shown = f"{module}.{name}".encode("unicode_escape").decode("ascii")  # one line, always
            shown = shown if len(shown) <= 100 else shown[:97] + "..."
            raise UserError(self.refusal.format(where=self.where, name=shown)) from None


#: The largest batch or meta file read (an ImageNet batch of 1024 JPEGs is about 120 MiB; the
#: official CIFAR-10 batches 30 MiB), compressed or not; the memory left bounds it too.
MAX_PICKLE_FILE_BYTES = 2 << 30


def read_limit(limit: int | None = None) -> int:
    """The bytes a whole-file read may take: ``limit`` (default :data:`MAX_PICKLE_FILE_BYTES`)
    and at most a third of what this process can still allocate (the bytes, then the objects
    rebuilt from them)."""
    return min(MAX_PICKLE_FILE_BYTES if limit is None else limit, memory_ceiling() // 3)


def check_regular_file(path: str | os.PathLike, what: str = "file",
                       max_bytes: int | None = None) -> int:
    """Refuse, with one :class:`UserError` line, anything but a regular file of at most
    ``max_bytes``: FIFOs, devices and sockets are refused before they are opened (opening a FIFO
    blocks; reading a device never ends); returns the file's size. Follows symlinks, so a link
    to ``/dev/zero`` is a character device."""
    why = not_a_file(path)
    if why is not None:
        raise UserError(f"{path}: {what} {why}")
    size = os.stat(path).st_size
    if max_bytes is not None and size > max_bytes:
        raise UserError(f"{path}: {what} is {format_bytes(size)}, more than the "
                        f"{format_bytes(max_bytes)} that can be read")
    return size


def gunzip_bounded(raw: bytes | BinaryIO, limit: int, where) -> bytes:
    """Every gzip member of ``raw`` decompressed, its CRC and length checked, stopping with a
    :class:`UserError` as soon as the output would pass ``limit`` bytes (a gzip bomb)."""
    f = io.BytesIO(raw) if isinstance(raw, (bytes, bytearray)) else raw
    out = io.BytesIO()
    try:
        with gzip.GzipFile(fileobj=f) as g:
            while chunk := g.read(1 << 20):
                out.write(chunk)
                if out.tell() > limit:
                    raise UserError(f"{where}: decompresses to more than {format_bytes(limit)} "
                                    "(a gzip bomb, or too big to read)")
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"{where}: corrupt or truncated gzip stream ({type(e).__name__}: {e})") from None
    return out.getvalue()


def unzip_member_bounded(raw: bytes, name: str, limit: int, where) -> bytes:
    """Member ``name`` of zip bytes ``raw``: its declared size checked against ``limit`` before
    it is inflated, encrypted members and unknown methods refused; one :class:`UserError` line."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            info = z.getinfo(name)
            if info.flag_bits & 0x1:
                raise UserError(f"{where}: zip member '{name}' is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED,
                                          zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
                raise UserError(f"{where}: zip member '{name}' uses the unknown compression "
                                f"method {info.compress_type}")
            if info.file_size > limit:
                raise UserError(f"{where}: zip member '{name}' would inflate to "
                                f"{format_bytes(info.file_size)}, more than {format_bytes(limit)}")
            with z.open(info) as m:
                data = m.read(limit + 1)
            if len(data) > limit:
                raise UserError(f"{where}: zip member '{name}' inflates past {format_bytes(limit)}")
            return data
    except KeyError:
        raise UserError(f"{where}: zip archive without the member '{name}'") from None
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError,
            ValueError, zlib.error) as e:
        raise UserError(f"{where}: corrupt zip archive ({type(e).__name__}: {e})") from None


def read_payload(path: Path, limit: int | None = None, what: str = "file") -> bytes:
    """The pickle bytes of ``path``: plain, gzip, or the original's zip with one member ``data``.

    Only a regular file is opened, its size and its decompressed size bounded by
    :func:`read_limit` (``limit``); every failure is one :class:`UserError` line.
    """
    limit = read_limit(limit)
    check_regular_file(path, what, limit)
    with open(path, "rb") as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:  # grew after the stat
        raise UserError(f"{path}: more than {format_bytes(limit)}")
    if raw[:2] == b"\x1f\x8b":
        return gunzip_bounded(raw, limit, path)
    if raw[:4] == b"PK\x03\x04":
        return unzip_member_bounded(raw, "data", limit, path)
    return raw


def unpickle(path: str | os.PathLike, what: str = "file", limit: int | None = None):
    """Load one pickled batch or meta file safely; every failure is a one-line :class:`UserError`.

    ``what`` names the file's role in the message (``"batch 3"``, ``"batches.meta"``); ``limit``
    bounds the file's size and decompressed size (:func:`read_limit`).

    Ports: cuda-convnet-r561/util.py:69-83 unpickle
    """
    path = Path(path)
    why = not_a_file(path)
    if why is not None:
        raise UserError(f"{path}: {what} {why}")
    try:
        payload = read_payload(path, limit, what)
    except (OSError, zipfile.BadZipFile, KeyError, EOFError) as e:
        raise UserError(f"{path}: {what} cannot be read ({type(e).__name__}: {e})") from None
    return unpickle_bytes(payload, path, what)


def unpickle_bytes(payload: bytes, where, what: str = "file"):
    """:func:`unpickle` for bytes already in memory (a member of a tarball); ``where`` names them."""
    try:
        return RestrictedUnpickler(io.BytesIO(payload), where=where).load()
    except UserError:
        raise
    except (EOFError, _pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, OSError, MemoryError, LookupError, OverflowError) as e:
        why = " ".join(str(e).split())[:200]  # one line, whatever the exception says
        raise UserError(f"{where}: {what} is not a readable batch pickle "
                        f"(truncated or corrupt: {type(e).__name__}: {why})") from None


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a directory so a rename inside it survives a crash (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _process_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


_UMASK = _process_umask()  # read once: os.umask() can only be read by setting it


def atomic_write_bytes(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(fileobj)`` on a temp file beside ``path``, fsync it, and rename it to ``path``.

    The file gets the mode a plain ``open()`` would give it (0666 less the umask), as the
    original's files had, not the temp file's owner-only 0600.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def pickle(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` to ``path`` atomically (:func:`atomic_write_bytes`), creating its folder.

    DIVERGES: the original wrote in place (a crash left a half-written file); we never do.

    Ports: cuda-convnet-r561/util.py:60-67 pickle
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda f: _pickle.dump(obj, f, protocol=_pickle.HIGHEST_PROTOCOL))


def alphanum_key(s: str) -> list:
    """Sort key that orders ``data_batch_10`` after ``data_batch_9``.

    Ports: cuda-convnet-r561/util.py:91-92 alphanum_key
    """
    return [int(c) if c.isdigit() else c for c in re.split("([0-9]+)", s)]


# ---------------------------------------------------------------------------------------------
# Hostile input: what a path is, how much memory is left

def not_a_file(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be read as a regular file ("does not exist", "is a directory", "is a
    FIFO", "is a device"...), or None when it is one. Nothing is opened (a FIFO would block)."""
    import stat  # noqa: PLC0415

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if stat.S_ISREG(mode):
        return None
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return f"is {what}, not a regular file"
    return "is not a regular file"


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _address_space_left() -> int | None:
    """RLIMIT_AS less the address space in use, when a limit is set."""
    import resource  # noqa: PLC0415

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    used = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    used = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return max(0, soft - used)


def _cgroup_left() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        current = int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - current)


def memory_ceiling() -> int:
    """The bytes this process may still allocate: the least of the memory available
    (``/proc/meminfo`` MemAvailable, else ``sysconf``), the address-space limit left (RLIMIT_AS)
    and the cgroup's limit left. Inputs whose sizes would need more are refused before anything
    is allocated (cfg files, checkpoints, archives)."""
    known = [v for v in (_meminfo_available(), _address_space_left(), _cgroup_left()) if v is not None]
    return min(known) if known else 1 << 62


def brief(value, width: int = 40) -> str:
    """``repr(value)`` on one line, cut to ``width`` characters: a value found in a file, for an
    error message (an array's repr spans lines; a crafted string may hold newlines)."""
    text = " ".join(repr(value).split())  # repr escapes a string's newlines; arrays span lines
    return text if len(text) <= width else text[:width - 3] + "..."


def format_bytes(n: int) -> str:
    """``123456789`` → ``'123456789 bytes (118 MiB)'``."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n} bytes ({n / size:.{1 if n < 1000 * size else 0}f} {unit})"
    return f"{n} bytes"
