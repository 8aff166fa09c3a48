"""The checks the port adds to the 2012 parser (``port/layer.py``) against hostile input.

The original trusted its cfg files and checkpoints: a typo, a NaN or a size of 10⁸ surfaced as a
traceback, a nan cost or a CUDA allocation failure, if at all. The port refuses them while
parsing, each with one line naming the file, the section and the key (:class:`ConfigError`):

- the cfg file must be a regular file of at most 16 MiB, its syntax errors one line
  (:func:`read_cfg`);
- every int key is a C int and every float key finite (:func:`cfg_int`, :func:`cfg_float`,
  :func:`cfg_bool`, raising :class:`BadValue`);
- each layer's weights and activations must fit in the memory left to the net
  (:func:`check_memory`, :func:`check_bytes`), blaming the key that makes the layer big;
- a key no parser reads warns (:class:`UnknownKeyWarning`), naming the closest key the layer
  reads; the ``sched=`` key of the 153-163 params files warns that it is ignored
  (:class:`IgnoredKeyWarning`);
- a resumed net's saved layer dicts are checked before any is used (:func:`check_saved_layers`).

The rules of the kernels that the parser checks (nailbed stride > 1, stride ≤ filterSize, the
norm and TICA channel counts) stay in the parsers of their layers, marked ``Port-only``.

Not a port: the original has none of these checks (the module holds no twin of an original function).
"""
from __future__ import annotations

import ast
import configparser
import difflib
import math
import warnings
from collections.abc import Collection
from pathlib import Path

import numpy as np

from port.errors import ConfigError, UserError
from port.util import format_bytes, memory_ceiling, not_a_file

#: The largest cfg file read (the released ones are under 10 KiB).
MAX_CFG_BYTES = 16 << 20
#: Integer keys are C ints in the original (``pyDictGetInt``).
INT_MIN, INT_MAX = -(2 ** 31), 2 ** 31 - 1
#: The minibatch size assumed for activation memory when the caller gives none (``--mini``'s default).
DEFAULT_MINIBATCH = 128
#: The layer types with weight matrices (their shapes: :func:`weight_shapes`).
WEIGHT_TYPES = ("fc", "treefc", "conv", "local")


class IgnoredKeyWarning(UserWarning):
    """A cfg key the original reads but ignores (e.g. ``sched=`` in params files 153-163)."""


class UnknownKeyWarning(IgnoredKeyWarning):
    """A cfg key no parser reads (a misspelling such as ``neuronx=relu``)."""


# ---- The cfg file and its values ------------------------------------------------------------

def read_cfg(cp: configparser.ConfigParser, path: Path, what: str) -> None:
    """Read cfg file ``path`` (the ``what``, e.g. "layer definition file") into ``cp``: a regular
    file of at most :data:`MAX_CFG_BYTES`, read as Latin-1; any failure is one ConfigError line."""
    why = not_a_file(path)
    if why is not None:
        raise ConfigError(path, None, None, f"{what} {why}")
    size = path.stat().st_size
    if size > MAX_CFG_BYTES:
        raise ConfigError(path, None, None, f"{what} is {format_bytes(size)}; a cfg file is"
                          f" text of at most {format_bytes(MAX_CFG_BYTES)}")
    try:
        with open(path, encoding="latin-1") as f:
            cp.read_file(f)
    except configparser.MissingSectionHeaderError as e:
        raise ConfigError(path, None, None,
                          f"line {e.lineno}: expected a [section] header first") from None
    except configparser.ParsingError as e:
        lineno, line = e.errors[0]
        if line[:1] in "'\"":  # Python 3 stores the line's repr
            line = ast.literal_eval(line)
        raise ConfigError(path, None, None,
                          f"line {lineno}: expected 'key=value', got {line.strip()!r}") from None
    except (configparser.Error, OSError) as e:
        raise ConfigError(path, None, None, str(e).splitlines()[0]) from None


class BadValue(ValueError):
    """A value of the right syntax that no layer can take (NaN, out of the C int range)."""


def cfg_int(v: str) -> int:
    """An int key's value: a C int, as the original's layers read it."""
    i = int(v)
    if not INT_MIN <= i <= INT_MAX:
        raise BadValue(f"must be an int in the C int range {INT_MIN}..{INT_MAX}, got {v.strip()!r}")
    return i


def cfg_float(v: str) -> float:
    """A float key's value: finite (NaN and inf would only surface later as a nan cost)."""
    f = float(v)
    if not math.isfinite(f):
        raise BadValue(f"must be a finite float, got {v.strip()!r}")
    return f


def cfg_bool(v: str) -> bool:
    """A bool key's value as Python 2's ``getboolean`` reads it: 1/yes/true/on or 0/no/false/off,
    any case."""
    states = configparser.ConfigParser.BOOLEAN_STATES
    if v.lower() not in states:
        raise ValueError(v)
    return states[v.lower()]


# ---- Memory ---------------------------------------------------------------------------------

def weight_shapes(dic: dict) -> list[tuple[int, int]]:
    """(rows, cols) of each input's weight matrix of a parsed weight layer dict (the shapes the
    parser's make_weights draws)."""
    t = dic["type"]
    if t in ("fc", "treefc"):
        cols = len(dic["tree"]) if t == "treefc" and dic.get("tree") is not None else dic["outputs"]
        return [(d, cols) for d in dic["numInputs"]]
    per = [fp * fc for fp, fc in zip(dic["filterPixels"], dic["filterChannels"])]
    if t == "local":
        per = [dic["modules"] * r for r in per]
    return [(r, dic["filters"]) for r in per]


def bias_shape(dic: dict) -> tuple[int, int]:
    """The shape of a parsed weight layer's biases: fc and treefc ``(1, outputs)``, conv
    ``(filters, 1)`` (``(filters·modules, 1)`` without sharedBiases), local ``(filters·modules, 1)``."""
    if dic["type"] in ("fc", "treefc"):
        return 1, dic["outputs"]
    shared = dic["type"] == "conv" and dic.get("sharedBiases", True)
    return dic["filters"] * (1 if shared else dic["modules"]), 1


#: Keys whose size drives a layer's memory, in the order they are blamed on a tie.
SIZE_KEYS = ("outputs", "filters", "padding", "outputsX", "filterSize", "channels", "groups",
             "filterChannels", "sizeX", "start", "stride", "size", "tgtSize")


def check_bytes(parser, nbytes: int, what: str, always: bool = False) -> None:
    """Refuse ``parser``'s layer when ``what`` (``nbytes``) does not fit in the memory left to the net.

    Checked only when the net is really built (``init_weights``) unless ``always``: a def-only
    parse (the site) allocates nothing. The one line names the layer, the key of the section
    whose value is largest (what makes the layer big) and the bytes. The original allocated and
    failed in CUDA (or, in this port, with a MemoryError).
    """
    ctx = parser.ctx
    if ctx is None or not (always or ctx.init_weights):
        return
    if ctx.memory_limit is None:
        ctx.memory_limit = memory_ceiling()
    if ctx.memory_used + nbytes > ctx.memory_limit:
        before = (f" on top of the {format_bytes(ctx.memory_used)} of the layers before it"
                  if ctx.memory_used else "")
        parser.fail(_size_key(parser), f"{what} would need {format_bytes(nbytes)}{before}, more than"
                    f" the {format_bytes(ctx.memory_limit)} of memory available",
                    section=parser.dic.get("src_layer"))
    ctx.memory_used += nbytes


def _size_key(parser) -> str | None:
    """The size key given in the layer's section with the largest value (None: no such key)."""
    cp = getattr(getattr(parser, "mcp", None), "cp", None)
    name = parser.dic.get("src_layer", parser.dic.get("name"))
    best, best_v = None, -1
    for k in SIZE_KEYS:
        if cp is None or not cp.has_option(name, k) or k not in parser.dic:
            continue
        v = parser.dic[k]
        v = max((abs(x) for x in v), default=0) if isinstance(v, list) else abs(v)
        if isinstance(v, (int, float)) and v > best_v:
            best, best_v = k, v
    return best


def check_memory(parser) -> None:
    """The layer's activations and their gradients (float32, one minibatch), weights, biases and
    their increments, checked once per parser against the memory left (:func:`check_bytes`)."""
    if getattr(parser, "_memory_checked", False):
        return
    parser._memory_checked = True
    dic = parser.dic
    mini = parser.ctx.minibatch if parser.ctx else DEFAULT_MINIBATCH
    n = 2 * 4 * int(dic.get("outputs", 0)) * mini
    what = f"{dic.get('outputs', 0)} outputs per case"
    if dic.get("type") in WEIGHT_TYPES:
        own = [r * c for (r, c), src in zip(weight_shapes(dic), dic["weightSourceLayers"]) if src == ""]
        n += 2 * 4 * (sum(own) + math.prod(bias_shape(dic)))
        what += f" and {sum(own)} weights"
    check_bytes(parser, n, f"the layer ({what}, minibatches of {mini})")


# ---- Keys no parser reads -------------------------------------------------------------------

def warn_unknown_keys(mcp, ignore: Collection[str] = frozenset()) -> None:
    """Warn once per key of ``mcp`` (a read MyConfigParser) that no parser read, naming the
    closest key the section's layer reads.

    DIVERGES: the original ignores unknown keys silently (``neuronx=relu`` drops the ReLU,
    ``paddingx=2`` gives padding 0); the port still ignores them, but says so.
    """
    every_read = {k: v for keys in mcp.read_keys.values() for k, v in keys.items()}
    for section in mcp.sections():
        read = mcp.read_keys.get(section)
        if read is None:
            continue  # a params section that names no layer (the original ignores it too)
        for key in mcp.cp[section]:
            if key in read or key in ignore or key in mcp.cp.defaults():
                continue
            close = (difflib.get_close_matches(key, list(read), n=1, cutoff=0.6)
                     or difflib.get_close_matches(key, list(every_read), n=1, cutoff=0.6))
            hint = f" (did you mean '{read.get(close[0]) or every_read[close[0]]}'?)" if close else ""
            warnings.warn(UnknownKeyWarning(f"{mcp.path}: [{section}] {key}: unknown key, ignored{hint}"),
                          stacklevel=3)


def warn_ignored_keys(pcp) -> None:
    """The 153-163 params files write ``sched=``, a key the parser never reads."""
    ignored = [s for s in pcp.sections() if pcp.cp.has_option(s, "sched")]
    if ignored:
        warnings.warn(IgnoredKeyWarning(
            f"{pcp.path}: key 'sched' is ignored (the parser reads schedW/schedB) in "
            f"{len(ignored)} section(s): {', '.join(ignored[:3])}{'...' if len(ignored) > 3 else ''};"
            " those layers run with the default (constant) schedule"), stacklevel=3)


# ---- A resumed net's saved layers -----------------------------------------------------------

def check_saved_layers(layers, where: str, types: Collection[str]) -> None:
    """A resumed net's layers, checked before any is used: dicts keyed by their names, each of a
    type in ``types`` (the parser's registry), and every weight layer with one float matrix (and
    its increment) per input of the shape its sizes give, and float biases of the right shape.
    One :class:`UserError` line names the layer and what is wrong.

    The original unpickled whatever the file held and failed where it was first used.
    """
    def bad(name, what):
        return UserError(f"{where}: saved layer '{name}' {what}")

    if not isinstance(layers, dict) or not layers:
        raise UserError(f"{where}: holds no layers (an empty model); refusing to resume from it")
    for name, l in layers.items():
        if not isinstance(l, dict) or l.get("name") != name or l.get("type") not in types:
            raise bad(name, "is not a layer dict of a known type")
        if type(l.get("outputs")) is not int or l["outputs"] < 0:
            raise bad(name, f"has outputs {str(l.get('outputs'))[:40]!r}, not an integer >= 0")
        if l["type"] == "data":
            if type(l.get("dataIdx")) is not int:
                raise bad(name, "is a data layer without an integer dataIdx")
        elif not isinstance(l.get("inputs"), list) or not all(
                isinstance(i, str) and i in layers for i in l["inputs"]):
            raise bad(name, "has no list of inputs naming layers of the net")
        if l["type"] not in WEIGHT_TYPES:
            continue
        try:
            shapes, b_shape = weight_shapes(l), bias_shape(l)
        except (KeyError, TypeError, ValueError, IndexError):
            raise bad(name, "lacks the sizes of its weights (numInputs, outputs, filters, ...)") from None
        for key in ("weights", "weightsInc"):
            mats = l.get(key)
            if not isinstance(mats, list) or len(mats) != len(shapes):
                raise bad(name, f"has no list of {len(shapes)} {key} matrices")
            for i, (w, shape) in enumerate(zip(mats, shapes)):
                if not isinstance(w, np.ndarray) or w.dtype.kind != "f":
                    raise bad(name, f"{key}[{i}] is {getattr(w, 'dtype', type(w).__name__)}, not a real float array")
                if w.shape != tuple(shape):
                    raise bad(name, f"{key}[{i}] has shape {w.shape}; the layer needs {tuple(shape)}")
        for key in ("biases", "biasesInc"):
            b = l.get(key)
            if not isinstance(b, np.ndarray) or b.dtype.kind != "f":
                raise bad(name, f"{key} is {getattr(b, 'dtype', type(b).__name__)}, not a real float array")
            if b.shape != b_shape:
                raise bad(name, f"{key} has shape {b.shape}; the layer needs {b_shape}")
