"""Shared checks for the cudaconv2 tests: adjointness against central differences (float64)."""
from __future__ import annotations

import numpy as np


def rel_err(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def directional_derivative(f, x, dx, g, h: float = 1e-5) -> float:
    """d/dt ⟨g, f(x + t·dx)⟩ at t = 0 by central differences."""
    return (np.vdot(g, f(x + h * dx)) - np.vdot(g, f(x - h * dx))) / (2 * h)


def check_adjoint(f, undo_g, x, g, rng, tol: float = 1e-6, h: float = 1e-5) -> float:
    """⟨undo(g), δ⟩ against the numeric directional derivative of ⟨g, f⟩; returns the error."""
    dx = rng.standard_normal(x.shape)
    numeric = directional_derivative(f, x, dx, g, h)
    analytic = float(np.vdot(undo_g, dx))
    err = rel_err(analytic, numeric)
    assert err < tol, f"adjoint mismatch: analytic {analytic!r} vs numeric {numeric!r} (rel {err:.2e})"
    return err
