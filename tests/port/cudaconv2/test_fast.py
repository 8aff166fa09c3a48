"""port.cudaconv2.fast: the Numba kernels agree with their NumPy twins (the oracle) within 1e-5
relative in float32 (the same values, as they sum in the same order: the same bits but for a
NaN's sign and payload and a zero's sign), ties and clipped windows included, on one thread and
on all cores, and are the path actually taken."""
from __future__ import annotations

import numpy as np
import pytest

from port import cudaconv2 as cc
from port.cudaconv2 import fast

pytest.importorskip("numba")


# Pooling geometries: 4 outputs with the last window clipped (it reads 9 of 10 pixels, so the
# padding's base enters the max), windows starting left of the image, no overlap, stride 1.
POOL_CASES = [(16, 9, 3, 0, 2, np.float32), (16, 8, 3, -1, 2, np.float32),
              (32, 12, 2, 0, 2, np.float32), (16, 7, 3, 0, 1, np.float64)]


@pytest.fixture(params=["serial", "parallel"])
def threads(request, monkeypatch):
    """Each kernel on one thread (the arrays are small) and over all cores (the size floor at 0)."""
    if request.param == "parallel":
        monkeypatch.setattr(fast, "PARALLEL_MIN_ELEMENTS", 0)
    return request.param


@pytest.mark.parametrize("C, S, subs, start, stride, dtype", POOL_CASES)
def test_max_undo_agrees_with_the_numpy_path(monkeypatch, C, S, subs, start, stride, dtype, threads):
    rng = np.random.default_rng(0)
    N = 5
    outputs = 1 + -(-(S - start - subs) // stride)
    # relu'd inputs: many zeros, so many ties inside a window (each tie gets the gradient)
    x = np.maximum(rng.standard_normal((C * S * S, N)), 0).astype(dtype)
    acts = cc.conv_local_pool(x, C, subs, start, stride, outputs, "max")
    g = rng.standard_normal(acts.shape).astype(dtype)
    assert fast.usable(x, g, acts)
    jit = cc.conv_local_max_undo(x, g, acts, subs, start, stride, outputs)
    monkeypatch.setattr(fast, "ENABLED", False)
    ref = cc.conv_local_max_undo(x, g, acts, subs, start, stride, outputs)
    assert jit.dtype == ref.dtype == dtype and jit.shape == ref.shape
    np.testing.assert_allclose(jit, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))
    assert np.array_equal(jit, ref)      # the same sums in the same order: the same values
    assert np.count_nonzero(ref) > 0


@pytest.mark.parametrize("C, S, subs, start, stride, dtype", POOL_CASES)
def test_max_pool_agrees_with_the_numpy_path(monkeypatch, C, S, subs, start, stride, dtype, threads):
    rng = np.random.default_rng(1)
    N = 5
    outputs = 1 + -(-(S - start - subs) // stride)
    x = rng.standard_normal((C * S * S, N)).astype(dtype)
    x[:S * S] = -3e38 if dtype == np.float32 else -1e300   # below the base: the base wins
    x[S * S + 3, 2] = np.nan                                # NaN is skipped, as by fmaxf
    x[S * S + 5, :] = np.inf
    x[2 * S * S:3 * S * S, 1] = np.nan                      # a map of NaN: the base
    calls = []
    monkeypatch.setattr(fast, "max_pool", lambda *a, _f=fast.max_pool: calls.append(1) or _f(*a))
    jit = cc.conv_local_pool(x, C, subs, start, stride, outputs, "max")
    assert calls, "the compiled kernel was not the path taken"
    monkeypatch.setattr(fast, "ENABLED", False)
    ref = cc.conv_local_pool(x, C, subs, start, stride, outputs, "max")
    assert jit.dtype == ref.dtype == dtype and jit.shape == ref.shape
    assert np.array_equal(jit, ref)      # max is exact: the same values (zeros of either sign)
    assert not np.isnan(ref).any() and np.isinf(ref).any()
    base = dtype(cc.conv_util.MAX_POOL_BASE)
    assert (ref[:outputs * outputs] == base).all() and ref.min() == base
    assert (ref.reshape(C, -1, N)[2, :, 1] == base).all()


def test_the_kernels_refuse_what_they_do_not_take():
    a = np.zeros((16, 4), np.float32)
    assert not fast.usable(a, a.astype(np.float64))          # mixed dtypes
    assert not fast.usable(a, np.zeros((4, 16), np.float32).T)   # not C-contiguous
    assert not fast.usable(a.astype(np.int32))


# ---- response normalization: within-map (rnorm, cnorm) and cross-map (cmrnorm, blocked or not)

def _norm_calls(kind, x, md, g, C, size, blocked):
    """(acts, denoms, gradient) of one norm kind, forward then backward."""
    if kind == "rnorm":
        y, d = cc.conv_response_norm(x, C, size, 0.3 / size ** 2, 0.75)
        return y, d, cc.conv_response_norm_undo(g, d, x, y, C, size, 0.3 / size ** 2, 0.75)
    if kind == "cnorm":
        y, d = cc.conv_contrast_norm(x, md, C, size, 0.3 / size ** 2, 0.75)
        return y, d, cc.conv_contrast_norm_undo(g, d, md, y, C, size, 0.3 / size ** 2, 0.75)
    y, d = cc.conv_response_norm_cross_map(x, C, size, 0.3 / size, 0.75, 1.5, blocked)
    return y, d, cc.conv_response_norm_cross_map_undo(g, d, x, y, C, size, 0.3 / size, 0.75, blocked)


def _counting(monkeypatch):
    """Count the calls of each norm kernel's wrapper (so a test sees the kernel path taken)."""
    calls = {}
    for name in ("spatial_denoms", "spatial_undo", "map_denoms", "map_undo"):
        def wrap(*a, _f=getattr(fast, name), _name=name):
            calls[_name] = calls.get(_name, 0) + 1
            return _f(*a)
        monkeypatch.setattr(fast, name, wrap)
    return calls


NORMS = [   # kind, channels, image size, window size, blocked
    ("rnorm", 16, 7, 3, False), ("rnorm", 32, 9, 5, False),
    ("rnorm", 16, 5, 7, False),       # a window wider than the image: every sum clipped
    ("rnorm", 16, 6, 4, False),       # an even window: one more map before than after
    ("cnorm", 16, 7, 5, False), ("cnorm", 32, 5, 3, False),
    ("cmrnorm", 16, 5, 5, False), ("cmrnorm", 32, 3, 3, False), ("cmrnorm", 16, 7, 4, False),
    ("cmrnorm", 16, 5, 5, True),      # 16 maps in blocks of 5: the last block is one map
    ("cmrnorm", 32, 3, 4, True), ("cmrnorm", 16, 4, 16, False), ("cmrnorm", 16, 4, 16, True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind, C, S, size, blocked", NORMS)
def test_norm_kernels_agree_with_the_numpy_path(monkeypatch, kind, C, S, size, blocked, dtype, threads):
    rng = np.random.default_rng(1)
    N = 7
    x, md, g = (3 * rng.standard_normal((C * S * S, N))).astype(dtype), \
        rng.standard_normal((C * S * S, N)).astype(dtype), rng.standard_normal((C * S * S, N)).astype(dtype)
    calls = _counting(monkeypatch)
    jit = _norm_calls(kind, x, md, g, C, size, blocked)
    prefix = "map" if kind == "cmrnorm" else "spatial"
    assert calls == {f"{prefix}_denoms": 1, f"{prefix}_undo": 1}       # the kernels ran
    monkeypatch.setattr(fast, "ENABLED", False)
    ref = _norm_calls(kind, x, md, g, C, size, blocked)
    assert calls == {f"{prefix}_denoms": 1, f"{prefix}_undo": 1}       # and not for the oracle
    for name, a, b in zip(("acts", "denoms", "gradient"), jit, ref, strict=True):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape, name
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(np.abs(b).max()), err_msg=name)
        assert np.array_equal(a, b), name  # the same sums in the same order, NumPy's own pow
    assert np.abs(jit[1] - (1.5 if kind == "cmrnorm" else 1)).max() > 0.1   # the windows matter


@pytest.mark.parametrize("kind", ["rnorm", "cnorm", "cmrnorm"])
def test_the_norm_layers_take_the_kernels_and_agree_with_the_numpy_path(monkeypatch, kind):
    from port.layers.norm import ContrastNormLayer, CrossMapResponseNormLayer, ResponseNormLayer

    class Net:
        rng = np.random.default_rng(0)
        dtype = np.float32

    rng = np.random.default_rng(2)
    C, S, size = 16, 9, 5
    dic = {"name": "n", "type": kind, "inputs": ["x"], "outputs": C * S * S, "gradConsumer": False,
           "channels": C, "size": size, "scale": 1e-2, "pow": 0.75, "imgSize": S,
           "minDiv": 2.0, "blocked": False}
    cls = {"rnorm": ResponseNormLayer, "cnorm": ContrastNormLayer,
           "cmrnorm": CrossMapResponseNormLayer}[kind]
    x = (4 * rng.standard_normal((C * S * S, 11))).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)

    def run():
        layer = cls(dic, Net())
        layer.inputs = [x]
        layer.fprop_acts(0, 0, 0)
        return layer.acts, layer.bprop_acts(g, 0, 0)
    calls = _counting(monkeypatch)
    jit = run()
    assert sum(calls.values()) == 2
    monkeypatch.setattr(fast, "ENABLED", False)
    ref = run()
    for a, b in zip(jit, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(np.abs(b).max()))
        assert np.array_equal(a, b)


def test_the_norms_fall_back_to_numpy_for_arrays_the_kernels_do_not_take(monkeypatch):
    rng = np.random.default_rng(3)
    C, S = 16, 5
    x = rng.standard_normal((C * S * S, 6)).astype(np.float32)
    calls = _counting(monkeypatch)
    y, d = cc.conv_response_norm_cross_map(np.asfortranarray(x), C, 5, 0.01, 0.75, 1.0, False)
    y2, d2 = cc.conv_response_norm(x.astype(np.float64), C, 3, 0.01, 0.75)   # float64 is taken
    assert calls == {"spatial_denoms": 1}
    monkeypatch.setattr(fast, "ENABLED", False)
    ref = cc.conv_response_norm_cross_map(x, C, 5, 0.01, 0.75, 1.0, False)
    assert np.array_equal(y, ref[0]) and np.array_equal(d, ref[1])


def test_alexnet_no_jit_gives_the_numpy_path(tmp_path, monkeypatch):
    """ALEXNET_NO_JIT=1 turns the kernels off at import: in a fresh process the norms run the
    NumPy code (a kernel call would raise) and give what the NumPy path gives here."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    rng = np.random.default_rng(4)
    C, S = 16, 7
    x, g = rng.standard_normal((2, C * S * S, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "g.npy", g)

    def norms():
        y, d = cc.conv_response_norm_cross_map(x, C, 5, 0.01, 0.75, 2.0, True)
        y2, d2 = cc.conv_response_norm(x, C, 3, 0.01, 0.75)
        return {"y": y, "u": cc.conv_response_norm_cross_map_undo(g, d, x, y, C, 5, 0.01, 0.75, True),
                "y2": y2, "u2": cc.conv_response_norm_undo(g, d2, x, y2, C, 3, 0.01, 0.75)}
    script = (
        "import sys, numpy as np\n"
        "from port import cudaconv2 as cc\nfrom port.cudaconv2 import fast\n"
        "assert not fast.ENABLED\n"
        "def no(*a): raise AssertionError('a kernel ran')\n"
        "fast._map_denoms = fast._map_undo = fast._spatial_denoms = fast._spatial_undo = no\n"
        "x, g = np.load(sys.argv[1] + '/x.npy'), np.load(sys.argv[1] + '/g.npy')\n"
        f"y, d = cc.conv_response_norm_cross_map(x, {C}, 5, 0.01, 0.75, 2.0, True)\n"
        f"u = cc.conv_response_norm_cross_map_undo(g, d, x, y, {C}, 5, 0.01, 0.75, True)\n"
        f"y2, d2 = cc.conv_response_norm(x, {C}, 3, 0.01, 0.75)\n"
        f"u2 = cc.conv_response_norm_undo(g, d2, x, y2, {C}, 3, 0.01, 0.75)\n"
        "np.savez(sys.argv[1] + '/out.npz', y=y, u=u, y2=y2, u2=u2)\n")
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=root, check=True, timeout=120,
                   env={**os.environ, "ALEXNET_NO_JIT": "1"})
    got = np.load(tmp_path / "out.npz")
    with_kernels = norms()
    monkeypatch.setattr(fast, "ENABLED", False)
    for k, v in norms().items():
        assert np.array_equal(got[k], v), k
        assert np.array_equal(got[k], with_kernels[k]), k


def test_the_parallel_kernels_stay_parallel_through_numbas_disk_cache(tmp_path):
    """The serial and the parallel compilation of one kernel have cache entries of their own: in a
    fresh cache, a small (serial) call first, then a parallel one, in a first process (compiles)
    and a second (loads both from disk); the parallel one starts Numba's threads each time. (With
    one entry for both, the parallel kernel loaded the serial code and ran on one thread.)"""
    import os
    import subprocess
    import sys
    from pathlib import Path
    script = (
        "import numpy as np\nfrom numba.np.ufunc import parallel\nfrom port.cudaconv2 import fast\n"
        "x = np.ones((16, 9, 4), np.float32)\n"
        "fast._map_denoms(x, np.empty_like(x), -2, 5, False, np.float32(1), np.float32(1e-4))\n"
        "assert not parallel._is_initialized, 'the small call ran in parallel'\n"
        "fast.PARALLEL_MIN_ELEMENTS = 0\n"
        "fast._map_denoms(x, np.empty_like(x), -2, 5, False, np.float32(1), np.float32(1e-4))\n"
        "assert parallel._is_initialized, 'the parallel kernel did not start the threads'\n")
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], cwd=root, env=env, check=True, timeout=300)
    names = sorted(p.name for p in tmp_path.rglob("*.nbi"))
    assert any("_map_denoms_serial-" in n for n in names) and \
        any("_map_denoms-" in n for n in names), names


@pytest.mark.parametrize("C, S, fs, pad, stride, F, G", [
    (3, 19, 5, 0, 2, 16, 1),      # colour images, stride 2, the last module overhanging
    (16, 9, 3, -1, 1, 32, 2),     # padding, two groups
    (8, 7, 3, -2, 2, 16, 1),
])
def test_im2col_and_col2im_agree_with_the_numpy_path(monkeypatch, C, S, fs, pad, stride, F, G, threads):
    monkeypatch.setattr(cc.filter_acts, "COLS_BLOCK_BYTES", 1)     # one module row a block
    rng = np.random.default_rng(2)
    N = 6
    mx = 1 + -(-(S - 2 * pad - fs) // stride) if pad else 1 + -(-(S - fs) // stride)
    x = rng.standard_normal((C * S * S, N)).astype(np.float32)
    w = rng.standard_normal((C // G * fs * fs, F)).astype(np.float32)
    h = rng.standard_normal((F * mx * mx, N)).astype(np.float32)

    def run():
        return (cc.conv_filter_acts(x, w, S, mx, mx, pad, stride, C, G),
                cc.conv_img_acts(h, w, S, S, mx, pad, stride, C, G) if C % 2 == 0 else None,
                cc.conv_weight_acts(x, h, S, mx, mx, fs, pad, stride, C, G, 0) if C % 4 == 0 else None)
    calls = []
    for name in ("im2col_rows", "col2im_rows_add"):
        monkeypatch.setattr(fast, name, lambda *a, _f=getattr(fast, name): calls.append(1) or _f(*a))
    jit = run()
    assert calls, "the compiled kernels were not the path taken"
    monkeypatch.setattr(fast, "ENABLED", False)
    ref = run()
    for a, b in zip(jit, ref):
        assert (a is None) == (b is None)
        if a is not None:
            assert np.array_equal(a, b)       # the same copies and the same sums in the same order


def _same_values(a, b, name):
    """The kernels' claim, exactly: the NumPy path's values (a NaN where it has a NaN, ±0 where it
    has ±0), its bits everywhere else; a NaN's sign and payload and a zero's sign may differ."""
    assert a.dtype == b.dtype and a.shape == b.shape, name
    assert np.array_equal(a, b, equal_nan=True), name
    other = ~(np.isnan(b) | (b == 0))
    ints = {4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    assert np.array_equal(a.view(ints)[other], b.view(ints)[other]), name
    return int(np.count_nonzero(a.view(ints) != b.view(ints)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_kernels_give_the_numpy_paths_values_with_nan_inf_and_signed_zeros(monkeypatch, dtype):
    """Every kernel on inputs holding NaN, ±inf and ±0: the values agree, the bits only up to NaN
    sign and payload and zero sign (fast.py's module docstring)."""
    monkeypatch.setattr(cc.filter_acts, "COLS_BLOCK_BYTES", 1)
    rng = np.random.default_rng(5)
    C, S, N = 16, 7, 6

    def special(shape):
        a = rng.standard_normal(shape).astype(dtype)
        flat = a.reshape(-1)
        k = flat.size // 10
        idx = rng.permutation(flat.size)
        flat[idx[:k]] = np.nan
        flat[idx[k:2 * k]] = -np.nan
        flat[idx[2 * k:3 * k]] = np.inf
        flat[idx[3 * k:4 * k]] = -0.0
        flat[idx[4 * k:5 * k]] = 0.0
        return a
    x, md, g = special((C * S * S, N)), special((C * S * S, N)), special((C * S * S, N))
    relu = np.maximum(x, 0)                              # zeros of both signs tie in the windows

    def run():
        out = {}
        for kind, size, blocked in [("rnorm", 3, False), ("cnorm", 5, False), ("cmrnorm", 5, False),
                                    ("cmrnorm", 4, True)]:
            for i, a in enumerate(_norm_calls(kind, x, md, g, C, size, blocked)):
                out[f"{kind}{size}{blocked}[{i}]"] = a
        acts = cc.conv_local_pool(relu, C, 3, 0, 2, 3, "max")
        out["max_pool"] = acts
        out["max_undo"] = cc.conv_local_max_undo(relu, g[:acts.shape[0]], acts, 3, 0, 2, 3)
        w = special((C * 9, 16))
        h = special((16 * S * S, N))
        out["filter_acts"] = cc.conv_filter_acts(x, w, S, S, S, -1, 1, C, 1)
        out["img_acts"] = cc.conv_img_acts(h, w, S, S, S, -1, 1, C, 1)
        return out
    with np.errstate(all="ignore"):
        jit = run()
        monkeypatch.setattr(fast, "ENABLED", False)
        ref = run()
    for name in ref:
        _same_values(jit[name], ref[name], name)
    assert any(np.isnan(v).any() for v in ref.values()) and any((v == 0).any() for v in ref.values())
