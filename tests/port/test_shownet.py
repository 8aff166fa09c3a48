"""port.shownet: cost curves, the filter grid, predictions and the feature writer, as files."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from port import checkpoint
from port.data.convert import convert_cifar10
from port.shownet import ShowConvNet, filters_for_display, main, make_filter_grid
from port.util import unpickle

from .data.conftest import random_cifar_batches, write_official_cifar
from tests.port.cfgnets import TINY_DEF, tiny_params

FS, F = 11, 96


def _gabor_filters(rng, channels=3):
    yy, xx = np.mgrid[0:FS, 0:FS] - FS // 2
    w = np.zeros((channels * FS * FS, F), np.float32)                       # (fc·fs², F)
    for f in range(F):
        th, fr = rng.uniform(0, np.pi), rng.uniform(0.3, 0.9)
        g = np.cos(fr * (xx * np.cos(th) + yy * np.sin(th))) * np.exp(-(xx ** 2 + yy ** 2) / 18)
        w[:, f] = (rng.normal(size=channels)[:, None, None] * g[None]).reshape(-1)
    return w


def _checkpoint_dict(rng, n_train=300, test_freq=20, batches=30):
    w = _gabor_filters(rng)
    layers = {
        "conv1": {"name": "conv1", "type": "conv", "weights": [w], "weightsInc": [np.zeros_like(w)],
                  "biases": np.zeros((F, 1), np.float32), "filters": F, "filterChannels": [3],
                  "filterPixels": [FS * FS], "filterSize": [FS], "channels": [3]},
        "fc10": {"name": "fc10", "type": "fc", "outputs": 10,
                 "weights": [rng.standard_normal((3 * 8 * 8, 10)).astype(np.float32)]},
        "probs": {"name": "probs", "type": "softmax", "outputs": 10},
    }
    train = [({"logprob": [2.3 * np.exp(-i / 80) + 0.05 * rng.random(), 0.9 * np.exp(-i / 120)]}, 128)
             for i in range(n_train)]
    test = [({"logprob": [2.4 * np.exp(-i * test_freq / 80) + 0.2, 0.92 * np.exp(-i * test_freq / 120) + 0.05]}, 128)
            for i in range(n_train // test_freq)]
    return {"model_state": {"layers": layers, "train_outputs": train, "test_outputs": test,
                            "epoch": 11, "batchnum": 1},
            "op": {"train_batch_range": {"value": list(range(1, batches + 1)), "value_given": True},
                   "testing_freq": {"value": test_freq, "value_given": True}}}


def _png(path):
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        im.verify()
    im = Image.open(path)
    im.load()
    return im


def test_filter_grid_png_has_one_tile_per_filter(tmp_path):
    dic = _checkpoint_dict(np.random.default_rng(0))
    view = ShowConvNet.from_dict(dic, show_filters="conv1", out=tmp_path)
    path = view.plot_filters()
    im = _png(path)
    assert im.mode == "RGB" and im.info["Title"] == "Layer conv1 11x11 filters 0-95"
    rows, cols = 6, 16                                                      # 96 filters, 16 per row
    gh, gw = rows * (FS + 1) + 1, cols * (FS + 1) + 1
    k = im.width // gw
    assert k >= 4 and im.size == (gw * k, gh * k)
    px = np.asarray(im)[::k, ::k].astype(int)                               # back to grid pixels
    assert px.shape == (gh, gw, 3)
    border_rows, border_cols = np.arange(0, gh, FS + 1), np.arange(0, gw, FS + 1)
    assert px[border_rows].max() == 0 and px[:, border_cols].max() == 0    # black 1-pixel borders
    tiles = [px[1 + r * (FS + 1):1 + r * (FS + 1) + FS, 1 + c * (FS + 1):1 + c * (FS + 1) + FS]
             for r in range(rows) for c in range(cols)]
    assert sum(t.max() > 0 for t in tiles) == F
    # tile m is filter m, min-max normalised over the whole layer, channels as RGB
    w = dic["model_state"]["layers"]["conv1"]["weights"][0]
    norm = (w - w.min()) / (w - w.min()).max()
    m = 37
    want = norm[:, m].reshape(3, FS, FS).transpose(1, 2, 0) * 255
    np.testing.assert_allclose(tiles[m], want, atol=0.51)


def test_grid_variants_grey_fc_local_norm():
    rng = np.random.default_rng(1)
    w = _gabor_filters(rng)
    layer = {"type": "conv", "weights": [w], "filters": F, "filterChannels": [3]}
    f, n, combine, per_row = filters_for_display(layer, no_rgb=True)
    grid, end, f_per_row = make_filter_grid(f, 0, n, combine, per_row)
    assert not combine and f_per_row == 6 and end == F                   # ⌈16/3⌉ filters, channels side by side
    assert grid.shape == (16 * (FS + 1) + 1, 6 * (3 * FS + 1) + 1)
    f, n, combine, _ = filters_for_display(layer, norm_filters=True)
    assert f.min() == 0 and f.max() == 1
    fc = {"type": "fc", "outputs": 10, "weights": [rng.standard_normal((3 * 64, 10)).astype(np.float32)]}
    f, n, combine, _ = filters_for_display(fc, channels=3)
    assert f.shape == (3, 64, 10) and n == 10 and combine
    with pytest.raises(Exception, match="give --channels"):
        filters_for_display(fc)
    local = {"type": "local", "filters": 4, "filterChannels": [3], "filterPixels": [25], "modules": 9,
             "modulesX": 3, "weights": [rng.standard_normal((9 * 3 * 25, 4)).astype(np.float32)]}
    f, n, combine, per_row = filters_for_display(local, local_plane=2)
    assert f.shape == (3, 25, 9) and n == 9 and per_row == 3
    yuv = filters_for_display(layer, yuv_to_rgb=True)[0]
    assert not np.allclose(yuv, filters_for_display(layer)[0])


def test_cost_plot_png(tmp_path):
    dic = _checkpoint_dict(np.random.default_rng(2))
    path = ShowConvNet.from_dict(dic, show_cost="logprob", cost_idx=1, out=tmp_path).plot_cost()
    im = _png(path)
    assert path.name == "cost-logprob-1.png" and im.size == (800, 500)
    px = np.asarray(im.convert("RGB")).astype(int)
    red = (px[..., 0] > 200) & (px[..., 1] < 60) & (px[..., 2] < 60)
    black = px.sum(-1) < 60
    assert red.sum() > 300 and black.sum() > 300                            # both curves are drawn
    with pytest.raises(Exception, match="cost function with name 'nll' not defined.*logprob"):
        ShowConvNet.from_dict(dic, show_cost="nll", out=tmp_path).plot_cost()
    with pytest.raises(Exception, match="has no value 5"):
        ShowConvNet.from_dict(dic, show_cost="logprob", cost_idx=5, out=tmp_path).plot_cost()


def test_cli_through_a_saved_checkpoint(tmp_path, capsys):
    ck = tmp_path / "ConvNet__x" / "11.1"
    ck.parent.mkdir()
    checkpoint.save(ck, _checkpoint_dict(np.random.default_rng(3)))
    out = tmp_path / "pngs"
    assert main(["-f", str(ck.parent), "--show-cost=logprob", "--show-filters=conv1",
                 "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["cost-logprob-0.png", "filters-conv1.png"]
    assert "Wrote" in capsys.readouterr().out
    assert main(["-f", str(ck), "--show-filters=conv9", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "layer with name 'conv9' not defined" in err
    assert main(["-f", str(tmp_path / "missing"), "--show-cost=logprob"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["-f", str(ck), "--webcam=probs"]) == 2
    assert "--webcam: needs a camera" in capsys.readouterr().err
    assert main(["-f", str(ck)]) == 2 and "nothing to do" in capsys.readouterr().err
    assert main(["-f", str(ck), "--no-rgb=2", "--show-filters=conv1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--no-rgb: expected 0 or 1, got '2'" in err


@pytest.fixture
def tiny_cifar(tmp_path):
    rng = np.random.default_rng(4)
    src = write_official_cifar(tmp_path / "src", random_cifar_batches(rng, [20, 20]),
                               test=random_cifar_batches(rng, [12])[0])
    convert_cifar10(src, tmp_path / "data")
    return tmp_path / "data"


def _fake_forward(calls):
    """A stand-in for the model: 'probs' = softmax of a fixed projection, 'fc10' = the projection."""
    def forward(load_dic, data, names):
        calls.append((data[0].shape, tuple(names)))
        x = data[0]
        proj = np.stack([x[k::10].sum(0) for k in range(10)]) / 100.0                 # (10, N)
        e = np.exp(proj - proj.max(0))
        outs = {"fc10": proj, "probs": e / e.sum(0)}
        return [outs[n] for n in names]
    return forward


def test_predictions_png(tmp_path, tiny_cifar):
    dic = _checkpoint_dict(np.random.default_rng(5))
    dic["op"]["dp_type"] = {"value": "cifar-cropped"}
    calls = []
    view = ShowConvNet.from_dict(dic, forward=_fake_forward(calls), show_preds="probs", out=tmp_path,
                                 data_path=tiny_cifar, test_batch_range=[3])
    im = _png(view.plot_predictions())
    assert im.size == (1200, 900) and calls == [((1728, 8), ("probs",))]
    view = ShowConvNet.from_dict(dic, forward=_fake_forward(calls), show_preds="probs", out=tmp_path,
                                 data_path=tiny_cifar, test_batch_range=[3], only_errors=True)
    assert _png(view.plot_predictions()).size == (1200, 900)


def test_write_features(tmp_path, tiny_cifar):
    dic = _checkpoint_dict(np.random.default_rng(6))
    dic["op"]["dp_type"] = {"value": "cifar"}
    calls = []
    view = ShowConvNet.from_dict(dic, forward=_fake_forward(calls), write_features="fc10",
                                 feature_path=tmp_path / "ftrs", data_path=tiny_cifar,
                                 test_batch_range=[1, 3], load_file="ck/11.1")
    view.start()
    assert sorted(p.name for p in (tmp_path / "ftrs").iterdir()) == ["batches.meta", "data_batch_1", "data_batch_3"]
    for b, n in ((1, 20), (3, 12)):
        f = unpickle(tmp_path / "ftrs" / f"data_batch_{b}")
        raw = unpickle(tiny_cifar / f"data_batch_{b}")
        assert f["data"].shape == (n, 10) and f["data"].dtype == np.float32
        x = raw["data"].astype(np.float32) - unpickle(tiny_cifar / "batches.meta")["data_mean"]
        np.testing.assert_allclose(f["data"][:, 2], x[2::10].sum(0) / 100.0, rtol=1e-5)
        np.testing.assert_array_equal(f["labels"][0], raw["labels"])
    assert unpickle(tmp_path / "ftrs" / "batches.meta") == {"source_model": "ck/11.1", "num_vis": 10}
    assert [c[0][1] for c in calls] == [20, 12]


def test_views_through_the_ports_model(tmp_path, tiny_cifar):
    """The real forward pass (port.layer + port.model): features, predictions and a 16-tile grid."""
    layer_mod = pytest.importorskip("port.layer")
    from port.shownet import ModelForward

    (tmp_path / "layers.cfg").write_text(TINY_DEF)  # conv1: 16 filters of 5×5
    (tmp_path / "params.cfg").write_text(tiny_params())
    layers = layer_mod.parse_layers(tmp_path / "layers.cfg", tmp_path / "params.cfg",
                                    {"data_dims": {0: 1728, 1: 1}, "num_classes": 10, "seed": 1})
    dic = {"model_state": {"layers": layers, "train_outputs": [], "test_outputs": [], "epoch": 1, "batchnum": 1},
           "op": {"dp_type": {"value": "cifar-cropped"}, "minibatch_size": {"value": 8}}}
    ck = tmp_path / "ck" / "1.1"
    ck.parent.mkdir()
    checkpoint.save(ck, dic)
    assert main(["-f", str(ck), "--write-features=fc10", f"--feature-path={tmp_path / 'f'}",
                 f"--data-path={tiny_cifar}", "--test-range=2-3", "--show-preds=probs",
                 "--show-filters=conv1", "--out", str(tmp_path / "png")]) == 0
    f3 = unpickle(tmp_path / "f" / "data_batch_3")
    assert f3["data"].shape == (12, 10) and np.isfinite(f3["data"]).all() and f3["data"].std() > 0
    assert unpickle(tmp_path / "f" / "batches.meta")["num_vis"] == 10
    im = _png(tmp_path / "png" / "filters-conv1.png")
    k = im.width // (16 * 6 + 1)
    assert im.size == ((16 * 6 + 1) * k, (6 + 1) * k)                        # one row of 16 5×5 tiles
    assert _png(tmp_path / "png" / "preds-probs.png").size == (1200, 900)
    # the model's probabilities are the softmax of the features the writer stored
    from port.data import get_instance
    with get_instance(tiny_cifar, [3], type="cifar-cropped", test=True) as dp:
        data = dp.get_next_batch()[2]
    fc, probs = ModelForward()(checkpoint.load(ck), data, ["fc10", "probs"])
    np.testing.assert_allclose(fc.T, f3["data"], rtol=1e-5, atol=1e-6)
    e = np.exp(fc - fc.max(0))
    np.testing.assert_allclose(probs, e / e.sum(0), rtol=1e-4, atol=1e-6)


def test_epoch_ticks_label_short_runs_and_every_tenth_epoch_of_long_runs():
    from port.shownet import epoch_ticks

    locs, labels = epoch_ticks(4 * 6 + 2, 4)           # 6.5 epochs of 4 batches
    assert locs == [4, 8, 12, 16, 20, 24] and labels == ["1", "2", "3", "4", "5", "6"]
    locs, labels = epoch_ticks(5 * 90, 5)              # 90 epochs: a label every 10th epoch
    assert len(locs) == 90 and [l for l in labels if l] == [str(e) for e in range(10, 91, 10)]


def test_unwritable_out_is_one_line(tmp_path, capsys):
    ck = tmp_path / "11.1"
    checkpoint.save(ck, _checkpoint_dict(np.random.default_rng(7)))
    (tmp_path / "afile").write_text("x")
    assert main(["-f", str(ck), "--show-cost=logprob", "--out", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "afile/cost-logprob-0.png: cannot write" in err
