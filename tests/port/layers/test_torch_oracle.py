"""The port against PyTorch's CPU build (test oracle only): fc, softmax, log-loss, dropout at
test time, and a small conv net forward and backward from the same weights, in float32."""
from __future__ import annotations

import numpy as np
import pytest

from port import layer_kernels as lk
from port.gradients import from_descent
from port.layers.base import PASS_GC, PASS_TEST
from port.model import ConvNet
from tests.port.layers import netutil as nu

torch = pytest.importorskip("torch")
F = torch.nn.functional
RTOL = 1e-5


def _close(a, b, rtol=RTOL):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    err = np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)
    assert err < rtol, err


def test_fc_forward_backward_is_linear():
    rng = np.random.default_rng(0)
    layers = nu.as_dict(nu.data("x", 12, 0), nu.fc("fc", ["x"], [12], 7, rng), nu.sum2("sq", "fc"))
    net = ConvNet(layers, minibatch_size=5, dtype=np.float32)
    x = rng.standard_normal((12, 5)).astype(np.float32)
    net.fprop(net._to_device([x]), PASS_GC)
    net.bprop(PASS_GC)
    fc = net.layers["fc"]
    W = torch.tensor(layers["fc"]["weights"][0], requires_grad=True)
    b = torch.tensor(layers["fc"]["biases"], requires_grad=True)
    y = F.linear(torch.tensor(x.T), W.T, b.reshape(-1))                       # (N, out)
    (y ** 2).sum().backward()
    _close(fc.acts.T, y.detach().numpy())
    _close(from_descent(fc.weights[0].grad), W.grad.numpy())
    _close(from_descent(fc.biases.grad), b.grad.numpy())


def test_softmax_and_log_loss():
    rng = np.random.default_rng(1)
    x = (3 * rng.standard_normal((10, 6))).astype(np.float32)
    labels = rng.integers(0, 10, size=(1, 6)).astype(np.float32)
    xt = torch.tensor(x.T, requires_grad=True)
    _close(lk.softmax(x).T, torch.softmax(xt, dim=1).detach().numpy())
    loss = F.cross_entropy(xt, torch.tensor(labels[0]).long(), reduction="sum")
    loss.backward()
    probs = lk.softmax(x)
    log_probs, _ = lk.compute_logreg_cost(labels, probs)
    _close(-log_probs.sum(), loss.item())
    _close(from_descent(lk.compute_logreg_softmax_grad(labels, probs, 1.0)).T, xt.grad.numpy())
    # the unfused path: coeff/p to the probabilities, then the softmax Jacobian
    unfused = lk.compute_softmax_grad(probs, lk.compute_logreg_grad(labels, probs, 1.0))
    _close(from_descent(unfused).T, xt.grad.numpy(), rtol=1e-4)


def test_dropout_at_test_time_scales_by_keep():
    """The paper's form: y = keep·x at test (PyTorch's eval dropout is the identity, ×keep here)."""
    rng = np.random.default_rng(2)
    layers = nu.as_dict(nu.data("x", 8, 0), nu.fc("fc", ["x"], [8], 8, rng),
                        nu.simple("hs", "hs", ["fc"], 8, keep=0.5, enable=True), nu.sum2("sq", "hs"))
    net = ConvNet(layers, minibatch_size=4)
    x = rng.standard_normal((8, 4)).astype(np.float32)
    net.fprop(net._to_device([x]), PASS_TEST)
    drop = torch.nn.Dropout(p=0.5).eval()
    ref = 0.5 * drop(torch.tensor(net.layers["fc"].acts.T)).numpy()
    _close(net.layers["hs"].acts.T, ref)


def test_small_conv_net_forward_backward():
    """conv(relu) → max pool → cross-map LRN → grouped conv(relu) → fc → softmax → logreg,
    built again in PyTorch from the same weights; loss and every weight gradient agree."""
    rng = np.random.default_rng(3)
    n, img = 6, 8
    c1 = nu.conv("conv1", ["data"], 3, img, 16, 3, rng, padding=1, init_w=0.3)
    # pool 3/2 over 8 → 4 outputs (ceil((8-0-3)/2)+1 = 4, as PyTorch's ceil_mode)
    pool = nu.simple("pool1", "pool", ["conv1_neuron"], 16 * 16, channels=16, sizeX=3, start=0,
                     stride=2, outputsX=4, imgSize=8, pool="max")
    size, alpha, beta, k = 5, 1e-2, 0.75, 2.0
    norm = nu.simple("rnorm1", "cmrnorm", ["pool1"], 16 * 16, channels=16, size=size,
                     scale=alpha / size, pow=beta, minDiv=k, blocked=False, imgSize=4)
    c2 = nu.conv("conv2", ["rnorm1"], 16, 4, 32, 3, rng, padding=1, groups=2, init_w=0.3)
    fcd = nu.fc("fc", ["conv2_neuron"], [32 * 16], 10, rng, init_w=0.05)
    relu = {"type": "relu", "params": {}}
    layers = nu.as_dict(
        nu.data("data", 3 * img * img, 0), nu.data("labels", 1, 1), c1,
        nu.simple("conv1_neuron", "neuron", ["conv1"], 16 * 64, neuron=relu), pool, norm, c2,
        nu.simple("conv2_neuron", "neuron", ["conv2"], 32 * 16, neuron=relu), fcd,
        nu.simple("probs", "softmax", ["fc"], 10), nu.logreg("logreg", "labels", "probs"))
    net = ConvNet(layers, minibatch_size=n, dtype=np.float32)
    x = rng.standard_normal((3 * img * img, n)).astype(np.float32)
    labels = rng.integers(0, 10, size=(1, n)).astype(np.float32)
    net.fprop(net._to_device([x, labels]), PASS_GC)
    net.bprop(PASS_GC)

    def conv_w(d):   # (fc·fs², F) → (F, fc, fs, fs)
        fs = d["filterSize"][0]
        return torch.tensor(d["weights"][0].T.reshape(d["filters"], -1, fs, fs).copy(), requires_grad=True)

    w1, w2 = conv_w(c1), conv_w(c2)
    b1 = torch.tensor(c1["biases"].reshape(-1), requires_grad=True)
    b2 = torch.tensor(c2["biases"].reshape(-1), requires_grad=True)
    wf = torch.tensor(fcd["weights"][0], requires_grad=True)
    bf = torch.tensor(fcd["biases"].reshape(-1), requires_grad=True)
    xt = torch.tensor(x.T.reshape(n, 3, img, img).copy())
    h = F.relu(F.conv2d(xt, w1, b1, padding=1))
    h = F.max_pool2d(h, 3, 2, ceil_mode=True)
    h = F.local_response_norm(h, size, alpha=alpha, beta=beta, k=k)
    h = F.relu(F.conv2d(h, w2, b2, padding=1, groups=2))
    logits = h.reshape(n, -1) @ wf + bf
    loss = F.cross_entropy(logits, torch.tensor(labels[0]).long(), reduction="sum")
    loss.backward()

    _close(net.layers["probs"].acts.T, torch.softmax(logits, 1).detach().numpy())
    _close(net.get_cost().cost_map["logreg"][0], loss.item())
    L = net.layers

    def grad(layer, i=None):
        w = L[layer].biases if i is None else L[layer].weights[i]
        return from_descent(np.asarray(w.grad))

    _close(grad("conv1", 0).T.reshape(w1.shape), w1.grad.numpy())
    _close(grad("conv1").reshape(-1), b1.grad.numpy())
    _close(grad("conv2", 0).T.reshape(w2.shape), w2.grad.numpy())
    _close(grad("conv2").reshape(-1), b2.grad.numpy())
    _close(grad("fc", 0), wf.grad.numpy())
    _close(grad("fc").reshape(-1), bf.grad.numpy())
