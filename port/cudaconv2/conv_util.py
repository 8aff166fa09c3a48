"""Pooling, normalization and image operations of cudaconv2 (``conv_util``) on NumPy/CuPy.

Ported from ``cuda-convnet-r561/src/cudaconv2/conv_util.cu`` and ``include/cudaconv2/conv_util.cuh``,
plus two 2013 kernels the 2012 release calls that r561 lacks, taken from cuda-convnet2
(``cudaconv3/src/conv_util.cu``): cross-map normalization with ``minDiv`` and the horizontal
reflection.

Layout: images are (numChannels, imgSize, imgSize, N) flattened to (numChannels·imgPixels, N),
square, cases last; pooled outputs are (numChannels, outputsX, outputsX, N) flattened.
Window sums and maxima are computed by looping over the window offsets with strided slices
(never over cases or pixels), of a padded copy only where windows leave the image; the backward
passes add strided slices likewise.

Not here: the original's ``target``/``scaleTargets``/``scaleOutput`` accumulation (every function
returns a new array), row strides, the in-place overwrite of ``acts`` by the norm undos, and
``convLocalRandomPool`` / ``convQuantizeHalf`` (no public source: see docs/missing.md).
"""
from __future__ import annotations

import math

from port.backend import get_array_module
from port.cudaconv2 import fast

POOLERS = ("max", "avg", "maxabs")
MAX_POOL_BASE = -2e38  # MaxPooler::getBaseValue (cuda-convnet-r561/include/cudaconv2/conv_util.cuh:89-91)


def require(ok: bool, func: str, what: str) -> None:
    """The original's asserts, as a ValueError naming the routine (every cudaconv2 module's)."""
    if not ok:
        raise ValueError(f"{func}: {what}")


def _square_images(func: str, a, num_channels: int, name: str = "images") -> int:
    """imgSize of a (numChannels·imgSize², N) matrix, checked as the original asserts it."""
    require(getattr(a, "ndim", None) == 2, func, f"{name} must be a 2-D matrix")
    require(num_channels > 0 and a.shape[0] % num_channels == 0, func,
            f"{name} has {a.shape[0]} rows, not a multiple of num_channels={num_channels}")
    pixels = a.shape[0] // num_channels
    size = math.isqrt(pixels)
    require(size * size == pixels, func, f"{name}: {pixels} pixels per channel is not a square image")
    return size


def _4d(a, channels: int, size: int):
    return a.reshape(channels, size, size, a.shape[-1])


def _require_same_shape(func: str, ref_name: str, ref, **arrays) -> None:
    """Each keyword array has the shape of ``ref`` (the original asserts these pairwise)."""
    for name, a in arrays.items():
        require(a.shape == ref.shape, func,
                f"{name} {a.shape} and {ref_name} {ref.shape} differ in shape")


# ---------------------------------------------------------------------------------------------
# Pooling windows: window o covers [start + o·stride, start + o·stride + subs) ∩ [0, imgSize).

def _pool_padding(img_size: int, subs_x: int, start_x: int, stride_x: int, outputs_x: int):
    """(before, after) padding so that every window lies inside the padded image."""
    before = max(0, -start_x)
    after = max(0, start_x + (outputs_x - 1) * stride_x + subs_x - img_size)
    return before, after


def _pool_window_slices(img_size, subs_x, start_x, stride_x, outputs_x):
    """For each window offset (dy, dx) in scan order, the strided slice of the padded image."""
    before, _ = _pool_padding(img_size, subs_x, start_x, stride_x, outputs_x)
    first = start_x + before
    span = stride_x * (outputs_x - 1) + 1
    for dy in range(subs_x):
        for dx in range(subs_x):
            yield (slice(None), slice(first + dy, first + dy + span, stride_x),
                   slice(first + dx, first + dx + span, stride_x))


def _pad_spatial(x4, before: int, after: int, value: float):
    """x4 inside a border of ``value`` (x4 itself when there is no border: pooling windows that
    fit the image need no copy)."""
    if before == 0 and after == 0:
        return x4
    xp = get_array_module(x4)
    c, s, _, n = x4.shape
    out = xp.full((c, s + before + after, s + before + after, n), value, dtype=x4.dtype)
    out[:, before:before + s, before:before + s] = x4
    return out


def _unpad(gpad, before: int, size: int):
    """The (C, size, size, N) image inside ``gpad``'s border, contiguous (no copy without one)."""
    if gpad.shape[1] == size:
        return gpad
    xp = get_array_module(gpad)
    return xp.ascontiguousarray(gpad[:, before:before + size, before:before + size])


def _window_extent(img_size, subs_x, start_x, stride_x, outputs_x, xp):
    """Per-axis clipped window length, (outputs_x,): min(imgSize, end) − max(0, start)."""
    starts = start_x + stride_x * xp.arange(outputs_x)
    return xp.minimum(img_size, starts + subs_x) - xp.maximum(0, starts)


def _infer_pool_img_size(func, rows, subs_x, start_x, stride_x, outputs_x) -> tuple[int, int]:
    """(numChannels, imgSize) when the caller did not say numChannels: the image sizes for which
    the original's outputsX = ⌈(imgSize − start − sizeX)/stride⌉ + 1
    (alexnet-2012/layer.py:1164) holds and imgSize² divides the rows. Ambiguity is an error asking for num_filters."""
    fits = []
    for size in range(1, math.isqrt(rows) + 1):
        if rows % (size * size):
            continue
        if outputs_x == max(1, -(-(size - start_x - subs_x) // stride_x) + 1):
            fits.append(size)
    require(len(fits) == 1, func,
            f"cannot tell the image size from {rows} rows and outputs_x={outputs_x} "
            f"(candidates {fits}); pass num_filters")
    return rows // (fits[0] * fits[0]), fits[0]


def conv_local_pool(images, *args, num_filters: int | None = None):
    """Max / average / max-|x| pooling over square windows clipped to the image.

    Called as the original (``images, num_filters, subs_x, start_x, stride_x, outputs_x, pooler``)
    or without ``num_filters`` (``images, subs_x, start_x, stride_x, outputs_x, pooler``, the
    channel count then given as the ``num_filters=`` keyword or inferred from the sizes).
    ``pooler`` is ``'max'`` (base −2e38), ``'avg'`` (sum / clipped window area) or ``'maxabs'``
    (keeps the value of largest |x|, the last one in scan order on ties, base 0).
    Returns (numChannels·outputsX², N).

    Ports: cuda-convnet-r561/include/cudaconv2/conv_util.cuh:326-516 convLocalPool
    Ports: cuda-convnet-r561/include/cudaconv2/conv_util.cuh:126-190 kLocalPool
    Ports: cuda-convnet-r561/include/cudaconv2/conv_util.cuh:71-108 MaxAbsPooler
    """
    func = "conv_local_pool"
    if len(args) == 6 and num_filters is None:
        num_filters, subs_x, start_x, stride_x, outputs_x, pooler = args
    elif len(args) == 5:
        subs_x, start_x, stride_x, outputs_x, pooler = args
    else:
        raise TypeError(f"{func}: expected (images, [num_filters,] subs_x, start_x, stride_x, "
                        f"outputs_x, pooler) with num_filters given once, got {1 + len(args)} "
                        "positional arguments")
    require(pooler in POOLERS, func, f"pooler must be one of {POOLERS}, got {pooler!r}")
    require(getattr(images, "ndim", None) == 2, func, "images must be a 2-D matrix")
    require(subs_x >= 1 and stride_x >= 1 and outputs_x >= 1, func,
            f"subs_x, stride_x, outputs_x must be ≥ 1, got {subs_x}, {stride_x}, {outputs_x}")
    if num_filters is None:
        num_filters, img_size = _infer_pool_img_size(func, images.shape[0], subs_x, start_x,
                                                     stride_x, outputs_x)
    else:
        img_size = _square_images(func, images, num_filters)
    xp = get_array_module(images)
    x4 = _4d(images, num_filters, img_size)
    base = {"max": MAX_POOL_BASE, "avg": 0.0, "maxabs": 0.0}[pooler]
    if pooler == "max" and fast.usable(images):              # the compiled twin of what follows
        return fast.max_pool(x4, subs_x, start_x, stride_x, outputs_x, base).reshape(
            num_filters * outputs_x * outputs_x, images.shape[1])
    before, after = _pool_padding(img_size, subs_x, start_x, stride_x, outputs_x)
    xpad = _pad_spatial(x4, before, after, base)
    acc = None
    for sl in _pool_window_slices(img_size, subs_x, start_x, stride_x, outputs_x):
        v = xpad[sl]  # (C, O, O, N)
        if acc is None:
            acc = v.copy()  # agg(base, v) is v for all three poolers
        elif pooler == "max":
            xp.maximum(acc, v, out=acc)
        elif pooler == "avg":
            acc += v
        else:
            acc = xp.where(xp.abs(acc) > xp.abs(v), acc, v)
    if pooler == "avg":
        ext = _window_extent(img_size, subs_x, start_x, stride_x, outputs_x, xp).astype(acc.dtype)
        acc /= (ext[:, None] * ext[None, :])[None, :, :, None]
    return acc.reshape(num_filters * outputs_x * outputs_x, images.shape[1])


def _pool_geometry(func, grads, images_rows, subs_x, start_x, stride_x, outputs_x):
    require(getattr(grads, "ndim", None) == 2, func, "the gradient must be a 2-D matrix")
    outputs = outputs_x * outputs_x
    require(grads.shape[0] % outputs == 0, func,
            f"the gradient has {grads.shape[0]} rows, not a multiple of outputsX² = {outputs}")
    num_filters = grads.shape[0] // outputs
    require(images_rows % num_filters == 0, func,
            f"the images have {images_rows} rows, not a multiple of the {num_filters} channels")
    img_pixels = images_rows // num_filters
    img_size = math.isqrt(img_pixels)
    require(img_size * img_size == img_pixels, func, f"{img_pixels} pixels is not a square image")
    return num_filters, img_size


def conv_local_max_undo(images, max_grads, max_acts, subs_x, start_x, stride_x, outputs_x):
    """Max-pooling backward: each output's gradient goes to every input of its window equal to
    the output (ties all receive it; maxabs and rand pooling use this undo too,
    alexnet-2012/src/layer.cu:1333,1356).

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1869-1958 convLocalMaxUndo
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1496-1587 kLocalMaxUndo
    """
    func = "conv_local_max_undo"
    _require_same_shape(func, "max_grads", max_grads, max_acts=max_acts)
    C, S = _pool_geometry(func, max_grads, images.shape[0], subs_x, start_x, stride_x, outputs_x)
    xp = get_array_module(images, max_grads, max_acts)
    N = images.shape[1]
    if fast.usable(images, max_grads, max_acts):             # the compiled twin of what follows
        return fast.max_undo(_4d(images, C, S), _4d(max_acts, C, outputs_x), _4d(max_grads, C, outputs_x),
                             subs_x, start_x, stride_x).reshape(C * S * S, N)
    before, after = _pool_padding(S, subs_x, start_x, stride_x, outputs_x)
    xpad = _pad_spatial(_4d(images, C, S), before, after, 0.0)
    acts = _4d(max_acts, C, outputs_x)
    grads = _4d(max_grads, C, outputs_x)
    dtype = xp.result_type(images.dtype, max_grads.dtype)
    gpad = xp.zeros(xpad.shape, dtype=dtype)  # (C, Sp, Sp, N)
    for sl in _pool_window_slices(S, subs_x, start_x, stride_x, outputs_x):
        gpad[sl] += xp.where(xpad[sl] == acts, grads, 0)   # not grads·hit: inf·0 would be NaN
    return _unpad(gpad, before, S).reshape(C * S * S, N)


def conv_local_avg_undo(avg_grads, subs_x, start_x, stride_x, outputs_x, img_size):
    """Average-pooling backward: each output's gradient / its clipped window area, to every input
    of the window.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1968-2062 convLocalAvgUndo
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1392-1475 kLocalAvgUndo
    """
    func = "conv_local_avg_undo"
    require(getattr(avg_grads, "ndim", None) == 2
            and avg_grads.shape[0] % (outputs_x * outputs_x) == 0, func,
            f"avg_grads must be (numChannels·outputsX², N) with outputsX={outputs_x}, "
            f"got {getattr(avg_grads, 'shape', None)}")
    C, S = avg_grads.shape[0] // (outputs_x * outputs_x), img_size
    xp = get_array_module(avg_grads)
    N = avg_grads.shape[1]
    ext = _window_extent(S, subs_x, start_x, stride_x, outputs_x, xp).astype(avg_grads.dtype)
    g = _4d(avg_grads, C, outputs_x) / (ext[:, None] * ext[None, :])[None, :, :, None]
    before, after = _pool_padding(S, subs_x, start_x, stride_x, outputs_x)
    gpad = xp.zeros((C, S + before + after, S + before + after, N), dtype=g.dtype)
    for sl in _pool_window_slices(S, subs_x, start_x, stride_x, outputs_x):
        gpad[sl] += g
    return _unpad(gpad, before, S).reshape(C * S * S, N)


# ---------------------------------------------------------------------------------------------
# Normalization. d = k + α·Σ_window u², y = x·d^(−β); the undo sends
# g_p·d_p^(−β) + u_p·Σ_{q: p ∈ window(q)} (−2αβ)·g_q·y_q/d_q (kRNormUndoPrelims + kRNormUndo).

def _box_sum(a, axis: int, lo: int, size: int):
    """out[i] = Σ a[j] for j in [i + lo, i + lo + size) ∩ [0, n) along ``axis`` (zeros outside)."""
    xp = get_array_module(a)
    n = a.shape[axis]

    def along(lo_, hi_):
        idx = [slice(None)] * a.ndim
        idx[axis] = slice(lo_, hi_)
        return tuple(idx)

    # out[i] += a[i + d] for each shift d of the window, over the i where i + d is inside:
    # no padded copy; the zero shift (when the window holds it) starts the sum as a copy.
    shifts = [lo + k for k in range(size) if -n < lo + k < n]
    out = a.copy() if 0 in shifts else xp.zeros(a.shape, dtype=a.dtype)
    for d in shifts:
        if d != 0:
            out[along(max(0, -d), n - max(0, d))] += a[along(max(0, d), n + min(0, d))]
    return out


def _spatial_box(a4, lo: int, size: int):
    """Sum over the size×size window [p + lo, p + lo + size)² clipped to the image (separable)."""
    return _box_sum(_box_sum(a4, 1, lo, size), 2, lo, size)


def _check_rnorm(func: str, images, num_filters: int, size_x: int, undo: bool) -> int:
    size = _square_images(func, images, num_filters)
    if undo:
        require(num_filters % 16 == 0, func,
                f"the number of channels must be a multiple of 16, got {num_filters}")
    else:
        require(num_filters % 16 == 0 or num_filters <= 8, func,
                f"the number of channels must be ≤ 8 or a multiple of 16, got {num_filters}")
    require(size_x >= 1, func, f"size_x must be ≥ 1, got {size_x}")
    return size


def conv_contrast_norm(images, mean_diffs, num_filters, size_x, add_scale, pow_scale):
    """Within-map contrast normalization: d = 1 + α·Σ_{size_x² window} meanDiffs², y = x·d^(−β).

    The window of pixel p is [p − ⌊size/2⌋, p − ⌊size/2⌋ + size)² clipped to the image; k = 1 is
    hard-wired; α is used as given (alexnet-2012/layer.py:1183 has already divided it by size²).
    Returns (target, denoms).

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2074-2212 convContrastNorm
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:746-808 kCNorm_fewfilter
    """
    func = "conv_contrast_norm"
    S = _check_rnorm(func, images, num_filters, size_x, undo=False)
    _require_same_shape(func, "images", images, mean_diffs=mean_diffs)
    md = _4d(mean_diffs, num_filters, S)
    if fast.usable(images, mean_diffs):                   # the compiled twin of the next line
        denoms = fast.spatial_denoms(md, -(size_x // 2), size_x, 1, add_scale).reshape(images.shape)
        target = denoms ** -pow_scale
        target *= images
        return target, denoms
    denoms = 1 + add_scale * _spatial_box(md * md, -(size_x // 2), size_x)
    denoms = denoms.reshape(images.shape)
    return images * denoms ** -pow_scale, denoms


def conv_response_norm(images, num_filters, size_x, add_scale, pow_scale):
    """Within-map response normalization: :func:`conv_contrast_norm` with meanDiffs = images.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2064-2066 convResponseNorm
    """
    return conv_contrast_norm(images, images, num_filters, size_x, add_scale, pow_scale)


def conv_response_norm_undo(out_grads, denoms, inputs, acts, num_filters, size_x, add_scale,
                            pow_scale):
    """Backward of :func:`conv_response_norm` (and of contrast norm with inputs = meanDiffs).

    Unlike the original, ``acts`` is not overwritten (the original reuses it as scratch for
    −2αβ·g·y/d, cuda-convnet-r561/src/cudaconv2/conv_util.cu:2250-2255).

    DIVERGES: the gradient is always right. For windows of 6 or more (with a filter count
    divisible by 4) the original picks ``kRNormUndo2`` with its ``add`` flag inverted
    (cuda-convnet-r561/src/cudaconv2/conv_util.cu:2258-2346): a gradient that should be added to
    an accumulated one overwrites it, and a plain one is computed as 0·target + result, which is
    NaN where the target held NaN. The caller here accumulates with ``scaleTargets`` as
    layer.cu does. Every rnorm and cnorm of the released cfgs has a window of 3 or 5, below the
    faulty path.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2228-2408 convResponseNormUndo
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1592-1605 kRNormUndoPrelims
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1628-1712 kRNormUndo
    """
    func = "conv_response_norm_undo"
    S = _check_rnorm(func, out_grads, num_filters, size_x, undo=True)
    _require_same_shape(func, "out_grads", out_grads, denoms=denoms, inputs=inputs, acts=acts)
    lo_t = -size_x + size_x // 2 + 1  # the windows that contain p
    if fast.usable(out_grads, denoms, inputs, acts):      # the compiled twin of what follows
        return fast.spatial_undo(*(_4d(a, num_filters, S) for a in (out_grads, denoms, inputs, acts)),
                                 lo_t, size_x, -2 * add_scale * pow_scale,
                                 pow_scale).reshape(out_grads.shape)
    pre = (-2 * add_scale * pow_scale) * out_grads * acts / denoms  # (C·P, N)
    back = _spatial_box(_4d(pre, num_filters, S), lo_t, size_x).reshape(out_grads.shape)
    return inputs * back + out_grads * denoms ** -pow_scale


def conv_contrast_norm_undo(out_grads, denoms, mean_diffs, acts, num_filters, size_x, add_scale,
                            pow_scale):
    """Backward of :func:`conv_contrast_norm`: the response-norm undo with inputs = meanDiffs.
    The mean's own dependence on the input is ignored, as in the original.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2214-2217 convContrastNormUndo
    """
    return conv_response_norm_undo(out_grads, denoms, mean_diffs, acts, num_filters, size_x,
                                   add_scale, pow_scale)


def _map_window_sum(a3, size_f: int, lo: int, blocked: bool):
    """Cross-map window sums over axis 0 of (C, P, N): the clipped window [f + lo, f + lo + size)
    or, when ``blocked``, the aligned block of ``size`` maps containing f."""
    if not blocked:
        return _box_sum(a3, 0, lo, size_f)
    xp = get_array_module(a3)
    C = a3.shape[0]
    nb = -(-C // size_f)
    ap = xp.zeros((nb * size_f,) + a3.shape[1:], dtype=a3.dtype)
    ap[:C] = a3
    blocks = ap.reshape((nb, size_f) + a3.shape[1:])  # (blocks, size, P, N)
    sums = blocks.sum(axis=1, keepdims=True)
    return xp.broadcast_to(sums, blocks.shape).reshape(ap.shape)[:C]


def _check_crossmap(func: str, images, num_filters: int, size_f: int) -> None:
    _square_images(func, images, num_filters)
    require(0 < size_f <= num_filters, func,
            f"size must be in [1, {num_filters}] (the number of channels), got {size_f}")
    require(num_filters % 16 == 0, func,
            f"the number of channels must be a multiple of 16, got {num_filters}")


def conv_response_norm_cross_map(images, num_filters, size_f, add_scale, pow_scale, min_div,
                                 blocked):
    """Cross-map response normalization: d_f = minDiv + α·Σ_{f' ∈ W(f)} x_f'², y = x·d^(−β).

    W(f) = [f − ⌊size/2⌋, f − ⌊size/2⌋ + size) ∩ [0, C), or the aligned block of ``size`` maps
    containing f when ``blocked``. α is used as given (alexnet-2012/layer.py:1183 divides it by size).
    Returns (target, denoms).

    DIVERGES: reconstructed minDiv: r561 hard-codes 1
    (cuda-convnet-r561/src/cudaconv2/conv_util.cu:1084), the 2012 release passes minDiv
    (alexnet-2012/src/layer.cu:1589) to a kernel that is not public; cuda-convnet2 adds minDiv where
    r561 adds 1 (cuda-convnet2/cudaconv3/src/conv_util.cu:1206).

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2743-2790 convContrastNormCrossMap
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1038-1089 kFCNorm
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2892-2894 convResponseNormCrossMap
    Ports: cuda-convnet2/cudaconv3/src/conv_util.cu:3018-3020 convResponseNormCrossMap
    Ports: cuda-convnet2/cudaconv3/src/conv_util.cu:1160-1210 kFCNorm
    """
    func = "conv_response_norm_cross_map"
    _check_crossmap(func, images, num_filters, size_f)
    x3 = images.reshape(num_filters, -1, images.shape[1])  # (C, P, N)
    if fast.usable(images):                               # the compiled twin of the next line
        denoms = fast.map_denoms(x3, -(size_f // 2), size_f, blocked, min_div,
                                 add_scale).reshape(images.shape)
        target = denoms ** -pow_scale
        target *= images
        return target, denoms
    denoms = min_div + add_scale * _map_window_sum(x3 * x3, size_f, -(size_f // 2), blocked)
    denoms = denoms.reshape(images.shape)
    return images * denoms ** -pow_scale, denoms


def conv_response_norm_cross_map_undo(out_grads, denoms, inputs, acts, num_filters, size_f,
                                      add_scale, pow_scale, blocked):
    """Backward of :func:`conv_response_norm_cross_map`:
    g_f·d_f^(−β) + x_f·Σ_{f': f ∈ W(f')} (−2αβ)·g_f'·y_f'/d_f'.

    No ``min_div``, as the original's undo: it enters only through ``denoms``.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2801-2890 convResponseNormCrossMapUndo
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1112-1179 kFRNormUndo
    """
    func = "conv_response_norm_cross_map_undo"
    _check_crossmap(func, out_grads, num_filters, size_f)
    _require_same_shape(func, "out_grads", out_grads, denoms=denoms, inputs=inputs, acts=acts)
    lo_t = -size_f + size_f // 2 + 1
    if fast.usable(out_grads, denoms, inputs, acts):      # the compiled twin of what follows
        return fast.map_undo(*(a.reshape(num_filters, -1, a.shape[1])
                               for a in (out_grads, denoms, inputs, acts)),
                             lo_t, size_f, blocked, -2 * add_scale * pow_scale,
                             pow_scale).reshape(out_grads.shape)
    pre = (-2 * add_scale * pow_scale) * out_grads * acts / denoms
    back = _map_window_sum(pre.reshape(num_filters, -1, pre.shape[1]), size_f, lo_t, blocked)
    return inputs * back.reshape(out_grads.shape) + out_grads * denoms ** -pow_scale


# ---------------------------------------------------------------------------------------------
# Image operations

def conv_gaussian_blur(images, filter, horiz, num_channels):
    """One pass of a separable blur: out[.., i] = Σ_k filter[k]·x[.., i + k − r] along x
    (``horiz``) or y, zeros outside. ``filter`` is (1, 2r+1) with r in 1..4.

    DIVERGES: for an asymmetric filter the kernel mixes mirrored and unmirrored taps (it reads
    filter[r + col − o] for the first r pixels, filter[k] after,
    cuda-convnet-r561/src/cudaconv2/conv_util.cu:393-412); the port always correlates, which is the
    same for the symmetric filters alexnet-2012/layer.py:454-456 builds.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:682-726 convGaussianBlur
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:355-441 kGaussianBlur
    """
    func = "conv_gaussian_blur"
    xp = get_array_module(images, filter)
    S = _square_images(func, images, num_channels)
    f = xp.asarray(filter)
    require(f.ndim == 2 and f.shape[0] == 1, func, f"filter must be a (1, width) row, got {f.shape}")
    r = f.shape[1] // 2
    require(1 <= r <= 4, func, f"the filter radius must be in 1..4, got {r}")
    require(S >= 2 * r + 1, func, f"the image ({S}) must be at least the filter width ({2 * r + 1})")
    x4 = _4d(images, num_channels, S)
    axis = 2 if horiz else 1
    out = xp.zeros(x4.shape, dtype=xp.result_type(images.dtype, f.dtype))
    idx_o, idx_i = [slice(None)] * 4, [slice(None)] * 4
    for k in range(f.shape[1]):
        d = k - r  # out[i] += f[k]·x[i + d]
        idx_o[axis] = slice(max(0, -d), S - max(0, d))
        idx_i[axis] = slice(max(0, d), S - max(0, -d))
        out[tuple(idx_o)] += f[0, k] * x4[tuple(idx_i)]
    return out.reshape(images.shape)


def _nails(func, img_size, start_x, stride_x):
    require(stride_x > 1, func, f"stride must be > 1, got {stride_x}")
    outputs_x = -(-img_size // stride_x)
    require(0 <= start_x and start_x + (outputs_x - 1) * stride_x < img_size, func,
            f"the nails start={start_x}, stride={stride_x}, {outputs_x} per row leave the "
            f"{img_size}-pixel image")
    return outputs_x, slice(start_x, start_x + (outputs_x - 1) * stride_x + 1, stride_x)


def conv_bed_of_nails(images, num_channels, img_size, start_x, stride_x):
    """Subsampling: y[c, oy, ox] = x[c, start + oy·stride, start + ox·stride], ⌈img/stride⌉ per row.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:541-663 _convBedOfNails
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:665-668 convBedOfNails
    """
    func = "conv_bed_of_nails"
    require(images.shape[0] == num_channels * img_size * img_size, func,
            f"images must have numChannels·imgSize² = {num_channels * img_size ** 2} rows, "
            f"got {images.shape[0]}")
    outputs_x, sl = _nails(func, img_size, start_x, stride_x)
    y = _4d(images, num_channels, img_size)[:, sl, sl]
    return get_array_module(images).ascontiguousarray(y).reshape(-1, images.shape[1])


def conv_bed_of_nails_undo(acts_grad, num_channels, img_size, start_x, stride_x):
    """Backward of :func:`conv_bed_of_nails`: the gradients at the nails, zeros elsewhere.

    DIVERGES: the original's accumulating path (scaleTargets ≠ 0) asserts that the image-sized
    target has numChannels·outputs rows (cuda-convnet-r561/src/cudaconv2/conv_util.cu:569), so it
    fails whenever the nailbed's input has a second consumer; the port returns the gradient and the
    caller adds.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:670-674 convBedOfNailsUndo
    """
    func = "conv_bed_of_nails_undo"
    xp = get_array_module(acts_grad)
    outputs_x, sl = _nails(func, img_size, start_x, stride_x)
    require(acts_grad.shape[0] == num_channels * outputs_x ** 2, func,
            f"acts_grad must have numChannels·outputsX² = {num_channels * outputs_x ** 2} rows, "
            f"got {acts_grad.shape[0]}")
    out = xp.zeros((num_channels, img_size, img_size, acts_grad.shape[1]), dtype=acts_grad.dtype)
    out[:, sl, sl] = _4d(acts_grad, num_channels, outputs_x)
    return out.reshape(-1, acts_grad.shape[1])


def conv_resize_bilinear(images, img_size, tgt_size, scale):
    """Bilinear resize to tgt_size², source coordinate px·scale + img/2 − (tgt/2)·scale clamped
    to [0, img − 1.01], computed in float32 as the kernel does.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2416-2464 convResizeBilinear
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:287-339 kResizeBilinear
    """
    func = "conv_resize_bilinear"
    xp = get_array_module(images)
    require(images.shape[0] % (img_size * img_size) == 0, func,
            f"images has {images.shape[0]} rows, not a multiple of imgSize² = {img_size ** 2}")
    C = images.shape[0] // (img_size * img_size)
    f32 = xp.float32
    center = f32(img_size * 0.5 - tgt_size * 0.5 * scale)
    src = xp.arange(tgt_size, dtype=f32) * f32(scale) + center
    src = xp.maximum(f32(0), xp.minimum(f32(img_size) - f32(1.01), src))
    i0 = xp.floor(src).astype(xp.int64)
    u = (xp.floor(src + 1) - src).astype(images.dtype)  # weight of the left/top neighbour in x
    w = (src - xp.floor(src)).astype(images.dtype)      # weight of the bottom neighbour in y
    x4 = _4d(images, C, img_size)
    rows0, rows1 = x4[:, i0], x4[:, i0 + 1]  # (C, T, S, N)
    c0 = u[None, None, :, None] * (rows0[:, :, i0] - rows0[:, :, i0 + 1]) + rows0[:, :, i0 + 1]
    c1 = u[None, None, :, None] * (rows1[:, :, i0] - rows1[:, :, i0 + 1]) + rows1[:, :, i0 + 1]
    out = w[None, :, None, None] * (c1 - c0) + c0
    return out.reshape(C * tgt_size * tgt_size, images.shape[1])


def _rgb(func, images):
    require(images.ndim == 2 and images.shape[0] % 3 == 0, func,
            f"images must be (3·imgPixels, N), got {images.shape}")
    return images.reshape(3, -1, images.shape[1])


def conv_rgb_to_yuv(images):
    """RGB → YUV per pixel with the kernel's matrix (Y = .2126R + .7152G + .0722B, ...).

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2470-2510 convRGBToYUV
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:169-192 kRGBToYUV
    """
    xp = get_array_module(images)
    R, G, B = _rgb("conv_rgb_to_yuv", images)
    return xp.stack([0.2126 * R + 0.7152 * G + 0.0722 * B,
                     -0.09991 * R + -0.33609 * G + 0.436 * B,
                     0.615 * R + -0.55861 * G + -0.05639 * B]).astype(images.dtype) \
        .reshape(images.shape)


def conv_rgb_to_lab(images, center):
    """RGB in [0, 1] → L*a*b* via the kernel's XYZ matrix and f(t) = t^0.3333 (t > .0088564517)
    else 7.787037t + .13793103; L is shifted by −50 when ``center``.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2516-2587 convRGBToLAB
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:234-266 kRGBToLAB
    """
    xp = get_array_module(images)
    R, G, B = _rgb("conv_rgb_to_lab", images)

    def labf(t):
        return xp.where(t > 0.0088564517, xp.power(xp.maximum(t, 0), 0.3333),
                        7.787037 * t + 0.13793103)

    X = labf(0.49 * R + 0.31 * G + 0.2 * B)
    Y = labf(0.17697 * R + 0.8124 * G + 0.01063 * B)
    Z = labf(0.01 * G + 0.99 * B)
    L = 116.0 * Y - 16.0 - (50.0 if center else 0.0)
    return xp.stack([L, 500.0 * (X - Y), 200.0 * (Y - Z)]).astype(images.dtype).reshape(images.shape)


def conv_reflect_horizontal(images, num_channels, img_size):
    """Mirror every image left–right: y[c, r, S−1−x] = x[c, r, x]; its own backward.
    ``num_channels`` must be 1..3 (the kernel's template range;
    alexnet-2012/src/layer.cu:1488 asserts it too).

    Ports: cuda-convnet2/cudaconv3/src/conv_util.cu:74-159 convReflectHorizontal
    Ports: cuda-convnet2/cudaconv3/src/conv_util.cu:41-68 kReflectH
    """
    func = "conv_reflect_horizontal"
    require(1 <= num_channels <= 3, func, f"num_channels must be 1..3, got {num_channels}")
    require(images.shape[0] == num_channels * img_size * img_size, func,
            f"images must have numChannels·imgSize² = {num_channels * img_size ** 2} rows, "
            f"got {images.shape[0]}")
    xp = get_array_module(images)
    y = _4d(images, num_channels, img_size)[:, :, ::-1]
    return xp.ascontiguousarray(y).reshape(images.shape)


def conv_crop(images, img_size, tgt_size, start_y, start_x):
    """The tgt_size² crop at (start_y, start_x) of every channel (used by the rscale layer).

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2593-2630 convCrop
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:126-149 kCrop
    """
    func = "conv_crop"
    require(images.shape[0] % (img_size * img_size) == 0, func,
            f"images has {images.shape[0]} rows, not a multiple of imgSize² = {img_size ** 2}")
    require(start_y >= 0 and start_x >= 0 and img_size - start_y >= tgt_size
            and img_size - start_x >= tgt_size, func,
            f"a {tgt_size}² crop at ({start_y}, {start_x}) does not fit a {img_size}² image")
    xp = get_array_module(images)
    C = images.shape[0] // (img_size * img_size)
    y = _4d(images, C, img_size)[:, start_y:start_y + tgt_size, start_x:start_x + tgt_size]
    return xp.ascontiguousarray(y).reshape(C * tgt_size * tgt_size, images.shape[1])


# ---------------------------------------------------------------------------------------------
# TICA (cost.tica, alexnet-2012/src/layer.cu:1995-2001; no released cfg uses it)

def _check_tica(func: str, images, num_filters: int, size_x: int) -> int:
    size = _square_images(func, images, num_filters)
    require(num_filters % 16 == 0 or num_filters <= 8, func,
            f"the number of channels must be ≤ 8 or a multiple of 16, got {num_filters}")
    require(num_filters > 8 and size_x < 6, func,
            f"the kernel is only written for more than 8 channels and size < 6 "
            f"(its 'TEMPORARY' asserts), got {num_filters} channels, size {size_x}")
    return size


def conv_tica(images, num_filters, size_x):
    """1 / (0.001 + √(Σ_{size_x² window} x²)) per pixel, window as in response norm.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2694-2730 convTICA
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1200-1274 kTICA_manyfilter
    """
    xp = get_array_module(images)
    S = _check_tica("conv_tica", images, num_filters, size_x)
    x4 = _4d(images, num_filters, S)
    return (1 / (0.001 + xp.sqrt(_spatial_box(x4 * x4, -(size_x // 2), size_x)))).reshape(images.shape)


def conv_tica_grad(images, ticas, num_filters, size_x):
    """−x_p · Σ_{q in the size_x² window around p} ticas_q (the caller scales by coeff).

    DIVERGES: the kernel's accumulating branch (scaleTarget ≠ 0) multiplies by √Σ instead of Σ
    (cuda-convnet-r561/src/cudaconv2/conv_util.cu:1366); the port always computes the overwriting
    branch, and the caller adds.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2643-2682 convTICAGrad
    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1296-1371 kTICAGrad_manyfilter
    """
    S = _check_tica("conv_tica_grad", images, num_filters, size_x)
    _require_same_shape("conv_tica_grad", "images", images, ticas=ticas)
    sums = _spatial_box(_4d(ticas, num_filters, S), -(size_x // 2), size_x)
    return -images * sums.reshape(images.shape)
