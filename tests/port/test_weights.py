"""port.weights: the update rule against hand-computed values, both gradient paths, shared
weights (only the owner updates), gradient accumulation across minibatches, and the
layer constraints (wball) applied after the update."""
from __future__ import annotations

import numpy as np
import pytest

from port.backend import to_host
from port.lr import make_schedule
from port.model import ConvNet
from port.weights import Weights
from tests.port.layers import netutil as nu

DEFAULT = {"type": "default", "params": {}}


def _weights(w, eps=0.1, wc=0.0, mom=0.9, use_grad=True, inc=None):
    w = np.array(w, dtype=np.float64)
    inc = np.zeros_like(w) if inc is None else np.array(inc, dtype=np.float64)
    ws = Weights(w, inc, make_schedule(DEFAULT, eps), eps, wc=wc, mom=mom, use_grad=use_grad,
                 dtype=np.float64)
    ws.copy_to_gpu()
    return ws


def test_update_rule_by_hand():
    # inc = mom·inc + ε·ḡ − wc·ε·W ; W += inc, with ḡ = grad_sum/N (descent direction)
    ws = _weights([[1.0, -2.0]], eps=0.1, wc=0.01, mom=0.9, inc=[[0.5, 0.0]])
    ws.accumulate(np.array([[4.0, 8.0]]), num_cases=4, gc=False, progress=0.0)   # ḡ = [1, 2]
    ws.update(0.0)
    inc = [[0.9 * 0.5 + 0.1 * 1.0 - 0.01 * 0.1 * 1.0, 0.0 + 0.1 * 2.0 - 0.01 * 0.1 * (-2.0)]]
    assert np.allclose(ws.inc, inc)
    assert np.allclose(ws.w, np.array([[1.0, -2.0]]) + inc)
    ws.copy_to_cpu()
    assert np.allclose(ws.host_w, np.array([[1.0, -2.0]]) + inc)


def test_grad_and_inc_paths_agree():
    a = _weights([[0.3, 0.7]], eps=0.05, wc=0.1, mom=0.9, use_grad=True, inc=[[0.1, -0.1]])
    b = _weights([[0.3, 0.7]], eps=0.05, wc=0.1, mom=0.9, use_grad=False, inc=[[0.1, -0.1]])
    for g in ([[1.0, 2.0]], [[-3.0, 0.5]]):
        for ws in (a, b):
            ws.accumulate(np.array(g), 2, False, 0.0)
            ws.accumulate(np.array(g), 2, False, 0.0)     # a second contribution adds
            ws.update(0.0)
    assert np.allclose(a.w, b.w) and np.allclose(a.inc, b.inc)


def test_fortran_ordered_host_weights_are_row_major_on_the_device_and_written_back_in_place():
    # fc weights are Fortran-ordered on the host, as the original's parser makes them; the device
    # copies are row-major (the gradient products are), and copy_to_cpu keeps the host arrays.
    host_w = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    host_inc = np.asfortranarray(np.zeros((2, 3)))
    ws = Weights(host_w, host_inc, make_schedule(DEFAULT, 0.1), 0.1, mom=0.9, use_grad=False,
                 dtype=np.float64)
    ws.copy_to_gpu()
    assert ws.w.flags.c_contiguous and ws.inc.flags.c_contiguous and ws.grad.flags.c_contiguous
    ws.accumulate(np.ones((2, 3)), num_cases=2, gc=False, progress=0.0)
    ws.update(0.0)
    ws.copy_to_cpu()
    assert ws.host_w is host_w and host_w.flags.f_contiguous
    assert np.array_equal(host_w, np.arange(6.0).reshape(2, 3) + 0.05)
    assert np.array_equal(host_inc, np.full((2, 3), 0.05))


def test_zero_eps_never_updates_and_shared_weights_update_once():
    frozen = _weights([[1.0]], eps=0.0)
    frozen.accumulate(np.array([[5.0]]), 1, False, 0.0)
    frozen.update(0.0)
    assert frozen.w[0, 0] == 1.0
    owner = _weights([[1.0]], eps=0.1, mom=0.0)
    shared = Weights.shared(owner, make_schedule(DEFAULT, 0.1), 0.1)
    owner.accumulate(np.array([[1.0]]), 1, False, 0.0)
    shared.accumulate(np.array([[2.0]]), 1, False, 0.0)   # adds into the owner's gradient
    assert owner.get_num_updates() == 2 and owner.grad[0, 0] == 3.0
    shared.update(0.0)                                      # not the owner: nothing happens
    assert owner.w[0, 0] == 1.0
    owner.update(0.0)
    assert np.isclose(owner.w[0, 0], 1.0 + 0.1 * 3.0) and shared.w is owner.w


def _fc_net(rng, **params):
    layers = nu.as_dict(nu.data("x", 6, 0), nu.fc("fc", ["x"], [6], 4, rng, **params),
                        nu.sum2("sq", "fc", coeff=0.5))
    return layers


def test_training_step_matches_hand_computed_sgd():
    """One start_batch on sum2 (coeff 0.5): ḡ = −(1/N)·x·yᵀ, biases without decay."""
    rng = np.random.default_rng(0)
    layers = _fc_net(rng, eps_w=0.1, eps_b=0.2, mom=0.9, wc=0.01)
    W0 = layers["fc"]["weights"][0].astype(np.float64).copy()
    b0 = layers["fc"]["biases"].astype(np.float64).copy()
    net = ConvNet(layers, minibatch_size=8, dtype=np.float64)
    x = rng.standard_normal((6, 8))
    net.start_batch([x], 0.0, False)
    costs, n = net.finish_batch()
    y = W0.T @ x + b0.T
    assert n == 8 and np.isclose(costs["sq"][0], (y ** 2).sum())
    inc_w = 0.1 * (-(x @ y.T) / 8) - 0.01 * 0.1 * W0
    inc_b = 0.2 * (-y.sum(axis=1) / 8)
    net.sync_with_host()
    assert np.allclose(layers["fc"]["weights"][0], W0 + inc_w, atol=1e-6)
    assert np.allclose(layers["fc"]["biases"], b0 + inc_b, atol=1e-6)
    assert np.allclose(layers["fc"]["weightsInc"][0], inc_w, atol=1e-6)


def test_wupdate_freq_accumulates_over_minibatches():
    """With --wupdate-freq=2 two minibatches of 4 make one update with ḡ over 8 cases."""
    rng = np.random.default_rng(1)
    base = _fc_net(rng, eps_w=0.1, eps_b=0.1, mom=0.0)
    x = rng.standard_normal((6, 8))
    one = ConvNet({k: dict(v, weights=[w.copy() for w in v.get("weights", [])]) if "weights" in v
                   else v for k, v in base.items()}, minibatch_size=8, dtype=np.float64)
    two = ConvNet(base, minibatch_size=4, wupdate_freq=2, dtype=np.float64)
    one.start_batch([x], 0.0, False)
    two.start_batch([x], 0.0, False)
    assert np.allclose(one.layers["fc"].weights[0].w, two.layers["fc"].weights[0].w)


def test_wball_rescales_only_long_columns():
    rng = np.random.default_rng(2)
    layers = _fc_net(rng, eps_w=1e-9, eps_b=0.0, mom=0.0, wball=0.5)   # B = 0.5·6 = 3
    W = np.zeros((6, 4), dtype=np.float32, order="F")
    W[:, 0] = 10.0      # norm ≈ 24.5 > 3 → rescaled to 3
    W[:, 1] = 0.1       # norm ≈ 0.24 → kept
    layers["fc"]["weights"][0][...] = W
    net = ConvNet(layers, minibatch_size=4, dtype=np.float64)
    net.start_batch([np.zeros((6, 4))], 0.0, False)
    w = np.asarray(net.layers["fc"].weights[0].w)
    assert np.isclose(np.linalg.norm(w[:, 0]), 3.0)
    assert np.allclose(w[:, 1], 0.1)


def test_rng_state_round_trip_repeats_dropout(xp_backend):
    rng = np.random.default_rng(3)
    layers = nu.as_dict(nu.data("x", 6, 0), nu.fc("fc", ["x"], [6], 4, rng),
                        nu.simple("hs", "hs", ["fc"], 4, keep=0.5, enable=True), nu.sum2("sq", "hs"))
    net = ConvNet(layers, minibatch_size=4, rng=7, dtype=np.float64)
    state = net.get_rng_state()
    from port.layers.base import PASS_TRAIN
    x = net._to_device([rng.standard_normal((6, 4))])
    net.fprop(x, PASS_TRAIN)
    m1 = to_host(net.layers["hs"].sex_mask)
    net.set_rng_state(state)
    net.fprop(x, PASS_TRAIN)
    assert np.array_equal(m1, to_host(net.layers["hs"].sex_mask))
    assert 0 < m1.sum() < m1.size


@pytest.mark.parametrize("lo,hi", [(0.0, 0.01), (10.0, 20.0)])
def test_conv_weight_contrast_norm(lo, hi):
    """wcNormMax/Min bring each filter's ‖w − mean‖/fan-in into [min, max]."""
    rng = np.random.default_rng(4)
    c = nu.conv("conv1", ["data"], 3, 5, 16, 3, rng, init_w=0.5, eps_w=1e-12, eps_b=0.0)
    c["wcNormMax"], c["wcNormMin"] = [hi], [lo]
    layers = nu.as_dict(nu.data("data", 75, 0), c, nu.sum2("sq", "conv1"))
    net = ConvNet(layers, minibatch_size=2, dtype=np.float64)
    net.start_batch([np.zeros((75, 2))], 0.0, False)
    w = np.asarray(net.layers["conv1"].weights[0].w)
    a = np.linalg.norm(w - w.mean(axis=0), axis=0) / w.shape[0]
    assert np.all(a >= lo * (1 - 1e-9)) and np.all(a <= hi * (1 + 1e-9))
    assert np.allclose(a, hi if lo == 0.0 else lo)


@pytest.mark.parametrize("use_grad, wc, draws", [(True, 0.01, 2), (True, 0.0, 1), (False, 0.01, 1),
                                                 (False, 0.0, 0)])
def test_update_draws_the_rate_at_each_use_as_the_original(use_grad, wc, draws):
    """weights.cu calls getRate once for the step (useGrad) and once more for the decay (wc > 0),
    so a noisy schedule gives them independent rates and no draw happens where neither applies."""
    ws = _weights(np.ones((3, 2), np.float32), wc=wc, use_grad=use_grad)
    calls = []
    rate = ws.schedule.get_rate
    ws.schedule.get_rate = lambda p: calls.append(p) or rate(p)
    ws.update(0.5)
    assert calls == [0.5] * draws
