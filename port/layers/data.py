"""The data layer: one of the matrices of a batch (``dataIdx``), as the net's input.

The twin of DataLayer in layer.cu, without its double buffering and multi-GPU copies: the model
(port/model.py) puts the minibatch's columns into ``acts`` before the forward pass.

Layout: (D, N), cases last.
"""
from __future__ import annotations

from port.layers.base import Layer


class DataLayer(Layer):
    """Holds minibatch matrix ``dataIdx``; produces no gradient.

    DIVERGES: no prefetch buffer of the next minibatch (alexnet-2012/src/convnet.cu:221-242);
    copying a NumPy slice to the device is the whole job here.

    Ports: alexnet-2012/src/layer.cu:1167-1172 DataLayer::DataLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.data_idx = int(dic["dataIdx"])

    def start_fprop(self, data: list, pass_type: int) -> None:
        """Set ``acts`` to matrix ``dataIdx`` of the minibatch (already on the device).

        Ports: alexnet-2012/src/layer.cu:1185-1188 DataLayer::startFprop
        """
        self.acts = data[self.data_idx]

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1178-1179 DataLayer::fpropActs"""

    def is_grad_producer(self) -> bool:
        """Ports: alexnet-2012/src/layer.cu:1264-1266 DataLayer::isGradProducer"""
        return False


__all__ = ["DataLayer"]
