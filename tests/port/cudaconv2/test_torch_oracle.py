"""An independent oracle: PyTorch's CPU build, float32, at the 145 net's real layer sizes.

Forward and backward of conv (padding, stride with the ceil overhang, groups), max/avg pooling
with clipped windows, and cross-map normalization agree with torch within 1e-5 relative to the
largest magnitude of the reference. torch is used only here, never by the port.
"""
from __future__ import annotations

import numpy as np
import pytest

from port import cudaconv2 as cc

torch = pytest.importorskip("torch")
F_ = torch.nn.functional
TOL = 1e-5


def to_torch(a, C, S):
    """(C·S·S, N) → a (N, C, S, S) float32 tensor that requires grad."""
    N = a.shape[1]
    return torch.tensor(np.ascontiguousarray(a.reshape(C, S, S, N).transpose(3, 0, 1, 2)),
                        requires_grad=True)


def from_torch(t):
    """(N, C, H, W) → (C·H·W, N)."""
    a = t.detach().numpy()
    return np.ascontiguousarray(a.transpose(1, 2, 3, 0)).reshape(-1, a.shape[0])


def assert_close(port, ref, what):
    scale = np.abs(ref).max()
    err = np.abs(port.astype(np.float64) - ref).max() / scale
    assert err < TOL, f"{what}: max |port − torch| / max |torch| = {err:.2e}"


@pytest.mark.parametrize("C,S,fs,F,pad,stride,G,N", [
    (3, 224, 11, 48, 0, 4, 1, 3),    # 145 net conv1a: 55 modules, 3 px of implicit overhang
    (48, 27, 5, 128, 2, 1, 1, 2),    # 145 net conv2a
    (96, 27, 5, 256, 2, 1, 2, 2),    # a grouped conv2 (groups=2, 48 colours per group)
    (64, 13, 3, 64, 1, 2, 4, 2),     # 4 groups, stride 2 with a 1 px overhang
])
def test_conv_forward_and_backward_match_torch(C, S, fs, F, pad, stride, G, N):
    rng = np.random.default_rng(30)
    m = 1 + -(-(2 * pad + S - fs) // stride)
    over = (m - 1) * stride + fs - S - pad           # the ceil rule's bottom/right overhang
    x = rng.standard_normal((C * S * S, N), dtype=np.float32)
    w = rng.standard_normal((C // G * fs * fs, F), dtype=np.float32) * 0.05
    y = cc.conv_filter_acts(x, w, S, m, m, -pad, stride, C, G)
    xt = to_torch(x, C, S)
    wt = torch.tensor(np.ascontiguousarray(w.reshape(C // G, fs, fs, F).transpose(3, 0, 1, 2)),
                      requires_grad=True)
    yt = F_.conv2d(F_.pad(xt, (pad, over, pad, over)), wt, stride=stride, groups=G)
    assert yt.shape[2:] == (m, m)
    assert_close(y, from_torch(yt), "conv forward")
    g = rng.standard_normal(y.shape, dtype=np.float32)
    yt.backward(to_torch(g, F, m).detach())
    assert_close(cc.conv_img_acts(g, w, S, S, m, -pad, stride, C, G), from_torch(xt.grad),
                 "conv imgActs")
    gw = cc.conv_weight_acts(x, g, S, m, m, fs, -pad, stride, C, G, 0)
    gw_ref = wt.grad.numpy().transpose(1, 2, 3, 0).reshape(gw.shape)
    assert_close(gw, gw_ref, "conv weightActs")


@pytest.mark.parametrize("C,S,size,stride,pooler", [
    (48, 55, 3, 2, "max"),           # 145 net pool1: 55 → 27
    (128, 27, 3, 2, "max"),          # pool2: 27 → 13
    (48, 56, 3, 2, "avg"),           # 56 → 27 with a clipped last window (ceil_mode)
    (32, 24, 3, 3, "avg"),
])
def test_pool_forward_and_backward_match_torch(C, S, size, stride, pooler):
    rng = np.random.default_rng(31)
    N = 4
    O = -(-(S - size) // stride) + 1
    x = rng.standard_normal((C * S * S, N), dtype=np.float32)
    y = cc.conv_local_pool(x, C, size, 0, stride, O, pooler)
    xt = to_torch(x, C, S)
    if pooler == "max":
        yt = F_.max_pool2d(xt, size, stride, ceil_mode=True)
    else:
        yt = F_.avg_pool2d(xt, size, stride, ceil_mode=True, count_include_pad=False)
    assert yt.shape[2:] == (O, O)
    assert_close(y, from_torch(yt), f"{pooler} pool forward")
    g = rng.standard_normal(y.shape, dtype=np.float32)
    yt.backward(to_torch(g, C, O).detach())
    if pooler == "max":
        gi = cc.conv_local_max_undo(x, g, y, size, 0, stride, O)
    else:
        gi = cc.conv_local_avg_undo(g, size, 0, stride, O, S)
    assert_close(gi, from_torch(xt.grad), f"{pooler} pool backward")


@pytest.mark.parametrize("C,S,size,min_div", [(48, 55, 5, 2.0), (128, 27, 5, 1.0), (64, 13, 3, 2.0)])
def test_crossmap_norm_matches_torch_local_response_norm(C, S, size, min_div):
    # cfg scale=1e-4 → α = scale/size (layer.py:1183); torch divides its alpha by size itself
    rng = np.random.default_rng(32)
    N = 3
    scale, beta = 1e-4, 0.75
    x = rng.standard_normal((C * S * S, N), dtype=np.float32) * 30
    y, d = cc.conv_response_norm_cross_map(x, C, size, scale / size, beta, min_div, False)
    xt = to_torch(x, C, S)
    yt = F_.local_response_norm(xt, size, alpha=scale, beta=beta, k=min_div)
    assert_close(y, from_torch(yt), "cmrnorm forward")
    g = rng.standard_normal(y.shape, dtype=np.float32)
    yt.backward(to_torch(g, C, S).detach())
    gi = cc.conv_response_norm_cross_map_undo(g, d, x, y, C, size, scale / size, beta, False)
    assert_close(gi, from_torch(xt.grad), "cmrnorm backward")
