"""Training integration: exact resumption after SIGKILL, and layers-80sec learning real CIFAR-10.

1. A run killed with SIGKILL at a random point (after its N-th checkpoint line, N random) and resumed
   with ``-f`` ends with exactly the same weights, increments, random state and costs as a run that
   was never interrupted (NumPy backend). The net has dropout (``hs``), so the model's random
   generator matters, and the cropped provider draws random crops and flips.
2. (slow) layers-80sec (the release's file when fetched, else the same architecture written here)
   trains on the shared CIFAR-10 subset for a few epochs and its held-out error ends well below
   chance.
"""
from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from archive import ORIGINAL, ROOT
from port import checkpoint
from tests.port.cfgnets import TINY_DEF, tiny_params
from tests.port.test_convnet import run_cli, save_dirs, train_args, write_cifar_like

DROPOUT_DEF = TINY_DEF.replace("[fc10]\ntype=fc\noutputs=10\ninputs=pool1",
                               "[hs1]\ntype=hs\ninputs=pool1\nkeep=0.5\n\n[fc10]\ntype=fc\noutputs=10\ninputs=hs1")
DROPOUT_PARAMS = tiny_params() + "\n[hs1]\nenable=1\n"


def _final_state(save: Path) -> dict:
    (d,) = save_dirs(save)
    return checkpoint.load(d)


def _assert_identical(a: dict, b: dict) -> None:
    la, lb = a["model_state"]["layers"], b["model_state"]["layers"]
    assert list(la) == list(lb)
    compared = 0
    for name in la:
        for key in ("weights", "weightsInc", "biases", "biasesInc"):
            if key not in la[name]:
                continue
            xs, ys = la[name][key], lb[name][key]
            xs, ys = (xs, ys) if isinstance(xs, list) else ([xs], [ys])
            for x, y in zip(xs, ys, strict=True):
                assert x.dtype == y.dtype and np.array_equal(x, y), f"{name}.{key} differs"
                compared += 1
    assert compared >= 8
    for key in ("epoch", "batchnum", "model_rng", "train_outputs", "test_outputs"):
        assert a["model_state"][key] == b["model_state"][key], key


def test_sigkill_and_resume_is_bit_identical(tmp_path):
    data = write_cifar_like(tmp_path / "data", num_batches=4, n=64)
    layer_def, params = tmp_path / "layers-hs.cfg", tmp_path / "layer-params-hs.cfg"
    layer_def.write_text(DROPOUT_DEF)
    params.write_text(DROPOUT_PARAMS)

    def args(save):  # two test batches, one per test: the test provider's position matters too
        return train_args(data, save, layer_def, params, epochs=3, **{"test-freq": 1, "train-range": "1-2",
                                                                       "test-range": "3-4"})

    whole = run_cli(args(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert len(re.findall(r"Saved checkpoint", whole.stdout)) == 6

    kill_after = random.Random().randint(1, 5)  # the checkpoint line after which the run dies
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "port.convnet", *args(tmp_path / "killed")], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen = 0
    for line in proc.stdout:
        if line.startswith("Saved checkpoint"):
            seen += 1
            if seen == kill_after:
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait(timeout=120)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before its checkpoint {kill_after}"
    (d,) = save_dirs(tmp_path / "killed")
    interrupted = checkpoint.load(d)["model_state"]
    assert (interrupted["epoch"], interrupted["batchnum"]) != (3, 2), "killed too late to test anything"

    resumed = run_cli(["-f", str(d)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    first = re.search(r"^(\d+\.\d+)\.\.\. ", resumed.stdout, re.M).group(1)
    assert first != "1.1", "the resumed run started over"
    _assert_identical(_final_state(tmp_path / "whole"), _final_state(tmp_path / "killed"))


def _layers_80sec_cfgs(root: Path) -> tuple[Path, Path]:
    """layers-80sec from the release when fetched; otherwise the same net, built here section by section."""
    rel = ORIGINAL / "alexnet-2012" / "example-layers"
    if (rel / "layers-80sec.cfg").is_file():
        return rel / "layers-80sec.cfg", rel / "layer-params-80sec.cfg"

    def section(name, **keys):
        return f"[{name}]\n" + "".join(f"{k}={v}\n" for k, v in keys.items()) + "\n"

    conv = dict(type="conv", padding=2, stride=1, filterSize=5, neuron="relu", partialSum=4, sharedBiases=1)
    pool = dict(type="pool", start=0, sizeX=3, stride=2, outputsX=0)
    text = (section("data", type="data", dataIdx=0) + section("labels", type="data", dataIdx=1)
            + section("conv1", inputs="data", channels=3, filters=32, initW=0.0001, **conv)
            + section("pool1", pool="max", inputs="conv1", channels=32, **pool)
            + section("conv2", inputs="pool1", channels=32, filters=32, initW=0.01, **conv)
            + section("pool2", pool="avg", inputs="conv2", channels=32, **pool)
            + section("conv3", inputs="pool2", channels=32, filters=64, initW=0.01, **conv)
            + section("pool3", pool="avg", inputs="conv3", channels=64, **pool)
            + section("fc64", type="fc", outputs=64, inputs="pool3", initW=0.1, neuron="relu")
            + section("fc10", type="fc", outputs=10, inputs="fc64", initW=0.1, neuron="ident")
            + section("probs", type="softmax", inputs="fc10")
            + section("logprob", type="cost.logreg", inputs="labels,probs"))
    rates = dict(epsW=0.001, epsB=0.002, momW=0.9, momB=0.9)
    params = "".join(section(n, wc=wc, **rates) for n, wc in
                     (("conv1", 0.004), ("conv2", 0.004), ("conv3", 0.004), ("fc64", 0.03), ("fc10", 0.03)))
    params += section("logprob", coeff=1)
    d, p = root / "layers-80sec.cfg", root / "layer-params-80sec.cfg"
    d.write_text(text)
    p.write_text(params)
    return d, p


@pytest.mark.slow
def test_layers_80sec_learns_cifar10(cifar_subset, tmp_path):
    data = tmp_path / "cifar"
    conv = subprocess.run([sys.executable, "-m", "port.data", "cifar10", "--source", str(cifar_subset),
                           "--out", str(data), "--split"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert conv.returncode == 0, conv.stderr
    layer_def, params = _layers_80sec_cfgs(tmp_path)
    r = run_cli([f"--data-path={data}", f"--save-path={tmp_path / 'save'}", "--train-range=1-4",
                 "--test-range=5", f"--layer-def={layer_def}", f"--layer-params={params}",
                 "--data-provider=cifar-cropped", "--test-freq=4", "--epochs=5", "--backend=numpy",
                 "--seed=1"], timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ms = _final_state(tmp_path / "save")["model_state"]
    # test_outputs hold per-case (logprob, error rate, top-k error) after each epoch's test
    errors = [t[0]["logprob"][1] for t in ms["test_outputs"]]
    assert len(errors) == 5
    assert errors[-1] < 0.75, errors  # chance is 0.9
    assert errors[-1] < errors[0], errors
