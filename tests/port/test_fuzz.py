"""Hostile input, fuzzed: seeded mutations of a cfg pair and corruptions of a checkpoint.

Every case must either run correctly (parse, build the net, train one minibatch) or end with
exactly one error line and exit 2, never a traceback; warnings are one line each
(``convnet: warning: ...``) and do not count as the error line. Most cases run in-process
through :func:`port.errors.main_guard`, with the net's memory capped at 256 MiB (the parser's
``memory_limit``); a sample runs the real command line in a child process under
``RLIMIT_AS`` = 1 GiB, where the parser and the checkpoint reader derive their ceiling from the
limit itself.

The cfg pair is the release's ``example-layers/layers-80sec.cfg`` pair when ``original/`` holds
it, else a net of the same shape written here (three conv/pool stages, two fc, softmax, logreg).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import resource
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from archive import ROOT
from port import checkpoint
from port.errors import main_guard
from port.layer import parse_layers
from tests.port.cfgnets import CONV1, INPUTS, pool, softmax_logreg

SEED = 8
N_CFG = 200
N_CHECKPOINT = 40
MEMORY_LIMIT = 256 << 20
MINI = 8

# A CIFAR net of the 80sec shape (not its text): 24x24x3 crops, 10 classes.
DEF = INPUTS + CONV1 + """\
neuron=relu
initW=0.0001
partialSum=4
sharedBiases=1
""" + pool("pool1", "conv1", 16) + """
[conv2]
type=conv
inputs=pool1
filters=16
padding=2
stride=1
filterSize=5
channels=16
neuron=relu
initW=0.01
partialSum=4
sharedBiases=1
""" + pool("pool2", "conv2", 16, "avg") + """
[conv3]
type=conv
inputs=pool2
filters=32
padding=2
stride=1
filterSize=5
channels=16
neuron=relu
initW=0.01
partialSum=3
sharedBiases=1
""" + pool("pool3", "conv3", 32, "avg") + """
[fc64]
type=fc
outputs=64
inputs=pool3
initW=0.1
neuron=relu

[fc10]
type=fc
outputs=10
inputs=fc64
initW=0.1
""" + softmax_logreg("fc10")

_W = "epsW=0.001\nepsB=0.002\nmomW=0.9\nmomB=0.9\nwc=0.004\n"
PARAMS = "".join(f"[{n}]\n{_W}\n" for n in ("conv1", "conv2", "conv3", "fc64", "fc10")) + "[logprob]\ncoeff=1\n"

OPTS = {"data_dims": {0: 3 * 24 * 24, 1: 1}, "num_classes": 10, "seed": 0,
        "memory_limit": MEMORY_LIMIT, "minibatch_size": MINI}


def cfg_pair(alexnet_dir: Path | None = None) -> tuple[str, str]:
    d = (alexnet_dir or ROOT / "original" / "alexnet-2012") / "example-layers"
    if (d / "layers-80sec.cfg").is_file() and (d / "layer-params-80sec.cfg").is_file():
        return (d / "layers-80sec.cfg").read_text(encoding="latin-1"), \
            (d / "layer-params-80sec.cfg").read_text(encoding="latin-1")
    return DEF, PARAMS


# --- mutations -------------------------------------------------------------------------------

HOSTILE_VALUES = ["0", "-1", "1", "2", "3", "4", "7", "16", "17", "24", "100", "100000000", "2147483648",
                  "99999999999999999999", "nan", "inf", "-inf", "1e400", "0.5", "-0", "abc", "", "1,2",
                  "9" * 5000, "%(x)s", "1e-45", "relu", "0x10"]
TYPES = ["data", "fc", "conv", "local", "pool", "softmax", "neuron", "rnorm", "cnorm", "cmrnorm", "nailbed",
         "blur", "href", "resize", "rscale", "rgb2yuv", "rgb2lab", "concat", "eltsum", "eltmax", "hs",
         "cost.logreg", "cost.sum2", "cost.msm", "cost.crossent", "cost.tica", "treefc", "bogus"]
NEURONS = ["relu", "tanh[1.7,0.66]", "brelu[nan]", "linear[1,2,3]", "abs", "drelu[0]", "logistic",
           "softrelu", "nrelu", "sqrt", "square", "ident", "tanh[]", "relux", "brelu[" + "9" * 400 + "]"]
JUNK_LINES = ["junk", "[", "[]", "key", "=1", "%", "[dup]\n[dup]", "\x00\x01\x02", "\xff\xfe", "inputs"]


def _lines(text):
    return text.split("\n")


def mutate(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    kv = [i for i, l in enumerate(lines) if "=" in l and not l.startswith(("#", "["))]
    sections = [l[1:-1] for l in lines if l.startswith("[") and l.endswith("]")]
    op = rng.randrange(11)
    if op == 0 and kv:  # a hostile value
        i = rng.choice(kv)
        lines[i] = lines[i].split("=", 1)[0] + "=" + rng.choice(HOSTILE_VALUES)
    elif op == 1 and kv:  # a misspelled key
        i = rng.choice(kv)
        k, v = lines[i].split("=", 1)
        k = rng.choice([k + "x", k[:-1], k[1:] + k[0], k.upper(), "x" + k])
        lines[i] = f"{k}={v}"
    elif op == 2 and lines:  # a line gone
        del lines[rng.randrange(len(lines))]
    elif op == 3 and kv:  # a line copied into another section
        lines.insert(rng.randrange(len(lines) + 1), lines[rng.choice(kv)])
    elif op == 4:
        idx = [i for i, l in enumerate(lines) if l.startswith("type=")]
        if idx:
            lines[rng.choice(idx)] = "type=" + rng.choice(TYPES)
    elif op == 5:
        idx = [i for i, l in enumerate(lines) if l.startswith("inputs=")]
        if idx and sections:
            lines[rng.choice(idx)] = "inputs=" + rng.choice(
                [rng.choice(sections), "nosuch", ",".join(rng.sample(sections, min(2, len(sections)))), ""])
    elif op == 6:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(JUNK_LINES))
    elif op == 7:
        idx = [i for i, l in enumerate(lines) if l.startswith("[")]
        if idx:
            del lines[rng.choice(idx)]
    elif op == 8:
        idx = [i for i, l in enumerate(lines) if l.startswith("neuron=")]
        if idx:
            lines[rng.choice(idx)] = "neuron=" + rng.choice(NEURONS)
    elif op == 9:
        return text[:rng.randrange(len(text) + 1)]
    else:
        pos = rng.randrange(len(text) + 1)
        return text[:pos] + "".join(chr(rng.randrange(256)) for _ in range(rng.randrange(1, 6))) + text[pos:]
    return "\n".join(lines)


def cfg_cases(n: int, seed: int, pair: tuple[str, str]) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    cases = []
    for k in range(n):
        d, p = pair
        for _ in range(rng.choice([1, 1, 2, 3])):
            if rng.random() < 0.6:
                d = mutate(d, rng)
            else:
                p = mutate(p, rng)
        cases.append((f"cfg-{k}", d, p))
    return cases


# --- running a case --------------------------------------------------------------------------

def _train_one_minibatch(layers: dict) -> None:
    from port import model

    net = model.ConvNet(layers, minibatch_size=MINI, rng=0)
    rng = np.random.default_rng(0)
    dims = {l["dataIdx"]: l["outputs"] for l in layers.values() if l["type"] == "data"}
    data = [rng.standard_normal((dims[i], MINI)).astype(np.float32) if dims[i] != 1 else
            rng.integers(0, 10, size=(1, MINI)).astype(np.float32) for i in sorted(dims)]
    with np.errstate(all="ignore"):
        net.start_batch(data, 0.0)
        net.finish_batch()


def run_in_process(fn, capsys) -> tuple[int, list[str]]:
    """``fn()`` as a command line would run it: (exit code, stderr lines). An exception other
    than a UserError propagates: that is a traceback, the failure this test looks for."""
    @main_guard("fuzz")
    def main():
        fn()
        return 0

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda m, *a, **k: print(f"fuzz: warning: {m}", file=sys.stderr)
        rc = main()
    return rc, capsys.readouterr().err.splitlines()


def judge(name: str, rc: int, err: list[str], detail: str = "") -> str | None:
    """None when the outcome is allowed, else what is wrong."""
    errors = [l for l in err if not re.match(r"^[\w.]+: warning: ", l)]
    if rc == 0 and not errors:
        return None
    if rc == 2 and len(errors) == 1 and "Traceback" not in errors[0]:
        return None
    return f"{name}: rc={rc}, stderr={err[-5:]!r} {detail}"


def test_fuzz_cfg_mutations(tmp_path, capsys):
    pair = cfg_pair()
    d, p = tmp_path / "layers.cfg", tmp_path / "params.cfg"
    outcomes = {"ran": 0, "refused": 0}
    bad = []
    for name, dtext, ptext in cfg_cases(N_CFG, SEED, pair):
        d.write_text(dtext, encoding="latin-1", errors="replace")
        p.write_text(ptext, encoding="latin-1", errors="replace")

        def case():
            _train_one_minibatch(parse_layers(d, p, OPTS))

        try:
            rc, err = run_in_process(case, capsys)
        except Exception as e:  # noqa: BLE001 - a traceback: record the case and go on
            rc, err = -1, [f"{type(e).__name__}: {e}"]
        problem = judge(name, rc, err)
        if problem:
            bad.append(problem + f"\n--- def ---\n{dtext[:3000]}\n--- params ---\n{ptext[:1500]}")
        else:
            outcomes["ran" if rc == 0 else "refused"] += 1
    print(f"cfg mutations: {outcomes}")
    assert not bad, f"{len(bad)} of {N_CFG} cases broke the one-line rule:\n" + "\n\n".join(bad[:3])
    assert outcomes["ran"] >= 10 and outcomes["refused"] >= 50, outcomes  # the mutations bite, and not all


# --- checkpoints -----------------------------------------------------------------------------

def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if n != checkpoint.SUMS_MEMBER}


def _write(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
        z.writestr(checkpoint.SUMS_MEMBER,
                   "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in members.items()))


def _paths(obj, at=()):
    """Every (path, value) of a JSON tree."""
    yield at, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, at + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, at + (i,))


def _set(root, at, value):
    for k in at[:-1]:
        root = root[k]
    if value is _DELETE:
        del root[at[-1]]
    else:
        root[at[-1]] = value


_DELETE = object()
ODD_VALUES = [None, 0, -1, 1.5, "x", [], {}, [1, 2], {"__ndarray__": 9999}, {"__ref__": 9999},
              {"__ndarray__": "0"}, {"__tuple__": 3}, {"__items__": [[[], 1]]}, 2 ** 70, True, {"__shared__": 0}]


def corrupt(good: Path, out: Path, rng: random.Random) -> str:
    """One corruption of checkpoint ``good`` written to ``out``; returns its description."""
    raw = good.read_bytes()
    kind = rng.randrange(9)
    if kind == 0:
        b = bytearray(raw)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        out.write_bytes(bytes(b))
        return "flipped bits"
    if kind == 1:
        out.write_bytes(raw[:rng.randrange(len(raw))])
        return "truncated"
    members = _members(good)
    state = json.loads(members[checkpoint.STATE_MEMBER])
    arrays = sorted(n for n in members if n.startswith("arrays/"))
    if kind in (2, 3, 4):  # a value replaced or deleted, checksums recomputed
        at, _ = rng.choice([x for x in _paths(state) if x[0]])
        value = _DELETE if kind == 2 and not isinstance(at[-1], int) else rng.choice(ODD_VALUES)
        _set(state, at, value)
        what = f"state{list(at)} = {'deleted' if value is _DELETE else repr(value)[:40]}"
    elif kind == 5:  # an array member with another dtype or shape
        name = rng.choice(arrays)
        a = np.lib.format.read_array(io.BytesIO(members[name]))
        a = rng.choice([a.astype(np.complex64), a.astype(np.int8), a.reshape(-1)[:max(1, a.size // 2)],
                        np.zeros((3, 3, 3), np.float32), np.array([object()] * 2, dtype=object)])
        buf = io.BytesIO()
        np.lib.format.write_array(buf, a, allow_pickle=True)
        members[name] = buf.getvalue()
        what = f"{name} -> {a.dtype}{a.shape}"
    elif kind == 6:  # an array member gone
        name = rng.choice(arrays)
        del members[name]
        what = f"{name} removed"
    elif kind == 7:  # a layer gone, or no layers at all
        layers = state["model_state"]["value"]["layers"] if "value" in state["model_state"] else \
            state["model_state"]["layers"]
        if rng.random() < 0.3:
            layers.clear()
            what = "layers {}"
        else:
            gone = rng.choice(sorted(layers))
            del layers[gone]
            what = f"layer {gone} removed"
    else:  # deep nesting
        depth = rng.choice([250, 5000, 100000])
        members[checkpoint.STATE_MEMBER] = b'{"op": {}, "model_state": ' + b"[" * depth + b"]" * depth + b"}"
        _write(out, members)
        return f"nested {depth} deep"
    members[checkpoint.STATE_MEMBER] = json.dumps(state).encode()
    _write(out, members)
    return what


def _good_checkpoint(tmp_path: Path, d: Path, p: Path) -> Path:
    layers = parse_layers(d, p, OPTS)
    dic = {"model_state": {"layers": layers, "train_outputs": [], "test_outputs": [], "epoch": 1,
                           "batchnum": 1},
           "op": {"train_batch_range": {"value": [1, 2], "value_given": True},
                  "num_epochs": {"value": 3, "value_given": True}}}
    good = tmp_path / "good" / "1.1"
    good.parent.mkdir()
    checkpoint.save(good, dic)
    return good


def _resume(path: Path, d: Path, p: Path) -> None:
    from port.convnet import ConvNet
    from port.layer_def import check_same_architecture
    from port.gpumodel import IGPUModel
    from port.layer import check_saved_layers

    dic = IGPUModel.load_checkpoint(path)  # as ConvNet.init_model_state resumes
    ConvNet.get_options_parser().load_state(dic.get("op") or {})
    layers = dic["model_state"]["layers"]
    check_saved_layers(layers, str(path))
    check_same_architecture(layers, d, OPTS)
    _train_one_minibatch(parse_layers(d, p, {**OPTS, "saved_from": str(path)}, layers=layers))


def test_fuzz_checkpoint_corruptions(tmp_path, capsys):
    d, p = tmp_path / "layers.cfg", tmp_path / "params.cfg"
    d.write_text(DEF)
    p.write_text(PARAMS)
    good = _good_checkpoint(tmp_path, d, p)
    rc, err = run_in_process(lambda: _resume(good, d, p), capsys)
    assert rc == 0 and not err, err  # the uncorrupted checkpoint resumes
    rng = random.Random(SEED)
    outcomes, bad = {"ran": 0, "refused": 0}, []
    for k in range(N_CHECKPOINT):
        out = tmp_path / f"c{k}" / "1.1"
        out.parent.mkdir()
        what = corrupt(good, out, rng)
        try:
            rc, err = run_in_process(lambda: _resume(out, d, p), capsys)
        except Exception as e:  # noqa: BLE001
            rc, err = -1, [f"{type(e).__name__}: {e}"]
        problem = judge(f"checkpoint-{k} ({what})", rc, err)
        if problem:
            bad.append(problem)
        else:
            outcomes["ran" if rc == 0 else "refused"] += 1
    print(f"checkpoint corruptions: {outcomes}")
    assert not bad, f"{len(bad)} of {N_CHECKPOINT} corruptions broke the one-line rule:\n" + "\n".join(bad[:5])
    assert outcomes["refused"] >= N_CHECKPOINT // 2, outcomes


# --- a sample through the real command line, under RLIMIT_AS ----------------------------------

def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "port.convnet", *args], capture_output=True, text=True,
                          timeout=240, cwd=cwd, env=env, preexec_fn=_limit_memory)


def test_fuzz_sample_through_the_command_line_under_1_gib(tmp_path):
    """The issue's worst cases and a few fuzz cases, each in a child limited to 1 GiB of address
    space: one line and exit 2 (a MemoryError traceback would be a failure), or a correct run."""
    from tests.port.test_convnet import write_cifar_like

    data = write_cifar_like(tmp_path / "data", num_batches=2, n=16)
    d, p = tmp_path / "layers.cfg", tmp_path / "params.cfg"
    base = ["--data-provider=cifar-cropped", "--train-range=1", "--test-range=2", "--epochs=1",
            f"--mini={MINI}", "--backend=numpy", "--test-freq=1", f"--data-path={data}",
            f"--save-path={tmp_path / 'save'}", f"--layer-def={d}", f"--layer-params={p}"]
    huge = DEF.replace("filters=16\npadding=2", "filters=100000000\npadding=2", 1)
    cases = [("filters=1e8", huge, PARAMS, "filters: the layer"),
             ("padding=1e8", DEF.replace("padding=2", "padding=100000000", 1), PARAMS, "padding: the layer"),
             ("wc=nan", DEF, PARAMS.replace("wc=0.004", "wc=nan", 1), "wc: must be a finite float")]
    cases += [(name, dt, pt, None) for name, dt, pt in cfg_cases(3, SEED + 1, (DEF, PARAMS))]
    bad = []
    for name, dtext, ptext, needle in cases:
        d.write_text(dtext, encoding="latin-1", errors="replace")
        p.write_text(ptext, encoding="latin-1", errors="replace")
        r = _cli(base, tmp_path)
        problem = judge(name, r.returncode, r.stderr.splitlines())
        if problem or (needle and needle not in r.stderr):
            bad.append(problem or f"{name}: {needle!r} not in {r.stderr!r}")
    # a checkpoint whose one array claims 3 GiB in the zip directory (the 8 GiB case)
    d.write_text(DEF)
    p.write_text(PARAMS)
    good = _good_checkpoint(tmp_path, d, p)
    raw = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("arrays/0.npy")
    assert info.file_size < 1 << 20
    # the central-directory entry (after the local one): its name sits 46 bytes after its
    # signature, its uncompressed size at offset 24
    entry = bytes(raw).rindex(b"arrays/0.npy") - 46
    assert raw[entry:entry + 4] == b"PK\x01\x02"
    raw[entry + 24:entry + 28] = (3 << 30).to_bytes(4, "little")
    good.write_bytes(bytes(raw))
    r = _cli(["-f", str(good)], tmp_path)
    problem = judge("checkpoint claiming 3 GiB", r.returncode, r.stderr.splitlines())
    if problem or "would inflate to 3221225472 bytes" not in r.stderr:
        bad.append(problem or f"checkpoint claiming 3 GiB: {r.stderr!r}")
    assert not bad, "\n".join(bad)
