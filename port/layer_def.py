"""Reading a def file without a model: the parser's helpers that the driver, ``port.compat``, the
site and the tests share.

What this is: :func:`guess_data_dims` (the data layers' sizes read off a def file, where the
original asked the data provider), :func:`check_same_architecture` (a def file compared with a
saved net's layers, on resume) and :func:`apply_model_options` (``--conv-to-local`` and
``--unshare-weights`` applied to parsed layers). What this is not: the parser itself
(:mod:`port.layer`, the twin of the released ``layer.py``) or the driver (:mod:`port.convnet`),
which this module does not import: reading a def file loads the parser only.
"""
from __future__ import annotations

import warnings

import numpy as np

from port import layer as lay
from port.errors import ConfigError

_LABEL_COSTS = {"cost.logreg": 1, "cost.msm": 1, "cost.gsum2": 1}
_CLASS_COSTS = {"cost.crossent", "cost.crossent2", "cost.rflickr"}
_GUESS_IMAGE_SIZES = (224, 24, 32)         # ImageNet crops first
_GUESS_SMALL_IMAGE_SIZES = (24, 32, 224)   # CIFAR crops first, for nets of <= 100 classes


def _declared_outputs(mcp: lay.MyConfigParser, name: str, depth: int = 0) -> int | None:
    """The ``outputs=`` a chain of size-preserving layers ends in (for guessing label sizes)."""
    if depth > 50 or not mcp.has_section(name):
        return None
    if mcp.has_option(name, "outputs"):
        try:
            return int(mcp.safe_get(name, "outputs"))
        except ValueError:
            return None
    if mcp.safe_get(name, "type", default="") in ("softmax", "neuron", "hs", "eltsum", "eltmax"):
        first = mcp.safe_get(name, "inputs", default="").split(",")[0].strip()
        return _declared_outputs(mcp, first, depth + 1)
    return None


def guess_data_dims(layer_def, options: dict | None = None) -> dict[int, int]:
    """``{dataIdx: size}`` for a def file read without a data provider (``--check-grads`` without
    ``--data-provider``, and the site's experiment diagrams).

    A data layer that is the first input of logreg/msm/gsum2 holds labels (size 1); one that is
    the first input of crossent/crossent2/rflickr, or an input of an eltsum, holds one value per
    class (``options['num_classes']``, else the ``outputs=`` of the other input). Every other data
    layer holds 3-channel square images of the first size at which the def parses, trying the
    ImageNet crop (224) first, or the CIFAR crop (24) first when the logreg sees <= 100 classes.
    ``options`` are ``port.layer.parse_layers``'s (``num_classes``, ``num_gpus``, ``tree``...);
    when no size parses, the error of the trial that got furthest is raised.

    DIVERGES: the original asks the data provider (``get_data_dims``); this guess lets a def file
    be read alone.
    """
    o = dict(options or {})
    mcp = lay.MyConfigParser(layer_def, "layer definition file")
    num_classes = o.get("num_classes")
    kinds: dict[int, object] = {}
    data = {s: mcp.safe_get_int(s, "dataIdx", default=0) for s in mcp.sections()
            if mcp.safe_get(s, "type", default="") == "data"}
    for s in mcp.sections():
        t = mcp.safe_get(s, "type", default="")
        inputs = [i.strip() for i in mcp.safe_get(s, "inputs", default="").split(",") if i.strip()]
        if not inputs:
            continue
        if t in _LABEL_COSTS and inputs[0] in data:
            kinds[data[inputs[0]]] = _LABEL_COSTS[t]
        elif (t in _CLASS_COSTS or t == "eltsum") and any(i in data for i in inputs):
            others = [i for i in inputs if i not in data]
            n = num_classes if num_classes is not None else \
                next((d for d in (_declared_outputs(mcp, other) for other in others) if d), None)
            for i in inputs:
                if i in data and n is not None:
                    kinds.setdefault(data[i], n)
    classes = num_classes
    for s in mcp.sections():
        inputs = [i.strip() for i in mcp.safe_get(s, "inputs", default="").split(",")]
        if classes is None and mcp.safe_get(s, "type", default="") == "cost.logreg" and len(inputs) == 2:
            classes = _declared_outputs(mcp, inputs[1])
    sizes = _GUESS_IMAGE_SIZES if classes is None or classes > 100 else _GUESS_SMALL_IMAGE_SIZES
    trial_options = {k: o[k] for k in ("num_gpus", "num_classes", "tree", "root_label") if k in o}
    best: ConfigError | None = None
    best_at = -1
    for size in sizes:
        dims = {idx: kinds.get(idx, 3 * size * size) for idx in data.values()}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lay.parse_layers(layer_def, None, {**trial_options, "data_dims": dims, "seed": 0},
                                 init_weights=False)
            return dims
        except ConfigError as e:
            at = mcp.sections().index(e.section) if e.section in mcp.sections() else -1
            if at > best_at:
                best, best_at = e, at
    raise best


_PARAMS_KEYS = {"quantF", "quantB", "epsW", "epsB", "momW", "momB", "superEps", "superMom", "wc",
                "wball", "wballNormed", "schedW", "schedB", "gradConsumer", "wcNormMax", "wcNormMin",
                "doMax", "scale", "pow", "minDiv", "coeff", "topk", "setSize", "threads", "enable",
                "conserveMem"}
_NOT_COMPARED = _PARAMS_KEYS | {"weights", "weightsInc", "biases", "biasesInc", "filterConns",
                                "inputLayers", "initW", "initB", "initWFunc", "initBFunc",
                                "initCFunc", "tree", "rootLabel"}


def _same(a, b) -> bool:
    """Equality of cfg values that may hold arrays, lists and dicts."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def check_same_architecture(saved: dict, layer_def, options: dict | None = None) -> None:
    """On resume the def file may not change anything but initialization keys: ``layer_def`` is
    parsed without weights (with the saved net's data sizes unless ``options`` give them) and
    compared with the ``saved`` layer dicts; a difference is a ConfigError naming the section.

    DIVERGES: the original ignores a new def file on resume (``--layer-def`` is set once);
    the port re-reads it and refuses any change, so a changed architecture is never silent.
    """
    o = dict(options or {})
    if o.get("data_dims") is None:
        o["data_dims"] = {l["dataIdx"]: l["outputs"] for l in saved.values() if l.get("type") == "data"}
    fresh = lay.parse_layers(layer_def, None, o, init_weights=False)
    if list(saved) != list(fresh):
        added = [n for n in fresh if n not in saved]
        gone = [n for n in saved if n not in fresh]
        section = (added or gone or [None])[0]
        raise ConfigError(layer_def, section, None, "the architecture cannot change on resume: layers "
                          f"added {added}, removed {gone} (or reordered) relative to the saved net")
    for name, f in fresh.items():
        s = saved[name]
        for key, v in f.items():
            if key in _NOT_COMPARED or key not in s:
                continue
            if key == "type" and v == "conv" and s[key] == "local" and "partialSum" in s:
                continue  # converted by --conv-to-local
            if key in ("weightSourceLayers", "weightSourceMatrixIndices", "weightSource"):
                continue  # compared below, allowing --unshare-weights
            if not _same(s[key], v):
                raise ConfigError(layer_def, f.get("src_layer", name), key,
                                  f"the architecture cannot change on resume: saved {s[key]!r}, file says {v!r}")
        if "weightSourceLayers" in f and "weightSourceLayers" in s:
            for i, (a, b) in enumerate(zip(s["weightSourceLayers"], f["weightSourceLayers"])):
                if a != b and a != "":
                    raise ConfigError(layer_def, name, "weightSource", "the architecture cannot change on"
                                      f" resume: input {i} shares '{a}' in the saved net, '{b}' in the file")


def apply_model_options(layers: dict, conv_to_local=(), unshare_weights=(), log=lambda line: None) -> dict:
    """``--conv-to-local`` and ``--unshare-weights`` (lists of names, ``name`` or ``name[idx]``),
    applied to the parsed ``layers`` (returned); ``log`` receives the original's messages.

    Ports: alexnet-2012/convnet.py:37-63 ConvNet.init_model_state
    """
    for name in conv_to_local or []:
        if name not in layers:
            raise ConfigError("--conv-to-local", name, None, "no such layer")
        if layers[name]["type"] == "conv":
            lay.conv_to_local(layers, name)
            log(f"Converted layer '{name}' from convolutional to unshared, locally-connected")
    for name_str in unshare_weights or []:
        if not name_str:
            continue
        parsed = lay.get_layer_name(name_str)
        if parsed is None:
            raise ConfigError("--unshare-weights", name_str, None, "invalid layer name; unable to unshare")
        name, idx = parsed
        if name not in layers:
            raise ConfigError("--unshare-weights", name, None, "layer does not exist; unable to unshare")
        for msg in lay.unshare_weights(layers[name], layers, matrix_idx=idx):
            log(msg)
    return layers


__all__ = ["apply_model_options", "check_same_architecture", "guess_data_dims"]
