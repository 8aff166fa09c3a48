"""Pooling, normalization and image operations: adjoint pairs, the original's window rules."""
from __future__ import annotations

import numpy as np
import pytest

from port import cudaconv2 as cc
from tests.port.cudaconv2.helpers import check_adjoint


def pool_outputs(img, size, start, stride):
    """layer.py:1164: ⌈(img − start − sizeX) / stride⌉ + 1."""
    return -(-(img - start - size) // stride) + 1


# (channels, img, size, start, stride): plain, overhanging, negative start (clipped both sides)
POOLS = [(16, 9, 3, 0, 2), (16, 10, 3, 0, 2), (8, 8, 4, -1, 3), (16, 7, 5, -2, 1), (4, 11, 2, 1, 2)]


@pytest.mark.parametrize("C,S,size,start,stride", POOLS)
@pytest.mark.parametrize("pooler", ["max", "avg", "maxabs"])
def test_pool_and_undo_are_adjoint(C, S, size, start, stride, pooler):
    rng = np.random.default_rng(10)
    O = pool_outputs(S, size, start, stride)
    x = rng.standard_normal((C * S * S, 3))
    y = cc.conv_local_pool(x, C, size, start, stride, O, pooler)
    g = rng.standard_normal(y.shape)
    if pooler == "avg":
        gi = cc.conv_local_avg_undo(g, size, start, stride, O, S)
    else:   # maxabs uses the max undo too (layer.cu:1333)
        gi = cc.conv_local_max_undo(x, g, y, size, start, stride, O)
    check_adjoint(lambda v: cc.conv_local_pool(v, C, size, start, stride, O, pooler), gi, x, g, rng)


@pytest.mark.parametrize("C,S,size,start,stride", POOLS)
def test_pool_windows_are_clipped_as_the_kernel_loops(C, S, size, start, stride):
    rng = np.random.default_rng(11)
    O = pool_outputs(S, size, start, stride)
    x = rng.standard_normal((C * S * S, 2))
    x4 = x.reshape(C, S, S, 2)
    ref = {p: np.zeros((C, O, O, 2)) for p in ("max", "avg", "maxabs")}
    for oy in range(O):
        for ox in range(O):
            y0, x0 = start + oy * stride, start + ox * stride
            win = x4[:, max(0, y0):min(S, y0 + size), max(0, x0):min(S, x0 + size)]
            win = win.reshape(C, -1, 2)
            ref["max"][:, oy, ox] = win.max(1)
            ref["avg"][:, oy, ox] = win.sum(1) / win.shape[1]
            ref["maxabs"][:, oy, ox] = np.take_along_axis(win, np.abs(win).argmax(1)[:, None], 1)[:, 0]
    for pooler, r in ref.items():
        y = cc.conv_local_pool(x, C, size, start, stride, O, pooler)
        np.testing.assert_allclose(y.reshape(r.shape), r, rtol=1e-13, err_msg=pooler)


def test_pool_accepts_the_call_without_num_filters():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((48 * 55 * 55, 2)).astype(np.float32)
    a = cc.conv_local_pool(x, 48, 3, 0, 2, 27, "max")
    np.testing.assert_array_equal(cc.conv_local_pool(x, 3, 0, 2, 27, "max"), a)
    np.testing.assert_array_equal(cc.conv_local_pool(x, 3, 0, 2, 27, "max", num_filters=48), a)
    with pytest.raises(ValueError, match="pooler"):
        cc.conv_local_pool(x, 48, 3, 0, 2, 27, "rand")


def test_max_undo_sends_the_gradient_to_every_tied_input():
    # two equal maxima in one window both receive the output's gradient (img == maxAct)
    x = np.zeros((16 * 4, 1))
    x[:4, 0] = [5.0, 1.0, 5.0, 2.0]          # channel 0, 2×2 image, one 2×2 window
    y = cc.conv_local_pool(x, 16, 2, 0, 2, 1, "max")
    g = np.ones_like(y)
    gi = cc.conv_local_max_undo(x, g, y, 2, 0, 2, 1)
    assert gi[:4, 0].tolist() == [1.0, 0.0, 1.0, 0.0]


def test_maxabs_keeps_the_sign_and_the_last_of_equal_magnitudes():
    x = np.zeros((16 * 4, 2))
    x[:4, 0] = [1.0, -3.0, 2.0, 0.5]
    x[:4, 1] = [3.0, 1.0, -3.0, 0.0]          # |3| twice: the later one in scan order wins
    y = cc.conv_local_pool(x, 16, 2, 0, 2, 1, "maxabs")
    assert y[0].tolist() == [-3.0, -3.0]
    # layer.cu:1333: maxabs uses the max undo, which matches values, not magnitudes
    gi = cc.conv_local_max_undo(x, np.ones_like(y), y, 2, 0, 2, 1)
    assert gi[:4, 1].tolist() == [0.0, 0.0, 1.0, 0.0]


def test_avg_undo_divides_by_the_clipped_area():
    # 3×3 windows, stride 2 on a 4×4 image: the second window row/column is clipped to 2 pixels
    g = np.zeros((16 * 4, 1))
    g[3, 0] = 1.0                              # output (1, 1) of channel 0: a 2×2 clipped window
    gi = cc.conv_local_avg_undo(g, 3, 0, 2, 2, 4).reshape(16, 4, 4)
    assert np.allclose(gi[0, 2:, 2:], 0.25) and gi[0].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("size", [3, 5, 4])
def test_rnorm_and_undo_are_adjoint(size):
    rng = np.random.default_rng(13)
    C, S = 16, 6
    x = rng.standard_normal((C * S * S, 3))
    alpha, beta = 0.3 / size ** 2, 0.75
    y, d = cc.conv_response_norm(x, C, size, alpha, beta)
    g = rng.standard_normal(y.shape)
    gi = cc.conv_response_norm_undo(g, d, x, y, C, size, alpha, beta)
    check_adjoint(lambda v: cc.conv_response_norm(v, C, size, alpha, beta)[0], gi, x, g, rng)


def test_rnorm_window_is_clipped_and_k_is_one():
    rng = np.random.default_rng(14)
    C, S, size = 8, 5, 3
    x = rng.standard_normal((C * S * S, 1))
    y, d = cc.conv_response_norm(x, C, size, 0.1, 0.5)
    x4 = x.reshape(C, S, S)
    # pixel (0, 0): window rows/cols [-1, 2) clipped to [0, 2)
    assert d.reshape(C, S, S)[2, 0, 0] == pytest.approx(1 + 0.1 * (x4[2, :2, :2] ** 2).sum())
    assert y.reshape(C, S, S)[2, 0, 0] == pytest.approx(x4[2, 0, 0] * d.reshape(C, S, S)[2, 0, 0] ** -0.5)


def test_cnorm_undo_is_the_gradient_with_the_mean_held_fixed():
    rng = np.random.default_rng(15)
    C, S, size = 16, 6, 3
    x = rng.standard_normal((C * S * S, 2))
    md = x - cc.conv_local_pool(x, C, size, -(size // 2), 1, S, "avg")
    alpha, beta = 0.2 / size ** 2, 0.75
    y, d = cc.conv_contrast_norm(x, md, C, size, alpha, beta)
    assert not np.allclose(y, md * d ** -beta)   # the output is x·d^−β, not (x − mean)·d^−β
    np.testing.assert_allclose(y, x * d ** -beta)
    g = rng.standard_normal(y.shape)
    gi = cc.conv_contrast_norm_undo(g, d, md, y, C, size, alpha, beta)
    # moving x and meanDiffs together by δ: the undo is ∂/∂x + ∂/∂meanDiffs
    check_adjoint(lambda v: cc.conv_contrast_norm(v, md + (v - x), C, size, alpha, beta)[0],
                  gi, x, g, rng)


@pytest.mark.parametrize("size,blocked,min_div", [(5, False, 2.0), (4, False, 1.0), (5, True, 2.0),
                                                  (3, True, 1.0), (16, False, 1.5)])
def test_crossmap_norm_and_undo_are_adjoint(size, blocked, min_div):
    rng = np.random.default_rng(16)
    C, S = 32, 3
    x = rng.standard_normal((C * S * S, 3))
    alpha, beta = 0.5 / size, 0.75
    y, d = cc.conv_response_norm_cross_map(x, C, size, alpha, beta, min_div, blocked)
    g = rng.standard_normal(y.shape)
    gi = cc.conv_response_norm_cross_map_undo(g, d, x, y, C, size, alpha, beta, blocked)
    check_adjoint(lambda v: cc.conv_response_norm_cross_map(v, C, size, alpha, beta, min_div,
                                                            blocked)[0], gi, x, g, rng)


def test_crossmap_windows_and_min_div():
    rng = np.random.default_rng(17)
    C = 48
    x = rng.standard_normal((C, 1))
    _, d = cc.conv_response_norm_cross_map(x, C, 5, 0.1, 0.75, 2.0, False)
    assert d[0, 0] == pytest.approx(2.0 + 0.1 * (x[0:3, 0] ** 2).sum())       # [−2, 3) ∩ [0, C)
    assert d[10, 0] == pytest.approx(2.0 + 0.1 * (x[8:13, 0] ** 2).sum())
    assert d[47, 0] == pytest.approx(2.0 + 0.1 * (x[45:48, 0] ** 2).sum())
    _, d = cc.conv_response_norm_cross_map(x, C, 5, 0.1, 0.75, 1.0, True)
    assert d[7, 0] == pytest.approx(1.0 + 0.1 * (x[5:10, 0] ** 2).sum())      # block [5, 10)
    assert d[46, 0] == pytest.approx(1.0 + 0.1 * (x[45:48, 0] ** 2).sum())    # last block clipped
    with pytest.raises(ValueError, match="multiple of 16"):
        cc.conv_response_norm_cross_map(x[:40], 40, 5, 0.1, 0.75, 1.0, False)
    with pytest.raises(ValueError, match="size must be"):
        cc.conv_response_norm_cross_map(x, C, 49, 0.1, 0.75, 1.0, False)


@pytest.mark.parametrize("width", [3, 5, 7, 9])
def test_blur_is_separable_correlation_and_self_adjoint(width):
    rng = np.random.default_rng(18)
    C, S, r = 3, 11, width // 2
    taps = np.exp(-((np.arange(width) - r) ** 2) / 4.0)
    filt = (taps / taps.sum())[None, :]
    x = rng.standard_normal((C * S * S, 2))
    h = cc.conv_gaussian_blur(x, filt, True, C).reshape(C, S, S, 2)
    xp = np.pad(x.reshape(C, S, S, 2), ((0, 0), (0, 0), (r, r), (0, 0)))
    ref = sum(filt[0, k] * xp[:, :, k:k + S] for k in range(width))
    np.testing.assert_allclose(h, ref, atol=1e-13)
    blur = lambda v: cc.conv_gaussian_blur(cc.conv_gaussian_blur(v, filt, True, C), filt, False, C)  # noqa: E731
    g = rng.standard_normal(x.shape)
    check_adjoint(blur, blur(g), x, g, rng)   # layer.cu:1470-1473: the backward is the same two passes
    with pytest.raises(ValueError, match="radius"):
        cc.conv_gaussian_blur(x, np.ones((1, 11)), True, C)


def test_bed_of_nails_and_undo():
    rng = np.random.default_rng(19)
    C, S, stride = 3, 13, 4
    O = -(-S // stride)
    start = (S - stride * (O - 1)) // 2            # layer.py:422-423
    x = rng.standard_normal((C * S * S, 2))
    y = cc.conv_bed_of_nails(x, C, S, start, stride)
    assert y.shape == (C * O * O, 2)
    np.testing.assert_array_equal(y.reshape(C, O, O, 2),
                                  x.reshape(C, S, S, 2)[:, start::stride, start::stride][:, :O, :O])
    g = rng.standard_normal(y.shape)
    check_adjoint(lambda v: cc.conv_bed_of_nails(v, C, S, start, stride),
                  cc.conv_bed_of_nails_undo(g, C, S, start, stride), x, g, rng)
    with pytest.raises(ValueError, match="stride"):
        cc.conv_bed_of_nails(x, C, S, 0, 1)


def test_reflect_horizontal_and_crop():
    rng = np.random.default_rng(20)
    x = rng.standard_normal((3 * 25, 2))
    y = cc.conv_reflect_horizontal(x, 3, 5)
    np.testing.assert_array_equal(y.reshape(3, 5, 5, 2), x.reshape(3, 5, 5, 2)[:, :, ::-1])
    np.testing.assert_array_equal(cc.conv_reflect_horizontal(y, 3, 5), x)
    with pytest.raises(ValueError, match="1..3"):
        cc.conv_reflect_horizontal(np.zeros((4 * 25, 1)), 4, 5)
    c = cc.conv_crop(x, 5, 3, 1, 2)
    np.testing.assert_array_equal(c.reshape(3, 3, 3, 2), x.reshape(3, 5, 5, 2)[:, 1:4, 2:5])
    with pytest.raises(ValueError, match="does not fit"):
        cc.conv_crop(x, 5, 3, 3, 0)


def test_resize_bilinear_follows_the_kernel_coordinates():
    rng = np.random.default_rng(21)
    S = 8
    x = rng.standard_normal((2 * S * S, 3)).astype(np.float32)
    same = cc.conv_resize_bilinear(x, S, S, 1.0).reshape(2, S, S, 3)
    x4 = x.reshape(2, S, S, 3)
    np.testing.assert_allclose(same[:, :S - 1, :S - 1], x4[:, :S - 1, :S - 1], atol=1e-6)
    # the last row/column is read at S − 1.01 ("slight distortions at the edges")
    np.testing.assert_allclose(same[:, 0, S - 1], 0.01 * x4[:, 0, S - 2] + 0.99 * x4[:, 0, S - 1],
                               atol=1e-5)
    half = cc.conv_resize_bilinear(x, S, S // 2, 2.0).reshape(2, S // 2, S // 2, 3)
    # target px 1 reads source px·scale + imgSize/2 − (tgtSize/2)·scale = 2 + 4 − 4 = 2
    np.testing.assert_allclose(half[:, 1, 1], x4[:, 2, 2], atol=1e-6)


def _fmaxf(a, b):
    """CUDA's fmaxf: the larger of a and b; a NaN argument gives the other one."""
    return b if a != a else a if b != b else max(a, b)


def _max_pool_ref(x4, size, start, stride, outputs):
    """kLocalPool with MaxPooler from their lines (cuda-convnet-r561/include/cudaconv2/
    conv_util.cuh:84-95, 126-190): prod = −2e38 as a float, then prod = fmaxf(prod, img) over
    the window's pixels inside the image."""
    C, S, _, N = x4.shape
    out = np.empty((C, outputs, outputs, N), x4.dtype)
    for c, oy, ox, n in np.ndindex(out.shape):
        prod = x4.dtype.type(-2e38)
        for y in range(max(0, start + oy * stride), min(S, start + oy * stride + size)):
            for x in range(max(0, start + ox * stride), min(S, start + ox * stride + size)):
                prod = _fmaxf(prod, x4[c, y, x, n])
        out[c, oy, ox, n] = prod
    return out


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("C,S,size,start,stride", POOLS[:4])
def test_max_pool_is_fmaxf_from_minus_2e38(monkeypatch, jit, C, S, size, start, stride):
    """NaN is skipped (a window of NaN gives −2e38) and nothing is below −2e38 (−inf, −3e38 give
    it), on the NumPy path and in the Numba kernel."""
    from port.cudaconv2 import fast
    if jit and not fast.ENABLED:
        pytest.skip("Numba is not installed or ALEXNET_NO_JIT is set")
    monkeypatch.setattr(fast, "ENABLED", jit)
    monkeypatch.setattr(fast, "PARALLEL_MIN_ELEMENTS", 0)
    rng = np.random.default_rng(24)
    O = pool_outputs(S, size, start, stride)
    x = rng.standard_normal((C, S, S, 4)).astype(np.float32)
    x[0] = np.nan                                            # every window of map 0: NaN only
    x[1] = -np.inf
    x[2] = np.float32(-3e38)
    x[3, ::2] = np.nan                                       # NaN beside numbers
    x[4, 1::2] = -np.inf
    x[5, :, :, 0] = np.inf
    got = cc.conv_local_pool(x.reshape(-1, 4), C, size, start, stride, O, "max").reshape(C, O, O, 4)
    ref = _max_pool_ref(x, size, start, stride, O)
    np.testing.assert_array_equal(got, ref)
    base = np.float32(-2e38)
    assert not np.isnan(got).any() and got.min() == base
    assert (got[:3] == base).all() and (got[5, :, :, 0] == np.inf).all()
    assert (got[3] > base).any() and (got[4] > base).all()


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("C,S,size,start,stride", POOLS[:4])
def test_max_undo_is_the_kernels_sum_of_products(monkeypatch, jit, C, S, size, start, stride):
    """kLocalMaxUndo's prod += (img == ma)·mg over the windows holding the pixel
    (cuda-convnet-r561/src/cudaconv2/conv_util.cu:1545-1559): an inf or NaN gradient gives NaN
    (0·inf, 0·NaN) at the window's pixels that are not its max, inf at the max; each pixel's
    terms added in the kernel's order (bit for bit where a pixel is the max of several windows)."""
    from port.cudaconv2 import fast
    if jit and not fast.ENABLED:
        pytest.skip("Numba is not installed or ALEXNET_NO_JIT is set")
    monkeypatch.setattr(fast, "ENABLED", jit)
    rng = np.random.default_rng(25)
    O = pool_outputs(S, size, start, stride)
    N = 3
    x = np.maximum(rng.standard_normal((C, S, S, N)), 0).astype(np.float32)   # ties at 0
    acts = cc.conv_local_pool(x.reshape(-1, N), C, size, start, stride, O, "max").reshape(C, O, O, N)
    g = rng.standard_normal(acts.shape).astype(np.float32)
    g[0, 0, 0, 0] = np.inf
    g[1, O - 1, O - 1, 1] = np.nan
    g[2, 0, O - 1, 2] = -np.inf
    ref = np.zeros(x.shape, np.float32)
    with np.errstate(invalid="ignore"):
        for c, oy, ox, n in np.ndindex(acts.shape):     # each pixel's outputs in ascending order
            for y in range(max(0, start + oy * stride), min(S, start + oy * stride + size)):
                for xx in range(max(0, start + ox * stride), min(S, start + ox * stride + size)):
                    ref[c, y, xx, n] += np.float32(x[c, y, xx, n] == acts[c, oy, ox, n]) * g[c, oy, ox, n]
        got = cc.conv_local_max_undo(x.reshape(-1, N), g.reshape(-1, N), acts.reshape(-1, N),
                                     size, start, stride, O).reshape(x.shape)
    np.testing.assert_array_equal(got, ref)
    assert np.isnan(got[0, :, :, 0]).any() and np.isnan(got[1, :, :, 1]).any()
    assert np.isnan(got[2, :, :, 2]).any() and not np.isnan(got[3:]).any()


def _fmaf_ref(a, b, c):
    """fmaf written from its definition: the exact a·b + c rounded once to float32 (nearest, ties
    to even), by exact rationals."""
    from fractions import Fraction
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    r = np.float32(float(exact))
    best = None
    for cand in (np.nextafter(r, np.float32(-np.inf)), r, np.nextafter(r, np.float32(np.inf))):
        key = (abs(Fraction(float(cand)) - exact), int(np.float32(cand).view(np.uint32)) & 1)
        if best is None or key < best[0]:
            best = (key, cand)
    return np.float32(best[1])


def _resize_ref(x4, img, tgt, scale):
    """kResizeBilinear per pixel from its lines (cuda-convnet-r561/src/cudaconv2/conv_util.cu:
    310-334, 2416-2431): scale a float, centerScale = imgSize·0.5 − tgtSize·0.5·scale in double
    passed as a float, nvcc's fused multiply-adds, float32 throughout."""
    f = np.float32
    s = f(scale)
    center = f(img * 0.5 - tgt * 0.5 * float(s))
    C, _, _, N = x4.shape
    out = np.empty((C, tgt, tgt, N), np.float32)
    for py in range(tgt):
        for px in range(tgt):
            sx = max(f(0), min(f(img) - f(1.01), _fmaf_ref(f(px), s, center)))
            sy = max(f(0), min(f(img) - f(1.01), _fmaf_ref(f(py), s, center)))
            u, w = f(np.floor(sx + f(1)) - sx), f(sy - np.floor(sy))
            y0, x0 = int(np.floor(sy)), int(np.floor(sx))
            for c in range(C):
                for n in range(N):
                    v0, v1 = x4[c, y0, x0, n], x4[c, y0, x0 + 1, n]
                    v2, v3 = x4[c, y0 + 1, x0, n], x4[c, y0 + 1, x0 + 1, n]
                    c0 = _fmaf_ref(u, f(v0 - v1), v1)
                    c1 = _fmaf_ref(u, f(v2 - v3), v3)
                    out[c, py, px, n] = _fmaf_ref(w, f(c1 - c0), c0)
    return out


def test_fused_multiply_add_rounds_once():
    """The port's fmaf against its definition, on random triples and on a tie that rounding twice
    gets wrong: (1 + 2⁻¹²)² = 1 + 2⁻¹¹ + 2⁻²⁴ is a float32 midpoint, so + 2⁻⁸⁰ rounds up once,
    but to even (down) through float64."""
    from port.cudaconv2.conv_util import _fmaf
    rng = np.random.default_rng(23)
    a, b = rng.standard_normal((2, 300)).astype(np.float32)
    c = (rng.standard_normal(300) * 10.0 ** rng.integers(-12, 3, 300)).astype(np.float32)
    a[0] = b[0] = np.float32(1 + 2 ** -12)
    c[0] = np.float32(2 ** -80)
    got = _fmaf(np, a, b, c)
    ref = np.array([_fmaf_ref(*t) for t in zip(a, b, c)], np.float32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32))
    assert got[0] == np.float32(1 + 2 ** -11 + 2 ** -23) != np.float32(np.float64(a[0]) * b[0] + c[0])


@pytest.mark.parametrize("img, tgt, scale", [(8, 6, 1.3), (18, 15, 1.2), (33, 30, 1.1), (7, 9, 0.7)])
def test_resize_bilinear_rounds_as_the_kernel(img, tgt, scale):
    """Bit for bit against the kernel's arithmetic, where a coordinate lands one rounding from an
    integer: at 8 → 6 by 1.3 target px 3 reads 3·1.3f + 0.10000014 = 4.0 (from the double scale's
    centre 0.1: 3.9999998, a pixel to the left); at 18 → 15 by 1.2 px 5 reads 6.0 fused
    (5.9999995 rounded twice)."""
    rng = np.random.default_rng(22)
    x = rng.standard_normal((2 * img * img, 3)).astype(np.float32)
    got = cc.conv_resize_bilinear(x, img, tgt, scale).reshape(2, tgt, tgt, 3)
    ref = _resize_ref(x.reshape(2, img, img, 3), img, tgt, scale)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32))
    if (img, tgt) == (8, 6):
        x4 = x.reshape(2, img, img, 3)
        # u = 1, w = 0: pixel 4 itself (up to the rounding of u·(a − b) + b)
        np.testing.assert_allclose(got[:, 3, 3], x4[:, 4, 4], rtol=1e-6, atol=1e-6)
    x64 = cc.conv_resize_bilinear(x.astype(np.float64), img, tgt, scale)    # same coordinates
    np.testing.assert_allclose(x64.reshape(got.shape), got, rtol=1e-5, atol=1e-5)


def test_rgb_to_yuv_and_lab():
    px = np.array([[0.2], [0.5], [0.9]])
    R, G, B = px[:, 0]
    yuv = cc.conv_rgb_to_yuv(px)[:, 0]
    assert yuv[0] == pytest.approx(0.2126 * R + 0.7152 * G + 0.0722 * B)
    assert yuv[1] == pytest.approx(-0.09991 * R - 0.33609 * G + 0.436 * B)
    assert yuv[2] == pytest.approx(0.615 * R - 0.55861 * G - 0.05639 * B)
    f = lambda t: t ** 0.3333 if t > 0.0088564517 else 7.787037 * t + 0.13793103  # noqa: E731
    X, Y, Z = f(0.49 * R + 0.31 * G + 0.2 * B), f(0.17697 * R + 0.8124 * G + 0.01063 * B), f(0.01 * G + 0.99 * B)
    lab = cc.conv_rgb_to_lab(px, False)[:, 0]
    assert lab.tolist() == pytest.approx([116 * Y - 16, 500 * (X - Y), 200 * (Y - Z)])
    assert cc.conv_rgb_to_lab(px, True)[0, 0] == pytest.approx(116 * Y - 66)
    dark = np.full((3, 1), 0.001)                   # the linear branch of f
    assert cc.conv_rgb_to_lab(dark, False)[0, 0] == pytest.approx(116 * (7.787037 * 0.001 + 0.13793103) - 16, rel=1e-6)


def test_tica_and_its_gradient():
    rng = np.random.default_rng(22)
    C, S, size = 16, 5, 3
    x = rng.standard_normal((C * S * S, 2))
    t = cc.conv_tica(x, C, size)
    x4 = x.reshape(C, S, S, 2)
    # pixel (2, 0): rows [1, 4), columns [−1, 2) clipped to [0, 2)
    s = (x4[3, 1:4, 0:2] ** 2).sum(axis=(0, 1))
    np.testing.assert_allclose(t.reshape(C, S, S, 2)[3, 2, 0], 1 / (0.001 + np.sqrt(s)))
    grad = cc.conv_tica_grad(x, t, C, size).reshape(C, S, S, 2)
    np.testing.assert_allclose(grad[3, 2, 0], -x4[3, 2, 0] * t.reshape(C, S, S, 2)[3, 1:4, 0:2].sum(axis=(0, 1)))
    with pytest.raises(ValueError, match="TEMPORARY"):
        cc.conv_tica(x[:8 * S * S], 8, size)
