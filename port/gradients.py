"""The one place that states the original's sign convention for gradients.

The 2012 code never moves a true gradient ∂L/∂· backwards. Every back-propagated matrix, every
weight "gradient" buffer and every increment holds the *descent direction* −∂L/∂·:

- the logistic-regression cost over a softmax sends ``coeff·(onehot − p)``, which is −∂L/∂x;
- the sum-of-squares cost sends ``−2·coeff·x``;
- the weight update is ``W += inc`` with ``inc = mom·inc + ε·grad`` (no minus sign anywhere);
- the gradient checker compares its numerical derivative with ``−grad/N``.

The port keeps that convention everywhere inside ``port.layers``, ``port.weights`` and
``port.model`` so that each line can be read beside the line it ports. Whenever a true gradient
enters (a cost's derivative written from its formula) or leaves (the gradient check, the tests
against PyTorch), it goes through :func:`to_descent` / :func:`from_descent` below, and nowhere
else is a gradient negated.

Ports: alexnet-2012/src/layer_kernels.cu:456-471 kLogregSoftmaxGrad
Ports: alexnet-2012/src/convnet.cu:392-394 gradCPU
"""
from __future__ import annotations


def to_descent(true_grad):
    """The original's back-propagated quantity −∂L/∂· from a true gradient ∂L/∂·."""
    return -true_grad


def from_descent(descent):
    """The true gradient ∂L/∂· from the original's back-propagated quantity −∂L/∂·."""
    return -descent


__all__ = ["to_descent", "from_descent"]
