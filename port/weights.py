"""One weight matrix (or bias vector) of a layer: its values, momentum, gradient and update rule.

The twin of ``Weights`` in weights.cu / weights.cuh. A :class:`Weights` owns three arrays of the
same shape on the chosen backend (``w``, ``inc``, ``grad``) and the host NumPy arrays it was made
from (the layer dict's ``weights[i]`` / ``weightsInc[i]``, or ``biases`` / ``biasesInc``), which
:meth:`Weights.copy_to_cpu` overwrites in place. Shared weights (cfg ``weightSource``) are a
:class:`Weights` whose ``src`` is the owner's: they read and accumulate into the owner's arrays,
and only the owner updates.

Sign convention: ``grad`` and ``inc`` hold the descent direction −∂L/∂W (see port/gradients.py),
so the update is ``inc = mom·inc + ε_t·grad − wc·ε_t·W; W += inc``.

This module is not the layers' weight constraints (``wball``, ``wcNorm``): those live with the
layers (port/layers/weight.py), as in the original.
"""
from __future__ import annotations

from port import backend, device_kernels


def _owners(attr: str) -> property:
    """A property that reads and writes the owner's array ``attr`` (``_w``, ``_inc``, ``_grad``)."""
    return property(lambda self: getattr(self.owner, attr),
                    lambda self, value: setattr(self.owner, attr, value))


class Weights:
    """A weight matrix with its increment (momentum) and gradient buffers.

    ``use_grad`` mirrors the original: True (conv weights, all biases) accumulates a gradient
    ``grad`` during bprop and applies ε in :meth:`update`; False (fc and local weights) writes
    ``mom·inc + ε/N·xᵀg`` straight into ``inc`` during bprop (:meth:`accumulate`).

    Ports: alexnet-2012/src/weights.cu:37-53 Weights::Weights
    Ports: alexnet-2012/include/weights.cuh:43-101 Weights
    """

    def __init__(self, host_w, host_inc, schedule, base_rate: float, wc: float = 0.0,
                 wball: float = 0.0, mom: float = 0.0, super_eps: float = 0.0,
                 use_grad: bool = True, src: "Weights | None" = None, dtype=None):
        self.src = src
        self.schedule = schedule          # object with get_rate(progress)
        self.base_rate = float(base_rate)
        self._num_updates = 0
        if src is None:
            self.host_w, self.host_inc = host_w, host_inc   # host NumPy arrays, updated in place
            self.wc, self.wball, self.mom = float(wc), float(wball), float(mom)
            self.super_eps, self.use_grad = float(super_eps), bool(use_grad or super_eps > 0)
            self.dtype = dtype
            self._w = self._inc = self._grad = None
            self._grad_avg = self._grad2_avg = None
        else:
            # A shared matrix: no decay, no ball of its own (alexnet-2012/src/weights.cu:37-39).
            self.host_w, self.host_inc = src.host_w, src.host_inc
            self.wc, self.wball, self.mom = 0.0, 0.0, src.mom
            self.super_eps, self.use_grad = src.super_eps, src.use_grad
            self.dtype = src.dtype

    @classmethod
    def shared(cls, src: "Weights", schedule, base_rate: float) -> "Weights":
        """Weights that read and accumulate into ``src``'s arrays (``weightSource``).

        Ports: alexnet-2012/src/weights.cu:37-44 Weights::Weights
        """
        return cls(None, None, schedule, base_rate, src=src)

    # ---- arrays (the owner's, for shared weights)
    @property
    def owner(self) -> "Weights":
        return self if self.src is None else self.src.owner

    w = _owners("_w")
    inc = _owners("_inc")
    grad = _owners("_grad")

    def is_owner(self) -> bool:
        """Ports: alexnet-2012/src/weights.cu:238-240 Weights::isOwner"""
        return self.src is None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.host_w.shape)

    def copy_to_gpu(self) -> None:
        """Copy the host arrays to the backend (shared weights alias the owner's).

        Ports: alexnet-2012/src/weights.cu:109-125 Weights::copyToGPU
        """
        if self.src is None:
            # Row-major on the device whatever the host order (fc weights are Fortran-ordered there,
            # as the original's): the gradient products are row-major, and adding one into a
            # column-major increment strides through memory (4608x2048 floats: 95 ms against 7 ms).
            xp = backend.xp()
            dtype = self.dtype or self.host_w.dtype
            self._w = xp.array(self.host_w, dtype=dtype, order="C")      # (rows, cols)
            self._inc = xp.array(self.host_inc, dtype=dtype, order="C")  # (rows, cols)
            self._grad = xp.zeros_like(self._w)                    # (rows, cols)

    def copy_to_cpu(self) -> None:
        """Write ``w`` and ``inc`` into the host arrays in place (the owner only).

        Ports: alexnet-2012/src/weights.cu:99-105 Weights::copyToCPU
        """
        if self.src is None:
            self.host_w[...] = backend.to_host(self._w).reshape(self.host_w.shape)
            self.host_inc[...] = backend.to_host(self._inc).reshape(self.host_inc.shape)

    # ---- counters
    def inc_num_updates(self) -> int:
        """Ports: alexnet-2012/src/weights.cu:200-205 Weights::incNumUpdates"""
        if self.src is not None:
            return self.src.inc_num_updates()
        n = self._num_updates
        self._num_updates += 1
        return n

    def get_num_updates(self) -> int:
        """Ports: alexnet-2012/src/weights.cu:211-216 Weights::getNumUpdates"""
        if self.src is not None:
            return self.src.get_num_updates()
        return self._num_updates

    def get_eps(self, progress: float) -> float:
        """Ports: alexnet-2012/src/weights.cu:218-220 Weights::getEps"""
        return float(self.schedule.get_rate(progress))

    # ---- gradient accumulation during bprop
    def accumulate(self, grad_sum, num_cases: int, gc: bool, progress: float) -> None:
        """Add one bprop's weight gradient ``grad_sum`` (descent direction, summed over cases).

        With ``use_grad`` the gradient buffer gets ``grad_sum/N`` (the first contribution of an
        update interval overwrites, later ones — shared weights, ``wupdate_freq`` — add); without
        it the increment gets ``mom·inc + ε/N·grad_sum`` directly. A gradient-check pass (``gc``)
        stores the plain sum in ``grad``.

        DIVERGES: a gradient-check pass writes ``grad`` even when ``use_grad`` is false; the
        original wrote the increment buffer (getGrad() is inc there), destroying the momentum of
        fc/local weights.

        Ports: alexnet-2012/src/layer.cu:659-675 FCLayer::bpropWeights
        Ports: alexnet-2012/src/layer.cu:968-990 LocalUnsharedLayer::bpropWeights
        """
        first = self.get_num_updates() == 0
        if gc:
            self.grad = grad_sum if first else self.grad + grad_sum
        elif self.use_grad:
            g = grad_sum * (1.0 / num_cases)
            self.grad = g if first else self.grad + g
        elif device_kernels.on_device(self.inc):   # the same two lines as one launch
            device_kernels.scale_add(self.inc, grad_sum, self.mom if first else None,
                                     self.get_eps(progress) / num_cases)
        else:
            inc = self.inc                       # in place: the owner's buffer, no new matrix
            if first:
                inc *= self.mom
            inc += (self.get_eps(progress) / num_cases) * grad_sum
        self.inc_num_updates()

    # ---- the update
    def update(self, progress: float) -> None:
        """``inc = mom·inc + ε_t·grad − wc·ε_t·W; W += inc`` (owner only, ε > 0 only).

        Ports: alexnet-2012/src/weights.cu:146-198 Weights::update
        Ports: alexnet-2012/src/weights.cu:133-140 superMomUpdate
        """
        if self.src is not None or self.base_rate <= 0:
            return
        # As the original, the rate is drawn at each use: a noisy schedule (noiseStdev > 0) gives the
        # step and the decay independent rates, and no draw happens where neither applies.
        if self.super_eps <= 0 and device_kernels.on_device(self._w):
            # The lines below as one launch (port.device_kernels.sgd_update), rates drawn alike.
            eps = self.get_eps(progress) if self.use_grad else 0.0
            wc_eps = self.wc * self.get_eps(progress) if self.wc > 0 else None
            device_kernels.sgd_update(self._w, self._inc, self._grad if self.use_grad else None,
                                      self.mom, eps, wc_eps)
            self._num_updates = 0
            return
        if self.super_eps <= 0:
            if self.use_grad:                    # in place (momentum and weights are ours)
                self._inc *= self.mom
                self._inc += self.get_eps(progress) * self._grad
        else:
            xp = backend.get_array_module(self._grad)
            if self._grad_avg is None or self._grad_avg.shape != self._grad.shape:
                self._grad_avg = xp.zeros_like(self._grad)
                self._grad2_avg = xp.zeros_like(self._grad)
            self._grad_avg = self.mom * self._grad_avg + (1 - self.mom) * self._grad
            self._grad2_avg = self.mom * self._grad2_avg + (1 - self.mom) * self._grad * self._grad
            # As the original: momentum hard-coded to 0.9, and G (not G²) subtracted.
            self._inc = 0.9 * self._inc + self.get_eps(progress) * self._grad / xp.sqrt(
                self._grad2_avg - self._grad_avg + self.super_eps)
        if self.wc > 0:
            self._inc -= (self.wc * self.get_eps(progress)) * self._w
        self._w += self._inc
        self._num_updates = 0


__all__ = ["Weights"]
