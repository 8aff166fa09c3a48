"""Layer dicts built by hand with the released layer.py's keys, tiny nets, and a float64
central-difference gradient check, shared by the layer and model tests."""
from __future__ import annotations

import math

import numpy as np

from port.backend import to_host
from port.gradients import from_descent
from port.layers.base import PASS_GC
from port.layers import WeightLayer

DEFAULT_SCHED = {"type": "default", "params": {}}


def data(name, outputs, idx):
    return {"name": name, "type": "data", "dataIdx": idx, "outputs": outputs,
            "gradConsumer": False}


def simple(name, type_, inputs, outputs, **extra):
    return {"name": name, "type": type_, "inputs": list(inputs), "outputs": outputs,
            "gradConsumer": False, **extra}


def _weight_params(d, n_in, eps_w=0.01, eps_b=0.02, mom=0.9, wc=0.0, wball=0.0):
    d.update({"epsW": [eps_w] * n_in, "epsB": eps_b, "momW": [mom] * n_in, "momB": mom,
              "wc": [wc] * n_in, "wball": [wball] * n_in, "superEps": 0.0, "superMom": 0.0,
              "schedW": DEFAULT_SCHED, "schedB": DEFAULT_SCHED,
              "weightSourceLayers": [""] * n_in, "weightSourceMatrixIndices": [-1] * n_in,
              "gradConsumer": eps_b > 0 or eps_w > 0})
    d["wballNormed"] = [w * n for w, n in zip(d["wball"], d["weightsPerFilter"])]
    return d


def fc(name, inputs, num_inputs, outputs, rng, init_w=0.1, init_b=0.0, **params):
    d = simple(name, "fc", inputs, outputs, numInputs=list(num_inputs),
               weightsPerFilter=list(num_inputs))
    d["weights"] = [np.asfortranarray((init_w * rng.standard_normal((n, outputs))).astype(np.float32))
                    for n in num_inputs]
    d["weightsInc"] = [np.zeros_like(w) for w in d["weights"]]
    d["biases"] = (init_b + 0.1 * rng.standard_normal((1, outputs))).astype(np.float32)
    d["biasesInc"] = np.zeros_like(d["biases"])
    return _weight_params(d, len(num_inputs), **params)


def conv(name, inputs, channels, img_size, filters, filter_size, rng, padding=0, stride=1,
         groups=1, type_="conv", shared_biases=True, init_w=0.1, partial_sum=0, **params):
    """A conv/local layer dict; ``filters`` is the total count (cfg filters × groups)."""
    n_in = len(inputs)
    modules_x = 1 + math.ceil((2 * padding + img_size - filter_size) / stride)
    fchan = channels // groups
    d = simple(name, type_, inputs, modules_x ** 2 * filters,
               numInputs=[channels * img_size ** 2] * n_in, channels=[channels] * n_in,
               padding=[-padding] * n_in, stride=[stride] * n_in, filterSize=[filter_size] * n_in,
               filters=filters, groups=[groups] * n_in, randSparse=[False] * n_in,
               filterChannels=[fchan] * n_in, overSample=[1] * n_in,
               filterPixels=[filter_size ** 2] * n_in, imgPixels=[img_size ** 2] * n_in,
               imgSize=[img_size] * n_in, modulesX=modules_x, modules=modules_x ** 2,
               filterConns=[[]] * n_in, weightsPerFilter=[fchan * filter_size ** 2] * n_in,
               partialSum=partial_sum, sharedBiases=shared_biases,
               wcNormMax=[0.0] * n_in, wcNormMin=[0.0] * n_in)
    rows = fchan * filter_size ** 2 * (1 if type_ == "conv" else modules_x ** 2)
    d["weights"] = [(init_w * rng.standard_normal((rows, filters))).astype(np.float32)
                    for _ in inputs]
    d["weightsInc"] = [np.zeros_like(w) for w in d["weights"]]
    nb = filters if (type_ == "conv" and shared_biases) else filters * modules_x ** 2
    d["biases"] = (0.1 * rng.standard_normal((nb, 1))).astype(np.float32)
    d["biasesInc"] = np.zeros_like(d["biases"])
    return _weight_params(d, n_in, **params)


def logreg(name, labels, probs, coeff=1.0, topk=1):
    return simple(name, "cost.logreg", [labels, probs], 0, coeff=coeff, topk=topk)


def sum2(name, inp, coeff=1.0):
    return simple(name, "cost.sum2", [inp], 0, coeff=coeff)


def as_dict(*layers):
    return {d["name"]: d for d in layers}


def gc_objective(net, data):
    net.fprop(data, PASS_GC)
    return net.get_cost_value()


def central_difference_check(net, data, h=1e-5):
    """Max over weight matrices of ‖analytic − numeric‖/max(‖analytic‖, ‖numeric‖), float64."""
    net.fprop(data, PASS_GC)
    net.bprop(PASS_GC)
    worst, seen = 0.0, 0
    for layer in net.layers.values():
        if not isinstance(layer, WeightLayer):
            continue
        mats = layer.gc_weights() if hasattr(layer, "gc_weights") else [*layer.weights, layer.biases]
        for w in mats:
            if not w.is_owner() or w.base_rate <= 0:
                continue
            analytic = from_descent(to_host(w.grad).astype(np.float64))
            numeric = np.zeros_like(analytic)
            arr = w.w
            for idx in np.ndindex(*arr.shape):
                v = float(arr[idx])
                arr[idx] = v + h
                fp = gc_objective(net, data)
                arr[idx] = v - h
                fm = gc_objective(net, data)
                arr[idx] = v
                numeric[idx] = (fp - fm) / (2 * h)
            denom = max(np.linalg.norm(analytic), np.linalg.norm(numeric), 1e-30)
            worst = max(worst, float(np.linalg.norm(analytic - numeric) / denom))
            seen += 1
    assert seen > 0, "no weight matrix was checked"
    return worst


def random_batch(rng, dims, n, num_classes=None, dtype=np.float64):
    """Data matrices (D, N); a dim of None means labels in [0, num_classes)."""
    out = []
    for d in dims:
        if d is None:
            out.append(rng.integers(0, num_classes, size=(1, n)).astype(dtype))
        else:
            out.append(rng.standard_normal((d, n)).astype(dtype))
    return out
