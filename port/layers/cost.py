"""The cost layers: the base :class:`CostLayer`, multinomial logistic regression
(``cost.logreg``) and sum of squares (``cost.sum2``).

The twins of CostLayer, LogregCostLayer and SumOfSquaresCostLayer in layer.cu. Each cost keeps
``costv``, its values summed over the minibatch's cases (the first is the objective, weighted by
``coeff`` in the total). The other costs are in port/layers/cost_ext.py and multisoftmax.py;
:data:`cost_classes` at the end of this file registers all eight.

Layout: (D, N), cases last; labels (1, N) class ids as floats. The gradients sent are the
descent direction −∂L/∂· (port/gradients.py). The cost values are 0-d float64 arrays on the
activations' device (NumPy scalars on the host): reading them would wait for the device, so the
model reads a whole batch's sums once (``port.model.ConvNet.finish_batch``).
"""
from __future__ import annotations

from port import layer_kernels as lk
from port.gradients import to_descent
from port.layers.base import (PASS_MULTIVIEW_TEST, PASS_MULTIVIEW_TEST_END,
                              PASS_MULTIVIEW_TEST_START, Layer, has_flag)


def device_total(total):
    """A sum as float64 where it is (no host round trip; the sum itself stays in the inputs' dtype)."""
    return total.astype("float64")


class CostLayer(Layer):
    """A terminal layer with a coefficient; with ``coeff == 0`` it sends no gradient.

    Ports: alexnet-2012/src/layer.cu:1630-1633 CostLayer::CostLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.coeff = float(dic["coeff"])
        self.costv: list = []                                    # 0-d float64 device arrays

    def is_grad_producer(self) -> bool:
        """Ports: alexnet-2012/src/layer.cu:1653-1655 CostLayer::isGradProducer"""
        return self.coeff != 0

    def get_cost(self) -> list:
        """Ports: alexnet-2012/src/layer.cu:1657-1661 CostLayer::getCost"""
        return list(self.costv)


class LogregCostLayer(CostLayer):
    """Inputs (labels (1, N), probs (C, N)). Values: [Σ −log p_y, N − top-1 hits, N − top-k hits].

    Multiview test passes average the probabilities of the views before scoring.

    Ports: alexnet-2012/src/layer.cu:1800-1802 LogregCostLayer::LogregCostLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.topk = int(dic["topk"])
        self.probs_accum = None                                  # (C, N)
        self.num_accumed = 0

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1804-1839 LogregCostLayer::fpropActs"""
        if inp_idx != 0:
            return
        labels, probs = self.inputs[0], self.inputs[1]
        do_compute = not has_flag(PASS_MULTIVIEW_TEST, pass_type)
        if not do_compute:
            if has_flag(PASS_MULTIVIEW_TEST_START, pass_type):
                self.probs_accum = probs.copy()
                self.num_accumed = 1
            else:
                self.probs_accum = self.probs_accum + probs
                self.num_accumed += 1
            if has_flag(PASS_MULTIVIEW_TEST_END, pass_type):
                self.probs_accum = self.probs_accum * (1.0 / self.num_accumed)
                probs = self.probs_accum
                do_compute = True
        if do_compute:
            num_cases = int(labels.size)
            if self.topk == 1:
                log_probs, correct = lk.compute_logreg_cost(labels, probs)
                topk = correct
            else:
                log_probs, correct, topk = lk.compute_multi_softmax_cost(labels, probs, self.topk)
            self.acts = log_probs                                # (1, N)
            self.costv = [-device_total(log_probs.sum()), num_cases - device_total(correct.sum()),
                          num_cases - device_total(topk.sum())]

    def bprop_acts(self, v, inp_idx, pass_type):
        """coeff·1[y]/p to the probabilities, unless the softmax below computes the fused form.

        Ports: alexnet-2012/src/layer.cu:1845-1858 LogregCostLayer::bpropActs
        """
        if inp_idx != 1:
            return None
        below = self.prev[1]
        if len(below.next) > 1 or below.type != "softmax":
            return lk.compute_logreg_grad(self.inputs[0], self.inputs[1], self.coeff)
        return None


class SumOfSquaresCostLayer(CostLayer):
    """Value Σx²; gradient −2·coeff·x.

    Ports: alexnet-2012/src/layer.cu:1942-1943 SumOfSquaresCostLayer::SumOfSquaresCostLayer
    """

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1945-1949 SumOfSquaresCostLayer::fpropActs"""
        self.acts = self.inputs[0] * self.inputs[0]
        self.costv = [device_total(self.acts.sum())]

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1951-1953 SumOfSquaresCostLayer::bpropActs"""
        return to_descent(2.0 * self.coeff * self.inputs[0])


# The other six costs subclass CostLayer above, so their modules are imported here, after it: a
# module that imports port.layers.cost_ext first still runs this file to its end first (the
# package's __init__ imports this module before them), and they find CostLayer defined.
from port.layers.cost_ext import (CrossEnt2CostLayer, CrossEntCostLayer,  # noqa: E402
                                  GatedSumOfSquaresCostLayer, RobustFlickrCost, TICACostLayer)
from port.layers.multisoftmax import MultiSoftmaxCostLayer  # noqa: E402

# The cost factory, all eight costs, keyed by the cfg type string, in makeCostLayer's order.
# Ports: alexnet-2012/src/layer.cu:1663-1682 CostLayer::makeCostLayer
cost_classes = {
    "cost.crossent": CrossEntCostLayer,
    "cost.crossent2": CrossEnt2CostLayer,
    "cost.logreg": LogregCostLayer,
    "cost.sum2": SumOfSquaresCostLayer,
    "cost.gsum2": GatedSumOfSquaresCostLayer,
    "cost.tica": TICACostLayer,
    "cost.msm": MultiSoftmaxCostLayer,
    "cost.rflickr": RobustFlickrCost,
}

__all__ = ["CostLayer", "LogregCostLayer", "SumOfSquaresCostLayer", "cost_classes"]
