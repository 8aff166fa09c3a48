"""Numba kernels for the few cudaconv2 loops that NumPy cannot express without large temporaries
(CPU only). Each is the compiled twin of a NumPy function in :mod:`port.cudaconv2.conv_util`,
which stays the oracle (the tests compare the two) and the fallback: without Numba, with
``ALEXNET_NO_JIT=1`` in the environment, on CuPy, or for arrays the kernel does not take
(mixed dtypes, non-contiguous), the NumPy code runs.

- :func:`max_undo`: max-pooling backward in one pass over the outputs (the NumPy version makes
  one masked copy per window offset); about 10× less time on layers-80sec's pool1.
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


if numba is not None:
    @numba.njit(cache=True)
    def _max_undo(images, acts, grads, out, subs_x, start_x, stride_x):  # pragma: no cover (JIT)
        C, S, _, N = images.shape
        O = acts.shape[1]
        for c in range(C):
            for oy in range(O):
                y0 = max(0, start_x + oy * stride_x)
                y1 = min(S, start_x + oy * stride_x + subs_x)
                for ox in range(O):
                    x0 = max(0, start_x + ox * stride_x)
                    x1 = min(S, start_x + ox * stride_x + subs_x)
                    for y in range(y0, y1):
                        for x in range(x0, x1):
                            for n in range(N):
                                if images[c, y, x, n] == acts[c, oy, ox, n]:
                                    out[c, y, x, n] += grads[c, oy, ox, n]


def max_undo(images4, acts4, grads4, subs_x: int, start_x: int, stride_x: int):
    """(C, S, S, N) gradient: each output's gradient to every input of its (clipped) window that
    equals the output, as :func:`port.cudaconv2.conv_util.conv_local_max_undo`.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1496-1587 kLocalMaxUndo
    """
    out = np.zeros(images4.shape, dtype=images4.dtype)
    _max_undo(images4, acts4, grads4, out, subs_x, start_x, stride_x)
    return out
