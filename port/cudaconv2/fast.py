"""Numba kernels for the few cudaconv2 loops that NumPy cannot express without large temporaries
(CPU only). Each is the compiled twin of a NumPy function in :mod:`port.cudaconv2.conv_util`,
which stays the oracle (the tests compare the two) and the fallback: without Numba, with
``ALEXNET_NO_JIT=1`` in the environment, on CuPy, or for arrays the kernel does not take
(mixed dtypes, non-contiguous), the NumPy code runs.

- :func:`max_undo`: max-pooling backward without temporaries (the NumPy version makes a mask and
  a masked copy per window offset), summing in the NumPy version's order (bit-identical).
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
        # Window offsets outermost, in scan order, as the NumPy path adds them: every pixel gets
        # its windows' gradients summed in the same order, so the two agree bit for bit.
        C, S, _, N = images.shape
        O = acts.shape[1]
        for dy in range(subs_x):
            for dx in range(subs_x):
                for c in range(C):
                    for oy in range(O):
                        y = start_x + oy * stride_x + dy
                        if y < 0 or y >= S:
                            continue
                        for ox in range(O):
                            x = start_x + ox * stride_x + dx
                            if x < 0 or x >= S:
                                continue
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
