"""The layers ported for issue 10 against PyTorch (test oracle only), values and gradients within
1e-5: cross-entropy costs, the robust Flickr cost, the gated sum of squares, TICA, the tree
softmax layer, and the multi-softmax cost against an enumeration of every k-subset."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from port.gradients import from_descent
from port.layers.base import PASS_GC
from port.model import ConvNet
from tests.port.layers import netutil as nu

torch = pytest.importorskip("torch")
F = torch.nn.functional
RTOL = 1e-5
N = 5


def _close(a, b, rtol=RTOL):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    err = np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)
    assert err < rtol, err


def _run(layers, data):
    net = ConvNet(layers, minibatch_size=N, dtype=np.float64, rng=0)
    net.fprop(net._to_device(data), PASS_GC)
    net.bprop(PASS_GC)
    return net


def _fc_torch(d):
    return (torch.tensor(d["weights"][0].astype(np.float64), requires_grad=True),
            torch.tensor(d["biases"].reshape(-1).astype(np.float64), requires_grad=True))


def _wgrad(net, name):
    return from_descent(np.asarray(net.layers[name].weights[0].grad))


def test_crossent_and_crossent2_and_rflickr():
    rng = np.random.default_rng(0)
    logistic = {"type": "logistic", "params": {}}
    f1, f2, f3 = (nu.fc(f"fc{i}", ["a"], [6], 4, rng, init_w=0.5) for i in (1, 2, 3))
    layers = nu.as_dict(nu.data("a", 6, 0), nu.data("p", 4, 1), nu.data("t", 4, 2), f1, f2, f3,
                        nu.simple("probs", "softmax", ["fc1"], 4),
                        nu.simple("ce", "cost.crossent", ["p", "probs"], 0, coeff=1.0),
                        nu.simple("y2", "neuron", ["fc2"], 4, neuron=logistic),
                        nu.simple("ce2", "cost.crossent2", ["t", "y2"], 0, coeff=1.0),
                        nu.simple("y3", "neuron", ["fc3"], 4, neuron=logistic),
                        nu.simple("rf", "cost.rflickr", ["t", "y3"], 0, coeff=1.0))
    x = rng.standard_normal((6, N))
    p = rng.random((4, N)); p /= p.sum(axis=0)
    t = (rng.random((4, N)) > 0.5).astype(np.float64)
    net = _run(layers, [x, p, t])
    xt, pt, tt = torch.tensor(x.T), torch.tensor(p.T), torch.tensor(t.T)
    (w1, b1), (w2, b2), (w3, b3) = _fc_torch(f1), _fc_torch(f2), _fc_torch(f3)
    ce = F.cross_entropy(xt @ w1 + b1, pt, reduction="sum")
    ce2 = F.binary_cross_entropy_with_logits(xt @ w2 + b2, tt, reduction="sum")
    rf = torch.log1p((torch.sigmoid(xt @ w3 + b3) - tt) ** 2).sum()
    (ce + ce2 + rf).backward()
    costs = net.get_cost().cost_map
    _close(costs["ce"][0], ce.item())
    _close(costs["ce2"][0], ce2.item())
    _close(costs["rf"][0], rf.item())
    for name, w in [("fc1", w1), ("fc2", w2), ("fc3", w3)]:
        _close(_wgrad(net, name), w.grad.numpy())


def test_gsum2_and_tica():
    rng = np.random.default_rng(1)
    size, C, sx = 5, 16, 3
    f = nu.fc("fc", ["a"], [6], 4, rng)
    c = nu.conv("conv", ["img"], 3, size, C, 3, rng, padding=1)
    layers = nu.as_dict(nu.data("a", 6, 0), nu.data("g", 1, 1), nu.data("img", 3 * size * size, 2), f, c,
                        nu.simple("g2", "cost.gsum2", ["g", "fc"], 0, coeff=1.0),
                        nu.simple("tica", "cost.tica", ["conv"], 0, coeff=1.0, channels=C, sizeX=sx))
    x, g, img = rng.standard_normal((6, N)), rng.random((1, N)), rng.standard_normal((3 * size * size, N))
    net = _run(layers, [x, g, img])
    w, b = _fc_torch(f)
    h = torch.tensor(x.T) @ w + b
    gs = (torch.tensor(g.T) * h ** 2).sum()
    fs = c["filterSize"][0]
    wc = torch.tensor(c["weights"][0].T.reshape(C, 3, fs, fs).astype(np.float64), requires_grad=True)
    bc = torch.tensor(c["biases"].reshape(-1).astype(np.float64), requires_grad=True)
    y = F.conv2d(torch.tensor(img.T.reshape(N, 3, size, size).copy()), wc, bc, padding=1)
    S = F.avg_pool2d(y ** 2, sx, stride=1, padding=sx // 2, count_include_pad=True) * sx * sx
    root = torch.sqrt(S)
    tica = (root - 0.001 * torch.log(0.001 + root)).sum()
    (gs + tica).backward()
    costs = net.get_cost().cost_map
    _close(costs["g2"][0], gs.item())
    _close(costs["tica"][0], tica.item())
    _close(_wgrad(net, "fc"), w.grad.numpy())
    _close(_wgrad(net, "conv").T.reshape(wc.shape), wc.grad.numpy())


def test_treefc_is_an_fc_over_path_sums():
    rng = np.random.default_rng(2)
    tree = [[], [], [], [], [0, 1], [2, 3, 4]]                    # 4 classes, inner 4, root 5
    t = nu.fc("tree", ["a"], [6], 4, rng)
    t.update(type="treefc", tree=tree, rootLabel=5)
    t["weights"] = [np.asfortranarray(rng.standard_normal((6, 6)))]
    t["weightsInc"] = [np.zeros_like(t["weights"][0])]
    layers = nu.as_dict(nu.data("a", 6, 0), nu.data("labels", 1, 1), t,
                        nu.simple("probs", "softmax", ["tree"], 4), nu.logreg("logreg", "labels", "probs"))
    x, labels = rng.standard_normal((6, N)), rng.integers(0, 4, size=(1, N)).astype(np.float64)
    net = _run(layers, [x, labels])
    W = torch.tensor(t["weights"][0].astype(np.float64), requires_grad=True)
    b = torch.tensor(t["biases"].reshape(-1).astype(np.float64))
    eff = torch.stack([W[:, 0] + W[:, 4] + W[:, 5], W[:, 1] + W[:, 4] + W[:, 5],
                       W[:, 2] + W[:, 5], W[:, 3] + W[:, 5]], dim=1)
    loss = F.cross_entropy(torch.tensor(x.T) @ eff + b, torch.tensor(labels[0]).long(), reduction="sum")
    loss.backward()
    _close(net.get_cost().cost_map["logreg"][0], loss.item())
    _close(from_descent(np.asarray(net.layers["tree"].tree_weights.all_grad)), W.grad.numpy())


@pytest.mark.parametrize("k", [1, 2, 3])
def test_multisoftmax_against_every_subset(k):
    rng = np.random.default_rng(3)
    C = 6
    f = nu.fc("fc", ["a"], [5], C, rng, init_w=0.7)
    layers = nu.as_dict(nu.data("a", 5, 0), nu.data("labels", 1, 1), f,
                        nu.simple("msm", "cost.msm", ["labels", "fc"], 0, coeff=1.0, setSize=k, numOut=C, threads=1))
    x, labels = rng.standard_normal((5, N)), rng.integers(0, C, size=(1, N)).astype(np.float64)
    net = _run(layers, [x, labels])
    w, b = _fc_torch(f)
    E = torch.tensor(x.T) @ w + b                                       # (N, C)
    subsets = list(itertools.combinations(range(C), k))
    member = torch.tensor([[i in s for i in range(C)] for s in subsets], dtype=torch.float64)   # (S, C)
    scores = E @ member.T                                               # (N, S)
    log_z = torch.logsumexp(scores, dim=1)
    y = torch.tensor(labels[0]).long()
    has_y = member[:, y].T.bool()                                        # (N, S)
    log_py = torch.logsumexp(scores.masked_fill(~has_y, -torch.inf), dim=1) - log_z
    (-log_py.sum()).backward()
    marg = torch.exp(torch.logsumexp(scores[:, :, None] + torch.log(member)[None], dim=1) - log_z[:, None])
    _close(net.layers["msm"].acts.T, marg.detach().numpy())
    _close(net.get_cost().cost_map["msm"][0], -log_py.sum().item())
    _close(_wgrad(net, "fc"), w.grad.numpy())
