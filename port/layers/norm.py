"""The normalization layers: within-map response normalization (``rnorm``), cross-map
response normalization (``cmrnorm``, the paper's LRN) and contrast normalization (``cnorm``).

The twins of ResponseNormLayer, CrossMapResponseNormLayer and ContrastNormLayer in layer.cu;
the array work is cudaconv2's (port/cudaconv2/), called through port/device_kernels.py (the same
functions on NumPy, one kernel launch each on a device). ``scale`` in the layer dict is already α
divided by size² (rnorm, cnorm) or by size (cmrnorm), as the parser leaves it.

Layout: images (C, H, W, N) flattened as c·H·W + y·W + x. Gradients are the descent
direction −∂L/∂·.
"""
from __future__ import annotations

from port import device_kernels as dk
from port.layers.base import Layer


class ResponseNormLayer(Layer):
    """y = x·(1 + scale·Σ_{size×size window} x²)^(−pow), within each map.

    Ports: alexnet-2012/src/layer.cu:1560-1566 ResponseNormLayer::ResponseNormLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.channels = int(dic["channels"])
        self.size = int(dic["size"])
        self.scale = float(dic["scale"])
        self.pow = float(dic["pow"])
        self.denoms = None                                    # (C·H·W, N)

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1568-1570 ResponseNormLayer::fpropActs"""
        self.acts, self.denoms = dk.conv_response_norm(self.inputs[0], self.channels, self.size,
                                                       self.scale, self.pow)

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1572-1574 ResponseNormLayer::bpropActs"""
        return dk.conv_response_norm_undo(v, self.denoms, self.inputs[0], self.acts, self.channels,
                                          self.size, self.scale, self.pow)


class CrossMapResponseNormLayer(ResponseNormLayer):
    """y = x·(minDiv + scale·Σ_{size adjacent maps} x²)^(−pow) (``blocked``: aligned blocks).

    Ports: alexnet-2012/src/layer.cu:1583-1586 CrossMapResponseNormLayer::CrossMapResponseNormLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.blocked = bool(dic["blocked"])
        self.min_div = float(dic["minDiv"])

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1588-1590 CrossMapResponseNormLayer::fpropActs"""
        self.acts, self.denoms = dk.conv_response_norm_cross_map(
            self.inputs[0], self.channels, self.size, self.scale, self.pow, self.min_div, self.blocked)

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1592-1594 CrossMapResponseNormLayer::bpropActs"""
        return dk.conv_response_norm_cross_map_undo(v, self.denoms, self.inputs[0], self.acts,
                                                    self.channels, self.size, self.scale, self.pow,
                                                    self.blocked)


class ContrastNormLayer(ResponseNormLayer):
    """u = x − avgpool(x); y = x·(1 + scale·Σ_win u²)^(−pow); the backward pass ignores the
    mean's dependence on x, as the original does.

    Ports: alexnet-2012/src/layer.cu:1601-1603 ContrastNormLayer::ContrastNormLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.img_size = int(dic["imgSize"])
        self.mean_diffs = None                                # (C·H·W, N)

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """The window start is C's ``-size/2`` (truncated toward zero).

        Ports: alexnet-2012/src/layer.cu:1605-1612 ContrastNormLayer::fpropActs
        """
        images = self.inputs[0]
        means = dk.conv_local_pool(images, self.channels, self.size, -(self.size // 2), 1,
                                   self.img_size, "avg")              # (C·H·W, N)
        self.mean_diffs = images - means
        self.acts, self.denoms = dk.conv_contrast_norm(images, self.mean_diffs, self.channels,
                                                       self.size, self.scale, self.pow)

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1614-1616 ContrastNormLayer::bpropActs"""
        return dk.conv_contrast_norm_undo(v, self.denoms, self.mean_diffs, self.acts, self.channels,
                                          self.size, self.scale, self.pow)


__all__ = ["ResponseNormLayer", "CrossMapResponseNormLayer", "ContrastNormLayer"]
