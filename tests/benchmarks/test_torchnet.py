"""benchmarks.torchnet: the PyTorch twin of a cfg pair computes what the port computes.

A small cfg pair written here (no release needed) covers every layer type the translator
knows; the twin's output of every layer agrees with ``port.model.ConvNet``'s within 1e-5
(relative to the layer's largest value, float32), and one training step moves every weight as
the port's step does."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks import torchnet  # noqa: E402
from port.layer import parse_layers  # noqa: E402
from port.layers.base import PASS_TEST  # noqa: E402
from port.model import ConvNet  # noqa: E402
from tests.port.cfgnets import INPUTS, pool, softmax_logreg  # noqa: E402

# 3×32×32 images. conv1: 15 modules of stride 2 read 33 pixels (the ceil overhang); pool1 max;
# conv2 two groups of 16 filters of 4×4, unshared biases; pool2 avg, its last window clipped;
# within-map and cross-map norms; a local layer; a two-input fc; dropout or a neuron; concat,
# eltsum and the softmax + logreg pair.
DEF = INPUTS + """[conv1]
type=conv
inputs=data
channels=3
filters=32
padding=0
stride=2
filterSize=5
neuron=relu
initW=0.1
partialSum=1
sharedBiases=1
""" + pool("pool1", "conv1", 32) + """[conv2]
type=conv
inputs=pool1
channels=32
filters=16
groups=2
padding=1
stride=1
filterSize=4
neuron=tanh[1.7,0.6]
initW=0.1
partialSum=4
sharedBiases=0
""" + pool("pool2", "conv2", 32, "avg") + """[rnorm2]
type=rnorm
inputs=pool2
channels=32
size=3
[cmrnorm2]
type=cmrnorm
inputs=rnorm2
channels=32
size=5
[local3]
type=local
inputs=cmrnorm2
channels=32
filters=16
padding=1
stride=1
filterSize=3
neuron=relu
initW=0.05
[fc1]
type=fc
inputs=pool1,local3
outputs=16
initW=0.05,0.05
neuron=logistic
[drop]
type={droptype}
inputs=fc1
{dropkeys}
[fc2]
type=fc
inputs=fc1
outputs=16
initW=0.1
[both]
type=concat
inputs=drop,fc2
[sum]
type=eltsum
inputs=drop,fc2
coeffs=0.5,2
[fc10]
type=fc
inputs=both,sum
outputs=10
initW=0.1,0.1
""" + softmax_logreg("fc10")

W = "epsW=0.5\nepsB=0.2\nmomW=0.9\nmomB=0.9\nwc=0.004"
PARAMS = f"""
[conv1]
{W}
[conv2]
{W}
[local3]
{W}
[fc1]
epsW=0.5,1.5
epsB=0.1
momW=0.9,0.9
momB=0.9
wc=0.004,0.004
[fc2]
{W}
[fc10]
epsW=0.5,1
epsB=0.1
momW=0.9,0.5
momB=0.9
wc=0.004,0
[rnorm2]
scale=0.01
pow=0.75
[cmrnorm2]
scale=0.01
pow=0.75
minDiv=2
[logprob]
coeff=1
"""


def _layers(tmp_path, dropout: bool):
    kind, keys = ("hs", "keep=0.5") if dropout else ("neuron", "neuron=relu")
    (tmp_path / "layers.cfg").write_text(DEF.format(droptype=kind, dropkeys=keys))
    (tmp_path / "params.cfg").write_text(PARAMS + ("[drop]\nenable=true\n" if dropout else ""))
    return parse_layers(tmp_path / "layers.cfg", tmp_path / "params.cfg",
                        {"seed": 0, "data_dims": {0: 3 * 32 * 32, 1: 1}})


def _batch(layers, n, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((layers["data"]["outputs"], n)).astype(np.float32),
            rng.integers(0, 10, size=(1, n)).astype(np.float32)]


def _rel(a, b) -> float:
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))


def test_the_cfg_exercises_the_geometry_it_claims(tmp_path):
    layers = _layers(tmp_path, dropout=True)
    c1 = layers["conv1"]
    assert (c1["modulesX"] - 1) * c1["stride"][0] + c1["filterSize"][0] > c1["imgSize"][0]
    p2 = layers["pool2"]
    assert (p2["outputsX"] - 1) * p2["stride"] + p2["sizeX"] > p2["imgSize"]
    assert layers["conv2"]["groups"] == [2] and not layers["conv2"]["sharedBiases"]


@pytest.mark.parametrize("dropout", [True, False])
def test_every_layer_forward_agrees_with_the_port(tmp_path, dropout):
    layers = _layers(tmp_path, dropout)
    data = _batch(layers, 8)
    net = ConvNet(layers, minibatch_size=8, rng=0)
    net.fprop(net._to_device(data), PASS_TEST)
    twin = torchnet.TorchNet(layers)
    with torch.no_grad():
        objective, acts = twin(torchnet.to_torch_input(twin, data), torchnet.PASS_TEST)
    compared = set()
    for name, dic in layers.items():
        if dic["type"] in ("data", "cost.logreg"):
            continue
        t = torchnet.softmax_output(twin, acts, name) if dic["type"] == "softmax" else acts[name]
        ours = np.asarray(net.layers[name].acts)
        theirs = torchnet.to_port_layout(t)
        assert theirs.shape == ours.shape, name
        assert _rel(ours, theirs) < 1e-5, name
        compared.add(dic["type"])
    assert compared >= {"conv", "pool", "rnorm", "cmrnorm", "local", "fc", "neuron", "concat",
                        "eltsum", "softmax"}
    assert ("hs" in compared) == dropout
    nll = net.get_cost().cost_map["logprob"][0]
    assert abs(float(acts["logprob"]) - nll) < 1e-5 * abs(nll)
    assert abs(float(objective) - nll / 8) < 1e-5 * abs(nll)


def test_one_training_step_moves_the_weights_as_the_port(tmp_path):
    """The cfg's ε are large on purpose: a float32 step is the difference of two weights, exact
    only to their ulp, so the step must be large against the weights for 1e-4 to mean much."""
    layers = _layers(tmp_path, dropout=False)
    data = _batch(layers, 16)
    twin = torchnet.TorchNet(layers)          # copies the initial weights before the port trains
    weighted = [n for n, d in layers.items() if d["type"] in ("conv", "local", "fc")]
    before = {n: ([w.copy() for w in layers[n]["weights"]], layers[n]["biases"].copy()) for n in weighted}
    net = ConvNet(layers, minibatch_size=16, rng=0)
    net.start_batch(data, 0.0)
    net.finish_batch()
    net.sync_with_host()                      # writes the port's new weights into the dicts
    start = {k: p.detach().clone() for k, p in twin.params.items()}
    opt = twin.optimizer()
    objective, _ = twin(torchnet.to_torch_input(twin, data), torchnet.PASS_TRAIN)
    objective.backward()
    opt.step()
    for name in weighted:
        dic = layers[name]
        for i, w in enumerate(dic["weights"]):
            key = f"{name}:w{i}"
            step = (twin.params[key].detach() - start[key]).numpy()
            if dic["type"] == "conv":
                step = step.reshape(step.shape[0], -1).T          # (F, fc, fs, fs) → (fc·fs², F)
            ours = w - before[name][0][i]
            assert np.abs(ours).max() > 0, key
            assert _rel(ours, step.reshape(w.shape)) < 1e-4, key
        step_b = (twin.params[f"{name}:b"].detach() - start[f"{name}:b"]).numpy()
        ours_b = (dic["biases"] - before[name][1]).reshape(-1)
        assert _rel(ours_b, step_b) < 1e-4, name


def test_unknown_layer_types_are_refused_by_name(tmp_path):
    layers = _layers(tmp_path, dropout=False)
    layers["both"]["type"] = "eltmax"
    with pytest.raises(NotImplementedError, match="layer 'both'"):
        twin = torchnet.TorchNet(layers)
        twin(torchnet.to_torch_input(twin, _batch(layers, 2)))
