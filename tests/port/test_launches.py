"""port.strict's launch accounting: each call charged what CuPy 14 launches for it (the rules in
port/strict.py), per call site, kind and scope, and the bytes uploaded."""
from __future__ import annotations

import numpy as np
import pytest

from port import strict

xs = strict


@pytest.fixture(autouse=True)
def clean():
    strict.reset_counts()
    yield
    strict.reset_counts()


def kinds() -> dict:
    out: dict = {}
    for (_site, kind, _scope), n in strict.launch_counts().items():
        out[kind] = out.get(kind, 0) + n
    return out


def test_elementwise_reductions_and_allocations():
    a = xs.empty((4, 5), dtype=np.float32)          # no kernel
    assert strict.launches() == 0
    z = xs.zeros((4, 5), dtype=np.float32)          # a memset
    b = a + z                                       # one operator kernel
    b *= 2                                          # one, in place
    xs.tanh(b, out=b)                               # one ufunc
    b.sum(axis=0)                                   # one reduction
    xs.where(b > 0, b, 0)                           # the comparison, then where
    b.astype(np.float32, copy=False)                # same dtype, no copy: nothing
    b.astype(np.float64)                            # one
    b.T.reshape(-1)                                 # a reshape that cannot be a view: a copy
    b.reshape(20)                                   # a view: nothing
    b[1:3] = 0                                      # one fill/copy kernel
    assert kinds() == {"memset": 1, "operator": 3, "ufunc": 1, "reduction": 1, "where": 1,
                       "astype": 1, "copy": 1, "setitem": 1}


@pytest.mark.parametrize("make, expect", [
    (lambda: (xs.ones((8, 6)), xs.ones((6, 4)), None), {"gemm": 1}),
    (lambda: (xs.ones((6, 8)).T, xs.ones((4, 6)).T, None), {"gemm": 1}),   # F-contiguous: free
    (lambda: (xs.ones((8, 12))[:, ::2], xs.ones((6, 4)), None), {"gemm": 1, "matmul operand copy": 1}),
    (lambda: (xs.ones((2, 8, 6)).transpose(0, 2, 1), xs.ones((2, 8, 4)), None),
     {"gemm": 1, "matmul operand copy": 1}),                                  # 3-D: C-contiguous only
    (lambda: (xs.ones((2, 8, 6)), xs.ones((2, 6, 4)), xs.empty((2, 8, 8))[:, :, :4]),
     {"gemm": 1, "matmul out copy": 1}),
    (lambda: (xs.ones((2, 8, 6)), xs.ones((2, 6, 4)), xs.empty((2, 8, 4))), {"gemm": 1}),
])
def test_matmul_copies_as_cupy_does(make, expect):
    a, b, out = make()
    strict.reset_counts()
    if out is None:
        a @ b
    else:
        xs.matmul(a, b, out=out)
    assert kinds() == expect


def test_uploads_count_bytes_and_scopes_name_the_launches():
    h = np.ones((3, 4), dtype=np.float32)
    with strict.scope("conv1|fwd"):
        d = xs.asarray(h)                           # 48 bytes up, no kernel
        d += 1
    assert strict.h2d_bytes() == 48 and strict.launches() == 1
    ((site, kind, sc), n), = strict.launch_counts().items()
    assert sc == "conv1|fwd" and kind == "operator" and site.startswith("tests/port/test_launches.py:")
    with strict.paused():
        d += 1
    strict.kernel_launch("twin")
    assert kinds() == {"operator": 1, "kernel twin": 1}
