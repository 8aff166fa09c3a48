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
  makes CuPy wait for the device. :func:`sync_counts` reads them, :func:`reset_counts` clears them;
- **kernel launches are counted** as CuPy 14 would issue them (:func:`launch_counts`, per call
  site, kind and scope; rules in :func:`_charge_matmul` and the tables below): one kernel per
  ufunc, operator, ``where``, ``arange``, ``astype`` (unless ``copy=False`` and the dtype is the
  same), reduction, copy (``copy``, ``ascontiguousarray`` of a non-contiguous array, a reshape
  that cannot be a view, advanced indexing) and ``__setitem__``; a memset per ``zeros``; none for
  ``empty`` and views; for ``matmul``, one GEMM plus the copies CuPy makes (2-D operands neither
  C- nor F-contiguous; every non-C-contiguous operand of a 3-D product; a temporary and a copy when
  ``out`` is not C-contiguous). A kernel of :mod:`port.device_kernels` is one launch. Host-to-device
  bytes are counted with the uploads (:func:`h2d_bytes`). :func:`scope` names the layer and pass
  that the launches inside it are charged to.

What it cannot see: performance, CUDA errors, float32 differences of cuBLAS, the kernels cuBLAS
itself splits a GEMM into (counted as one) and CuPy's kernel cache misses (first calls compile);
those need the GPU run (``benchmarks/gpu.sh``).
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
_SKIP_FILES = tuple(os.path.join(os.path.dirname(os.path.abspath(__file__)), f)
                    for f in ("strict.py", "backend.py", "device_kernels.py"))
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
    """Clear the synchronisations, the launches and the uploaded bytes."""
    _counts.clear()
    _launches.clear()
    _h2d.clear()


# ---- launches and uploads --------------------------------------------------------------------------

_launches: Counter = Counter()    # (call site, kind, scope) → kernel launches
_h2d: Counter = Counter()         # (call site, scope) → bytes uploaded
_scope = "-"
_paused = 0


def _launch(kind: str, n: int = 1) -> None:
    if n and not _paused:
        _launches[(_call_site(), kind, _scope)] += n


def _upload(nbytes: int) -> None:
    _record(UPLOAD)
    if not _paused:
        _h2d[(_call_site(), _scope)] += int(nbytes)


def launch_counts() -> Counter:
    """(call site, kind, scope) → kernel launches since the last :func:`reset_counts`."""
    return Counter(_launches)


def launches() -> int:
    """Kernel launches since the last :func:`reset_counts`."""
    return sum(_launches.values())


def h2d_bytes() -> int:
    """Bytes uploaded to the device since the last :func:`reset_counts`."""
    return sum(_h2d.values())


def h2d_counts() -> Counter:
    """(call site, scope) → bytes uploaded since the last :func:`reset_counts`."""
    return Counter(_h2d)


class scope:
    """``with strict.scope("conv1 fwd"):`` charges the launches and uploads inside to that name
    (nested scopes replace the outer one while they last)."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        global _scope
        self._outer, _scope = _scope, self.name
        return self

    def __exit__(self, *exc):
        global _scope
        _scope = self._outer


class _Paused:
    def __enter__(self):
        global _paused
        _paused += 1

    def __exit__(self, *exc):
        global _paused
        _paused -= 1


def paused() -> _Paused:
    """Launches and uploads inside are not counted (a kernel's NumPy twin, charged as one)."""
    return _Paused()


def kernel_launch(name: str, n: int = 1) -> None:
    """Charge ``n`` launches of the hand-written kernel ``name`` (port.device_kernels)."""
    _launch(f"kernel {name}", n)


def _shares(r, *inputs) -> bool:
    """Is ``r`` (NumPy) a view of one of ``inputs`` (NumPy arrays)?"""
    return any(isinstance(x, numpy.ndarray) and numpy.may_share_memory(r, x) for x in inputs)


def _new_array_launch(kind: str, r, *inputs) -> None:
    """One launch when the NumPy result ``r`` is a new array (CuPy wrote it), none for a view."""
    if isinstance(r, numpy.ndarray) and r.size and not _shares(r, *inputs):
        _launch(kind)


def _charge_matmul(a, b, out=None) -> None:
    """CuPy 14's ``matmul`` (cupy/_core/_routines_linalg.pyx): 2-D products go to ``dot``, which
    copies an operand that is neither C- nor F-contiguous; products of more dimensions copy every
    operand that is not C-contiguous (``ascontiguousarray``), and broadcast ones build pointer
    arrays (one kernel per operand); one GEMM; an ``out`` that is not C-contiguous (or overlaps
    an operand) gets a temporary and one copy."""
    if not (isinstance(a, numpy.ndarray) and isinstance(b, numpy.ndarray)):
        return
    if max(a.ndim, b.ndim) <= 2:
        copies = sum(1 for x in (a, b) if x.ndim == 2 and not (x.flags.c_contiguous or x.flags.f_contiguous))
    else:
        copies = sum(1 for x in (a, b) if not x.flags.c_contiguous)
        if a.ndim != b.ndim or a.shape[:-2] != b.shape[:-2]:
            _launch("matmul pointer arrays", 3)
    _launch("matmul operand copy", copies)
    _launch("gemm")
    if out is not None and (not out.flags.c_contiguous or _shares(out, a, b)):
        _launch("matmul out copy")


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
        key = numpy.asarray(key)
        _upload(key.nbytes)
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
        _upload(arr.nbytes)
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
        r = self._a[_unwrap_index(key)]
        _new_array_launch("take", r, self._a)                 # advanced indexing gathers
        return _wrap(r)

    def __setitem__(self, key, value):
        k = _unwrap_index(key)
        if type(value) is StrictArray:
            value = value._a
        elif isinstance(value, numpy.ndarray):
            _upload(value.nbytes)
        _launch("setitem")
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

            a = self._a

            def method(*args, **kwargs):
                if counted:
                    _record(name)
                args, kwargs = _unwrap(args, what), _unwrap_kwargs(kwargs, what)
                if name == "dot":
                    _charge_matmul(a, args[0] if args else kwargs.get("b"), kwargs.get("out"))
                    return _wrap(attr(*args, **kwargs))
                r = attr(*args, **kwargs)
                _charge_method(name, a, r, args, kwargs)
                return _wrap(r)
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


def _charge_op(name, a, b) -> None:
    if name.endswith("matmul__"):
        _charge_matmul(a, b)
    else:
        _launch("operator")


def _binary(name, fn):
    def op(self, other):
        o = _operand(other, f"operator {name}")
        _charge_op(name, self._a, o)
        return _wrap(fn(self._a, o))
    op.__name__ = name
    return op


def _reflected(name, fn):
    def op(self, other):
        o = _operand(other, f"operator {name}")
        _charge_op(name, o, self._a)
        return _wrap(fn(o, self._a))
    op.__name__ = name
    return op


def _inplace(name, fn):
    def op(self, other):
        _launch("operator")
        fn(self._a, _operand(other, f"operator {name}"))   # NumPy in place: same buffer
        return self
    op.__name__ = name
    return op


def _unary(f):
    def op(self):
        _launch("operator")
        return _wrap(f(self._a))
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
    setattr(StrictArray, f"__{_n}__", _unary(_f))

ndarray = StrictArray


# ---- the module's functions --------------------------------------------------------------------

def _check_kwargs(name: str, kwargs: dict) -> None:
    sig = namespace()["signatures"].get(name)
    if sig is None or "**" in sig:
        return
    bad = [k for k in kwargs if k not in sig]
    if bad:
        raise StrictError(f"cupy.{name} has no keyword argument {bad[0]!r} in CuPy {namespace()['cupy']}")


_REDUCTIONS = {"sum", "max", "min", "amax", "amin", "mean", "prod", "argmax", "argmin", "any",
               "all", "nansum", "nanmax", "nanmin", "nanmean", "count_nonzero", "cumsum", "cumprod",
               "average", "ptp"}
_TWO_PASS = {"var", "std"}                 # a mean, then the squared deviations' reduction
_FILLS = {"ones", "ones_like", "full", "full_like"}
_MEMSETS = {"zeros", "zeros_like"}
_CONCATS = {"concatenate", "stack", "hstack", "vstack", "column_stack", "dstack"}


def _host_arrays(xs) -> list:
    out = []
    for x in xs:
        if isinstance(x, numpy.ndarray):
            out.append(x)
        elif type(x) in (tuple, list):
            out.extend(_host_arrays(x))
    return out


def _charge_function(name: str, args: tuple, kwargs: dict, r) -> None:
    """What CuPy launches for ``cupy.<name>(*args, **kwargs)`` (NumPy arguments and result)."""
    if name in ("matmul", "dot"):
        out = kwargs.get("out", args[2] if len(args) > 2 else None)
        _charge_matmul(args[0], args[1], out)
    elif name in _MEMSETS:
        _launch("memset")
    elif name in _FILLS:
        _launch("fill")
    elif name in ("empty", "empty_like"):
        pass
    elif name == "where":
        _launch("where")
    elif name == "arange":
        _launch("arange")
    elif name in _REDUCTIONS:
        _launch("reduction")
    elif name in _TWO_PASS:
        _launch("reduction", 2)
    elif name in _CONCATS:
        _launch("concatenate")
    else:
        kind = {"ascontiguousarray": "copy", "asfortranarray": "copy", "array": "copy",
                "copy": "copy", "asarray": "astype", "asanyarray": "astype"}.get(name, "other")
        _new_array_launch(kind, r, *_host_arrays(args), *_host_arrays(kwargs.values()))


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
                kw = {k: v for k, v in kwargs.items() if k not in ("a", "obj", "blocking")}
                r = numpy.array(a, *_unwrap(args[1:], what), **_unwrap_kwargs(kw, what))
                host = a if isinstance(a, numpy.ndarray) else r
                _upload(host.nbytes)                 # the host bytes go up; a cast runs there
                if host is not r and host.dtype != r.dtype:
                    _launch("astype")
                return StrictArray(r)
        if syncing or (name == "where" and len(args) + len(kwargs) == 1):
            _record(name)
        args, kwargs = _unwrap(args, what), _unwrap_kwargs(kwargs, what)
        r = np_fn(*args, **kwargs)
        _charge_function(name, args, kwargs, r)
        return _wrap(r)
    fn.__name__ = name
    return fn


def _charge_method(name: str, a, r, args: tuple, kwargs: dict) -> None:
    """What CuPy launches for ``a.<name>(*args, **kwargs)`` that returned ``r`` (NumPy)."""
    if name in _REDUCTIONS:
        _launch("reduction")
    elif name in _TWO_PASS:
        _launch("reduction", 2)
    elif name == "fill":
        value = args[0] if args else kwargs.get("value")
        _launch("memset" if value == 0 and a.flags.c_contiguous else "fill")
    elif name in ("copy", "flatten"):
        _launch("copy")
    elif name == "astype":
        if r is not a:
            _launch("astype")
    elif name in ("put", "scatter_add", "scatter_max", "scatter_min"):
        _launch("scatter")
    else:
        _new_array_launch("copy" if name in ("reshape", "ravel") else "other", r, a,
                          *_host_arrays(args))


class _Ufunc:
    """A NumPy ufunc seen through CuPy's: its methods checked, NumPy arrays refused."""

    def __init__(self, name: str):
        self._u = getattr(numpy, name)
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        what = f"cupy.{self.__name__}"
        args, kwargs = _unwrap(args, what), _unwrap_kwargs(kwargs, what)
        r = self._u(*args, **kwargs)
        if self.__name__ == "matmul":          # cupy.matmul is a GEMM, not an elementwise kernel
            out = kwargs.get("out", args[2] if len(args) > 2 else None)
            _charge_matmul(args[0], args[1], out[0] if type(out) is tuple else out)
        else:
            _launch("ufunc")
        return _wrap(r)

    def __getattr__(self, attr):
        _require("ufunc", attr)
        m = getattr(self._u, attr)
        what = f"cupy.{self.__name__}.{attr}"
        if not callable(m):
            return m
        kind = {"reduce": "reduction", "at": "scatter", "accumulate": "reduction"}.get(attr, "ufunc")

        def method(*a, **k):
            r = m(*_unwrap(a, what), **_unwrap_kwargs(k, what))
            _launch(kind)
            return _wrap(r)
        return method


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
            args, kwargs = _unwrap(args, what), _unwrap_kwargs(kwargs, what)
            r = obj(*args, **kwargs)
            if isinstance(r, numpy.random.Generator):
                return _Generator(r)
            _new_array_launch(self._kind, r, *_host_arrays(args))
            return _wrap(r)
        return fn


class _Generator:
    """A NumPy Generator whose draws land on the device (CuPy's Generator names only)."""

    def __init__(self, g):
        self._g = g

    def __getattr__(self, name):
        _require("random.Generator", name)
        m = getattr(self._g, name)
        what = f"cupy.random.Generator.{name}"

        def draw(*a, **k):
            r = m(*_unwrap(a, what), **_unwrap_kwargs(k, what))
            _new_array_launch("random", r)
            return _wrap(r)
        return draw


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
