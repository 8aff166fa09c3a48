"""Every layer type passes a float64 central-difference gradient check (relative error < 1e-6).

Each net is data → a weight layer (so that gradient flows) → the layer under test → a cost; the
check covers every weight matrix below the cost, hence the tested layer's backward pass.
"""
from __future__ import annotations

import numpy as np
import pytest

from port.model import ConvNet
from tests.port.layers import netutil as nu

TOL = 1e-6
N = 4
pytestmark = pytest.mark.usefixtures("xp_backend")     # each test runs per $ALEXNET_TEST_BACKENDS


def _check(layers, dims, num_classes=None, seed=0):
    rng = np.random.default_rng(seed)
    net = ConvNet(layers, minibatch_size=N, dtype=np.float64, rng=1)
    data = net._to_device(nu.random_batch(rng, dims, N, num_classes))
    err = nu.central_difference_check(net, data)
    assert err < TOL, err
    return net


def _img_net(rng, tested: list, tested_out: int, channels=16, size=6):
    """data (3, size, size) → conv (channels filters, 3×3, pad 1, tanh) → tested → fc 3 → softmax → logreg."""
    return nu.as_dict(
        nu.data("data", 3 * size * size, 0), nu.data("labels", 1, 1),
        nu.conv("conv1", ["data"], 3, size, channels, 3, rng, padding=1),
        nu.simple("conv1_neuron", "neuron", ["conv1"], channels * size * size,
                  neuron={"type": "tanh", "params": {"a": 1.0, "b": 1.0}}),
        *tested,
        nu.fc("fc", [tested[-1]["name"]], [tested_out], 3, rng),
        nu.simple("probs", "softmax", ["fc"], 3), nu.logreg("logreg", "labels", "probs"))


def test_fc_multi_input_softmax_logreg():
    rng = np.random.default_rng(1)
    layers = nu.as_dict(nu.data("a", 5, 0), nu.data("b", 4, 1), nu.data("labels", 1, 2),
                        nu.fc("fc1", ["a", "b", "a"], [5, 4, 5], 6, rng),
                        nu.fc("fc2", ["fc1"], [6], 3, rng),
                        nu.simple("probs", "softmax", ["fc2"], 3),
                        nu.logreg("logreg", "labels", "probs", topk=2))
    _check(layers, [5, 4, None], 3)


def test_softmax_unfused_and_sum2():
    rng = np.random.default_rng(2)
    layers = nu.as_dict(nu.data("a", 5, 0), nu.fc("fc1", ["a"], [5], 4, rng),
                        nu.simple("probs", "softmax", ["fc1"], 4), nu.sum2("sq", "probs", coeff=0.7))
    _check(layers, [5])


def test_logreg_unfused_over_shared_softmax():
    """A softmax with two consumers: logreg sends coeff/p and the softmax applies its Jacobian."""
    rng = np.random.default_rng(3)
    layers = nu.as_dict(nu.data("a", 5, 0), nu.data("labels", 1, 1),
                        nu.fc("fc1", ["a"], [5], 4, rng),
                        nu.simple("probs", "softmax", ["fc1"], 4),
                        nu.logreg("logreg", "labels", "probs", coeff=0.5),
                        nu.sum2("sq", "probs", coeff=0.3))
    _check(layers, [5, None], 4)


@pytest.mark.parametrize("neuron", [
    {"type": "logistic", "params": {}}, {"type": "tanh", "params": {"a": 1.7, "b": 0.6}},
    {"type": "ident", "params": {}}, {"type": "softrelu", "params": {}},
    {"type": "linear", "params": {"a": 2.0, "b": 0.5}}, {"type": "square", "params": {}},
    {"type": "relu", "params": {}}, {"type": "abs", "params": {}},
    {"type": "drelu", "params": {"a": 1.5}},
])
def test_neuron_layers(neuron):
    rng = np.random.default_rng(4)
    layers = nu.as_dict(nu.data("a", 6, 0), nu.fc("fc1", ["a"], [6], 5, rng, init_w=0.5),
                        nu.simple("n", "neuron", ["fc1"], 5, neuron=neuron),
                        nu.fc("fc2", ["n"], [5], 3, rng), nu.sum2("sq", "fc2"))
    _check(layers, [6])


def test_eltsum_eltmax_concat_hs():
    rng = np.random.default_rng(5)
    layers = nu.as_dict(
        nu.data("a", 6, 0), nu.data("labels", 1, 1),
        nu.fc("fa", ["a"], [6], 5, rng), nu.fc("fb", ["a"], [6], 5, rng), nu.fc("fc_", ["a"], [6], 5, rng),
        nu.simple("sum", "eltsum", ["fa", "fb"], 5, coeffs=[0.5, -2.0]),
        nu.simple("max", "eltmax", ["fa", "fb", "fc_"], 5),
        nu.simple("cat", "concat", ["sum", "max", "fa"], 15, copyOffsets=[0, 5, 10]),
        nu.simple("drop", "hs", ["cat"], 15, keep=0.5, enable=True),
        nu.fc("out", ["drop"], [15], 3, rng),
        nu.simple("probs", "softmax", ["out"], 3), nu.logreg("logreg", "labels", "probs"))
    _check(layers, [6, None], 3)


@pytest.mark.strict_heavy
@pytest.mark.parametrize("kw", [
    dict(padding=1, stride=1, groups=1),
    dict(padding=0, stride=2, groups=2),
    dict(padding=2, stride=3, groups=1, shared_biases=False, partial_sum=4),
])
def test_conv(kw):
    rng = np.random.default_rng(6)
    size = 7
    ch = 4 * kw["groups"]
    c1 = nu.conv("conv1", ["data", "data2"], ch, size, 16 * kw["groups"], 3, rng, **kw)
    layers = nu.as_dict(nu.data("data", ch * size * size, 0), nu.data("data2", ch * size * size, 1),
                        nu.data("labels", 1, 2), c1,
                        nu.fc("fc", ["conv1"], [c1["outputs"]], 3, rng),
                        nu.simple("probs", "softmax", ["fc"], 3), nu.logreg("logreg", "labels", "probs"))
    _check(layers, [ch * size * size, ch * size * size, None], 3)


@pytest.mark.strict_heavy
def test_local_unshared():
    rng = np.random.default_rng(7)
    size = 5
    c1 = nu.conv("local1", ["data"], 3, size, 16, 3, rng, padding=1, stride=2, type_="local")
    layers = nu.as_dict(nu.data("data", 3 * size * size, 0), nu.data("labels", 1, 1), c1,
                        nu.fc("fc", ["local1"], [c1["outputs"]], 3, rng),
                        nu.simple("probs", "softmax", ["fc"], 3), nu.logreg("logreg", "labels", "probs"))
    _check(layers, [3 * size * size, None], 3)


@pytest.mark.strict_heavy
def test_conv_rand_sparse():
    """randSparse: each of 2 groups reads 4 of the 4 channels in its own order (overSample 2)."""
    rng = np.random.default_rng(8)
    size = 5
    c1 = nu.conv("conv1", ["data"], 4, size, 32, 3, rng, padding=1, groups=2)
    c1.update(randSparse=[True], filterChannels=[4], overSample=[2], weightsPerFilter=[4 * 9],
              filterConns=[[2, 0, 3, 1, 1, 3, 0, 2]])
    c1["weights"] = [(0.1 * rng.standard_normal((4 * 9, 32))).astype(np.float32)]
    c1["weightsInc"] = [np.zeros_like(c1["weights"][0])]
    layers = nu.as_dict(nu.data("data", 4 * size * size, 0), nu.fc("pre", ["data"], [4 * size * size],
                                                                   4 * size * size, rng),
                        c1, nu.fc("fc", ["conv1"], [c1["outputs"]], 3, rng), nu.sum2("sq", "fc"))
    c1["inputs"] = ["pre"]
    _check(layers, [4 * size * size])


def test_conv_rand_sparse_oversampled_adds_to_the_other_consumers_gradient(monkeypatch):
    """A random-sparse conv (overSample 2) and an fc both read ``pre``: pre's gradient is the sum
    of both (the gradient check of pre's weights passes). The original overwrites it with the
    conv's sum over the copies (alexnet-2012/src/layer.cu:888-891, nvmatrix.cu:904-906), losing
    the fc's part: dropping that part here fails the check."""
    rng = np.random.default_rng(27)
    size = 4
    c1 = nu.conv("conv1", ["pre"], 4, size, 32, 3, rng, padding=1, groups=2, eps_w=0.0, eps_b=0.0)
    c1.update(randSparse=[True], filterChannels=[4], overSample=[2], weightsPerFilter=[4 * 9],
              filterConns=[[2, 0, 3, 1, 1, 3, 0, 2]], gradConsumer=True)
    c1["weights"] = [(0.1 * rng.standard_normal((4 * 9, 32))).astype(np.float32)]
    c1["weightsInc"] = [np.zeros_like(c1["weights"][0])]
    pre = nu.fc("pre", ["data"], [3], 4 * size * size, rng, init_w=0.5)
    f2 = nu.fc("fc2", ["pre"], [4 * size * size], 2, rng, eps_w=0.0, eps_b=0.0)
    f2["gradConsumer"] = True
    layers = nu.as_dict(nu.data("data", 3, 0), pre, c1, f2,
                        nu.sum2("sq1", "conv1", coeff=0.05), nu.sum2("sq2", "fc2"))
    net = _check(layers, [3])
    assert net.layers["conv1"].weights[0].base_rate == 0       # pre's matrices alone are checked
    # the fc's part dropped, as the original's overwrite drops it when the fc has sent first
    from port.layers.weight import FCLayer
    orig = FCLayer.bprop_acts
    monkeypatch.setattr(FCLayer, "bprop_acts",
                        lambda self, v, i, p: None if self.name == "fc2" else orig(self, v, i, p))
    net2 = ConvNet(layers, minibatch_size=N, dtype=np.float64, rng=1)
    data = net2._to_device(nu.random_batch(np.random.default_rng(0), [3], N))
    assert nu.central_difference_check(net2, data) > 0.01


@pytest.mark.strict_heavy
@pytest.mark.parametrize("pool,size_x,start,stride", [
    ("max", 3, 0, 2), ("avg", 3, 0, 2), ("maxabs", 2, 0, 2), ("avg", 3, -1, 1)])
def test_pool(pool, size_x, start, stride):
    import math
    rng = np.random.default_rng(9)
    img, ch = 6, 16
    ox = int(math.ceil((img - start - size_x) / stride)) + 1
    tested = nu.simple("pool", "pool", ["conv1_neuron"], ch * ox * ox, channels=ch, sizeX=size_x,
                       start=start, stride=stride, outputsX=ox, imgSize=img, pool=pool)
    _check(_img_net(rng, [tested], ch * ox * ox), [3 * 36, None], 3)


@pytest.mark.strict_heavy
@pytest.mark.parametrize("kind,extra", [
    ("rnorm", {}),
    ("cmrnorm", {"minDiv": 2.0, "blocked": False}), ("cmrnorm", {"minDiv": 0.5, "blocked": True}),
])
def test_norm(kind, extra):
    rng = np.random.default_rng(10)
    size = 3 if kind != "cmrnorm" else 5
    scale = 0.5 / (size if kind == "cmrnorm" else size * size)
    tested = nu.simple("norm", kind, ["conv1_neuron"], 16 * 36, channels=16, size=size, scale=scale,
                       pow=0.75, imgSize=6, **extra)
    _check(_img_net(rng, [tested], 16 * 36), [3 * 36, None], 3)


@pytest.mark.strict_heavy
def test_image_layers():
    """href, blur and nailbed in a chain (all have a backward pass), on 3-channel 6×6 images."""
    rng = np.random.default_rng(11)
    filt = np.exp(-((np.arange(3) - 1.0) ** 2) / 2.0).astype(np.float32).reshape(1, 3)
    filt /= filt.sum()
    layers = nu.as_dict(
        nu.data("data", 3 * 36, 0), nu.data("labels", 1, 1),
        nu.fc("pre", ["data"], [3 * 36], 3 * 36, rng),
        nu.simple("href", "href", ["pre"], 3 * 36, channels=3, imgSize=6),
        nu.simple("blur", "blur", ["href"], 3 * 36, channels=3, filter=filt, imgSize=6),
        nu.simple("nails", "nailbed", ["blur"], 3 * 9, channels=3, stride=2, start=1, outputsX=3,
                  imgSize=6),
        nu.fc("fc", ["nails"], [3 * 9], 3, rng),
        nu.simple("probs", "softmax", ["fc"], 3), nu.logreg("logreg", "labels", "probs"))
    _check(layers, [3 * 36, None], 3)


def test_cnorm_backward_treats_the_mean_as_constant():
    """cnorm's backward is the exact gradient of y = x·(1 + s·Σ(x − m)²)^(−β) with the local
    mean m held fixed (the original ignores the mean's dependence on x); checked against a
    central difference of that function."""
    from port import cudaconv2 as cc
    from port.layers.norm import ContrastNormLayer

    class Net:
        rng = np.random.default_rng(0)
        dtype = np.float64

    rng = np.random.default_rng(12)
    ch, img, size, scale, pow_ = 16, 5, 3, 0.3, 0.75
    dic = nu.simple("cn", "cnorm", ["x"], ch * img * img, channels=ch, size=size, scale=scale,
                    pow=pow_, imgSize=img)
    layer = ContrastNormLayer(dic, Net())
    x = rng.standard_normal((ch * img * img, 3))
    g = rng.standard_normal(x.shape)
    layer.inputs = [x]
    layer.fprop_acts(0, 0, 2)
    analytic = layer.bprop_acts(g, 0, 2)
    means = x - layer.mean_diffs

    def objective(xx):
        return float((g * cc.conv_contrast_norm(xx, xx - means, ch, size, scale, pow_)[0]).sum())

    numeric = np.zeros_like(x)
    h = 1e-6
    for idx in np.ndindex(*x.shape):
        xp_, xm = x.copy(), x.copy()
        xp_[idx] += h
        xm[idx] -= h
        numeric[idx] = (objective(xp_) - objective(xm)) / (2 * h)
    err = np.linalg.norm(analytic - numeric) / np.linalg.norm(numeric)
    assert err < TOL, err


# ---- the layers ported for issue 10: treefc and the costs beyond logreg/sum2

def _targets(rng, c, n, binary=False):
    t = rng.random((c, n))
    return (t > 0.5).astype(np.float64) if binary else t / t.sum(axis=0, keepdims=True)


def _check_data(layers, data, seed=0):
    net = ConvNet(layers, minibatch_size=N, dtype=np.float64, rng=1)
    err = nu.central_difference_check(net, net._to_device(data))
    assert err < TOL, err
    return net


def test_treefc():
    """A tree of our own: 5 classes (leaves 0-4), inner nodes 5 = {0, 1}, 6 = {2, 3, 5}, root 7 = {4, 6}."""
    rng = np.random.default_rng(20)
    tree = [[], [], [], [], [], [0, 1], [2, 3, 5], [4, 6]]
    t = nu.fc("tree", ["fc1"], [6], 5, rng, init_w=0.3)
    t.update(type="treefc", tree=tree, rootLabel=7)
    t["weights"] = [np.asfortranarray((0.3 * rng.standard_normal((6, 8))).astype(np.float32))]
    t["weightsInc"] = [np.zeros_like(t["weights"][0])]
    layers = nu.as_dict(nu.data("a", 4, 0), nu.data("labels", 1, 1), nu.fc("fc1", ["a"], [4], 6, rng),
                        t, nu.simple("probs", "softmax", ["tree"], 5), nu.logreg("logreg", "labels", "probs"))
    net = _check(layers, [4, None], 5)
    from port.backend import to_host
    w = to_host(net.layers["tree"].tree_weights.all_w)
    eff = to_host(net.layers["tree"].weights[0].w)
    np.testing.assert_allclose(eff[:, 0], w[:, 0] + w[:, 5] + w[:, 6] + w[:, 7])
    np.testing.assert_allclose(eff[:, 4], w[:, 4] + w[:, 7])


def test_treefc_biases_take_a_constant_rate_and_no_super_eps():
    """alexnet-2012/src/layer.cu:716 makes treefc's biases again with a constant schedule at epsB
    and superEps 0 (weight decay 0, useGrad): with schedB = linear[tgtFactor=10] and superEps 0.5
    one update at progress 0.5 is inc = momB·inc + epsB·grad, as in Weights::update (superEps ≤ 0);
    a plain fc layer with the same cfg keeps the schedule (0.55·epsB at that progress)."""
    from port.backend import to_device, to_host
    rng = np.random.default_rng(22)
    linear = {"type": "linear", "params": {"tgtFactor": 10.0, "noiseStdev": 0.0}}
    t = nu.fc("tree", ["a"], [4], 3, rng, eps_b=0.2, mom=0.5)
    t.update(type="treefc", tree=[[], [], [], [0, 1], [2, 3]], rootLabel=4, schedB=linear,
             superEps=0.5)
    t["weights"] = [np.asfortranarray((0.3 * rng.standard_normal((4, 5))).astype(np.float32))]
    t["weightsInc"] = [np.zeros_like(t["weights"][0])]
    f = nu.fc("fc", ["a"], [4], 3, rng, eps_b=0.2, mom=0.5)
    f.update(schedB=linear, superEps=0.5)
    layers = nu.as_dict(nu.data("a", 4, 0), t, f, nu.sum2("s1", "tree"), nu.sum2("s2", "fc"))
    net = ConvNet(layers, minibatch_size=N, dtype=np.float64, rng=1)
    b = net.layers["tree"].biases
    assert b.get_eps(0.5) == b.get_eps(0.0) == 0.2 and b.super_eps == 0 and b.wc == 0 and b.use_grad
    assert net.layers["fc"].biases.get_eps(0.5) == pytest.approx(0.2 * 0.55)
    assert net.layers["fc"].biases.super_eps == 0.5
    inc0 = rng.standard_normal((1, 3))
    grad = rng.standard_normal((1, 3))
    w0 = to_host(b.w).copy()
    b.inc, b.grad = to_device(inc0.copy()), to_device(grad.copy())
    b.update(0.5)
    np.testing.assert_allclose(to_host(b.inc), 0.5 * inc0 + 0.2 * grad, rtol=1e-12)
    np.testing.assert_allclose(to_host(b.w), w0 + 0.5 * inc0 + 0.2 * grad, rtol=1e-12)


@pytest.mark.parametrize("fused", [True, False])
def test_crossent2_over_logistic(fused):
    """flickr-102's cost: fused (the logistic layer sends coeff·(t − y)) and stand-alone."""
    rng = np.random.default_rng(21)
    logistic = {"type": "logistic", "params": {}}
    extra = [] if fused else [nu.sum2("sq", "y", coeff=0.2)]
    layers = nu.as_dict(nu.data("a", 5, 0), nu.data("t", 4, 1), nu.fc("fc1", ["a"], [5], 4, rng, init_w=0.5),
                        nu.simple("y", "neuron", ["fc1"], 4, neuron=logistic),
                        nu.simple("ce", "cost.crossent2", ["t", "y"], 0, coeff=0.7), *extra)
    net = _check_data(layers, [rng.standard_normal((5, N)), _targets(rng, 4, N, binary=True)])
    assert net.layers["ce"].fused_below() is fused


def test_rflickr_gsum2_crossent():
    rng = np.random.default_rng(22)
    logistic = {"type": "logistic", "params": {}}
    layers = nu.as_dict(
        nu.data("a", 5, 0), nu.data("t", 4, 1), nu.data("gate", 1, 2), nu.data("p", 3, 3),
        nu.fc("fc1", ["a"], [5], 4, rng, init_w=0.5), nu.simple("y", "neuron", ["fc1"], 4, neuron=logistic),
        nu.simple("rf", "cost.rflickr", ["t", "y"], 0, coeff=0.9),
        nu.fc("fc2", ["a"], [5], 6, rng), nu.simple("g2", "cost.gsum2", ["gate", "fc2"], 0, coeff=0.4),
        nu.fc("fc3", ["a"], [5], 3, rng), nu.simple("probs", "softmax", ["fc3"], 3),
        nu.simple("ce", "cost.crossent", ["p", "probs"], 0, coeff=1.3))
    _check_data(layers, [rng.standard_normal((5, N)), _targets(rng, 4, N), rng.random((1, N)),
                         _targets(rng, 3, N)])


def test_tica():
    rng = np.random.default_rng(23)
    size = 6
    layers = nu.as_dict(nu.data("data", 3 * size * size, 0),
                        nu.conv("conv1", ["data"], 3, size, 16, 3, rng, padding=1),
                        nu.simple("tica", "cost.tica", ["conv1"], 0, coeff=0.6, channels=16, sizeX=3))
    _check_data(layers, [rng.standard_normal((3 * size * size, N))])


@pytest.mark.parametrize("size_x", [2, 3, 4, 5])
def test_tica_gradient_is_the_reported_values_for_odd_size_x_only(size_x):
    """The port keeps the gradient kernel's sum, −x_p·Σ r_q over q in [p − sizeX/2, p − sizeX/2
    + sizeX) (cuda-convnet-r561/src/cudaconv2/conv_util.cu:1310-1344, the forward's window): for
    odd sizeX the value reported is the function it belongs to, for even sizeX (the kernel takes
    2 and 4) it is not, and the check fails (as the original's would, on any value)."""
    rng = np.random.default_rng(26)
    size, C = 5, 16
    layers = nu.as_dict(nu.data("data", 3 * size * size, 0),
                        nu.conv("conv1", ["data"], 3, size, C, 3, rng, padding=1),
                        nu.simple("tica", "cost.tica", ["conv1"], 0, coeff=0.6, channels=C,
                                  sizeX=size_x))
    net = ConvNet(layers, minibatch_size=N, dtype=np.float64, rng=1)
    data = net._to_device([rng.standard_normal((3 * size * size, N))])
    err = nu.central_difference_check(net, data)
    if size_x % 2:
        assert err < TOL, err
    else:
        assert err > 0.1, err
    from port.backend import to_host
    tica = net.layers["tica"]
    x4 = to_host(tica.inputs[0]).reshape(C, size, size, N)
    r4 = to_host(tica.acts).reshape(C, size, size, N)
    ref = np.zeros_like(x4)
    lo = -(size_x // 2)
    for y, x in np.ndindex(size, size):
        win = r4[:, max(0, y + lo):y + lo + size_x, max(0, x + lo):x + lo + size_x]
        ref[:, y, x] = -0.6 * x4[:, y, x] * win.sum(axis=(1, 2))
    from port.layers.base import PASS_GC
    got = to_host(tica.bprop_acts(None, 0, PASS_GC)).reshape(ref.shape)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("set_size", [1, 2, 4])
def test_multisoftmax(set_size):
    rng = np.random.default_rng(24)
    layers = nu.as_dict(nu.data("a", 5, 0), nu.data("labels", 1, 1), nu.fc("fc1", ["a"], [5], 6, rng, init_w=0.5),
                        nu.simple("msm", "cost.msm", ["labels", "fc1"], 0, coeff=0.8, setSize=set_size,
                                  numOut=6, threads=2))
    _check(layers, [5, None], 6)


@pytest.mark.parametrize("size, max_scale, num_scales", [(18, 1.2, 5), (33, 1.1, 4), (8, 1.5, 4)])
def test_rscale_min_scaled_size_is_a_float32_quotient(size, max_scale, num_scales):
    """_minScaledSize = _imgSize / _maxScale with _maxScale a float (alexnet-2012/src/layer.cu:1366,
    1370): 18 / 1.2f = 14.999999 truncates to 14, so 5 scales (the double quotient, 15.0: 4), and
    33 / 1.1f = 30.0 gives 30, so 4 (the double, 29.999…: 5);
    each scale's cumulative probability Σ_{k ≤ s} (k + 1)² / numCrops, numCrops an int quotient."""
    layers = nu.as_dict(nu.data("img", 3 * size * size, 0),
                        nu.simple("rs", "rscale", ["img"], 3 * 6 * 6, channels=3, maxScale=max_scale,
                                  imgSize=size, tgtSize=6),
                        nu.sum2("sq", "rs"))
    probs = ConvNet(layers, minibatch_size=N, dtype=np.float64, rng=3).layers["rs"].scale_probs
    assert len(probs) == num_scales
    crops = num_scales * (num_scales + 1) * (2 * num_scales + 1) // 6
    np.testing.assert_allclose(probs, np.cumsum([(k + 1) ** 2 / crops for k in range(num_scales)]),
                               rtol=1e-12)


def test_rscale_forward_only():
    """rscale has no backward (the parser forbids weight layers below it): training passes give a
    tgtSize crop of a rescaled image, other passes the centre crop."""
    from port.layers.base import PASS_TEST, PASS_TRAIN
    rng = np.random.default_rng(25)
    size, tgt = 8, 6
    layers = nu.as_dict(nu.data("img", 3 * size * size, 0),
                        nu.simple("rs", "rscale", ["img"], 3 * tgt * tgt, channels=3, maxScale=1.5,
                                  imgSize=size, tgtSize=tgt),
                        nu.sum2("sq", "rs"))
    net = ConvNet(layers, minibatch_size=N, dtype=np.float64, rng=3)
    x = rng.standard_normal((3 * size * size, N))
    net.fprop(net._to_device([x]), PASS_TEST)
    centre = x.reshape(3, size, size, N)[:, 1:7, 1:7].reshape(-1, N)
    from port.backend import to_host
    np.testing.assert_array_equal(to_host(net.layers["rs"].acts), centre)
    probs = net.layers["rs"].scale_probs
    assert len(probs) == size - int(size / 1.5) + 1 and probs[-1] == pytest.approx(1.0)
    for _ in range(5):
        net.fprop(net._to_device([x]), PASS_TRAIN)
        assert net.layers["rs"].acts.shape == (3 * tgt * tgt, N)
