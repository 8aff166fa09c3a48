"""The network: builds the layers from the parsed layer dicts, and runs the forward pass, the
backward pass with gradient gathering, the weight update, the numerical gradient check, the
multiview test and the feature writer.

The twin of ``ConvNet`` (convnet.cu), of the workers that drive it (worker.cu: TrainingWorker,
GradCheckWorker, MultiviewTestWorker, FeatureWorker, SyncWorker), of ``Cost`` (cost.cu) and of
the Python-facing functions of pyconvnet.cu (startBatch/finishBatch, checkGradients,
startMultiviewTest, startFeatureWriter, syncWithHost), in snake_case.

DIVERGES: one thread. The original ran each GPU's layers in a thread with message queues and ran the
workers on a manager thread, so startBatch returned at once; here start_* does the work and
finish_batch returns its result, and each layer runs in turn on its device (port/devices.py).

Layout: data matrices and activations are (D, N), cases last. Sign: back-propagated matrices and
weight gradients are the descent direction −∂L/∂· (port/gradients.py). Randomness (dropout
masks, nrelu noise) is drawn on the device, keyed by the model's NumPy Generator, whose state
:meth:`ConvNet.get_rng_state` returns for checkpoints. Costs stay on the device while a batch
runs and are read back once, in :meth:`ConvNet.finish_batch` (one host synchronisation per batch).
"""
from __future__ import annotations

import sys

import numpy as np

from port import backend
from port.devices import Devices, backend_devices, place, quantize
from port.errors import UserError
from port.gradients import from_descent
from port.layers import CostLayer, DataLayer, make_layer
from port.layers.base import (PASS_FEATURE_GEN, PASS_GC, PASS_MULTIVIEW_TEST,
                              PASS_MULTIVIEW_TEST_END, PASS_MULTIVIEW_TEST_START, PASS_TEST,
                              PASS_TRAIN, Layer)

GC_REL_ERR_THRESH = 0.02     # util.cuh
GC_SUPPRESS_PASSES = False   # util.cuh


class Cost:
    """Cost values per cost layer (sums over cases) and the number of cases they cover.

    The values are the cost layers' 0-d device arrays, summed on the device; :meth:`host_map`
    reads them all in one transfer.

    Ports: alexnet-2012/src/cost.cu:40-45 Cost::Cost
    """

    def __init__(self, num_cases: int = 0, costs: list[CostLayer] | None = None):
        self.num_cases = num_cases
        self.cost_map: dict[str, list] = {}
        self.coeff_map: dict[str, float] = {}
        for c in costs or []:
            self.cost_map[c.name] = c.get_cost()
            self.coeff_map[c.name] = c.coeff

    def get_value(self) -> float:
        """Σ coeff·value[0] over the cost layers: the objective of the gradient check.

        Ports: alexnet-2012/src/cost.cu:64-70 Cost::getValue
        """
        return float(sum(self.coeff_map[k] * v[0] for k, v in self.cost_map.items()))

    def host_map(self) -> dict[str, list[float]]:
        """cost name → values as Python floats, copied from the device at once (one synchronisation)."""
        flat = [v for vals in self.cost_map.values() for v in vals]
        xp = backend.get_array_module(*flat)
        if xp is np:
            host = [float(v) for v in flat]
        else:
            host = backend.to_host(xp.stack([xp.asarray(v, dtype=xp.float64) for v in flat])).tolist()
        out, i = {}, 0
        for k, vals in self.cost_map.items():
            out[k], i = host[i:i + len(vals)], i + len(vals)
        return out

    def __iadd__(self, other: "Cost") -> "Cost":
        """Ports: alexnet-2012/src/cost.cu:72-93 Cost::operator"""
        for k, v in other.cost_map.items():
            mine = self.cost_map.setdefault(k, [])
            self.coeff_map.setdefault(k, other.coeff_map[k])
            for i, x in enumerate(v):
                if len(mine) <= i:
                    mine.append(0.0)
                mine[i] += x
        self.num_cases += other.num_cases
        return self


def _topological_order(layers: dict[str, Layer]) -> list[Layer]:
    """The layers with every layer after its inputs, ties in dict order."""
    order, done = [], set()
    pending = list(layers.values())
    while pending:
        rest = []
        for l in pending:
            if all(p.name in done for p in l.prev):
                order.append(l)
                done.add(l.name)
            else:
                rest.append(l)
        if len(rest) == len(pending):
            raise UserError("the layer graph has a cycle through: " + ", ".join(l.name for l in rest))
        pending = rest
    return order


class ConvNet:
    """The net built from ``layers`` (name → layer dict, as port.layer.parse_layers returns).

    This is the C++ ``ConvNet`` (convnet.cu); the Python driver of the same name is
    :class:`port.convnet.ConvNet`, which holds this one as ``libmodel``.

    The weights are copied to the chosen backend (copyToGPU) in ``dtype`` (float32 as the
    original; float64 for exact gradient tests); :meth:`sync_with_host` writes them back into
    the dicts' NumPy arrays. ``devices`` (default: every CUDA device, or the host) places each
    layer on the device of its cfg column when there are enough of them (port/devices.py).

    Ports: alexnet-2012/src/convnet.cu:46-115 ConvNet::ConvNet
    Ports: alexnet-2012/src/pyconvnet.cu:70-100 initModel
    """

    def __init__(self, layers: dict, minibatch_size: int = 128, wupdate_freq: int = 1,
                 rng: np.random.Generator | int | None = None, dtype=np.float32,
                 devices: Devices | None = None):
        if wupdate_freq < 1:
            raise UserError(f"--wupdate-freq must be ≥ 1, got {wupdate_freq}")
        self.layer_dicts = layers
        self.minibatch_size = int(minibatch_size)
        self.wupdate_freq = int(wupdate_freq)
        self.dtype = np.dtype(dtype)
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.progress = 0.0
        self.num_bwd_mini_passes = 0
        self.layers: dict[str, Layer] = {}
        for name, dic in layers.items():
            self.layers[name] = make_layer(dic, self)
        for name, dic in layers.items():
            for inp in dic.get("inputs", []) or []:
                if inp not in self.layers:
                    raise UserError(f"layer '{name}': input layer '{inp}' is not defined")
                self.layers[name].add_prev(self.layers[inp])
                self.layers[inp].add_next(self.layers[name])
        self.order = _topological_order(self.layers)
        self.devices = devices if devices is not None else backend_devices()
        for name, dev in place({n: l.column for n, l in self.layers.items()}, self.devices).items():
            self.layers[name].device = dev
        self._sent: dict = {}
        self.data_layers = [l for l in self.order if isinstance(l, DataLayer)]
        self.cost_layers = [l for l in self.order if isinstance(l, CostLayer)]
        self._result: Cost | None = None
        self._data: list | None = None
        self._num_tests = self._num_failures = 0
        self._uploader = None
        self._base_err = 0.0
        # Data parallelism (port/parallel.py): None in one process.
        self.parallel = None
        self.gradient_sink = None
        self.copy_to_gpu()

    # ---- randomness
    def random_uniform(self, shape):
        """U[0, 1) samples of ``shape`` in the net's dtype, drawn on the device, keyed by the
        model's Generator (port.backend.uniform: no host array, no upload). Data-parallel: drawn
        for the global minibatch, this rank's columns kept (port/parallel.py)."""
        if self.parallel is not None:
            return self.parallel.random_uniform(shape, lambda s: backend.uniform(self.rng, s, self.dtype))
        return backend.uniform(self.rng, shape, self.dtype)

    def get_rng_state(self) -> dict:
        """The Generator's state as JSON-able data (for checkpoints)."""
        return self.rng.bit_generator.state

    def set_rng_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    # ---- weights on the device and back
    def copy_to_gpu(self) -> None:
        """Ports: alexnet-2012/src/convnet.cu:192-194 ConvNet::copyToGPU"""
        for l in self.layers.values():
            with self.devices.context(l.device):
                l.copy_to_gpu()

    def sync_with_host(self) -> None:
        """Write weights, weightsInc, biases and biasesInc into the layer dicts' arrays in place.

        Ports: alexnet-2012/src/pyconvnet.cu:231-241 syncWithHost
        Ports: alexnet-2012/src/worker.cu:112-115 SyncWorker::run
        """
        for l in self.layers.values():
            l.copy_to_cpu()

    def num_params(self) -> int:
        """The number of weights and biases (shared matrices counted once)."""
        return sum(l.num_params() for l in self.layers.values())

    # ---- passes
    def _to_device(self, data: list) -> list:
        if not data:
            raise UserError("a batch must hold at least one data matrix")
        n = data[0].shape[1]
        for i, d in enumerate(data):
            if d.ndim != 2 or d.shape[1] != n:
                raise UserError(f"data matrix {i} has shape {d.shape}; expected (D, {n}) like matrix 0")
        return self._batch_uploader().take(data)

    def _batch_uploader(self):
        if self._uploader is None:
            from port.device_kernels import BatchUploader  # noqa: PLC0415 (no cycle at import)

            self._uploader = BatchUploader(self.dtype)
        return self._uploader

    def prefetch(self, data: list) -> None:
        """Start copying the next batch to the device while this one computes (CuPy: pinned
        memory, a copy stream; :meth:`start_batch` then takes it). Nothing on NumPy.

        Port-only: the original's driver loaded the next batch on the host meanwhile
        (convnet.py's get_next_batch between startBatch and finishBatch) and copied it in
        startBatch."""
        self._batch_uploader().prefetch(data)

    def reset(self) -> None:
        """Ports: alexnet-2012/src/convnet.cu:200-202 ConvNet::reset"""
        for l in self.layers.values():
            l.reset()

    def fprop(self, data: list, pass_type: int) -> None:
        """Forward pass of one minibatch (device matrices, one per data layer index).

        Ports: alexnet-2012/src/convnet.cu:204-219 ConvNet::fprop
        """
        self._data = data
        self.reset()
        self._sent = {}
        for dl in self.data_layers:
            if dl.data_idx >= len(data):
                raise UserError(f"layer '{dl.name}': dataIdx={dl.data_idx}, but the batch has "
                                f"{len(data)} data matrices")
            dl.start_fprop(data, pass_type)
        for l in self.order:
            if not isinstance(l, DataLayer):
                inputs = [self.cross(p, l) for p in l.prev]
                with self.devices.context(l.device):
                    l.fprop(inputs, pass_type)

    @staticmethod
    def crosses(a: Layer, b: Layer) -> bool:
        """Do ``a`` and ``b`` lie in different cfg columns (data layers lie in none)?"""
        return a.column >= 0 and b.column >= 0 and a.column != b.column

    def cross(self, producer: Layer, consumer: Layer):
        """``producer``'s output as ``consumer`` sees it: float16-rounded across columns with
        ``quantF=half``, copied once per device it is needed on.

        Ports: alexnet-2012/src/layer.cu:78-109 Layer::fpropNext
        """
        acts = producer.acts
        if acts is None or (not self.crosses(producer, consumer) and producer.device == consumer.device):
            return acts
        key = (producer.name, self.crosses(producer, consumer), consumer.device)
        if key not in self._sent:
            x = quantize(acts, producer.dic.get("quantF")) if key[1] else acts
            if producer.device != consumer.device:
                x = self.devices.copy(x, producer.device, consumer.device)
            self._sent[key] = x
        return self._sent[key]

    def cross_back(self, producer: Layer, column: int, grad):
        """The gradient summed in ``column`` as ``producer`` receives it: float16-rounded with
        ``quantB=half`` when it crosses columns, copied to the producer's device.

        Ports: alexnet-2012/src/layer.cu:170-270 Layer::bprop
        """
        if producer.column >= 0 and column >= 0 and column != producer.column:
            grad = quantize(grad, producer.dic.get("quantB"))
        src = next((l.device for l in producer.next if l.column == column), producer.device)
        if src != producer.device:
            grad = self.devices.copy(grad, src, producer.device)
        return grad

    def bprop(self, pass_type: int) -> None:
        """Backward pass: costs first, then every layer once all its consumers have sent theirs.

        Ports: alexnet-2012/src/convnet.cu:244-252 ConvNet::bprop
        Ports: alexnet-2012/src/layer.cu:1639-1643 CostLayer::bprop
        """
        self.num_bwd_mini_passes = (self.num_bwd_mini_passes + 1) % self.wupdate_freq
        for l in reversed(self.order):
            if isinstance(l, CostLayer) and l.coeff == 0:
                continue
            if isinstance(l, CostLayer) or l.rcvd_b_inputs > 0:
                with self.devices.context(l.device):
                    l.bprop(pass_type)
        self.reset()

    def update_weights(self) -> None:
        """Ports: alexnet-2012/src/convnet.cu:196-198 ConvNet::updateWeights"""
        for l in self.layers.values():
            with self.devices.context(l.device):
                l.update_weights()

    def get_cost(self) -> Cost:
        """Ports: alexnet-2012/src/convnet.cu:271-279 ConvNet::getCost"""
        return Cost(int(self._data[0].shape[1]), self.cost_layers)

    def get_cost_value(self) -> float:
        """Ports: alexnet-2012/src/convnet.cu:281-286 ConvNet::getCostValue"""
        return self.get_cost().get_value()

    def _minibatches(self, data: list):
        n = data[0].shape[1]
        for start in range(0, n, self.minibatch_size):
            yield [d[:, start:start + self.minibatch_size] for d in data]

    # ---- pyconvnet entry points
    def start_batch(self, data: list, progress: float, test: bool = False) -> None:
        """Train (fprop, cost, bprop, update per minibatch) or test (fprop, cost) on a batch.

        Ports: alexnet-2012/src/pyconvnet.cu:105-121 startBatch
        Ports: alexnet-2012/src/worker.cu:89-102 TrainingWorker::run
        """
        self.progress = float(progress)
        if self.parallel is not None:   # this rank's share of every minibatch (port/parallel.py)
            self._result = self.parallel.run_batch(self, data, self.progress, test)
            return
        batch_cost = Cost(0)
        for mini in self._minibatches(self._to_device(data)):
            self.fprop(mini, PASS_TEST if test else PASS_TRAIN)
            batch_cost += self.get_cost()
            if not test:
                self.bprop(PASS_TRAIN)
                self.update_weights()
        self._result = batch_cost

    def finish_batch(self) -> tuple[dict[str, list[float]], int]:
        """(cost name → values summed over the batch's cases, number of cases).

        The costs are read from the device here, once per batch: the driver loads the next batch
        between start_batch and finish_batch while the device still computes.

        Ports: alexnet-2012/src/pyconvnet.cu:187-208 finishBatch
        """
        if self._result is None:
            raise UserError("finish_batch called without a batch started")
        cost, self._result = self._result, None
        if self.parallel is not None:   # summed over the ranks
            return self.parallel.global_cost(cost.host_map(), cost.num_cases)
        return cost.host_map(), cost.num_cases

    def start_multiview_test(self, data: list, num_views: int, probs: np.ndarray | None = None,
                             logreg_name: str | None = None) -> None:
        """Test on a batch whose columns hold ``num_views`` contiguous blocks of views.

        Each minibatch runs every view (START, …, END passes); cost.logreg averages the views'
        probabilities, which fill ``probs`` (N/num_views, C) when given. As in the original,
        with one view there is no END pass and logreg computes no new cost.

        Ports: alexnet-2012/src/pyconvnet.cu:126-144 startMultiviewTest
        Ports: alexnet-2012/src/worker.cu:150-177 MultiviewTestWorker::run
        """
        if self.parallel is not None:   # this rank's share of the real cases, in every view
            if probs is not None:
                raise UserError("--test-out is not supported with --data-parallel (each rank holds part "
                                "of the predictions)")
            n = data[0].shape[1]
            if num_views >= 1 and n % num_views == 0:
                cols = self.parallel.multiview_columns(n, num_views, self.minibatch_size)
                data = [np.ascontiguousarray(d[:, cols]) for d in data]
        dev = self._to_device(data)
        n = dev[0].shape[1]
        if num_views < 1 or n % num_views != 0:
            raise UserError(f"multiview test: {n} cases are not {num_views} equal views")
        if probs is not None and (logreg_name not in self.layers or
                                  self.layers[logreg_name].type != "cost.logreg"):
            raise UserError(f"--logreg-name: no cost.logreg layer named {logreg_name!r}")
        real = n // num_views
        mini = self.minibatch_size
        batch_cost = Cost(0)
        for i in range(-(-real // mini)):
            for v in range(num_views):
                lo, hi = v * real + i * mini, min((v + 1) * real, v * real + (i + 1) * mini)
                pass_type = (PASS_MULTIVIEW_TEST_START if v == 0 else
                             PASS_MULTIVIEW_TEST_END if v == num_views - 1 else PASS_MULTIVIEW_TEST)
                self.fprop([d[:, lo:hi] for d in dev], pass_type)
            if probs is not None:
                acc = self.layers[logreg_name].probs_accum                     # (C, n_mini)
                probs[i * mini:min(real, (i + 1) * mini)] = backend.to_host(acc).T
            batch_cost += self.get_cost()
        self._result = batch_cost

    def start_feature_writer(self, data: list, ftrs: np.ndarray, layer_name: str) -> None:
        """Forward the batch and write layer ``layer_name``'s outputs into ``ftrs`` (N, D).

        Ports: alexnet-2012/src/pyconvnet.cu:146-164 startFeatureWriter
        Ports: alexnet-2012/src/worker.cu:201-229 FeatureWorker::run
        """
        if layer_name not in self.layers:
            raise UserError(f"feature writer: no layer named {layer_name!r}")
        dev = self._to_device(data)
        n = dev[0].shape[1]
        layer = self.layers[layer_name]
        if ftrs.shape != (n, layer.num_outputs):
            raise UserError(f"feature writer: ftrs has shape {ftrs.shape}; layer '{layer_name}' "
                            f"needs ({n}, {layer.num_outputs})")
        batch_cost = Cost(0)
        for i, mini in enumerate(self._minibatches(dev)):
            self.fprop(mini, PASS_FEATURE_GEN)
            batch_cost += self.get_cost()
            lo = i * self.minibatch_size
            ftrs[lo:lo + mini[0].shape[1]] = backend.to_host(layer.acts).T
        self._result = batch_cost

    # ---- gradient check
    def check_gradients(self, data: list) -> bool:
        """The original's numerical gradient check on the batch's first minibatch.

        Every weight matrix and bias vector is compared, one element at a time, with the
        one-sided difference (cost(w + h) − cost(w))/(N·h); the check fails when
        ‖numeric − analytic‖/‖analytic‖ ≥ 0.02. Prints the original's report; returns True
        iff every matrix passed (the original exits instead).

        Ports: alexnet-2012/src/convnet.cu:339-360 ConvNet::checkGradients
        Ports: alexnet-2012/src/pyconvnet.cu:210-226 checkGradients
        """
        self._num_failures = self._num_tests = 0
        first = next(self._minibatches(self._to_device(data)))
        self.fprop(first, PASS_GC)
        self._base_err = self.get_cost_value()
        self.bprop(PASS_GC)
        for name in sorted(self.layers):          # the original's std::map order
            self.layers[name].check_gradients()
        print("------------------------")
        if self._num_failures > 0:
            print(f"{self._num_failures}/{self._num_tests} TESTS FAILED")
        else:
            print(f"ALL {self._num_tests} TESTS PASSED")
        sys.stdout.flush()
        return self._num_failures == 0

    def check_gradient(self, name: str, eps: float, weights) -> bool:
        """Check one matrix; returns True when it FAILS (as the original).

        Ports: alexnet-2012/src/convnet.cu:366-415 ConvNet::checkGradient
        """
        data = self._data
        n = int(data[0].shape[1])
        w = weights.w
        rows, cols = w.shape
        num_grad = np.zeros((rows, cols), dtype=np.float64)
        for i in range(rows):
            for j in range(cols):
                v = w[i, j].item()
                w[i, j] = v + eps
                self.fprop(data, PASS_GC)
                err = self.get_cost_value()
                num_grad[i, j] = (err - self._base_err) / (n * eps)
                if not np.isfinite(num_grad[i, j]):
                    w[i, j] = v
                    raise UserError(f"numerical computation produced {num_grad[i, j]} when checking "
                                    f"'{name}'; consider reducing the sizes of the weights or "
                                    f"finite difference steps")
                w[i, j] = v
        analytic = from_descent(backend.to_host(weights.grad).astype(np.float64)) / n
        anal_norm = float(np.linalg.norm(analytic))
        num_norm = float(np.linalg.norm(num_grad))
        rel_err = float(np.linalg.norm(num_grad - analytic)) / anal_norm if anal_norm > 0 else (
            0.0 if num_norm == 0 else float("inf"))
        fail = rel_err >= GC_REL_ERR_THRESH
        if fail or not GC_SUPPRESS_PASSES:
            print("========================")
            print(f"({'****FAIL****' if fail else 'PASS'}) {name} GRADIENT CHECK")
            print("========================")
            print("Analytic:")
            print(np.array2string(analytic[:6, :4], precision=6))
            print("Numeric:")
            print(np.array2string(num_grad[:6, :4], precision=6))
            print(f"Analytic norm: {anal_norm:e}")
            print(f"Numeric norm:  {num_norm:e}")
            print(f"Relative error: {rel_err:e}")
        self._num_tests += 1
        self._num_failures += fail
        return fail


__all__ = ["ConvNet", "Cost", "GC_REL_ERR_THRESH"]
