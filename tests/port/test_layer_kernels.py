"""port.layer_kernels on hand-made cases: the top-1 tie rule, top-k partial ties, the gradients'
sign convention, and the element-wise max gradient with ties."""
from __future__ import annotations

import numpy as np

from port import layer_kernels as lk
from port.gradients import from_descent, to_descent


def test_sign_helpers_are_inverse_negations():
    g = np.array([[1.0, -2.0]])
    assert np.array_equal(to_descent(g), -g)
    assert np.array_equal(from_descent(to_descent(g)), g)


def test_softmax_columns_sum_to_one_and_survive_large_inputs():
    x = np.array([[1000.0, 0.0], [1000.0, 1.0], [999.0, 2.0]], dtype=np.float32)
    y = lk.softmax(x)
    assert np.allclose(y.sum(axis=0), 1.0)
    assert np.isfinite(y).all()
    assert np.isclose(y[0, 0], y[1, 0]) and y[2, 0] < y[0, 0]


def test_logreg_top1_tie_rule():
    # case 0: label 1 ties with class 0 for the max → 1/2; case 1: three-way tie → 1/3;
    # case 2: label not the max → 0; case 3: unique max → 1.
    probs = np.array([[0.4, 0.3, 0.6, 0.1],
                      [0.4, 0.3, 0.3, 0.8],
                      [0.2, 0.3, 0.1, 0.1]], dtype=np.float64)
    labels = np.array([[1, 2, 1, 1]], dtype=np.float64)
    log_probs, correct = lk.compute_logreg_cost(labels, probs)
    assert np.allclose(correct, [[0.5, 1 / 3, 0.0, 1.0]])
    assert np.allclose(log_probs, np.log([[0.4, 0.3, 0.3, 0.8]]))


def test_multi_softmax_topk_partial_ties():
    # 5 classes, top-2. case 0: label is 3rd → 0; case 1: label 2nd → 1;
    # case 2: one bigger, label tied with 2 others (3 equal, 1 slot) → 1/3;
    # case 3: all 5 classes tie (5 equal, 2 slots) → 2/5, top-1 → 1/5.
    probs = np.array([[0.5, 0.5, 0.4, 0.2],
                      [0.3, 0.3, 0.2, 0.2],
                      [0.1, 0.1, 0.2, 0.2],
                      [0.05, 0.05, 0.2, 0.2],
                      [0.05, 0.05, 0.0, 0.2]])
    labels = np.array([[2, 1, 3, 4]], dtype=np.float64)
    _, correct, topk = lk.compute_multi_softmax_cost(labels, probs, 2)
    assert np.allclose(topk, [[0.0, 1.0, 1 / 3, 0.4]])
    assert np.allclose(correct, [[0.0, 0.0, 0.0, 0.2]])


def test_logreg_gradients_are_descent_directions():
    probs = lk.softmax(np.array([[0.1, 2.0], [1.0, -1.0], [0.3, 0.0]]))
    labels = np.array([[2, 0]], dtype=np.float64)
    onehot = np.array([[0, 1], [0, 0], [1, 0]], dtype=np.float64)
    assert np.allclose(lk.compute_logreg_softmax_grad(labels, probs, 0.5), 0.5 * (onehot - probs))
    assert np.allclose(lk.compute_logreg_grad(labels, probs, 2.0), 2.0 * onehot / probs)


def test_softmax_grad_matches_its_jacobian():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    g = rng.standard_normal((4, 3))
    y = lk.softmax(x)
    for n in range(3):
        jac = np.diag(y[:, n]) - np.outer(y[:, n], y[:, n])
        assert np.allclose(lk.compute_softmax_grad(y, g)[:, n], jac @ g[:, n])


def test_eltwise_max_grad_sends_to_every_tied_input():
    a = np.array([[1.0, 2.0, 3.0]])
    b = np.array([[1.0, 5.0, 0.0]])
    y = np.maximum(a, b)
    g = np.array([[10.0, 20.0, 30.0]])
    assert np.array_equal(lk.compute_eltwise_max_grad(g, a, y), [[10.0, 0.0, 30.0]])
    assert np.array_equal(lk.compute_eltwise_max_grad(g, b, y), [[10.0, 20.0, 0.0]])
