"""Numba kernels for the few cudaconv2 loops that NumPy cannot express without large temporaries
(CPU only). Each is the compiled twin of a NumPy function in :mod:`port.cudaconv2.conv_util`,
which stays the oracle (the tests compare the two) and the fallback: without Numba, with
``ALEXNET_NO_JIT=1`` in the environment, on CuPy, or for arrays the kernel does not take
(mixed dtypes, non-contiguous), the NumPy code runs.

- :func:`max_pool`: max-pooling forward in one pass over the image (the NumPy version makes a
  strided copy and a comparison pass per window offset); max is exact, so bit-identical.
- :func:`max_undo`: max-pooling backward without temporaries (the NumPy version makes a mask and
  a masked copy per window offset), each input pixel gathering its windows' gradients in the
  NumPy version's order (bit-identical).

The kernels run in parallel over channels (``prange``; Numba's threads, as many as cores): every
channel's outputs are its own, so no two threads write the same element and the sums keep their
order.
"""
from __future__ import annotations

import os

import numpy as np

try:
    import numba
except ImportError:          # Numba is optional: the NumPy path runs
    numba = None

ENABLED = numba is not None and os.environ.get("ALEXNET_NO_JIT", "") in ("", "0")


def usable(*arrays) -> bool:
    """Whether the kernels take these arrays: NumPy, one float dtype, C-contiguous."""
    if not ENABLED:
        return False
    dtype = arrays[0].dtype
    return all(type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous for a in arrays) \
        and dtype in (np.float32, np.float64)


# Below this many elements a kernel runs on one thread: waking the others costs more than they
# save, and far more on a loaded machine (a parallel region waits for every thread's time slice).
PARALLEL_MIN_ELEMENTS = 1 << 18


def _serial_and_parallel(py_func):
    """``kernel(*args)`` compiled twice, on one thread and over all cores (``prange``), choosing by
    the size of the first argument."""
    serial = numba.njit(cache=True)(py_func)
    parallel = numba.njit(parallel=True, cache=True)(py_func)

    def kernel(first, *rest):
        return (parallel if first.size >= PARALLEL_MIN_ELEMENTS else serial)(first, *rest)
    kernel.__name__ = kernel.__qualname__ = py_func.__name__
    kernel.py_func = py_func
    return kernel


if numba is not None:
    def _max_pool(images, out, subs_x, start_x, stride_x, base):  # pragma: no cover (JIT)
        # Window offsets in scan order, a pixel outside the image counting as ``base`` (the NumPy
        # path's padding); NaN wins as in np.maximum.
        C, S, _, N = images.shape
        O = out.shape[1]
        for c in numba.prange(C):
            for oy in range(O):
                for ox in range(O):
                    first = True
                    for dy in range(subs_x):
                        y = start_x + oy * stride_x + dy
                        for dx in range(subs_x):
                            x = start_x + ox * stride_x + dx
                            if 0 <= y < S and 0 <= x < S:
                                if first:
                                    for n in range(N):
                                        out[c, oy, ox, n] = images[c, y, x, n]
                                else:
                                    for n in range(N):
                                        v = images[c, y, x, n]
                                        if v > out[c, oy, ox, n] or v != v:
                                            out[c, oy, ox, n] = v
                            elif first:
                                for n in range(N):
                                    out[c, oy, ox, n] = base
                            else:
                                for n in range(N):
                                    if base > out[c, oy, ox, n]:
                                        out[c, oy, ox, n] = base
                            first = False

    def _max_undo(images, acts, grads, out, subs_x, start_x, stride_x):  # pragma: no cover (JIT)
        # Each input pixel gathers from the windows that hold it, window offsets (dy, dx) in scan
        # order: the order in which the NumPy path adds them into that pixel, so the two agree
        # bit for bit (starting from +0, the skipped zero terms change nothing).
        C, S, _, N = images.shape
        O = acts.shape[1]
        for c in numba.prange(C):
            for y in range(S):
                for x in range(S):
                    for n in range(N):
                        out[c, y, x, n] = 0
                    for dy in range(subs_x):
                        ty = y - start_x - dy
                        if ty < 0 or ty % stride_x != 0 or ty // stride_x >= O:
                            continue
                        oy = ty // stride_x
                        for dx in range(subs_x):
                            tx = x - start_x - dx
                            if tx < 0 or tx % stride_x != 0 or tx // stride_x >= O:
                                continue
                            ox = tx // stride_x
                            for n in range(N):
                                if images[c, y, x, n] == acts[c, oy, ox, n]:
                                    out[c, y, x, n] += grads[c, oy, ox, n]


    _max_pool = _serial_and_parallel(_max_pool)
    _max_undo = _serial_and_parallel(_max_undo)

def max_pool(images4, subs_x: int, start_x: int, stride_x: int, outputs_x: int, base: float):
    """(C, O, O, N) window maxima of (C, S, S, N) images, as the ``max`` pooler of
    :func:`port.cudaconv2.conv_util.conv_local_pool`.

    Ports: cuda-convnet-r561/include/cudaconv2/conv_util.cuh:126-190 kLocalPool
    """
    C, _, _, N = images4.shape
    out = np.empty((C, outputs_x, outputs_x, N), dtype=images4.dtype)
    _max_pool(images4, out, subs_x, start_x, stride_x, images4.dtype.type(base))
    return out


def max_undo(images4, acts4, grads4, subs_x: int, start_x: int, stride_x: int):
    """(C, S, S, N) gradient: each output's gradient to every input of its (clipped) window that
    equals the output, as :func:`port.cudaconv2.conv_util.conv_local_max_undo`.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1496-1587 kLocalMaxUndo
    """
    out = np.empty(images4.shape, dtype=images4.dtype)
    _max_undo(images4, acts4, grads4, out, subs_x, start_x, stride_x)
    return out
