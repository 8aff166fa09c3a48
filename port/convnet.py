"""``python -m port.convnet``: the 2012 training driver with the original command line.

What this is: :class:`ConvNet`, the twin of the 2012 ``convnet.py`` class of the same name: its
options (on top of ``port.gpumodel``'s), layer parsing on start and on resume, the per-batch and
test printing, multiview testing with ``--test-out`` prediction files, ``--check-grads``, and
:func:`main`. What this is not: the network itself (``port.model``, the twin of the C++ behind
``_ConvNet``), the cfg parser (``port.layer``) or the data providers (``port.data``).

Examples (the original's spellings)::

    python -m port.convnet --data-path=DIR --save-path=SAVE --train-range=1-4 --test-range=5 \\
        --layer-def=layers-80sec.cfg --layer-params=layer-params-80sec.cfg \\
        --data-provider=cifar-cropped --test-freq=13 --epochs=10 --backend=numpy
    python -m port.convnet -f SAVE/ConvNet__2026-01-01_12.00.00 --epochs=20     # resume, exactly
    python -m port.convnet --check-grads=1 --layer-def=L.cfg --layer-params=P.cfg
    python -m port.convnet --help

Every mistake (missing file, bad option, batch range outside the data, corrupt checkpoint, NaN cost)
prints one line and exits 2. ``--check-grads`` exits 0 when every matrix passes, 1 otherwise.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from port import backend, checkpoint, data, model
from port import layer as lay
from port.devices import Devices
from port.errors import UserError, main_guard
from port.gpumodel import CostIsNaN, IGPUModel, ModelStateException, aggregate_costs
from port.layer_def import apply_model_options, check_same_architecture, guess_data_dims
from port.options import (BooleanOptionParser, FloatOptionParser, IntegerOptionParser, ListOptionParser,
                          OptionsParser, StringOptionParser)

PROG = "convnet"


class CheckGradsData:
    """The stand-in data provider of ``--check-grads`` without data: no files, no batches.

    The original was run with ``--data-provider=dummy-lr-<dims>``; that still works. Without it, the
    data layers' sizes are those :func:`guess_data_dims` reads off the cfg, and the data are
    made from the parsed layers (:meth:`ConvNet.check_grads_data`).
    """

    num_views = 1
    curr_epoch, curr_batchnum = 1, 0

    def advance_batch(self):
        pass

    def close(self):
        pass


class ConvNet(IGPUModel):
    """The 2012 driver: the Python ``ConvNet`` of convnet.py. The network it drives, the C++
    ``ConvNet`` of convnet.cu, is :class:`port.model.ConvNet` (``self.libmodel``).

    Ports: alexnet-2012/convnet.py:19-210 ConvNet
    """

    def __init__(self, op: OptionsParser, load_dic: dict | None, dp_params: dict | None = None):
        """Ports: alexnet-2012/convnet.py:20-26 ConvNet.__init__"""
        dp_params = dict(dp_params or {})
        filename_options = []
        for v in ("color_noise", "pca_noise", "multiview_test", "crop_border", "scalar_mean", "minibatch_size"):
            dp_params[v] = op.get_value(v)
        dp_params["seed"] = op.get_value("seed")
        self.writing_test = False
        self.grads_ok = None
        IGPUModel.__init__(self, "ConvNet", op, load_dic, filename_options, dp_params=dp_params)

    # ---- devices, data, layers, model ---------------------------------------------------------

    def get_gpus(self):
        """``--gpu=g0,g1,...``: the CUDA devices of the cfg's columns (CuPy; port/devices.py), the
        first made current. DIVERGES: fewer devices than columns run every column on the first."""
        self.device_ids = list(self.op.get_value("gpu") or [-1])
        if backend.name() == "cupy" and self.device_ids and self.device_ids[0] >= 0:
            backend.xp().cuda.Device(self.device_ids[0]).use()

    def device_description(self) -> str:
        if backend.name() == "cupy":
            return "CUDA device %d (CuPy)" % backend.xp().cuda.Device().id
        if backend.name() == backend.STRICT:
            return "the host CPU (the strict CuPy stand-in, for tests)"
        why = backend.auto_fell_back()
        return "the host CPU (NumPy" + (f"; CuPy not used: {why})" if why else ")")

    def fill_excused_options(self):
        """Ports: alexnet-2012/convnet.py:77-82 ConvNet.fill_excused_options"""
        if self.op.get_value("check_grads"):
            self.op.set_value("save_path", "")
            self.op.set_value("train_batch_range", "0")
            self.op.set_value("test_batch_range", "0")
            self.op.set_value("data_path", "")

    def make_data_provider(self, batch_range, init_epoch, init_batchnum, test):
        """Ports: cuda-convnet-r561/gpumodel.py:99-110 IGPUModel.init_data_providers"""
        if self.check_grads and not (self.dp_type or "").startswith("dummy-"):
            return CheckGradsData()
        params = {k: v for k, v in self.dp_params.items() if k != "convnet"}
        return data.get_instance(self.data_path, batch_range, init_epoch, init_batchnum,
                                 type=self.dp_type, dp_params=params, test=test)

    def init_model_lib(self):
        """Ports: alexnet-2012/convnet.py:34-35 ConvNet.init_model_lib"""
        rng = np.random.default_rng([self.seed, 1])
        saved = self.model_state.get("model_rng")
        # --gpu=0,1 lists the devices (one per cfg column); NumPy has one
        ids = [d for d in self.device_ids if d >= 0] if backend.name() == "cupy" else []
        self.libmodel = model.ConvNet(self.model_state["layers"], minibatch_size=self.minibatch_size,
                                      wupdate_freq=self.wupdate_freq, rng=rng,
                                      devices=Devices(ids or [0]))
        if saved is not None:
            self.libmodel.set_rng_state(saved)

    def layer_options(self) -> dict:
        """What ``port.layer.parse_layers`` needs from the driver and the data provider."""
        dp = self.train_data_provider
        opts = {"conserve_mem": bool(self.conserve_mem), "minibatch_size": self.minibatch_size,
                "initw_source": self.op.get_value("initw_source") or None,
                "rng": np.random.default_rng([self.seed, 0]),
                "log": lambda line: self.write(line, "\n")}
        # DIVERGES: a net may have more columns than devices (one device then runs them all,
        # port/devices.py), so a layer's gpu= is only checked against --num-gpus when given.
        if self.options["num_gpus"].value_given:
            opts["num_gpus"] = self.num_gpus
        if not isinstance(dp, CheckGradsData):
            opts["data_dims"] = dp.get_data_dims
            if hasattr(dp, "get_num_classes"):
                opts["num_classes"] = dp.get_num_classes()
            meta = getattr(dp, "batch_meta", None) or {}
            if "tree" in meta:
                opts["tree"] = meta["tree"]
                opts["root_label"] = (meta.get("all_wnids") or {}).get("gproot")
        return opts

    def init_model_state(self):
        """Parse the layers (on resume: the saved layers, re-reading only the params file), then
        --conv-to-local and --unshare-weights (port.layer applies both).

        Ports: alexnet-2012/convnet.py:37-64 ConvNet.init_model_state
        """
        ms = self.model_state
        opts = self.layer_options()
        if self.load_file:
            opts["saved_from"] = str(checkpoint.resolve(self.load_file))
            lay.check_saved_layers(ms["layers"], opts["saved_from"])
            check_same_architecture(ms["layers"], self.layer_def, opts)
            ms["layers"] = lay.parse_layers(self.layer_def, self.layer_params, opts, layers=ms["layers"])
        else:
            if "data_dims" not in opts:  # --check-grads without a data provider
                opts["data_dims"] = guess_data_dims(self.layer_def, opts)
            ms["layers"] = lay.parse_layers(self.layer_def, self.layer_params, opts)
        apply_model_options(ms["layers"], [n for n in self.op.get_value("conv_to_local") or [] if n],
                            [n for n in self.op.get_value("unshare_weights") or [] if n],
                            lambda line: self.write(line, "\n"))
        self.op.set_value("conv_to_local", [], parse=False)
        self.op.set_value("unshare_weights", [], parse=False)
        self.writing_test = False

    def get_layer_idx(self, layer_name, check_type=()):
        """The layer dict's name, checked (layers are a dict keyed by name in the 2012 code).

        Ports: alexnet-2012/convnet.py:66-75 ConvNet.get_layer_idx
        """
        layers = self.model_state["layers"]
        if layer_name not in layers:
            raise ModelStateException("Layer with name '%s' not defined." % layer_name)
        if check_type and layers[layer_name]["type"] not in check_type:
            raise ModelStateException("Layer with name '%s' has type '%s'; should be one of %s."
                                      % (layer_name, layers[layer_name]["type"],
                                         ",".join("'%s'" % s for s in check_type)))
        return layer_name

    def extra_model_state(self) -> dict:
        """The model's random state and the test provider's position (for exact resumption)."""
        tdp = self.test_data_provider
        if getattr(self.libmodel, "num_bwd_mini_passes", 0):
            self.write("(note: saved in the middle of a --wupdate-freq interval; a resumed run restarts the "
                       "interval, so it will not match an uninterrupted run exactly)", "\n")
        return {"model_rng": self.libmodel.get_rng_state(),
                "test_dp_position": {"epoch": int(tdp.curr_epoch), "batchnum": int(tdp.curr_batchnum),
                                     "batch_range": list(self.test_batch_range)}}

    # ---- batches -------------------------------------------------------------------------------

    def parse_batch_data(self, batch_data, train=True):
        """Ports: alexnet-2012/convnet.py:85-88 ConvNet.parse_batch_data"""
        if any(d.dtype != np.float32 for d in batch_data[2]):
            raise UserError("All matrices returned by data provider must consist of single-precision floats.")
        return batch_data

    def start_batch(self, batch_data, train=True):
        """Ports: alexnet-2012/convnet.py:90-108 ConvNet.start_batch"""
        data = batch_data[2]
        self.writing_test = False
        if self.check_grads:
            self.grads_ok = self.libmodel.check_gradients(data)
        elif not train and self.multiview_test:
            num_views = self.test_data_provider.num_views
            if self.test_out != "" and self.logreg_name != "":
                self.writing_test = True
                self.test_file_name = os.path.join(self.test_out, "test_preds_%d" % batch_data[1])
                self.probs = np.zeros((data[0].shape[1] // num_views, self.test_data_provider.get_num_classes()),
                                      dtype=np.float32)                                   # (N, classes)
                self.libmodel.start_multiview_test(data, num_views, self.probs, self.logreg_name)
            else:
                self.libmodel.start_multiview_test(data, num_views)
        else:
            num_batches_total = self.num_epochs * len(self.train_batch_range)
            progress = min(1.0, max(0.0, float(self.get_num_batches_done() - 1) / num_batches_total))
            self.libmodel.start_batch(data, progress, not train)

    def finish_batch(self):
        """DIVERGES: ``test_preds_<batch>`` is written in the safe checkpoint format
        (``port.checkpoint.load`` reads it: ``{'data': (N, classes) float32, 'note': str}``), not
        pickled.

        Ports: alexnet-2012/convnet.py:110-117 ConvNet.finish_batch
        """
        ret = IGPUModel.finish_batch(self)
        if self.writing_test:
            try:
                os.makedirs(self.test_out, exist_ok=True)
                checkpoint.save(self.test_file_name, {"data": self.probs,
                                                      "note": "generated from %s" % self.save_file})
            except OSError as e:
                raise UserError(f"{self.test_file_name}: cannot write the predictions "
                                f"({e.strerror or e})") from None
        return ret

    # ---- printing ------------------------------------------------------------------------------

    def print_iteration(self):
        """Ports: alexnet-2012/convnet.py:119-120 ConvNet.print_iteration"""
        self.write("%d.%d..." % (self.epoch, self.batchnum))

    def print_train_time(self, compute_time_py):
        """Ports: alexnet-2012/convnet.py:122-123 ConvNet.print_train_time"""
        self.write(" (%.3f sec)" % compute_time_py, "\n")

    def print_costs(self, cost_outputs, where: str = "batch", first_sep: str = " "):
        """Normalise the costs per case (in place, as the original) and print them.

        DIVERGES: a NaN or infinite cost stops with one line naming the batch and exit code 2
        (the original printed "^ got nan or inf!" and exited 1); the last checkpoint is kept.
        Ports: alexnet-2012/convnet.py:125-133 ConvNet.print_costs
        """
        costs, num_cases = cost_outputs[0], cost_outputs[1]
        for i, errname in enumerate(costs):
            costs[errname] = [(v / num_cases) for v in costs[errname]]
            self.write("%s%s:  %s" % (first_sep if i == 0 else " ", errname,
                                      ", ".join("%.6f" % v for v in costs[errname])))
            if any(np.isnan(v) or np.isinf(v) for v in costs[errname]):
                self.write("", "\n")
                saved = (os.path.join(self.checkpoint_dir(), "%d.%d" % self.last_saved)
                         if self.last_saved else None)
                if saved is None and self.load_file:
                    saved = str(checkpoint.resolve(self.load_file))
                raise CostIsNaN(f"{where} {self.epoch}.{self.batchnum}: cost '{errname}' is nan or inf; "
                                f"training stopped (last checkpoint kept: {saved or 'none yet'})")

    def print_train_results(self):
        """Ports: alexnet-2012/convnet.py:135-136 ConvNet.print_train_results"""
        self.print_costs(self.train_outputs[-1], "batch")

    def print_test_results(self):
        """Ports: alexnet-2012/convnet.py:141-156 ConvNet.print_test_results"""
        self.write("\n======================Test output======================", "\n")
        self.print_costs(self.test_outputs[-1], "test after batch", "")
        self.write("", "\n")
        self.write("----------------------Averages-------------------------", "\n")
        self.print_costs((self.aggregate_test_outputs(self.test_outputs[-len(self.test_batch_range):])[0],
                          min(len(self.test_outputs), len(self.test_batch_range))), "test after batch", "")
        self.write("", "\n")
        self.write("-------------------------------------------------------")
        layers = self.model_state["layers"]
        for name in sorted(layers):
            l = layers[name]  # noqa: E741
            if "weights" in l:
                if isinstance(l["weights"], np.ndarray):
                    self.write("\nLayer '%s' weights: %e [%e]" % (l["name"], np.mean(np.abs(l["weights"])),
                                                                   np.mean(np.abs(l["weightsInc"]))))
                elif isinstance(l["weights"], list):
                    for i, (w, wi) in enumerate(zip(l["weights"], l["weightsInc"])):
                        self.write("\nLayer '%s' weights[%d]: %e [%e]" % (l["name"], i, np.mean(np.abs(w)),
                                                                           np.mean(np.abs(wi))))
                self.write("\nLayer '%s' biases: %e [%e]" % (l["name"], np.mean(np.abs(l["biases"])),
                                                              np.mean(np.abs(l["biasesInc"]))))
        self.write("", "\n")

    def conditional_save(self):
        """Ports: alexnet-2012/convnet.py:158-162 ConvNet.conditional_save"""
        path = self.save_state()
        self.write("-------------------------------------------------------", "\n")
        self.write("Saved checkpoint to %s" % path, "\n")
        self.write("=======================================================")

    def aggregate_test_outputs(self, test_outputs):
        """Ports: alexnet-2012/convnet.py:164-172 ConvNet.aggregate_test_outputs"""
        return aggregate_costs(test_outputs)

    # ---- modes ---------------------------------------------------------------------------------

    def check_grads_data(self) -> list[np.ndarray]:
        """Synthetic data of the net's shapes: images uniform in [0, 1), labels below the class count."""
        layers = self.model_state["layers"]
        rng = np.random.default_rng([self.seed, 2])
        n = self.minibatch_size
        data_layers = sorted((l for l in layers.values() if l["type"] == "data"), key=lambda l: l["dataIdx"])
        out = []
        for dl in data_layers:
            classes = None
            for l in layers.values():
                if l["type"].startswith("cost.") and l.get("inputs", [None])[0] == dl["name"] \
                        and len(l["inputs"]) > 1:
                    classes = layers[l["inputs"][1]]["outputs"]
            if classes is not None:
                out.append(rng.integers(0, classes, size=(dl["outputs"], n)).astype(np.float32))  # (1, N)
            else:
                out.append(rng.random((dl["outputs"], n), dtype=np.float32))                       # (D, N)
        return out

    def start(self):
        """``--check-grads``: check every weight matrix and exit 0 only if all pass.

        DIVERGES: the original's GradCheckWorker exited 0 whatever the result.
        Ports: cuda-convnet-r561/gpumodel.py:118-123 IGPUModel.start
        """
        if self.check_grads:
            try:
                if isinstance(self.train_data_provider, CheckGradsData):
                    data = self.check_grads_data()
                    try:
                        self.start_batch((1, 0, data))
                    except UserError as e:
                        # the guessed sizes may not be the ones the net was meant for
                        dims = "+".join(str(d.shape[0]) for d in data)
                        raise UserError(f"{e} (no --data-provider: the data were guessed as {dims} "
                                        "values per case; give the provider, e.g. "
                                        "--data-provider=dummy-lr-27 for 3x3x3 images, as the "
                                        "original's gradient check ran on one)") from None
                else:
                    self.start_batch((1, 0, self.get_next_batch()[2]))
            finally:
                self.close()
            return 0 if self.grads_ok else 1
        return IGPUModel.start(self)

    # ---- options -------------------------------------------------------------------------------

    @classmethod
    def get_options_parser(cls) -> OptionsParser:
        """Ports: alexnet-2012/convnet.py:174-210 ConvNet.get_options_parser"""
        op = IGPUModel.get_options_parser()
        op.add_option("mini", "minibatch_size", IntegerOptionParser, "Minibatch size", default=128)
        op.add_option("layer-def", "layer_def", StringOptionParser, "Layer definition file", set_once=True)
        op.add_option("layer-params", "layer_params", StringOptionParser, "Layer parameter file")
        # DIVERGES: --check-grads also excuses --data-provider (the original needed dummy-lr-<n>).
        op.add_option("check-grads", "check_grads", BooleanOptionParser, "Check gradients and quit?", default=0,
                      excuses=["data_path", "save_path", "train_batch_range", "test_batch_range", "dp_type"])
        op.add_option("multiview-test", "multiview_test", BooleanOptionParser, "Cropped DP: test on multiple patches?",
                      default=0)
        op.add_option("crop-border", "crop_border", IntegerOptionParser, "Cropped DP: crop border size", default=4,
                      set_once=True)
        op.add_option("conv-to-local", "conv_to_local", ListOptionParser(StringOptionParser),
                      "Convert given conv layers to unshared local", default=[])
        op.add_option("unshare-weights", "unshare_weights", ListOptionParser(StringOptionParser),
                      "Unshare weight matrices in given layers", default=[])
        op.add_option("conserve-mem", "conserve_mem", BooleanOptionParser,
                      "Conserve GPU memory (slower)? (accepted, no effect here)", default=0)
        op.add_option("color-noise", "color_noise", FloatOptionParser,
                      "Add PCA noise to color channels with given scale", default=0.0)
        op.add_option("test-out", "test_out", StringOptionParser, "Output test case predictions to given path",
                      default="", requires=["logreg_name", "multiview_test"])
        op.add_option("logreg-name", "logreg_name", StringOptionParser, "Logreg cost layer name (for --test-out)",
                      default="")
        op.add_option("pca-noise", "pca_noise", FloatOptionParser, "Add PCA noise to pixels with given scale",
                      default=0.0)
        op.add_option("scalar-mean", "scalar_mean", FloatOptionParser,
                      "Subtract scalar pixel mean (as opposed to vector)?", default=False)
        op.add_option("wupdate-freq", "wupdate_freq", IntegerOptionParser,
                      "Weight update (inverse) frequency, in minibatches (1 = every minibatch)", default=1)
        # Options of the port (not in the original).
        op.add_option("backend", "backend", StringOptionParser, "Array backend: auto, numpy or cupy",
                      default="auto", save=False)
        op.add_option("seed", "seed", IntegerOptionParser,
                      "Random seed (-1: from the OS; the seed used is saved in checkpoints)", default=-1,
                      set_once=True)
        op.add_option("trust-pickle", "trust_pickle", BooleanOptionParser,
                      "Load a legacy cuda-convnet pickle checkpoint with -f (unpickling can run code)",
                      default=0, save=False)
        op.add_option("initw-source", "initw_source", StringOptionParser,
                      "Saved net that initw.makew/makeb/makec copy from (default: the path initw.py names)",
                      default="", save=False)

        op.prog = "python -m port.convnet"
        op.epilog = _help_epilog
        op.options["max_filesize_mb"].default = 0
        op.options["testing_freq"].default = 50
        op.options["num_epochs"].default = 50000
        op.options["dp_type"].default = None
        # DIVERGES: data-provider keys live in port.data.dp_types (one registry), not here.
        return op


def _help_epilog() -> str:
    return ("Data providers (--data-provider): " + ", ".join(sorted(data.dp_types))
            + "; dummy-lr-<n> needs no files.\n"
            "-f takes a save directory (its newest <epoch>.<batchnum> checkpoint) or one checkpoint file;\n"
            "options given with -f override the saved ones. --max-filesize=0 keeps only the newest checkpoint.")


def _check_save_path(path) -> None:
    """``--save-path`` must be a directory we can write into, or one we can create.

    DIVERGES: the original took an empty --save-path as the current directory and found an
    unusable one only when the first checkpoint was due, after the first --test-freq batches.
    """
    if path is None:
        return  # excused (-f): the checkpoint's own directory is used
    if not str(path).strip():
        raise UserError("option --save-path is empty: give the directory the checkpoints go into")
    p = os.path.abspath(path)
    while not os.path.exists(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    if not os.path.isdir(p):
        raise UserError(f"option --save-path={path}: {p} is not a directory")
    if not os.access(p, os.W_OK | os.X_OK):
        raise UserError(f"option --save-path={path}: {p} is not writable")


def _validate(op: OptionsParser) -> None:
    """Value checks the original left to crashes further down."""
    for name, low in (("minibatch_size", 1), ("testing_freq", 1), ("num_epochs", 1), ("wupdate_freq", 1)):
        o = op.options[name]
        if o.value is not None and o.value < low:
            raise UserError(f"option {o.prefixed_letter}={o.value}: must be at least {low}")
    excused = set()
    for o in op.options.values():
        if o.value and not isinstance(o.value, list) and o.excuses != op.EXCLUDE_ALL:
            excused.update(o.excuses)
    for o in op.options.values():
        if o.default is None and o.value is None and o.name not in excused:
            raise UserError(f"option {o.prefixed_letter} ({o.desc}) is neither given nor in the checkpoint")
    if not op.get_value("check_grads") and not op.get_value("load_file"):
        _check_save_path(op.get_value("save_path"))  # on resume the checkpoint's own folder is used
    if op.get_value("backend") not in backend.CHOICES:
        raise UserError(f"option --backend={op.get_value('backend')}: must be one of {', '.join(backend.CHOICES)}")


@main_guard(PROG)
def main(argv=None) -> int:
    """Parse the command line, build the driver (new or resumed) and run it.

    Ports: alexnet-2012/convnet.py:212-218 __main__
    """
    op = ConvNet.get_options_parser()
    op, load_dic = IGPUModel.parse_options(op, argv, fresh_parser=ConvNet.get_options_parser)
    _validate(op)
    try:
        backend.set_backend(op.get_value("backend"))
    except backend.BackendError as e:
        raise UserError(str(e)) from None
    if op.get_value("seed") is None or op.get_value("seed") < 0:
        op.set_value("seed", int(np.random.SeedSequence().entropy % (2 ** 31)), parse=False)
    if not op.get_value("check_grads") and not op.get_value("load_file"):
        if not os.path.isdir(op.get_value("data_path")):
            raise UserError(f"{op.get_value('data_path')}: data path does not exist or is not a directory")
    # NaN/overflow are reported once, by the cost check (print_costs), not as NumPy warnings.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        model = ConvNet(op, load_dic)
        return model.start()


if __name__ == "__main__":
    sys.exit(main())
