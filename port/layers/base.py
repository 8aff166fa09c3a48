"""The two base classes of every layer: :class:`Layer` (forward, gradient gathering, backward)
and :class:`WeightLayer` (weight matrices, their gradients, update and gradient check).

The twin of ``Layer`` and ``WeightLayer`` in layer.cu / layer.cuh, on one device: a layer holds
its output ``acts`` and the sum ``acts_grad`` of the gradients its consumers sent it; the model
(port/model.py) calls :meth:`Layer.fprop` in topological order and :meth:`Layer.bprop` in
reverse order, which replaces the original's per-GPU threads and messages.

DIVERGES: one thread. The original ran each GPU's layers in their own thread and shared buffers
between layers (actsTarget/actsGradTarget); here the model runs every layer in turn, each on its
device (``device``, from its cfg column ``column``: port/devices.py), and every layer owns its
arrays.

Layout: every activation is a (D, N) matrix, cases last; images are (C, H, W, N) flattened
row-major as c·H·W + y·W + x. Sign: ``acts_grad`` and every weight ``grad`` hold the descent
direction −∂L/∂· (port/gradients.py).
"""
from __future__ import annotations

from port.lr import make_schedule
from port.weights import Weights

# Pass types (util.cuh).
PASS_TRAIN = 0x1
PASS_TEST = 0x2
PASS_GC = 0x4
PASS_MULTIVIEW_TEST = PASS_TEST | 0x8
PASS_MULTIVIEW_TEST_START = PASS_MULTIVIEW_TEST | 0x10
PASS_MULTIVIEW_TEST_END = PASS_MULTIVIEW_TEST | 0x20
PASS_FEATURE_GEN = 0x40


def has_flag(flag: int, pass_type: int) -> bool:
    """Ports: alexnet-2012/include/util.cuh:64-67 HAS_FLAG"""
    return (pass_type & flag) == flag


class Layer:
    """A node of the net: inputs ``prev``, consumers ``next``, output ``acts``, gradient ``acts_grad``.

    Subclasses implement ``fprop_acts(inp_idx, scale_targets, pass_type)`` (set ``self.acts`` for
    the first input, add for the others: :meth:`_set_acts`) and
    ``bprop_acts(v, inp_idx, pass_type)`` returning input ``inp_idx``'s gradient contribution
    (or None for none); :meth:`bprop` sums the contributions into the producers' ``acts_grad``.

    Ports: alexnet-2012/src/layer.cu:45-66 Layer::Layer
    Ports: alexnet-2012/include/layer.cuh:87-168 Layer
    """

    def __init__(self, dic: dict, net):
        self.dic = dic
        self.net = net                     # the ConvNet: progress, minibatch size, rng, dtype
        self.name: str = dic["name"]
        self.type: str = dic["type"]
        self.num_outputs: int = int(dic["outputs"])
        self._grad_consumer = bool(dic["gradConsumer"])
        self._found_grad_consumers = False
        self.prev: list[Layer] = []
        self.next: list[Layer] = []
        self.inputs: list = []             # the prev layers' acts, each (D_i, N)
        self.acts = None                   # (outputs, N)
        self.acts_grad = None              # (outputs, N), descent direction
        self.rcvd_b_inputs = 0
        self.column: int = int(dic.get("gpu", -1))   # the cfg's gpu= (−1: data layers)
        self.device: int = 0                         # where it runs (set by the model)
        self._grads_in: dict = {}                    # column sent from → summed contributions

    # ---- graph
    def add_prev(self, layer: "Layer") -> None:
        """Ports: alexnet-2012/src/layer.cu:382-384 Layer::addPrev"""
        self.prev.append(layer)

    def add_next(self, layer: "Layer") -> None:
        """DIVERGES: the original inserts at a random place to vary the cross-GPU message order; one
        device has no messages.

        Ports: alexnet-2012/src/layer.cu:370-380 Layer::addNext
        """
        self.next.append(layer)

    def is_grad_consumer(self) -> bool:
        """Does this layer, or one below it, need the gradient (for weights)?

        Ports: alexnet-2012/src/layer.cu:412-421 Layer::isGradConsumer
        """
        if not self._found_grad_consumers:
            for p in self.prev:
                self._grad_consumer |= p.is_grad_consumer()
            self._found_grad_consumers = True
        return self._grad_consumer

    def is_grad_producer(self) -> bool:
        """Ports: alexnet-2012/src/layer.cu:423-425 Layer::isGradProducer"""
        return True

    # ---- forward
    def _set_acts(self, result, scale_targets: float) -> None:
        """``acts = scale_targets·acts + result``: the first input writes, the others add."""
        self.acts = result if scale_targets == 0 else self.acts + result

    def fprop(self, inputs: list, pass_type: int) -> None:
        """Run ``fprop_acts`` for every input: the first writes the output, the others add.

        Ports: alexnet-2012/src/layer.cu:146-168 Layer::fprop
        """
        self.inputs = list(inputs)
        for i in range(len(self.prev)):
            self.fprop_acts(i, 1 if i > 0 else 0, pass_type)

    def fprop_acts(self, inp_idx: int, scale_targets: float, pass_type: int) -> None:
        raise NotImplementedError(f"{type(self).__name__}.fprop_acts")

    # ---- backward
    def receive_grad(self, contribution, sender: "Layer | None" = None) -> None:
        """Sum one consumer's gradient (None: it sent none) with the others of its column.

        Ports: alexnet-2012/src/layer.cu:285-296 Layer::bprop
        """
        if contribution is not None:
            col = self.column if sender is None else sender.column
            have = self._grads_in.get(col)
            self._grads_in[col] = contribution if have is None else have + contribution
        self.rcvd_b_inputs += 1

    def gather_grad(self):
        """``acts_grad``: this column's sum, plus each other column's sum brought across
        (``net.cross_back``: copied to this device, float16 with ``quantB=half``).

        Ports: alexnet-2012/src/layer.cu:170-270 Layer::bprop
        """
        v = self._grads_in.pop(self.column, None)
        for col, g in self._grads_in.items():
            cross = getattr(self.net, "cross_back", None)
            g = cross(self, col, g) if cross is not None else g
            v = g if v is None else v + g
        self._grads_in = {}
        self.acts_grad = v
        return v

    def bprop(self, pass_type: int) -> None:
        """Compute weight gradients, then send every gradient-consuming input its gradient.

        Called once all consumers have sent theirs (the model walks the layers in reverse
        topological order, which is what the original's counting of received inputs ensures).

        Ports: alexnet-2012/src/layer.cu:170-270 Layer::bprop
        Ports: alexnet-2012/src/layer.cu:272-297 Layer::bprop
        """
        v = self.gather_grad()
        self.bprop_common(v, pass_type)
        if self.is_grad_producer():
            for i, p in enumerate(self.prev):
                if p.is_grad_consumer():
                    p.receive_grad(self.bprop_acts(v, i, pass_type), sender=self)

    def bprop_common(self, v, pass_type: int) -> None:
        """Ports: alexnet-2012/include/layer.cuh:113-115 bpropCommon"""

    def bprop_acts(self, v, inp_idx: int, pass_type: int):
        raise NotImplementedError(f"{type(self).__name__} has no backward pass")

    def reset(self) -> None:
        """Ports: alexnet-2012/src/layer.cu:329-335 Layer::reset"""
        self.rcvd_b_inputs = 0
        self.acts_grad = None
        self._grads_in = {}

    def get_num_cases(self, v) -> int:
        """The N that weight gradients are divided by: this minibatch's, or freq·mini.

        Ports: alexnet-2012/src/layer.cu:337-341 Layer::getNumCases
        """
        if self.net.wupdate_freq == 1:
            return int(v.shape[1])
        return self.net.wupdate_freq * self.net.minibatch_size

    # ---- weights (none here)
    def update_weights(self) -> bool:
        """Ports: alexnet-2012/include/layer.cuh:159-161 updateWeights"""
        return False

    def check_gradients(self) -> None:
        """Ports: alexnet-2012/include/layer.cuh:162-163 checkGradients"""

    def copy_to_cpu(self) -> None:
        """Ports: alexnet-2012/include/layer.cuh:164-165 copyToCPU"""

    def copy_to_gpu(self) -> None:
        """Ports: alexnet-2012/include/layer.cuh:166-167 copyToGPU"""

    def num_params(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _make_schedule(spec, base: float, rng):
    return make_schedule(spec if spec is not None else {"type": "default", "params": {}}, base, rng)


class WeightLayer(Layer):
    """A layer with weight matrices (one per input) and a bias vector.

    ``use_grad`` is the subclass's wish (conv: True; fc, local: False); biases always use it.
    Gradient-check steps: 0.02 for weights, 0.05 for biases (subclasses change them).

    Ports: alexnet-2012/src/layer.cu:527-579 WeightLayer::WeightLayer
    """

    def __init__(self, dic: dict, net, use_grad: bool):
        super().__init__(dic, net)
        n_in = len(dic["inputs"])
        eps_w = [float(e) for e in dic["epsW"]]
        mom_w = [float(m) for m in dic["momW"]]
        wc = [float(w) for w in dic["wc"]]
        wball = [float(w) for w in dic["wballNormed"]]
        super_eps = float(dic["superEps"])
        src_layers = dic["weightSourceLayers"]
        src_idx = dic["weightSourceMatrixIndices"]
        dtype = net.dtype
        self.weights: list[Weights] = []
        for i in range(n_in):
            sched = _make_schedule(dic["schedW"], eps_w[i], net.rng)
            if src_layers[i] == self.name:
                w = Weights.shared(self.weights[src_idx[i]], sched, eps_w[i])
            elif src_layers[i]:
                w = Weights.shared(net.layers[src_layers[i]].weights[src_idx[i]], sched, eps_w[i])
            else:
                w = Weights(dic["weights"][i], dic["weightsInc"][i], sched, eps_w[i], wc[i], wball[i],
                            mom_w[i], super_eps, use_grad, dtype=dtype)
            self.weights.append(w)
        eps_b = float(dic["epsB"])
        self.biases = Weights(dic["biases"], dic["biasesInc"], _make_schedule(dic["schedB"], eps_b, net.rng),
                              eps_b, 0.0, 0.0, float(dic["momB"]), super_eps, True, dtype=dtype)
        self.w_step = 0.02
        self.b_step = 0.05
        self.grad_computed = False

    def _accumulate(self, weights: Weights, grad_sum, v, pass_type: int) -> None:
        """Store one weight gradient (descent direction, summed over the cases of ``v``)."""
        weights.accumulate(grad_sum, self.get_num_cases(v), pass_type == PASS_GC, self.net.progress)

    def bprop_common(self, v, pass_type: int) -> None:
        """Bias and weight gradients, for the matrices whose ε > 0.

        Ports: alexnet-2012/src/layer.cu:581-595 WeightLayer::bpropCommon
        """
        if self.biases.base_rate > 0:
            self.bprop_biases(v, pass_type)
        for i, w in enumerate(self.weights):
            if w.base_rate > 0:
                self.bprop_weights(v, i, pass_type)
        self.grad_computed = True

    def bprop_biases(self, v, pass_type: int) -> None:
        raise NotImplementedError

    def bprop_weights(self, v, inp_idx: int, pass_type: int) -> None:
        raise NotImplementedError

    def constrain_weights(self) -> None:
        raise NotImplementedError

    def update_weights(self) -> bool:
        """Update every matrix (owners only), then apply the layer's constraints.

        Ports: alexnet-2012/src/layer.cu:597-606 WeightLayer::updateWeights
        """
        if self.grad_computed and self.net.num_bwd_mini_passes == 0:
            for w in self.weights:
                w.update(self.net.progress)
            self.biases.update(self.net.progress)
            self.constrain_weights()
            self.grad_computed = False
            return True
        return False

    def copy_to_cpu(self) -> None:
        """Ports: alexnet-2012/src/layer.cu:608-611 WeightLayer::copyToCPU"""
        for w in self.weights:
            w.copy_to_cpu()
        self.biases.copy_to_cpu()

    def copy_to_gpu(self) -> None:
        """Ports: alexnet-2012/src/layer.cu:613-616 WeightLayer::copyToGPU"""
        for w in self.weights:
            w.copy_to_gpu()
        self.biases.copy_to_gpu()

    def check_gradients(self) -> None:
        """Ports: alexnet-2012/src/layer.cu:618-623 WeightLayer::checkGradients"""
        for i, w in enumerate(self.weights):
            self.net.check_gradient(f"{self.name} weights[{i}]", self.w_step, w)
        self.net.check_gradient(f"{self.name} biases", self.b_step, self.biases)

    def num_params(self) -> int:
        n = sum(int(w.host_w.size) for w in self.weights if w.is_owner())
        return n + int(self.biases.host_w.size)


__all__ = ["Layer", "WeightLayer", "has_flag", "PASS_TRAIN", "PASS_TEST", "PASS_GC",
           "PASS_MULTIVIEW_TEST", "PASS_MULTIVIEW_TEST_START", "PASS_MULTIVIEW_TEST_END",
           "PASS_FEATURE_GEN"]
