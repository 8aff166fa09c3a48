"""The layers with weights: fully connected (``fc``), convolutional (``conv``) and locally
connected with unshared weights (``local``).

The twins of FCLayer, LocalLayer, ConvLayer and LocalUnsharedLayer in layer.cu. The array work
of conv/local is cudaconv2's (port/cudaconv2/); fc is a matrix product. The tree softmax
layer ``treefc`` is in port/layers/treefc.py.

Layout: activations (D, N), cases last; images (C, H, W, N) flattened as c·H·W + y·W + x.
fc weights Wᵢ are (Dᵢ, out) and y = Σ Wᵢᵀxᵢ + bᵀ with biases (1, out). conv weights are
(filterChannels·filterSize², filters), local weights (modules·filterChannels·filterSize², filters);
conv biases are (filters, 1) (``sharedBiases``) or (filters·modules, 1), local biases
(filters·modules, 1). Gradients are the descent direction −∂L/∂· (port/gradients.py).
"""
from __future__ import annotations

import numpy as np

from port import backend
from port import cudaconv2 as cc
from port.backend import get_array_module
from port.errors import UserError
from port.layers.base import WeightLayer


def _wball_scale(w, wball: float):
    """Per-column factor that brings every column of norm > ``wball`` back to ``wball``.

    Ports: alexnet-2012/include/layer.cuh:61-70 WeightConstraintOperator
    """
    xp = get_array_module(w)
    norm2 = (w * w).sum(axis=0, keepdims=True)                 # (1, cols)
    safe = xp.where(norm2 > wball * wball, norm2, 1.0)
    return xp.where(norm2 > wball * wball, wball / xp.sqrt(safe), 1.0)   # (1, cols)


class FCLayer(WeightLayer):
    """y = Σᵢ Wᵢᵀxᵢ + bᵀ. Gradient-check steps 0.01 for weights and biases.

    Ports: alexnet-2012/src/layer.cu:634-638 FCLayer::FCLayer
    """

    def __init__(self, dic: dict, net, use_grad: bool = False):
        super().__init__(dic, net, use_grad)
        self.w_step = 0.01
        self.b_step = 0.01

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:640-645 FCLayer::fpropActs"""
        self._set_acts(self.weights[inp_idx].w.T @ self.inputs[inp_idx], scale_targets)  # (out, N)
        if scale_targets == 0:
            self.acts += self.biases.w.reshape(-1, 1)        # in place: acts is the new product

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:647-651 FCLayer::bpropActs"""
        return self.weights[inp_idx].w @ v                                   # (D_i, N)

    def bprop_biases(self, v, pass_type):
        """Ports: alexnet-2012/src/layer.cu:653-657 FCLayer::bpropBiases"""
        self._accumulate(self.biases, v.sum(axis=1).reshape(self.biases.shape), v, pass_type)

    def bprop_weights(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:659-675 FCLayer::bpropWeights"""
        self._accumulate(self.weights[inp_idx], self.inputs[inp_idx] @ v.T, v, pass_type)  # (D_i, out)

    def constrain_weights(self):
        """Max-norm (``wball``) on every output unit's incoming weights.

        Ports: alexnet-2012/src/layer.cu:677-687 FCLayer::constrainWeights
        """
        for w in self.weights:
            if w.wball > 0 and w.is_owner() and w.base_rate > 0:
                w.w = w.w * _wball_scale(w.w, w.wball)


class LocalLayer(WeightLayer):
    """The geometry shared by conv and local layers, one entry per input.

    ``padding`` holds cudaconv2's paddingStart (≤ 0; the parser negates the cfg value).

    Ports: alexnet-2012/src/layer.cu:768-796 LocalLayer::LocalLayer
    """

    def __init__(self, dic: dict, net, use_grad: bool):
        super().__init__(dic, net, use_grad)
        self.padding = [int(p) for p in dic["padding"]]
        self.stride = [int(s) for s in dic["stride"]]
        self.filter_size = [int(s) for s in dic["filterSize"]]
        self.channels = [int(c) for c in dic["channels"]]
        self.img_size = [int(s) for s in dic["imgSize"]]
        self.num_filters = int(dic["filters"])
        self.groups = [int(g) for g in dic["groups"]]
        self.filter_channels = [int(c) for c in dic["filterChannels"]]
        self.rand_sparse = [bool(r) for r in dic["randSparse"]]
        self.over_sample = [int(o) for o in dic["overSample"]]
        self.filter_pixels = [int(p) for p in dic["filterPixels"]]
        self.modules_x = int(dic["modulesX"])
        self.modules = int(dic["modules"])
        self.filter_conns_host = list(dic["filterConns"])
        self.filter_conns: list = [None] * len(self.padding)

    def copy_to_gpu(self) -> None:
        """Weights, and the random-sparse connectivity of each input that has it.

        Ports: alexnet-2012/src/layer.cu:798-809 LocalLayer::copyToGPU
        """
        super().copy_to_gpu()
        for i, sparse in enumerate(self.rand_sparse):
            if sparse:
                conns = np.asarray(self.filter_conns_host[i], dtype=np.int64)   # checked here, on the host
                if conns.size and not (conns.min() >= 0 and conns.max() < self.channels[i]):
                    raise UserError(f"layer '{self.name}': filterConns of input {i} must lie in "
                                    f"[0, {self.channels[i]})")
                self.filter_conns[i] = backend.xp().asarray(conns, dtype="int32")

    def _sum_over_sample(self, grad, inp_idx):
        """Sum the ``overSample`` copies of a random-sparse input gradient (alexnet-2012/src/layer.cu:887-891)."""
        rows = self.prev[inp_idx].num_outputs
        if self.over_sample[inp_idx] > 1 and grad.shape[0] == self.over_sample[inp_idx] * rows:
            grad = grad.reshape(self.over_sample[inp_idx], -1).sum(axis=0).reshape(rows, -1)
        return grad


class ConvLayer(LocalLayer):
    """Convolution with weights tied over modules (cudaconv2 conv* functions).

    Ports: alexnet-2012/src/layer.cu:815-821 ConvLayer::ConvLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net, True)
        self.partial_sum = int(dic["partialSum"])
        self.shared_biases = bool(dic["sharedBiases"])
        self.wc_norm_min = [float(v) for v in dic["wcNormMin"]]
        self.wc_norm_max = [float(v) for v in dic["wcNormMax"]]

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:823-842 ConvLayer::fpropActs"""
        i, x, w = inp_idx, self.inputs[inp_idx], self.weights[inp_idx].w
        mx = self.modules_x
        if self.rand_sparse[i]:
            out = cc.conv_filter_acts_sparse(x, w, self.filter_conns[i], self.img_size[i], mx, mx,
                                             self.padding[i], self.stride[i], self.channels[i],
                                             self.filter_channels[i], self.groups[i])
        else:
            out = cc.conv_filter_acts(x, w, self.img_size[i], mx, mx, self.padding[i], self.stride[i],
                                      self.channels[i], self.groups[i])      # (F·modules, N)
        self._set_acts(out, scale_targets)
        if scale_targets == 0:                               # in place: acts is the new result
            if self.shared_biases:
                n = self.acts.shape[1]
                a = self.acts.reshape(self.num_filters, -1)      # a view of the contiguous result
                a += self.biases.w.reshape(-1, 1)
                self.acts = a.reshape(-1, n)
            else:
                self.acts += self.biases.w.reshape(-1, 1)

    def bprop_biases(self, v, pass_type):
        """Ports: alexnet-2012/src/layer.cu:844-855 ConvLayer::bpropBiases"""
        if self.shared_biases:
            g = v.reshape(self.num_filters, -1).sum(axis=1)                  # (F,)
        else:
            g = v.sum(axis=1)                                                # (F·modules,)
        self._accumulate(self.biases, g.reshape(self.biases.shape), v, pass_type)

    def bprop_weights(self, v, inp_idx, pass_type):
        """``partialSum`` only splits the reduction over modules; the sum is the same.

        Ports: alexnet-2012/src/layer.cu:857-879 ConvLayer::bpropWeights
        """
        i, x, mx = inp_idx, self.inputs[inp_idx], self.modules_x
        if self.rand_sparse[i]:
            g = cc.conv_weight_acts_sparse(x, v, self.filter_conns[i], self.img_size[i], mx, mx,
                                           self.filter_size[i], self.padding[i], self.stride[i],
                                           self.channels[i], self.filter_channels[i], self.groups[i],
                                           self.partial_sum)
        else:
            g = cc.conv_weight_acts(x, v, self.img_size[i], mx, mx, self.filter_size[i], self.padding[i],
                                    self.stride[i], self.channels[i], self.groups[i],
                                    self.partial_sum)                        # (fc·fs², F)
        self._accumulate(self.weights[i], g.reshape(self.weights[i].shape), v, pass_type)

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:881-897 ConvLayer::bpropActs"""
        i, w, s = inp_idx, self.weights[inp_idx].w, self.img_size[inp_idx]
        if self.rand_sparse[i]:
            g = cc.conv_img_acts_sparse(v, w, self.filter_conns[i], s, s, self.modules_x, self.padding[i],
                                        self.stride[i], self.channels[i], self.filter_channels[i],
                                        self.groups[i])
            return self._sum_over_sample(g, i)
        return cc.conv_img_acts(v, w, s, s, self.modules_x, self.padding[i], self.stride[i],
                                self.channels[i], self.groups[i])            # (C·H·W, N)

    def constrain_weights(self):
        """Filter contrast norm (``wcNormMin/Max``), then max-norm (``wball``).

        Ports: alexnet-2012/src/layer.cu:907-935 ConvLayer::constrainWeights
        Ports: alexnet-2012/include/layer.cuh:72-82 WeightContrastNormOperator
        """
        for i, w in enumerate(self.weights):
            if not (w.is_owner() and w.base_rate > 0):
                continue
            if self.wc_norm_max[i] > 0:
                xp = get_array_module(w.w)
                fz = w.w.shape[0]
                zero_mean = w.w - w.w.sum(axis=0, keepdims=True) / fz          # (rows, F)
                a = xp.sqrt((zero_mean * zero_mean).sum(axis=0, keepdims=True)) * (1.0 / fz)
                lo, hi = self.wc_norm_min[i], self.wc_norm_max[i]
                safe = xp.where(a == 0, 1.0, a)
                scale = xp.where(a < lo, lo / safe, xp.where(a > hi, hi / safe, 1.0))
                w.w = w.w * scale
            if w.wball > 0:
                w.w = w.w * _wball_scale(w.w, w.wball)


class LocalUnsharedLayer(LocalLayer):
    """Locally connected filters, one set per module (cudaconv2 local* functions).

    Ports: alexnet-2012/src/layer.cu:942-944 LocalUnsharedLayer::LocalUnsharedLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net, False)

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:946-959 LocalUnsharedLayer::fpropActs"""
        i, x, w, mx = inp_idx, self.inputs[inp_idx], self.weights[inp_idx].w, self.modules_x
        if self.rand_sparse[i]:
            out = cc.local_filter_acts_sparse(x, w, self.filter_conns[i], self.img_size[i], mx, mx,
                                              self.padding[i], self.stride[i], self.channels[i],
                                              self.filter_channels[i], self.groups[i])
        else:
            out = cc.local_filter_acts(x, w, self.img_size[i], mx, mx, self.padding[i], self.stride[i],
                                       self.channels[i], self.groups[i])     # (F·modules, N)
        self._set_acts(out, scale_targets)
        if scale_targets == 0:
            self.acts += self.biases.w.reshape(-1, 1)             # in place: acts is the new result

    def bprop_biases(self, v, pass_type):
        """Ports: alexnet-2012/src/layer.cu:961-966 LocalUnsharedLayer::bpropBiases"""
        self._accumulate(self.biases, v.sum(axis=1).reshape(self.biases.shape), v, pass_type)

    def bprop_weights(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:968-990 LocalUnsharedLayer::bpropWeights"""
        i, x, mx = inp_idx, self.inputs[inp_idx], self.modules_x
        if self.rand_sparse[i]:
            g = cc.local_weight_acts_sparse(x, v, self.filter_conns[i], self.img_size[i], mx, mx,
                                            self.filter_size[i], self.padding[i], self.stride[i],
                                            self.channels[i], self.filter_channels[i], self.groups[i])
        else:
            g = cc.local_weight_acts(x, v, self.img_size[i], mx, mx, self.filter_size[i], self.padding[i],
                                     self.stride[i], self.channels[i], self.groups[i])
        self._accumulate(self.weights[i], g.reshape(self.weights[i].shape), v, pass_type)

    def bprop_acts(self, v, inp_idx, pass_type):
        """DIVERGES: a random-sparse input read by several groups (overSample > 1) gets the sum of
        its overSample gradient blocks, as conv does; the original's local layer writes the unsummed
        (overSample·C·H·W, N) result into a (C·H·W, N) gradient.

        Ports: alexnet-2012/src/layer.cu:992-1001 LocalUnsharedLayer::bpropActs
        """
        i, w, s = inp_idx, self.weights[inp_idx].w, self.img_size[inp_idx]
        if self.rand_sparse[i]:
            g = cc.local_img_acts_sparse(v, w, self.filter_conns[i], s, s, self.modules_x, self.padding[i],
                                         self.stride[i], self.channels[i], self.filter_channels[i],
                                         self.groups[i])
            return self._sum_over_sample(g, i)
        return cc.local_img_acts(v, w, s, s, self.modules_x, self.padding[i], self.stride[i],
                                 self.channels[i], self.groups[i])           # (C·H·W, N)

    def constrain_weights(self):
        """Max-norm per (module, filter).

        Ports: alexnet-2012/src/layer.cu:1003-1009 LocalUnsharedLayer::constrainWeights
        Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:83-100 normalizeLocalWeights
        """
        for w in self.weights:
            if w.wball > 0 and w.is_owner() and w.base_rate > 0:
                xp = get_array_module(w.w)
                rows, f = w.w.shape
                w3 = w.w.reshape(self.modules, rows // self.modules, f)      # (modules, wpf, F)
                norm = xp.sqrt((w3 * w3).sum(axis=1, keepdims=True))         # (modules, 1, F)
                safe = xp.where(norm > w.wball, norm, 1.0)
                w.w = (w3 * xp.where(norm > w.wball, w.wball / safe, 1.0)).reshape(rows, f)


__all__ = ["FCLayer", "LocalLayer", "ConvLayer", "LocalUnsharedLayer"]
