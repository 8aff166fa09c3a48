"""The small nets of the port's tests, as cfg texts, and the one helper that writes and parses
them: the parser, driver, shownet, training, fuzz and PyTorch-twin tests build their nets from
these. The nets share their ends (the data layers :data:`INPUTS`, the cost
:func:`softmax_logreg`) and the CIFAR nets their first stage (:data:`CONV1` and a :func:`pool`),
so each piece is written once here."""
from __future__ import annotations

import re
from pathlib import Path

from port.layer import parse_layers

# The images (data row 0) and their labels (data row 1).
INPUTS = """\
[data]
type=data
dataIdx=0

[labels]
type=data
dataIdx=1
"""

# conv1 of the CIFAR nets: 16 filters of 5x5 over the 3 colours, padding 2, stride 1; each net
# adds its own initialisation and neuron.
CONV1 = """
[conv1]
type=conv
inputs=data
channels=3
filters=16
padding=2
stride=1
filterSize=5
"""


def pool(name: str, inputs: str, channels: int, kind: str = "max") -> str:
    """A 3x3 pooling section of stride 2 over all of its input (start 0, outputsX 0)."""
    return f"""
[{name}]
type=pool
pool={kind}
inputs={inputs}
start=0
sizeX=3
stride=2
outputsX=0
channels={channels}
"""


def softmax_logreg(top: str) -> str:
    """The cost end of the nets: softmax over ``top``, logistic regression against the labels."""
    return f"""
[probs]
type=softmax
inputs={top}

[logprob]
type=cost.logreg
inputs=labels,probs
"""


# A small CIFAR-like net: 3×32×32 images, 10 classes.
BASE = "\n" + INPUTS + CONV1 + """\
initW=0.01
partialSum=4
neuron=relu
""" + pool("pool1", "conv1", 16) + """
[fc10]
type=fc
outputs=10
inputs=pool1
initW=0.01
""" + softmax_logreg("fc10")

PARAMS = """
[conv1]
epsW=0.001
epsB=0.002
momW=0.9
momB=0.9
wc=0.004

[fc10]
epsW=0.001
epsB=0.002
momW=0.9
momB=0.9
wc=0.01

[logprob]
coeff=1
"""

OPTS = {"data_dims": {0: 3 * 32 * 32, 1: 1}, "num_classes": 10, "seed": 0}


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def parse(tmp_path, text=BASE, params=PARAMS, options=None, **kw):
    d = write(tmp_path, "layers.cfg", text)
    p = write(tmp_path, "params.cfg", params) if params is not None else None
    return parse_layers(d, p, {**OPTS, **(options or {})}, **kw)


def edit(text: str, section: str, old: str, new: str) -> str:
    """Replace ``old`` by ``new`` inside one section of a cfg text."""
    parts = re.split(r"(?m)^(?=\[)", text)
    for i, part in enumerate(parts):
        if part.startswith(f"[{section}]"):
            assert old in part, (section, old)
            parts[i] = part.replace(old, new, 1)
            return "".join(parts)
    raise AssertionError(f"no section {section}")


# The driver tests' net: BASE with conv1 at stride 2 (a 24x24 crop gives 13x13 maps) and a
# partialSum (13) that divides its 169 modules, shared biases said, and an explicit ident neuron.
TINY_DEF = edit(edit(edit(BASE, "conv1", "stride=1", "stride=2"), "conv1", "partialSum=4",
                     "partialSum=13\nsharedBiases=1"), "fc10", "initW=0.01", "initW=0.01\nneuron=ident")


def tiny_params(eps_w: float = 0.001) -> str:
    weight = f"epsW={eps_w}\nepsB=0.002\nmomW=0.9\nmomB=0.9\nwc=0.004\n"
    return f"[conv1]\n{weight}\n[fc10]\n{weight}\n[logprob]\ncoeff=1\n"


def write_cfgs(root: Path, eps_w: float = 0.001) -> tuple[Path, Path]:
    d, p = root / "layers-tiny.cfg", root / "layer-params-tiny.cfg"
    d.write_text(TINY_DEF)
    p.write_text(tiny_params(eps_w))
    return d, p
