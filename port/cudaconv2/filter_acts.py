"""Convolution and locally-connected forward pass (cudaconv2 ``filterActs``) on NumPy/CuPy.

The 2012 release calls these kernels but does not ship them; they are ported from the SVN
r561 copy of cudaconv2 (``cuda-convnet-r561/src/cudaconv2/filter_acts.cu``). This module also
holds what the three convolution modules share: the geometry and the original's asserts
(:class:`ConvGeometry`), and the im2col / col2im steps over the fs² filter offsets.

Layout (the original's, cases last and contiguous):

- images   (numImgColors, imgSizeY, imgSizeX, N) flattened to (numImgColors·imgPixels, N),
  pixel index y·imgSizeX + x inside a colour;
- filters  (filterColors, fs, fs, F) flattened to (filterColors·fs², F) for conv,
  (numModules, filterColors, fs², F) flattened to (numModules·filterColors·fs², F) for local;
- targets / hidActs (F, numModulesY, numModulesX, N) flattened to (F·numModules, N).

Module (my, mx) reads pixel (paddingStart + my·stride + fy, paddingStart + mx·stride + fx),
zero outside the image (which is how the ceil in the module count lets the last module overhang
the right and bottom edges). Group g owns colours [g·fc, (g+1)·fc) and filters
[g·F/G, (g+1)·F/G). The randSparse variants replace the colour range by
``color_indices[g·fc:(g+1)·fc]``.

Not here: the scaleTargets/scaleOutput accumulation of the original (every function returns a new
array; callers add), the image row stride (inputs are whole arrays), the kernels' block tuning.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from port import device_kernels
from port.backend import get_array_module
from port.cudaconv2 import fast
from port.cudaconv2.conv_util import require

# An im2col buffer above this many bytes is built one slice of images at a time.
COLS_BUDGET_BYTES = 512 * 2**20
# Convolutions (tied weights) build their im2col matrix a block of module rows at a time, in one
# buffer of about this size reused for every block, so it stays in cache between the copy and
# the matrix product instead of going to memory and back (one row at least).
COLS_BLOCK_BYTES = 4 * 2**20


@dataclass(frozen=True)
class ConvGeometry:
    """Sizes of one filterActs/imgActs/weightActs call, checked as the original asserts them."""
    num_img_colors: int     # C: colours of the input images
    num_filter_colors: int  # fc: colours each filter sees
    num_groups: int         # G
    img_size_y: int
    img_size_x: int
    num_modules_y: int
    num_modules_x: int
    padding_start: int      # ≤ 0
    module_stride: int
    filter_size: int        # fs
    num_filters: int        # F (all groups)
    conv: bool              # tied weights (conv) or one filter bank per module (local)

    @property
    def num_modules(self) -> int:
        return self.num_modules_y * self.num_modules_x

    @property
    def img_pixels(self) -> int:
        return self.img_size_y * self.img_size_x

    @property
    def filter_pixels(self) -> int:
        return self.filter_size * self.filter_size

    @property
    def filters_per_group(self) -> int:
        return self.num_filters // self.num_groups

    @property
    def padded_y(self) -> int:
        """Rows of the zero-padded image that the modules read: (mY−1)·stride + fs."""
        return (self.num_modules_y - 1) * self.module_stride + self.filter_size

    @property
    def padded_x(self) -> int:
        return (self.num_modules_x - 1) * self.module_stride + self.filter_size


def check_common(func: str, g: ConvGeometry) -> None:
    """The asserts every cudaconv2 convolution routine shares (padding, coverage, stride, F)."""
    require(g.num_filters % (16 * g.num_groups) == 0, func,
            f"the number of filters ({g.num_filters}) must be a multiple of 16·groups "
            f"(= {16 * g.num_groups})")
    require(g.padding_start <= 0, func, f"padding_start must be ≤ 0, got {g.padding_start}")
    require(g.module_stride >= 1, func, f"module_stride must be ≥ 1, got {g.module_stride}")
    require(g.module_stride <= g.filter_size, func,
            f"module_stride ({g.module_stride}) must not exceed the filter size ({g.filter_size})")
    for axis, start_cover, size in (("x", g.padded_x, g.img_size_x), ("y", g.padded_y, g.img_size_y)):
        require(g.padding_start + start_cover >= size, func,
                f"the modules must cover the image along {axis}: paddingStart + "
                f"(modules−1)·stride + filterSize = {g.padding_start + start_cover} < {size}")


def group_colors(func: str, num_img_colors: int, num_groups: int,
                 num_filter_colors: int | None) -> int:
    """fc: as given (randSparse), else numImgColors / numGroups, after the asserts on both."""
    require(num_groups >= 1, func, f"num_groups must be ≥ 1, got {num_groups}")
    require(num_img_colors > 0, func, f"num_img_colors must be > 0, got {num_img_colors}")
    if num_filter_colors is not None:
        return num_filter_colors
    require(num_img_colors % num_groups == 0, func,
            f"num_img_colors ({num_img_colors}) must be a multiple of num_groups ({num_groups})")
    return num_img_colors // num_groups


def img_size_x_from_rows(func: str, images_rows: int, num_img_colors: int, img_size_y: int) -> int:
    """imgSizeX from the image matrix (numImgColors > 0), as filterActs/weightActs derive it."""
    require(images_rows % num_img_colors == 0, func,
            f"images has {images_rows} rows, not a multiple of num_img_colors={num_img_colors}")
    img_pixels = images_rows // num_img_colors
    require(img_size_y > 0 and img_pixels % img_size_y == 0, func,
            f"{img_pixels} pixels per colour do not make rows of img_size_y={img_size_y}")
    return img_pixels // img_size_y


def filter_size_from_rows(func: str, rows: int, per_pixel: int) -> int:
    """fs from the filter matrix rows = per_pixel·fs² (the original's int(sqrt(...)) + assert)."""
    require(per_pixel > 0 and rows % per_pixel == 0, func,
            f"filters has {rows} rows, not a multiple of {per_pixel} (modules·filterColors)")
    fs = math.isqrt(rows // per_pixel)
    require(fs * fs * per_pixel == rows, func,
            f"filters has {rows} rows = {per_pixel}·{rows // per_pixel}, and "
            f"{rows // per_pixel} filter pixels is not a square")
    return fs


def check_2d(func: str, name: str, a, rows: int | None = None, cols: int | None = None) -> None:
    require(getattr(a, "ndim", None) == 2, func, f"{name} must be a 2-D matrix, got shape "
                                                  f"{getattr(a, 'shape', None)}")
    if rows is not None:
        require(a.shape[0] == rows, func, f"{name} must have {rows} rows, got {a.shape[0]}")
    if cols is not None:
        require(a.shape[1] == cols, func, f"{name} must have {cols} columns, got {a.shape[1]}")


def check_color_indices(func: str, color_indices, g: ConvGeometry, like):
    """The randSparse connection table as an integer array (numGroups·fc,) on ``like``'s device.

    Its range is checked where it is on the host; a table already on the device (the layer's,
    checked when uploaded) is not read back, as that would wait for the device at every call."""
    xp = get_array_module(like)
    on_host = get_array_module(color_indices) is np
    if on_host:
        host = np.asarray(color_indices).reshape(-1)
        require(bool((host >= 0).all()) and bool((host < g.num_img_colors).all()), func,
                f"color_indices must lie in [0, {g.num_img_colors})")
    idx = xp.asarray(color_indices).reshape(-1).astype(xp.int64)
    require(idx.size == g.num_groups * g.num_filter_colors, func,
            f"color_indices must hold groups·filterColors = "
            f"{g.num_groups * g.num_filter_colors} entries, got {idx.size}")
    return idx


def chunk_size(bytes_per_case: int, num_cases: int) -> int:
    """Cases per im2col slice: within :data:`COLS_BUDGET_BYTES`, slices of equal size."""
    most = max(1, min(num_cases, COLS_BUDGET_BYTES // max(1, bytes_per_case)))
    slices = -(-num_cases // most)
    return -(-num_cases // slices)


# ---------------------------------------------------------------------------------------------
# im2col / col2im over the fs² filter offsets (strided slices; no scatter-add, no case loops)

def pad_images(x, g: ConvGeometry):
    """(C, H, W, n) → (C, padded_y, padded_x, n): paddingStart zeros before, the overhang after."""
    xp = get_array_module(x)
    p = -g.padding_start
    out = xp.zeros((x.shape[0], g.padded_y, g.padded_x, x.shape[3]), dtype=x.dtype)  # (C, Yp, Xp, n)
    h, w = min(g.img_size_y, g.padded_y - p), min(g.img_size_x, g.padded_x - p)
    out[:, p:p + h, p:p + w] = x[:, :h, :w]
    return out


def im2col_into(cols_view, xpad, g: ConvGeometry) -> None:
    """cols_view[c, fy, fx, my, mx, n] = xpad[c, fy + my·stride, fx + mx·stride, n].

    ``cols_view`` is any (C, fs, fs, mY, mX, n) view (often a transposed view of the buffer the
    matmul wants), so the copy lands directly in the order the caller multiplies in.
    """
    s, my, mx = g.module_stride, g.num_modules_y, g.num_modules_x
    for fy in range(g.filter_size):
        for fx in range(g.filter_size):
            cols_view[:, fy, fx] = xpad[:, fy:fy + s * (my - 1) + 1:s, fx:fx + s * (mx - 1) + 1:s]


def col2im(cols_view, g: ConvGeometry, dtype):
    """The adjoint of :func:`pad_images` + :func:`im2col_into`: (C, fs, fs, mY, mX, n) → (C, H, W, n)."""
    xp = get_array_module(cols_view)
    c, n = cols_view.shape[0], cols_view.shape[-1]
    s, my, mx = g.module_stride, g.num_modules_y, g.num_modules_x
    xpad = xp.zeros((c, g.padded_y, g.padded_x, n), dtype=dtype)  # (C, Yp, Xp, n)
    for fy in range(g.filter_size):
        for fx in range(g.filter_size):
            xpad[:, fy:fy + s * (my - 1) + 1:s, fx:fx + s * (mx - 1) + 1:s] += cols_view[:, fy, fx]
    p = -g.padding_start
    out = xp.zeros((c, g.img_size_y, g.img_size_x, n), dtype=dtype)  # (C, H, W, n)
    h, w = min(g.img_size_y, g.padded_y - p), min(g.img_size_x, g.padded_x - p)
    out[:, :h, :w] = xpad[:, p:p + h, p:p + w]
    return out


def block_rows(g: ConvGeometry, n: int, itemsize: int) -> int:
    """Module rows per im2col block: as many as fit in :data:`COLS_BLOCK_BYTES`, at least one."""
    row = g.num_groups * g.num_filter_colors * g.filter_pixels * g.num_modules_x * n * itemsize
    return max(1, min(g.num_modules_y, COLS_BLOCK_BYTES // row))


def conv_row_blocks(xpad, g: ConvGeometry):
    """Tied weights, one block of module rows at a time: yields (r0, r1, cols) with cols the
    (G, fc·fs², (r1−r0)·mX·n) im2col matrix of module rows [r0, r1) of the padded images
    ``xpad`` (G·fc, Yp, Xp, n). All blocks share one buffer of about :data:`COLS_BLOCK_BYTES`:
    use each before asking for the next. The columns of a block, (my, mx, n), are the columns
    [r0·mX·n, r1·mX·n) of the (F, mY·mX·n) output, so products land in place."""
    xp = get_array_module(xpad)
    n = xpad.shape[-1]
    fc, fs, G, s, mx = g.num_filter_colors, g.filter_size, g.num_groups, g.module_stride, g.num_modules_x
    row = G * fc * fs * fs * mx * n                           # elements of one module row
    rows = block_rows(g, n, xpad.dtype.itemsize)
    flat = xp.empty(row * rows, dtype=xpad.dtype)
    jit = fast.usable(xpad)
    for r0 in range(0, g.num_modules_y, rows):
        r1 = min(g.num_modules_y, r0 + rows)
        cols = flat[:row * (r1 - r0)].reshape(G * fc, fs, fs, r1 - r0, mx, n)
        if jit:                                             # the compiled twin of the loop below
            fast.im2col_rows(xpad, cols, r0, s)
            yield r0, r1, cols.reshape(G, fc * fs * fs, (r1 - r0) * mx * n)
            continue
        for fy in range(fs):
            y0 = fy + s * r0
            for fx in range(fs):
                cols[:, fy, fx] = xpad[:, y0:y0 + s * (r1 - r0 - 1) + 1:s, fx:fx + s * (mx - 1) + 1:s]
        yield r0, r1, cols.reshape(G, fc * fs * fs, (r1 - r0) * mx * n)


def col2im_rows_add(xpad, cols, g: ConvGeometry, r0: int, r1: int) -> None:
    """The adjoint of one :func:`conv_row_blocks` block: add cols (G, fc·fs², (r1−r0)·mX·n)
    into the padded image gradient ``xpad`` (G·fc, Yp, Xp, n) at the pixels the rows read."""
    n = xpad.shape[-1]
    fc, fs, G, s, mx = g.num_filter_colors, g.filter_size, g.num_groups, g.module_stride, g.num_modules_x
    c6 = cols.reshape(G * fc, fs, fs, r1 - r0, mx, n)
    if fast.usable(xpad, c6):                               # the compiled twin of the loop below
        fast.col2im_rows_add(xpad, c6, r0, s)
        return
    for fy in range(fs):
        y0 = fy + s * r0
        for fx in range(fs):
            xpad[:, y0:y0 + s * (r1 - r0 - 1) + 1:s, fx:fx + s * (mx - 1) + 1:s] += c6[:, fy, fx]


def unpad_images(xpad, g: ConvGeometry):
    """(C, Yp, Xp, n) → the (C, H, W, n) image inside the padding (the adjoint of the padding)."""
    xp = get_array_module(xpad)
    p = -g.padding_start
    c, n = xpad.shape[0], xpad.shape[-1]
    h, w = min(g.img_size_y, g.padded_y - p), min(g.img_size_x, g.padded_x - p)
    if p == 0 and xpad.shape[1:3] == (g.img_size_y, g.img_size_x):
        return xpad                                   # no padding, no overhang
    whole = (h, w) == (g.img_size_y, g.img_size_x)
    out = (xp.empty if whole else xp.zeros)((c, g.img_size_y, g.img_size_x, n), dtype=xpad.dtype)
    out[:, :h, :w] = xpad[:, p:p + h, p:p + w]
    return out


def local_cols(x, g: ConvGeometry):
    """Untied weights: (G·fc, H, W, n) → cols (M, G, fc·fs², n), ready for a per-module matmul."""
    xp = get_array_module(x)
    n = x.shape[-1]
    fc, fs, G = g.num_filter_colors, g.filter_size, g.num_groups
    cols = xp.empty((g.num_modules_y, g.num_modules_x, G * fc, fs, fs, n), dtype=x.dtype)
    im2col_into(cols.transpose(2, 3, 4, 0, 1, 5), pad_images(x, g), g)
    return cols.reshape(g.num_modules, G, fc * fs * fs, n)  # (M, G, K, n)


def images_4d(images, colors: int, g: ConvGeometry):
    """(colors·imgPixels, N) → (colors, H, W, N) view."""
    return images.reshape(colors, g.img_size_y, g.img_size_x, images.shape[1])


# ---------------------------------------------------------------------------------------------
# filterActs

def make_geometry(func: str, images, filters, img_size_y, num_modules_y, num_modules_x,
                  padding_start, module_stride, num_img_colors, num_groups, conv,
                  num_filter_colors=None) -> ConvGeometry:
    """Derive and check the sizes of a filterActs call (``_filterActs`` / ``_filterActsSparse``)."""
    check_2d(func, "images", images)
    check_2d(func, "filters", filters)
    num_filter_colors = group_colors(func, num_img_colors, num_groups, num_filter_colors)
    img_size_x = img_size_x_from_rows(func, images.shape[0], num_img_colors, img_size_y)
    num_modules = num_modules_y * num_modules_x
    require(num_modules >= 1, func, "there must be at least one module")
    fs = filter_size_from_rows(func, filters.shape[0],
                               (1 if conv else num_modules) * num_filter_colors)
    g = ConvGeometry(num_img_colors, num_filter_colors, num_groups, img_size_y, img_size_x,
                     num_modules_y, num_modules_x, padding_start, module_stride, fs,
                     filters.shape[1], conv)
    check_common(func, g)
    return g


def check_dense_colors(func: str, g: ConvGeometry, colors_multiple: int, fc_multiple: int) -> None:
    """The dense routines' colour asserts, e.g. cuda-convnet-r561/src/cudaconv2/filter_acts.cu:577-578:
    without groups ≤ 3
    colours or a multiple of ``colors_multiple``; with groups fc a multiple of ``fc_multiple``."""
    def multiple(k: int) -> str:
        return "even" if k == 2 else f"a multiple of {k}"

    C, fc = g.num_img_colors, g.num_filter_colors
    require(g.num_groups > 1 or C <= 3 or C % colors_multiple == 0, func,
            f"the number of image colours must be ≤ 3 or {multiple(colors_multiple)}, got {C}")
    require(g.num_groups == 1 or fc % fc_multiple == 0, func,
            f"with groups the colours per group must be {multiple(fc_multiple)}, got {fc}")


def check_sparse_colors(func: str, g: ConvGeometry, fc_multiple: int) -> None:
    """The randSparse asserts (cuda-convnet-r561/src/cudaconv2/: filter_acts.cu:1232-1236,
    img_acts.cu:1944-1948, weight_acts.cu:1002-1006)."""
    C, fc, G = g.num_img_colors, g.num_filter_colors, g.num_groups
    require(G > 1, func, "the sparse (randSparse) routines need more than one group")
    require(fc > 0 and C % fc == 0, func,
            f"num_img_colors ({C}) must be a multiple of num_filter_colors ({fc})")
    require((fc * G) % C == 0, func,
            f"groups·filterColors ({G * fc}) must be a multiple of num_img_colors ({C})")
    require(fc % fc_multiple == 0, func,
            f"num_filter_colors ({fc}) must be a multiple of {fc_multiple}")


def _filter_acts(x4, filters, g: ConvGeometry):
    """(G·fc, H, W, N) images, checked geometry → (F·numModules, N)."""
    xp = get_array_module(x4, filters)
    N = x4.shape[-1]
    G, F, Fg, M = g.num_groups, g.num_filters, g.filters_per_group, g.num_modules
    K = g.num_filter_colors * g.filter_pixels
    dtype = xp.result_type(x4.dtype, filters.dtype)
    x4, filters = x4.astype(dtype, copy=False), filters.astype(dtype, copy=False)
    out = xp.empty((F, M, N), dtype=dtype)  # (F, M, N)
    if g.conv:
        w = filters.reshape(K, G, Fg).transpose(1, 2, 0)  # (G, Fg, K)
    else:
        w = filters.reshape(M, K, G, Fg).transpose(0, 2, 3, 1)  # (M, G, Fg, K)
    if g.conv and device_kernels.on_device(x4):
        return _filter_acts_device(xp, x4, filters, w, out, g)
    step = chunk_size(K * G * M * dtype.itemsize, N)
    mx = g.num_modules_x
    out3 = out.reshape(G, Fg, M * N)                        # a view: out is contiguous
    for n0 in range(0, N, step):
        x = x4[..., n0:n0 + step]
        n = x.shape[-1]
        if g.conv:
            for r0, r1, cols in conv_row_blocks(pad_images(x, g), g):   # cols (G, K, rows·mX·n)
                if n == N:                                  # straight into out's columns
                    xp.matmul(w, cols, out=out3[:, :, r0 * mx * N:r1 * mx * N])
                else:
                    out[:, r0 * mx:r1 * mx, n0:n0 + n] = xp.matmul(w, cols).reshape(F, -1, n)
        else:
            y = xp.matmul(w, local_cols(x, g))  # (M, G, Fg, n)
            out[:, :, n0:n0 + n] = y.reshape(M, F, n).transpose(1, 0, 2)
    return out.reshape(F * M, N)


def device_step(g: ConvGeometry, n: int, itemsize: int) -> int:
    """Cases per device im2col matrix: all of them while it stays within
    :data:`port.device_kernels.DEVICE_COLS_BUDGET_BYTES`, else equal slices."""
    per_case = g.num_groups * g.num_filter_colors * g.filter_pixels * g.num_modules
    most = max(1, min(n, device_kernels.DEVICE_COLS_BUDGET_BYTES // max(1, per_case * itemsize)))
    slices = -(-n // most)
    return -(-n // slices)


def _conv_product(xp, filters, cols, g: ConvGeometry, out2):
    """out2 (F, X) = per group Wᵀ·cols with cols (G·K, X): one GEMM on contiguous operands (the
    filters' transpose is F-contiguous; with groups, one copy of the (G, Fg, K) weights and a
    batched GEMM)."""
    G, Fg, K = g.num_groups, g.filters_per_group, g.num_filter_colors * g.filter_pixels
    if G == 1:
        xp.matmul(filters.T, cols, out=out2)
    else:
        w = xp.ascontiguousarray(filters.reshape(K, G, Fg).transpose(1, 2, 0))    # (G, Fg, K)
        xp.matmul(w, cols.reshape(G, K, -1), out=out2.reshape(G, Fg, -1))


def _filter_acts_device(xp, x4, filters, w, out, g: ConvGeometry):
    """The device's convolution: one im2col gather (all groups, whole minibatch while it fits
    the device budget), one GEMM straight into the output (Port-only: blocking sized for a GPU,
    where the CPU path blocks for its cache)."""
    N = x4.shape[-1]
    F, M = g.num_filters, g.num_modules
    step = device_step(g, N, x4.dtype.itemsize)
    if step == N:
        _conv_product(xp, filters, device_kernels.im2col(x4, g), g, out.reshape(F, M * N))
        return out.reshape(F * M, N)
    for n0 in range(0, N, step):
        n = min(step, N - n0)
        part = xp.empty((F, M * n), dtype=out.dtype)
        _conv_product(xp, filters, device_kernels.im2col(x4, g, n0, n), g, part)
        out[:, :, n0:n0 + n] = part.reshape(F, M, n)
    return out.reshape(F * M, N)


def conv_filter_acts(images, filters, img_size_y, num_modules_y, num_modules_x, padding_start,
                     module_stride, num_img_colors, num_groups):
    """Convolution forward: (C·imgPixels, N) images, (fc·fs², F) filters → (F·modules, N).

    Ports: cuda-convnet-r561/src/cudaconv2/filter_acts.cu:565-613 _filterActs
    Ports: cuda-convnet-r561/src/cudaconv2/filter_acts.cu:1182-1193 convFilterActs
    Ports: cuda-convnet-r561/src/cudaconv2/filter_acts.cu:57-185 filterActs_YxX_color
    """
    func = "conv_filter_acts"
    g = make_geometry(func, images, filters, img_size_y, num_modules_y, num_modules_x,
                      padding_start, module_stride, num_img_colors, num_groups, conv=True)
    check_dense_colors(func, g, 2, 2)  # cuda-convnet-r561/src/cudaconv2/filter_acts.cu:577-578
    return _filter_acts(images_4d(images, num_img_colors, g), filters, g)


def local_filter_acts(images, filters, img_size_y, num_modules_y, num_modules_x, padding_start,
                      module_stride, num_img_colors, num_groups):
    """Locally-connected forward: filters (modules·fc·fs², F), one bank per module → (F·modules, N).

    Ports: cuda-convnet-r561/src/cudaconv2/filter_acts.cu:1195-1206 localFilterActs
    """
    func = "local_filter_acts"
    g = make_geometry(func, images, filters, img_size_y, num_modules_y, num_modules_x,
                      padding_start, module_stride, num_img_colors, num_groups, conv=False)
    check_dense_colors(func, g, 2, 2)  # cuda-convnet-r561/src/cudaconv2/filter_acts.cu:577-578
    return _filter_acts(images_4d(images, num_img_colors, g), filters, g)


def gather_colors(images, idx, g: ConvGeometry):
    """randSparse: (C·imgPixels, N) → (G·fc, H, W, N) with group g reading idx[g·fc:(g+1)·fc]."""
    x = images.reshape(g.num_img_colors, g.img_pixels, images.shape[1])
    return images_4d(x[idx].reshape(-1, images.shape[1]), idx.size, g)


def conv_filter_acts_sparse(images, filters, color_indices, img_size_y, num_modules_y,
                            num_modules_x, padding_start, module_stride, num_img_colors,
                            num_filter_colors, num_groups):
    """Convolution forward with random sparse connectivity between groups and colours.

    Ports: cuda-convnet-r561/src/cudaconv2/filter_acts.cu:1221-1272 _filterActsSparse
    Ports: cuda-convnet-r561/src/cudaconv2/filter_acts.cu:1416-1429 convFilterActsSparse
    Ports: cuda-convnet-r561/src/cudaconv2/filter_acts.cu:400-440 filterActs_YxX_sparse_random
    """
    func = "conv_filter_acts_sparse"
    g = make_geometry(func, images, filters, img_size_y, num_modules_y, num_modules_x,
                      padding_start, module_stride, num_img_colors, num_groups, conv=True,
                      num_filter_colors=num_filter_colors)
    check_sparse_colors(func, g, 2)
    idx = check_color_indices(func, color_indices, g, images)
    return _filter_acts(gather_colors(images, idx, g), filters, g)


def local_filter_acts_sparse(images, filters, color_indices, img_size_y, num_modules_y,
                             num_modules_x, padding_start, module_stride, num_img_colors,
                             num_filter_colors, num_groups):
    """Locally-connected forward with random sparse connectivity.

    Ports: cuda-convnet-r561/src/cudaconv2/filter_acts.cu:1431-1444 localFilterActsSparse
    """
    func = "local_filter_acts_sparse"
    g = make_geometry(func, images, filters, img_size_y, num_modules_y, num_modules_x,
                      padding_start, module_stride, num_img_colors, num_groups, conv=False,
                      num_filter_colors=num_filter_colors)
    check_sparse_colors(func, g, 2)
    idx = check_color_indices(func, color_indices, g, images)
    return _filter_acts(gather_colors(images, idx, g), filters, g)
