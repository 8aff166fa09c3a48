"""The same calls on NumPy and on a device module give the same results: CuPy (skipped where no
CUDA device answers) and port.strict, the CuPy stand-in (everywhere: it refuses host arrays,
NumPy/device mixing and names CuPy lacks).

Every cudaconv2 function and every neuron runs once on host arrays and once on device arrays;
the device results, copied back, must match the host ones to float32 rounding.
"""
from __future__ import annotations

import numpy as np
import pytest

from port import backend, strict
from port import cudaconv2 as cc
from port import neuron as nr

DEVICES = [pytest.param(strict, id="strict"),
           pytest.param("cupy", id="cupy", marks=pytest.mark.backend)]


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param != "cupy":
        return request.param
    if backend.probe().cupy is None:
        pytest.skip(f"backend cupy: {backend.why_not_cupy()}")
    return backend.probe().cupy


def _calls(rng):
    f32 = lambda *s: rng.standard_normal(s, dtype=np.float32)  # noqa: E731
    C, S, F, N = 16, 9, 32, 4
    x, w, g = f32(C * S * S, N), f32(C // 2 * 9, F), f32(F * 25, N)
    wl = f32(25 * C // 2 * 9, F)
    idx = np.concatenate([rng.permutation(C), rng.permutation(C)])
    ws = f32(16 * 9, 64)
    gs = f32(64 * 25, N)
    pooled = cc.conv_local_pool(x, C, 3, 0, 2, 4, "max")
    y, d = cc.conv_response_norm_cross_map(x, C, 5, 0.1, 0.75, 2.0, False)
    yr, dr = cc.conv_response_norm(x, C, 3, 0.1, 0.75)
    blur = np.full((1, 5), 0.2, dtype=np.float32)
    rgb = np.abs(f32(3 * S * S, N))
    return [
        ("conv_filter_acts", cc.conv_filter_acts, (x, w, S, 5, 5, -1, 2, C, 2)),
        ("conv_img_acts", cc.conv_img_acts, (g, w, S, S, 5, -1, 2, C, 2)),
        ("conv_weight_acts", cc.conv_weight_acts, (x, g, S, 5, 5, 3, -1, 2, C, 2, 5)),
        ("local_filter_acts", cc.local_filter_acts, (x, wl, S, 5, 5, -1, 2, C, 2)),
        ("local_img_acts", cc.local_img_acts, (g, wl, S, S, 5, -1, 2, C, 2)),
        ("local_weight_acts", cc.local_weight_acts, (x, g, S, 5, 5, 3, -1, 2, C, 2)),
        ("conv_filter_acts_sparse", cc.conv_filter_acts_sparse, (x, ws, idx, S, 5, 5, -1, 2, C, 16, 2)),
        ("conv_img_acts_sparse", cc.conv_img_acts_sparse, (gs, ws, idx, S, S, 5, -1, 2, C, 16, 2)),
        ("conv_weight_acts_sparse", cc.conv_weight_acts_sparse, (x, gs, idx, S, 5, 5, 3, -1, 2, C, 16, 2, 0)),
        ("pool max", cc.conv_local_pool, (x, C, 3, 0, 2, 4, "max")),
        ("pool avg", cc.conv_local_pool, (x, C, 3, -1, 2, 5, "avg")),
        ("pool maxabs", cc.conv_local_pool, (x, C, 3, 0, 2, 4, "maxabs")),
        ("max undo", cc.conv_local_max_undo, (x, pooled, pooled, 3, 0, 2, 4)),
        ("avg undo", cc.conv_local_avg_undo, (pooled, 3, 0, 2, 4, S)),
        ("rnorm", cc.conv_response_norm, (x, C, 3, 0.1, 0.75)),
        ("rnorm undo", cc.conv_response_norm_undo, (x, dr, x, yr, C, 3, 0.1, 0.75)),
        ("cmrnorm", cc.conv_response_norm_cross_map, (x, C, 5, 0.1, 0.75, 2.0, True)),
        ("cmrnorm undo", cc.conv_response_norm_cross_map_undo, (x, d, x, y, C, 5, 0.1, 0.75, False)),
        ("blur", cc.conv_gaussian_blur, (x, blur, False, C)),
        ("nailbed", cc.conv_bed_of_nails, (x, C, S, 0, 2)),
        ("nailbed undo", cc.conv_bed_of_nails_undo, (f32(C * 25, N), C, S, 0, 2)),
        ("resize", cc.conv_resize_bilinear, (rgb, S, 6, 1.5)),
        ("yuv", cc.conv_rgb_to_yuv, (rgb,)),
        ("lab", cc.conv_rgb_to_lab, (rgb, True)),
        ("reflect", cc.conv_reflect_horizontal, (rgb, 3, S)),
        ("crop", cc.conv_crop, (rgb, S, 5, 1, 2)),
        ("tica", cc.conv_tica, (x, C, 3)),
    ] + [(f"neuron {k}", lambda a, n=cls(*p): (n.activate(a), n.compute_input_grad(a, a, n.activate(a))),
          (np.abs(x) + 0.5,))
         for k, cls, p in [(k, c, {"brelu": (2.0,), "drelu": (0.5,), "tanh": (1.7, 0.6),
                                   "linear": (2.0, 1.0)}.get(k, ()))
                           for k, c in nr.NEURONS.items() if k != "nrelu"]]


def _host(r):
    return tuple(_host(v) for v in r) if isinstance(r, tuple) else backend.to_host(r)


CALLS = _calls(np.random.default_rng(50))  # small host inputs, made once


@pytest.mark.parametrize("name,fn,args", CALLS, ids=[c[0] for c in CALLS])
def test_device_matches_numpy(device, name, fn, args):
    on_host = _host(fn(*args))
    on_device = _host(fn(*(device.asarray(a) if isinstance(a, np.ndarray) else a for a in args)))
    for h, d in zip(on_host if isinstance(on_host, tuple) else (on_host,),
                    on_device if isinstance(on_device, tuple) else (on_device,)):
        np.testing.assert_allclose(d, h, rtol=2e-5, atol=2e-5 * float(np.abs(h).max()), err_msg=name)
