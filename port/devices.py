"""The devices a net runs on: where each layer runs (its cfg ``gpu=``), and the copies where the
cfg's columns meet.

The original ran one thread per GPU (``--gpu=0,1``): layer L ran on device ``device_ids[L.gpu]``;
an output needed on another GPU was copied there (peer to peer, or through host memory, where a
``quantF=half`` layer sent float16), and the gradients computed on other GPUs were summed into
the producer's own (``quantB=half``: float16 through host memory)
(alexnet-2012/src/layer.cu:78-124, 172-270).

Here, one thread: :class:`Devices` names the devices and gives a context to run a layer on one
and a copy between two. With several CUDA devices (CuPy), at least as many as the cfg's columns,
a layer runs on device ``ids[gpu]``; with fewer, one device runs every column. The NumPy backend
has one device. :class:`SimulatedDevices` gives several host "devices" whose copies and contexts
are recorded, so the placement and the crossings are tested on a CPU.

Every column crossing (producer and consumer in different cfg columns, whatever the devices)
rounds through float16 when the producer's quantizer is ``half``: see
:func:`quantize`.
"""
from __future__ import annotations

import contextlib

import numpy as np

from port import backend


def quantize(a, quantizer: dict | None):
    """What crosses between columns: ``a`` itself, or rounded to float16 and back (``half``).

    DIVERGES: the original quantized only where the two GPUs could not reach each other and the copy
    went through host memory (alexnet-2012/src/layer.cu:82-88, 237-249); the port rounds at every
    column crossing, as the diary of layer-params-170-quant.cfg describes ("half quantization on all
    communicated layers"). The kernel convQuantizeHalf is in no public repository; this is IEEE
    round-to-nearest-even float16.

    Ports: alexnet-2012/src/quantizer.cu:10-18 Quantizer::make
    Ports: alexnet-2012/src/quantizer.cu:56-65 HalfQuantizer
    """
    if quantizer is None or quantizer.get("type", "default") == "default":
        return a
    return a.astype(np.float16).astype(a.dtype)


class Devices:
    """The backend's devices: ``ids`` are CUDA device ids (CuPy), or ``[0]`` for the host."""

    def __init__(self, ids: list[int] | None = None):
        self.ids = list(ids) if ids else [0]

    def __len__(self) -> int:
        return len(self.ids)

    def context(self, device: int):
        """Run what follows on device ``device`` (an index into ``ids``)."""
        if backend.name() == "cupy" and len(self.ids) > 1:
            return backend.xp().cuda.Device(self.ids[device])
        return contextlib.nullcontext()

    def copy(self, a, src: int, dst: int):
        """``a`` (on device ``src``) as an array on device ``dst``: a peer copy.

        Ports: alexnet-2012/src/layer.cu:78-109 Layer::fpropNext
        """
        with self.context(dst):
            return a.copy()       # CuPy copies an array of another device onto the current one


class SimulatedDevices(Devices):
    """``n`` host devices for tests: ``log`` records every copy ``('copy', src, dst, shape)`` and
    every context entered ``('run', device)``; ``current`` is the device being run."""

    def __init__(self, n: int):
        super().__init__(list(range(n)))
        self.log: list[tuple] = []
        self.current: int | None = None

    @contextlib.contextmanager
    def context(self, device: int):
        prev, self.current = self.current, device
        self.log.append(("run", device))
        try:
            yield
        finally:
            self.current = prev

    def copy(self, a, src: int, dst: int):
        self.log.append(("copy", src, dst, tuple(a.shape)))
        return a.copy()


def backend_devices() -> Devices:
    """Every CUDA device CuPy sees, or the host."""
    if backend.name() == "cupy":
        return Devices(list(range(backend.xp().cuda.runtime.getDeviceCount())))
    return Devices([0])


def place(columns: dict[str, int], devices: Devices) -> dict[str, int]:
    """Layer name → device index: the cfg column (``gpu=``) when there are enough devices,
    else 0 for every layer. Data layers (column −1) live on device 0."""
    needed = max([c for c in columns.values()] + [0]) + 1
    if len(devices) >= needed:
        return {name: max(c, 0) for name, c in columns.items()}
    return {name: 0 for name in columns}


__all__ = ["Devices", "SimulatedDevices", "backend_devices", "place", "quantize"]
