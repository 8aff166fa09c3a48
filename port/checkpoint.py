"""Checkpoints in a safe format: one zip archive of ``.npy`` arrays plus JSON, checksummed, no pickle.

What a checkpoint holds is what the original's held (svn ``gpumodel.py`` ``save_state``)::

    {'model_state': {'layers': {name: layer dict (weights, weightsInc, biases, biasesInc, ...)},
                     'train_outputs': [...], 'test_outputs': [...], 'epoch': int, 'batchnum': int,
                     ... (random-number and data-provider states; see port.gpumodel)},
     'op': {option name: {'value': ..., 'value_given': bool}}}

DIVERGES: the original pickled that dict (cPickle, optionally zipped). Unpickling can run arbitrary
code, so this port writes a zip archive instead: ``state.json`` holds the tree with every NumPy array
replaced by a reference to a member ``arrays/<k>.npy`` (``numpy.lib.format``, no pickled objects),
and ``SHA256SUMS`` holds the SHA-256 of every other member, verified on :func:`load`.

Files are written atomically (:func:`save`, through :func:`port.util.atomic_write_bytes`): a
temporary file in the same directory, fsync, ``os.replace``, fsync of the directory, so a crash or
SIGKILL leaves either the old checkpoint or the new one, never half of one. Checkpoint files are
named ``<epoch>.<batchnum>`` inside a save directory (``ConvNet__YYYY-MM-DD_HH.MM.SS``);
:func:`resolve` turns a directory into its newest one.

Legacy cuda-convnet checkpoints (Python 2 pickles) load only with ``trust_pickle=True``
(``--trust-pickle``), through :class:`port.util.RestrictedUnpickler`, which resolves only a
whitelist of globals (its base one: NumPy array reconstruction and plain builtins; plus, from here,
the Python 2 spellings of a few more builtins and stubs for the ``options`` and ``ordereddict``
classes). Anything else, e.g. ``os.system``, is refused.

This module is not the training loop (``port.gpumodel``) and knows nothing of layers.
"""
from __future__ import annotations

import collections
import copyreg
import hashlib
import io
import json
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from port.backend import to_host
from port.errors import UserError
from port.util import RestrictedUnpickler, atomic_write_bytes, read_payload

FORMAT_NAME = "alexnet-port-checkpoint"
FORMAT_VERSION = 1
STATE_MEMBER = "state.json"
FORMAT_MEMBER = "format.json"
SUMS_MEMBER = "SHA256SUMS"
CHECKPOINT_NAME = re.compile(r"^(\d+)\.(\d+)$")


# ---------------------------------------------------------------------------------------------
# Encoding a tree of dicts/lists/arrays as JSON + arrays

def _count_refs(obj: Any, seen: dict[int, int], keep: list) -> None:
    """Count how often each dict, list and array is reached (shared objects are saved once)."""
    if isinstance(obj, (dict, list, np.ndarray)) or type(obj).__module__.startswith("cupy"):
        seen[id(obj)] = seen.get(id(obj), 0) + 1
        keep.append(obj)  # keep ids valid while counting
        if seen[id(obj)] > 1:
            return
    if isinstance(obj, dict):
        for k, v in obj.items():
            _count_refs(k, seen, keep)
            _count_refs(v, seen, keep)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _count_refs(v, seen, keep)


class _Encoder:
    """A JSON-able copy of a tree; arrays go to ``arrays`` as ``{"__ndarray__": k}``.

    An object reached more than once (a layer dict listed in another's ``inputLayers``, a weight
    matrix shared through ``weightSource``) is written once as ``{"__shared__": k, "value": ...}``
    and then referred to as ``{"__ref__": k}``, so loading restores the sharing, as pickle did.
    """

    def __init__(self, root: Any):
        self.counts: dict[int, int] = {}
        self._keep: list = []
        _count_refs(root, self.counts, self._keep)
        self.arrays: list[np.ndarray] = []
        self.array_index: dict[int, int] = {}
        self.shared: dict[int, int] = {}

    def encode(self, obj: Any, where: str) -> Any:
        if obj is None or isinstance(obj, (bool, str, int, float)):
            return obj
        if isinstance(obj, np.generic):
            return {"__npscalar__": obj.dtype.str, "value": obj.item()}
        if isinstance(obj, np.ndarray) or type(obj).__module__.startswith("cupy"):
            if id(obj) not in self.array_index:
                a = to_host(obj)
                if a.dtype.hasobject:
                    raise TypeError(f"checkpoint: {where} is an object array, which cannot be saved "
                                    f"without pickle")
                self.arrays.append(a)
                self.array_index[id(obj)] = len(self.arrays) - 1
            return {"__ndarray__": self.array_index[id(obj)]}
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, (list, dict)):
            if id(obj) in self.shared:
                return {"__ref__": self.shared[id(obj)]}
            is_shared = self.counts.get(id(obj), 0) > 1
            if is_shared:
                self.shared[id(obj)] = len(self.shared)
            if isinstance(obj, list):
                value = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
            elif all(isinstance(k, str) and not k.startswith("__") for k in obj):
                value = {k: self.encode(v, f"{where}[{k!r}]") for k, v in obj.items()}
            else:
                value = {"__items__": [[self.encode(k, where), self.encode(v, f"{where}[{k!r}]")]
                                       for k, v in obj.items()]}
            if is_shared:
                return {"__shared__": self.shared[id(obj)], "value": value}
            return value
        raise TypeError(f"checkpoint: {where} has type {type(obj).__name__}, which the safe format "
                        f"cannot hold (only dicts, lists, tuples, numbers, strings and arrays)")


class _Decoder:
    def __init__(self, arrays: dict[int, np.ndarray]):
        self.arrays = arrays
        self.shared: dict[int, Any] = {}

    def decode(self, obj: Any, into: Any = None) -> Any:
        if isinstance(obj, list):
            out = into if into is not None else []
            out.extend(self.decode(v) for v in obj)
            return out
        if not isinstance(obj, dict):
            return obj
        if "__ndarray__" in obj:
            return self.arrays[obj["__ndarray__"]]
        if "__npscalar__" in obj:
            return np.dtype(obj["__npscalar__"]).type(obj["value"])
        if "__tuple__" in obj:
            return tuple(self.decode(v) for v in obj["__tuple__"])
        if "__ref__" in obj:
            return self.shared[obj["__ref__"]]
        if "__shared__" in obj:
            value = obj["value"]
            container = [] if isinstance(value, list) else {}
            self.shared[obj["__shared__"]] = container  # registered before filling: cycles resolve
            return self.decode(value, into=container)
        out = into if into is not None else {}
        if "__items__" in obj:
            for k, v in obj["__items__"]:
                out[self.decode(k)] = self.decode(v)
        else:
            for k, v in obj.items():
                out[k] = self.decode(v)
        return out


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


def save(path: str | os.PathLike, dic: dict, *, compress: bool = False) -> None:
    """Write ``dic`` (dicts, lists, tuples, numbers, strings, NumPy/CuPy arrays) to ``path`` atomically.

    ``compress`` deflates the members (the original's ``--zip-save``).
    Ports: cuda-convnet-r561/util.py:60-67 pickle
    """
    enc = _Encoder(dic)
    state = enc.encode(dic, "checkpoint")
    arrays = enc.arrays
    members: list[tuple[str, bytes]] = [
        (FORMAT_MEMBER, json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION}).encode()),
        (STATE_MEMBER, json.dumps(state, allow_nan=True).encode()),
    ]
    members += [(f"arrays/{k}.npy", _npy_bytes(a)) for k, a in enumerate(arrays)]
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in members)
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED

    def write(f):
        with zipfile.ZipFile(f, "w", method, allowZip64=True) as z:
            for name, data in members:
                z.writestr(name, data)
            z.writestr(SUMS_MEMBER, sums)

    atomic_write_bytes(path, write)


# ---------------------------------------------------------------------------------------------
# Reading

def is_checkpoint_name(name: str) -> bool:
    return CHECKPOINT_NAME.match(name) is not None


def checkpoint_key(name: str) -> tuple[int, int]:
    """Sort key of ``<epoch>.<batchnum>`` (the original sorts with util.alphanum_key)."""
    m = CHECKPOINT_NAME.match(name)
    return (int(m.group(1)), int(m.group(2)))


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """The checkpoint files in a save directory, oldest first (temp files are never listed)."""
    d = Path(directory)
    return [d / n for n in sorted((n for n in os.listdir(d) if is_checkpoint_name(n)), key=checkpoint_key)]


def resolve(path: str | os.PathLike) -> Path:
    """A checkpoint file: ``path`` itself, or the newest checkpoint in directory ``path``.

    Ports: cuda-convnet-r561/gpumodel.py:273-277 IGPUModel.load_checkpoint
    """
    p = Path(path)
    if p.is_dir():
        try:
            found = list_checkpoints(p)
        except OSError as e:
            raise UserError(f"{p}: cannot list the save directory ({e.strerror})") from None
        if not found:
            raise UserError(f"{p}: no checkpoint files (named <epoch>.<batchnum>) in this directory")
        return found[-1]
    if not p.exists():
        raise UserError(f"{p}: checkpoint does not exist")
    return p


def _load_safe(p: Path) -> dict:
    try:
        with zipfile.ZipFile(p) as z:
            names = set(z.namelist())
            if not {FORMAT_MEMBER, STATE_MEMBER, SUMS_MEMBER} <= names:
                raise UserError(f"{p}: not a port checkpoint (no {FORMAT_MEMBER}/{STATE_MEMBER}/"
                                f"{SUMS_MEMBER})")
            expected = {}
            for line in z.read(SUMS_MEMBER).decode().splitlines():
                digest, name = line.split("  ", 1)
                expected[name] = digest
            if set(expected) != names - {SUMS_MEMBER}:
                raise UserError(f"{p}: checksum mismatch (members differ from {SUMS_MEMBER}); "
                                f"the checkpoint is corrupt")
            data = {}
            for name in expected:
                raw = z.read(name)
                if hashlib.sha256(raw).hexdigest() != expected[name]:
                    raise UserError(f"{p}: checksum mismatch in member {name}; the checkpoint is corrupt")
                data[name] = raw
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, KeyError, OSError) as e:
        raise UserError(f"{p}: corrupt or truncated checkpoint ({e})") from None
    try:
        fmt = json.loads(data[FORMAT_MEMBER])
        state = json.loads(data[STATE_MEMBER])
    except ValueError as e:  # checksums match but the JSON does not parse: a crafted file
        raise UserError(f"{p}: corrupt checkpoint ({e})") from None
    if fmt.get("format") != FORMAT_NAME or fmt.get("version") != FORMAT_VERSION:
        raise UserError(f"{p}: unknown checkpoint format {fmt}")
    arrays = {}
    for name, raw in data.items():
        m = re.match(r"^arrays/(\d+)\.npy$", name)
        if m:
            arrays[int(m.group(1))] = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    return _Decoder(arrays).decode(state)


def load(path: str | os.PathLike, *, trust_pickle: bool = False) -> dict:
    """Read a checkpoint (file, or save directory → its newest file); verify its SHA-256 sums.

    A legacy cuda-convnet pickle is read only when ``trust_pickle`` is true (see
    :func:`load_legacy`); otherwise a :class:`UserError` says how to opt in.
    Ports: cuda-convnet-r561/util.py:69-83 unpickle
    """
    p = resolve(path)
    try:
        with open(p, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise UserError(f"{p}: cannot read checkpoint ({e.strerror})") from None
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(p) as z:
                legacy_zip = "data" in z.namelist() and STATE_MEMBER not in z.namelist()
        except zipfile.BadZipFile as e:
            raise UserError(f"{p}: corrupt or truncated checkpoint ({e})") from None
        if not legacy_zip:
            return _load_safe(p)
    if not trust_pickle:
        raise UserError(f"{p}: not a port checkpoint; if it is a cuda-convnet (Python 2 pickle) "
                        f"checkpoint you trust, pass --trust-pickle (unpickling can run code)")
    return load_legacy(p)


# ---------------------------------------------------------------------------------------------
# Legacy (Python 2 pickle) checkpoints

class LegacyStub:
    """Stands in for a class of the original's ``options`` module; keeps the pickled attributes."""

    def __init__(self, *args, **kwargs):
        self._args = args

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = {**(state[0] or {}), **(state[1] or {})}
        self.__dict__.update(state or {})


def _stub(name: str) -> type:
    return type(name, (LegacyStub,), {"__module__": "port.checkpoint.legacy"})


_OPTION_CLASSES = ("Option", "OptionsParser", "OptionParser", "IntegerOptionParser",
                   "BooleanOptionParser", "StringOptionParser", "FloatOptionParser",
                   "RangeOptionParser", "ListOptionParser", "OptionExpression")
_STUBS = {name: _stub(name) for name in _OPTION_CLASSES}


def _legacy_globals() -> dict[tuple[str, str], Any]:
    """What a cuda-convnet checkpoint needs beyond :class:`port.util.RestrictedUnpickler`'s base
    whitelist: ``copy_reg`` reconstruction, ``ordereddict``, a few more builtins (Python 2
    spellings too) and inert stubs for the original's option classes."""
    allowed = {
        ("copy_reg", "_reconstructor"): copyreg._reconstructor,
        ("copyreg", "_reconstructor"): copyreg._reconstructor,
        ("ordereddict", "OrderedDict"): collections.OrderedDict,
    }
    for mod in ("__builtin__", "builtins"):
        for name, obj in (("object", object), ("float", float), ("int", int), ("long", int),
                          ("range", range), ("xrange", range)):
            allowed[(mod, name)] = obj
    for name, stub in _STUBS.items():
        allowed[("options", name)] = stub
    return allowed


_LEGACY_GLOBALS = _legacy_globals()
_LEGACY_REFUSAL = ("{where}: legacy checkpoint refused: refused global {name} (not on the whitelist "
                   "of a cuda-convnet checkpoint)")


def _convert_legacy_op(op) -> dict:
    """The original's pickled OptionsParser as ``{name: {'value', 'value_given'}}``."""
    out = {}
    options = getattr(op, "options", None)
    if not isinstance(options, dict):
        return out
    for name, o in options.items():
        value = getattr(o, "value", None)
        if isinstance(value, LegacyStub):  # an unevaluated OptionExpression
            continue
        if isinstance(value, range):
            value = list(value)
        out[name] = {"value": value, "value_given": bool(getattr(o, "value_given", False))}
    return out


def load_legacy(path: str | os.PathLike) -> dict:
    """Read a cuda-convnet checkpoint (plain, gzip or zip pickle) with :class:`RestrictedUnpickler`.

    The pickled ``op`` becomes a plain ``{name: {'value', 'value_given'}}`` dict.
    Ports: cuda-convnet-r561/util.py:69-83 unpickle
    """
    p = Path(path)
    try:
        dic = RestrictedUnpickler(io.BytesIO(read_payload(p)), _LEGACY_GLOBALS, where=p,
                                  refusal=_LEGACY_REFUSAL).load()
    except UserError:  # a refused global
        raise
    except pickle.UnpicklingError as e:
        raise UserError(f"{p}: legacy checkpoint refused: {e}") from None
    except Exception as e:  # truncated or not a pickle at all
        raise UserError(f"{p}: cannot read legacy checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(dic, dict) or "model_state" not in dic:
        raise UserError(f"{p}: legacy checkpoint holds no 'model_state'")
    dic["op"] = _convert_legacy_op(dic.get("op"))
    return dic


__all__ = ["save", "load", "load_legacy", "resolve", "list_checkpoints", "is_checkpoint_name",
           "checkpoint_key", "LegacyStub"]
