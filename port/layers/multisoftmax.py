"""The multi-softmax cost ``cost.msm``: a distribution over the k-subsets S of the C classes with
P(S) ∝ exp(Σ_{i∈S} Eᵢ), k = ``setSize``; the net is scored on the marginal P(label ∈ S).

The twin of multisoftmax.cpp (MultiSoftmaxCPU_T_logspace, run on the host in ``threads``
threads) and of MultiSoftmaxCostLayer (layer.cu). The marginals come from the forward and
backward lattices of the elementary symmetric sums in log space:
F[i][s] = log e_s(E₀…E_{i−1}), B[i][s] = log e_s(E_i…E_{C−1}), and
P(i ∈ S) = exp(Eᵢ + log Σ_s exp(F[i][s] + B[i+1][k−1−s]) − log e_k(E)).

Layout: labels (1, N) class ids as floats, energies and probabilities (C, N), cases last. The
gradient sent is the descent direction −∂L/∂E of L = −log P(label ∈ S):
P(i ∈ S | label ∈ S) − P(i ∈ S) (port/gradients.py).
"""
from __future__ import annotations

import numpy as np

from port.backend import get_array_module, to_device, to_host
from port.layers.cost import CostLayer, device_total

NEG_INF = -np.inf


def _logsumexp_pairs(terms):
    """log Σ exp over the first axis of a (K, N) float64 array (−inf for an empty sum)."""
    m = terms.max(axis=0)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(np.isfinite(m), safe + np.log(np.exp(terms - safe).sum(axis=0)), NEG_INF)


def subset_marginals(energies: np.ndarray, size: int, fixed: np.ndarray | None = None) -> np.ndarray:
    """P(i ∈ S) for k-subsets with P(S) ∝ exp(Σ_{i∈S} Eᵢ), per case; with ``fixed`` (N,) class
    ids, the marginals given that the fixed class is in S.

    ``energies`` is (N, C) float64 (cases first, as the original's transposed matrix).

    DIVERGES: log-add is exact here; the original cuts it off (M when the difference exceeds 15,
    M + e^−diff when it exceeds 5: up to 2·10⁻⁵ in a log).

    Ports: alexnet-2012/src/multisoftmax.cpp:29-85 MultiSoftmaxCPU_T_logspace
    Ports: alexnet-2012/src/multisoftmax.cpp:9-19 logadd
    """
    n, C = energies.shape
    e = energies.astype(np.float64).copy()
    k = size
    if fixed is not None:
        fx = fixed.astype(np.int64)
        e[np.arange(n), fx] = NEG_INF          # the fixed class is in S: the rest is a (k−1)-subset
        k = size - 1
    # backward lattice B[i][s] = log e_s(E_i … E_{C−1}), i = C … 0
    B = np.full((C + 1, k + 1, n), NEG_INF)
    B[C, 0] = 0.0
    for i in range(C - 1, -1, -1):
        B[i, 0] = 0.0
        B[i, 1:] = np.logaddexp(B[i + 1, :-1] + e[:, i], B[i + 1, 1:])
    log_z = B[0, k]                                                   # (N,)
    probs = np.zeros((n, C))
    if k > 0:
        F = np.full((k, n), NEG_INF)           # F[s] = log e_s(E_0 … E_{i−1}), s < k
        F[0] = 0.0
        for i in range(C):
            # e_{k−1} of the classes other than i = Σ_s F[s]·B[i+1][k−1−s]
            rest = _logsumexp_pairs(F + B[i + 1, k - 1::-1][:k])
            with np.errstate(invalid="ignore"):
                probs[:, i] = np.exp(e[:, i] + rest - log_z)
            F[1:] = np.logaddexp(F[:-1] + e[:, i], F[1:])
    probs = np.nan_to_num(probs, nan=0.0)
    if fixed is not None:
        probs[np.arange(n), fx] = 1.0
    return probs


class MultiSoftmaxCostLayer(CostLayer):
    """Inputs (labels (1, N), energies (C, N)). Output: the marginals (C, N). Values:
    [−Σ log P(label ∈ S), N − top-1 credit, N − top-setSize credit], ranked by the energies.

    Ports: alexnet-2012/src/layer.cu:1865-1875 MultiSoftmaxCostLayer::MultiSoftmaxCostLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.set_size = int(dic["setSize"])
        self.num_out = int(dic["numOut"])

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1877-1900 MultiSoftmaxCostLayer::fpropActs"""
        if inp_idx != 0:
            return
        labels, energies = self.inputs[0], self.inputs[1]
        e_t = to_host(energies).T.astype(np.float64)                  # (N, C)
        self.energies_t = e_t - e_t.max(axis=1, keepdims=True)
        probs = subset_marginals(self.energies_t, self.set_size)     # (N, C)
        self.probs_t = probs
        self.acts = to_device(probs.T.astype(energies.dtype))         # (C, N)
        self.compute_cost()

    def compute_cost(self):
        """Ports: alexnet-2012/src/layer.cu:1902-1912 MultiSoftmaxCostLayer::computeCost
        Ports: alexnet-2012/src/layer_kernels.cu:55-82 kMultiSoftmaxCost_engs
        """
        labels, energies = self.inputs[0], self.inputs[1]
        xp = get_array_module(energies)
        n = energies.shape[1]
        idx = labels.reshape(n).astype(xp.int64)
        cols = xp.arange(n)
        label_p = self.acts[idx, cols]
        label_e = energies[idx, cols]
        bigger = (energies > label_e[None, :]).sum(axis=0)
        equal = (energies == label_e[None, :]).sum(axis=0)
        slots = self.set_size - bigger
        top = xp.where(slots <= 0, 0.0, xp.where(equal <= slots, 1.0, slots / xp.maximum(equal, 1)))
        correct = xp.where(label_e != energies.max(axis=0), 0.0, 1.0 / equal)
        self.costv = [-device_total(xp.log(label_p).sum()), n - device_total(correct.sum()), n - device_total(top.sum())]

    def bprop_acts(self, v, inp_idx, pass_type):
        """coeff·(P(i ∈ S | label ∈ S) − P(i ∈ S)) to the energies.

        Ports: alexnet-2012/src/layer.cu:1914-1935 MultiSoftmaxCostLayer::bpropActs
        """
        if inp_idx != 1:
            return None
        labels = to_host(self.inputs[0]).reshape(-1)
        cond = subset_marginals(self.energies_t, self.set_size, fixed=labels)      # (N, C)
        grad = cond - self.probs_t
        return to_device((self.coeff * grad.T).astype(self.inputs[1].dtype))       # (C, N)


__all__ = ["MultiSoftmaxCostLayer", "subset_marginals"]
