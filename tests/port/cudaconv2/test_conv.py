"""filterActs / imgActs / weightActs (conv, local, sparse): adjoint pairs and the original's rules."""
from __future__ import annotations

import numpy as np
import pytest

from port import cudaconv2 as cc
from port.cudaconv2 import filter_acts
from tests.port.cudaconv2.helpers import check_adjoint

# (colors, img, filter, filters, padding, stride, groups, cases); the strides leave an overhang
CASES = [
    (3, 13, 5, 16, 2, 2, 1, 5),    # 3 colours, ceil overhang of 1 px
    (8, 9, 3, 32, 1, 1, 2, 4),     # groups, padding
    (4, 10, 4, 16, 0, 3, 1, 3),    # stride 3, no padding, overhang 2 px
    (16, 7, 3, 64, 1, 2, 4, 2),    # 4 groups of 4 colours
]


def modules(img, fs, pad, stride):
    """layer.py:1004: 1 + ⌈(2·pad + img − fs) / stride⌉."""
    return 1 + -(-(2 * pad + img - fs) // stride)


def direct_conv(x4, w, pad, stride, groups, mods):
    """An independent loop-over-modules convolution: x4 (C, H, W, N), w (fc, fs, fs, F)."""
    C, H, W, N = x4.shape
    fc, fs, _, F = w.shape
    out = np.zeros((F, mods, mods, N))
    fg = F // groups
    for my in range(mods):
        for mx in range(mods):
            for fy in range(fs):
                for fx in range(fs):
                    y, x = my * stride - pad + fy, mx * stride - pad + fx
                    if 0 <= y < H and 0 <= x < W:
                        for gi in range(groups):
                            out[gi * fg:(gi + 1) * fg, my, mx] += \
                                w[:, fy, fx, gi * fg:(gi + 1) * fg].T @ x4[gi * fc:(gi + 1) * fc, y, x]
    return out


def conv_inputs(rng, C, S, fs, F, pad, stride, G, N, local=False):
    """Modules per side, images x, filters w (one bank per module when ``local``), hidActs g."""
    m = modules(S, fs, pad, stride)
    x = rng.standard_normal((C * S * S, N))
    w = rng.standard_normal(((m * m if local else 1) * C // G * fs * fs, F))
    g = rng.standard_normal((F * m * m, N))
    return m, x, w, g


@pytest.mark.parametrize("C,S,fs,F,pad,stride,G,N", CASES)
def test_conv_filter_acts_matches_direct_loops(C, S, fs, F, pad, stride, G, N):
    m, x, w, _ = conv_inputs(np.random.default_rng(1), C, S, fs, F, pad, stride, G, N)
    y = cc.conv_filter_acts(x, w, S, m, m, -pad, stride, C, G)
    ref = direct_conv(x.reshape(C, S, S, N), w.reshape(C // G, fs, fs, F), pad, stride, G, m)
    assert y.shape == (F * m * m, N)
    np.testing.assert_allclose(y.reshape(ref.shape), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("C,S,fs,F,pad,stride,G,N", CASES)
def test_conv_img_and_weight_acts_are_adjoint(C, S, fs, F, pad, stride, G, N):
    rng = np.random.default_rng(2)
    m, x, w, g = conv_inputs(rng, C, S, fs, F, pad, stride, G, N)
    check_adjoint(lambda v: cc.conv_filter_acts(v, w, S, m, m, -pad, stride, C, G),
                  cc.conv_img_acts(g, w, S, S, m, -pad, stride, C, G), x, g, rng)
    check_adjoint(lambda v: cc.conv_filter_acts(x, v, S, m, m, -pad, stride, C, G),
                  cc.conv_weight_acts(x, g, S, m, m, fs, -pad, stride, C, G, 0), w, g, rng)


@pytest.mark.parametrize("C,S,fs,F,pad,stride,G,N", CASES)
def test_local_acts_are_adjoint_and_reduce_to_conv(C, S, fs, F, pad, stride, G, N):
    rng = np.random.default_rng(3)
    m, x, w, g = conv_inputs(rng, C, S, fs, F, pad, stride, G, N, local=True)
    check_adjoint(lambda v: cc.local_filter_acts(v, w, S, m, m, -pad, stride, C, G),
                  cc.local_img_acts(g, w, S, S, m, -pad, stride, C, G), x, g, rng)
    check_adjoint(lambda v: cc.local_filter_acts(x, v, S, m, m, -pad, stride, C, G),
                  cc.local_weight_acts(x, g, S, m, m, fs, -pad, stride, C, G), w, g, rng)
    # the same filter bank at every module is a convolution, and its gradient the per-module parts
    wc = w[:C // G * fs * fs]
    tied = np.tile(wc, (m * m, 1))
    np.testing.assert_allclose(cc.local_filter_acts(x, tied, S, m, m, -pad, stride, C, G),
                               cc.conv_filter_acts(x, wc, S, m, m, -pad, stride, C, G), atol=1e-12)
    per_module = cc.local_weight_acts(x, g, S, m, m, fs, -pad, stride, C, G)
    np.testing.assert_allclose(per_module.reshape(m * m, -1, F).sum(0),
                               cc.conv_weight_acts(x, g, S, m, m, fs, -pad, stride, C, G, 0),
                               atol=1e-10)


def test_partial_sum_is_checked_and_changes_nothing():
    rng = np.random.default_rng(4)
    C, S, fs, F, m = 3, 8, 3, 16, 6
    x = rng.standard_normal((C * S * S, 2))
    g = rng.standard_normal((F * m * m, 2))
    ref = cc.conv_weight_acts(x, g, S, m, m, fs, 0, 1, C, 1, 0)
    for ps in (1, 4, 9, 36):
        np.testing.assert_allclose(cc.conv_weight_acts(x, g, S, m, m, fs, 0, 1, C, 1, ps), ref)
    with pytest.raises(ValueError, match="partial_sum"):
        cc.conv_weight_acts(x, g, S, m, m, fs, 0, 1, C, 1, 5)


def test_chunking_over_images_gives_the_same_result(monkeypatch):
    rng = np.random.default_rng(5)
    C, S, fs, F, m, N = 4, 9, 3, 16, 7, 7
    x = rng.standard_normal((C * S * S, N))
    w = rng.standard_normal((C * fs * fs, F))
    wl = rng.standard_normal((m * m * C * fs * fs, F))
    g = rng.standard_normal((F * m * m, N))
    calls = lambda: (cc.conv_filter_acts(x, w, S, m, m, 0, 1, C, 1),  # noqa: E731
                     cc.conv_img_acts(g, w, S, S, m, 0, 1, C, 1),
                     cc.conv_weight_acts(x, g, S, m, m, fs, 0, 1, C, 1, 0),
                     cc.local_filter_acts(x, wl, S, m, m, 0, 1, C, 1),
                     cc.local_img_acts(g, wl, S, S, m, 0, 1, C, 1),
                     cc.local_weight_acts(x, g, S, m, m, fs, 0, 1, C, 1))
    whole = calls()
    monkeypatch.setattr(filter_acts, "COLS_BUDGET_BYTES", C * fs * fs * m * m * 8 * 2)  # 2 cases
    for a, b in zip(whole, calls()):
        np.testing.assert_allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("stride, pad, groups", [(1, -2, 1), (2, -1, 2), (3, 0, 1)])
def test_blocks_of_module_rows_give_the_same_result(monkeypatch, stride, pad, groups):
    """conv builds its im2col matrix a block of module rows at a time; one row per block (the
    smallest budget) must give what one block of all rows gives, overhang and groups included."""
    rng = np.random.default_rng(7)
    C, S, fs, F, N = 8, 11, 5, 32, 3
    m = modules(S, fs, -pad, stride)
    x = rng.standard_normal((C * S * S, N))
    w = rng.standard_normal((C // groups * fs * fs, F))
    g = rng.standard_normal((F * m * m, N))
    calls = lambda: (cc.conv_filter_acts(x, w, S, m, m, pad, stride, C, groups),  # noqa: E731
                     cc.conv_img_acts(g, w, S, S, m, pad, stride, C, groups),
                     cc.conv_weight_acts(x, g, S, m, m, fs, pad, stride, C, groups, 0))
    whole = calls()
    assert filter_acts.block_rows(make_g(x, w, S, m, pad, stride, C, groups), N, 8) == m
    monkeypatch.setattr(filter_acts, "COLS_BLOCK_BYTES", 1)
    assert filter_acts.block_rows(make_g(x, w, S, m, pad, stride, C, groups), N, 8) == 1
    for a, b in zip(whole, calls()):
        np.testing.assert_allclose(a, b, atol=1e-12)


def make_g(x, w, S, m, pad, stride, C, groups):
    return filter_acts.make_geometry("t", x, w, S, m, m, pad, stride, C, groups, conv=True)


def test_float32_stays_float32():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3 * 8 * 8, 4), dtype=np.float32)
    w = rng.standard_normal((3 * 9, 16), dtype=np.float32)
    y = cc.conv_filter_acts(x, w, 8, 6, 6, 0, 1, 3, 1)
    assert y.dtype == np.float32
    assert cc.conv_img_acts(y, w, 8, 8, 6, 0, 1, 3, 1).dtype == np.float32
    assert cc.conv_weight_acts(x, y, 8, 6, 6, 3, 0, 1, 3, 1, 0).dtype == np.float32


def sparse_setup(rng, C=8, fc=4, G=4, S=7, fs=3, F=64, pad=1, stride=2, N=3, local=False):
    """randSparse connections as layer.py:948-951 builds them: overSample permutations."""
    over = G * fc // C
    idx = np.concatenate([rng.permutation(C) for _ in range(over)])
    m = modules(S, fs, pad, stride)
    x = rng.standard_normal((C * S * S, N))
    w = rng.standard_normal(((m * m if local else 1) * fc * fs * fs, F))
    g = rng.standard_normal((F * m * m, N))
    return C, fc, G, S, fs, F, pad, stride, m, over, idx, x, w, g


@pytest.mark.parametrize("local", [False, True])
def test_sparse_acts_are_adjoint(local):
    rng = np.random.default_rng(7)
    C, fc, G, S, fs, F, pad, stride, m, over, idx, x, w, g = sparse_setup(rng, local=local)
    fwd = cc.local_filter_acts_sparse if local else cc.conv_filter_acts_sparse
    img = cc.local_img_acts_sparse if local else cc.conv_img_acts_sparse
    gi = img(g, w, idx, S, S, m, -pad, stride, C, fc, G)
    assert gi.shape == (over * C * S * S, 3)  # one image gradient per oversampling block
    gi = gi.reshape(over, -1, 3).sum(0)       # what layer.cu:887-891 does
    check_adjoint(lambda v: fwd(v, w, idx, S, m, m, -pad, stride, C, fc, G), gi, x, g, rng)
    if local:
        gw = cc.local_weight_acts_sparse(x, g, idx, S, m, m, fs, -pad, stride, C, fc, G)
    else:
        gw = cc.conv_weight_acts_sparse(x, g, idx, S, m, m, fs, -pad, stride, C, fc, G, 0)
    check_adjoint(lambda v: fwd(x, v, idx, S, m, m, -pad, stride, C, fc, G), gw, w, g, rng)


def test_sparse_with_identity_connections_is_grouped_conv():
    rng = np.random.default_rng(8)
    C, fc, G, S, fs, F, m = 8, 4, 2, 6, 3, 32, 4
    x = rng.standard_normal((C * S * S, 2))
    w = rng.standard_normal((fc * fs * fs, F))
    g = rng.standard_normal((F * m * m, 2))
    idx = np.arange(C)
    np.testing.assert_allclose(cc.conv_filter_acts_sparse(x, w, idx, S, m, m, 0, 1, C, fc, G),
                               cc.conv_filter_acts(x, w, S, m, m, 0, 1, C, G), atol=1e-12)
    np.testing.assert_allclose(cc.conv_img_acts_sparse(g, w, idx, S, S, m, 0, 1, C, fc, G),
                               cc.conv_img_acts(g, w, S, S, m, 0, 1, C, G), atol=1e-12)
    np.testing.assert_allclose(cc.conv_weight_acts_sparse(x, g, idx, S, m, m, fs, 0, 1, C, fc, G, 1),
                               cc.conv_weight_acts(x, g, S, m, m, fs, 0, 1, C, G, 1), atol=1e-12)


def test_sparse_rejects_a_block_that_is_not_a_permutation():
    rng = np.random.default_rng(9)
    C, fc, G, S, fs, F, pad, stride, m, over, idx, x, w, g = sparse_setup(rng)
    bad = idx.copy()
    bad[1] = bad[0]
    with pytest.raises(ValueError, match="every colour once"):
        cc.conv_img_acts_sparse(g, w, bad, S, S, m, -pad, stride, C, fc, G)


@pytest.mark.parametrize("kwargs,match", [
    (dict(F=24), "multiple of 16·groups"),
    (dict(F=16, G=2, C=8), "multiple of 16·groups"),
    (dict(stride=4, fs=3), "must not exceed the filter size"),
    (dict(m=3), "modules must cover the image"),
    (dict(pad=-1), "padding_start must be ≤ 0"),
    (dict(C=5), "≤ 3 or even"),
    (dict(C=6, G=2, F=32), "colours per group must be even"),
])
def test_filter_acts_asserts_become_value_errors(kwargs, match):
    p = dict(C=4, S=8, fs=3, F=16, pad=0, stride=1, G=1, m=None)
    p.update(kwargs)
    m = p["m"] or modules(p["S"], p["fs"], p["pad"], p["stride"])
    x = np.zeros((p["C"] * p["S"] ** 2, 2))
    w = np.zeros((p["C"] // p["G"] * p["fs"] ** 2, p["F"]))
    with pytest.raises(ValueError, match=match):
        cc.conv_filter_acts(x, w, p["S"], m, m, -p["pad"], p["stride"], p["C"], p["G"])


def test_img_and_weight_acts_colour_rules():
    # img_acts.cu:916 and weight_acts.cu:593-594: groups need fc % 4; weights need C ≤ 3 or C % 4
    g = np.zeros((32 * 36, 2))
    with pytest.raises(ValueError, match="multiple of 4"):
        cc.conv_img_acts(g, np.zeros((6 * 9, 32)), 8, 8, 6, 0, 1, 12, 2)
    with pytest.raises(ValueError, match="multiple of 4"):
        cc.conv_weight_acts(np.zeros((6 * 64, 2)), np.zeros((16 * 36, 2)), 8, 6, 6, 3, 0, 1, 6, 1, 0)
    with pytest.raises(ValueError, match="not a square"):
        cc.conv_filter_acts(np.zeros((3 * 64, 2)), np.zeros((3 * 8, 16)), 8, 6, 6, 0, 1, 3, 1)
