"""port.cudaconv2.fast: the Numba kernels agree with their NumPy twins (the oracle) within 1e-5
relative in float32 (bit for bit, as they sum in the same order), ties and clipped windows
included, on one thread and on all cores, and are the path actually taken."""
from __future__ import annotations

import numpy as np
import pytest

from port import cudaconv2 as cc
from port.cudaconv2 import fast

pytest.importorskip("numba")


@pytest.mark.parametrize("C, S, subs, start, stride, dtype", [
    (16, 9, 3, 0, 2, np.float32),      # 4 outputs: the last window clipped (reads 9 of 10)
    (16, 8, 3, -1, 2, np.float32),     # windows starting left of the image
    (32, 12, 2, 0, 2, np.float32),     # no overlap
    (16, 7, 3, 0, 1, np.float64),
])
@pytest.mark.parametrize("threads", ["serial", "parallel"])
def test_max_undo_agrees_with_the_numpy_path(monkeypatch, C, S, subs, start, stride, dtype, threads):
    if threads == "parallel":
        monkeypatch.setattr(fast, "PARALLEL_MIN_ELEMENTS", 0)
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
    assert np.array_equal(jit, ref)      # the same sums in the same order: bit for bit
    assert np.count_nonzero(ref) > 0


@pytest.mark.parametrize("C, S, subs, start, stride, dtype", [
    (16, 9, 3, 0, 2, np.float32),      # the last window clipped: the padding's base enters the max
    (16, 8, 3, -1, 2, np.float32),     # windows starting left of the image
    (32, 12, 2, 0, 2, np.float32),
    (16, 7, 3, 0, 1, np.float64),
])
@pytest.mark.parametrize("threads", ["serial", "parallel"])
def test_max_pool_agrees_with_the_numpy_path(monkeypatch, C, S, subs, start, stride, dtype, threads):
    if threads == "parallel":
        monkeypatch.setattr(fast, "PARALLEL_MIN_ELEMENTS", 0)
    rng = np.random.default_rng(1)
    N = 5
    outputs = 1 + -(-(S - start - subs) // stride)
    x = rng.standard_normal((C * S * S, N)).astype(dtype)
    x[:S * S] = -3e38 if dtype == np.float32 else -1e300   # below the base: clipped windows give it
    x[S * S + 3, 2] = np.nan                                # NaN wins, as np.maximum's
    x[S * S + 5, :] = np.inf
    calls = []
    monkeypatch.setattr(fast, "max_pool", lambda *a, _f=fast.max_pool: calls.append(1) or _f(*a))
    jit = cc.conv_local_pool(x, C, subs, start, stride, outputs, "max")
    assert calls, "the compiled kernel was not the path taken"
    monkeypatch.setattr(fast, "ENABLED", False)
    ref = cc.conv_local_pool(x, C, subs, start, stride, outputs, "max")
    assert jit.dtype == ref.dtype == dtype and jit.shape == ref.shape
    assert np.array_equal(jit, ref, equal_nan=True)         # max is exact: bit for bit
    assert np.isnan(ref).any() and np.isinf(ref).any()
    clipped = start < 0 or start + (outputs - 1) * stride + subs > S
    assert (ref[:outputs * outputs] == dtype(cc.conv_util.MAX_POOL_BASE)).any() == clipped


def test_the_kernels_refuse_what_they_do_not_take():
    a = np.zeros((16, 4), np.float32)
    assert not fast.usable(a, a.astype(np.float64))          # mixed dtypes
    assert not fast.usable(a, np.zeros((4, 16), np.float32).T)   # not C-contiguous
    assert not fast.usable(a.astype(np.int32))
