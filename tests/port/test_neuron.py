"""The 12 neurons: values, derivatives as the original codes them, registry and factory."""
from __future__ import annotations

import numpy as np
import pytest

from port import neuron as nr


def finite_diff(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


PARAMS = {"ident": (), "logistic": (), "relu": (), "brelu": (2.5,), "abs": (), "tanh": (1.7159, 0.6666),
          "drelu": (0.8,), "softrelu": (), "square": (), "sqrt": (), "linear": (1.5, -0.3)}


def points(kind, rng):
    """Inputs away from each neuron's kinks (0 for relu/abs/brelu, a for brelu, 4 for softrelu)."""
    x = rng.uniform(-6, 6, size=(7, 40))
    if kind == "sqrt":
        x = np.abs(x) + 0.1
    for kink in (0.0, 2.5, 4.0):
        x = np.where(np.abs(x - kink) < 1e-3, x + 0.01, x)
    return x


@pytest.mark.parametrize("kind", sorted(PARAMS))
def test_derivative_matches_finite_differences(kind):
    rng = np.random.default_rng(40)
    n = nr.NEURONS[kind](*PARAMS[kind])
    x = points(kind, rng)
    y = n.activate(x)
    g = rng.standard_normal(x.shape)
    numeric = g * finite_diff(n.activate, x)
    analytic = n.compute_input_grad(g, x, y)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_values():
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0, 5.0]])
    assert nr.ReluNeuron().activate(x).tolist() == [[0, 0, 0, 0.5, 3, 5]]
    assert nr.BoundedReluNeuron(2.0).activate(x).tolist() == [[0, 0, 0, 0.5, 2, 2]]
    np.testing.assert_allclose(nr.TanhNeuron(1.7159, 0.6666).activate(x), 1.7159 * np.tanh(0.6666 * x))
    np.testing.assert_allclose(nr.DoubleReluNeuron(0.8).activate(x), x - 0.8 * np.tanh(x / 0.8))
    np.testing.assert_allclose(nr.LogisticNeuron().activate(x), 1 / (1 + np.exp(-x)))
    sr = nr.SoftReluNeuron().activate(x)
    assert sr[0, 5] == 5.0                                   # x > 4: the identity branch
    np.testing.assert_allclose(sr[0, :5], np.log1p(np.exp(x[0, :5])))
    np.testing.assert_allclose(nr.LinearNeuron(2, 1).activate(x), 2 * x + 1)
    assert nr.Neuron().activate(x) is not x


def test_derivatives_as_coded_at_the_kinks():
    x = np.array([[0.0, -1.0, 2.0]])
    g = np.ones_like(x)
    # abs: sign(x) with 0 → −1 (unitInput > 0 ? 1 : −1)
    assert nr.AbsNeuron().compute_input_grad(g, x, abs(x)).tolist() == [[-1, -1, 1]]
    # relu and brelu read the outputs: [y > 0], [0 < y < a]
    assert nr.ReluNeuron().compute_input_grad(g, x, np.array([[0.0, 0.0, 2.0]])).tolist() == [[0, 0, 1]]
    b = nr.BoundedReluNeuron(2.0)
    assert b.compute_input_grad(g, x, b.activate(x)).tolist() == [[0, 0, 0]]
    # softrelu: exactly g above 4, the logistic of x at or below
    s = nr.SoftReluNeuron()
    xs = np.array([[4.0, 4.5]])
    assert s.compute_input_grad(np.ones_like(xs), xs, s.activate(xs))[0].tolist() == \
        pytest.approx([np.exp(4) / (1 + np.exp(4)), 1.0])
    # sqrt and tanh use the outputs
    assert nr.SqrtNeuron().compute_input_grad(g[:, :1], None, np.array([[2.0]]))[0, 0] == 0.25
    t = nr.TanhNeuron(2.0, 0.5)
    assert t.compute_input_grad(g[:, :1], None, np.array([[1.0]]))[0, 0] == pytest.approx(0.5 * (2 - 0.5))


def test_noisy_relu_noise_has_the_rectified_input_as_standard_deviation():
    n = nr.NoisyReluNeuron(np.random.default_rng(41))
    x = np.full((200, 500), 2.0)
    y = n.activate(x)
    # y = max(0, 2 + 2ε): mean and std of the rectified N(2, 2²)
    from math import erf, exp, pi, sqrt
    mu, s = 2.0, 2.0
    phi = exp(-0.5 * (mu / s) ** 2) / sqrt(2 * pi)
    Phi = 0.5 * (1 + erf(mu / s / sqrt(2)))
    assert y.mean() == pytest.approx(mu * Phi + s * phi, rel=0.01)
    assert (y == 0).mean() == pytest.approx(1 - Phi, abs=0.01)
    assert (n.activate(-x) == 0).all()             # r = 0 means no noise
    g = np.ones_like(y)
    np.testing.assert_array_equal(n.compute_input_grad(g, x, y), (y > 0).astype(float))
    again = nr.NoisyReluNeuron(np.random.default_rng(41)).activate(x)
    np.testing.assert_array_equal(again, y)         # the generator makes it reproducible


def test_float32_in_float32_out():
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    for kind, params in PARAMS.items():
        n = nr.NEURONS[kind](*params)
        xi = np.abs(x) + 0.1 if kind == "sqrt" else x
        y = n.activate(xi)
        assert y.dtype == np.float32, kind
        assert n.compute_input_grad(np.ones_like(xi), xi, y).dtype == np.float32, kind


def test_registry_and_factory():
    assert set(nr.NEURONS) == {"ident", "logistic", "relu", "nrelu", "brelu", "abs", "tanh", "drelu",
                               "softrelu", "square", "sqrt", "linear"}
    t = nr.make_neuron({"type": "tanh", "params": {"a": 1.7159, "b": 0.6666}})
    assert isinstance(t, nr.TanhNeuron) and (t.a, t.b) == (1.7159, 0.6666)
    assert isinstance(nr.make_neuron({"type": "relu", "params": {}}), nr.ReluNeuron)
    rng = np.random.default_rng(0)
    assert nr.make_neuron({"type": "nrelu", "params": {}}, rng=rng).rng is rng
    assert nr.make_neuron({"type": "brelu", "params": {"a": 3}}).a == 3.0
    with pytest.raises(ValueError, match="unknown neuron type 'abstanh'"):
        nr.make_neuron({"type": "abstanh", "params": {"a": 1, "b": 1}})
    with pytest.raises(ValueError, match="needs parameter"):
        nr.make_neuron({"type": "linear", "params": {"a": 1}})


def test_uses_flags_mirror_the_parser(alexnet_2012):
    """layer.py's NeuronParser flags say which of inputs/acts each derivative reads; the port's
    flags follow neuron.cuh, which disagrees with the parser for softrelu only."""
    text = (alexnet_2012 / "layer.py").read_text()
    for kind, cls in nr.NEURONS.items():
        for line in text.splitlines():
            if f"Parser('{kind}" in line and "uses_acts" in line:
                acts, inputs = cls.uses_acts, cls.uses_inputs
                if kind == "softrelu":   # the parser says acts; the gradient reads the inputs
                    acts, inputs = True, False
                assert f"uses_acts={acts}" in line, kind
                assert f"uses_inputs={inputs}" in line, kind
                break
        else:
            pytest.fail(f"no NeuronParser line for {kind}")
