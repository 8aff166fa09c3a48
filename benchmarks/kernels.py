"""The 145 net's kernels at N = 128: port (NumPy/CuPy) against PyTorch CPU on the same inputs.

Each case times the forward call and the backward call(s) the layer makes: for conv,
filterActs / imgActs + weightActs against torch's conv2d forward / autograd backward (input
and weight gradients); for pooling, convLocalPool / convLocalMaxUndo against max_pool2d
(ceil_mode); for cmrnorm, the cross-map norm and its undo against local_response_norm.
torch runs on the CPU with its default thread count whatever the port's backend.
"""
from __future__ import annotations

import numpy as np

from benchmarks.timing import best_of
from port import backend
from port import cudaconv2 as cc


def _torch():
    try:
        import torch  # noqa: PLC0415 (optional: the oracle, not a runtime dependency)
    except ImportError:
        return None
    return torch


def _to_nchw(torch, a, C, S):
    return torch.tensor(np.ascontiguousarray(backend.to_host(a).reshape(C, S, S, -1).transpose(3, 0, 1, 2)))


def _torch_times(torch, fwd, wrt, grad, repeats) -> dict:
    """torch's best forward time (no autograd) and best backward time of ``fwd`` to ``wrt``."""
    with torch.no_grad():
        fwd_s = best_of(fwd, repeats)
    y = fwd()
    bwd_s = best_of(lambda: torch.autograd.grad(y, wrt, grad, retain_graph=True), repeats)
    return {"torch_fwd_s": fwd_s, "torch_bwd_s": bwd_s}


def conv_case(name, C, S, fs, F, pad, stride, N, repeats):
    xp = backend.xp()
    rng = np.random.default_rng(0)
    m = 1 + -(-(2 * pad + S - fs) // stride)
    over = (m - 1) * stride + fs - S - pad
    x = backend.to_device(rng.standard_normal((C * S * S, N), dtype=np.float32))
    w = backend.to_device(rng.standard_normal((C * fs * fs, F), dtype=np.float32) * 0.01)
    g = backend.to_device(rng.standard_normal((F * m * m, N), dtype=np.float32))
    row = {"case": name, "shape": f"{C}×{S}² → {F}×{m}², {fs}×{fs}/{stride}, pad {pad}, N={N}",
           "port_fwd_s": best_of(lambda: cc.conv_filter_acts(x, w, S, m, m, -pad, stride, C, 1),
                                 repeats, xp),
           "port_bwd_s": best_of(lambda: (cc.conv_img_acts(g, w, S, S, m, -pad, stride, C, 1),
                                          cc.conv_weight_acts(x, g, S, m, m, fs, -pad, stride, C, 1, 0)),
                                 repeats, xp)}
    torch = _torch()
    if torch is not None:
        F_ = torch.nn.functional
        xt = _to_nchw(torch, x, C, S).requires_grad_(True)
        wt = torch.tensor(np.ascontiguousarray(backend.to_host(w).reshape(C, fs, fs, F).transpose(3, 0, 1, 2)),
                          requires_grad=True)
        gt = _to_nchw(torch, g, F, m)
        fwd = lambda: F_.conv2d(F_.pad(xt, (pad, over, pad, over)), wt, stride=stride)  # noqa: E731
        row.update(_torch_times(torch, fwd, (xt, wt), gt, repeats))
    return row


def pool_case(name, C, S, size, stride, N, repeats):
    xp = backend.xp()
    rng = np.random.default_rng(1)
    O = -(-(S - size) // stride) + 1
    x = backend.to_device(rng.standard_normal((C * S * S, N), dtype=np.float32))
    y = cc.conv_local_pool(x, C, size, 0, stride, O, "max")
    g = backend.to_device(rng.standard_normal(y.shape, dtype=np.float32))
    row = {"case": name, "shape": f"max {size}/{stride}, {C}×{S}² → {O}², N={N}",
           "port_fwd_s": best_of(lambda: cc.conv_local_pool(x, C, size, 0, stride, O, "max"), repeats, xp),
           "port_bwd_s": best_of(lambda: cc.conv_local_max_undo(x, g, y, size, 0, stride, O), repeats, xp)}
    torch = _torch()
    if torch is not None:
        F_ = torch.nn.functional
        xt = _to_nchw(torch, x, C, S).requires_grad_(True)
        gt = _to_nchw(torch, g, C, O)
        fwd = lambda: F_.max_pool2d(xt, size, stride, ceil_mode=True)  # noqa: E731
        row.update(_torch_times(torch, fwd, xt, gt, repeats))
    return row


def cmrnorm_case(name, C, S, size, N, repeats):
    xp = backend.xp()
    rng = np.random.default_rng(2)
    scale, beta, min_div = 1e-4, 0.75, 2.0
    x = backend.to_device(rng.standard_normal((C * S * S, N), dtype=np.float32))
    y, d = cc.conv_response_norm_cross_map(x, C, size, scale / size, beta, min_div, False)
    g = backend.to_device(rng.standard_normal(y.shape, dtype=np.float32))
    row = {"case": name, "shape": f"size {size}, {C}×{S}², N={N}",
           "port_fwd_s": best_of(lambda: cc.conv_response_norm_cross_map(x, C, size, scale / size, beta,
                                                                         min_div, False), repeats, xp),
           "port_bwd_s": best_of(lambda: cc.conv_response_norm_cross_map_undo(
               g, d, x, y, C, size, scale / size, beta, False), repeats, xp)}
    torch = _torch()
    if torch is not None:
        F_ = torch.nn.functional
        xt = _to_nchw(torch, x, C, S).requires_grad_(True)
        gt = _to_nchw(torch, g, C, S)
        fwd = lambda: F_.local_response_norm(xt, size, alpha=scale, beta=beta, k=min_div)  # noqa: E731
        row.update(_torch_times(torch, fwd, xt, gt, repeats))
    return row


def run(n: int = 128, repeats: int = 3, progress=lambda what: None) -> list[dict]:
    """All kernel cases of the 145 net (one GPU's half: 48 conv1 filters, 128 conv2 filters)."""
    cases = [
        ("conv1", conv_case, dict(C=3, S=224, fs=11, F=48, pad=0, stride=4)),
        ("conv2", conv_case, dict(C=48, S=27, fs=5, F=128, pad=2, stride=1)),
        ("pool1", pool_case, dict(C=48, S=55, size=3, stride=2)),
        ("rnorm1 (cmrnorm)", cmrnorm_case, dict(C=48, S=55, size=5)),
    ]
    rows = []
    for name, fn, kw in cases:
        progress(f"kernel {name}")
        rows.append(fn(name, N=n, repeats=repeats, **kw))
    return rows
