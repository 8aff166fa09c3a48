"""A strict stand-in for CuPy on the CPU: NumPy arrays behind CuPy's rules, for tests.

Not a port: test plumbing. ``ALEXNET_BACKEND=strict`` (or ``backend.set_backend("strict")``)
makes the port allocate through this module instead of CuPy, so that CI, which has no GPU, runs
the device code path under the rules that a real GPU would impose:

- **no implicit host arrays.** ``numpy.asarray(a)``, ``numpy.array(a)`` and everything that calls
  ``__array__`` raise CuPy's ``TypeError``; NumPy functions and ufuncs called on these arrays are
  dispatched as CuPy dispatches them (``__array_function__``, ``__array_ufunc__``), and so return
  device arrays;
- **no NumPy/device mixing.** A NumPy array (not a NumPy scalar) given to an operator or to a
  function of this module raises ``TypeError``, except the explicit uploads (``asarray``,
  ``array``, ``asanyarray``, a NumPy index or a NumPy value in ``a[...] = v``), which are counted;
- **CuPy's namespace.** Every module function, ``ndarray`` attribute, ufunc method and
  ``random``/``linalg`` name used, and the keyword arguments of the functions whose signature
  CuPy exposes, are checked against CuPy 14's, recorded in ``cupy_namespace.json`` by
  ``python -m port.strict --record`` on a machine where CuPy imports (it needs no GPU);
- **0-d results stay on the device**, as in CuPy (NumPy returns scalars): ``a.sum()`` is an array;
- **host synchronisations are counted per call site** (the first frame outside this module and
  ``port/backend.py``): ``float()``, ``int()``, ``bool()``, ``complex()``, ``.item()``,
  ``.tolist()``, ``.get()``, ``.tobytes()``, ``repr``/``str``/``format``, boolean-mask indexing and
  the functions whose output size depends on the data (``nonzero``, ``unique``, ...), each of which
  makes CuPy wait for the device. :func:`sync_counts` reads them, :func:`reset_counts` clears them.

What it cannot see: performance, CUDA errors, float32 differences of cuBLAS, and the kernels CuPy
would fuse or not; those need the GPU run (``benchmarks/gpu.sh``).
"""
from __future__ import annotations

import functools
import json
import operator
import os
import sys
from collections import Counter
from pathlib import Path

import numpy

NAMESPACE_FILE = Path(__file__).with_name("cupy_namespace.json")
_SKIP_FILES = (os.path.abspath(__file__), os.path.join(os.path.dirname(os.path.abspath(__file__)), "backend.py"))
_NUMPY_DIR = os.path.dirname(numpy.__file__)

UPLOAD = "upload"
_counts: Counter = Counter()


class StrictError(TypeError):
    """A use that CuPy refuses or does not have (the message names the rule)."""


@functools.cache
def namespace() -> dict:
    """The recorded CuPy namespace (names per kind, signatures of the module's functions)."""
    try:
        return json.loads(NAMESPACE_FILE.read_text())
    except FileNotFoundError:
        raise RuntimeError(f"{NAMESPACE_FILE} is missing; record it with `python -m port.strict --record` "
                           f"where CuPy imports") from None


def _names(kind: str) -> frozenset:
    return _name_sets()[kind]


@functools.cache
def _name_sets() -> dict:
    return {k: frozenset(v) for k, v in namespace()["names"].items()}


def _require(kind: str, name: str) -> None:
    if name not in (_name_sets()[kind]):
        where = "cupy" if kind == "module" else f"cupy.{kind}"
        raise StrictError(f"{where}.{name} does not exist in CuPy {namespace()['cupy']} "
                          f"(the strict backend checks every name against CuPy's)")


# ---- counting ----------------------------------------------------------------------------------

def _call_site() -> str:
    f = sys._getframe(2)
    while f is not None:
        fn = os.path.abspath(f.f_code.co_filename)
        if fn not in _SKIP_FILES and not fn.startswith(_NUMPY_DIR):
            return f"{_short(fn)}:{f.f_lineno}"
        f = f.f_back
    return "?"


@functools.cache
def _short(fn: str) -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.relpath(fn, root) if fn.startswith(root + os.sep) else fn


def _record(kind: str) -> None:
    _counts[(_call_site(), kind)] += 1


def sync_counts() -> Counter:
    """(call site, kind) → count since the last :func:`reset_counts`; uploads have kind ``upload``."""
    return Counter(_counts)


def syncs(counts: Counter | None = None) -> Counter:
    """call site → host synchronisations (everything counted but the uploads)."""
    out: Counter = Counter()
    for (site, kind), n in (counts if counts is not None else _counts).items():
        if kind != UPLOAD:
            out[f"{site} ({kind})"] += n
    return out


def reset_counts() -> None:
    _counts.clear()


# ---- wrapping ------------------------------------------------------------------------------------

_PLAIN = (int, float, bool, complex, str, slice, type(None), type(Ellipsis), numpy.dtype, type)


def _wrap(r):
    t = type(r)
    if t is numpy.ndarray:
        return StrictArray(r)
    if t in _PLAIN:
        return r
    if isinstance(r, numpy.ndarray):
        return StrictArray(r)
    if isinstance(r, numpy.generic):
        return StrictArray(numpy.asarray(r))
    if t is tuple:
        return tuple([_wrap(x) for x in r])
    if t is list:
        return [_wrap(x) for x in r]
    return r


def _unwrap(x, what: str):
    t = type(x)
    if t is StrictArray:
        return x._a
    if t in _PLAIN:
        return x
    if isinstance(x, numpy.ndarray):
        raise StrictError(f"{what}: a NumPy array mixed with device arrays (CuPy refuses host arrays "
                          f"here; upload it with xp.asarray or take the module from the inputs)")
    if t is tuple or t is list:
        return t([_unwrap(v, what) for v in x])
    return x


def _unwrap_index(key):
    """A device index as NumPy's; a NumPy array or list in the index is an upload (CuPy copies it).
    Boolean masks are counted as synchronisations (the result's size depends on the data)."""
    t = type(key)
    if t is tuple:
        if all(type(k) in _PLAIN for k in key):
            return key
        return tuple([_unwrap_index(k) for k in key])
    if t in _PLAIN:
        return key
    if t is StrictArray:
        key = key._a
    elif isinstance(key, (numpy.ndarray, list)):
        _record(UPLOAD)
        key = numpy.asarray(key)
    if isinstance(key, numpy.ndarray) and key.dtype == numpy.bool_:
        _record("boolean index")
    return key


_SYNCING_FUNCTIONS = {"nonzero", "argwhere", "flatnonzero", "unique", "compress", "extract",
                      "asnumpy", "array_repr", "array_str", "trim_zeros"}
_UPLOADS = {"asarray", "array", "asanyarray"}


class StrictArray:
    """A NumPy array that behaves like a ``cupy.ndarray`` where it matters (see the module)."""
    __slots__ = ("_a",)
    __array_priority__ = 100

    def __init__(self, a: numpy.ndarray):
        self._a = a

    # explicit transfers
    def get(self, stream=None, order="C", out=None, blocking=True):
        _record("get")
        return numpy.array(self._a, order=order)

    def set(self, arr, stream=None):
        if not isinstance(arr, numpy.ndarray):
            raise StrictError("ndarray.set takes a NumPy array")
        _record(UPLOAD)
        self._a[...] = arr

    def item(self, *args):
        _record("item")
        return self._a.item(*args)

    def tolist(self):
        _record("tolist")
        return self._a.tolist()

    def tobytes(self, order="C"):
        _record("tobytes")
        return self._a.tobytes(order)

    # implicit transfers: CuPy allows them and waits for the device
    def __bool__(self):
        _record("bool")
        return bool(self._a)

    def __float__(self):
        _record("float")
        return float(self._a)

    def __int__(self):
        _record("int")
        return int(self._a)

    def __complex__(self):
        _record("complex")
        return complex(self._a)

    def __repr__(self):
        _record("repr")
        return "strict." + repr(self._a)

    def __str__(self):
        _record("str")
        return str(self._a)

    def __format__(self, spec):
        _record("format")
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    # what CuPy refuses
    def __array__(self, dtype=None, copy=None):
        raise StrictError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` "
                          "to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        fn = getattr(_module_ufunc(ufunc.__name__), method)
        return fn(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        name = func.__name__
        mod = func.__module__ or "numpy"
        if mod.startswith("numpy.linalg"):
            return getattr(linalg, name)(*args, **kwargs)
        if mod.startswith("numpy.random"):
            return getattr(random, name)(*args, **kwargs)
        if name not in _names("module"):
            return NotImplemented   # NumPy then raises its TypeError, as it does for CuPy arrays
        return _function(name)(*args, **kwargs)

    # shape and views
    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (StrictArray(x) if isinstance(x, numpy.ndarray) else StrictArray(numpy.asarray(x))
                for x in self._a)

    def __getitem__(self, key):
        return _wrap(self._a[_unwrap_index(key)])

    def __setitem__(self, key, value):
        k = _unwrap_index(key)
        if type(value) is StrictArray:
            value = value._a
        elif isinstance(value, numpy.ndarray):
            _record(UPLOAD)
        self._a[k] = value

    def __getattr__(self, name):
        if name.startswith("__"):            # NumPy's protocol probes (__array_interface__, ...)
            raise AttributeError(name)
        _require("ndarray", name)
        attr = getattr(self._a, name)
        t = type(attr)
        if t in _PLAIN or t is tuple:
            return attr
        if t is numpy.ndarray:
            return StrictArray(attr)
        if callable(attr):
            what = f"ndarray.{name}"
            counted = name in ("nonzero", "compress")

            def method(*args, **kwargs):
                if counted:
                    _record(name)
                return _wrap(attr(*_unwrap(args, what), **_unwrap_kwargs(kwargs, what)))
            return method
        return _wrap(attr)

    def __copy__(self):
        return StrictArray(self._a.copy())

    def __deepcopy__(self, memo):
        return StrictArray(self._a.copy())

    def __reduce__(self):
        raise StrictError("a device array cannot be pickled by the strict backend; copy it to the host first")

    __hash__ = None


def _unwrap_kwargs(kwargs: dict, what: str) -> dict:
    return {k: _unwrap(v, what) for k, v in kwargs.items()} if kwargs else kwargs


def _operand(x, what):
    if isinstance(x, StrictArray):
        return x._a
    if isinstance(x, (numpy.ndarray, list, tuple)):
        raise StrictError(f"{what}: a device array and a {type(x).__name__} (CuPy refuses host arrays "
                          f"in operators)")
    return x


def _binary(name, fn):
    def op(self, other):
        return _wrap(fn(self._a, _operand(other, f"operator {name}")))
    op.__name__ = name
    return op


def _reflected(name, fn):
    def op(self, other):
        return _wrap(fn(_operand(other, f"operator {name}"), self._a))
    op.__name__ = name
    return op


def _inplace(name, fn):
    def op(self, other):
        fn(self._a, _operand(other, f"operator {name}"))   # NumPy in place: same buffer
        return self
    op.__name__ = name
    return op


for _n in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
           "lshift", "rshift"):
    _f = getattr(operator, _n + "_" if _n in ("and", "or") else _n)
    setattr(StrictArray, f"__{_n}__", _binary(f"__{_n}__", _f))
    setattr(StrictArray, f"__r{_n}__", _reflected(f"__r{_n}__", _f))
    if _n != "matmul":
        setattr(StrictArray, f"__i{_n}__", _inplace(f"__i{_n}__", getattr(operator, "i" + _n)))
for _n in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(StrictArray, f"__{_n}__", _binary(f"__{_n}__", getattr(operator, _n)))
for _n, _f in (("neg", operator.neg), ("pos", operator.pos), ("abs", operator.abs), ("invert", operator.invert)):
    setattr(StrictArray, f"__{_n}__", (lambda f: lambda self: _wrap(f(self._a)))(_f))

ndarray = StrictArray


# ---- the module's functions --------------------------------------------------------------------

def _check_kwargs(name: str, kwargs: dict) -> None:
    sig = namespace()["signatures"].get(name)
    if sig is None or "**" in sig:
        return
    bad = [k for k in kwargs if k not in sig]
    if bad:
        raise StrictError(f"cupy.{name} has no keyword argument {bad[0]!r} in CuPy {namespace()['cupy']}")


@functools.cache
def _function(name: str):
    np_fn = getattr(numpy, name)
    what = f"cupy.{name}"
    upload = name in _UPLOADS
    syncing = name in _SYNCING_FUNCTIONS

    def fn(*args, **kwargs):
        _check_kwargs(name, kwargs)
        if upload:
            a = args[0] if args else kwargs.get("obj", kwargs.get("a"))
            if not isinstance(a, StrictArray):       # a host object: a device copy of it
                _record(UPLOAD)
                kw = {k: v for k, v in kwargs.items() if k not in ("a", "obj", "blocking")}
                return StrictArray(numpy.array(a, *_unwrap(args[1:], what), **_unwrap_kwargs(kw, what)))
        if syncing or (name == "where" and len(args) + len(kwargs) == 1):
            _record(name)
        return _wrap(np_fn(*_unwrap(args, what), **_unwrap_kwargs(kwargs, what)))
    fn.__name__ = name
    return fn


class _Ufunc:
    """A NumPy ufunc seen through CuPy's: its methods checked, NumPy arrays refused."""

    def __init__(self, name: str):
        self._u = getattr(numpy, name)
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        what = f"cupy.{self.__name__}"
        return _wrap(self._u(*_unwrap(args, what), **_unwrap_kwargs(kwargs, what)))

    def __getattr__(self, attr):
        _require("ufunc", attr)
        m = getattr(self._u, attr)
        what = f"cupy.{self.__name__}.{attr}"
        if not callable(m):
            return m
        return lambda *a, **k: _wrap(m(*_unwrap(a, what), **_unwrap_kwargs(k, what)))


@functools.cache
def _module_ufunc(name: str):
    _require("module", name)
    return _Ufunc(name)


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """``cupy.asnumpy``: a host copy (a synchronisation when ``a`` is on the device)."""
    if isinstance(a, StrictArray):
        _record("asnumpy")
        return numpy.array(a._a, order=order)
    return numpy.asarray(a, order=order)


def get_array_module(*args):
    """``cupy.get_array_module``: this module when any argument is a device array."""
    return sys.modules[__name__] if any(isinstance(a, StrictArray) for a in args) else numpy


class _Namespace:
    """``cupy.random`` or ``cupy.linalg`` over NumPy's, names checked."""

    def __init__(self, kind: str, np_mod):
        self._kind, self._np = kind, np_mod

    def __getattr__(self, name):
        _require(self._kind, name)
        obj = getattr(self._np, name)
        if isinstance(obj, type) or not callable(obj):
            return obj
        what = f"cupy.{self._kind}.{name}"

        def fn(*args, **kwargs):
            r = obj(*_unwrap(args, what), **_unwrap_kwargs(kwargs, what))
            return _Generator(r) if isinstance(r, numpy.random.Generator) else _wrap(r)
        return fn


class _Generator:
    """A NumPy Generator whose draws land on the device (CuPy's Generator names only)."""

    def __init__(self, g):
        self._g = g

    def __getattr__(self, name):
        _require("random.Generator", name)
        m = getattr(self._g, name)
        what = f"cupy.random.Generator.{name}"
        return lambda *a, **k: _wrap(m(*_unwrap(a, what), **_unwrap_kwargs(k, what)))


random = _Namespace("random", numpy.random)
linalg = _Namespace("linalg", numpy.linalg)


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    _require("module", name)
    if not hasattr(numpy, name):
        raise AttributeError(f"cupy.{name} exists but the strict backend does not provide it "
                             f"(it has no NumPy twin)")
    obj = getattr(numpy, name)
    if isinstance(obj, numpy.ufunc):
        return _module_ufunc(name)
    if isinstance(obj, type) or not callable(obj):
        return obj                       # dtypes (cupy.float32 is numpy.float32), constants
    return _function(name)


# ---- recording CuPy's namespace -------------------------------------------------------------------

def record(path: Path = NAMESPACE_FILE) -> dict:
    """Write CuPy's names (module, ndarray, ufunc, random, random.Generator, linalg) and the
    keyword arguments of its introspectable functions to ``path``. Needs CuPy, not a GPU."""
    import inspect  # noqa: PLC0415

    import cupy  # noqa: PLC0415

    sigs = {}
    for n in dir(cupy):
        obj = getattr(cupy, n)
        if n.startswith("_") or isinstance(obj, type) or not callable(obj):
            continue
        try:
            params = inspect.signature(obj).parameters.values()
        except (TypeError, ValueError):
            continue
        names = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        sigs[n] = names + (["**"] if any(p.kind == p.VAR_KEYWORD for p in params) else [])
    data = {"cupy": cupy.__version__,
            "names": {"module": sorted(n for n in dir(cupy) if not n.startswith("__")),
                      "ndarray": sorted(dir(cupy.ndarray)),
                      "ufunc": sorted(n for n in dir(cupy.add) if not n.startswith("_")),
                      "random": sorted(n for n in dir(cupy.random) if not n.startswith("_")),
                      "random.Generator": sorted(n for n in dir(cupy.random.Generator) if not n.startswith("_")),
                      "linalg": sorted(n for n in dir(cupy.linalg) if not n.startswith("_"))},
            "signatures": dict(sorted(sigs.items()))}
    path.write_text(json.dumps(data, indent=1) + "\n")
    return data


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python -m port.strict --record   (where CuPy imports; writes port/cupy_namespace.json)")
    d = record()
    print(f"{NAMESPACE_FILE}: CuPy {d['cupy']}, {len(d['names']['module'])} module names, "
          f"{len(d['signatures'])} signatures")
