"""The training driver's base class (the twin of r561 ``gpumodel.py``): options, loop, test, save.

What this is: :class:`IGPUModel`, which owns the model state (layer dicts, cost outputs, the
epoch/batch counters), creates the data providers, runs the training loop of the original
(a test and a checkpoint every ``--test-freq`` batches), prints the original's lines, and saves
and loads checkpoints (``port.checkpoint``). What this is not: the network (``port.model``), the
cfg parser (``port.layer``) or the driver's own options and printing (``port.convnet``).

Exact resumption. A checkpoint holds, beside what the original's held, the model's random
generator state, the data providers' positions and the options (``--seed`` included; a provider
draws every batch's randomness from ``(seed, epoch, batchnum)``, see ``port.data.provider``).
Resuming with ``-f`` therefore continues bit-identically on NumPy, provided the checkpoint was not
taken in the middle of a ``--wupdate-freq`` interval (the model's pending gradient sums are not
saved; the driver says so when it happens) and ``superEps`` is 0 (its running averages are not
saved either; no released cfg sets it).

Progress: a tqdm bar on stderr only when stderr is a TTY; the per-batch lines go to stdout.
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import sys
import tempfile
import warnings
from time import asctime, localtime, strftime, time

from port import checkpoint
from port.errors import UserError
from port.util import _UMASK, fsync_dir
from port.options import (BooleanOptionParser, IntegerOptionParser, ListOptionParser, OptionExpression,
                          OptionsParser, RangeOptionParser, StringOptionParser)


class ModelStateException(UserError):
    """Ports: cuda-convnet-r561/gpumodel.py:40-41 ModelStateException"""


class CostIsNaN(UserError):
    """The cost became NaN or infinite; training stops, the last checkpoint is kept."""

    collective = True   # data-parallel ranks all see the same (summed) costs: one line, rank 0's


class IGPUModel:
    """Ports: cuda-convnet-r561/gpumodel.py:44-331 IGPUModel"""

    # ---- the attributes that __init__ creates with setattr, as r561 does ---------------------
    # Every option becomes ``self.<name>`` (``for o in op.get_options_list(): setattr(...)``), and
    # every model-state key ``self.<key>`` (saved back by save_state). Declared here, in one block,
    # so a reader (and a type checker) sees them; tests/port/test_convnet.py holds the list equal
    # to the driver's options and state. Values are the parsed option values (None when an option
    # without a default is not given).
    # The options of r561 gpumodel.py (get_options_parser below):
    load_file: str                      # -f: the checkpoint directory (or file) to resume from
    train_batch_range: list[int]        # --train-range
    test_batch_range: list[int]         # --test-range
    dp_type: str | None                 # --data-provider: a key of port.data.dp_types
    testing_freq: int                   # --test-freq: test (and save) every this many batches
    num_epochs: int                     # --epochs
    data_path: str | None               # --data-path
    save_path: str | None               # --save-path
    max_filesize_mb: int                # --max-filesize: keep only the newest checkpoints beyond it
    num_gpus: int                       # --num-gpus
    test_only: int                      # --test-only (0/1)
    zip_save: int                       # --zip-save (0/1)
    test_one: int                       # --test-one (0/1): test on one batch, else the whole range
    gpu: list[int]                      # --gpu: device ids, one per cfg column (-1: default)
    # The options the 2012 driver adds (port.convnet.ConvNet.get_options_parser):
    minibatch_size: int                 # --mini
    layer_def: str | None               # --layer-def (set once: kept on resume)
    layer_params: str | None            # --layer-params (re-read on resume)
    check_grads: int                    # --check-grads (0/1)
    multiview_test: int                 # --multiview-test (0/1)
    crop_border: int                    # --crop-border: the cropped providers' border
    conv_to_local: list[str]            # --conv-to-local: conv layers made locally connected
    unshare_weights: list[str]          # --unshare-weights: `name` or `name[idx]`
    conserve_mem: int                   # --conserve-mem (0/1; accepted, no effect here)
    color_noise: float                  # --color-noise: PCA noise scale on the colour channels
    test_out: str                       # --test-out: where multiview test predictions go
    logreg_name: str                    # --logreg-name: the logreg layer --test-out reads
    pca_noise: float                    # --pca-noise: PCA noise scale on the pixels
    scalar_mean: float                  # --scalar-mean: subtract one mean, not one per pixel
    wupdate_freq: int                   # --wupdate-freq: minibatches per weight update
    backend: str                        # --backend (port only): auto, numpy, cupy
    seed: int                           # --seed (port only): -1 draws one from the OS
    trust_pickle: int                   # --trust-pickle (port only, 0/1): legacy pickles
    initw_source: str                   # --initw-source (port only): initw.makew's saved net
    trust_code: int                     # --trust-code (port only, 0/1): cfg-named Python modules
    data_parallel: int                  # --data-parallel (port only, 0/1): ranks of an MPI run
    dp_hash_freq: int                   # --dp-hash-freq (port only): steps between weight hashes
    dp_bucket_mb: int                   # --dp-bucket-mb (port only): allreduce buffer size, MiB
    dp_engine: str                      # --dp-engine (port only): auto, mpi, nccl
    # The model state (model_state's keys, saved in every checkpoint):
    train_outputs: list                 # per training batch: what finish_batch returned
    test_outputs: list                  # per test: get_test_error's aggregate
    epoch: int                          # the current training batch's epoch (saved: the last done)
    batchnum: int                       # the current training batch's number (saved: the last done)
    layers: dict                        # the layer dicts (port.layer), weights included
    model_rng: dict                     # port only: the network's random generator state
    test_dp_position: dict              # port only: the test provider's epoch, batch, range

    def __init__(self, model_name: str, op: OptionsParser, load_dic: dict | None, filename_options=None,
                 dp_params: dict | None = None):
        """Ports: cuda-convnet-r561/gpumodel.py:45-89 IGPUModel.__init__"""
        self.model_name = model_name
        self.op = op
        self.options = op.options
        self.load_dic = load_dic
        self.filename_options = filename_options
        self.dp_params = dict(dp_params or {})
        self.out = sys.stdout
        self.bar = None
        self.get_gpus()
        self.fill_excused_options()
        for o in op.get_options_list():
            setattr(self, o.name, o.value)

        if load_dic:
            self.model_state = load_dic["model_state"]
            # DIVERGES: the original joined save_path with the -f path, so a relative -f path was
            # taken relative to --save-path; here it is the loaded directory itself (absolute).
            self.save_file = os.path.abspath(self.options["load_file"].value)
            if not os.path.isdir(self.save_file):
                self.save_file = os.path.dirname(self.save_file)
            self.save_file = self.branch_folder(self.save_file)
        else:
            self.model_state = {}
            if filename_options is not None:
                self.save_file = model_name + "_" + "_".join(
                    "%s_%s" % (char, self.options[opt].get_str_value()) for opt, char in filename_options) \
                    + "_" + strftime("%Y-%m-%d_%H.%M.%S")
            self.model_state["train_outputs"] = []
            self.model_state["test_outputs"] = []
            self.model_state["epoch"] = 1
            self.model_state["batchnum"] = self.train_batch_range[0]

        self.init_data_providers()
        if load_dic:
            self.train_data_provider.advance_batch()

        self.init_model_state()
        for var, val in self.model_state.items():
            setattr(self, var, val)
        # DIVERGES: no import_model(); there is no C++ module to import (port.model is the network).
        self.init_model_lib()
        self.last_saved = None
        self.batches_this_run = 0

    def branch_folder(self, folder: str) -> str:
        """Where a resumed run saves: ``folder``, unless it holds checkpoints newer than the one
        resumed from (``-f DIR/1.1`` while ``DIR/1.3`` exists), whose names the run would reuse
        (and, with ``--max-filesize``, delete): then a new folder beside it,
        ``<folder>_from_<epoch>.<batchnum>_<date>``, and one line says so.

        DIVERGES: the original saved into the folder and overwrote the newer checkpoints.
        """
        ms = self.model_state
        here = (ms.get("epoch", 0), ms.get("batchnum", 0))
        try:
            newer = [f for f in checkpoint.list_checkpoints(folder) if checkpoint.checkpoint_key(f.name) > here]
        except OSError:
            return folder
        if not newer:
            return folder
        branch = f"{folder}_from_{here[0]}.{here[1]}_{strftime('%Y-%m-%d_%H.%M.%S')}"
        self.write(f"Resuming from {here[0]}.{here[1]}, older than {newer[-1]}: saving into {branch} "
                   f"so that the {len(newer)} newer checkpoint(s) stay\n")
        return branch

    # ---- hooks the driver overrides ----------------------------------------------------------

    def get_gpus(self):
        self.device_ids = list(self.op.get_value("gpu") or [])

    def fill_excused_options(self):
        pass

    def init_model_state(self):
        pass

    def init_model_lib(self):
        pass

    def make_data_provider(self, batch_range, init_epoch, init_batchnum, test):
        raise NotImplementedError

    def init_data_providers(self):
        """Ports: cuda-convnet-r561/gpumodel.py:99-110 IGPUModel.init_data_providers"""
        self.dp_params["convnet"] = self
        test_pos = self.model_state.get("test_dp_position") or {}
        if list(test_pos.get("batch_range") or []) != list(self.test_batch_range):
            test_pos = {}  # a new --test-range on resume starts at its first batch
        self.test_data_provider = self.make_data_provider(self.test_batch_range, test_pos.get("epoch", 1),
                                                          test_pos.get("batchnum"), test=True)
        self.train_data_provider = self.make_data_provider(self.train_batch_range, self.model_state["epoch"],
                                                           self.model_state["batchnum"], test=False)

    # ---- the loop ----------------------------------------------------------------------------

    def start(self):
        """Ports: cuda-convnet-r561/gpumodel.py:118-123 IGPUModel.start"""
        try:
            if self.test_only:
                self.test_outputs += [self.get_test_error()]
                self.print_test_results()
                return 0
            return self.train()
        finally:
            self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        for dp in {id(d): d for d in (getattr(self, "train_data_provider", None),
                                       getattr(self, "test_data_provider", None)) if d is not None}.values():
            if hasattr(dp, "close"):
                dp.close()

    def write(self, text: str, end: str = "") -> None:
        """Print to stdout (through tqdm when a bar is showing, so the bar stays at the bottom)."""
        if self.bar is not None:
            self._pending_line = getattr(self, "_pending_line", "") + text + end
            while "\n" in self._pending_line:
                line, self._pending_line = self._pending_line.split("\n", 1)
                self.bar.write(line, file=self.out)
        else:
            self.out.write(text + end)
            self.out.flush()

    def _make_bar(self):
        if not sys.stderr.isatty():
            return None
        from tqdm import tqdm  # noqa: PLC0415

        total = self.num_epochs * len(self.train_batch_range)
        return tqdm(total=total, initial=min(total, self.get_num_batches_done() - 1), unit="batch",
                    file=sys.stderr, dynamic_ncols=True, leave=False)

    def train(self):
        """Ports: cuda-convnet-r561/gpumodel.py:125-160 IGPUModel.train"""
        self.write("=========================\n")
        self.write("Training %s\n" % self.model_name)
        self.op.print_values(file=self.out)
        self.write("=========================\n")
        self.print_model_state()
        self.write("Running on %s\n" % self.device_description())
        self.write("Current time: %s\n" % asctime(localtime()))
        self.write("Saving checkpoints to %s\n" % self.checkpoint_dir())
        self.write("=========================\n")
        self.bar = self._make_bar()
        next_data = self.get_next_batch()
        # DIVERGES: the original tested `self.epoch <= num_epochs` *before* taking the next batch's
        # epoch, so it trained one batch of epoch num_epochs + 1; here training stops after the
        # last batch of epoch --epochs.
        while next_data[0] <= self.num_epochs:
            data = next_data
            self.epoch, self.batchnum = data[0], data[1]
            self.print_iteration()
            compute_time_py = time()
            self.start_batch(data)
            next_data = self.get_next_batch()
            self.prefetch_batch(next_data)
            batch_output = self.finish_batch()
            self.train_outputs += [batch_output]
            self.print_train_results()
            if self.get_num_batches_done() % self.testing_freq == 0:
                self.test_and_save()
            self.print_train_time(time() - compute_time_py)
            self.batches_this_run += 1
            if self.bar is not None:
                self.bar.update(1)
        # DIVERGES: the original did not save after the last batch unless --test-freq divided the
        # batch count; here the last batch is always tested and saved, so no training is lost.
        if self.batches_this_run and self.last_saved != (self.epoch, self.batchnum):
            self.test_and_save()
            self.write("\n")
        return self.cleanup()

    def test_and_save(self):
        self.sync_with_host()
        self.test_outputs += [self.get_test_error()]
        self.print_test_results()
        self.print_test_status()
        self.conditional_save()

    def cleanup(self):
        return 0

    def sync_with_host(self):
        """Ports: cuda-convnet-r561/gpumodel.py:165-166 IGPUModel.sync_with_host"""
        self.libmodel.sync_with_host()

    def print_model_state(self):
        pass

    def device_description(self) -> str:
        return "the host CPU"

    def get_num_batches_done(self):
        """Ports: cuda-convnet-r561/gpumodel.py:171-172 IGPUModel.get_num_batches_done"""
        return len(self.train_batch_range) * (self.epoch - 1) + self.batchnum - self.train_batch_range[0] + 1

    def get_next_batch(self, train=True):
        """Ports: cuda-convnet-r561/gpumodel.py:174-178 IGPUModel.get_next_batch"""
        dp = self.train_data_provider if train else self.test_data_provider
        return self.parse_batch_data(dp.get_next_batch(), train=train)

    def parse_batch_data(self, batch_data, train=True):
        return batch_data[0], batch_data[1], batch_data[2]["data"]

    def start_batch(self, batch_data, train=True):
        self.libmodel.start_batch(batch_data[2], 0.0, not train)

    def prefetch_batch(self, batch_data, train=True):
        """Start copying the next training batch to the device while this step computes (CuPy:
        pinned memory, a stream of its own; ``ConvNet.prefetch`` in port/model.py); nothing on
        NumPy. The data-parallel and gradient-check runs upload as they go.

        Port-only: the original's step ran in the library's threads while the driver loaded the
        next batch; its copy to the device happened at the next startBatch."""
        if train and getattr(self, "check_grads", 0) == 0 and self.libmodel.parallel is None:
            self.libmodel.prefetch(batch_data[2])

    def finish_batch(self):
        """Ports: cuda-convnet-r561/gpumodel.py:186-187 IGPUModel.finish_batch"""
        return self.libmodel.finish_batch()

    def print_iteration(self):
        self.write("\t%d.%d..." % (self.epoch, self.batchnum))

    def print_train_time(self, compute_time_py):
        self.write(" (%.3f sec)" % compute_time_py, "\n")

    def print_train_results(self):
        pass

    def print_test_results(self):
        pass

    def print_test_status(self):
        pass

    def conditional_save(self):
        self.save_state()

    def aggregate_test_outputs(self, test_outputs):
        return test_outputs[-1]

    def get_test_error(self):
        """Run one test batch (``--test-one=1``) or every test batch, and aggregate their costs.

        Ports: cuda-convnet-r561/gpumodel.py:222-238 IGPUModel.get_test_error
        """
        next_data = self.get_next_batch(train=False)
        test_outputs = []
        while True:
            data = next_data
            self.start_batch(data, train=False)
            load_next = not self.test_one and data[1] < self.test_batch_range[-1]
            if load_next:
                next_data = self.get_next_batch(train=False)
            test_outputs += [self.finish_batch()]
            if self.test_only:  # print the individual batch results for safety
                self.write("batch %d: %s" % (data[1], str(test_outputs[-1])), "\n")
            if not load_next:
                break
        return self.aggregate_test_outputs(test_outputs)

    # ---- checkpoints -------------------------------------------------------------------------

    def checkpoint_dir(self) -> str:
        return os.path.join(self.save_path, self.save_file)

    def extra_model_state(self) -> dict:
        """What the driver saves beyond the original's model state (rng, provider positions)."""
        return {}

    def save_state(self):
        """Save ``<save-path>/<save-file>/<epoch>.<batchnum>``; with ``--max-filesize`` keep only the newest.

        Ports: cuda-convnet-r561/gpumodel.py:251-271 IGPUModel.save_state
        """
        for att in self.model_state:
            if hasattr(self, att):
                self.model_state[att] = getattr(self, att)
        self.model_state.update(self.extra_model_state())
        dic = {"model_state": self.model_state, "op": self.op.to_state()}
        checkpoint_dir = self.checkpoint_dir()
        checkpoint_file = "%d.%d" % (self.epoch, self.batchnum)
        checkpoint_file_full_path = os.path.join(checkpoint_dir, checkpoint_file)
        try:
            if os.path.isdir(checkpoint_dir):
                checkpoint.save(checkpoint_file_full_path, dic, compress=bool(self.zip_save))
            else:
                self._first_save(checkpoint_dir, checkpoint_file, dic)
        except OSError as e:
            raise UserError(f"{checkpoint_file_full_path}: cannot write the checkpoint "
                            f"({e.strerror or e})") from None
        self.last_saved = (self.epoch, self.batchnum)

        limit = self.max_filesize_mb * 1024 * 1024
        files = checkpoint.list_checkpoints(checkpoint_dir)
        total = sum(os.path.getsize(f) for f in files)
        for f in files:  # oldest first, until the directory fits; the file just written stays
            if total <= limit or f.name == checkpoint_file:
                break
            total -= os.path.getsize(f)
            os.remove(f)
        return checkpoint_file_full_path

    def _first_save(self, checkpoint_dir: str, checkpoint_file: str, dic: dict) -> None:
        """The first checkpoint of a save folder: written into a hidden folder beside it, renamed
        into place once complete, so a kill leaves no save folder without a checkpoint (only the
        hidden ``.<name>.<random>.tmp``, which the next first save in that place reports)."""
        parent, name = os.path.split(checkpoint_dir)
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as e:
            raise UserError(f"{parent}: cannot create the checkpoint directory ({e.strerror})") from None
        for left in sorted(os.listdir(parent)):
            if re.match(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$", left) and os.path.isdir(os.path.join(parent, left)):
                warnings.warn(f"{os.path.join(parent, left)}: left by a run killed during its first "
                              "save; it holds no complete checkpoint and can be deleted", stacklevel=2)
        tmp = tempfile.mkdtemp(dir=parent, prefix=f".{name}.", suffix=".tmp")
        try:
            os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp's 0700 -> what makedirs would give
            checkpoint.save(os.path.join(tmp, checkpoint_file), dic, compress=bool(self.zip_save))
            os.rename(tmp, checkpoint_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(parent)

    @staticmethod
    def load_checkpoint(load_dir, trust_pickle=False):
        """Ports: cuda-convnet-r561/gpumodel.py:273-277 IGPUModel.load_checkpoint"""
        return checkpoint.check_training_checkpoint(checkpoint.load(load_dir, trust_pickle=trust_pickle),
                                                    checkpoint.resolve(load_dir))

    @staticmethod
    def get_options_parser():
        """The options of r561 ``gpumodel.py`` (the 2012 driver adds and changes some).

        DIVERGES: no ``--max-test-err``: its only reader, r561's ``conditional_save``, is replaced
        by the 2012 driver's, which deletes the option.
        Ports: cuda-convnet-r561/gpumodel.py:279-297 IGPUModel.get_options_parser
        """
        op = OptionsParser()
        op.add_option("f", "load_file", StringOptionParser, "Load file", default="",
                      excuses=OptionsParser.EXCLUDE_ALL)
        op.add_option("train-range", "train_batch_range", RangeOptionParser, "Data batch range: training")
        op.add_option("test-range", "test_batch_range", RangeOptionParser, "Data batch range: testing")
        op.add_option("data-provider", "dp_type", StringOptionParser, "Data provider", default="default")
        op.add_option("test-freq", "testing_freq", IntegerOptionParser, "Testing frequency", default=25)
        op.add_option("epochs", "num_epochs", IntegerOptionParser, "Number of epochs", default=500)
        op.add_option("data-path", "data_path", StringOptionParser, "Data path")
        op.add_option("save-path", "save_path", StringOptionParser, "Save path")
        op.add_option("max-filesize", "max_filesize_mb", IntegerOptionParser, "Maximum save file size (MB)",
                      default=5000)
        op.add_option("num-gpus", "num_gpus", IntegerOptionParser, "Number of GPUs", default=1)
        op.add_option("test-only", "test_only", BooleanOptionParser, "Test and quit?", default=0)
        op.add_option("zip-save", "zip_save", BooleanOptionParser, "Compress checkpoints?", default=0)
        op.add_option("test-one", "test_one", BooleanOptionParser, "Test on one batch at a time?", default=1)
        op.add_option("gpu", "gpu", ListOptionParser(IntegerOptionParser), "GPU override",
                      default=OptionExpression("[-1] * num_gpus", lambda v: [-1] * v["num_gpus"]))
        return op

    @staticmethod
    def parse_options(op: OptionsParser, argv=None, fresh_parser=None):
        """Parse the command line; with ``-f``, load the checkpoint and merge its saved options.

        ``fresh_parser()`` builds an empty parser of the same options, filled with the saved values.
        Ports: cuda-convnet-r561/gpumodel.py:311-331 IGPUModel.parse_options
        """
        load_dic = None
        options = op.parse(argv)
        if options["load_file"].value_given:
            trust = bool(options["trust_pickle"].value) if "trust_pickle" in options else False
            load_dic = IGPUModel.load_checkpoint(options["load_file"].value, trust_pickle=trust)
            old_op = fresh_parser()
            for o in old_op.options.values():
                o.set_default()
            old_op.load_state(load_dic.get("op") or {})
            old_op.merge_from(op)
            op = old_op
        op.eval_expr_defaults()
        return op, load_dic


def aggregate_costs(test_outputs):
    """Sum cost lists and case counts over several (costs, N) outputs (deep-copied first)."""
    test_outputs = copy.deepcopy(test_outputs)
    num_cases = sum(t[1] for t in test_outputs)
    for i in range(1, len(test_outputs)):
        for k, v in test_outputs[i][0].items():
            for j in range(len(v)):
                test_outputs[0][0][k][j] += test_outputs[i][0][k][j]
    return (test_outputs[0][0], num_cases)


__all__ = ["IGPUModel", "ModelStateException", "CostIsNaN", "aggregate_costs"]
