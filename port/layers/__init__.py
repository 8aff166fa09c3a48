"""The layer classes of the port, one module per family, and the registry that maps a cfg
``type=`` string to its class (the twin of ConvNetGPU::initLayer and CostLayer::makeCostLayer).
The classes are layer.cu's; the cfg parser is ``port/layer.py`` (layer.py's twin).

- base.py: Layer, WeightLayer (gradient gathering, update, gradient check)
- weight.py: fc, conv, local       - pool.py: pool (max, maxabs, avg, rand with doMax)
- norm.py: rnorm, cmrnorm, cnorm   - combine.py: neuron, softmax, eltsum, eltmax, concat, hs
- image.py: nailbed, blur, href, resize, rscale, rgb2yuv, rgb2lab
- cost.py: cost.logreg, cost.sum2  - data.py: data
- cost_ext.py: cost.crossent, cost.crossent2, cost.rflickr, cost.gsum2, cost.tica
- multisoftmax.py: cost.msm        - treefc.py: treefc

All 30 types of layer.py are here; pool=rand without doMax is refused (its kernel is not public).
"""
from __future__ import annotations

from port.errors import UserError
from port.layers.base import Layer, WeightLayer
from port.layers.combine import (ConcatenationLayer, EltwiseMaxLayer, EltwiseSumLayer,
                                 HiddenSexLayer, NeuronLayer, SoftmaxLayer)
from port.layers.cost import CostLayer, LogregCostLayer, SumOfSquaresCostLayer, cost_classes
from port.layers.cost_ext import (CrossEnt2CostLayer, CrossEntCostLayer, GatedSumOfSquaresCostLayer,
                                  RobustFlickrCost, TICACostLayer)
from port.layers.data import DataLayer
from port.layers.image import (GaussianBlurLayer, HorizontalReflectionLayer, NailbedLayer,
                               RandomScaleLayer, ResizeLayer, RGBToLABLayer, RGBToYUVLayer)
from port.layers.multisoftmax import MultiSoftmaxCostLayer
from port.layers.norm import ContrastNormLayer, CrossMapResponseNormLayer, ResponseNormLayer
from port.layers.pool import make_pool_layer
from port.layers.treefc import TreeFCLayer
from port.layers.weight import ConvLayer, FCLayer, LocalUnsharedLayer

# cfg type string -> constructor(dic, net), in the order of ConvNetGPU::initLayer, which hands
# every "cost." type to CostLayer::makeCostLayer (here: cost_classes).
# Ports: alexnet-2012/src/convnet.cu:440-492 ConvNetGPU::initLayer
layer_classes = {
    "data": DataLayer,
    "fc": FCLayer,
    "treefc": TreeFCLayer,
    "conv": ConvLayer,
    "local": LocalUnsharedLayer,
    "pool": make_pool_layer,
    "rnorm": ResponseNormLayer,
    "cmrnorm": CrossMapResponseNormLayer,
    "cnorm": ContrastNormLayer,
    "softmax": SoftmaxLayer,
    "eltsum": EltwiseSumLayer,
    "eltmax": EltwiseMaxLayer,
    "neuron": NeuronLayer,
    "nailbed": NailbedLayer,
    "blur": GaussianBlurLayer,
    "href": HorizontalReflectionLayer,
    "resize": ResizeLayer,
    "rgb2yuv": RGBToYUVLayer,
    "rgb2lab": RGBToLABLayer,
    "rscale": RandomScaleLayer,
    "concat": ConcatenationLayer,
    "hs": HiddenSexLayer,
    **cost_classes,  # all eight costs: one registry, port/layers/cost.py (makeCostLayer's twin)
}


def make_layer(dic: dict, net) -> Layer:
    """The layer object for one parsed layer dict (raises UserError for an unported type)."""
    cls = layer_classes.get(dic["type"])
    if cls is None:
        raise UserError(f"layer '{dic['name']}': type {dic['type']!r} is not ported "
                        f"(ported types: {', '.join(sorted(layer_classes))})")
    return cls(dic, net)


__all__ = ["layer_classes", "make_layer", "Layer", "WeightLayer", "CostLayer", "DataLayer",
           "FCLayer", "ConvLayer", "LocalUnsharedLayer", "NeuronLayer", "SoftmaxLayer",
           "EltwiseSumLayer", "EltwiseMaxLayer", "ConcatenationLayer", "HiddenSexLayer",
           "LogregCostLayer", "SumOfSquaresCostLayer", "ResponseNormLayer",
           "CrossMapResponseNormLayer", "ContrastNormLayer", "NailbedLayer", "GaussianBlurLayer",
           "HorizontalReflectionLayer", "ResizeLayer", "RGBToYUVLayer", "RGBToLABLayer",
           "RandomScaleLayer", "TreeFCLayer", "CrossEntCostLayer", "CrossEnt2CostLayer",
           "RobustFlickrCost", "GatedSumOfSquaresCostLayer", "TICACostLayer", "MultiSoftmaxCostLayer"]
