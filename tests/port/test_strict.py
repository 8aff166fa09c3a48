"""port.strict, the CuPy stand-in: it refuses what CuPy refuses, checks names against CuPy 14's,
keeps 0-d results on the device and counts host synchronisations per call site; and the port's
training runs on it, bit-identical to NumPy, with one synchronisation per batch."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from port import backend, strict
from port.model import ConvNet
from tests.port.layers import netutil as nu

xs = strict


def _line(offset: int = 0) -> str:
    """'tests/port/test_strict.py:<the caller's line + offset>'."""
    return f"tests/port/test_strict.py:{inspect.currentframe().f_back.f_lineno + offset}"


@pytest.fixture(autouse=True)
def counts():
    strict.reset_counts()
    yield
    strict.reset_counts()


def test_no_implicit_host_arrays():
    a = xs.arange(6.0).reshape(2, 3)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.testing.assert_allclose(a, np.zeros((2, 3)))
    e = np.exp(a)                                    # dispatched to the device, as CuPy does
    assert type(e) is xs.ndarray and np.array_equal(e.get(), np.exp(np.arange(6.0).reshape(2, 3)))
    assert type(np.sum(a)) is xs.ndarray


def test_no_numpy_device_mixing():
    a, h = xs.ones(3), np.ones(3)
    for bad in (lambda: a + h, lambda: h * a, lambda: xs.add(a, h), lambda: xs.concatenate([a, h]),
                lambda: xs.sum(h), lambda: xs.dot(h, h)):    # cupy.sum/dot(host) would run on the host
        with pytest.raises(TypeError, match="NumPy array|ndarray"):
            bad()
    assert float((a + np.float32(2)).sum()) == 9.0       # NumPy scalars are fine
    assert xs.zeros((2, 2)).shape == (2, 2)


def test_names_and_keywords_are_cupys():
    ns = strict.namespace()
    assert ns["cupy"].startswith("14.")
    missing = sorted(n for n in dir(np) if not n.startswith("_") and callable(getattr(np, n))
                     and n not in ns["names"]["module"])
    assert "busday_count" in missing
    with pytest.raises(TypeError, match=r"cupy\.busday_count does not exist in CuPy 14"):
        xs.busday_count
    with pytest.raises(TypeError, match=r"cupy\.ndarray\.tostring|cupy\.ndarray\.ctypes"):
        xs.ones(2).ctypes
    with pytest.raises(TypeError, match=r"cupy\.zeros has no keyword argument 'like'"):
        xs.zeros(3, like=None)
    with pytest.raises(TypeError, match=r"cupy\.random\.Generator\.bit_generator"):
        xs.random.default_rng(0).bit_generator
    assert xs.float32 is np.float32 and xs.newaxis is None


def test_zero_d_results_stay_on_the_device_and_syncs_are_counted_where_they_happen():
    a = xs.asarray(np.arange(10, dtype=np.float32)); up = _line()
    s = a.sum()
    assert type(s) is xs.ndarray and s.shape == ()
    assert strict.syncs() == {}
    v = float(s); here = _line()
    assert v == 45.0
    b = a[a > 4]; mask = _line()
    assert b.shape == (5,)
    if bool(b.max() > 8):
        hit = _line(-1)
    assert strict.sync_counts() == {(up, "upload"): 1, (here, "float"): 1, (mask, "boolean index"): 1,
                                    (hit, "bool"): 1}
    assert strict.syncs() == {f"{here} (float)": 1, f"{mask} (boolean index)": 1, f"{hit} (bool)": 1}


def test_in_place_operators_and_views_write_through():
    a = xs.zeros((2, 3), dtype=xs.float32)
    v = a[:, 1]
    v += 2
    a[0, :] = np.array([1, 2, 3], dtype=np.float32)      # an upload into a slice
    assert np.array_equal(a.get(), [[1, 2, 3], [0, 2, 0]])
    assert a.T.flags.f_contiguous and a.dtype == np.float32


# ---- the port on the stand-in ----------------------------------------------------------------------

def _net_layers(rng):
    """conv (random-sparse) → nrelu → max pool → cmrnorm → fc → dropout → fc → softmax → logreg."""
    size, ch = 6, 4
    conv = nu.conv("conv1", ["data"], ch, size, 32, 3, rng, padding=1, groups=2)
    conv.update(randSparse=[True], filterChannels=[ch], overSample=[2], weightsPerFilter=[ch * 9],
                filterConns=[[2, 0, 3, 1, 1, 3, 0, 2]])
    conv["weights"] = [(0.1 * rng.standard_normal((ch * 9, 32))).astype(np.float32)]
    conv["weightsInc"] = [np.zeros_like(conv["weights"][0])]
    pooled = 32 * 3 * 3
    return nu.as_dict(
        nu.data("data", ch * size * size, 0), nu.data("labels", 1, 1), conv,
        nu.simple("conv1_neuron", "neuron", ["conv1"], conv["outputs"], neuron={"type": "nrelu", "params": {}}),
        nu.simple("pool", "pool", ["conv1_neuron"], pooled, channels=32, sizeX=3, start=0, stride=2,
                  outputsX=3, imgSize=size, pool="max"),
        nu.simple("norm", "cmrnorm", ["pool"], pooled, channels=32, size=5, scale=1e-3, pow=0.75,
                  minDiv=1.0, blocked=False, imgSize=3),
        nu.fc("fc1", ["norm"], [pooled], 12, rng, init_w=0.1, eps_w=0.05, eps_b=0.05),
        nu.simple("drop", "hs", ["fc1"], 12, keep=0.6, enable=True),
        nu.fc("fc2", ["drop"], [12], 5, rng, init_w=0.1, eps_w=0.05, eps_b=0.05),
        nu.simple("probs", "softmax", ["fc2"], 5), nu.logreg("logreg", "labels", "probs", topk=2))


def _train(name, batches=3):
    backend.set_backend(name)
    rng = np.random.default_rng(12)
    layers = _net_layers(rng)
    net = ConvNet(layers, minibatch_size=8, rng=3)
    data = [rng.random((layers["data"]["outputs"], 24)).astype(np.float32),
            rng.integers(0, 5, size=(1, 24)).astype(np.float32)]
    per_batch, costs = [], []

    def uploads(counts):
        return {site: n for (site, kind), n in counts.items() if kind == strict.UPLOAD}
    for b in range(batches):
        strict.reset_counts()
        net.start_batch(data, b / batches, test=b == batches - 1)
        in_start = strict.syncs()
        costs.append(net.finish_batch())
        per_batch.append((in_start, strict.syncs(), uploads(strict.sync_counts())))
    net.sync_with_host()
    return layers, costs, per_batch


SYNCS_PER_BATCH = 1     # the budget: the batch's costs, read once in finish_batch; none per minibatch


def test_training_on_the_stand_in_matches_numpy_with_one_sync_per_batch():
    """3 batches of 3 minibatches (2 trained, 1 tested) through a random-sparse conv, nrelu, pooling,
    cmrnorm, dropout and logreg: the weights and costs are bit-identical to NumPy's, no minibatch
    waits for the device, each batch synchronises once, in finish_batch, and uploads only its data.
    (Before the costs stayed on the device this net made 7 synchronisations per training minibatch:
    3 float() of the costs, 4 bool() range checks in the sparse conv, and uploaded a host-drawn
    dropout mask and nrelu noise.)"""
    ref_layers, ref_costs, _ = _train("numpy")
    layers, costs, per_batch = _train("strict")
    assert costs == ref_costs
    for name, d in ref_layers.items():
        for key in ("weights", "weightsInc"):
            for a, b in zip(d.get(key, []), layers[name].get(key, []), strict=True):
                assert np.array_equal(a, b), f"{name}.{key}"
    for in_start, total, uploads in per_batch:
        assert in_start == {}, f"start_batch synchronised: {in_start}"
        (up,) = uploads                 # no mask or noise comes from the host: only the batch's data
        assert up.startswith("port/model.py:") and uploads[up] == 2, uploads
        assert sum(total.values()) == SYNCS_PER_BATCH, total
        (site,) = total
        assert site.startswith("port/model.py:") and site.endswith("(get)"), site


def test_the_driver_on_the_stand_in_syncs_once_per_batch(tmp_path, monkeypatch):
    """python -m port.convnet on the stand-in (in process, so that the counts can be read): 2 epochs
    of 3 training batches of 2 minibatches, a test every 2 batches; the only synchronisations are
    one cost read per batch (training and test) and the weights read back for each checkpoint."""
    from port import convnet
    from tests.port.cfgnets import write_cfgs
    from tests.port.test_convnet import train_args, write_cifar_like

    data = write_cifar_like(tmp_path / "data", num_batches=4, n=64)
    layer_def, params = write_cfgs(tmp_path)
    monkeypatch.setenv(backend.ENV_VAR, "strict")
    args = train_args(data, tmp_path / "save", layer_def, params, backend="auto")
    assert convnet.main(args) == 0
    assert backend.name() == "strict"
    sites = strict.syncs()
    cost_reads = sum(n for s, n in sites.items() if s.startswith("port/model.py:"))
    weight_reads = sum(n for s, n in sites.items() if s.startswith("port/weights.py:"))
    assert cost_reads == 6 + 3           # 6 training batches; a test at batches 2, 4 and 6
    assert weight_reads == 3 * 2 * 4     # 3 checkpoints × (w, inc) × 4 matrices
    assert cost_reads + weight_reads == sum(sites.values()), sites


def test_a_sparse_colour_table_out_of_range_is_refused_on_the_host():
    """The device table is never read back, so the layer checks it on the host when it uploads it."""
    from port.errors import UserError

    layers = _net_layers(np.random.default_rng(1))
    layers["conv1"]["filterConns"] = [[2, 0, 3, 1, 1, 3, 0, 4]]       # 4 channels: 4 is out of range
    backend.set_backend("strict")
    with pytest.raises(UserError, match=r"layer 'conv1': filterConns of input 0 must lie in \[0, 4\)"):
        ConvNet(layers, minibatch_size=8)
