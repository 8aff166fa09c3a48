"""port.layer: the cfg parser on synthetic def/params files written into tmp_path, and on the release."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from port.errors import ConfigError, main_guard
from port.cfg_checks import IgnoredKeyWarning
from port.layer import (LAYER_PARSERS, NEURON_PARSERS, conv_to_local,
                        parse_layers, parse_neuron, unshare_weights)
from port.layer_def import apply_model_options, check_same_architecture, guess_data_dims
from tests.port.cfgnets import BASE, INPUTS, OPTS, PARAMS, edit, parse, write


def check_error(exc: ConfigError, path: Path, section, key, pattern):
    msg = str(exc)
    assert Path(exc.path) == path
    assert exc.section == section and exc.key == key, (exc.section, exc.key, msg)
    assert re.search(pattern, msg), msg
    assert str(path) in msg and "\n" not in msg
    if section:
        assert f"[{section}]" in msg
    if key:
        assert f" {key}:" in msg


# --- the small net ----------------------------------------------------------------------------

def test_small_net_keys_shapes_and_order(tmp_path):
    layers = parse(tmp_path)
    assert list(layers) == ["data", "labels", "conv1", "pool1", "fc10", "probs", "logprob", "conv1_neuron"]
    conv = layers["conv1"]
    assert conv["modulesX"] == 32 and conv["modules"] == 1024 and conv["outputs"] == 16 * 1024
    assert conv["padding"] == [-2] and conv["stride"] == [1] and conv["filterSize"] == [5]
    assert conv["filters"] == 16 and conv["filterChannels"] == [3] and conv["groups"] == [1]
    assert conv["imgSize"] == [32] and conv["imgPixels"] == [1024] and conv["filterPixels"] == [25]
    assert conv["sharedBiases"] is True and conv["partialSum"] == 4 and conv["randSparse"] == [False]
    assert conv["weightsPerFilter"] == [75] and conv["overSample"] == [1] and conv["filterConns"] == [[]]
    assert conv["weights"][0].shape == (75, 16) and conv["weights"][0].dtype == np.float32
    assert conv["weights"][0].flags.c_contiguous and conv["biases"].shape == (16, 1)
    assert conv["gpu"] == 0 and conv["requiresParams"] and not conv["usesActs"]
    assert conv["actsTarget"] == -1 and conv["actsGradTarget"] == -1 and conv["conserveMem"] is False
    pool = layers["pool1"]
    assert pool["outputsX"] == 16 and pool["outputs"] == 16 * 256 and pool["imgSize"] == 32
    assert pool["usesActs"] is True and pool["requiresParams"] is False
    fc = layers["fc10"]
    assert fc["numInputs"] == [4096] and fc["weights"][0].shape == (4096, 10)
    assert fc["weights"][0].flags.f_contiguous and fc["biases"].shape == (1, 10)
    assert fc["weightSourceLayers"] == [""] and fc["weightSourceMatrixIndices"] == [-1]
    assert fc["epsW"] == [0.001] and fc["momB"] == 0.9 and fc["wc"] == [0.01] and fc["wball"] == [0.0]
    assert fc["wballNormed"] == [0.0] and fc["schedW"] == {"type": "default", "params": {}}
    assert fc["quantF"] == {"type": "default", "params": {}} and fc["gradConsumer"] is True
    assert layers["probs"]["outputs"] == 10
    cost = layers["logprob"]
    assert "neuron" not in cost and cost["coeff"] == 1.0 and cost["topk"] == 1
    assert layers["data"]["outputs"] == 3072 and layers["data"]["gpu"] == -1 and "inputs" not in layers["data"]
    assert conv["wcNormMax"] == [0.0] and conv["wcNormMin"] == [0.0]


def test_neuron_spawning_rewires_consumers(tmp_path):
    layers = parse(tmp_path)
    n = layers["conv1_neuron"]
    assert n["type"] == "neuron" and n["src_layer"] == "conv1" and n["inputs"] == ["conv1"]
    assert n["inputLayers"][0] is layers["conv1"] and n["outputs"] == layers["conv1"]["outputs"]
    assert n["neuron"] == {"type": "relu", "params": {}, "usesActs": True, "usesInputs": False}
    assert n["usesActs"] is True and n["usesInputs"] is False and n["forceOwnActs"] is False
    assert layers["pool1"]["inputs"] == ["conv1_neuron"] and layers["pool1"]["inputLayers"][0] is n
    assert layers["conv1"]["neuron"] == "relu"  # the source keeps its string
    # the spawned name avoids a taken one
    text = BASE.replace("[pool1]", "[conv1_neuron]\ntype=neuron\ninputs=conv1\nneuron=abs\n\n[pool1]")
    text = edit(text, "pool1", "inputs=conv1", "inputs=conv1_neuron")
    layers = parse(tmp_path, text, params=None)
    assert "conv1_neuron.1" in layers and layers["conv1_neuron"]["inputs"] == ["conv1_neuron.1"]
    assert layers["conv1_neuron"]["neuron"]["type"] == "abs"


@pytest.mark.parametrize("text, expected", [
    ("ident", ("ident", {}, False, False)), ("logistic", ("logistic", {}, True, False)),
    ("relu", ("relu", {}, True, False)), ("nrelu", ("nrelu", {}, True, False)),
    ("brelu[6]", ("brelu", {"a": 6.0}, True, False)), ("abs", ("abs", {}, False, True)),
    ("tanh[1.7159,0.6666]", ("tanh", {"a": 1.7159, "b": 0.6666}, True, False)),
    ("drelu[-2.5]", ("drelu", {"a": -2.5}, False, True)), ("softrelu", ("softrelu", {}, True, False)),
    ("square", ("square", {}, False, True)), ("sqrt", ("sqrt", {}, True, False)),
    ("linear[2, -1]", ("linear", {"a": 2.0, "b": -1.0}, True, False)),
])
def test_all_twelve_neurons(text, expected):
    n = parse_neuron(text)
    assert (n["type"], n["params"], n["usesActs"], n["usesInputs"]) == expected


@pytest.mark.parametrize("bad", ["relux", "tanh[1]", "tanh[1,2,3]", "linear[1e-3,0]", "tanh[1.2.3,1]",
                                 "abstanh[1,1]", "RELU", ""])
def test_bad_neurons(bad):
    assert parse_neuron(bad) is None


def test_registries_cover_the_release():
    assert len(NEURON_PARSERS) == 12 and len(LAYER_PARSERS) == 30


def test_ceil_rule_sizes_of_the_paper_net(tmp_path):
    text = INPUTS + """[conv1]
type=conv
inputs=data
channels=3
filters=48
filterSize=11
stride=4
initW=0.01
partialSum=5
[pool1]
type=pool
pool=max
inputs=conv1
sizeX=3
stride=2
channels=48
[pool2]
type=pool
pool=max
inputs=pool1
sizeX=3
stride=2
channels=48
[pool3]
type=pool
pool=max
inputs=pool2
sizeX=3
stride=2
channels=48
[fc]
type=fc
inputs=pool3
outputs=10
initW=0.01
[probs]
type=softmax
inputs=fc
[cost]
type=cost.logreg
inputs=labels,probs
"""
    layers = parse(tmp_path, text, params=None, options={"data_dims": {0: 3 * 224 * 224, 1: 1}},
                   init_weights=False)
    assert layers["conv1"]["modulesX"] == 55  # 1 + ceil((224 - 11)/4) = 1 + 54
    assert [layers[p]["outputsX"] for p in ("pool1", "pool2", "pool3")] == [27, 13, 6]
    assert "weights" not in layers["conv1"] and "biases" not in layers["fc"]
    assert "epsW" not in layers["fc"] and "quantF" not in layers["fc"]


def test_initial_weights_follow_initW_and_initB(tmp_path):
    text = edit(BASE, "fc10", "initW=0.01", "initW=0.05\ninitB=0.25")
    layers = parse(tmp_path, text)
    w = layers["fc10"]["weights"][0]
    assert abs(w.std() - 0.05) < 0.002 and abs(w.mean()) < 0.002
    assert np.all(layers["fc10"]["biases"] == np.float32(0.25))
    assert np.all(layers["fc10"]["weightsInc"][0] == 0) and layers["fc10"]["biasesInc"].shape == (1, 10)
    again = parse(tmp_path, text)  # same seed, same weights
    assert np.array_equal(again["fc10"]["weights"][0], w)


def test_multi_input_conv_and_per_input_lists(tmp_path):
    text = BASE.replace("[fc10]", """[conv2]
type=conv
inputs=pool1,pool1
channels=16,16
filters=32,32
filterSize=3,5
padding=1,2
initW=0.01,0.02
partialSum=0

[fc10]""")
    text = edit(text, "fc10", "inputs=pool1", "inputs=conv2")
    layers = parse(tmp_path, text, params=None)
    c = layers["conv2"]
    assert c["modulesX"] == 16 and c["filters"] == 32 and c["padding"] == [-1, -2]
    assert [w.shape for w in c["weights"]] == [(9 * 16, 32), (25 * 16, 32)]
    assert c["numInputs"] == [4096, 4096] and c["weightsPerFilter"] == [144, 400]
    bad = edit(text, "conv2", "padding=1,2", "padding=1,1")  # 16 vs 14 modules
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, bad, params=None)
    check_error(e.value, tmp_path / "layers.cfg", "conv2", "inputs", "equally-dimensioned.*32x16x16, 32x14x14")
    bad = edit(text, "conv2", "filterSize=3,5", "filterSize=3")
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, bad, params=None)
    check_error(e.value, tmp_path / "layers.cfg", "conv2", "filterSize", r"list length \(1\).*inputs \(2\)")


def test_every_type(tmp_path):
    text = INPUTS + """[gates]
type=data
dataIdx=2
[dist]
type=data
dataIdx=3
[yuv]
type=rgb2yuv
inputs=data
[lab]
type=rgb2lab
inputs=data
center=1
[flip]
type=href
inputs=data
channels=3
[blur]
type=blur
inputs=data
channels=3
filterSize=5
stdev=1
[nails]
type=nailbed
inputs=blur
channels=3
stride=4
[small]
type=resize
inputs=data
channels=3
scale=2
[rs]
type=rscale
inputs=data
channels=3
maxScale=1.5
tgtSize=24
[cat]
type=concat
inputs=yuv,lab,flip,nails,small,rs
[c1]
type=conv
inputs=data
channels=3
filters=16
filterSize=5
padding=2
stride=2
partialSum=0
sharedBiases=0
initW=0.01
[g]
type=conv
inputs=c1
channels=16
groups=2
filters=16
filterSize=3
padding=1
partialSum=1
initW=0.01
[rnd]
type=conv
inputs=g
channels=32
groups=4
randSparse=1
filterChannels=16
filters=16
filterSize=3
padding=1
partialSum=1
initW=0.01
[loc]
type=local
inputs=rnd
channels=64
filters=16
filterSize=3
stride=2
initW=0.01
[rn]
type=rnorm
inputs=loc
channels=16
size=3
[cm]
type=cmrnorm
inputs=rn
channels=16
size=5
blocked=1
[cn]
type=cnorm
inputs=cm
channels=16
size=3
[p_avg]
type=pool
inputs=cn
pool=avg
channels=16
sizeX=2
stride=2
[p_abs]
type=pool
inputs=cn
pool=maxabs
channels=16
sizeX=3
stride=2
start=1
[p_rand]
type=pool
inputs=cn
pool=rand
channels=16
sizeX=3
stride=3
outputsX=2
[fc]
type=fc
inputs=p_avg,p_abs,p_rand
outputs=10
initW=0.01,0.02,0.03
initB=0.5
neuron=tanh[1.7159,0.6666]
[es]
type=eltsum
inputs=fc,fc
coeffs=1,-1
[em]
type=eltmax
inputs=es,fc
[drop]
type=hs
inputs=em
keep=0.5
[probs]
type=softmax
inputs=drop
[fcl]
type=fc
inputs=drop
outputs=10
initW=0.01
neuron=logistic
[tf]
type=treefc
inputs=drop
initW=0.01
[tprobs]
type=softmax
inputs=tf
[logprob]
type=cost.logreg
inputs=labels,probs
[tlog]
type=cost.logreg
inputs=labels,tprobs
[xent]
type=cost.crossent
inputs=dist,probs
[xent2]
type=cost.crossent2
inputs=dist,fcl
[rfl]
type=cost.rflickr
inputs=dist,fcl
[gs]
type=cost.gsum2
inputs=gates,drop
[tica]
type=cost.tica
inputs=cn
channels=16
sizeX=3
[msm]
type=cost.msm
inputs=labels,drop
[sq]
type=cost.sum2
inputs=cat
"""
    weights = {"c1": 1, "g": 1, "rnd": 1, "loc": 1, "fc": 3, "fcl": 1, "tf": 1}
    params = "".join(f"[{n}]\nepsW={','.join(['0.01'] * k)}\nepsB=0.02\nmomW={','.join(['0.9'] * k)}\n"
                     "momB=0.9\nschedW=dexp[250,0,4]\nschedB=exp[tgtFactor=10,noiseStdev=0]\n\n"
                     for n, k in weights.items())
    params += "".join(f"[{n}]\nscale=0.001\npow=0.75\n\n" for n in ("rn", "cm", "cn"))
    params += "[cm]\nminDiv=2\n\n[p_rand]\ndoMax=1\n\n[drop]\nenable=true\n\n"
    params += "".join(f"[{n}]\ncoeff=1\n\n" for n in ("logprob", "tlog", "xent", "xent2", "rfl", "gs", "tica", "sq"))
    params += "[logprob]\ntopk=5\n\n[msm]\ncoeff=1\nsetSize=3\nthreads=4\n"
    tree = [[] for _ in range(10)] + [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9], [10, 11], [12, 13], [14, 15]]
    opts = {"data_dims": {0: 3072, 1: 1, 2: 1, 3: 10}, "tree": tree, "root_label": 16}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L = parse(tmp_path, text, params, options=opts)
    assert L["yuv"]["channels"] == 3 and L["yuv"]["outputs"] == 3072 and "center" not in L["yuv"]
    assert L["lab"]["center"] is True and L["flip"]["imgSize"] == 32
    assert L["blur"]["filter"].shape == (1, 5) and L["blur"]["filter"].dtype == np.float32
    assert L["blur"]["filter"].sum() == pytest.approx(1.0) and L["blur"]["filter"][0, 2] == L["blur"]["filter"].max()
    assert (L["nails"]["outputsX"], L["nails"]["start"], L["nails"]["outputs"]) == (8, 2, 3 * 64)
    assert (L["small"]["tgtSize"], L["small"]["outputs"]) == (16, 3 * 256)
    assert (L["rs"]["tgtSize"], L["rs"]["tgtPixels"]) == (24, 576)
    cat = L["cat"]
    sizes = [3072, 3072, 3072, 192, 768, 1728]
    assert cat["outputs"] == sum(sizes) and cat["copyOffsets"] == list(np.cumsum([0] + sizes[:-1]))
    c1 = L["c1"]
    assert c1["modulesX"] == 17 and c1["biases"].shape == (16 * 289, 1) and c1["partialSum"] == 0
    g = L["g"]
    assert g["filters"] == 32 and g["filterChannels"] == [8] and g["weights"][0].shape == (72, 32)
    rnd = L["rnd"]
    assert rnd["filters"] == 64 and rnd["filterChannels"] == [16] and rnd["overSample"] == [2]
    conns = rnd["filterConns"][0]
    assert len(conns) == 64 and sorted(conns[:32]) == list(range(32)) and sorted(conns[32:]) == list(range(32))
    assert rnd["weights"][0].shape == (9 * 16, 64)
    loc = L["loc"]
    assert loc["modulesX"] == 8 and loc["weights"][0].shape == (64 * 9 * 64, 16)
    assert loc["biases"].shape == (16 * 64, 1)
    assert L["rn"]["scale"] == pytest.approx(0.001 / 9) and L["rn"]["usesInputs"] is True
    assert L["cm"]["scale"] == pytest.approx(0.001 / 5) and L["cm"]["minDiv"] == 2.0 and L["cm"]["blocked"] is True
    assert L["cn"]["usesInputs"] is False and "minDiv" not in L["cn"] and L["rn"]["pow"] == 0.75
    assert (L["p_avg"]["outputsX"], L["p_abs"]["outputsX"], L["p_rand"]["outputsX"]) == (4, 3, 2)
    assert L["p_rand"]["requiresParams"] and L["p_rand"]["doMax"] is True and "doMax" not in L["p_avg"]
    fc = L["fc"]
    assert [w.shape for w in fc["weights"]] == [(256, 10), (144, 10), (64, 10)]
    assert fc["epsW"] == [0.01] * 3 and fc["wballNormed"] == [0.0] * 3
    assert fc["schedW"] == {"type": "dexp", "params": {"tgtFactor": 250.0, "noiseStdev": 0.0, "numSteps": 4}}
    assert fc["schedB"] == {"type": "exp", "params": {"tgtFactor": 10.0, "noiseStdev": 0.0}}
    assert L["fc_neuron"]["neuron"]["params"] == {"a": 1.7159, "b": 0.6666}
    assert L["es"]["coeffs"] == [1.0, -1.0] and L["es"]["inputs"] == ["fc_neuron", "fc_neuron"]
    assert L["em"]["inputs"] == ["es", "fc_neuron"] and L["em"]["outputs"] == 10
    assert L["drop"]["keep"] == 0.5 and L["drop"]["enable"] is True
    tf = L["tf"]
    assert tf["outputs"] == 10 and tf["weights"][0].shape == (10, 17) and tf["rootLabel"] == 16
    assert np.all(tf["weights"][0][:, 10:] == 0) and np.any(tf["weights"][0][:, :10] != 0)
    assert L["logprob"]["topk"] == 5 and L["tlog"]["topk"] == 1
    assert L["msm"]["numOut"] == 10 and L["msm"]["setSize"] == 3 and L["msm"]["threads"] == 4
    assert L["tica"]["imgSize"] == 8 and L["xent2"]["coeff"] == 1.0


def test_weight_sharing_and_unsharing(tmp_path):
    text = BASE.replace("[fc10]", """[fcA]
type=fc
inputs=pool1
outputs=10
initW=0.01

[fc10]""")
    text = edit(text, "fc10", "initW=0.01", "initW=0.01\nweightSource=fcA")
    text = text.replace("[probs]\ntype=softmax\ninputs=fc10", "[sum]\ntype=eltsum\ninputs=fcA,fc10\n\n"
                        "[probs]\ntype=softmax\ninputs=sum")
    L = parse(tmp_path, text, params=None)
    assert L["fc10"]["weightSourceLayers"] == ["fcA"] and L["fc10"]["weightSourceMatrixIndices"] == [0]
    assert L["fc10"]["weights"][0] is L["fcA"]["weights"][0]
    assert L["fc10"]["weightsInc"][0] is L["fcA"]["weightsInc"][0]
    msgs = unshare_weights(L["fc10"], L)
    assert msgs == ["Unshared weight matrix fc10[0] from fcA[0]."]
    assert L["fc10"]["weights"][0] is not L["fcA"]["weights"][0]
    assert np.array_equal(L["fc10"]["weights"][0], L["fcA"]["weights"][0])
    assert L["fc10"]["weightSourceLayers"] == [""] and L["fc10"]["weightSourceMatrixIndices"] == [-1]
    assert unshare_weights(L["fc10"], L, 0) == ["Weight matrix fc10[0] already unshared."]
    # through the options, as the driver's --unshare-weights
    L = apply_model_options(parse(tmp_path, text, params=None), unshare_weights=["fc10[0]"])
    assert L["fc10"]["weights"][0] is not L["fcA"]["weights"][0]
    with pytest.raises(ConfigError, match="does not exist"):
        apply_model_options(parse(tmp_path, text, params=None), unshare_weights=["nosuch"])


def test_conv_to_local(tmp_path):
    text = BASE.replace("[pool1]", """[conv1b]
type=conv
inputs=data
channels=3
filters=16
padding=2
filterSize=5
initW=0.01
partialSum=4
weightSource=conv1

[both]
type=eltsum
inputs=conv1,conv1b

[pool1]""")
    text = edit(text, "pool1", "inputs=conv1", "inputs=both")
    text = text.replace("neuron=relu\n", "")
    L = parse(tmp_path, text, params=None)
    w0, b0 = L["conv1"]["weights"][0].copy(), L["conv1"]["biases"].copy()
    conv_to_local(L, "conv1b")  # converts its source first, then the layer
    for name in ("conv1", "conv1b"):
        assert L[name]["type"] == "local"
        w = L[name]["weights"][0]
        assert w.shape == (1024 * 75, 16) and w.flags.c_contiguous
        assert np.array_equal(w[:75], w0) and np.array_equal(w[75 * 513:75 * 514], w0)
        assert L[name]["biases"].shape == (16 * 1024, 1)
    assert L["conv1b"]["weights"][0] is L["conv1"]["weights"][0]
    assert np.array_equal(L["conv1"]["biases"][1024 * 3:1024 * 4], np.full((1024, 1), b0[3, 0]))
    L = apply_model_options(parse(tmp_path, text, params=None), conv_to_local=["conv1"])
    assert L["conv1"]["type"] == L["conv1b"]["type"] == "local"  # sharers follow


def test_init_functions_from_the_cfg_folder(tmp_path):
    write(tmp_path, "myinit.py", """
import numpy as np
def w(name, idx, shape, params=None):
    return np.full(shape, float(params[0]), dtype=np.float32)
def b(name, shape, params=None):
    return np.full(shape, 3, dtype=np.float32)
def wrong(name, idx, shape, params=None):
    return np.zeros((2, 2), dtype=np.float32)
def boom(name, idx, shape, params=None):
    raise IOError("no checkpoint here")
""")
    text = edit(BASE, "fc10", "initW=0.01", "initW=0.01\ninitWFunc=myinit.w(0.5)\ninitBFunc=myinit.b")
    L = parse(tmp_path, text)
    assert np.all(L["fc10"]["weights"][0] == 0.5) and np.all(L["fc10"]["biases"] == 3)
    assert L["fc10"]["weights"][0].flags.f_contiguous
    for func, pattern in [("myinit.wrong", "wrong shape"), ("myinit.boom", "OSError: no checkpoint here"),
                          ("nosuchmodule.f", "ModuleNotFoundError"), ("bad", "must have format")]:
        bad = edit(BASE, "fc10", "initW=0.01", f"initW=0.01\ninitWFunc={func}")
        with pytest.raises(ConfigError) as e:
            parse(tmp_path, bad)
        check_error(e.value, tmp_path / "layers.cfg", "fc10", "initWFunc", pattern)


def test_gpu_rules(tmp_path):
    text = edit(BASE, "fc10", "initW=0.01", "initW=0.01\ngpu=3")
    L = parse(tmp_path, text, params=None, init_weights=False)  # no num_gpus: any index
    assert L["fc10"]["gpu"] == 3 and L["probs"]["gpu"] == 3 and L["conv1"]["gpu"] == 0
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, text, params=None, options={"num_gpus": 2}, init_weights=False)
    check_error(e.value, tmp_path / "layers.cfg", "fc10", "gpu", "must be one of '0', '1', got 3")
    assert parse(tmp_path, text, params=None, options={"num_gpus": 4}, init_weights=False)["fc10"]["gpu"] == 3


def test_quantizers_and_spawned_neuron_reads_source_section(tmp_path):
    params = edit(PARAMS, "conv1", "wc=0.004", "wc=0.004\nquantF=half")
    L = parse(tmp_path, params=params)
    assert L["conv1"]["quantF"] == {"type": "half", "params": {}}
    assert L["conv1_neuron"]["quantF"] == {"type": "half", "params": {}}
    assert L["conv1"]["quantB"] == L["pool1"]["quantF"] == {"type": "default", "params": {}}


def test_sched_key_is_ignored_with_a_warning(tmp_path):
    params = edit(PARAMS, "conv1", "wc=0.004", "wc=0.004\nsched=exp[1000]")
    with pytest.warns(IgnoredKeyWarning, match="sched"):
        L = parse(tmp_path, params=params)
    assert L["conv1"]["schedW"] == {"type": "default", "params": {}}


def test_resume_changes_hyper_parameters_only(tmp_path):
    saved = parse(tmp_path)
    w = saved["fc10"]["weights"][0]
    p2 = write(tmp_path, "params2.cfg", edit(PARAMS, "fc10", "epsW=0.001", "epsW=0.0001\nschedW=linear[10]"))
    L = parse_layers(tmp_path / "layers.cfg", p2, OPTS, saved)
    assert L is saved and L["fc10"]["weights"][0] is w and L["fc10"]["epsW"] == [0.0001]
    assert L["fc10"]["schedW"]["type"] == "linear"
    # initialization keys may change, as they only act on a new net (the driver's check on resume)
    write(tmp_path, "layers.cfg", edit(BASE, "fc10", "initW=0.01", "initW=0.5"))
    check_same_architecture(saved, tmp_path / "layers.cfg", OPTS)
    # the architecture may not
    for section, old, new, key in [("conv1", "padding=2\nstride=1\nfilterSize=5", "padding=1\nstride=1\nfilterSize=3", "padding"),
                                   ("fc10", "outputs=10", "outputs=10\ngpu=1", "gpu"),
                                   ("conv1", "neuron=relu", "neuron=abs", "neuron")]:
        write(tmp_path, "layers.cfg", edit(BASE, section, old, new))
        with pytest.raises(ConfigError) as e:
            check_same_architecture(saved, tmp_path / "layers.cfg", OPTS)
        check_error(e.value, tmp_path / "layers.cfg", section, key, "cannot change on resume")
    write(tmp_path, "layers.cfg", BASE + "\n[extra]\ntype=cost.sum2\ninputs=fc10\n")
    with pytest.raises(ConfigError, match="added.*extra"):
        check_same_architecture(saved, tmp_path / "layers.cfg", OPTS)
    # the parser itself, on resume, takes only the params
    assert parse_layers(None, p2, OPTS, saved) is saved


def test_def_only_guesses_data_sizes(tmp_path):
    d = write(tmp_path, "layers.cfg", BASE)
    assert guess_data_dims(d) == {0: 3 * 24 * 24, 1: 1}  # a 10-class net: CIFAR crops first
    L = parse_layers(d, None, {"data_dims": guess_data_dims(d)}, init_weights=False)
    assert L["conv1"]["imgSize"] == [24] and L["pool1"]["outputsX"] == 12


def test_reading_a_def_file_loads_no_driver(tmp_path):
    """port.layer_def (the parser's helpers) reads a def file without the driver, the model, the
    layer classes or the data providers."""
    d = write(tmp_path, "layers.cfg", BASE)
    code = ("import sys\nfrom port.layer import parse_layers\nfrom port.layer_def import guess_data_dims\n"
            f"parse_layers({str(d)!r}, None, {{'data_dims': guess_data_dims({str(d)!r})}}, init_weights=False)\n"
            "print(sorted(m for m in sys.modules if m.startswith(('port.convnet', 'port.gpumodel', "
            "'port.model', 'port.layers', 'port.data'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_errors_print_one_line_and_exit_2(tmp_path, capsys):
    d = write(tmp_path, "layers.cfg", edit(BASE, "conv1", "filters=16", "filters=abc"))

    @main_guard("convnet")
    def main(argv):
        parse_layers(d, None, OPTS)
        return 0

    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[conv1] filters: must be ','-delimited list of ints" in err
    assert str(d) in err


DEF_ERRORS = [
    ("fc10", "type=fc", "type=fcc", "type", "unknown layer type 'fcc'"),
    ("probs", "type=softmax\n", "", "type", "no type given"),
    ("fc10", "inputs=pool1", "inputs=pool9", "inputs", "input layer 'pool9' not defined"),
    ("conv1", "inputs=data", "inputs=pool1", "inputs", "'pool1' is defined after this layer"),
    ("probs", "inputs=fc10", "inputs=probs", "inputs", "itself"),
    ("conv1", "initW=0.01", "initW=0.01,0.02", "initW", r"list length \(2\).*inputs \(1\)"),
    ("conv1", "channels=3", "channels=5", "channels", "not interpretable as square 5-channel"),
    ("conv1", "filters=16", "filters=24", "filters", "divisible by 16"),
    ("conv1", "filterSize=5", "filterSize=37", "filterSize", r"greater than image size \+ 2 \* padding \(36\)"),
    ("conv1", "partialSum=4", "partialSum=3", "partialSum", "32x32=1024 outputs per filter.*does not divide"),
    ("conv1", "neuron=relu", "neuron=relux", "neuron", "unable to parse neuron type 'relux'.*tanh"),
    ("conv1", "filters=16", "filters=abc", "filters", "must be ','-delimited list of ints, got 'abc'"),
    ("conv1", "filterSize=5\n", "", "filterSize", "required parameter missing"),
    ("conv1", "padding=2", "padding=-1", "padding", "greater than or equal to 0"),
    ("conv1", "filters=16", "filters=16%", "filters", "interpolation"),
    ("conv1", "partialSum=4", "partialSum=4\nsharedBiases=maybe", "sharedBiases", "must be bool"),
    ("pool1", "pool=max", "pool=min", "pool", "must be one of 'max', 'maxabs', 'avg', 'rand', got 'min'"),
    ("pool1", "sizeX=3", "sizeX=40", "sizeX", "range 1-32"),
    ("pool1", "channels=16", "channels=8", "channels", "'channels' \\(8\\) must be divisible by 16"),
    ("fc10", "initW=0.01\n", "", "initW", "required parameter missing"),
    ("fc10", "outputs=10", "outputs=0", "outputs", "greater than or equal to 1"),
    ("fc10", "initW=0.01", "initW=0.01\nweightSource=nosuch", "weightSource", "'nosuch' does not exist"),
    ("fc10", "initW=0.01", "initW=0.01\nweightSource=fc10", "weightSource", r"'fc10\[0\]' not defined yet"),
    ("fc10", "initW=0.01", "initW=0.01\nweightSource=conv1", "weightSource", "is of type 'conv'"),
    ("logprob", "inputs=labels,probs", "inputs=fc10,probs", "inputs", "dimensionality of first input must be 1"),
    ("logprob", "inputs=labels,probs", "inputs=labels,fc10", "inputs", "second input must be softmax"),
    ("logprob", "inputs=labels,probs", "inputs=labels", "inputs", "number of inputs must be 2"),
    ("data", "dataIdx=0", "dataIdx=7", "dataIdx", "no data matrix 7"),
]


@pytest.mark.parametrize("section, old, new, key, pattern", DEF_ERRORS,
                         ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(DEF_ERRORS)])
def test_def_errors(tmp_path, section, old, new, key, pattern):
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, edit(BASE, section, old, new), params=None)
    check_error(e.value, tmp_path / "layers.cfg", section, key, pattern)


def test_more_def_errors(tmp_path):
    path = tmp_path / "layers.cfg"
    cases = [
        (BASE + "\n[extra]\ntype=neuron\ninputs=fc10\nneuron=relu\n", "extra", None, "'extra' of type 'neuron' is unused"),
        (BASE + "\n[m]\ntype=eltmax\ninputs=fc10\n", "m", "inputs", "at least 2 inputs, got 1"),
        (BASE + "\n[n]\ntype=cmrnorm\ninputs=pool1\nchannels=16\nsize=1\n", "n", "size", "range 2-16"),
        (BASE + "\n[s]\ntype=eltsum\ninputs=fc10,fc10\ncoeffs=1\n", "s", "coeffs", r"list length \(1\)"),
        ("type=data\n" + BASE, None, None, "line 1: expected a \\[section\\] header"),
        (BASE + "\njunk line\n", None, None, "expected 'key=value', got 'junk line'"),
        ("", None, None, "no layers defined"),
    ]
    for text, section, key, pattern in cases:
        with pytest.raises(ConfigError) as e:
            parse(tmp_path, text, params=None)
        check_error(e.value, path, section, key, pattern)
    with pytest.raises(ConfigError) as e:
        parse_layers(tmp_path / "nope.cfg", None, OPTS)
    check_error(e.value, tmp_path / "nope.cfg", None, None, "layer definition file does not exist")
    text = BASE.replace("[probs]", "[c2]\ntype=conv\ninputs=fc10\nchannels=6\nfilters=16\nfilterSize=1\n"
                        "initW=0.01\npartialSum=0\n\n[probs]")
    text = edit(text, "fc10", "outputs=10", "outputs=24")
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, text, params=None, options={"num_classes": 24})
    check_error(e.value, path, "c2", "channels", "smaller than 4 or divisible by 4")


PARAM_ERRORS = [
    ("conv1", "wc=0.004", "wc=0.004\nschedW=dexp[1,2,3,4]", "schedW", "unable to parse learning rate schedule"),
    ("conv1", "wc=0.004", "wc=0.004\nschedB=dexp", "schedB", "unable to parse learning rate schedule"),
    ("conv1", "epsW=0.001", "epsW=0.001,0.1", "epsW", r"list length \(2\)"),
    ("conv1", "epsB=0.002\n", "", "epsB", "required parameter missing"),
    ("conv1", "momW=0.9", "momW=abc", "momW", "list of floats"),
    ("conv1", "wc=0.004", "wc=0.004\nquantF=full", "quantF", "unable to parse forward quantization scheme"),
    ("conv1", "wc=0.004", "wc=0.004\nwcNormMin=2\nwcNormMax=1", "wcNormMin", "wcNormMin must be <= wcNormMax"),
    ("logprob", "coeff=1", "coeff=one", "coeff", "must be float"),
    ("logprob", "coeff=1", "coeff=1\ntopk=1.5", "topk", "must be int"),
]


@pytest.mark.parametrize("section, old, new, key, pattern", PARAM_ERRORS,
                         ids=[f"{c[0]}-{c[3]}" for c in PARAM_ERRORS])
def test_params_errors(tmp_path, section, old, new, key, pattern):
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, params=edit(PARAMS, section, old, new), init_weights=False)
    check_error(e.value, tmp_path / "params.cfg", section, key, pattern)


def test_params_file_must_cover_layers_that_need_it(tmp_path):
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, params=PARAMS.replace("[logprob]\ncoeff=1\n", ""), init_weights=False)
    check_error(e.value, tmp_path / "params.cfg", "logprob", None,
                "type 'cost.logreg' requires extra parameters, but none given")
    with pytest.raises(ConfigError) as e:
        parse_layers(write(tmp_path, "layers.cfg", BASE), tmp_path / "missing.cfg", OPTS)
    check_error(e.value, tmp_path / "missing.cfg", None, None, "layer parameter file does not exist")


# --- the release ------------------------------------------------------------------------------

def test_paper_net_145(alexnet_2012):
    d = alexnet_2012 / "layers"
    L = parse_layers(d / "layers-145.cfg", d / "layer-params-145.cfg",
                     {"data_dims": {0: 3 * 224 * 224, 1: 1}, "num_classes": 1000, "seed": 0})
    assert L["conv1a"]["modulesX"] == 55 and L["conv1b"]["modulesX"] == 55
    assert L["pool1a"]["outputsX"] == 27 and L["pool2a"]["outputsX"] == 13 and L["pool3b"]["outputsX"] == 6
    assert L["conv2a"]["modulesX"] == 27 and L["conv5b"]["modulesX"] == 13
    assert L["fc2048a"]["numInputs"] == [6 * 6 * 128] * 2 and L["fc1000"]["outputs"] == 1000
    n_params = sum(w.size for l in L.values() for w in l.get("weights", [])) \
        + sum(l["biases"].size for l in L.values() if "biases" in l)
    assert n_params == 60_965_224  # the two-column net's well-known count
    assert L["rnorm1a"]["minDiv"] == 2.0 and L["rnorm1a"]["scale"] == pytest.approx(0.0001 / 5)
    assert {l["gpu"] for l in L.values()} == {-1, 0, 1}
    assert sum(l["type"] == "neuron" for l in L.values()) == 14


@pytest.mark.parametrize("stem", ["80sec", "19pct", "conv-local-12pct", "conv-local-13pct", ".gc"])
def test_cifar_examples_parse(alexnet_2012, stem):
    d = alexnet_2012 / "example-layers"
    sep = "" if stem.startswith(".") else "-"
    L = parse_layers(d / f"layers{sep}{stem}.cfg", d / f"layer-params{sep}{stem}.cfg",
                     {"data_dims": {0: 3 * 24 * 24, 1: 1}, "num_classes": 10, "seed": 0}, init_weights=False)
    assert sum(l["type"].startswith("cost.") for l in L.values()) == 1
    assert all(l["gpu"] >= 0 for l in L.values() if l["type"] != "data")


# def files the 2012 parser cannot read without a provider or at all:
KNOWN_DEF_FAILURES = {
    "layers/layers-137-tree.cfg": ("fc1000", "num_classes"),       # treefc needs the provider's classes
    "layers/layers-146-2009-tree.cfg": ("fc1000", "num_classes"),
}  # the 2011 rnorm/cnorm keys (sizeX) of 18pct and example are read (NormLayerParser.parse_2011)


def test_every_released_def_file_parses(alexnet_2012):
    files = sorted(alexnet_2012.glob("layers/layers-*.cfg")) + sorted(alexnet_2012.glob("layers-cifar/layers-*.cfg")) \
        + sorted(alexnet_2012.glob("example-layers/layers*.cfg"))
    assert len(files) >= 70
    failed = {}
    for f in files:
        rel = f.relative_to(alexnet_2012).as_posix()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                L = parse_layers(f, None, {"data_dims": guess_data_dims(f)}, init_weights=False)
            assert all(l["outputs"] > 0 for l in L.values() if not l["type"].startswith("cost."))
        except ConfigError as e:
            failed[rel] = e
    assert set(failed) == set(KNOWN_DEF_FAILURES), {k: str(v) for k, v in failed.items()}
    for rel, (section, pattern) in KNOWN_DEF_FAILURES.items():
        assert failed[rel].section == section and re.search(pattern, str(failed[rel])), str(failed[rel])
    for rel in ("layers/layers-137-tree.cfg", "layers/layers-146-2009-tree.cfg"):
        f = alexnet_2012 / rel
        L = parse_layers(f, None, {"num_classes": 10184, "data_dims": guess_data_dims(f, {"num_classes": 10184})},
                         init_weights=False)
        assert L["fc1000"]["outputs"] == 10184


def test_positional_schedule_params_files_parse(alexnet_2012):
    d = alexnet_2012 / "layers"
    opts = {"data_dims": {0: 3 * 224 * 224, 1: 1}, "num_classes": 1000}
    L = parse_layers(d / "layers-153.cfg", d / "layer-params-175.cfg", opts, init_weights=False)
    assert L["conv2a"]["schedW"] == {"type": "dexp", "params": {"tgtFactor": 250.0, "noiseStdev": 0.0, "numSteps": 4}}
    L = parse_layers(d / "layers-153.cfg", d / "layer-params-165.cfg", opts, init_weights=False)
    assert L["conv2a"]["schedB"] == {"type": "dexp", "params": {"tgtFactor": 10.0, "noiseStdev": 0.0, "numSteps": 2}}
    c = alexnet_2012 / "layers-cifar"
    L = parse_layers(c / "layers-18pct.cfg", c / "layer-params-18pct-noisylr.cfg",
                     {"data_dims": {0: 3 * 24 * 24, 1: 1}, "num_classes": 10}, init_weights=False)
    assert L["conv1"]["schedW"] == {"type": "linear", "params": {"tgtFactor": 1.0, "noiseStdev": 1.0}}
    with pytest.warns(IgnoredKeyWarning):
        parse_layers(d / "layers-153.cfg", d / "layer-params-160.cfg", opts, init_weights=False)


def test_random_sparse_connectivity_from_a_function(tmp_path):
    write(tmp_path, "conns.py", """
def good(name, idx, shape, params=None):
    groups, channels, filter_channels = shape
    return list(reversed(range(channels))) * (groups * filter_channels // channels)
def repeats(name, idx, shape, params=None):
    return [0] * 32
""")
    text = BASE.replace("[fc10]", """[sparse]
type=conv
inputs=pool1
channels=16
groups=4
randSparse=1
filterChannels=8
filters=16
filterSize=3
padding=1
partialSum=0
initW=0.01
initCFunc=conns.good

[fc10]""")
    text = edit(text, "fc10", "inputs=pool1", "inputs=sparse")
    L = parse(tmp_path, text, params=None)
    assert L["sparse"]["filterConns"] == [list(range(15, -1, -1)) * 2] and L["sparse"]["overSample"] == [2]
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, text.replace("conns.good", "conns.repeats"), params=None)
    check_error(e.value, tmp_path / "layers.cfg", "sparse", "initCFunc", "permutation of 0-15")
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, edit(text, "sparse", "groups=4", "groups=1"), params=None)
    check_error(e.value, tmp_path / "layers.cfg", "sparse", "groups", "greater than 1 when using random sparse")


# --- hostile input: sizes, numbers, kernel rules, unknown keys, odd files -----------------------

HOSTILE_DEF = [
    ("conv1", "filters=16", "filters=99999999999", "filters", r"C int range -2147483648\.\.2147483647"),
    ("conv1", "partialSum=4", "partialSum=-1", "partialSum", "greater than or equal to 0, got -1"),
    ("conv1", "stride=1", "stride=6", "stride", r"must not exceed filterSize \(5\)"),
    ("pool1", "start=0", "start=100000000", "start", r"range -2-31, got 100000000"),
    ("conv1", "initW=0.01", "initW=nan", "initW", "finite float, got 'nan'"),
    ("conv1", "neuron=relu", "neuron=brelu[" + "9" * 400 + "]", "neuron", "unable to parse neuron type"),
    ("fc10", "initW=0.01", "initW=0.01\ninitB=-inf", "initB", "finite float, got '-inf'"),
    ("conv1", "neuron=relu", "neuron=drelu[0]", "neuron", r"drelu\[a\] divides by a, which must not be 0"),
]


@pytest.mark.parametrize("section, old, new, key, pattern", HOSTILE_DEF,
                         ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(HOSTILE_DEF)])
def test_hostile_def_values(tmp_path, section, old, new, key, pattern):
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, edit(BASE, section, old, new), params=None)
    check_error(e.value, tmp_path / "layers.cfg", section, key, pattern)


@pytest.mark.parametrize("section, old, new, key", [
    ("conv1", "filters=16", "filters=100000000", "filters"),
    ("conv1", "padding=2", "padding=100000000", "padding"),
    ("pool1", "outputsX=0", "outputsX=100000000", "outputsX"),
    ("fc10", "outputs=10", "outputs=2000000000", "outputs"),
])
def test_sizes_are_bounded_by_the_memory_left(tmp_path, section, old, new, key):
    """The issue's cases: a MemoryError traceback after trying to allocate tens of GiB. Now one
    line naming layer, key and bytes, before anything is allocated (the real ceiling of this
    machine, whatever it is, is far below what these need)."""
    text = edit(BASE, section, old, new)
    if section == "fc10":  # the cost checks the class count first; 2e9 classes is the point here
        text = text.replace("[probs]", "[fc2]\ntype=fc\noutputs=10\ninputs=fc10\ninitW=0.01\n\n[probs]")
        text = text.replace("inputs=fc10\n\n[logprob]", "inputs=fc2\n\n[logprob]")
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, text, params=None)
    check_error(e.value, tmp_path / "layers.cfg", section, key, r"would need \d+ bytes \(.*\).*, more than the \d+ bytes")


def test_memory_limit_counts_the_whole_net(tmp_path):
    """Each layer fits, the net does not: the layer that crosses the limit is named."""
    L = parse(tmp_path, params=None)
    per_layer = {n: 2 * 4 * l["outputs"] * 128 for n, l in L.items()}
    limit = per_layer["data"] + per_layer["labels"] + per_layer["conv1"] // 2
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, params=None, options={"memory_limit": limit})
    assert e.value.section == "conv1" and "on top of the" in str(e.value), str(e.value)
    parse(tmp_path, params=None, options={"memory_limit": limit}, init_weights=False)  # nothing allocated
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, params=None, options={"memory_limit": limit, "minibatch_size": 1024})
    assert e.value.section == "data"


def test_kernel_rules_are_checked_at_parse(tmp_path):
    path = tmp_path / "layers.cfg"
    cases = [
        # the issue's ZeroDivisionError: fewer input values than channels
        (BASE + "\n[n]\ntype=cmrnorm\ninputs=fc10\nchannels=16\nsize=2\n", "n", "channels",
         "10-dimensional input, fewer values than its 16 channels"),
        (BASE + "\n[nb]\ntype=nailbed\ninputs=pool1\nchannels=16\nstride=1\n", "nb", "stride",
         "greater than or equal to 2, got 1"),
        (BASE + "\n[r]\ntype=rnorm\ninputs=data\nchannels=12\nsize=3\n", "r", "channels",
         "at most 8 or divisible by 16 \\(the normalization kernel's rule\\), got 12"),
        (BASE + "\n[f]\ntype=fc\ninputs=pool1\noutputs=2048\ninitW=0.01\n[r]\ntype=rnorm\ninputs=f\n"
         "channels=8\nsize=3\n", "r", "channels", "divisible by 16 above layers with parameters"),
        (BASE + "\n[h]\ntype=hs\ninputs=fc10\nkeep=1.5\n", "h", "keep", "range 0.000-1.000"),
        (BASE + "\n[t]\ntype=cost.tica\ninputs=pool1\nchannels=16\nsizeX=9\n", "t", "sizeX", "range 1-5"),
    ]
    for text, section, key, pattern in cases:
        with pytest.raises(ConfigError) as e:
            parse(tmp_path, text, params=None)
        check_error(e.value, path, section, key, pattern)
    text = BASE.replace("[fc10]", "[r]\ntype=rnorm\ninputs=pool1\nchannels=16\nsize=3\n\n[fc10]")
    parse(tmp_path, text.replace("inputs=pool1\ninitW=0.01", "inputs=r\ninitW=0.01"), params=None)  # legal


HOSTILE_PARAMS = [
    ("conv1", "wc=0.004", "wc=nan", "wc", "finite float, got 'nan'"),
    ("conv1", "epsW=0.001", "epsW=inf", "epsW", "finite float, got 'inf'"),
    ("conv1", "momW=0.9", "momW=1e999", "momW", "finite float, got '1e999'"),
    ("conv1", "epsB=0.002", "epsB=NaN", "epsB", "finite float"),
    ("conv1", "wc=0.004", "wc=0.004\nschedW=exp[tgtFactor=nan,noiseStdev=0]", "schedW",
     "schedule parameter tgtFactor must be a finite float"),
    ("logprob", "coeff=1", "coeff=inf", "coeff", "finite float"),
]


@pytest.mark.parametrize("section, old, new, key, pattern", HOSTILE_PARAMS,
                         ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(HOSTILE_PARAMS)])
def test_hostile_params_values(tmp_path, section, old, new, key, pattern):
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, params=edit(PARAMS, section, old, new), init_weights=False)
    check_error(e.value, tmp_path / "params.cfg", section, key, pattern)


def test_unknown_keys_warn_with_the_closest_known_key(tmp_path):
    from port.cfg_checks import UnknownKeyWarning

    text = edit(edit(BASE, "conv1", "neuron=relu", "neuronx=relu"), "conv1", "padding=2", "paddingx=2")
    with pytest.warns(UnknownKeyWarning) as rec:
        L = parse(tmp_path, text, params=edit(PARAMS, "fc10", "wc=0.01", "wc=0.01\nmomentum=0.9\nepsBB=1"))
    msgs = sorted(str(w.message) for w in rec)
    assert any("[conv1] neuronx: unknown key, ignored (did you mean 'neuron'?)" in m for m in msgs), msgs
    assert any("[conv1] paddingx: unknown key, ignored (did you mean 'padding'?)" in m for m in msgs), msgs
    assert any("params.cfg: [fc10] epsbb: unknown key, ignored (did you mean 'epsB'?)" in m for m in msgs), msgs
    assert any(m.endswith("params.cfg: [fc10] momentum: unknown key, ignored") for m in msgs), msgs
    assert L["conv1"]["neuron"] == "" and L["conv1"]["padding"] == [0]  # still ignored, as the original
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownKeyWarning)
        parse(tmp_path)  # the small net has none


def test_a_cfg_that_is_not_a_regular_file_is_named_as_such(tmp_path):
    fifo = tmp_path / "fifo.cfg"
    os.mkfifo(fifo)
    big = tmp_path / "big.cfg"
    with open(big, "wb") as f:
        f.truncate(17 << 20)  # sparse: 17 MiB of nothing
    for path, pattern in ((Path("/dev/zero"), "is a character device, not a regular file"),
                          (fifo, r"is a FIFO \(named pipe\), not a regular file"),
                          (tmp_path, "is a directory, not a regular file"),
                          (tmp_path / "nope.cfg", "does not exist"),
                          (big, r"is 17825792 bytes \(17.0 MiB\); a cfg file is text of at most")):
        with pytest.raises(ConfigError) as e:
            parse_layers(path, None, OPTS)
        check_error(e.value, path, None, None, "layer definition file " + pattern)


def test_saved_layers_are_checked_before_resuming(tmp_path):
    from port.errors import UserError
    from port.layer import check_saved_layers

    def saved():
        return parse(tmp_path, params=None)

    d = write(tmp_path, "layers.cfg", BASE)
    p = write(tmp_path, "params.cfg", PARAMS)
    resumed = parse_layers(d, p, OPTS, layers=saved())
    assert resumed["conv1"]["weights"][0].shape == (75, 16)
    cases = []
    L = saved()
    L["conv1"]["weights"][0] = L["conv1"]["weights"][0].astype(np.complex64)
    cases.append((L, r"saved layer 'conv1' weights\[0\] is complex64, not a real float array"))
    L = saved()
    L["fc10"]["weightsInc"][0] = np.zeros((3, 10), np.float32)
    cases.append((L, r"saved layer 'fc10' weightsInc\[0\] has shape \(3, 10\); the layer needs \(4096, 10\)"))
    L = saved()
    del L["fc10"]["biases"]
    cases.append((L, "saved layer 'fc10' biases is NoneType, not a real float array"))
    L = saved()
    L["conv1"]["weights"] = []
    cases.append((L, "saved layer 'conv1' has no list of 1 weights matrices"))
    L = saved()
    del L["conv1"]["filterPixels"]
    cases.append((L, "saved layer 'conv1' lacks the sizes of its weights"))
    L = saved()
    L["pool1"]["type"] = "bogus"
    cases.append((L, "saved layer 'pool1' is not a layer dict of a known type"))
    cases.append(({}, "holds no layers \\(an empty model\\); refusing to resume from it"))
    for layers, pattern in cases:
        with pytest.raises(UserError, match=pattern):
            parse_layers(d, p, {**OPTS, "saved_from": "ck/1.1"}, layers=layers)
        with pytest.raises(UserError, match="^ck/1.1: "):
            check_saved_layers(layers, "ck/1.1")
    L = saved()
    del L["fc10"]
    with pytest.raises(UserError, match="saved layer 'probs' has no list of inputs naming layers of the net"):
        parse_layers(d, p, OPTS, layers=L)
    L = saved()
    L["data"]["dataIdx"] = "0"
    with pytest.raises(UserError, match="saved layer 'data' is a data layer without an integer dataIdx"):
        check_saved_layers(L)
