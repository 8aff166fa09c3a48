"""Numba kernels for the few cudaconv2 loops that NumPy cannot express without large temporaries
(CPU only). Each is the compiled twin of a NumPy function in :mod:`port.cudaconv2.conv_util`,
which stays the oracle (the tests compare the two) and the fallback: without Numba, with
``ALEXNET_NO_JIT=1`` in the environment, on CuPy, or for arrays the kernel does not take
(mixed dtypes, non-contiguous), the NumPy code runs.

A kernel gives its twin's values: the same number wherever that is a number, with the same
bits, NaN wherever that is NaN, ±0 wherever that is ±0. A NaN's sign and payload and a zero's
sign may differ (compiled and SIMD code may take a NaN from the other operand, or keep the other
of two equal zeros; test_fast's ``_same_values`` checks exactly this). "The same values" below
means that.

- :func:`max_pool`: max-pooling forward in one pass over the image (the NumPy version makes a
  strided copy and a comparison pass per window offset); max is exact, so the same values
  (NaN skipped by both, as fmaxf).
- :func:`max_undo`: max-pooling backward without temporaries (the NumPy version makes a mask and
  a product per window offset), each input pixel gathering its windows' gradients in the NumPy
  version's order (the same values).
- :func:`spatial_denoms`: the within-map (rnorm, cnorm) denominators 1 + α·Σ_{size² window} u²
  in one pass, rows then columns as the NumPy version sums them (the same values).
- :func:`spatial_undo`: the within-map backward in one pass per channel (the NumPy version's
  full-size temporaries peak at four arrays of the input's size with the result, this at one),
  the same values.
- :func:`map_denoms`: the cross-map (cmrnorm, blocked or not) denominators in one pass,
  the same values.
- :func:`map_undo`: the cross-map backward in one pass (one array at its peak, the NumPy
  version four), the same values.
- :func:`im2col_rows` / :func:`col2im_rows_add`: a block of the convolutions' im2col columns
  copied from, or added back into, the padded images in one pass on all cores (the NumPy version
  makes one strided copy or add per filter offset, on one core); the adds keep the NumPy
  version's order (the same values).

The kernels run in parallel over channels (``prange``; Numba's threads, as many as cores): every
channel's outputs are its own, so no two threads write the same element and the sums keep their
order. The norms' d^(−β) stays NumPy's ``power`` (a SIMD loop faster than a compiled scalar
pow, and the oracle's own results).
"""
from __future__ import annotations

import os
import types

import numpy as np

# Numba's parallel kernels run on an OpenMP team whose threads, by default, spin for a while after
# each kernel; OpenBLAS's threads run the matrix product that follows, and on two cores the
# spinners and the product share them: a layers-145 convolution took 1,000 ms after a compiled
# kernel against 124 ms without (quiet 2-core machine). PASSIVE makes the team sleep at once. It
# must be set before the OpenMP runtime loads (at the first parallel kernel); a user's own value
# is kept. ``OMP_WAIT_POLICY_SET_HERE`` says whether this module set it (the benchmark keeps it
# out of its PyTorch worker's environment).
OMP_WAIT_POLICY_SET_HERE = "OMP_WAIT_POLICY" not in os.environ
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
    the size of the first argument.

    The serial one is compiled from a copy named ``<name>_serial``: Numba's disk cache keys a
    function by its qualified name and signature only (not by ``parallel``), so the two would
    share one entry, and the parallel kernel would load whichever was saved first (the serial
    code, once a small call had compiled it) and run on one thread."""
    serial_func = types.FunctionType(py_func.__code__, py_func.__globals__, py_func.__name__ + "_serial",
                                     py_func.__defaults__, py_func.__closure__)
    serial_func.__qualname__ = py_func.__qualname__ + "_serial"
    serial = numba.njit(cache=True)(serial_func)
    parallel = numba.njit(parallel=True, cache=True)(py_func)

    def kernel(first, *rest):
        return (parallel if first.size >= PARALLEL_MIN_ELEMENTS else serial)(first, *rest)
    kernel.__name__ = kernel.__qualname__ = py_func.__name__
    kernel.py_func = py_func
    return kernel


if numba is not None:
    def _max_pool(images, out, subs_x, start_x, stride_x, base):  # pragma: no cover (JIT)
        # fmaxf(out, v) from out = base over the window's pixels in the image, as MaxPooler: a
        # NaN v is skipped (v > out is false), nothing goes below base; the pixels outside the
        # image (the NumPy path's padding at base) change nothing.
        C, S, _, N = images.shape
        O = out.shape[1]
        for c in numba.prange(C):
            for oy in range(O):
                for ox in range(O):
                    for n in range(N):
                        out[c, oy, ox, n] = base
                    for dy in range(subs_x):
                        y = start_x + oy * stride_x + dy
                        if y < 0 or y >= S:
                            continue
                        for dx in range(subs_x):
                            x = start_x + ox * stride_x + dx
                            if x < 0 or x >= S:
                                continue
                            for n in range(N):
                                v = images[c, y, x, n]
                                if v > out[c, oy, ox, n]:
                                    out[c, oy, ox, n] = v

    def _max_undo(images, acts, grads, out, subs_x, start_x, stride_x):  # pragma: no cover (JIT)
        # Each input pixel gathers (img == max)·grad from the windows that hold it, window offsets
        # (dy, dx) last to first (its outputs in ascending order, as the kernel and the NumPy path
        # add them), so the two agree in value (a 0·inf or 0·NaN term is NaN, as in the kernel).
        C, S, _, N = images.shape
        O = acts.shape[1]
        for c in numba.prange(C):
            for y in range(S):
                for x in range(S):
                    for n in range(N):
                        out[c, y, x, n] = 0
                    for dy in range(subs_x - 1, -1, -1):
                        ty = y - start_x - dy
                        if ty < 0 or ty % stride_x != 0 or ty // stride_x >= O:
                            continue
                        oy = ty // stride_x
                        for dx in range(subs_x - 1, -1, -1):
                            tx = x - start_x - dx
                            if tx < 0 or tx % stride_x != 0 or tx // stride_x >= O:
                                continue
                            ox = tx // stride_x
                            for n in range(N):
                                g = grads[c, oy, ox, n]
                                if images[c, y, x, n] != acts[c, oy, ox, n]:
                                    g = g - g       # 0·g in the dtype: +0, or NaN for inf and NaN
                                out[c, y, x, n] += g


    def _im2col_rows(xpad, cols, r0, stride):  # pragma: no cover (JIT)
        # cols[c, fy, fx, r, x, n] = xpad[c, fy + stride·(r0 + r), fx + stride·x, n]
        C, fs, _, R, X, N = cols.shape
        for cf in numba.prange(C * fs):
            c, fy = cf // fs, cf % fs
            for fx in range(fs):
                for r in range(R):
                    y = fy + stride * (r0 + r)
                    for x in range(X):
                        xx = fx + stride * x
                        for n in range(N):
                            cols[c, fy, fx, r, x, n] = xpad[c, y, xx, n]

    def _col2im_rows_add(xpad, cols, r0, stride):  # pragma: no cover (JIT)
        # xpad[c, fy + stride·(r0 + r), fx + stride·x, n] += cols[c, fy, fx, r, x, n], the offsets
        # (fy, fx) in scan order as the NumPy path adds them (the same values); a thread a channel.
        C, fs, _, R, X, N = cols.shape
        for c in numba.prange(C):
            for fy in range(fs):
                for fx in range(fs):
                    for r in range(R):
                        y = fy + stride * (r0 + r)
                        for x in range(X):
                            xx = fx + stride * x
                            for n in range(N):
                                xpad[c, y, xx, n] += cols[c, fy, fx, r, x, n]

    _max_pool = _serial_and_parallel(_max_pool)
    _max_undo = _serial_and_parallel(_max_undo)
    _im2col_rows = _serial_and_parallel(_im2col_rows)
    _col2im_rows_add = _serial_and_parallel(_col2im_rows_add)


def im2col_rows(xpad, cols6, r0: int, stride: int) -> None:
    """Fill one block of im2col columns (C, fs, fs, rows, mX, n) from the padded images
    (C, Yp, Xp, n), as :func:`port.cudaconv2.filter_acts.conv_row_blocks` copies them.

    Ports: cuda-convnet-r561/src/cudaconv2/filter_acts.cu:57-185 filterActs_YxX_color
    """
    _im2col_rows(xpad, cols6, r0, stride)


def col2im_rows_add(xpad, cols6, r0: int, stride: int) -> None:
    """Add one block of columns (C, fs, fs, rows, mX, n) into the padded image gradient
    (C, Yp, Xp, n), as :func:`port.cudaconv2.filter_acts.col2im_rows_add`.

    Ports: cuda-convnet-r561/src/cudaconv2/img_acts.cu:53-120 img_acts_color
    """
    _col2im_rows_add(xpad, cols6, r0, stride)


def max_pool(images4, subs_x: int, start_x: int, stride_x: int, outputs_x: int, base: float):
    """(C, O, O, N) window maxima of (C, S, S, N) images, as the ``max`` pooler of
    :func:`port.cudaconv2.conv_util.conv_local_pool`: fmaxf from ``base``.

    Ports: cuda-convnet-r561/include/cudaconv2/conv_util.cuh:126-190 kLocalPool
    Ports: cuda-convnet-r561/include/cudaconv2/conv_util.cuh:84-95 MaxPooler
    """
    C, _, _, N = images4.shape
    out = np.empty((C, outputs_x, outputs_x, N), dtype=images4.dtype)
    _max_pool(images4, out, subs_x, start_x, stride_x, images4.dtype.type(base))
    return out


def max_undo(images4, acts4, grads4, subs_x: int, start_x: int, stride_x: int):
    """(C, S, S, N) gradient: Σ (img == max)·grad over the (clipped) windows holding each input,
    as :func:`port.cudaconv2.conv_util.conv_local_max_undo`.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1496-1587 kLocalMaxUndo
    """
    out = np.empty(images4.shape, dtype=images4.dtype)
    _max_undo(images4, acts4, grads4, out, subs_x, start_x, stride_x)
    return out


# ---------------------------------------------------------------------------------------------
# Response normalization: the window sums of the denominators (forward) and the whole backward,
# one pass each, over the channels (each channel's outputs are its own). The sums are added in
# the NumPy path's order (conv_util._box_sum: the zero shift first, then the shifts in window
# order), so the two give the same values; d^(−β) stays NumPy's ``power`` (its SIMD version is
# faster than a compiled scalar pow, and the same results).

if numba is not None:
    @numba.njit(cache=True, inline="always")
    def _spatial_box(plane, lo, size, box):  # pragma: no cover (JIT)
        # box[y, x] = Σ_{dx} Σ_{dy} plane[y + dy, x + dx] over the window [lo, lo + size)² clipped
        # to the image, the rows summed first, each sum starting from the zero shift and adding
        # the others in window order (conv_util._spatial_box and _box_sum).
        S, _, N = plane.shape
        zero_in = lo <= 0 < lo + size
        rows = np.empty((S, N), plane.dtype)
        for y in range(S):
            for x in range(S):
                for n in range(N):
                    rows[x, n] = plane[y, x, n] if zero_in else 0
                for k in range(size):
                    yy = y + lo + k
                    if yy == y or yy < 0 or yy >= S:
                        continue
                    for n in range(N):
                        rows[x, n] += plane[yy, x, n]
            for x in range(S):
                for n in range(N):
                    box[y, x, n] = rows[x, n] if zero_in else 0
                for k in range(size):
                    xx = x + lo + k
                    if xx == x or xx < 0 or xx >= S:
                        continue
                    for n in range(N):
                        box[y, x, n] += rows[xx, n]

    def _spatial_denoms(md, denoms, lo, size, base, alpha):  # pragma: no cover (JIT)
        # denoms[c] = base + α·(window sums of md[c]²), _spatial_box's windows.
        C, S, _, N = md.shape
        for c in numba.prange(C):
            sq = np.empty((S, S, N), md.dtype)
            for y in range(S):
                for x in range(S):
                    for n in range(N):
                        v = md[c, y, x, n]
                        sq[y, x, n] = v * v
            _spatial_box(sq, lo, size, denoms[c])
            for y in range(S):
                for x in range(S):
                    for n in range(N):
                        denoms[c, y, x, n] = base + alpha * denoms[c, y, x, n]

    def _spatial_undo(grads, denoms, inputs, acts, out, lo, size, coeff):  # pragma: no cover (JIT)
        # out holds d^(−β) on entry; out = inputs·Σ_window(coeff·g·y/d) + g·out, the window sum
        # _spatial_box's over the transposed window [lo, lo + size).
        C, S, _, N = grads.shape
        for c in numba.prange(C):
            pre = np.empty((S, S, N), grads.dtype)
            back = np.empty((S, S, N), grads.dtype)
            for y in range(S):
                for x in range(S):
                    for n in range(N):
                        pre[y, x, n] = coeff * grads[c, y, x, n] * acts[c, y, x, n] / denoms[c, y, x, n]
            _spatial_box(pre, lo, size, back)
            for y in range(S):
                for x in range(S):
                    for n in range(N):
                        out[c, y, x, n] = inputs[c, y, x, n] * back[y, x, n] + grads[c, y, x, n] * out[c, y, x, n]

    def _map_denoms(x, denoms, lo, size, blocked, base, alpha):  # pragma: no cover (JIT)
        # denoms[c] = base + α·Σ_{c' ∈ W(c)} x[c']², W(c) = [c + lo, c + lo + size) ∩ [0, C) with
        # c itself first, or (blocked) the aligned block of size maps in order
        # (conv_util._map_window_sum).
        C, P, N = x.shape
        for c in numba.prange(C):
            first = (c // size) * size if blocked else c + lo
            own = (not blocked) and lo <= 0 < lo + size
            for p in range(P):
                if own:
                    for n in range(N):
                        v = x[c, p, n]
                        denoms[c, p, n] = v * v
                else:
                    for n in range(N):
                        denoms[c, p, n] = 0
                for k in range(size):
                    cc = first + k
                    if (own and cc == c) or cc < 0 or cc >= C:
                        continue
                    for n in range(N):
                        v = x[cc, p, n]
                        denoms[c, p, n] += v * v
                for n in range(N):
                    denoms[c, p, n] = base + alpha * denoms[c, p, n]

    def _map_undo(grads, denoms, inputs, acts, out, lo, size, blocked, coeff):  # pragma: no cover (JIT)
        # out holds d^(−β) on entry; out = inputs·Σ_{c' ∈ W(c)}(coeff·g·y/d)[c'] + g·out, W as in
        # _map_denoms with the transposed window [c + lo, c + lo + size).
        C, P, N = grads.shape
        back = np.empty((C, N), grads.dtype)     # one row per channel: the prange writes its own
        for c in numba.prange(C):
            first = (c // size) * size if blocked else c + lo
            own = (not blocked) and lo <= 0 < lo + size
            for p in range(P):
                if own:
                    for n in range(N):
                        back[c, n] = coeff * grads[c, p, n] * acts[c, p, n] / denoms[c, p, n]
                else:
                    for n in range(N):
                        back[c, n] = 0
                for k in range(size):
                    cc = first + k
                    if (own and cc == c) or cc < 0 or cc >= C:
                        continue
                    for n in range(N):
                        back[c, n] += coeff * grads[cc, p, n] * acts[cc, p, n] / denoms[cc, p, n]
                for n in range(N):
                    out[c, p, n] = inputs[c, p, n] * back[c, n] + grads[c, p, n] * out[c, p, n]


    _spatial_denoms = _serial_and_parallel(_spatial_denoms)
    _spatial_undo = _serial_and_parallel(_spatial_undo)
    _map_denoms = _serial_and_parallel(_map_denoms)
    _map_undo = _serial_and_parallel(_map_undo)


def _scalars(dtype, *values):
    """The constants in the arrays' dtype, as NumPy casts a Python float against a float32 array."""
    return tuple(dtype.type(v) for v in values)


def spatial_denoms(md4, lo: int, size: int, base: float, alpha: float):
    """(C, S, S, N) denominators base + α·Σ_{size² window} md², the window [p + lo, p + lo + size)²
    clipped, as :func:`port.cudaconv2.conv_util.conv_contrast_norm` computes them.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2074-2212 convContrastNorm
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:746-808 kCNorm_fewfilter
    """
    denoms = np.empty(md4.shape, dtype=md4.dtype)
    _spatial_denoms(md4, denoms, lo, size, *_scalars(md4.dtype, base, alpha))
    return denoms


def spatial_undo(grads4, denoms4, inputs4, acts4, lo: int, size: int, coeff: float, pow_scale: float):
    """(C, S, S, N) gradient inputs·Σ_{transposed window}(coeff·g·y/d) + g·d^(−β), as
    :func:`port.cudaconv2.conv_util.conv_response_norm_undo` (``lo`` is its transposed start).

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2228-2408 convResponseNormUndo
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1592-1605 kRNormUndoPrelims
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1628-1712 kRNormUndo
    """
    out = denoms4 ** -pow_scale             # as the NumPy path writes it (the same results)
    _spatial_undo(grads4, denoms4, inputs4, acts4, out, lo, size, *_scalars(grads4.dtype, coeff))
    return out


def map_denoms(x3, lo: int, size: int, blocked: bool, base: float, alpha: float):
    """(C, P, N) denominators base + α·Σ_{maps of the window} x², as
    :func:`port.cudaconv2.conv_util.conv_response_norm_cross_map` computes them.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2743-2790 convContrastNormCrossMap
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1038-1089 kFCNorm
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2892-2894 convResponseNormCrossMap
    Ports: cuda-convnet2/cudaconv3/src/conv_util.cu:3018-3020 convResponseNormCrossMap
    Ports: cuda-convnet2/cudaconv3/src/conv_util.cu:1160-1210 kFCNorm
    """
    denoms = np.empty(x3.shape, dtype=x3.dtype)
    _map_denoms(x3, denoms, lo, size, blocked, *_scalars(x3.dtype, base, alpha))
    return denoms


def map_undo(grads3, denoms3, inputs3, acts3, lo: int, size: int, blocked: bool, coeff: float,
             pow_scale: float):
    """(C, P, N) gradient, as :func:`port.cudaconv2.conv_util.conv_response_norm_cross_map_undo`.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2801-2890 convResponseNormCrossMapUndo
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1112-1179 kFRNormUndo
    """
    out = denoms3 ** -pow_scale
    _map_undo(grads3, denoms3, inputs3, acts3, out, lo, size, blocked, *_scalars(grads3.dtype, coeff))
    return out
