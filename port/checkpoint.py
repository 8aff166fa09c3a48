"""Checkpoints in a safe format: one zip archive of ``.npy`` arrays plus JSON, checksummed, no pickle.

What a checkpoint holds is what the original's held (svn ``gpumodel.py`` ``save_state``)::

    {'model_state': {'layers': {name: layer dict (weights, weightsInc, biases, biasesInc, ...)},
                     'train_outputs': [...], 'test_outputs': [...], 'epoch': int, 'batchnum': int,
                     ... (random-number and data-provider states; see port.gpumodel)},
     'op': {option name: {'value': ..., 'value_given': bool}}}

DIVERGES: the original pickled that dict (cPickle, optionally zipped). Unpickling can run arbitrary
code, so this port writes a zip archive instead: ``state.json`` holds the tree with every NumPy
array replaced by a reference to a member ``arrays/<k>.npy`` (``numpy.lib.format``, no pickled
objects), and ``SHA256SUMS`` holds the SHA-256 of every other member, verified on :func:`load`.

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
import math
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from port.backend import to_host
from port.errors import UserError
from port.util import RestrictedUnpickler, atomic_write_bytes, format_bytes, memory_ceiling, read_payload

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


class CorruptCheckpoint(UserError):
    """A checkpoint whose checksums may match but whose content is not what :func:`save` writes."""


#: How deep ``state.json`` may nest (a saved net is about 12 levels deep).
MAX_DEPTH = 200
#: The largest JSON member read (a saved net's state.json is a few hundred KiB).
MAX_JSON_BYTES = 256 << 20
MAX_MEMBERS = 100_000
#: The array dtypes a checkpoint may hold: bool, ints, floats, complex (never objects or strings).
ARRAY_KINDS = "biufc"
_TAGS = {"__ndarray__": {"__ndarray__"}, "__npscalar__": {"__npscalar__", "value"},
         "__tuple__": {"__tuple__"}, "__ref__": {"__ref__"}, "__shared__": {"__shared__", "value"},
         "__items__": {"__items__"}}


class _Decoder:
    """The tree :class:`_Encoder` wrote, checked as it is rebuilt: every tag has exactly its keys
    and types, every ``__ndarray__`` names a member, every ``__ref__`` an object already met,
    nesting stays under :data:`MAX_DEPTH`. A violation is one :class:`CorruptCheckpoint` line
    naming the place (``checkpoint['model_state']['layers']...``)."""

    def __init__(self, arrays: dict[int, np.ndarray], where: Path):
        self.arrays = arrays
        self.shared: dict[int, Any] = {}
        self.where = where

    def bad(self, at: str, what: str) -> CorruptCheckpoint:
        if len(at) > 160:
            at = f"{at[:80]}...{at[-60:]}"
        return CorruptCheckpoint(f"{self.where}: corrupt checkpoint: {at} {what}")

    def _index(self, obj: dict, key: str, at: str) -> int:
        k = obj[key]
        if type(k) is not int:
            raise self.bad(at, f"has {key} {str(k)[:40]!r}, not an integer")
        return k

    def decode(self, obj: Any, into: Any = None, at: str = "checkpoint", depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise self.bad(at, f"nests deeper than {MAX_DEPTH} levels")
        if isinstance(obj, list):
            out = into if into is not None else []
            out.extend(self.decode(v, None, f"{at}[{i}]", depth + 1) for i, v in enumerate(obj))
            return out
        if not isinstance(obj, dict):
            return obj
        tag = next((t for t in _TAGS if t in obj), None)
        if tag is not None and set(obj) != _TAGS[tag]:
            raise self.bad(at, f"is a {tag} entry with keys {sorted(obj)}; expected {sorted(_TAGS[tag])}")
        if tag == "__ndarray__":
            k = self._index(obj, tag, at)
            if k not in self.arrays:
                raise self.bad(at, f"refers to array {k}, which the checkpoint does not hold")
            return self.arrays[k]
        if tag == "__npscalar__":
            try:
                dtype = np.dtype(obj[tag])
            except (TypeError, ValueError):
                raise self.bad(at, f"has the unknown scalar type {obj[tag]!r}") from None
            if dtype.kind not in ARRAY_KINDS or isinstance(obj["value"], (dict, list, str)) \
                    or obj["value"] is None:
                raise self.bad(at, f"is a scalar of type {dtype} and value {obj['value']!r}")
            try:
                return dtype.type(obj["value"])
            except (TypeError, ValueError, OverflowError):
                raise self.bad(at, f"holds {obj['value']!r}, not a {dtype} value") from None
        if tag == "__tuple__":
            if not isinstance(obj[tag], list):
                raise self.bad(at, "is a tuple entry that does not hold a list")
            return tuple(self.decode(v, None, f"{at}[{i}]", depth + 1) for i, v in enumerate(obj[tag]))
        if tag == "__ref__":
            k = self._index(obj, tag, at)
            if k not in self.shared:
                raise self.bad(at, f"refers to shared object {k}, which comes nowhere before it")
            return self.shared[k]
        if tag == "__shared__":
            k = self._index(obj, tag, at)
            value = obj["value"]
            if k in self.shared or not isinstance(value, (list, dict)):
                raise self.bad(at, f"defines shared object {k} twice, or as something not a list or dict")
            container = [] if isinstance(value, list) else {}
            self.shared[k] = container  # registered before filling: cycles resolve
            return self.decode(value, container, at, depth + 1)
        out = into if into is not None else {}
        if tag == "__items__":
            items = obj[tag]
            if not isinstance(items, list) or not all(isinstance(kv, list) and len(kv) == 2 for kv in items):
                raise self.bad(at, "is an __items__ entry that does not hold [key, value] pairs")
            for i, (k, v) in enumerate(items):
                key = self.decode(k, None, f"{at}[key {i}]", depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise self.bad(at, f"has the unhashable key {type(key).__name__} at pair {i}") from None
                out[key] = self.decode(v, None, f"{at}[{key!r}]", depth + 1)
        else:
            for k, v in obj.items():
                out[k] = self.decode(v, None, f"{at}[{k!r}]", depth + 1)
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
    if is_checkpoint_name(Path(path).name):
        remove_leftovers(Path(path).parent)  # of saves killed before their rename

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


class _HashingReader:
    """A member's stream that hashes what is read and refuses to read past ``limit`` bytes."""

    def __init__(self, f, limit: int, name: str, where: Path):
        self.f, self.left, self.name, self.where = f, limit, name, where
        self.sha = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        self.sha.update(data)
        return data

    def readinto(self, buf: memoryview) -> None:
        pos = 0
        while pos < len(buf):
            chunk = self.read(min(len(buf) - pos, 1 << 20))
            if not chunk:
                raise CorruptCheckpoint(f"{self.where}: corrupt checkpoint: member {self.name} is "
                                        "shorter than its header says")
            buf[pos:pos + len(chunk)] = chunk
            pos += len(chunk)

    def finish(self, digest: str) -> None:
        """Read what is left (at most the declared size) and compare the SHA-256."""
        while self.read(1 << 20):
            pass
        if self.sha.hexdigest() != digest:
            raise UserError(f"{self.where}: checksum mismatch in member {self.name}; the checkpoint is corrupt")


def _read_npy(r: _HashingReader, size: int, where: Path) -> np.ndarray:
    """An ``.npy`` member read straight into its array: the header's dtype must be plain numbers
    and its shape must account for exactly the member's bytes, checked before allocating."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(r)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"npy version {version}")
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(r)
    except (zipfile.BadZipFile, OSError):  # the zip's own CRC check: reported by _load_safe
        raise
    except Exception as e:  # numpy's header parser raises ValueError, SyntaxError, tokenize.TokenError...
        raise CorruptCheckpoint(f"{where}: corrupt checkpoint: member {r.name} has a bad .npy header "
                                f"({' '.join(str(e).split())[:200]})") from None
    if dtype.hasobject or dtype.kind not in ARRAY_KINDS or dtype.fields is not None:
        raise CorruptCheckpoint(f"{where}: corrupt checkpoint: member {r.name} holds {dtype} values; "
                                "a checkpoint holds only numbers (no objects, strings or records)")
    count = math.prod(shape)
    header = size - r.left
    if count * dtype.itemsize != r.left:
        raise CorruptCheckpoint(f"{where}: corrupt checkpoint: member {r.name} claims shape {shape} of "
                                f"{dtype} ({count * dtype.itemsize} bytes), but holds {size - header} "
                                "bytes of data")
    a = np.empty(count, dtype=dtype)
    r.readinto(memoryview(a).cast("B"))
    return a.reshape(shape, order="F" if fortran else "C")


def _load_safe(p: Path) -> dict:
    """Ports: cuda-convnet-r561/util.py:69-83 unpickle"""
    try:
        with zipfile.ZipFile(p) as z:
            infos = z.infolist()
            sizes = {i.filename: i.file_size for i in infos}
            if len(infos) > MAX_MEMBERS or len(sizes) != len(infos):
                raise CorruptCheckpoint(f"{p}: corrupt checkpoint: {len(infos)} members, "
                                        f"{len(infos) - len(sizes)} of them repeated")
            if not {FORMAT_MEMBER, STATE_MEMBER, SUMS_MEMBER} <= set(sizes):
                raise UserError(f"{p}: not a port checkpoint (no {FORMAT_MEMBER}/{STATE_MEMBER}/"
                                f"{SUMS_MEMBER})")
            ceiling = memory_ceiling()
            for name, size in [*sizes.items(), ("all members together", sum(sizes.values()))]:
                limit = ceiling if name.startswith(("arrays/", "all ")) else min(ceiling, MAX_JSON_BYTES)
                if size > limit:  # checked in the zip directory, before anything is inflated
                    raise CorruptCheckpoint(f"{p}: checkpoint: {name} would inflate to {format_bytes(size)},"
                                            f" more than the {format_bytes(limit)} that can be read")
            expected = {}
            for line in z.read(SUMS_MEMBER).decode().splitlines():
                digest, name = line.split("  ", 1)
                expected[name] = digest
            if set(expected) != set(sizes) - {SUMS_MEMBER}:
                raise UserError(f"{p}: checksum mismatch (members differ from {SUMS_MEMBER}); "
                                f"the checkpoint is corrupt")
            data, arrays = {}, {}
            for name in expected:
                with z.open(name) as f:
                    r = _HashingReader(f, sizes[name], name, p)
                    m = re.match(r"^arrays/(\d+)\.npy$", name)
                    if m:
                        arrays[int(m.group(1))] = _read_npy(r, sizes[name], p)
                    else:
                        data[name] = r.read()
                    r.finish(expected[name])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, KeyError, OSError,
            NotImplementedError, RuntimeError) as e:  # RuntimeError: an encrypted member
        raise UserError(f"{p}: corrupt or truncated checkpoint ({' '.join(str(e).split())[:300]})") from None
    try:
        fmt = json.loads(data[FORMAT_MEMBER])
        state = json.loads(data[STATE_MEMBER])
    except ValueError as e:  # checksums match but the JSON does not parse: a crafted file
        raise UserError(f"{p}: corrupt checkpoint ({e})") from None
    except RecursionError:
        raise CorruptCheckpoint(f"{p}: corrupt checkpoint: {STATE_MEMBER} nests deeper than {MAX_DEPTH} "
                                "levels") from None
    if not isinstance(fmt, dict) or fmt.get("format") != FORMAT_NAME or fmt.get("version") != FORMAT_VERSION:
        raise UserError(f"{p}: unknown checkpoint format {str(fmt)[:200]}")
    return _Decoder(arrays, p).decode(state)


def check_training_checkpoint(dic: Any, where) -> dict:
    """A training checkpoint's top level, as the driver reads it: ``{'model_state': {'layers':
    {name: dict}, 'epoch': int, 'batchnum': int, 'train_outputs': list, 'test_outputs': list, ...},
    'op': {name: {'value', 'value_given'}}}``, with at least one layer. Returns ``dic``.

    Port-only: the original unpickled the dict and failed where a missing part was first used;
    an empty ``layers`` made the port build a fresh net while saying it resumed.
    """
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise CorruptCheckpoint(f"{where}: not a usable training checkpoint: {what}")

    need(isinstance(dic, dict) and isinstance(dic.get("model_state"), dict), "no 'model_state' dict")
    ms, op = dic["model_state"], dic.get("op", {})
    need(isinstance(op, dict) and all(isinstance(v, dict) and "value" in v for v in op.values()),
         "'op' is not a dict of {'value', 'value_given'} entries")
    need(isinstance(ms.get("layers"), dict) and len(ms["layers"]) > 0,
         "model_state['layers'] is missing or empty; refusing to resume from an empty model")
    for name, layer in ms["layers"].items():
        need(isinstance(layer, dict) and layer.get("name") == name and isinstance(layer.get("type"), str),
             f"layer {str(name)[:80]!r} is not a layer dict with its name and type")
    for key in ("epoch", "batchnum"):
        need(type(ms.get(key)) is int and ms[key] >= 0, f"model_state[{key!r}] is not an integer >= 0")
    for key in ("train_outputs", "test_outputs"):
        need(isinstance(ms.get(key, []), list), f"model_state[{key!r}] is not a list")
    return dic


def remove_leftovers(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that interrupted saves of checkpoints left in ``directory``
    (``.<epoch>.<batchnum>.<random>.tmp``, the names :func:`port.util.atomic_write_bytes` gives).
    Called by :func:`save`; returns what was deleted."""
    gone = []
    try:
        names = os.listdir(directory)
    except OSError:
        return gone
    for name in names:
        if _LEFTOVER.match(name):
            try:
                os.unlink(Path(directory) / name)
                gone.append(Path(directory) / name)
            except OSError:
                pass
    return gone


_LEFTOVER = re.compile(r"^\.\d+\.\d+\.[^/]+\.tmp$")


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
           "checkpoint_key", "LegacyStub", "CorruptCheckpoint", "check_training_checkpoint",
           "remove_leftovers"]
