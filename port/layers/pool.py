"""The pooling layers (``pool``: ``max``, ``maxabs``, ``avg``, ``rand``).

The twins of PoolLayer, AvgPoolLayer, MaxPoolLayer and RandomPoolLayer in layer.cu; the array
work is cudaconv2's convLocalPool / convLocalMaxUndo / convLocalAvgUndo (port/cudaconv2/), called
through port/device_kernels.py: the same functions on NumPy, one kernel launch each on a device.

Layout: images (C, H, W, N) flattened as c·H·W + y·W + x; outputs (C, outputsX, outputsX, N).
Gradients are the descent direction −∂L/∂·.
"""
from __future__ import annotations

from port import device_kernels as dk
from port.errors import UserError
from port.layers.base import Layer


class PoolLayer(Layer):
    """Window ``sizeX`` starting at ``start`` with ``stride``, ``outputsX`` per side.

    Ports: alexnet-2012/src/layer.cu:1273-1282 PoolLayer::PoolLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.channels = int(dic["channels"])
        self.size_x = int(dic["sizeX"])
        self.start = int(dic["start"])
        self.stride = int(dic["stride"])
        self.outputs_x = int(dic["outputsX"])
        self.img_size = int(dic["imgSize"])
        self.pool = dic["pool"]

    def _pool(self, pooler: str):
        return dk.conv_local_pool(self.inputs[0], self.channels, self.size_x, self.start,
                                  self.stride, self.outputs_x, pooler)   # (C·outputsX², N)

    def _max_undo(self, v):
        return dk.conv_local_max_undo(self.inputs[0], v, self.acts, self.size_x, self.start,
                                      self.stride, self.outputs_x)   # (C·H·W, N)


class AvgPoolLayer(PoolLayer):
    """Mean over the window clipped to the image (divided by the clipped area).

    Ports: alexnet-2012/src/layer.cu:1303-1304 AvgPoolLayer::AvgPoolLayer
    """

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1306-1308 AvgPoolLayer::fpropActs"""
        self.acts = self._pool("avg")

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1310-1312 AvgPoolLayer::bpropActs"""
        return dk.conv_local_avg_undo(v, self.size_x, self.start, self.stride, self.outputs_x,
                                      self.img_size)                 # (C·H·W, N)


class MaxPoolLayer(PoolLayer):
    """Max (or, with ``abs``, the value of largest magnitude) over the window; every input
    equal to the output receives its gradient.

    Ports: alexnet-2012/src/layer.cu:1319-1320 MaxPoolLayer::MaxPoolLayer
    """

    def __init__(self, dic: dict, net, abs_: bool = False):
        super().__init__(dic, net)
        self.abs = abs_

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1322-1330 MaxPoolLayer::fpropActs"""
        self.acts = self._pool("maxabs" if self.abs else "max")

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1332-1334 MaxPoolLayer::bpropActs"""
        return self._max_undo(v)


class RandomPoolLayer(PoolLayer):
    """``pool=rand``: ported only with ``doMax=1`` (max pooling, max undo).

    The random pooling kernel convLocalRandomPool is in no public repository, so a net that
    needs it is refused when it is built.

    Ports: alexnet-2012/src/layer.cu:1341-1344 RandomPoolLayer::RandomPoolLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.do_max = bool(dic.get("doMax", False))
        if not self.do_max:
            raise UserError(f"layer '{self.name}': pool=rand needs convLocalRandomPool, whose source "
                            "is not public; set doMax=1 in the layer-params file or use pool=max")

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1346-1353 RandomPoolLayer::fpropActs"""
        self.acts = self._pool("max")

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1355-1357 RandomPoolLayer::bpropActs"""
        return self._max_undo(v)


def make_pool_layer(dic: dict, net) -> PoolLayer:
    """Ports: alexnet-2012/src/layer.cu:1284-1296 PoolLayer::makePoolLayer"""
    pool = dic["pool"]
    if pool == "max":
        return MaxPoolLayer(dic, net, False)
    if pool == "maxabs":
        return MaxPoolLayer(dic, net, True)
    if pool == "avg":
        return AvgPoolLayer(dic, net)
    if pool == "rand":
        return RandomPoolLayer(dic, net)
    raise UserError(f"layer '{dic['name']}': unknown pooling type {pool!r}")


__all__ = ["PoolLayer", "AvgPoolLayer", "MaxPoolLayer", "RandomPoolLayer", "make_pool_layer"]
