"""Convolution and locally-connected weight gradients (cudaconv2 ``weightActs``).

Ported from ``cuda-convnet-r561/src/cudaconv2/weight_acts.cu``; layout and geometry as in
:mod:`port.cudaconv2.filter_acts`. The weight gradient of filter f, colour c, pixel (fy, fx) is
Σ over modules and cases of hidActs[f, m, n] · image[c, pixel read by m at (fy, fx), n]: for
conv the sum runs over all modules, for local each module keeps its own.

partialSum: the original writes (modules/partialSum, fc·fs², F) partial sums over runs of
partialSum consecutive modules, and the layer adds them up afterwards (alexnet-2012/src/layer.cu:872-878).
``conv_weight_acts`` returns that sum directly, (fc·fs², F); partial_sum is checked as the
original checks it (0 means all modules; otherwise it must divide the module count) and is
otherwise a no-op for the math (only the order of the float additions differs).

Not here: accumulation into a target, the 1/N scaling (callers do both), block tuning.
"""
from __future__ import annotations

from port import device_kernels
from port.backend import get_array_module
from port.cudaconv2 import filter_acts
from port.cudaconv2.filter_acts import (
    ConvGeometry, check_2d, check_color_indices, check_common, check_dense_colors,
    check_sparse_colors, chunk_size, conv_row_blocks, gather_colors, group_colors, images_4d,
    img_size_x_from_rows, local_cols, pad_images, require,
)


def make_geometry(func: str, images, hid_acts, img_size_y, num_modules_y, num_modules_x,
                  filter_size, padding_start, module_stride, num_img_colors, num_groups, conv,
                  num_filter_colors=None) -> ConvGeometry:
    """Derive and check the sizes of a weightActs call (``_weightActs`` / ``_weightActsSparse``)."""
    check_2d(func, "images", images)
    check_2d(func, "hid_acts", hid_acts, cols=images.shape[1])
    num_filter_colors = group_colors(func, num_img_colors, num_groups, num_filter_colors)
    img_size_x = img_size_x_from_rows(func, images.shape[0], num_img_colors, img_size_y)
    num_modules = num_modules_y * num_modules_x
    require(num_modules >= 1, func, "there must be at least one module")
    require(filter_size >= 1, func, f"filter_size must be ≥ 1, got {filter_size}")
    require(hid_acts.shape[0] % num_modules == 0, func,
            f"hid_acts has {hid_acts.shape[0]} rows, not a multiple of the {num_modules} modules")
    g = ConvGeometry(num_img_colors, num_filter_colors, num_groups, img_size_y, img_size_x,
                     num_modules_y, num_modules_x, padding_start, module_stride, filter_size,
                     hid_acts.shape[0] // num_modules, conv)
    check_common(func, g)
    return g


def check_partial_sum(func: str, partial_sum: int, g: ConvGeometry) -> None:
    """partialSum 0 means all modules; otherwise it divides them
    (cuda-convnet-r561/src/cudaconv2/weight_acts.cu:599-601)."""
    ps = g.num_modules if partial_sum == 0 else partial_sum
    require(ps > 0 and g.num_modules % ps == 0, func,
            f"partial_sum ({partial_sum}) must divide the number of modules ({g.num_modules}); "
            "0 means all")


def _weight_acts(x4, hid_acts, g: ConvGeometry):
    """(G·fc, H, W, N) images, (F·modules, N) hidActs → (fc·fs², F) or (modules·fc·fs², F)."""
    xp = get_array_module(x4, hid_acts)
    N = x4.shape[-1]
    G, Fg, F, M = g.num_groups, g.filters_per_group, g.num_filters, g.num_modules
    K = g.num_filter_colors * g.filter_pixels
    dtype = xp.result_type(x4.dtype, hid_acts.dtype)
    x4 = x4.astype(dtype, copy=False)
    hid = hid_acts.astype(dtype, copy=False).reshape(G, Fg, M, N)  # (G, Fg, M, N)
    if g.conv and device_kernels.on_device(hid):
        return _weight_acts_device(xp, x4, hid, g)
    acc = xp.zeros((G, K, Fg) if g.conv else (M, G, K, Fg), dtype=dtype)
    step = chunk_size(K * G * M * dtype.itemsize, N)
    mx = g.num_modules_x
    for n0 in range(0, N, step):
        x = x4[..., n0:n0 + step]
        n = x.shape[-1]
        h = hid[..., n0:n0 + n]
        if g.conv:
            hg = (h if n == N else xp.ascontiguousarray(h)).reshape(G, Fg, M * n)  # (G, Fg, M·n)
            for r0, r1, cols in conv_row_blocks(pad_images(x, g), g):   # cols (G, K, rows·mX·n)
                acc += xp.matmul(cols, hg[:, :, r0 * mx * n:r1 * mx * n].transpose(0, 2, 1))
        else:
            hm = h.transpose(2, 0, 3, 1)  # (M, G, n, Fg)
            acc += xp.matmul(local_cols(x, g), hm)  # (M, G, K, Fg)
    if g.conv:
        return acc.transpose(1, 0, 2).reshape(K, F)
    return acc.transpose(0, 2, 1, 3).reshape(M * K, F)


def _weight_acts_device(xp, x4, hid, g: ConvGeometry):
    """The device's weight gradient: one im2col gather, then per group one GEMM of contiguous
    operands (cols and hidActsᵀ, which is F-contiguous) into the (G, K, Fg) gradient, summed over
    every module and case at once (Port-only: GPU-sized blocks; ``partialSum`` splits nothing)."""
    G, Fg, F, M, N = g.num_groups, g.filters_per_group, g.num_filters, g.num_modules, x4.shape[-1]
    K = g.num_filter_colors * g.filter_pixels
    hid = xp.ascontiguousarray(hid)                                       # (G, Fg, M, N)
    step = filter_acts.device_step(g, N, x4.dtype.itemsize)
    acc = xp.empty((G, K, Fg), dtype=hid.dtype)
    for n0 in range(0, N, step):
        n = min(step, N - n0)
        cols = device_kernels.im2col(x4, g, n0, n).reshape(G, K, M * n)
        h = hid if n == N else xp.ascontiguousarray(hid[..., n0:n0 + n])
        h = h.reshape(G, Fg, M * n)
        for gi in range(G):
            if n0 == 0:
                xp.matmul(cols[gi], h[gi].T, out=acc[gi])
            else:
                acc[gi] += xp.matmul(cols[gi], h[gi].T)
    if G == 1:
        return acc.reshape(K, F)
    return acc.transpose(1, 0, 2).reshape(K, F)


def conv_weight_acts(images, hid_acts, img_size_y, num_modules_y, num_modules_x, filter_size,
                     padding_start, module_stride, num_img_colors, num_groups, partial_sum):
    """Convolution weight gradient: → (fc·fs², F), summed over all modules and cases.

    Ports: cuda-convnet-r561/src/cudaconv2/weight_acts.cu:579-648 _weightActs
    Ports: cuda-convnet-r561/src/cudaconv2/weight_acts.cu:955-964 convWeightActs
    Ports: alexnet-2012/src/layer.cu:857-879 ConvLayer::bpropWeights
    """
    func = "conv_weight_acts"
    g = make_geometry(func, images, hid_acts, img_size_y, num_modules_y, num_modules_x,
                      filter_size, padding_start, module_stride, num_img_colors, num_groups,
                      conv=True)
    check_dense_colors(func, g, 4, 4)  # cuda-convnet-r561/src/cudaconv2/weight_acts.cu:593-594
    check_partial_sum(func, partial_sum, g)
    return _weight_acts(images_4d(images, num_img_colors, g), hid_acts, g)


def local_weight_acts(images, hid_acts, img_size_y, num_modules_y, num_modules_x, filter_size,
                      padding_start, module_stride, num_img_colors, num_groups):
    """Locally-connected weight gradient: → (modules·fc·fs², F) (partialSum 1 in the original).

    Ports: cuda-convnet-r561/src/cudaconv2/weight_acts.cu:966-976 localWeightActs
    """
    func = "local_weight_acts"
    g = make_geometry(func, images, hid_acts, img_size_y, num_modules_y, num_modules_x,
                      filter_size, padding_start, module_stride, num_img_colors, num_groups,
                      conv=False)
    check_dense_colors(func, g, 4, 4)  # cuda-convnet-r561/src/cudaconv2/weight_acts.cu:593-594
    return _weight_acts(images_4d(images, num_img_colors, g), hid_acts, g)


def conv_weight_acts_sparse(images, hid_acts, color_indices, img_size_y, num_modules_y,
                            num_modules_x, filter_size, padding_start, module_stride,
                            num_img_colors, num_filter_colors, num_groups, partial_sum):
    """Sparse convolution weight gradient: → (fc·fs², F), summed over modules and cases.

    Ports: cuda-convnet-r561/src/cudaconv2/weight_acts.cu:990-1052 _weightActsSparse
    Ports: cuda-convnet-r561/src/cudaconv2/weight_acts.cu:1219-1231 convWeightActsSparse
    """
    func = "conv_weight_acts_sparse"
    g = make_geometry(func, images, hid_acts, img_size_y, num_modules_y, num_modules_x,
                      filter_size, padding_start, module_stride, num_img_colors, num_groups,
                      conv=True, num_filter_colors=num_filter_colors)
    check_sparse_colors(func, g, 4)
    check_partial_sum(func, partial_sum, g)
    idx = check_color_indices(func, color_indices, g, images)
    return _weight_acts(gather_colors(images, idx, g), hid_acts, g)


def local_weight_acts_sparse(images, hid_acts, color_indices, img_size_y, num_modules_y,
                             num_modules_x, filter_size, padding_start, module_stride,
                             num_img_colors, num_filter_colors, num_groups):
    """Sparse locally-connected weight gradient: → (modules·fc·fs², F).

    Ports: cuda-convnet-r561/src/cudaconv2/weight_acts.cu:1233-1244 localWeightActsSparse
    """
    func = "local_weight_acts_sparse"
    g = make_geometry(func, images, hid_acts, img_size_y, num_modules_y, num_modules_x,
                      filter_size, padding_start, module_stride, num_img_colors, num_groups,
                      conv=False, num_filter_colors=num_filter_colors)
    check_sparse_colors(func, g, 4)
    idx = check_color_indices(func, color_indices, g, images)
    return _weight_acts(gather_colors(images, idx, g), hid_acts, g)
