"""Layers without weights that transform or combine whole activation matrices: neuron,
softmax, element-wise sum and max, concatenation, and "hidden sex" (dropout).

The twins of NeuronLayer, SoftmaxLayer, EltwiseSumLayer, EltwiseMaxLayer, ConcatenationLayer
and HiddenSexLayer in layer.cu. The neurons themselves are port/neuron.py; the softmax and
max-gradient kernels port/layer_kernels.py.

Layout: activations (D, N), cases last. Gradients are the descent direction −∂L/∂·.
"""
from __future__ import annotations

from port import device_kernels as dk
from port import layer_kernels as lk
from port.backend import get_array_module
from port.layers.base import PASS_TRAIN, Layer
from port.neuron import make_neuron


class NeuronLayer(Layer):
    """y = f(x) for one of the neurons of neuron.cuh.

    Ports: alexnet-2012/src/layer.cu:483-488 NeuronLayer::NeuronLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.neuron = make_neuron(dic["neuron"], net.rng)

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:508-510 NeuronLayer::fpropActs"""
        self.acts = self.neuron.activate(self.inputs[0])

    def bprop_acts(self, v, inp_idx, pass_type):
        """f'(x)·g; a logistic layer whose one consumer is a same-device cost.crossent2 sends
        the fused coeff·(t − y) instead (no division by y(1 − y)).

        Ports: alexnet-2012/src/layer.cu:490-506 NeuronLayer::bpropActs
        """
        nxt = self.next[0] if len(self.next) == 1 else None
        if (self.dic["neuron"]["type"] == "logistic" and nxt is not None
                and nxt.type == "cost.crossent2" and nxt.device == self.device):
            labels = nxt.inputs[0]
            return nxt.coeff * labels - nxt.coeff * self.acts
        return self.neuron.compute_input_grad(v, self.inputs[0], self.acts)


class SoftmaxLayer(Layer):
    """y = exp(x − max)/Σ over each case's D rows.

    Ports: alexnet-2012/src/layer.cu:1016-1018 SoftmaxLayer::SoftmaxLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.do_logreg_grad = True

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1020-1030 SoftmaxLayer::fpropActs"""
        self.acts = lk.softmax(self.inputs[0])

    def bprop_acts(self, v, inp_idx, pass_type):
        """With one consumer that is a cost.logreg, the fused coeff·(onehot − y).

        Ports: alexnet-2012/src/layer.cu:1032-1042 SoftmaxLayer::bpropActs
        """
        if self.do_logreg_grad and len(self.next) == 1 and self.next[0].type == "cost.logreg":
            cost = self.next[0]
            return lk.compute_logreg_softmax_grad(cost.prev[0].acts, self.acts, cost.coeff)
        return lk.compute_softmax_grad(self.acts, v)


class ConcatenationLayer(Layer):
    """Stacks the inputs' rows in input order (``copyOffsets``).

    Ports: alexnet-2012/src/layer.cu:1053-1057 ConcatenationLayer::ConcatenationLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.copy_offsets = [int(o) for o in dic["copyOffsets"]] + [self.num_outputs]

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1059-1062 ConcatenationLayer::fpropActs"""
        x = self.inputs[inp_idx]
        if inp_idx == 0:
            xp = get_array_module(x)
            self.acts = xp.empty((self.num_outputs, x.shape[1]), dtype=x.dtype)   # (outputs, N)
        self.acts[self.copy_offsets[inp_idx]:self.copy_offsets[inp_idx + 1]] = x

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1064-1068 ConcatenationLayer::bpropActs"""
        return v[self.copy_offsets[inp_idx]:self.copy_offsets[inp_idx + 1]]


class EltwiseSumLayer(Layer):
    """y = Σ coeffᵢ·xᵢ.

    Ports: alexnet-2012/src/layer.cu:1075-1077 EltwiseSumLayer::EltwiseSumLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.coeffs = [float(c) for c in dic["coeffs"]]

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1079-1085 EltwiseSumLayer::fpropActs"""
        self._set_acts(self.coeffs[inp_idx] * self.inputs[inp_idx], scale_targets)

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1087-1094 EltwiseSumLayer::bpropActs"""
        return self.coeffs[inp_idx] * v


class EltwiseMaxLayer(Layer):
    """y = max over the inputs; every input equal to y receives the gradient (ties included).

    Ports: alexnet-2012/src/layer.cu:1101-1102 EltwiseMaxLayer::EltwiseMaxLayer
    """

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1104-1110 EltwiseMaxLayer::fpropActs"""
        xp = get_array_module(self.inputs[0])
        if inp_idx == 1:
            self.acts = xp.maximum(self.inputs[1], self.inputs[0])
        elif inp_idx > 1:
            self.acts = xp.maximum(self.acts, self.inputs[inp_idx])

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1112-1114 EltwiseMaxLayer::bpropActs"""
        return lk.compute_eltwise_max_grad(v, self.inputs[inp_idx], self.acts)


class HiddenSexLayer(Layer):
    """Dropout as in the paper: training keeps each unit with probability ``keep`` (mask, no
    rescaling); any other pass (test, gradient check) or ``enable=0`` multiplies by ``keep``.

    DIVERGES: the mask is drawn on the device by port.backend.uniform, keyed by the model's NumPy
    Generator (seeded, checkpointable), not by cuRAND.

    Ports: alexnet-2012/src/layer.cu:1121-1124 HiddenSexLayer::HiddenSexLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.enable = bool(dic["enable"])
        self.keep = float(dic["keep"])
        self.sex_mask = None                                   # (D, N), 0/1

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1126-1135 HiddenSexLayer::fpropActs"""
        x = self.inputs[inp_idx]
        if (self.enable and pass_type == PASS_TRAIN and dk.on_device(x)
                and getattr(self.net, "parallel", None) is None):   # data-parallel: its own draw
            self.acts, self.sex_mask = dk.dropout(x, self.net.rng, self.keep)   # one launch
        elif self.enable and pass_type == PASS_TRAIN:
            self.sex_mask = (self.net.random_uniform(x.shape) < self.keep).astype(x.dtype)
            self.acts = x * self.sex_mask
        else:
            self.acts = self.keep * x

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1137-1153 HiddenSexLayer::bpropActs"""
        if self.enable and pass_type == PASS_TRAIN:
            return v * self.sex_mask
        return self.keep * v


__all__ = ["NeuronLayer", "SoftmaxLayer", "ConcatenationLayer", "EltwiseSumLayer",
           "EltwiseMaxLayer", "HiddenSexLayer"]
