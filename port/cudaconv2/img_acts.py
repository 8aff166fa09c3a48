"""Convolution and locally-connected backward pass to the images (cudaconv2 ``imgActs``).

Ported from ``cuda-convnet-r561/src/cudaconv2/img_acts.cu``. The result is the adjoint of
:mod:`port.cudaconv2.filter_acts` (same geometry, same layout; see that module's docstring):
each module's hidActs are multiplied back through its filters into an fs×fs patch and the
patches are summed where they overlap (col2im over the fs² filter offsets), the padding and the
overhang being dropped.

Not here: accumulation into a target (the callers add), block tuning.
"""
from __future__ import annotations

from port import device_kernels
from port.backend import get_array_module
from port.cudaconv2.filter_acts import (
    ConvGeometry, block_rows, check_2d, check_color_indices, check_common, check_dense_colors,
    check_sparse_colors, chunk_size, col2im, col2im_rows_add, device_step, filter_size_from_rows,
    group_colors, require, unpad_images,
)


def make_geometry(func: str, hid_acts, filters, img_size_y, img_size_x, num_modules_y,
                  padding_start, module_stride, num_img_colors, num_groups, conv,
                  num_filter_colors=None) -> ConvGeometry:
    """Derive and check the sizes of an imgActs call (``_imgActs`` / ``_imgActsSparse``)."""
    check_2d(func, "hid_acts", hid_acts)
    check_2d(func, "filters", filters)
    num_filter_colors = group_colors(func, num_img_colors, num_groups, num_filter_colors)
    num_filters = filters.shape[1]
    require(num_filters > 0 and hid_acts.shape[0] % num_filters == 0, func,
            f"hid_acts has {hid_acts.shape[0]} rows, not a multiple of the {num_filters} filters")
    num_modules = hid_acts.shape[0] // num_filters
    require(num_modules_y > 0 and num_modules % num_modules_y == 0, func,
            f"{num_modules} modules do not make rows of num_modules_y={num_modules_y}")
    fs = filter_size_from_rows(func, filters.shape[0],
                               (1 if conv else num_modules) * num_filter_colors)
    g = ConvGeometry(num_img_colors, num_filter_colors, num_groups, img_size_y, img_size_x,
                     num_modules_y, num_modules // num_modules_y, padding_start, module_stride,
                     fs, num_filters, conv)
    check_common(func, g)
    return g


def _img_acts(hid_acts, filters, g: ConvGeometry):
    """(F·modules, N) hidActs → (G·fc, H, W, N) gradient for the colours each group reads."""
    xp = get_array_module(hid_acts, filters)
    N = hid_acts.shape[1]
    G, Fg, M, fs = g.num_groups, g.filters_per_group, g.num_modules, g.filter_size
    fc, my, mx = g.num_filter_colors, g.num_modules_y, g.num_modules_x
    K = fc * g.filter_pixels
    dtype = xp.result_type(hid_acts.dtype, filters.dtype)
    hid = hid_acts.astype(dtype, copy=False).reshape(G, Fg, M, N)  # (G, Fg, M, N)
    filters = filters.astype(dtype, copy=False)
    if g.conv:
        w = filters.reshape(K, G, Fg).transpose(1, 0, 2)  # (G, K, Fg)
    else:
        w = filters.reshape(M, K, G, Fg).transpose(0, 2, 1, 3)  # (M, G, K, Fg)
    if g.conv and device_kernels.on_device(hid):
        return _img_acts_device(xp, hid, filters, g)
    step = chunk_size(K * G * M * dtype.itemsize, N)
    if g.conv and step == N:
        # One block of module rows at a time: cols = Wᵀ·hidActs into a reused buffer, then
        # added into the padded gradient (col2im), so the buffer stays in cache.
        xpad = xp.zeros((G * fc, g.padded_y, g.padded_x, N), dtype=dtype)  # (G·fc, Yp, Xp, N)
        rows = block_rows(g, N, dtype.itemsize)
        flat = xp.empty(K * G * rows * mx * N, dtype=dtype)
        hid3 = hid.reshape(G, Fg, M * N)
        for r0 in range(0, my, rows):
            r1 = min(my, r0 + rows)
            cols = flat[:K * G * (r1 - r0) * mx * N].reshape(G, K, -1)      # (G, K, rows·mX·N)
            xp.matmul(w, hid3[:, :, r0 * mx * N:r1 * mx * N], out=cols)
            col2im_rows_add(xpad, cols, g, r0, r1)
        return unpad_images(xpad, g)
    out = xp.empty((G * fc, g.img_size_y, g.img_size_x, N), dtype=dtype)  # (G·fc, H, W, N)
    for n0 in range(0, N, step):
        h = hid[..., n0:n0 + step]
        n = h.shape[-1]
        if g.conv:
            cols = xp.matmul(w, h.reshape(G, Fg, M * n))  # (G, K, M·n)
            cols = cols.reshape(G * fc, fs, fs, my, mx, n)
        else:
            cols = xp.matmul(w, h.transpose(2, 0, 1, 3))  # (M, G, K, n)
            cols = cols.reshape(my, mx, G * fc, fs, fs, n).transpose(2, 3, 4, 0, 1, 5)
        out[..., n0:n0 + n] = col2im(cols, g, dtype)
    return out


def _img_acts_device(xp, hid, filters, g: ConvGeometry):
    """The device's backward to the images: cols = Wᵀ·hidActs per group (one GEMM on contiguous
    operands, or a copy of the grouped weights and a batched one), then one col2im gather-sum,
    the whole minibatch while it fits the device budget (Port-only: GPU-sized blocks)."""
    G, Fg, M, N = g.num_groups, g.filters_per_group, g.num_modules, hid.shape[-1]
    K = g.num_filter_colors * g.filter_pixels
    hid = xp.ascontiguousarray(hid)                                       # (G, Fg, M, N)
    step = device_step(g, N, hid.dtype.itemsize)
    out = None if step == N else xp.empty((G * g.num_filter_colors, g.img_size_y, g.img_size_x, N),
                                          dtype=hid.dtype)
    if G > 1:
        w = xp.ascontiguousarray(filters.reshape(K, G, Fg).transpose(1, 0, 2))   # (G, K, Fg)
    for n0 in range(0, N, step):
        n = min(step, N - n0)
        h = hid if n == N else xp.ascontiguousarray(hid[..., n0:n0 + n])
        if G == 1:
            cols = xp.matmul(filters, h.reshape(Fg, M * n))                     # (K, M·n)
        else:
            cols = xp.matmul(w, h.reshape(G, Fg, M * n)).reshape(G * K, M * n)
        grad = device_kernels.col2im(cols, g, n)                           # (G·fc, H, W, n)
        if out is None:
            return grad
        out[..., n0:n0 + n] = grad
    return out


def conv_img_acts(hid_acts, filters, img_size_y, img_size_x, num_modules_y, padding_start,
                  module_stride, num_img_colors, num_groups):
    """Convolution backward to the images: (F·modules, N) → (C·imgPixels, N).

    Ports: cuda-convnet-r561/src/cudaconv2/img_acts.cu:900-961 _imgActs
    Ports: cuda-convnet-r561/src/cudaconv2/img_acts.cu:1892-1901 convImgActs
    Ports: cuda-convnet-r561/src/cudaconv2/img_acts.cu:53-120 img_acts_color
    """
    func = "conv_img_acts"
    g = make_geometry(func, hid_acts, filters, img_size_y, img_size_x, num_modules_y,
                      padding_start, module_stride, num_img_colors, num_groups, conv=True)
    check_dense_colors(func, g, 2, 4)  # cuda-convnet-r561/src/cudaconv2/img_acts.cu:915-916
    return _img_acts(hid_acts, filters, g).reshape(num_img_colors * g.img_pixels, -1)


def local_img_acts(hid_acts, filters, img_size_y, img_size_x, num_modules_y, padding_start,
                   module_stride, num_img_colors, num_groups):
    """Locally-connected backward to the images.

    Ports: cuda-convnet-r561/src/cudaconv2/img_acts.cu:1903-1912 localImgActs
    """
    func = "local_img_acts"
    g = make_geometry(func, hid_acts, filters, img_size_y, img_size_x, num_modules_y,
                      padding_start, module_stride, num_img_colors, num_groups, conv=False)
    check_dense_colors(func, g, 2, 4)  # cuda-convnet-r561/src/cudaconv2/img_acts.cu:915-916
    return _img_acts(hid_acts, filters, g).reshape(num_img_colors * g.img_pixels, -1)


def _scatter_samples(grad, idx, g: ConvGeometry):
    """(G·fc, H, W, N) per-group gradients → (overSample·C·imgPixels, N) as the sparse kernels
    write it: sample s = groups [s·G/overSample, (s+1)·G/overSample), each colour once per sample."""
    xp = get_array_module(grad)
    C, N = g.num_img_colors, grad.shape[-1]
    over = g.num_groups * g.num_filter_colors // C
    v = xp.arange(idx.size)
    sample = v // C
    require(int(xp.unique(sample * C + idx).size) == idx.size, "img_acts_sparse",
            "color_indices must list every colour once per oversampling block of "
            f"{C} entries (layer.py builds them from permutations)")
    out = xp.zeros((over, C, g.img_pixels, N), dtype=grad.dtype)  # (overSample, C, P, N)
    out[sample, idx] = grad.reshape(idx.size, g.img_pixels, N)
    return out.reshape(over * C * g.img_pixels, N)


def conv_img_acts_sparse(hid_acts, filters, color_indices, img_size_y, img_size_x, num_modules_y,
                         padding_start, module_stride, num_img_colors, num_filter_colors,
                         num_groups):
    """Sparse convolution backward to the images → (overSample·C·imgPixels, N).

    overSample = groups·filterColors / C is the number of groups that read each colour; like the
    original, the result holds one image gradient per oversampling block, and the caller sums
    the blocks (alexnet-2012/src/layer.cu:887-891 does ``reshape(overSample, -1).sum(0)``).

    Ports: cuda-convnet-r561/src/cudaconv2/img_acts.cu:1929-1993 _imgActsSparse
    Ports: cuda-convnet-r561/src/cudaconv2/img_acts.cu:2559-2570 convImgActsSparse
    Ports: cuda-convnet-r561/src/cudaconv2/img_acts.cu:556-600 img_acts_mediumcolor_sparse_rand
    """
    func = "conv_img_acts_sparse"
    g = make_geometry(func, hid_acts, filters, img_size_y, img_size_x, num_modules_y,
                      padding_start, module_stride, num_img_colors, num_groups, conv=True,
                      num_filter_colors=num_filter_colors)
    check_sparse_colors(func, g, 2)
    require(num_filter_colors > 3, func, f"num_filter_colors must be > 3, got {num_filter_colors}")
    idx = check_color_indices(func, color_indices, g, hid_acts)
    return _scatter_samples(_img_acts(hid_acts, filters, g), idx, g)


def local_img_acts_sparse(hid_acts, filters, color_indices, img_size_y, img_size_x, num_modules_y,
                          padding_start, module_stride, num_img_colors, num_filter_colors,
                          num_groups):
    """Sparse locally-connected backward to the images → (overSample·C·imgPixels, N).

    Ports: cuda-convnet-r561/src/cudaconv2/img_acts.cu:2572-2583 localImgActsSparse
    """
    func = "local_img_acts_sparse"
    g = make_geometry(func, hid_acts, filters, img_size_y, img_size_x, num_modules_y,
                      padding_start, module_stride, num_img_colors, num_groups, conv=False,
                      num_filter_colors=num_filter_colors)
    check_sparse_colors(func, g, 2)
    require(num_filter_colors > 3, func, f"num_filter_colors must be > 3, got {num_filter_colors}")
    idx = check_color_indices(func, color_indices, g, hid_acts)
    return _scatter_samples(_img_acts(hid_acts, filters, g), idx, g)
