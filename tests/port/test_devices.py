"""Layers on the devices of their cfg columns, and the crossings between columns, on the CPU
with simulated devices (port.devices.SimulatedDevices); one CUDA device runs every column."""
from __future__ import annotations

import numpy as np
import pytest

from port.devices import Devices, SimulatedDevices, place, quantize
from port.gradients import from_descent
from port.layers.base import PASS_GC
from port.model import ConvNet
from tests.port.layers import netutil as nu

N = 4
HALF = {"type": "half", "params": {}}


def _two_columns(quant_b=None, quant_f=None):
    """data → fca (gpu 0), fcb (gpu 1) → fc over both (gpu 0) → softmax → logreg."""
    rng = np.random.default_rng(0)
    a = nu.fc("fca", ["data"], [6], 5, rng, init_w=0.5)
    b = nu.fc("fcb", ["data"], [6], 5, rng, init_w=0.5)
    top = nu.fc("top", ["fca", "fcb"], [5, 5], 3, rng)
    layers = nu.as_dict(nu.data("data", 6, 0), nu.data("labels", 1, 1), a, b, top,
                        nu.simple("probs", "softmax", ["top"], 3), nu.logreg("logreg", "labels", "probs"))
    for name, col in [("fca", 0), ("fcb", 1), ("top", 0), ("probs", 0), ("logreg", 0)]:
        layers[name]["gpu"] = col
    if quant_f:
        b["quantF"] = quant_f
    if quant_b:
        b["quantB"] = quant_b
    return layers


def _data():
    rng = np.random.default_rng(1)
    return [rng.standard_normal((6, N)), rng.integers(0, 3, size=(1, N)).astype(np.float64)]


def _run(layers, devices):
    net = ConvNet(layers, minibatch_size=N, dtype=np.float64, rng=1, devices=devices)
    ran_on = {}
    for l in net.layers.values():
        orig = l.fprop_acts

        def spy(i, s, p, l=l, orig=orig):
            ran_on[l.name] = getattr(net.devices, "current", None)
            return orig(i, s, p)
        l.fprop_acts = spy
    net.fprop(net._to_device(_data()), PASS_GC)
    net.bprop(PASS_GC)
    grads = {n: from_descent(np.array(l.weights[0].grad)) for n, l in net.layers.items() if hasattr(l, "weights")}
    return net, ran_on, grads


def test_two_devices_place_columns_and_copy_at_crossings():
    dev = SimulatedDevices(2)
    net, ran_on, grads = _run(_two_columns(), dev)
    assert {n: l.device for n, l in net.layers.items()} == \
        {"data": 0, "labels": 0, "fca": 0, "fcb": 1, "top": 0, "probs": 0, "logreg": 0}
    assert ran_on == {"fca": 0, "fcb": 1, "top": 0, "probs": 0, "logreg": 0}
    copies = [e for e in dev.log if e[0] == "copy"]
    # data to column 1, fcb's output to column 0 (forward); top's gradient for fcb to device 1
    assert copies == [("copy", 0, 1, (6, N)), ("copy", 1, 0, (5, N)), ("copy", 0, 1, (5, N))]
    one, _, grads1 = _run(_two_columns(), Devices([0]))
    assert all(l.device == 0 for l in one.layers.values())
    assert net.get_cost_value() == one.get_cost_value()
    for n in grads:
        np.testing.assert_array_equal(grads[n], grads1[n])


def test_fewer_devices_than_columns_run_everything_on_one():
    dev = SimulatedDevices(1)
    net, ran_on, _ = _run(_two_columns(), dev)
    assert set(ran_on.values()) == {0} and not [e for e in dev.log if e[0] == "copy"]
    assert place({"a": 0, "b": 3}, SimulatedDevices(3)) == {"a": 0, "b": 0}
    assert place({"a": 0, "b": 2, "d": -1}, SimulatedDevices(3)) == {"a": 0, "b": 2, "d": 0}


@pytest.mark.parametrize("devices", [lambda: Devices([0]), lambda: SimulatedDevices(2)])
def test_half_quantizers_round_what_crosses_columns(devices):
    """quantF=half on fcb: top sees float16(fcb); quantB=half: fcb receives float16(top's gradient);
    the same on one device and on two (the rounding is at the column crossing)."""
    plain, _, g_plain = _run(_two_columns(), devices())
    layers = _two_columns(quant_f=HALF, quant_b=HALF)
    received = {}
    net = ConvNet(layers, minibatch_size=N, dtype=np.float64, rng=1, devices=devices())
    for name in ("fca", "fcb"):
        l = net.layers[name]
        l.gather_grad = (lambda l=l, g=l.gather_grad: received.setdefault(l.name, g()))
    net.fprop(net._to_device(_data()), PASS_GC)
    top = net.layers["top"]
    acts_b = net.layers["fcb"].acts
    assert not np.array_equal(quantize(acts_b, HALF), acts_b)
    np.testing.assert_array_equal(top.inputs[1], acts_b.astype(np.float16).astype(np.float64))
    np.testing.assert_array_equal(top.inputs[0], net.layers["fca"].acts)      # same column: exact
    net.bprop(PASS_GC)
    g16 = received["fcb"].astype(np.float16).astype(np.float64)
    np.testing.assert_array_equal(received["fcb"], g16)                       # crossed: float16
    assert not np.array_equal(received["fca"], received["fca"].astype(np.float16).astype(np.float64))
    assert net.get_cost_value() != plain.get_cost_value()
    g_fcb = from_descent(np.array(net.layers["fcb"].weights[0].grad))
    assert not np.array_equal(g_fcb, g_plain["fcb"])
    np.testing.assert_allclose(g_fcb, g_plain["fcb"], rtol=2e-3, atol=1e-4)


def test_the_paper_net_places_its_two_columns(alexnet_2012):
    """layers-145: the a column on device 0, the b column on device 1 (simulated)."""
    import warnings

    from port.layer import parse_layers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layers = parse_layers(alexnet_2012 / "layers/layers-145.cfg", alexnet_2012 / "layers/layer-params-145.cfg",
                              {"data_dims": {0: 3 * 224 * 224, 1: 1}, "num_classes": 1000}, init_weights=False)
    cols = {n: l["gpu"] for n, l in layers.items()}
    dev = place(cols, SimulatedDevices(2))
    assert dev["conv1a"] == 0 and dev["conv1b"] == 1 and dev["fc1000"] == 0
    assert all(dev[n] == 1 for n in layers if n.endswith("b") and layers[n]["type"] == "conv")


def test_the_gradient_check_net_on_three_simulated_devices(alexnet_2012):
    """example-layers/layers.gc.cfg spreads over gpu=0,1,2: on three simulated devices every layer
    runs on its column's device and a training step gives the one-device result exactly."""
    import warnings

    from port.layer import parse_layers
    results = []
    for devices in (SimulatedDevices(3), Devices([0])):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layers = parse_layers(alexnet_2012 / "example-layers/layers.gc.cfg",
                                  alexnet_2012 / "example-layers/layer-params.gc.cfg",
                                  {"data_dims": {0: 27, 1: 1}, "num_classes": 10, "seed": 0})
        net = ConvNet(layers, minibatch_size=N, dtype=np.float64, rng=1, devices=devices)
        rng = np.random.default_rng(2)
        net.start_batch([rng.random((27, N)), rng.integers(0, 10, size=(1, N)).astype(np.float64)], 0.0)
        cost, _ = net.finish_batch()
        net.sync_with_host()
        results.append((net, cost, {n: l["weights"][0].copy() for n, l in layers.items() if "weights" in l}))
    (net3, cost3, w3), (_, cost1, w1) = results
    assert sorted({l.device for l in net3.layers.values()}) == [0, 1, 2]
    assert all(l.device == max(l.column, 0) for l in net3.layers.values())
    assert sum(e[0] == "copy" for e in net3.devices.log) > 0
    assert cost3 == cost1
    for n in w1:
        np.testing.assert_array_equal(w3[n], w1[n])
