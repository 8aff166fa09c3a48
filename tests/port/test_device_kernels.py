"""port.device_kernels: each CUDA kernel against its NumPy twin.

- nvcc compiles every kernel for sm_80 and sm_90 (no GPU needed; skipped, saying why, without it);
- the CUDA source itself, built for the host (g++, one block of one thread) and reached through
  each function's CuPy branch (its launch arguments included), matches the twin on odd shapes,
  padding, overhanging windows, float32 and float64;
- on the strict stand-in each function is the twin, bit for bit, charged as one launch.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from port import device_kernels as dk
from port import strict
from port.cudaconv2.filter_acts import make_geometry


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    if not (shutil.which("g++") or shutil.which("c++")):
        pytest.skip("no host C++ compiler (g++) to build the CUDA source for the host")
    return dk.HostKernels(tmp_path_factory.mktemp("kernels"))


def test_the_cuda_source_compiles_for_sm80_and_sm90():
    if dk.nvcc() is None:
        pytest.skip("no nvcc here (pip install -e '.[kernels]' brings one; CI installs it); the "
                    "host build below still checks the source's logic")
    assert dk.compile_sources() == sorted(dk.KERNELS)


def both(host, fn, *args, **kw):
    """(twin's result, the CUDA source's result) for the same NumPy inputs (copies: some are in place)."""
    cp = lambda: [a.copy() if isinstance(a, np.ndarray) else a for a in args]  # noqa: E731
    a1, a2 = cp(), cp()
    r1 = fn(*a1, **kw)
    with dk.emulated(host):
        r2 = fn(*a2, **kw)
    return (r1, a1), (r2, a2)


def close(a, b, dtype):
    a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
    for x, y in zip(a, b):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_allclose(y, x, rtol=2e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


DTYPES = [np.float32, np.float64]


def conv_geometry(C=4, S=7, fs=3, pad=-1, stride=2, my=4, groups=2, N=3):
    images = np.zeros((C * S * S, N), np.float32)
    filters = np.zeros((C // groups * fs * fs, 32), np.float32)
    return make_geometry("t", images, filters, S, my, my, pad, stride, C, groups, conv=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geo", [dict(), dict(pad=0, stride=1, my=5, fs=3, groups=1),
                                 dict(S=9, fs=5, pad=-2, stride=3, my=3)])
def test_im2col_and_col2im(host, dtype, geo):
    rng = np.random.default_rng(1)
    g = conv_geometry(**geo)
    x4 = rng.standard_normal((g.num_img_colors, g.img_size_y, g.img_size_x, 5)).astype(dtype)
    (c1, _), (c2, _) = both(host, dk.im2col, x4, g, 1, 3)          # cases 1..3 of 5
    np.testing.assert_array_equal(c2, c1)                            # a copy: exact
    cols = rng.standard_normal(c1.shape).astype(dtype)
    (i1, _), (i2, _) = both(host, dk.col2im, cols, g, 3)
    close(i1, i2, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pooler", ["max", "avg", "maxabs"])
@pytest.mark.parametrize("start, stride, out", [(0, 2, 4), (-1, 2, 5), (0, 3, 3)])
def test_pooling_and_its_undo(host, dtype, pooler, start, stride, out):
    rng = np.random.default_rng(2)
    C, S, N, subs = 16, 9, 3, 3
    x = rng.standard_normal((C * S * S, N)).astype(dtype)
    (p1, _), (p2, _) = both(host, dk.conv_local_pool, x, C, subs, start, stride, out, pooler)
    close(p1, p2, dtype)
    g = rng.standard_normal(p1.shape).astype(dtype)
    if pooler == "avg":
        (u1, _), (u2, _) = both(host, dk.conv_local_avg_undo, g, subs, start, stride, out, S)
    else:
        (u1, _), (u2, _) = both(host, dk.conv_local_max_undo, x, g, p1, subs, start, stride, out)
    close(u1, u2, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pooling_over_nan_and_inf_is_the_twins(host, dtype):
    """The max pooler's rules (fmax from -2e38: NaN skipped, nothing below the base) and its
    undo's ((img == max)·grad: an inf gradient makes NaN at the window's other pixels) hold in
    the CUDA source as in its twin (port.cudaconv2.conv_util), value for value (NaN where NaN)."""
    rng = np.random.default_rng(5)
    C, S, N, subs, start, stride, out = 4, 7, 3, 3, -1, 2, 4
    x = rng.standard_normal((C * S * S, N)).astype(dtype)
    x[::7, 0] = np.nan
    x[::5, 1] = -np.inf
    x[:S * S, 2] = -3e38 if dtype == np.float64 else -np.inf   # a whole channel below the base
    (p1, _), (p2, _) = both(host, dk.conv_local_pool, x, C, subs, start, stride, out, "max")
    assert not np.isnan(p1).any() and p1.min() >= -2e38 and np.any(p1 == np.asarray(-2e38, dtype))
    np.testing.assert_array_equal(p2, p1)
    g = rng.standard_normal(p1.shape).astype(dtype)
    g[::6, 0] = np.inf
    (u1, _), (u2, _) = both(host, dk.conv_local_max_undo, x, g, p1, subs, start, stride, out)
    assert np.isnan(u1).any()
    np.testing.assert_array_equal(np.isnan(u2), np.isnan(u1))
    ok = ~np.isnan(u1)
    np.testing.assert_allclose(u2[ok], u1[ok], rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["rnorm", "cnorm", "cmrnorm", "cmrnorm-blocked"])
def test_norms_and_their_undo(host, dtype, kind):
    rng = np.random.default_rng(3)
    C, S, N, size = 16, 6, 3, 5
    x = rng.standard_normal((C * S * S, N)).astype(dtype)
    md = rng.standard_normal(x.shape).astype(dtype)
    if kind == "rnorm":
        fwd = lambda: both(host, dk.conv_response_norm, x, C, 3, 0.1, 0.75)  # noqa: E731
    elif kind == "cnorm":
        fwd = lambda: both(host, dk.conv_contrast_norm, x, md, C, size, 0.1, 0.75)  # noqa: E731
    else:
        fwd = lambda: both(host, dk.conv_response_norm_cross_map, x, C, size, 0.1, 0.75, 2.0,  # noqa: E731
                           kind.endswith("blocked"))
    (r1, _), (r2, _) = fwd()
    close(r1, r2, dtype)
    y, d = r1
    g = rng.standard_normal(x.shape).astype(dtype)
    if kind == "rnorm":
        (b1, _), (b2, _) = both(host, dk.conv_response_norm_undo, g, d, x, y, C, 3, 0.1, 0.75)
    elif kind == "cnorm":
        (b1, _), (b2, _) = both(host, dk.conv_contrast_norm_undo, g, d, md, y, C, size, 0.1, 0.75)
    else:
        (b1, _), (b2, _) = both(host, dk.conv_response_norm_cross_map_undo, g, d, x, y, C, size,
                                0.1, 0.75, kind.endswith("blocked"))
    close(b1, b2, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_draws_the_same_bits(host, dtype):
    x = np.random.default_rng(4).standard_normal((37, 11)).astype(dtype)
    (r1, _), (r2, _) = both(host, lambda x: dk.dropout(x, np.random.default_rng(9), 0.5), x)
    np.testing.assert_array_equal(r1[1], r2[1])
    np.testing.assert_array_equal(r1[0], r2[0])
    assert 0.3 < r1[1].mean() < 0.7


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("grad, wc", [(True, 0.001), (True, None), (False, 0.002), (False, None)])
def test_sgd_update_and_scale_add(host, dtype, grad, wc):
    rng = np.random.default_rng(5)
    w, inc, g = (rng.standard_normal((13, 7)).astype(dtype) for _ in range(3))
    (_, a1), (_, a2) = both(host, dk.sgd_update, w, inc, g if grad else None, 0.9, 0.01, wc)
    close(tuple(a1[:2]), tuple(a2[:2]), dtype)
    (_, s1), (_, s2) = both(host, dk.scale_add, inc, g, 0.9 if grad else None, 0.25)
    close(s1[0], s2[0], dtype)


def test_on_the_stand_in_each_is_its_twin_and_one_launch():
    rng = np.random.default_rng(6)
    C, S, N = 16, 8, 3
    x = rng.standard_normal((C * S * S, N)).astype(np.float32)
    w, inc, g = (rng.standard_normal((5, 4)).astype(np.float32) for _ in range(3))
    cases = [(dk.conv_local_pool, (x, C, 3, 0, 2, 4, "max")),
             (dk.conv_response_norm_cross_map, (x, C, 5, 0.1, 0.75, 2.0, False)),
             (dk.conv_response_norm, (x, C, 3, 0.1, 0.75)),
             (dk.im2col, (x.reshape(C, S, S, N), conv_geometry(C=C, S=S, my=4, groups=1)))]
    for fn, args in cases:
        want = fn(*args)
        strict.reset_counts()
        got = fn(*[strict.asarray(a) if isinstance(a, np.ndarray) else a for a in args])
        assert strict.launches() == 1, fn.__name__
        for a, b in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)):
            np.testing.assert_array_equal(b.get(), a)
    dw, dinc = strict.asarray(w), strict.asarray(inc)
    strict.reset_counts()
    dk.sgd_update(dw, dinc, strict.asarray(g), 0.9, 0.01, 0.001)
    assert [k for (_, k, _) in strict.launch_counts()] == ["kernel sgd_update"]
    dk.sgd_update(w, inc, g, 0.9, 0.01, 0.001)
    np.testing.assert_array_equal(dw.get(), w)
    np.testing.assert_array_equal(dinc.get(), inc)
    strict.reset_counts()


def _cases(rng):
    C, S, N = 16, 9, 5
    x = rng.standard_normal((C * S * S, N)).astype(np.float32)
    md = rng.standard_normal(x.shape).astype(np.float32)
    p = dk.conv_local_pool(x, C, 3, -1, 2, 5, "max")
    y, d = dk.conv_response_norm_cross_map(x, C, 5, 0.1, 0.75, 2.0, False)
    g = rng.standard_normal(p.shape).astype(np.float32)
    gx = rng.standard_normal(x.shape).astype(np.float32)
    geo = conv_geometry(C=C, S=S, fs=5, pad=-2, stride=3, my=3)
    x4 = x.reshape(C, S, S, N)
    cols = dk.im2col(x4, geo)
    return [(dk.conv_local_pool, (x, C, 3, -1, 2, 5, "max")),
            (dk.conv_local_pool, (x, C, 3, -1, 2, 5, "avg")),
            (dk.conv_local_max_undo, (x, g, p, 3, -1, 2, 5)),
            (dk.conv_local_avg_undo, (g, 3, -1, 2, 5, S)),
            (dk.conv_response_norm, (x, C, 3, 0.1, 0.75)),
            (dk.conv_contrast_norm, (x, md, C, 5, 0.1, 0.75)),
            (dk.conv_response_norm_undo, (gx, d, x, y, C, 3, 0.1, 0.75)),
            (dk.conv_response_norm_cross_map, (x, C, 5, 0.1, 0.75, 2.0, True)),
            (dk.conv_response_norm_cross_map_undo, (gx, d, x, y, C, 5, 0.1, 0.75, False)),
            (dk.im2col, (x4, geo, 1, 3)),
            (dk.col2im, (cols, geo, N)),
            (lambda a: dk.dropout(a, np.random.default_rng(3), 0.5), (x,))]


@pytest.mark.backend
def test_on_cupy_each_kernel_matches_its_twin():
    """The GPU run's check (benchmarks/gpu.sh): each kernel on the device against its twin."""
    from port import backend  # noqa: PLC0415

    cp = backend.probe().cupy
    if cp is None:
        pytest.skip(f"backend cupy: {backend.why_not_cupy()}")
    for fn, args in _cases(np.random.default_rng(7)):
        want = fn(*args)
        got = fn(*[cp.asarray(a) if isinstance(a, np.ndarray) else a for a in args])
        for a, b in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)):
            np.testing.assert_allclose(cp.asnumpy(b), a, rtol=2e-5, atol=1e-6,
                                       err_msg=getattr(fn, "__name__", "dropout"))


def test_on_the_stand_in_every_case_is_one_launch():
    for fn, args in _cases(np.random.default_rng(8)):
        want = fn(*args)
        strict.reset_counts()
        got = fn(*[strict.asarray(a) if isinstance(a, np.ndarray) else a for a in args])
        assert strict.launches() == 1, getattr(fn, "__name__", "dropout")
        for a, b in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)):
            np.testing.assert_array_equal(b.get(), a)
    strict.reset_counts()


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("budget", [None, 4096])          # 4096 bytes: one or two cases a slice
def test_the_device_convolutions_match_the_numpy_path(monkeypatch, groups, budget):
    """filterActs, imgActs and weightActs in the device's shape (one gather, one GEMM per pass;
    slices of cases above the budget), on the stand-in, against the NumPy path."""
    from port import cudaconv2 as cc  # noqa: PLC0415

    if budget:
        monkeypatch.setattr(dk, "DEVICE_COLS_BUDGET_BYTES", budget)
    rng = np.random.default_rng(11)
    C, S, N, F, fs, my = 8, 7, 5, 32, 3, 4
    x = rng.standard_normal((C * S * S, N))
    w = rng.standard_normal((C // groups * fs * fs, F))
    h = rng.standard_normal((F * my * my, N))
    calls = [(cc.conv_filter_acts, (x, w, S, my, my, -1, 2, C, groups)),
             (cc.conv_img_acts, (h, w, S, S, my, -1, 2, C, groups)),
             (cc.conv_weight_acts, (x, h, S, my, my, fs, -1, 2, C, groups, 0))]
    for fn, args in calls:
        want = fn(*args)
        got = fn(*[strict.asarray(a) if isinstance(a, np.ndarray) else a for a in args])
        np.testing.assert_allclose(got.get(), want, rtol=1e-10, atol=1e-10, err_msg=fn.__name__)
    strict.reset_counts()
