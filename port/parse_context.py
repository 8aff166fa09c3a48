"""What :func:`port.layer.parse_layers` reads besides the two cfg files: its ``options``, resolved
once into a :class:`ParseContext`.

The original's parser asks the model it is given: the data provider's sizes
(``get_data_dims``, ``get_num_classes``, the class tree), the command line's ``--num-gpus``, the
random state. The port takes them as a mapping, so that a def file can also be read without a
model (the site, ``python -m port.compat``).

Options (a mapping; every key optional):

``num_gpus``
    the model's ``--num-gpus``: a layer's ``gpu`` must be < it. Default None: no upper bound.
``data_dims``
    a data layer's size per ``dataIdx``: a mapping ``{idx: dims}``, a sequence, or a callable
    (the provider's ``get_data_dims``). Needed by every data layer of a new net; a def file read
    alone can take :func:`port.layer_def.guess_data_dims`.
``num_classes``
    the provider's number of classes (cost checks, treefc). Default: the first cost that
    needs it adopts the size of its input.
``tree``, ``root_label``
    the provider's ``batch_meta['tree']`` / ``['all_wnids']['gproot']`` for treefc.
``conserve_mem``
    copied into every layer as ``conserveMem`` (default False).
``initw_source``
    the saved net that ``initw.makew``/``makeb``/``makec`` copy from (default: the path the
    release's initw.py names; port/initw.py).
``rng`` / ``seed``
    a numpy Generator (or its seed) for the initial weights and random connectivity.
``log``
    a callable taking one line; receives the original's ``Initialized ...`` messages.
``minibatch_size``, ``memory_limit``
    the minibatch size (default 128) and the bytes the net may take (default: what this process
    can still allocate, :func:`port.util.memory_ceiling`). A layer whose weights and activations
    would need more is refused at parse time, naming the key that makes it big
    (:func:`port.cfg_checks.check_memory`).
``saved_from``
    where a resumed net's saved layers come from, named by their errors (default "the checkpoint").

Not a port: the original passes its model object (alexnet-2012/layer.py's parse_layers).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from port.cfg_checks import DEFAULT_MINIBATCH


@dataclass
class ParseContext:
    """The options parse_layers reads, resolved once, and the state of one parse."""
    def_path: Path
    sections: list[str] = field(default_factory=list)
    num_gpus: int | None = None
    data_dims: Callable[[int], int | None] | None = None
    num_classes: int | None = None
    tree: list | None = None
    root_label: object = None
    conserve_mem: bool = False
    initw_source: str | None = None
    rng: np.random.Generator | None = None
    init_weights: bool = True
    log: Callable[[str], None] = lambda line: None
    minibatch: int = DEFAULT_MINIBATCH
    memory_limit: int | None = None  # bytes the net may take; None: port.util.memory_ceiling()
    memory_used: int = 0             # what the layers parsed so far take

    def classes(self, seen: int) -> int:
        """The provider's class count; without one, the first caller's ``seen`` is adopted.

        DIVERGES: the original asks the data provider; a def-only parse (the site) has none.
        """
        if self.num_classes is None:
            self.num_classes = seen
        return self.num_classes


def data_dims_function(dd) -> Callable[[int], int | None]:
    """``options['data_dims']`` (mapping, sequence or callable) as ``dataIdx -> size or None``."""
    if callable(dd):
        return dd
    if isinstance(dd, Mapping):
        return lambda idx: dd.get(idx)
    seq = list(dd)
    return lambda idx: seq[idx] if 0 <= idx < len(seq) else None


def make_context(def_path: Path, options: Mapping | None, init_weights: bool) -> ParseContext:
    """Resolve ``options`` (see the module docstring) once."""
    o = dict(options or {})
    rng = o["rng"] if o.get("rng") is not None else np.random.default_rng(o.get("seed"))
    return ParseContext(def_path=def_path, num_gpus=o.get("num_gpus"),
                        data_dims=data_dims_function(o["data_dims"]) if o.get("data_dims") is not None else None,
                        num_classes=o.get("num_classes"), tree=o.get("tree"), root_label=o.get("root_label"),
                        conserve_mem=bool(o.get("conserve_mem", False)), initw_source=o.get("initw_source"),
                        rng=rng, init_weights=init_weights, log=o.get("log") or (lambda line: None),
                        minibatch=int(o.get("minibatch_size") or DEFAULT_MINIBATCH),
                        memory_limit=o.get("memory_limit"))
