"""Whole nets from the original's cfg files through ``port.model.ConvNet`` on random data.

fwd+bwd: one ``start_batch``/``finish_batch`` of one minibatch of 128 images in training mode
(forward, cost, backward, weight update), the best of ``repeats``. images/s: training on a batch
of several minibatches, images divided by wall time.
"""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np

from archive import ORIGINAL
from benchmarks.timing import best_of, synchronize
from port import backend

NETS = {  # name: (layer def, layer params, number of classes)
    "layers-80sec": ("example-layers/layers-80sec.cfg", "example-layers/layer-params-80sec.cfg", 10),
    "layers-145": ("layers/layers-145.cfg", "layers/layer-params-145.cfg", 1000),
}


def release_files(name: str) -> tuple[Path, Path, int] | None:
    """The cfg pair of ``name`` in original/alexnet-2012, or None when it is not fetched."""
    d, p, nc = NETS[name]
    root = ORIGINAL / "alexnet-2012"
    if not (root / d).is_file() or not (root / p).is_file():
        return None
    return root / d, root / p, nc


def build(name: str, minibatch: int):
    from port.layer import parse_layers  # noqa: PLC0415 (the model helper's modules, loaded late)
    from port.model import ConvNet  # noqa: PLC0415

    d, p, nc = release_files(name)
    layers = parse_layers(d, p, {"num_gpus": 2, "seed": 0})
    net = ConvNet(layers, minibatch_size=minibatch, rng=0)
    dims = {l["dataIdx"]: l["outputs"] for l in layers.values() if l["type"] == "data"}
    return net, dims, nc


def random_batch(dims: dict, nc: int, n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((dims[0], n), dtype=np.float32),
            rng.integers(0, nc, size=(1, n)).astype(np.float32)]


def fwd_bwd(name: str, n: int = 128, repeats: int = 3) -> dict:
    net, dims, nc = build(name, n)
    data = random_batch(dims, nc, n)

    def step():
        net.start_batch(data, 0.0)
        net.finish_batch()

    t = best_of(step, repeats, backend.xp())
    return {"net": name, "what": f"fwd+bwd+update, {n} images", "seconds": t, "images_per_s": n / t}


def train_rate(name: str, n: int = 128, minibatches: int = 8) -> dict:
    net, dims, nc = build(name, n)
    data = random_batch(dims, nc, n * minibatches, seed=1)
    net.start_batch(random_batch(dims, nc, n, seed=2), 0.0)   # warm-up minibatch
    net.finish_batch()
    synchronize(backend.xp())
    t0 = time.perf_counter()
    net.start_batch(data, 0.0)
    net.finish_batch()
    synchronize(backend.xp())
    t = time.perf_counter() - t0
    return {"net": name, "what": f"training, {minibatches}×{n} images", "seconds": t,
            "images_per_s": n * minibatches / t}


def model_available() -> bool:
    """Whether the layer helper's ``port.model`` exists in this tree."""
    return importlib.util.find_spec("port.model") is not None
