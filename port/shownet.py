"""``python -m port.shownet -f CHECKPOINT ...``: the original's views of a trained net, written as PNGs.

What this is: the twin of the 2012 ``shownet.py`` for the views that make sense without a display:
the training and test cost curves (``--show-cost``), the learned filters of a layer as a tiled grid
(``--show-filters``, the look of the paper's Figure 3), test images beside the net's top-5
predictions (``--show-preds``), and the feature writer (``--write-features`` / ``--feature-path``).
What this is not: the webcam demo, the data-gradient view, the feature-map view and the top-5
counter (``--webcam``, ``--show-data-grad``, ``--show-maps``, ``--top5``), which are refused with a
one-line message.

DIVERGES: the original opened matplotlib windows (``pl.show()``); here every figure is written to
``--out`` (default: the current directory) with the Agg backend, and the filter grid is written
pixel-exact (one grid pixel = an integer block of PNG pixels, no axes) with its title in the PNG's
``Title`` text chunk, so the image is the grid itself.

Checkpoints are read by ``port.checkpoint.load``: a dict {'model_state': {'layers': {name: layer
dict}, 'train_outputs': [(cost dict {name: [per-case values]}, num_cases), ...], 'test_outputs',
'epoch', 'batchnum'}, 'op': {option name: value or {'value': ...}}}. :meth:`ShowConvNet.from_dict`
builds the views from such a dict without any file.

Layout: weights as the original stores them: conv/local filters (filterChannels·filterPixels, F)
(channel-major: row c·fs² + y·fs + x), fc (inputs, outputs); data matrices (D, N), cases last.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from port import checkpoint
from port import layer as lay
from port.data import get_instance
from port.errors import ArgumentParser, UserError, main_guard
from port.model import ConvNet
from port.options import OptionException, OptionParser, RangeOptionParser
from port.util import atomic_write_bytes, brief, pickle

FILTERS_PER_ROW = 16
MAX_ROWS = 24


class ShowNetError(UserError):
    """Ports: alexnet-2012/shownet.py:30-31 ShowNetError"""


def _op_value(op: dict, name: str, default=None):
    """An option's value from a checkpoint's ``op`` ({name: value} or {name: {'value': v}})."""
    v = op.get(name, default) if isinstance(op, dict) else getattr(op, name, default)
    if isinstance(v, dict) and "value" in v:
        v = v["value"]
    return default if v is None else v


# ---- the filter grid -----------------------------------------------------------------------

def filters_for_display(layer: dict, input_idx: int = 0, channels: int = 0, local_plane: int = 0,
                        yuv_to_rgb: bool = False, no_rgb: bool = False, norm_filters: bool = False,
                        name: str = "?") -> tuple[np.ndarray, int, bool, int]:
    """A layer's filters as (channels, pixels, F) in [0, 1], plus (num_filters, combine_chans, per_row).

    Ports: alexnet-2012/shownet.py:150-197 ShowConvNet.plot_filters
    """
    try:
        filters = np.asarray(layer["weights"][input_idx], dtype=np.float32)
    except (KeyError, IndexError, TypeError):
        raise ShowNetError(f"layer '{name}' has no weights[{input_idx}] (--input-idx)") from None
    per_row = FILTERS_PER_ROW
    ltype = layer.get("type")
    if ltype == "fc":
        num_filters = int(layer.get("outputs", filters.shape[1]))
        if channels <= 0 or filters.shape[0] % channels:
            raise ShowNetError(f"layer '{name}' is fully connected: give --channels (a divisor of "
                               f"its {filters.shape[0]} inputs)")
        filters = filters.reshape(channels, filters.shape[0] // channels, filters.shape[1])
    elif ltype in ("conv", "local"):
        num_filters = int(layer["filters"])
        channels = int(layer["filterChannels"][input_idx])
        if ltype == "local":
            pixels = int(layer["filterPixels"][input_idx])
            filters = filters.reshape(layer["modules"], channels, pixels, num_filters)
            filters = filters[:, :, :, local_plane].transpose(1, 2, 0)           # (channels, pixels, modules)
            num_filters = int(layer["modules"])
            per_row = int(layer["modulesX"])
        else:
            filters = filters.reshape(channels, filters.shape[0] // channels, filters.shape[1])
    else:
        raise ShowNetError(f"layer '{name}' has type '{ltype}'; --show-filters needs conv, local or fc")
    if yuv_to_rgb and channels == 3:
        y, u, v = filters[0], filters[1], filters[2]
        filters = np.stack([y + 1.28033 * v, y - 0.21482 * u - 0.38059 * v, y + 2.12798 * u])
    combine_chans = not no_rgb and channels == 3
    if norm_filters:
        # DIVERGES: the original tiled the per-filter statistics over 3 channels (a crash for any
        # other channel count); here they broadcast over every channel.
        flat = filters.reshape(-1, filters.shape[2])
        filters = (filters - flat.mean(axis=0)) / np.sqrt(flat.var(axis=0))
    filters = filters - filters.min()
    top = filters.max()
    filters = filters / top if top > 0 else filters
    return filters, num_filters, combine_chans, per_row


def make_filter_grid(filters: np.ndarray, filter_start: int, num_filters: int, combine_chans: bool,
                     filters_per_row: int = FILTERS_PER_ROW) -> tuple[np.ndarray, int, int]:
    """Tile filters (channels, pixels, F) into one picture with 1-pixel black borders.

    RGB (combine_chans): (rows·(fs+1)+1, per_row·(fs+1)+1, 3); otherwise grey with the channels of a
    filter side by side. At most 24 rows. Returns (picture, filter_end, filters per row).

    Ports: alexnet-2012/shownet.py:110-148 ShowConvNet.make_filter_fig
    """
    num_colors = filters.shape[0]
    f_per_row = int(math.ceil(filters_per_row / float(1 if combine_chans else num_colors)))
    filter_end = min(filter_start + filters_per_row * MAX_ROWS, num_filters)
    filter_rows = int(math.ceil(float(filter_end - filter_start) / f_per_row))
    filter_size = int(math.isqrt(filters.shape[1]))
    if filter_size ** 2 != filters.shape[1]:
        raise ShowNetError(f"filters have {filters.shape[1]} pixels, not a square")
    s = filter_size
    if not combine_chans:
        big = np.zeros((s * filter_rows + filter_rows + 1, s * num_colors * f_per_row + f_per_row + 1),
                       dtype=np.float32)
    else:
        big = np.zeros((3, s * filter_rows + filter_rows + 1, s * f_per_row + f_per_row + 1),
                       dtype=np.float32)
    for m in range(filter_start, filter_end):
        f = filters[:, :, m]
        y, x = (m - filter_start) // f_per_row, (m - filter_start) % f_per_row
        top = 1 + (1 + s) * y
        if not combine_chans:
            for c in range(num_colors):
                left = 1 + (1 + s * num_colors) * x + s * c
                big[top:top + s, left:left + s] = f[c].reshape(s, s)
        else:
            left = 1 + (1 + s) * x
            big[:, top:top + s, left:left + s] = f.reshape(3, s, s)
    if combine_chans:
        big = big.transpose(1, 2, 0)
    return big, filter_end, f_per_row


def save_grid_png(picture: np.ndarray, path: Path, title: str, min_width: int = 800) -> int:
    """Write a [0, 1] picture as a PNG, each pixel an integer k×k block; returns k."""
    from PIL import Image  # noqa: PLC0415
    from PIL.PngImagePlugin import PngInfo  # noqa: PLC0415

    k = max(1, math.ceil(min_width / picture.shape[1]))
    px = np.clip(np.rint(picture * 255), 0, 255).astype(np.uint8)
    px = np.repeat(np.repeat(px, k, axis=0), k, axis=1)
    info = PngInfo()
    info.add_text("Title", title)
    _atomic(path, lambda f: Image.fromarray(px).save(f, format="PNG", pnginfo=info))
    return k


@contextmanager
def _writing(path: Path):
    """Turn a failure to write ``path`` (a file where a folder should be, no permission) into one line."""
    try:
        yield
    except OSError as e:
        raise ShowNetError(f"{path}: cannot write ({e.strerror or e})") from None


def _atomic(path: Path, write: Callable) -> None:
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, write)


def _pyplot():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _save_figure(fig, path: Path) -> None:
    _atomic(path, lambda f: fig.savefig(f, format="png", dpi=100))
    _pyplot().close(fig)


# ---- the views ---------------------------------------------------------------------------------

Forward = Callable[[dict, list, Sequence[str]], list]
"""forward(checkpoint dict, data matrices [(D, N) ...], layer names) -> their outputs [(D_l, N) ...]."""


def epoch_ticks(num_train_batches: int, numbatches: int) -> tuple[list[int], list[str]]:
    """Tick positions (one per finished epoch, in batches) and labels for the cost plot.

    DIVERGES: the original rounds the label step up to a multiple of 10 even when it is 1, so a run
    of under 10 epochs got no labels; here a run of up to 20 epochs labels every epoch.

    Ports: alexnet-2012/shownet.py:100-105 ticklabels
    """
    numepochs = num_train_batches / float(numbatches)
    locs = list(range(numbatches, num_train_batches - num_train_batches % numbatches + 1, numbatches))
    gran = int(math.ceil(numepochs / 20.0))  # aim for about 20 labels
    if gran > 1:
        gran = int(math.ceil(gran / 10.0) * 10)  # but round to a multiple of 10
    labels = [str(loc // numbatches) if i % gran == gran - 1 else "" for i, loc in enumerate(locs)]
    return locs, labels


class ShowConvNet:
    """The views of one checkpoint; ``options`` are the shownet options (attribute names as the original).

    Ports: alexnet-2012/shownet.py:33-574 ShowConvNet
    """

    DEFAULTS = dict(show_cost="", cost_idx=0, show_filters="", norm_filters=False, input_idx=0,
                    no_rgb=False, yuv_to_rgb=False, channels=0, local_plane=0, show_preds="",
                    only_errors=False, write_features="", feature_path="", test_batch_range=None,
                    data_path=None, multiview_test=False, out=".", load_file="<dict>", seed=0)

    def __init__(self, load_dic: dict, options: dict | None = None, forward: Forward | None = None,
                 data_provider=None):
        if not isinstance(load_dic, dict) or "model_state" not in load_dic:
            raise ShowNetError(f"{(options or {}).get('load_file', 'checkpoint')}: not a checkpoint "
                               f"(no 'model_state')")
        self.load_dic = load_dic
        self.model_state = load_dic["model_state"]
        self.op = load_dic.get("op", {}) or {}
        opts = dict(self.DEFAULTS)
        opts.update({k: v for k, v in (options or {}).items() if v is not None})
        for k, v in opts.items():
            setattr(self, k, v)
        self.out = Path(self.out)
        self.layers = _layers_by_name(self.model_state.get("layers", {}), self.load_file)
        self.train_outputs = self.model_state.get("train_outputs", [])
        self.test_outputs = self.model_state.get("test_outputs", [])
        where = self.load_file
        tbr = _op_value(self.op, "train_batch_range", [])
        if not isinstance(tbr, (list, tuple, range)) or not all(type(b) is int for b in tbr):
            raise ShowNetError(f"{where}: op['train_batch_range'] is {brief(tbr)}; expected a "
                               "list of batch numbers")
        self.train_batch_range = list(tbr)
        self.testing_freq = _op_value(self.op, "testing_freq", 50)
        if type(self.testing_freq) is not int or self.testing_freq < 1:
            raise ShowNetError(f"{where}: op['testing_freq'] is {brief(self.testing_freq)}; "
                               "expected an integer >= 1")
        self.forward = forward
        self._dp = data_provider
        self.written: list[Path] = []

    @classmethod
    def from_dict(cls, dic: dict, forward: Forward | None = None, data_provider=None, **options):
        """The views of an in-memory checkpoint dict (tests, notebooks)."""
        return cls(dic, options, forward=forward, data_provider=data_provider)

    # -- costs --

    def plot_cost(self) -> Path:
        """Training (black) and test (red) values of one cost against epochs.

        Ports: alexnet-2012/shownet.py:81-108 ShowConvNet.plot_cost
        """
        if not self.train_outputs or self.show_cost not in self.train_outputs[0][0]:
            known = sorted(self.train_outputs[0][0]) if self.train_outputs else []
            raise ShowNetError(f"cost function with name '{self.show_cost}' not defined by the given "
                               f"convnet (costs: {', '.join(known) or 'none recorded'})")
        try:
            train_errors = [float(o[0][self.show_cost][self.cost_idx]) for o in self.train_outputs]
            test_errors = [float(o[0][self.show_cost][self.cost_idx]) for o in self.test_outputs]
        except (IndexError, KeyError):
            raise ShowNetError(f"cost '{self.show_cost}' has no value {self.cost_idx} "
                               f"(--cost-idx)") from None
        except (TypeError, ValueError):
            raise ShowNetError(f"{self.load_file}: the recorded values of cost '{self.show_cost}' "
                               "are not numbers") from None
        numbatches = max(1, len(self.train_batch_range))
        # Each test value repeated testing_freq times, the last one held to the end; indexed, not
        # np.repeat-ed: a testing_freq of 10**12 would ask for terabytes.
        tiled = [test_errors[min(i // self.testing_freq, len(test_errors) - 1)]
                 for i in range(len(train_errors))] if test_errors else []
        plt = _pyplot()
        fig = plt.figure(figsize=(8, 5))
        x = range(len(train_errors))
        plt.plot(x, train_errors, "k-", label="Training set")
        if tiled:
            plt.plot(range(len(tiled)), tiled, "r-", label="Test set")
        plt.legend()
        plt.xticks(*epoch_ticks(len(train_errors), numbatches))
        plt.xlabel("Epoch")
        plt.title(f"{self.show_cost}[{self.cost_idx}]")
        path = self.out / f"cost-{_safe(self.show_cost)}-{self.cost_idx}.png"
        _save_figure(fig, path)
        return self._wrote(path)

    # -- filters --

    def plot_filters(self) -> Path:
        """The filters of ``--show-filters`` as a grid (16 per row, 1-pixel black borders).

        Ports: alexnet-2012/shownet.py:150-197 ShowConvNet.plot_filters
        """
        if self.show_filters not in self.layers:
            raise ShowNetError(f"layer with name '{self.show_filters}' not defined by the given "
                               f"convnet (layers: {', '.join(sorted(self.layers))})")
        layer = self.layers[self.show_filters]
        try:
            filters, num_filters, combine, per_row = filters_for_display(
                layer, self.input_idx, self.channels, self.local_plane, self.yuv_to_rgb, self.no_rgb,
                self.norm_filters, self.show_filters)
            grid, end, _ = make_filter_grid(filters, 0, num_filters, combine, per_row)
        except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as e:  # a crafted layer
            raise ShowNetError(f"{self.load_file}: layer '{self.show_filters}' is not a well-formed "
                               f"conv, local or fc layer ({type(e).__name__}: "
                               f"{' '.join(str(e).split())[:120]})") from None
        s = int(math.isqrt(filters.shape[1]))
        title = f"Layer {self.show_filters} {s}x{s} filters 0-{end - 1}"
        path = self.out / f"filters-{_safe(self.show_filters)}.png"
        save_grid_png(grid, path, title)
        self.filter_grid = grid
        return self._wrote(path)

    # -- predictions and features (need the model and a test provider) --

    def _test_provider(self):
        if self._dp is None:
            data_path = self.data_path or _op_value(self.op, "data_path")
            test_range = self.test_batch_range or _op_value(self.op, "test_batch_range")
            if not data_path or not test_range:
                raise ShowNetError("--show-preds/--write-features need --data-path and --test-range "
                                   "(or a checkpoint that records them)")
            dp_params = {k: v for k in ("crop_border", "scalar_mean", "seed")
                         if (v := _op_value(self.op, k)) is not None}
            dp_params["multiview_test"] = bool(self.multiview_test)
            self._dp = get_instance(data_path, list(test_range), type=_op_value(self.op, "dp_type"),
                                    dp_params=dp_params, test=True)
        return self._dp

    def _forward(self, data: list, names: Sequence[str]) -> list:
        if self.forward is None:
            self.forward = ModelForward()
        return [np.asarray(o, dtype=np.float32) for o in self.forward(self.load_dic, data, names)]

    def plot_predictions(self) -> Path:
        """Eight test images (random, or mistaken with ``--only-errors``), each over its top-5 bars.

        Ports: alexnet-2012/shownet.py:199-272 ShowConvNet.plot_predictions
        """
        dp = self._test_provider()
        if not hasattr(dp, "get_plottable_data"):
            raise ShowNetError(f"data provider {type(dp).__name__} has no images to show (--show-preds)")
        data = dp.get_next_batch()[2]
        num_classes = dp.get_num_classes()
        rows, cols = 2, 4
        num_imgs = rows * cols
        top = min(num_classes, 5)
        label_names = [str(lab).split(",")[0] for lab in dp.batch_meta["label_names"]]
        rng = np.random.default_rng(self.seed)
        if not self.only_errors:
            idx = rng.integers(0, data[0].shape[1], num_imgs)
            data = [np.ascontiguousarray(d[:, idx]) for d in data]
        preds = self._forward(data, [self.show_preds])[0].T                     # (N, classes)
        if self.only_errors:
            err = np.flatnonzero(preds.argmax(axis=1) != data[1][0].astype(np.int64))
            err = rng.permutation(err)[:num_imgs]
            data, preds = [d[:, err] for d in data], preds[err]
        images = dp.get_plottable_data(data[0])                                 # (N, H, W, 3)
        plt = _pyplot()
        from matplotlib import gridspec  # noqa: PLC0415

        fig = plt.figure(figsize=(12, 9))
        fig.text(.4, .95, f"{'Mistaken' if self.only_errors else 'Random'} test samples")
        gs = gridspec.GridSpec(rows * 2, cols, width_ratios=[1] * cols, height_ratios=[2, 1] * rows)
        for i in range(min(num_imgs, images.shape[0])):
            row, col = divmod(i, cols)
            ax = fig.add_subplot(gs[(row * 2) * cols + col])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.imshow(np.clip(images[i], 0, 1), interpolation="lanczos")
            true_name = label_names[int(data[1][0, i])]
            ax.set_title(true_name, fontsize=15, fontweight="bold")
            best = np.argsort(preds[i], kind="stable")[-top:]
            ax = fig.add_subplot(gs[(row * 2 + 1) * cols + col])
            height = 0.5
            ylocs = np.arange(top) * height
            ax.barh(ylocs, preds[i, best], height=height,
                    color=["#ffaaaa" if label_names[k] == true_name else "#aaaaff" for k in best])
            ax.set_yticks(ylocs + height / 2, [label_names[k] for k in best], x=1,
                          backgroundcolor=(0.65, 0.65, 0.65, 0.5), weight="bold")
            ax.tick_params(axis="y", length=0)
            ax.set_xticks([])
            ax.set_ylim(0, ylocs[-1] + height)
            ax.set_xlim(0, 1)
        path = self.out / f"preds-{_safe(self.show_preds)}.png"
        _save_figure(fig, path)
        return self._wrote(path)

    def do_write_features(self) -> list[Path]:
        """Every test batch through the net: ``data_batch_<n>`` = {'data': (N, D), 'labels'} + meta.

        Ports: alexnet-2012/shownet.py:274-307 ShowConvNet.do_write_features
        """
        if not self.feature_path:
            raise ShowNetError("--write-features needs --feature-path")
        path = Path(self.feature_path)
        dp = self._test_provider()
        num_ftrs = None
        first = None
        while True:
            _, batch, data = dp.get_next_batch()
            if batch == first:
                break
            first = batch if first is None else first
            ftrs = self._forward(data, [self.write_features])[0].T                # (N, D)
            num_ftrs = ftrs.shape[1]
            out = path / f"data_batch_{batch}"
            with _writing(out):
                pickle(out, {"data": np.ascontiguousarray(ftrs), "labels": data[1]})
            print(f"Wrote feature file {out}")
            self._wrote(out)
        with _writing(path / "batches.meta"):
            pickle(path / "batches.meta", {"source_model": str(self.load_file), "num_vis": num_ftrs})
        return self.written

    def start(self) -> list[Path]:
        """Ports: alexnet-2012/shownet.py:515-534 ShowConvNet.start"""
        if self.show_cost:
            self.plot_cost()
        if self.show_filters:
            self.plot_filters()
        if self.show_preds:
            self.plot_predictions()
        if self.write_features:
            self.do_write_features()
        if self._dp is not None and hasattr(self._dp, "close"):
            self._dp.close()
        return self.written

    def _wrote(self, path: Path) -> Path:
        self.written.append(path)
        return path


class ModelForward:
    """Runs the checkpoint's net with the port's model (``port.model.ConvNet``), built once.

    The twin of the original's ``startFeatureWriter`` + ``finish_batch`` pair in shownet.
    """

    def __init__(self):
        self.net = None

    def __call__(self, load_dic: dict, data: list, names: Sequence[str]) -> list:
        if self.net is None:
            lay.check_saved_layers(load_dic["model_state"]["layers"])
            mini = _op_value(load_dic.get("op", {}), "minibatch_size", 128)
            if type(mini) is not int or not 1 <= mini <= 1 << 16:
                raise ShowNetError(f"op['minibatch_size'] is {brief(mini)}; expected 1..65536")
            self.net = ConvNet(load_dic["model_state"]["layers"], minibatch_size=mini)
        outs = []
        n = data[0].shape[1]
        for name in names:
            if name not in self.net.layers:
                raise ShowNetError(f"layer with name '{name}' not defined by the given convnet")
            ftrs = np.zeros((n, self.net.layers[name].num_outputs), dtype=np.float32)  # (N, D)
            self.net.start_feature_writer(data, ftrs, name)
            self.net.finish_batch()
            outs.append(ftrs.T)                                                    # (D, N)
        return outs


def _layers_by_name(layers, where) -> dict:
    """The checkpoint's layers as {name: layer dict} (the port saves a dict, the original a list)."""
    if isinstance(layers, (list, tuple)):
        if not all(isinstance(l, dict) and isinstance(l.get("name"), str) for l in layers):
            raise ShowNetError(f"{where}: model_state['layers'] is a list that does not hold layer "
                               "dicts with names")
        layers = {l["name"]: l for l in layers}
    if not isinstance(layers, dict) or not all(isinstance(l, dict) for l in layers.values()):
        raise ShowNetError(f"{where}: model_state['layers'] is not a dict of layer dicts")
    return layers


def check_checkpoint(dic, where) -> dict:
    """What shownet reads of a loaded checkpoint, checked before any view: the training
    checkpoint's tree (:func:`port.checkpoint.check_training_checkpoint`, the checks ``-f`` gets on
    resume), then each recorded output a (costs {name: values}, cases) pair. Returns ``dic``."""
    if isinstance(dic, dict) and isinstance(dic.get("model_state"), dict):
        ms = dic["model_state"]
        ms["layers"] = _layers_by_name(ms.get("layers"), where)
    checkpoint.check_training_checkpoint(dic, where)
    for key in ("train_outputs", "test_outputs"):
        for i, o in enumerate(dic["model_state"].get(key, [])):
            if not (isinstance(o, (list, tuple)) and len(o) == 2 and isinstance(o[0], dict)
                    and all(isinstance(v, (list, tuple)) for v in o[0].values())):
                raise ShowNetError(f"{where}: model_state['{key}'][{i}] is not a (costs, cases) pair")
    return dic


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))


# ---- command line -------------------------------------------------------------------------------

def _value(parser: type[OptionParser]) -> Callable[[str], object]:
    """One of ``port.options``' value parsers (the original's) as an argparse ``type``."""
    def parse(s: str):
        try:
            return parser.parse(s)
        except OptionException as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = parser.get_type_str()
    return parse


def _bool01(s: str) -> bool:
    if s not in ("0", "1"):
        raise argparse.ArgumentTypeError(f"expected 0 or 1, got {s!r}")
    return s == "1"


_range = _value(RangeOptionParser)


NOT_PORTED = {"show-data-grad": "needs the data gradient of the model",
              "webcam": "needs a camera and a display",
              "show-maps": "not ported",
              "top5": "not ported; convnet's --multiview-test reports the test error"}


def build_parser() -> argparse.ArgumentParser:
    """The original's shownet flags, spellings and help, with its value syntax (``--opt=value``,
    ``0``/``1`` booleans, ``a-b`` ranges read by ``port.options.RangeOptionParser``).

    Ports: alexnet-2012/shownet.py:536-562 ShowConvNet.get_options_parser
    DIVERGES: argparse, not ConvNet's options parser extended. The original's ShowConvNet was a
    ConvNet (it rebuilt the C++ model and data providers from the checkpoint's options, so every
    training option was accepted and excused); this shownet only reads a checkpoint, so it
    takes only its own flags, and a mistake is one line (port.errors.ArgumentParser).
    """
    p = ArgumentParser(prog="python -m port.shownet",
                description="Plot costs, filters and predictions of a checkpoint into PNG files; "
                            "write features of a layer.")
    a = p.add_argument
    a("-f", dest="load_file", required=True, help="checkpoint file or save directory")
    a("--out", default=".", help="folder for the PNG files (default: .)")
    a("--show-cost", default="", help="Show specified objective function")
    a("--cost-idx", type=int, default=0, help="Cost function return value index for --show-cost")
    a("--show-filters", default="", help="Show learned filters in specified layer")
    a("--norm-filters", type=_bool01, default=False,
      help="Individually normalize filters shown with --show-filters (0/1)")
    a("--input-idx", type=int, default=0, help="Input index for layer given to --show-filters")
    a("--no-rgb", type=_bool01, default=False,
      help="Don't combine filter channels into RGB in layer given to --show-filters (0/1)")
    a("--yuv-to-rgb", type=_bool01, default=False, help="Convert YUV filters to RGB in layer given to --show-filters (0/1)")
    a("--channels", type=int, default=0,
      help="Number of channels in layer given to --show-filters (fully-connected layers only)")
    a("--local-plane", type=int, default=0, help="Local plane to show")
    a("--show-preds", default="", help="Show predictions made by given softmax on test set")
    a("--only-errors", type=_bool01, default=False,
      help="Show only mistaken predictions (to be used with --show-preds) (0/1)")
    a("--write-features", default="", help="Write test data features from given layer")
    a("--feature-path", default="",
      help="Write test data features to this path (to be used with --write-features)")
    a("--test-range", dest="test_batch_range", type=_range, default=None, help="test batch range")
    a("--data-path", default=None, help="data path (default: the checkpoint's)")
    a("--multiview-test", type=_bool01, default=False, help="multiview test batches (0/1)")
    a("--trust-pickle", action="store_true",
      help="also read legacy cuda-convnet (Python 2 pickle) checkpoints; unpickling can run code")
    for opt, why in NOT_PORTED.items():
        a(f"--{opt}", default=None, help=f"not available: {why}")
    return p


@main_guard("python -m port.shownet")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for opt in NOT_PORTED:
        if getattr(args, opt.replace("-", "_")) not in (None, "", "0"):
            raise ShowNetError(f"--{opt}: {NOT_PORTED[opt]}")
    if args.write_features and not args.feature_path:
        raise ShowNetError("--write-features needs --feature-path")
    if not (args.show_cost or args.show_filters or args.show_preds or args.write_features):
        raise ShowNetError("nothing to do: give --show-cost, --show-filters, --show-preds or "
                           "--write-features")
    dic = check_checkpoint(checkpoint.load(args.load_file, trust_pickle=args.trust_pickle),
                           checkpoint.resolve(args.load_file))
    options = {k: v for k, v in vars(args).items()
               if k not in {o.replace("-", "_") for o in NOT_PORTED} | {"trust_pickle"}}
    for path in ShowConvNet(dic, options).start():
        if path.suffix == ".png":
            print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
