"""The one place that chooses the array module: NumPy (CPU) or CuPy (NVIDIA GPU).

The choice is made once per process, from ``--backend`` (``port.convnet``) or the environment
variable ``ALEXNET_BACKEND`` (``auto`` | ``numpy`` | ``cupy``; default ``auto``; an ``auto``
given on the command line defers to the variable when it is set). ``auto`` picks CuPy only when
the probe passes: CuPy imports, a CUDA device answers, a small float32 matmul (cuBLAS) gives the
right answer and the device synchronises. Otherwise it picks NumPy, and :func:`why_not_cupy` says
why in one line (not installed / CUDA library missing / no device, naming the exception). So the
package imports and runs without CuPy and without a GPU.

For tests only, ``ALEXNET_BACKEND=strict`` (or ``set_backend("strict")``) picks
:mod:`port.strict`, NumPy behind CuPy's rules (no implicit host arrays, no NumPy/device mixing,
CuPy's namespace only, host synchronisations counted per call site).

Array functions elsewhere take their module from their inputs (``xp = get_array_module(x)``)
and only allocate through ``xp()``.
"""
from __future__ import annotations

import functools
import os
import sys
from types import ModuleType
from typing import NamedTuple

import numpy

ENV_VAR = "ALEXNET_BACKEND"
CHOICES = ("auto", "numpy", "cupy")       # what a user may ask for (--backend)
STRICT = "strict"                         # the CI stand-in for CuPy (tests only)

_xp: ModuleType | None = None
_fell_back = ""            # why `auto` chose NumPy ('' when it was not asked to choose)


class BackendError(RuntimeError):
    """The requested backend cannot be used here (message says why)."""


class Probe(NamedTuple):
    cupy: ModuleType | None
    reason: str            # why CuPy is not used, or what it runs on


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:300]}" if text else type(e).__name__


def _is_library_error(e: BaseException) -> bool:
    text = str(e).lower()
    return isinstance(e, (ImportError, OSError)) or ".so" in text or "dll" in text or "library" in text


@functools.cache
def probe() -> Probe:
    """Can CuPy be used here? Import it, count devices, run a 4×4 float32 matmul and synchronise.

    Probed once per process; the reason is one line naming the exception."""
    try:
        import cupy  # noqa: PLC0415 (optional dependency)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] == "cupy":
            return Probe(None, f"CuPy is not installed ({_one_line(e)}; pip install '.[cuda13]' or '.[cuda12]')")
        return Probe(None, f"CuPy does not import, a module it needs is missing ({_one_line(e)})")
    except Exception as e:  # noqa: BLE001 (a CUDA library that fails to load at import)
        return Probe(None, f"CuPy does not import, CUDA library missing or broken ({_one_line(e)})")
    version = getattr(cupy, "__version__", "?")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # noqa: BLE001
        what = "CUDA library missing" if _is_library_error(e) else "no CUDA device answers"
        return Probe(None, f"CuPy {version} imports, but {what} ({_one_line(e)})")
    if count < 1:
        return Probe(None, f"CuPy {version} imports, but no CUDA device answers (0 devices)")
    host = numpy.arange(16, dtype=numpy.float32).reshape(4, 4)
    try:
        a = cupy.asarray(host)
        got = (a @ a.T).get()            # cuBLAS sgemm, then a copy back
        cupy.cuda.Device().synchronize()
        name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    except Exception as e:  # noqa: BLE001
        what = "CUDA library missing" if _is_library_error(e) else "the device fails a matmul"
        return Probe(None, f"CuPy {version} sees {count} device(s), but {what} ({_one_line(e)})")
    if not numpy.array_equal(got, host @ host.T):
        return Probe(None, f"CuPy {version}: a 4×4 matmul on the device gave a wrong answer")
    name = name.decode() if isinstance(name, bytes) else str(name)
    return Probe(cupy, f"CuPy {version} on {name}")


def _cupy_if_usable() -> ModuleType | None:
    return probe().cupy


def why_not_cupy() -> str:
    """One line: why CuPy is not used here ('' when it can be)."""
    p = probe()
    return "" if p.cupy is not None else p.reason


def set_backend(name: str | None = None) -> ModuleType:
    """Choose the array module once: ``name`` or ``$ALEXNET_BACKEND`` or ``auto``."""
    global _xp, _fell_back
    _fell_back = ""
    env = (os.environ.get(ENV_VAR) or "").lower()
    name = (name or env or "auto").lower()
    if name == "auto" and env:
        name = env
    if name == STRICT:
        from port import strict  # noqa: PLC0415 (tests only)

        _xp = strict
        return _xp
    if name not in CHOICES:
        raise BackendError(f"backend {name!r} is not one of {', '.join(CHOICES)}")
    if name == "numpy":
        _xp = numpy
        keep_freed_host_memory()
    else:
        cupy = _cupy_if_usable()
        if cupy is None and name == "cupy":
            raise BackendError(f"backend 'cupy' asked for, but {why_not_cupy()}; use --backend=numpy")
        _xp = cupy or numpy
        _fell_back = why_not_cupy() if cupy is None else ""
    return _xp


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_kept = None


def keep_freed_host_memory() -> bool:
    """Make freed host arrays reusable without new page faults (glibc only; once per process).

    NumPy takes every array above glibc's mmap threshold (at most 32 MiB) from a fresh ``mmap``
    and gives it back at once on free, so each training step's large activations and gradients
    (46 MiB each in layers-145) arrive as untouched pages that the kernel must fault in and zero
    again: 1.3-1.4 s of system time per layers-145 step on a 2-core VM, against 0.05-0.06 s with
    this, for the same peak memory (3.3 GiB either way). With ``M_MMAP_MAX = 0`` every block
    comes from the heap, and with a high trim threshold freed blocks stay there for the next
    step; the process keeps its peak until it exits, which a training process reaches again
    every step. ``ALEXNET_KEEP_FREED_MEMORY=0`` leaves glibc's defaults. Returns whether the
    setting was applied.
    """
    global _kept
    if _kept is None:
        _kept = False
        if os.environ.get("ALEXNET_KEEP_FREED_MEMORY") != "0" and sys.platform == "linux":
            try:
                import ctypes  # noqa: PLC0415 (only on this path)

                libc = ctypes.CDLL(None)
                mallopt = getattr(libc, "mallopt", None)
                if mallopt is not None and getattr(libc, "gnu_get_libc_version", None) is not None:
                    _kept = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
            except OSError:
                pass
    return _kept


def auto_fell_back() -> str:
    """Why ``auto`` chose NumPy in the last :func:`set_backend` ('' if it chose CuPy or was not used)."""
    return _fell_back


def xp() -> ModuleType:
    """The chosen array module (chosen on first use if nobody chose yet)."""
    return _xp if _xp is not None else set_backend()


def name() -> str:
    """``numpy``, ``cupy`` or ``strict``."""
    return STRICT if xp().__name__ == "port.strict" else xp().__name__


def _device_module(a) -> ModuleType | None:
    mod = type(a).__module__
    if mod.startswith("cupy"):
        import cupy  # noqa: PLC0415

        return cupy
    if mod == "port.strict":
        return sys.modules["port.strict"]
    return None


def get_array_module(*arrays) -> ModuleType:
    """``numpy``, or the device module of the first device array given (the CuPy idiom,
    without importing CuPy)."""
    for a in arrays:
        m = _device_module(a)
        if m is not None:
            return m
    return numpy


def to_host(a):
    """A NumPy array holding ``a`` (copies from the device when ``a`` is a device array)."""
    if _device_module(a) is not None:
        return a.get()
    return numpy.asarray(a)


def to_device(a):
    """``a`` as an array of the chosen module."""
    return xp().asarray(a)


# ---- random numbers drawn on the device ------------------------------------------------------------
# Dropout masks and nrelu noise are drawn where the activations live,
# as the original drew them with cuRAND on the GPU, but by a counter-based hash keyed by one
# 64-bit draw from the model's NumPy Generator. So a mask costs no host array and no upload, and
# the Generator's state alone (saved in checkpoints) makes a run repeatable. NumPy, CuPy and the
# strict stand-in draw bit-identical bits and uniforms (dropout) for the same key: integer
# arithmetic, then an exact conversion. The normals (nrelu) are those uniforms through each
# module's log, cos and sqrt: the same on NumPy and strict (NumPy's functions), not on CuPy,
# whose CUDA log and cos differ in the last bits and whose kernels are compiled with -ftz=true.

_GOLDEN, _M1, _M2 = 0x9E3779B9, 0x7FEB352D, 0x846CA68B


def _mix32(xp, x):
    """lowbias32 (C. Wellons' integer hash): a bijective avalanche of a uint32 array, in place."""
    x ^= x >> xp.uint32(16)
    x *= xp.uint32(_M1)
    x ^= x >> xp.uint32(15)
    x *= xp.uint32(_M2)
    x ^= x >> xp.uint32(16)
    return x


def random_bits(rng: numpy.random.Generator, n: int, module: ModuleType | None = None):
    """``n`` pseudo-random uint32 on the device of ``module`` (default the chosen backend),
    keyed by one draw from ``rng``."""
    m = module or xp()
    key = int(rng.integers(0, 2 ** 64, dtype=numpy.uint64))
    x = m.arange(n, dtype=m.uint32)
    x *= m.uint32(_GOLDEN)
    x += m.uint32(key & 0xFFFFFFFF)
    x = _mix32(m, x)
    x ^= m.uint32(key >> 32)
    return _mix32(m, x)


def uniform(rng: numpy.random.Generator, shape, dtype=numpy.float32, module: ModuleType | None = None):
    """U[0, 1) samples of ``shape`` in ``dtype`` (24 random bits each, an exact conversion: the
    same bits on every backend), on the device."""
    m = module or xp()
    shape = tuple(int(s) for s in (shape if isinstance(shape, tuple) else (shape,)))
    bits = random_bits(rng, int(numpy.prod(shape)), m) >> m.uint32(8)
    return (bits.astype(dtype) * numpy.dtype(dtype).type(2.0 ** -24)).reshape(shape)


def standard_normal(rng: numpy.random.Generator, shape, dtype=numpy.float32, module: ModuleType | None = None):
    """N(0, 1) samples of ``shape`` in ``dtype`` on the device (Box–Muller on 2·size uniforms).

    The uniforms are bit-identical on every backend; the normals only within the last bits of
    each module's log, cos and sqrt (NumPy and the strict stand-in agree bit for bit, CuPy not).
    """
    m = module or xp()
    shape = tuple(int(s) for s in (shape if isinstance(shape, tuple) else (shape,)))
    n = int(numpy.prod(shape))
    t = numpy.dtype(dtype).type
    bits = random_bits(rng, 2 * n, m) >> m.uint32(8)
    u1 = (bits[:n].astype(dtype) + t(1)) * t(2.0 ** -24)        # (0, 1]: log is finite
    u2 = bits[n:].astype(dtype) * t(2.0 ** -24)
    return (m.sqrt(t(-2) * m.log(u1)) * m.cos(t(2 * numpy.pi) * u2)).reshape(shape)
