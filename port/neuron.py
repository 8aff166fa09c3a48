"""The 12 neurons of the 2012 release (``include/neuron.cuh``, ``src/neuron.cu``) on NumPy/CuPy.

A neuron is an elementwise f applied to a (D, N) matrix. ``activate(x)`` returns f(x);
``compute_input_grad(acts_grad, inputs, acts)`` returns the gradient sent to the inputs, coded
exactly as the original codes the derivative: from the outputs ``acts`` for the neurons that
keep them (relu, logistic, tanh, ...), from the ``inputs`` for those that need them (abs,
softrelu, square, drelu). Both arguments are always passed; each neuron uses the one the original
uses (``uses_acts`` / ``uses_inputs`` mirror layer.py's NeuronParser flags). ``acts_grad`` is
the original's back-propagated quantity (−∂L/∂y); the formulas are linear in it, so the sign
convention passes through unchanged.

``NEURONS`` maps the cfg type string ('relu', 'tanh', ...) to the class, and
:func:`make_neuron` builds one from the parser's ``{'type', 'params'}`` dict
(alexnet-2012/src/neuron.cu:32-85).

Not here: the in-place ``add`` variants (callers accumulate), the fast-math intrinsics
(``__expf``, ``__fdividef``): the port uses exact exp/division, so float32 results differ from
the GPU's in the last bits.
"""
from __future__ import annotations

import numpy as np

from port.backend import get_array_module, standard_normal


class Neuron:
    """f(x) = x (cfg ``ident``).

    Ports: alexnet-2012/include/neuron.cuh:64-105 Neuron
    """
    type = "ident"
    uses_acts = False
    uses_inputs = False

    def activate(self, x):
        return x.copy()

    def compute_input_grad(self, acts_grad, inputs, acts):
        return acts_grad.copy()

    def __repr__(self) -> str:
        """The class and its parameters, e.g. ``TanhNeuron(a=1.7159, b=0.6666)``."""
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class LogisticNeuron(Neuron):
    """f(x) = 1 / (1 + e^−x); gradient g·y·(1 − y).

    Ports: alexnet-2012/include/neuron.cuh:114-137 LogisticNeuron
    """
    type = "logistic"
    uses_acts = True

    def activate(self, x):
        xp = get_array_module(x)
        return 1 / (1 + xp.exp(-x))

    def compute_input_grad(self, acts_grad, inputs, acts):
        return acts_grad * acts * (1 - acts)


class ReluNeuron(Neuron):
    """f(x) = max(0, x); gradient g·[y > 0].

    Ports: alexnet-2012/include/neuron.cuh:146-176 ReluNeuron
    """
    type = "relu"
    uses_acts = True

    def activate(self, x):
        xp = get_array_module(x)
        return xp.maximum(x, 0)          # one pass; NaN stays NaN as in x < 0 ? 0 : x

    def compute_input_grad(self, acts_grad, inputs, acts):
        return acts_grad * (acts > 0)


class NoisyReluNeuron(ReluNeuron):
    """r = max(0, x); y = max(0, r + r·ε), ε ~ N(0, 1) per element; gradient g·[y > 0].

    The noise's standard deviation is r (``addGaussianNoise(outputs, var=false)``, so
    r·r·ε would be the variance form), although the banner says variance; and it is added at
    test time too: the neuron has no notion of pass type. ε is drawn on the activations' device
    (``port.backend.standard_normal``), keyed by one draw per call from ``rng``, a NumPy
    ``Generator`` (the model's), default a fresh one.

    Ports: alexnet-2012/include/neuron.cuh:185-195 NoisyReluNeuron
    Ports: cuda-convnet-r561/include/nvmatrix/nvmatrix_kernels.cuh:631-637 AddGaussianBinaryRandomizer
    """
    type = "nrelu"

    def __init__(self, rng=None):
        self.rng = rng

    def activate(self, x):
        if self.rng is None:
            self.rng = np.random.default_rng()
        r = super().activate(x)
        noise = standard_normal(self.rng, r.shape, r.dtype, get_array_module(r))   # on r's device
        return super().activate(r + r * noise)


class BoundedReluNeuron(Neuron):
    """f(x) = min(a, max(0, x)); gradient g·[0 < y < a].

    Ports: alexnet-2012/include/neuron.cuh:204-244 BoundedReluNeuron
    """
    type = "brelu"
    uses_acts = True

    def __init__(self, a: float):
        self.a = float(a)

    def activate(self, x):
        xp = get_array_module(x)
        return xp.where(x < 0, 0, xp.where(x > self.a, self.a, x)).astype(x.dtype, copy=False)

    def compute_input_grad(self, acts_grad, inputs, acts):
        return acts_grad * ((acts > 0) & (acts < self.a))


class AbsNeuron(Neuron):
    """f(x) = |x|; gradient g·(x > 0 ? 1 : −1), so x = 0 gets −1.

    Ports: alexnet-2012/include/neuron.cuh:253-277 AbsNeuron
    """
    type = "abs"
    uses_inputs = True

    def activate(self, x):
        return abs(x)

    def compute_input_grad(self, acts_grad, inputs, acts):
        xp = get_array_module(inputs)
        return acts_grad * xp.where(inputs > 0, 1, -1).astype(acts_grad.dtype, copy=False)


class TanhNeuron(Neuron):
    """f(x) = a·tanh(b·x), computed as a·(2/(1 + e^(−2bx)) − 1); gradient g·b·(a − y²/a).

    Ports: alexnet-2012/include/neuron.cuh:286-328 TanhNeuron
    """
    type = "tanh"
    uses_acts = True

    def __init__(self, a: float, b: float):
        self.a, self.b = float(a), float(b)

    def activate(self, x):
        xp = get_array_module(x)
        return self.a * (2 / (1 + xp.exp(x * (-2 * self.b))) - 1)

    def compute_input_grad(self, acts_grad, inputs, acts):
        return acts_grad * self.b * (self.a - acts * acts / self.a)


class DoubleReluNeuron(Neuron):
    """f(x) = x − a·tanh(x/a); gradient g·tanh²(x/a), from the inputs.

    Ports: alexnet-2012/include/neuron.cuh:337-379 DoubleReluNeuron
    """
    type = "drelu"
    uses_inputs = True

    def __init__(self, a: float):
        self.a = float(a)

    def _tanh(self, x):
        xp = get_array_module(x)
        return 2 / (1 + xp.exp((-2 / self.a) * x)) - 1

    def activate(self, x):
        return x - self.a * self._tanh(x)

    def compute_input_grad(self, acts_grad, inputs, acts):
        t = self._tanh(inputs)
        return acts_grad * (t * t)


class SoftReluNeuron(Neuron):
    """f(x) = x if x > 4 else log(1 + e^x); gradient g if x > 4 else g·e^x/(1 + e^x).

    The gradient reads the inputs (alexnet-2012/include/neuron.cuh:396), although layer.py's parser declares
    softrelu ``uses_acts=True, uses_inputs=False``; ``uses_inputs`` here follows the kernel.

    Ports: alexnet-2012/include/neuron.cuh:388-425 SoftReluNeuron
    """
    type = "softrelu"
    uses_inputs = True

    def activate(self, x):
        xp = get_array_module(x)
        return xp.where(x > 4, x, xp.log(1 + xp.exp(xp.minimum(x, 4)))).astype(x.dtype, copy=False)

    def compute_input_grad(self, acts_grad, inputs, acts):
        xp = get_array_module(inputs)
        f = xp.exp(xp.minimum(inputs, 4))
        return xp.where(inputs > 4, acts_grad, acts_grad * (f / (1 + f))).astype(acts_grad.dtype,
                                                                                  copy=False)


class SquareNeuron(Neuron):
    """f(x) = x²; gradient g·2x.

    Ports: alexnet-2012/include/neuron.cuh:434-458 SquareNeuron
    """
    type = "square"
    uses_inputs = True

    def activate(self, x):
        return x * x

    def compute_input_grad(self, acts_grad, inputs, acts):
        return acts_grad * 2 * inputs


class SqrtNeuron(Neuron):
    """f(x) = √x; gradient g/(2y), from the outputs.

    Ports: alexnet-2012/include/neuron.cuh:467-490 SqrtNeuron
    """
    type = "sqrt"
    uses_acts = True

    def activate(self, x):
        xp = get_array_module(x)
        return xp.sqrt(x)

    def compute_input_grad(self, acts_grad, inputs, acts):
        return acts_grad / (2 * acts)


class LinearNeuron(Neuron):
    """f(x) = a·x + b; gradient g·a.

    Ports: alexnet-2012/include/neuron.cuh:499-527 LinearNeuron
    """
    type = "linear"
    uses_acts = True

    def __init__(self, a: float, b: float):
        self.a, self.b = float(a), float(b)

    def activate(self, x):
        return self.a * x + self.b

    def compute_input_grad(self, acts_grad, inputs, acts):
        return self.a * acts_grad


NEURONS: dict[str, type[Neuron]] = {
    cls.type: cls
    for cls in (Neuron, LogisticNeuron, ReluNeuron, NoisyReluNeuron, BoundedReluNeuron, AbsNeuron,
                TanhNeuron, DoubleReluNeuron, SoftReluNeuron, SquareNeuron, SqrtNeuron,
                LinearNeuron)
}

# The parameters each type reads from the parser's 'params' dict, in constructor order.
NEURON_PARAMS: dict[str, tuple[str, ...]] = {
    "brelu": ("a",), "drelu": ("a",), "tanh": ("a", "b"), "linear": ("a", "b"),
}


def make_neuron(neuron_dict: dict, rng=None) -> Neuron:
    """The neuron for a parser dict ``{'type': 'tanh', 'params': {'a': 1.7159, 'b': 0.6666}}``.

    ``rng`` is handed to ``nrelu`` (the only neuron that draws random numbers).
    Raises ``ValueError`` for an unknown type or a missing parameter.

    Ports: alexnet-2012/src/neuron.cu:32-85 Neuron::makeNeuron
    """
    kind = neuron_dict.get("type")
    if kind not in NEURONS:
        raise ValueError(f"unknown neuron type {kind!r} (known: {', '.join(sorted(NEURONS))})")
    params = neuron_dict.get("params") or {}
    names = NEURON_PARAMS.get(kind, ())
    missing = [n for n in names if n not in params]
    if missing:
        raise ValueError(f"neuron {kind!r} needs parameter(s) {', '.join(missing)}, "
                         f"got {sorted(params)}")
    if kind == "nrelu":
        return NoisyReluNeuron(rng)
    return NEURONS[kind](*(float(params[n]) for n in names))
