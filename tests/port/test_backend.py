"""The backend is chosen once; CuPy is optional and `auto` falls back to NumPy."""
import numpy
import pytest

from port import backend


@pytest.fixture(autouse=True)
def restore():
    saved = backend._xp
    yield
    backend._xp = saved


def test_numpy_by_name():
    assert backend.set_backend("numpy") is numpy
    assert backend.xp() is numpy and backend.name() == "numpy"


def test_environment_variable(monkeypatch):
    monkeypatch.setenv(backend.ENV_VAR, "numpy")
    assert backend.set_backend() is numpy


def test_unknown_backend_is_refused():
    with pytest.raises(backend.BackendError, match="not one of auto, numpy, cupy"):
        backend.set_backend("tpu")


def test_auto_falls_back_to_numpy_without_a_device(monkeypatch):
    monkeypatch.setattr(backend, "_cupy_if_usable", lambda: None)
    assert backend.set_backend("auto") is numpy
    with pytest.raises(backend.BackendError, match="no CUDA device answers"):
        backend.set_backend("cupy")


def test_array_module_and_host_copies():
    a = numpy.arange(3.0)
    assert backend.get_array_module(a) is numpy
    assert backend.to_host(a) is a or numpy.array_equal(backend.to_host(a), a)
