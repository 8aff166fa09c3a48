"""The one place that chooses the array module: NumPy (CPU) or CuPy (NVIDIA GPU).

The choice is made once per process, from ``--backend`` (``port.convnet``) or the environment
variable ``ALEXNET_BACKEND`` (``auto`` | ``numpy`` | ``cupy``; default ``auto``). ``auto`` picks
CuPy only when it imports *and* a CUDA device answers, so the package imports and runs without
CuPy and without a GPU. Array functions elsewhere take their module from their inputs
(``xp = get_array_module(x)``) and only allocate through ``xp()``.
"""
from __future__ import annotations

import os
from types import ModuleType

import numpy

ENV_VAR = "ALEXNET_BACKEND"
CHOICES = ("auto", "numpy", "cupy")

_xp: ModuleType | None = None


class BackendError(RuntimeError):
    """The requested backend cannot be used here (message says why)."""


def _cupy_if_usable() -> ModuleType | None:
    try:
        import cupy  # noqa: PLC0415 (optional dependency)
    except Exception:  # ImportError, or a CUDA library that fails to load
        return None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        cupy.zeros(1).sum()  # a device that answers
    except Exception:
        return None
    return cupy


def set_backend(name: str | None = None) -> ModuleType:
    """Choose the array module once: ``name`` or ``$ALEXNET_BACKEND`` or ``auto``."""
    global _xp
    name = (name or os.environ.get(ENV_VAR) or "auto").lower()
    if name not in CHOICES:
        raise BackendError(f"backend {name!r} is not one of {', '.join(CHOICES)}")
    if name == "numpy":
        _xp = numpy
    else:
        cupy = _cupy_if_usable()
        if cupy is None and name == "cupy":
            raise BackendError("backend 'cupy' asked for, but CuPy is not installed or no CUDA "
                               "device answers (install the cuda12/cuda13 extra, or use --backend=numpy)")
        _xp = cupy or numpy
    return _xp


def xp() -> ModuleType:
    """The chosen array module (chosen on first use if nobody chose yet)."""
    return _xp if _xp is not None else set_backend()


def name() -> str:
    return xp().__name__


def get_array_module(*arrays) -> ModuleType:
    """``numpy`` or ``cupy``, from the arrays given (the CuPy idiom, without importing CuPy)."""
    for a in arrays:
        if type(a).__module__.startswith("cupy"):
            import cupy  # noqa: PLC0415

            return cupy
    return numpy


def to_host(a):
    """A NumPy array holding ``a`` (copies from the GPU when ``a`` is a CuPy array)."""
    if type(a).__module__.startswith("cupy"):
        return a.get()
    return numpy.asarray(a)


def to_device(a):
    """``a`` as an array of the chosen module."""
    return xp().asarray(a)
