"""A PyTorch twin of a net parsed from an original cfg pair (benchmarks and tests only).

:class:`TorchNet` takes the layer dicts that ``port.layer.parse_layers`` returns and builds the
same network in PyTorch: the same layers in the same order, the same shapes and the same initial
weights (copied from the dicts), and an SGD optimizer whose groups carry each matrix's
ε, momentum and weight decay, so one training step of the twin does the work of one
``ConvNet.start_batch`` minibatch (forward, cost, backward, update). torch is imported here and
nowhere in port/: it is the port's benchmark peer and test oracle, never its dependency.

Layout: torch runs NCHW, cases first; :func:`to_torch_input` turns the port's (D, N) data matrix
into (N, C, H, W) (or (N, D)), :func:`to_port_layout` turns a twin's activation back into
(D, N), so every layer's output can be compared with the port's.

Translated: data, conv (groups, padding and the ceil overhang of the module grid), local
(one group), fc (several inputs), pool max/avg (start 0, windows clipped to the image as
cudaconv2 clips them), rnorm, cmrnorm (not blocked), neuron (the common types), softmax,
cost.logreg (cross entropy on the softmax's input when the softmax feeds only the cost, as a
torch user writes it), hs (dropout without rescaling), eltsum, concat. Anything else raises
NotImplementedError naming the layer.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PASS_TRAIN, PASS_TEST = "train", "test"


def _t(a) -> torch.Tensor:
    return torch.tensor(np.ascontiguousarray(np.asarray(a, dtype=np.float32)))


def _neuron(spec: dict):
    """The elementwise function of a neuron dict {'type', 'params'}."""
    kind, p = spec["type"], spec.get("params") or {}
    if kind == "ident":
        return lambda x: x
    if kind == "relu":
        return F.relu
    if kind == "logistic":
        return torch.sigmoid
    if kind == "tanh":
        a, b = float(p["a"]), float(p["b"])
        return lambda x: a * torch.tanh(b * x)
    if kind == "abs":
        return torch.abs
    if kind == "square":
        return lambda x: x * x
    if kind == "sqrt":
        return torch.sqrt
    if kind == "brelu":
        a = float(p["a"])
        return lambda x: torch.clamp(x, 0, a)
    if kind == "linear":
        a, b = float(p["a"]), float(p["b"])
        return lambda x: a * x + b
    if kind == "softrelu":
        return lambda x: torch.where(x > 4, x, F.softplus(torch.clamp(x, max=4)))
    raise NotImplementedError(f"neuron {kind!r} has no torch twin here")


class TorchNet(nn.Module):
    """The twin of ``port.model.ConvNet(layers)``; ``layers`` is parse_layers' result.

    ``forward(data, mode)`` takes one tensor per data layer index (images NCHW, labels (N,)
    long) and returns (the scalar objective, name → output); the objective is
    Σ coeff·(Σ_cases −log p_label)/N, whose gradient is the port's weight gradient.
    """

    def __init__(self, layers: dict, data_shapes: dict[int, tuple] | None = None):
        super().__init__()
        self.layers = layers
        self.data_shapes = dict(data_shapes or {})
        self.params = nn.ParameterDict()
        self.groups: list[dict] = []      # SGD parameter groups (ε > 0 only)
        self.order = self._topological_order()
        self._consumers = {n: [m for m in layers if n in (layers[m].get("inputs") or [])]
                           for n in layers}
        for name in self.order:
            self._make_params(name, layers[name])
        # Inputs whose shapes follow from a consumer (data images): (C, H, W) per data layer.
        for name, dic in layers.items():
            if dic["type"] in ("conv", "local"):
                for i, inp in enumerate(dic["inputs"]):
                    if layers[inp]["type"] == "data":
                        s = dic["imgSize"][i]
                        self.data_shapes.setdefault(layers[inp]["dataIdx"], (dic["channels"][i], s, s))

    # ---- construction
    def _topological_order(self) -> list[str]:
        order, done, pending = [], set(), list(self.layers)
        while pending:
            rest = [n for n in pending if not all(p in done for p in self.layers[n].get("inputs") or [])]
            for n in pending:
                if n not in rest:
                    order.append(n)
                    done.add(n)
            if len(rest) == len(pending):
                raise ValueError("the layer graph has a cycle")
            pending = rest
        return order

    def _param(self, key: str, value, eps: float, mom: float, wc: float, shape=None) -> None:
        t = _t(value)
        if shape is not None:
            t = t.reshape(shape)
        p = nn.Parameter(t.contiguous(), requires_grad=eps > 0)
        self.params[key] = p
        if eps > 0:
            self.groups.append({"params": [p], "lr": eps, "momentum": mom, "weight_decay": wc})

    def _make_params(self, name: str, dic: dict) -> None:
        t = dic["type"]
        if t not in ("conv", "local", "fc"):
            return
        for i in range(len(dic["inputs"])):
            if dic.get("weightSourceLayers", [""] * 9)[i]:
                raise NotImplementedError(f"layer '{name}': shared weights have no torch twin here")
            w = np.asarray(dic["weights"][i], dtype=np.float32)
            eps, mom, wc = float(dic["epsW"][i]), float(dic["momW"][i]), float(dic["wc"][i])
            if t == "conv":
                if dic["randSparse"][i]:
                    raise NotImplementedError(f"layer '{name}': randSparse has no torch twin here")
                fc, fs = dic["filterChannels"][i], dic["filterSize"][i]
                # (fc·fs², F) → (F, fc, fs, fs)
                self._param(f"{name}:w{i}", w.T, eps, mom, wc, (dic["filters"], fc, fs, fs))
            elif t == "local":
                if dic["groups"][i] != 1 or dic["randSparse"][i]:
                    raise NotImplementedError(f"layer '{name}': grouped local has no torch twin here")
                m = dic["modules"]
                self._param(f"{name}:w{i}", w, eps, mom, wc, (m, w.shape[0] // m, w.shape[1]))
            else:
                self._param(f"{name}:w{i}", w, eps, mom, wc)                      # (D_i, out)
        b = np.asarray(dic["biases"], dtype=np.float32).reshape(-1)
        self._param(f"{name}:b", b, float(dic["epsB"]), float(dic["momB"]), 0.0)

    def optimizer(self) -> torch.optim.Optimizer:
        """SGD with each matrix's ε, momentum and weight decay: inc = mom·inc − ε·(∇ + wc·W)."""
        if not self.groups:
            return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)
        return torch.optim.SGD(self.groups, lr=self.groups[0]["lr"], foreach=True)

    # ---- layers
    def _conv_geometry(self, dic, i):
        p = -dic["padding"][i]
        fs, s, m, img = dic["filterSize"][i], dic["stride"][i], dic["modulesX"], dic["imgSize"][i]
        right = (m - 1) * s + fs - p - img           # the ceil overhang of the last module
        return p, right, fs, s, m

    def _conv(self, name, dic, xs):
        out = None
        for i, x in enumerate(xs):
            p, right, fs, s, m = self._conv_geometry(dic, i)
            w = self.params[f"{name}:w{i}"]
            if right == p:
                y = F.conv2d(x, w, stride=s, padding=p, groups=dic["groups"][i])
            else:
                y = F.conv2d(F.pad(x, (p, right, p, right)), w, stride=s, groups=dic["groups"][i])
            out = y if out is None else out + y
        b = self.params[f"{name}:b"]
        if dic.get("sharedBiases", True):
            return out + b.view(1, -1, 1, 1)
        return out + b.view(1, dic["filters"], dic["modulesX"], dic["modulesX"])

    def _local(self, name, dic, xs):
        out = None
        for i, x in enumerate(xs):
            p, right, fs, s, m = self._conv_geometry(dic, i)
            cols = F.unfold(F.pad(x, (p, right, p, right)), fs, stride=s)     # (N, C·fs², M)
            y = torch.einsum("nkm,mkf->nfm", cols, self.params[f"{name}:w{i}"])
            out = y if out is None else out + y
        out = out + self.params[f"{name}:b"].view(1, dic["filters"], -1)
        return out.reshape(x.shape[0], dic["filters"], dic["modulesX"], dic["modulesX"])

    def _fc(self, name, dic, xs):
        out = None
        for i, x in enumerate(xs):
            y = x.reshape(x.shape[0], -1) @ self.params[f"{name}:w{i}"]
            out = y if out is None else out + y
        return out + self.params[f"{name}:b"]

    def _pool(self, name, dic, x):
        k, s, o, img = dic["sizeX"], dic["stride"], dic["outputsX"], dic["imgSize"]
        if dic["start"] != 0 or -(-(img - k) // s) + 1 != o:
            raise NotImplementedError(f"layer '{name}': pooling start/outputsX has no torch twin here")
        if dic["pool"] == "max":
            return F.max_pool2d(x, k, s, ceil_mode=True)
        if dic["pool"] == "avg":   # with no padding torch divides by the clipped window, as cudaconv2
            return F.avg_pool2d(x, k, s, ceil_mode=True, count_include_pad=False)
        raise NotImplementedError(f"layer '{name}': pool={dic['pool']} has no torch twin here")

    @staticmethod
    def _rnorm(dic, x):
        size = dic["size"]
        lo, hi = size // 2, size - 1 - size // 2
        box = F.avg_pool2d(F.pad(x * x, (lo, hi, lo, hi)), size, 1) * (size * size)
        return x * (1 + dic["scale"] * box) ** -dic["pow"]

    @staticmethod
    def _cmrnorm(name, dic, x):
        if dic.get("blocked"):
            raise NotImplementedError(f"layer '{name}': blocked cmrnorm has no torch twin here")
        size = dic["size"]
        return F.local_response_norm(x, size, alpha=dic["scale"] * size, beta=dic["pow"],
                                     k=dic.get("minDiv", 1.0))

    def forward(self, data: list, mode: str = PASS_TRAIN):
        acts: dict[str, torch.Tensor] = {}
        objective = None
        n = data[0].shape[0]
        for name in self.order:
            dic = self.layers[name]
            t = dic["type"]
            xs = [acts[i] for i in dic.get("inputs") or []]
            if t == "data":
                acts[name] = data[dic["dataIdx"]]
            elif t == "conv":
                acts[name] = self._conv(name, dic, xs)
            elif t == "local":
                acts[name] = self._local(name, dic, xs)
            elif t == "fc":
                acts[name] = self._fc(name, dic, xs)
            elif t == "pool":
                acts[name] = self._pool(name, dic, xs[0])
            elif t == "rnorm":
                acts[name] = self._rnorm(dic, xs[0])
            elif t == "cmrnorm":
                acts[name] = self._cmrnorm(name, dic, xs[0])
            elif t == "neuron":
                acts[name] = _neuron(dic["neuron"])(xs[0])
            elif t == "softmax":
                if [self.layers[c]["type"] for c in self._consumers[name]] == ["cost.logreg"]:
                    acts[name] = xs[0]            # the cost takes the logits (fused log-softmax)
                else:
                    acts[name] = torch.softmax(xs[0], dim=1)
            elif t == "cost.logreg":
                labels, probs = xs[0].reshape(-1).long(), xs[1]
                src = self.layers[dic["inputs"][1]]
                if src["type"] == "softmax" and acts[dic["inputs"][1]] is acts[src["inputs"][0]]:
                    nll = F.cross_entropy(probs, labels, reduction="sum")
                else:
                    nll = F.nll_loss(torch.log(probs), labels, reduction="sum")
                acts[name] = nll
                term = dic.get("coeff", 1.0) * nll / n
                objective = term if objective is None else objective + term
            elif t == "hs":
                if mode == PASS_TRAIN and dic.get("enable", True):
                    acts[name] = xs[0] * (torch.rand_like(xs[0]) < dic["keep"])
                else:
                    acts[name] = dic["keep"] * xs[0]
            elif t == "eltsum":
                coeffs = dic.get("coeffs", [1.0] * len(xs))
                acts[name] = sum(c * x for c, x in zip(coeffs, xs))
            elif t == "concat":
                acts[name] = torch.cat([x.reshape(n, -1) for x in xs], dim=1)
            else:
                raise NotImplementedError(f"layer '{name}': type {t!r} has no torch twin here")
        return objective, acts


def to_torch_input(net: TorchNet, data: list) -> list[torch.Tensor]:
    """The port's (D, N) data matrices as the twin's inputs: images (N, C, H, W), labels (N,)."""
    out = []
    for idx, d in enumerate(data):
        a = np.ascontiguousarray(np.asarray(d, dtype=np.float32).T)              # (N, D)
        if idx in net.data_shapes:
            a = a.reshape((a.shape[0],) + tuple(net.data_shapes[idx]))
        out.append(torch.from_numpy(np.ascontiguousarray(a)))
    return out


def to_port_layout(t: torch.Tensor) -> np.ndarray:
    """A twin activation (N, ...) as the port's (D, N) matrix."""
    a = t.detach().cpu().numpy()
    return a.reshape(a.shape[0], -1).T


def softmax_output(net: TorchNet, acts: dict, name: str) -> torch.Tensor:
    """The probabilities of softmax layer ``name`` (the twin may hold its logits instead)."""
    src = net.layers[name]["inputs"][0]
    return torch.softmax(acts[name], dim=1) if acts[name] is acts[src] else acts[name]


__all__ = ["TorchNet", "to_torch_input", "to_port_layout", "softmax_output"]
