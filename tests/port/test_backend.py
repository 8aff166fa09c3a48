"""The backend is chosen once; CuPy is optional and `auto` falls back to NumPy, saying why; the
device random numbers are the same on every backend."""
import os
import subprocess
import sys
import types

import numpy
import pytest

from port import backend, strict


@pytest.fixture(autouse=True)
def restore(monkeypatch):
    saved = backend._xp
    monkeypatch.delenv(backend.ENV_VAR, raising=False)
    backend.probe.cache_clear()
    yield
    backend._xp = saved
    backend.probe.cache_clear()


def test_numpy_by_name():
    assert backend.set_backend("numpy") is numpy
    assert backend.xp() is numpy and backend.name() == "numpy"


def test_environment_variable(monkeypatch):
    monkeypatch.setenv(backend.ENV_VAR, "numpy")
    assert backend.set_backend() is numpy
    monkeypatch.setenv(backend.ENV_VAR, "strict")
    assert backend.set_backend("auto") is strict       # `auto` from the command line defers to it
    assert backend.name() == "strict"
    assert backend.set_backend("numpy") is numpy        # an explicit name wins


def test_unknown_backend_is_refused():
    with pytest.raises(backend.BackendError, match="not one of auto, numpy, cupy"):
        backend.set_backend("tpu")


def _fake_cupy(monkeypatch, **attrs):
    mod = types.ModuleType("cupy")
    mod.__version__ = "14.0.0"
    mod.cuda = types.SimpleNamespace(**attrs)
    monkeypatch.setitem(sys.modules, "cupy", mod)
    return mod


def test_auto_falls_back_to_numpy_and_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)                  # import cupy → ImportError
    assert backend.set_backend("auto") is numpy
    assert backend.auto_fell_back().startswith("CuPy is not installed (ModuleNotFoundError")
    with pytest.raises(backend.BackendError, match="CuPy is not installed.*use --backend=numpy"):
        backend.set_backend("cupy")


def test_probe_names_a_device_that_does_not_answer(monkeypatch):
    class CUDARuntimeError(RuntimeError):
        pass

    def no_device():
        raise CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
    _fake_cupy(monkeypatch, runtime=types.SimpleNamespace(getDeviceCount=no_device))
    reason = backend.probe().reason
    assert reason == ("CuPy 14.0.0 imports, but no CUDA device answers (CUDARuntimeError: "
                      "cudaErrorNoDevice: no CUDA-capable device is detected)")
    assert "\n" not in reason


def test_probe_names_a_missing_cuda_library(monkeypatch):
    fake = _fake_cupy(monkeypatch, runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))

    def asarray(a):
        raise OSError("libcublas.so.13: cannot open shared object file: No such file or directory")
    fake.asarray = asarray
    assert backend.probe().cupy is None
    assert backend.why_not_cupy().startswith("CuPy 14.0.0 sees 1 device(s), but CUDA library missing "
                                             "(OSError: libcublas.so.13")


def test_probe_runs_a_matmul_and_checks_it(monkeypatch):
    """A fake CuPy over NumPy whose matmul is wrong is refused: the probe checks the answer."""
    class Dev:
        id = 0

        def synchronize(self):
            pass

    class Arr:
        def __init__(self, a):
            self.a, self.T = a, None

        def __matmul__(self, other):
            return Arr(self.a @ self.a.T + 1)

        def get(self):
            return self.a
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 1, getDeviceProperties=lambda i: {"name": b"Fake"})
    fake = _fake_cupy(monkeypatch, runtime=runtime, Device=Dev)
    fake.asarray = Arr
    assert backend.probe().reason == "CuPy 14.0.0: a 4×4 matmul on the device gave a wrong answer"
    Arr.__matmul__ = lambda self, other: Arr(self.a @ self.a.T)
    backend.probe.cache_clear()
    assert backend.probe().reason == "CuPy 14.0.0 on Fake" and backend.probe().cupy is fake


def test_array_module_and_host_copies():
    a = numpy.arange(3.0)
    assert backend.get_array_module(a) is numpy
    assert backend.to_host(a) is a or numpy.array_equal(backend.to_host(a), a)
    d = strict.asarray(a)
    assert backend.get_array_module(a, d) is strict
    h = backend.to_host(d)
    assert type(h) is numpy.ndarray and numpy.array_equal(h, a)


def test_device_random_numbers_are_the_same_on_every_backend():
    u = backend.uniform(numpy.random.default_rng(3), (40, 50), numpy.float32, numpy)
    s = backend.uniform(numpy.random.default_rng(3), (40, 50), numpy.float32, strict)
    assert type(s) is strict.ndarray and numpy.array_equal(s.get(), u)
    assert u.dtype == numpy.float32 and 0 <= u.min() and u.max() < 1
    assert abs(float(u.mean()) - 0.5) < 0.02 and abs(float(u.var()) - 1 / 12) < 0.005
    assert not numpy.array_equal(u, backend.uniform(numpy.random.default_rng(4), (40, 50), module=numpy))
    z = backend.standard_normal(numpy.random.default_rng(3), (200, 500), numpy.float64, numpy)
    assert z.dtype == numpy.float64 and abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs((numpy.abs(z) > 1.96).mean() - 0.05) < 0.003      # the tails of N(0, 1)


def test_uniforms_are_bit_identical_and_normals_their_box_muller_within_the_last_bits():
    """backend.py's claim, exactly: the uniforms are the same bits on every backend; the normals
    are √(−2 log u1)·cos(2π u2) of those uniforms, the same bits on NumPy and strict (NumPy's
    functions), and within a few float32 ulp of that formula in float64 (so on CuPy too, whose
    CUDA log and cos round differently, run where CuPy is installed)."""
    mods = [numpy, strict]
    try:
        import cupy
        backend.probe.cache_clear()
        if backend.probe().cupy is not None:
            mods.append(cupy)
    except ImportError:
        pass
    n = 20000
    bits = backend.random_bits(numpy.random.default_rng(5), 2 * n, numpy) >> numpy.uint32(8)
    u1 = (bits[:n].astype(numpy.float64) + 1) * 2.0 ** -24
    u2 = bits[n:].astype(numpy.float64) * 2.0 ** -24
    ref = numpy.sqrt(-2 * numpy.log(u1)) * numpy.cos(2 * numpy.pi * u2)
    first = None
    for m in mods:
        u = backend.to_host(backend.uniform(numpy.random.default_rng(5), n, numpy.float32, m))
        exact = bits[:n].astype(numpy.float32) * numpy.float32(2.0 ** -24)
        numpy.testing.assert_array_equal(u.view(numpy.uint32), exact.view(numpy.uint32))
        z = backend.to_host(backend.standard_normal(numpy.random.default_rng(5), n, numpy.float32, m))
        numpy.testing.assert_allclose(z, ref, rtol=2e-6, atol=2e-6)
        if m is strict:
            numpy.testing.assert_array_equal(z.view(numpy.uint32), first.view(numpy.uint32))
        first = z if first is None else first


_REUSE = """
import resource, sys
import numpy as np
from port import backend
backend.set_backend("numpy")
a = np.ones(64 << 18, np.float32); del a           # 64 MiB, touched, freed
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    a = np.ones(64 << 18, np.float32); del a
print(backend.keep_freed_host_memory(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
@pytest.mark.parametrize("opt_out", [False, True])
def test_the_numpy_backend_reuses_freed_host_memory_without_new_page_faults(opt_out):
    env = {**os.environ, "ALEXNET_KEEP_FREED_MEMORY": "0" if opt_out else ""}
    out = subprocess.run([sys.executable, "-c", _REUSE], env=env, capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    kept, faults = out[0] == "True", int(out[1])
    assert kept is not opt_out
    if not opt_out:        # five 64 MiB arrays after a freed one: the same pages, no new faults
        assert faults < 100, faults
