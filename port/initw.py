"""The twin of the release's initw.py: weight-initialization functions (``initWFunc=initw.makew(conv1a)``,
``initBFunc=initw.makeb(conv1a)``, ``initCFunc=initw.makec(...)``) that copy a layer's weights,
biases or random-sparse connectivity from a saved net.

initw.py loads its source net from one fixed path, ``/nobackup/kriz/tmp/ConvNet__2012-09-19_23.29.04``
(:data:`SOURCE`), a save directory on the authors' machines that was never published; the ten def
files that name these functions (98-16kinit, 135-2009-2012, 141-2009*, 146-2009/2011/2012-*,
flickr-102-inet-init) therefore cannot be initialized as they were. Where that checkpoint does
not exist the call stops with one line naming it; ``python -m port.convnet --initw-source=PATH``
(the option ``initw_source`` of ``port.layer.parse_layers``) names a checkpoint of one's own,
a port checkpoint or a save directory, whose layer dicts then provide the matrices.

DIVERGES: the source path can be changed (the release hard-codes it), a source is read once per
parse instead of once per call, and the function is the port's twin: the release's initw.py
imports the missing gpumodel module.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from port import checkpoint
from port.errors import UserError

SOURCE = "/nobackup/kriz/tmp/ConvNet__2012-09-19_23.29.04"

_source: str | None = None
_cache: dict[str, dict] = {}


@contextlib.contextmanager
def source(path: str | None):
    """Use ``path`` (None: :data:`SOURCE`) as the saved net for the calls inside."""
    global _source
    prev, _source = _source, path
    try:
        yield
    finally:
        _source = prev


def get_src() -> dict:
    """The source net's layer dicts.

    Ports: alexnet-2012/initw.py:5-7 get_src
    """
    path = _source or SOURCE
    key = _key(path)
    if key not in _cache:
        if not Path(path).exists():
            what = "the checkpoint initw.py loads" if path == SOURCE else "the initw source checkpoint"
            hint = (" (it was on the authors' machines and was never published); give a checkpoint of"
                    " your own with --initw-source" if path == SOURCE else "")
            raise UserError(f"{what}, {path}, does not exist{hint}")
        state = checkpoint.load(path)
        try:
            layers = state["model_state"]["layers"]
        except (KeyError, TypeError):
            raise UserError(f"{path}: not a saved net (no model_state.layers)") from None
        _cache.clear()                       # one source net in memory at a time
        _cache[key] = layers
    return _cache[key]


def _key(path: str) -> tuple:
    """A source is re-read when its newest checkpoint changes."""
    p = Path(path)
    try:
        f = checkpoint.resolve(p) if p.exists() else p
        return (str(f), f.stat().st_mtime_ns)
    except (OSError, UserError):
        return (str(p), None)


def _src_layer(params: list[str]) -> dict:
    src = get_src()
    if not params:
        raise UserError("initw needs the source layer's name, e.g. initw.makew(conv1a)")
    name = params[0].strip()
    if name not in src:
        raise UserError(f"the initw source net has no layer '{name}'")
    return src[name]


def makew(name: str, idx: int, shapes, params: list[str]):
    """Weight matrix ``idx`` of the source layer ``params[0]`` (layer 'localcombine', input 2:
    fresh N(0, 0.01²) weights).

    Ports: alexnet-2012/initw.py:9-13 makew
    """
    if name == "localcombine" and idx == 2:
        return np.array(0.01 * np.random.default_rng().standard_normal((shapes[0], shapes[1])),
                        dtype=np.single, order="C")
    layer = _src_layer(params)
    weights = layer.get("weights") or []
    if idx >= len(weights):
        raise UserError(f"the initw source layer '{params[0]}' has {len(weights)} weight matrices, "
                        f"not {idx + 1}")
    return weights[idx]


def makeb(name: str, shapes, params: list[str]):
    """Ports: alexnet-2012/initw.py:15-17 makeb"""
    layer = _src_layer(params)
    if "biases" not in layer:
        raise UserError(f"the initw source layer '{params[0]}' has no biases")
    return layer["biases"]


def makec(name: str, idx: int, shapes, params: list[str]):
    """Ports: alexnet-2012/initw.py:19-21 makec"""
    layer = _src_layer(params)
    conns = layer.get("filterConns") or []
    if idx >= len(conns):
        raise UserError(f"the initw source layer '{params[0]}' has no filterConns[{idx}]")
    return conns[idx]


__all__ = ["SOURCE", "source", "get_src", "makew", "makeb", "makec"]
