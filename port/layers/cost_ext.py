"""The cost layers beyond logreg and sum2: cross-entropy against a label distribution
(``cost.crossent``), element-wise binary cross-entropy (``cost.crossent2``), the robust Flickr
cost (``cost.rflickr``), the gated sum of squares (``cost.gsum2``) and TICA (``cost.tica``).
The multi-softmax cost ``cost.msm`` is in port/layers/multisoftmax.py.

The twins of CrossEntCostLayer, CrossEnt2CostLayer, RobustFlickrCost, GatedSumOfSquaresCostLayer
and TICACostLayer in layer.cu, with the operators of layer.cuh. Of the released cfgs only the
Flickr nets use any of them (crossent2: flickr-102, rflickr: flickr-103, both over logistic
units).

Layout: (D, N), cases last. Inputs 0 are the data provider's targets: a (C, N) distribution for
crossent, (C, N) tags in [0, 1] for crossent2/rflickr, (1, N) gates for gsum2. Every gradient sent
is the descent direction −∂L/∂· (port/gradients.py).
"""
from __future__ import annotations

from port import cudaconv2 as cc
from port.backend import get_array_module
from port.gradients import to_descent
from port.layers.cost import CostLayer, device_total


def safelog(x):
    """log x for x > 0, else −50.

    Ports: alexnet-2012/include/layer_kernels.cuh:40-42 safelog
    """
    xp = get_array_module(x)
    return xp.where(x > 0, xp.log(xp.where(x > 0, x, 1)), -50.0)


class CrossEntCostLayer(CostLayer):
    """Inputs (label distribution p (C, N), softmax y (C, N)). Values: [−Σ p·safelog(y), N − top-1
    credit], the credit being 1/(number of maxima) when a most probable class has p > 0.

    Ports: alexnet-2012/src/layer.cu:1689-1690 CrossEntCostLayer::CrossEntCostLayer
    """

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1692-1704 CrossEntCostLayer::fpropActs
        Ports: alexnet-2012/src/layer_kernels.cu:276-318 kCrossEntCost
        """
        if inp_idx != 0:
            return
        labels, probs = self.inputs[0], self.inputs[1]
        xp = get_array_module(probs)
        num_cases = labels.shape[1]
        cross_ent = (labels * safelog(probs)).sum(axis=0, keepdims=True)          # (1, N)
        is_max = probs == probs.max(axis=0, keepdims=True)                        # (C, N)
        num_max = is_max.sum(axis=0)
        hit = (is_max & (labels > 0)).any(axis=0)
        correct = xp.where(hit, 1.0 / num_max, 0.0)
        self.acts = cross_ent
        self.costv = [-device_total(cross_ent.sum()), num_cases - device_total(correct.sum())]

    def bprop_acts(self, v, inp_idx, pass_type):
        """coeff·p/y to the softmax, which applies its Jacobian.

        DIVERGES: the original skips its gradient over a single-consumer softmax, expecting the
        softmax to compute the fused form, but the softmax fuses only for logreg
        (alexnet-2012/src/layer.cu:1034), so the gradient was never written; here it is always sent.

        Ports: alexnet-2012/src/layer.cu:1706-1717 CrossEntCostLayer::bpropActs
        Ports: alexnet-2012/src/layer_kernels.cu:328-344 kCrossEntGrad
        """
        if inp_idx != 1:
            return None
        labels, probs = self.inputs[0], self.inputs[1]
        return to_descent(-self.coeff * labels / probs)                           # (C, N)


class CrossEnt2CostLayer(CostLayer):
    """Inputs (targets t (C, N), logistic outputs y (C, N)). Value −Σ[t·safelog(y) + (1−t)·safelog(1−y)].

    Over a same-device logistic neuron layer with one consumer, the neuron layer sends the fused
    coeff·(t − y) (port/layers/combine.py) and this layer sends nothing.

    Ports: alexnet-2012/src/layer.cu:1724-1725 CrossEnt2CostLayer::CrossEnt2CostLayer
    """

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1727-1738 CrossEnt2CostLayer::fpropActs
        Ports: alexnet-2012/include/layer.cuh:555-560 CrossEntOperator
        """
        if inp_idx != 0:
            return
        t, y = self.inputs[0], self.inputs[1]
        self.acts = t * safelog(y) + (1.0 - t) * safelog(1.0 - y)                # (C, N)
        self.costv = [-device_total(self.acts.sum())]

    def fused_below(self) -> bool:
        """Does the logistic layer below compute this cost's gradient (alexnet-2012/src/layer.cu:1750-1753)?"""
        below = self.prev[1]
        return (len(below.next) == 1 and below.type == "neuron"
                and below.dic["neuron"]["type"] == "logistic" and below.device == self.device)

    def bprop_acts(self, v, inp_idx, pass_type):
        """coeff·(t/y − (1−t)/(1−y)) unless the logistic layer below does the fused form.

        DIVERGES: the original's stand-alone operator adds (1−t)/(1−y) instead of subtracting it
        (alexnet-2012/include/layer.cuh:570), a sign error that points the step the wrong way for
        y > t; the port sends the descent direction of the value above.

        Ports: alexnet-2012/src/layer.cu:1740-1760 CrossEnt2CostLayer::bpropActs
        Ports: alexnet-2012/include/layer.cuh:562-572 CrossEntGradientOperator
        """
        if inp_idx != 1 or self.fused_below():
            return None
        t, y = self.inputs[0], self.inputs[1]
        return to_descent(-self.coeff * (t / y - (1.0 - t) / (1.0 - y)))          # (C, N)


class RobustFlickrCost(CostLayer):
    """Inputs (targets t, outputs y), (C, N) each. Value Σ log(1 + (y − t)²).

    Ports: alexnet-2012/src/layer.cu:1767-1768 RobustFlickrCost::RobustFlickrCost
    """

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1770-1781 RobustFlickrCost::fpropActs
        Ports: alexnet-2012/include/layer.cuh:585-591 RobustFlickrCostOperator
        """
        if inp_idx != 0:
            return
        xp = get_array_module(self.inputs[1])
        d = self.inputs[1] - self.inputs[0]
        self.acts = xp.log(1.0 + d * d)                                          # (C, N)
        self.costv = [device_total(self.acts.sum())]

    def bprop_acts(self, v, inp_idx, pass_type):
        """−coeff·2d/(1 + d²).

        Ports: alexnet-2012/src/layer.cu:1783-1793 RobustFlickrCost::bpropActs
        Ports: alexnet-2012/include/layer.cuh:593-603 RobustFlickrCostGradientOperator
        """
        if inp_idx != 1:
            return None
        d = self.inputs[1] - self.inputs[0]
        return to_descent(self.coeff * 2.0 * d / (1.0 + d * d))                  # (C, N)


class GatedSumOfSquaresCostLayer(CostLayer):
    """Inputs (gates g (1, N), x (D, N)). Value Σₙ gₙ Σᵢ xᵢₙ².

    Ports: alexnet-2012/src/layer.cu:1960-1961 GatedSumOfSquaresCostLayer::GatedSumOfSquaresCostLayer
    """

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1963-1970 GatedSumOfSquaresCostLayer::fpropActs"""
        if inp_idx != 0:
            return
        self.ungated = self.inputs[1] * self.inputs[1]                            # (D, N)
        self.acts = self.ungated * self.inputs[0]                                 # (D, N)
        self.costv = [device_total(self.acts.sum())]

    def bprop_acts(self, v, inp_idx, pass_type):
        """δg = −coeff·Σᵢ xᵢ²; δx = −2·coeff·g·x.

        Ports: alexnet-2012/src/layer.cu:1972-1979 GatedSumOfSquaresCostLayer::bpropActs
        """
        if inp_idx == 0:
            return to_descent(self.coeff * self.ungated.sum(axis=0, keepdims=True))     # (1, N)
        return to_descent(2.0 * self.coeff * self.inputs[1] * self.inputs[0])          # (D, N)


class TICACostLayer(CostLayer):
    """Topographic ICA over ``channels`` maps: r = 1/(0.001 + √S) per pixel, S the sum of x² over
    the sizeX×sizeX window; the gradient sends −coeff·x_p·Σ_{windows ∋ p} r.

    Ports: alexnet-2012/src/layer.cu:1986-1989 TICACostLayer::TICACostLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.channels = int(dic["channels"])
        self.size_x = int(dic["sizeX"])

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """The value Σ_q [√S_q − 0.001·log(0.001 + √S_q)], whose gradient the kernel computes
        for odd sizeX.

        DIVERGES: the original reports Σ r, which its own comment calls wrong ("it contains
        reciprocals", alexnet-2012/src/layer.cu:1997), so its gradient check could not pass; the
        port reports the function that the gradient belongs to (√S = 1/r − 0.001) for odd sizeX
        only. For even sizeX (2 or 4: the kernel asserts sizeX < 6) the gradient kernel, whose
        sum the port keeps, adds r over the window [p − sizeX/2, p + sizeX/2) around p, where
        this value's gradient needs the windows that hold p, [p − sizeX/2 + 1, p + sizeX/2]:
        there the gradient is not this value's, and the gradient check fails as the original's
        would.

        Ports: alexnet-2012/src/layer.cu:1992-1998 TICACostLayer::fpropActs
        """
        xp = get_array_module(self.inputs[0])
        self.acts = cc.conv_tica(self.inputs[0], self.channels, self.size_x)      # r, (C·S², N)
        root = 1.0 / self.acts - 0.001
        self.costv = [device_total((root - 0.001 * xp.log(0.001 + root)).sum())]

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:2000-2002 TICACostLayer::bpropActs"""
        return self.coeff * cc.conv_tica_grad(self.inputs[0], self.acts, self.channels, self.size_x)


__all__ = ["CrossEntCostLayer", "CrossEnt2CostLayer", "RobustFlickrCost",
           "GatedSumOfSquaresCostLayer", "TICACostLayer", "safelog"]
