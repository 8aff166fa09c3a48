"""The launch budgets of the GPU-shaped step, counted on the strict stand-in with CuPy 14's rules
(port.strict, benchmarks.launches): one training step of layers-145 takes at most 400 kernel
launches and 1 host synchronisation, layers-80sec at most 150 launches.

The counts do not depend on the minibatch while every convolution's im2col matrix fits the
device budget (port.device_kernels.DEVICE_COLS_BUDGET_BYTES; at 128 images the largest,
layers-145's conv2, is 0.9 GB of 2 GiB): the first test checks that on layers-80sec, so that
layers-145 can be counted at 8 images instead of 128 (26 s instead of 100 s on the stand-in).
`python -m benchmarks.launches` reports them at 128.
"""
from __future__ import annotations

import pytest

from benchmarks import nets

pytestmark = pytest.mark.release


@pytest.fixture()
def count(alexnet_2012):
    from port import backend  # noqa: PLC0415

    backend.set_backend(backend.STRICT)
    from benchmarks.launches import count_step  # noqa: PLC0415
    from port.convnet import guess_data_dims  # noqa: PLC0415
    from port.layer import parse_layers  # noqa: PLC0415

    def run(name: str, minibatch: int) -> dict:
        d, p, nc = nets.release_files(name)
        layers = parse_layers(d, p, {"num_gpus": 2, "seed": 0, "data_dims": guess_data_dims(d)})
        return count_step(layers, minibatch, nc)
    yield run
    backend.set_backend("numpy")


def test_layers_80sec_within_150_launches_and_one_sync_at_any_minibatch(count):
    small, full = count("layers-80sec", 16), count("layers-80sec", 128)
    assert full["launches"] <= 150 and full["syncs"] <= 1, full["kinds"]
    assert (small["launches"], small["syncs"], small["kinds"]) == (full["launches"], full["syncs"],
                                                                   full["kinds"])
    assert full["h2d_bytes"] == 128 * (24 * 24 * 3 + 1) * 4      # the batch, once: images, labels


@pytest.mark.slow
def test_layers_145_within_400_launches_and_one_sync(count):
    r = count("layers-145", 8)
    assert r["launches"] <= 400, (r["launches"], r["kinds"])
    assert r["syncs"] <= 1, r["sync_sites"]
    conv1 = next(row for row in r["layers"] if row["layer"] == "conv1a")
    assert conv1["kinds"] == {"kernel im2col": 1, "gemm": 1, "operator": 1}   # gather, GEMM, bias
