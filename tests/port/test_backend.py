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
