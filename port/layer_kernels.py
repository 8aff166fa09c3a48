"""The element-wise and per-case kernels of the layers: softmax, logistic-regression cost and
gradients (top-1 with its tie rule, top-k), and the element-wise max gradient.

The twin of layer_kernels.cu (its CUDA kernels and their host wrappers), written with array
operations that run on NumPy and CuPy alike. Not here: the convolution, pooling and
normalization kernels (port/cudaconv2/) and the neurons (port/neuron.py).

Layout: every matrix is (D, N), cases last; ``labels`` is (1, N) holding class ids as floats.
Sign: the gradients returned are the original's descent direction −∂L/∂· (port/gradients.py).
"""
from __future__ import annotations

from port.backend import get_array_module
from port.gradients import to_descent


def softmax(x):
    """y = exp(x − max)/Σ exp(x − max) over the D rows of each case.

    Ports: alexnet-2012/src/layer.cu:1020-1031 SoftmaxLayer::fpropActs
    """
    xp = get_array_module(x)
    e = xp.exp(x - x.max(axis=0, keepdims=True))               # (D, N)
    return e / e.sum(axis=0, keepdims=True)                     # (D, N)


def _label_indices(labels, num_cases: int):
    xp = get_array_module(labels)
    return labels.reshape(num_cases).astype(xp.int64)           # (N,)


def _label_and_max_probs(labels, probs):
    """Per case: the label's probability and the largest probability, each (N,)."""
    xp = get_array_module(probs)
    n = probs.shape[1]
    labelp = probs[_label_indices(labels, n), xp.arange(n)]     # (N,)
    return labelp, probs.max(axis=0)                           # (N,), (N,)


def _one_hot(labels, num_out: int, dtype):
    xp = get_array_module(labels)
    n = labels.size
    idx = _label_indices(labels, n)
    return (xp.arange(num_out)[:, None] == idx[None, :]).astype(dtype)   # (C, N)


def compute_softmax_grad(acts, acts_grad):
    """δx_t = y_t·(g_t − Σ_j g_j y_j) for softmax outputs ``acts`` and incoming ``acts_grad``.

    Ports: alexnet-2012/src/layer_kernels.cu:480-498 kSoftmaxGrad
    Ports: alexnet-2012/src/layer_kernels.cu:593-613 computeSoftmaxGrad
    """
    return acts * (acts_grad - (acts_grad * acts).sum(axis=0, keepdims=True))   # (D, N)


def compute_logreg_cost(labels, probs):
    """Per case: log p_label, and the top-1 hit credit with the original's tie rule.

    The credit is 0 when p_label is not the maximum, else 1/(number of classes whose
    probability equals the maximum).

    Returns (label_log_probs (1, N), correct_probs (1, N)).

    Ports: alexnet-2012/src/layer_kernels.cu:387-420 kLogregCost
    Ports: alexnet-2012/src/layer_kernels.cu:650-673 computeLogregCost
    """
    xp = get_array_module(probs)
    n = probs.shape[1]
    labelp, maxp = _label_and_max_probs(labels, probs)          # (N,), (N,)
    num_max = (probs == maxp[None, :]).sum(axis=0)               # (N,)
    correct = xp.where(labelp == maxp, 1.0 / num_max, 0.0).astype(probs.dtype)
    return xp.log(labelp).reshape(1, n), correct.reshape(1, n)


def compute_multi_softmax_cost(labels, probs, set_size: int):
    """As :func:`compute_logreg_cost`, plus the top-``set_size`` credit with partial ties.

    With b classes strictly more probable than the label and e classes as probable as it
    (the label included), slots = set_size − b; credit = 0 if slots ≤ 0, 1 if e ≤ slots,
    else slots/e. The top-1 credit is 1/e when the label is the maximum, else 0.

    Returns (label_log_probs, correct_probs, topk_probs), each (1, N).

    Ports: alexnet-2012/src/layer_kernels.cu:90-119 kMultiSoftmaxCost
    Ports: alexnet-2012/src/layer_kernels.cu:132-169 computeMultiSoftmaxCost
    """
    xp = get_array_module(probs)
    n = probs.shape[1]
    labelp, maxp = _label_and_max_probs(labels, probs)          # (N,), (N,)
    num_bigger = (probs > labelp[None, :]).sum(axis=0)           # (N,)
    num_equal = (probs == labelp[None, :]).sum(axis=0)           # (N,)
    slots = set_size - num_bigger
    topk = xp.where(slots <= 0, 0.0,
                    xp.where(num_equal <= slots, 1.0, slots / num_equal)).astype(probs.dtype)
    correct = xp.where(labelp != maxp, 0.0, 1.0 / num_equal).astype(probs.dtype)
    return xp.log(labelp).reshape(1, n), correct.reshape(1, n), topk.reshape(1, n)


def compute_logreg_grad(labels, probs, coeff: float):
    """coeff·1[y]/p: the descent direction of coeff·(−log p_y) with respect to p.

    Ports: alexnet-2012/src/layer_kernels.cu:430-446 kLogregCostGrad
    Ports: alexnet-2012/src/layer_kernels.cu:675-697 computeLogregGrad
    """
    true_grad = -coeff * _one_hot(labels, probs.shape[0], probs.dtype) / probs   # (C, N)
    return to_descent(true_grad)


def compute_logreg_softmax_grad(labels, probs, coeff: float):
    """coeff·(1[y] − p): the descent direction of coeff·(−log softmax(x)_y) with respect to x.

    Ports: alexnet-2012/src/layer_kernels.cu:456-471 kLogregSoftmaxGrad
    Ports: alexnet-2012/src/layer_kernels.cu:699-720 computeLogregSoftmaxGrad
    """
    true_grad = coeff * (probs - _one_hot(labels, probs.shape[0], probs.dtype))  # (C, N)
    return to_descent(true_grad)


def compute_eltwise_max_grad(acts_grad, inputs, outputs):
    """g·[x == y]: every input equal to the max receives the whole gradient (ties included).

    Ports: alexnet-2012/src/layer_kernels.cu:501-510 kEltwiseMaxGrad
    Ports: alexnet-2012/src/layer_kernels.cu:512-532 computeEltwiseMaxGrad
    """
    return acts_grad * (outputs == inputs)                        # (D, N)


__all__ = ["softmax", "compute_softmax_grad", "compute_logreg_cost", "compute_multi_softmax_cost",
           "compute_logreg_grad", "compute_logreg_softmax_grad", "compute_eltwise_max_grad"]
