"""python -m port.data imagenet on a small fake of the official ILSVRC2012 layout (train tar of class
tars, flat val tar, devkit with meta.mat) and of Kaggle's copy: every label end to end, bad files
skipped and listed, resume after a failure and after a SIGKILL, hostile images with bounded memory."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from port.data import get_instance, imagenet
from port.data.__main__ import main
from port.data.imagenet import convert_imagenet
from port.util import unpickle

WNIDS = ["n01440764", "n01443537", "n01484850"]     # the 2012 devkit's ILSVRC2012_ID 1, 2, 3
WORDS = ["tench, Tinca tinca", "goldfish, Carassius auratus", "great white shark"]
S = 32                                               # output side (tiny images keep the tests fast)
LEVELS = (30, 90, 150, 210)


def _colours():
    """Distinct flat colours, one per image, so a decoded case names its source image."""
    return [(r, g, b) for r in LEVELS for g in LEVELS for b in LEVELS if len({r, g, b}) > 1]


def _jpeg(colour, size=(48, 40), mode="RGB", fmt="JPEG") -> bytes:
    im = Image.new("RGB", size, colour)
    if mode != "RGB":
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, quality=95)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _broken_png() -> bytes:
    """A PNG whose image data continues in a chunk with a broken type: Pillow's load raises
    SyntaxError (not an OSError)."""
    noise = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG")
    d = buf.getvalue()
    i = d.index(b"IDAT") - 4
    n = int.from_bytes(d[i:i + 4], "big")
    data = d[i + 8:i + 8 + n]

    def chunk(kind, payload):
        return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")
    return d[:i] + chunk(b"IDAT", data[:100]) + chunk(b"\x00\x01\x02\x03", data[100:]) + d[i + 12 + n:]


def _bomb_header() -> bytes:
    """A small JPEG whose frame header claims 12000×12000 pixels (past Pillow's warning limit,
    short of its error limit)."""
    data = bytearray(_jpeg((9, 9, 9)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (12000).to_bytes(2, "big") * 2
    return bytes(data)


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar, the devkit, and Kaggle's two label files.

    Returns (folder, {member name: colour} of every image that must convert, names that must be
    skipped, {val file stem: wnid})."""
    root = tmp_path_factory.mktemp("ilsvrc")
    colours = iter(_colours())
    expect, bad = {}, set()
    with tarfile.open(root / "ILSVRC2012_img_train.tar", "w") as outer:
        for c, wnid in enumerate(WNIDS):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as inner:
                for i in range(5):
                    name, col = f"{wnid}_{i}.JPEG", next(colours)
                    mode = {1: "L", 2: "CMYK"}.get(i, "RGB") if c == 0 else "RGB"
                    if mode == "L":
                        col = (col[0],) * 3
                    fmt = "PNG" if (c, i) == (1, 3) else "JPEG"          # a PNG named .JPEG converts
                    _add(inner, name, _jpeg(col, mode=mode, fmt=fmt))
                    expect[f"{wnid}.tar/{name}"] = col
                if c == 1:                                                # the bad files
                    trunc = _jpeg(next(colours), size=(200, 160))
                    for name, data in ((f"{wnid}_97.JPEG", trunc[:len(trunc) // 2]),
                                       (f"{wnid}_98.JPEG", b"this is not an image\n"),
                                       (f"{wnid}_99.JPEG", _broken_png()),
                                       (f"{wnid}_96.JPEG", _bomb_header())):
                        _add(inner, name, data)
                        bad.add(f"{wnid}.tar/{name}")
            _add(outer, f"{wnid}.tar", buf.getvalue())
    val_wnids = [WNIDS[k] for k in (2, 0, 1, 1, 0, 2)]
    with tarfile.open(root / "ILSVRC2012_img_val.tar", "w") as tar:
        (root / "val").mkdir()
        for i in range(1, 7):
            name, col = f"ILSVRC2012_val_{i:08d}.JPEG", next(colours)
            data = _jpeg(col, size=(40, 56))
            _add(tar, name, data)
            (root / "val" / name).write_bytes(data)
            expect[name] = col
    from scipy.io import savemat  # the devkit's meta.mat: 3 leaves and one inner synset

    dt = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")]
    syn = np.array([(i + 1, w, words, 0) for i, (w, words) in enumerate(zip(WNIDS, WORDS))]
                   + [(4, "n00001740", "entity", 3)], dtype=dt)
    mat = io.BytesIO()
    savemat(mat, {"synsets": syn})
    truth = "".join(f"{WNIDS.index(w) + 1}\n" for w in val_wnids).encode()
    with tarfile.open(root / "ILSVRC2012_devkit_t12.tar.gz", "w:gz") as tar:
        _add(tar, "ILSVRC2012_devkit_t12/data/meta.mat", mat.getvalue())
        _add(tar, "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt", truth)
    (root / "LOC_synset_mapping.txt").write_text("".join(f"{w} {t}\n" for w, t in zip(WNIDS, WORDS)))
    (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + "".join(
        f"ILSVRC2012_val_{i:08d},{w} 1 2 30 40 {w} 5 6 7 8\n" for i, w in enumerate(val_wnids, 1)))
    return root, expect, bad, {f"ILSVRC2012_val_{i:08d}": w for i, w in enumerate(val_wnids, 1)}


def _cases(out: Path, batches):
    """(batch, mean colour of the decoded case, label tuple) of every case."""
    for b in batches:
        strings, sizes, labels = unpickle(out / f"data_batch_{b}")
        assert len(strings) == len(sizes) == len(labels)
        for s, lab in zip(strings, labels):
            x = np.asarray(Image.open(io.BytesIO(s)).convert("RGB"))
            assert x.shape == (S, S, 3)
            yield b, x.reshape(-1, 3).mean(axis=0), lab


def _source_of(colour, expect):
    name, col = min(expect.items(), key=lambda kv: np.abs(np.subtract(kv[1], colour)).max())
    assert np.abs(np.subtract(col, colour)).max() <= 8, (colour, name)
    return name


def _check_every_label(out, expect, val_truth, summary):
    seen = []
    meta = unpickle(out / "batches.meta")
    for b, colour, (wnid, k) in _cases(out, range(1, summary["test_range"][1] + 1)):
        name = _source_of(colour, expect)
        seen.append(name)
        truth = val_truth[name.split(".")[0]] if name.startswith("ILSVRC2012_val") else name[:9]
        assert (wnid, k) == (truth, WNIDS.index(truth)), name
        assert (b >= summary["test_range"][0]) == name.startswith("ILSVRC2012_val")
    assert sorted(seen) == sorted(expect)                    # every good image once, nothing else
    assert meta["label_wnids"] == WNIDS and meta["num_vis"] == 3 * S * S
    return meta


def test_official_tars_and_devkit_every_label(official, tmp_path, capsys):
    root, expect, bad, val_truth = official
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match=r"4 files skipped .*listed in .*skipped.txt"):
        rc = main(["imagenet", "--source", str(root / "ILSVRC2012_img_train.tar"),
                   "--val", str(root / "ILSVRC2012_img_val.tar"),
                   "--devkit", str(root / "ILSVRC2012_devkit_t12.tar.gz"), "--out", str(out),
                   "--size", str(S), "--batch-size", "4", "--workers", "2"])
    assert rc == 0
    msg = capsys.readouterr().out
    # 15 good training images in 5 batches of 4 (19 planned files), 6 validation images in 2
    assert "3 classes, training batches 1-5 (15 images), test batches 6-7 (6 images)" in msg
    summary = {"test_range": (6, 7)}
    meta = _check_every_label(out, expect, val_truth, summary)
    assert meta["label_names"] == WORDS                       # the devkit's words, ID order = sorted
    report = [line.split("\t") for line in (out / "skipped.txt").read_text().splitlines()]
    reasons = {Path(n).name: r for n, r in (tuple(x) for x in report)}
    assert {f"{WNIDS[1]}.tar/{n}" for n in reasons} == {f"{WNIDS[1]}.tar/{Path(b).name}" for b in bad}
    assert "truncated" in reasons[f"{WNIDS[1]}_97.JPEG"].lower()
    assert "SyntaxError" in reasons[f"{WNIDS[1]}_99.JPEG"]
    assert "12000×12000 = 144000000 pixels, over Pillow's decompression-bomb limit" in reasons[f"{WNIDS[1]}_96.JPEG"]
    # the provider reads the result
    with get_instance(out, [1], type="inet-lr-cropped-jpeg", dp_params={"crop_border": 4}) as dp:
        crops, labels = dp.get_next_batch()[2]
    assert crops.shape[0] == 3 * 24 * 24 and set(labels[0].tolist()) <= {0.0, 1.0, 2.0}


def test_kaggle_labels_and_flat_val_folder(official, tmp_path):
    root, expect, bad, val_truth = official
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="4 files skipped"):
        s = convert_imagenet(root / "ILSVRC2012_img_train.tar", out, batch_size=8, size=S,
                             val=root / "val", val_labels=root / "LOC_val_solution.csv",
                             synsets=root / "LOC_synset_mapping.txt", workers=0)
    assert s["train_range"] == (1, 3) and s["test_range"] == (4, 4) and s["test_cases"] == 6
    meta = _check_every_label(out, expect, val_truth, s)
    assert meta["label_names"] == WORDS
    # mean and PCA are those of the decoded training cases
    x = np.concatenate([np.stack([np.asarray(Image.open(io.BytesIO(j)).convert("RGB"))
                                  for j in unpickle(out / f"data_batch_{b}")[0]]) for b in (1, 2, 3)])
    np.testing.assert_allclose(meta["data_mean"].reshape(3, S, S), x.mean(0).transpose(2, 0, 1), atol=1e-3)
    stdevs, vecs = meta["color_pca"]
    cov = np.cov(x.reshape(-1, 3).T.astype(np.float64), bias=True)
    np.testing.assert_allclose(vecs @ np.diag(stdevs.astype(np.float64) ** 2) @ vecs.T, cov, atol=1e-2)


def test_mistakes_are_one_line(official, tmp_path, capsys):
    root = official[0]
    train = str(root / "ILSVRC2012_img_train.tar")
    cases = [
        (["--val", str(root / "val")], "--val needs its labels"),
        (["--source", str(root / "LOC_synset_mapping.txt")], "is not an uncompressed tar"),
        (["--val", str(root / "val"), "--val-labels", str(root / "LOC_synset_mapping.txt"),
          "--synsets", str(root / "LOC_synset_mapping.txt")], "line 1: expected 'ImageId,<wnid>"),
        (["--devkit", str(root / "LOC_val_solution.csv"), "--val", str(root / "val")],
         "devkit is not a readable tar.gz"),
        (["--workers", "-1"], "--workers=-1: must be at least 0"),
        (["--size", "0"], "--size: must lie in 1..4096"),
    ]
    for extra, expected in cases:
        args = ["imagenet", "--source", train, "--out", str(tmp_path / "o"), *extra]
        if "--source" in extra:
            args = ["imagenet", *extra, "--out", str(tmp_path / "o")]
        assert main(args) == 2, extra
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, (extra, err)
    assert main(["imagenet", "--source", str(root / "val"), "--out", str(root / "val" / "o")]) == 2
    assert "lies inside the source" in capsys.readouterr().err
    assert not (root / "val" / "o").exists()
    # a folder holding batches of something else is refused, not mixed into
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "data_batch_1").write_bytes(b"x")
    assert main(["imagenet", "--source", train, "--out", str(tmp_path / "used")]) == 2
    assert "already holds batches not written by this conversion" in capsys.readouterr().err


def _same_output(a: Path, b: Path, nbatches: int) -> None:
    for k in range(1, nbatches + 1):
        assert unpickle(a / f"data_batch_{k}") == unpickle(b / f"data_batch_{k}"), k
    ma, mb = unpickle(a / "batches.meta"), unpickle(b / "batches.meta")
    np.testing.assert_array_equal(ma["data_mean"], mb["data_mean"])
    for x, y in zip(ma["color_pca"], mb["color_pca"]):
        np.testing.assert_array_equal(x, y)
    assert (a / "skipped.txt").read_text() == (b / "skipped.txt").read_text()


def test_resume_after_a_failure_redoes_only_the_rest(official, tmp_path, monkeypatch):
    root = official[0]
    kw = dict(batch_size=3, size=S, val=root / "ILSVRC2012_img_val.tar",
              devkit=root / "ILSVRC2012_devkit_t12.tar.gz", workers=0)
    with pytest.warns(UserWarning):
        clean = convert_imagenet(root / "ILSVRC2012_img_train.tar", tmp_path / "clean", **kw)
    real, calls = imagenet.convert_batch, []

    def failing(task):
        calls.append(task[1])
        if len(calls) == 4:
            raise RuntimeError("injected failure")
        return real(task)

    monkeypatch.setattr(imagenet, "convert_batch", failing)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="injected"):
        convert_imagenet(root / "ILSVRC2012_img_train.tar", out, **kw)
    assert not (out / "batches.meta").exists()
    kept = {k: (out / f"data_batch_{k}").stat().st_ino for k in (1, 2, 3)}
    monkeypatch.setattr(imagenet, "convert_batch", real)
    with pytest.warns(UserWarning):
        again = convert_imagenet(root / "ILSVRC2012_img_train.tar", out, **kw)
    assert again["resumed_batches"] == 3
    assert {k: (out / f"data_batch_{k}").stat().st_ino for k in (1, 2, 3)} == kept   # not rewritten
    n = clean["test_range"][1]
    _same_output(clean_dir := tmp_path / "clean", out, n)
    # a rerun of a finished conversion checks the batches and writes nothing new
    with pytest.warns(UserWarning):
        assert convert_imagenet(root / "ILSVRC2012_img_train.tar", out, **kw)["resumed_batches"] == n
    (out / "data_batch_2").write_bytes(b"changed")
    with pytest.raises(imagenet.UserError, match="data_batch_2: finished by an earlier run but changed"):
        convert_imagenet(root / "ILSVRC2012_img_train.tar", out, **kw)
    with pytest.raises(imagenet.UserError, match="holds a conversion of other sources or settings"):
        convert_imagenet(root / "ILSVRC2012_img_train.tar", out, **{**kw, "seed": 5})
    assert clean_dir.is_dir()


def test_resume_after_sigkill(official, tmp_path):
    """The pool is killed (SIGKILL, whole process group) after its first batch; a rerun finishes."""
    root = official[0]
    args = ["--source", str(root / "ILSVRC2012_img_train.tar"), "--size", str(S), "--batch-size", "1"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "port.data", "imagenet", *args, "--out", str(out),
                             "--workers", "2"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (out / imagenet.STATE_DIR / "totals.npz").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "conversion ended early"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "batches.meta").exists()                # killed mid-run: 19 batches planned
    with pytest.warns(UserWarning):
        s = convert_imagenet(root / "ILSVRC2012_img_train.tar", out, batch_size=1, size=S, workers=0)
    assert 1 <= s["resumed_batches"] < 19 and s["train_range"] == (1, 19)
    with pytest.warns(UserWarning):
        convert_imagenet(root / "ILSVRC2012_img_train.tar", tmp_path / "clean", batch_size=1, size=S,
                         workers=0)
    _same_output(tmp_path / "clean", out, 19)
    assert not list(out.glob(".*.tmp"))


def test_hostile_images_one_line_each_and_memory_bounded(tmp_path):
    """Under a 1 GiB address-space limit: a 1×60000 PNG, an 8000² JPEG (decoded at 1/8 scale), two
    12000² JPEG headers (past the bomb limit), a PNG that makes Pillow raise SyntaxError, links
    out of the tree, a FIFO and a file name with a newline: exit 0, each skip one report line."""
    tree, outside = tmp_path / "tree", tmp_path / "outside"
    for d in (tree / "a", tree / "b", outside / "c"):
        d.mkdir(parents=True)
    (tree / "a" / "ok.jpg").write_bytes(_jpeg((200, 30, 30)))
    (tree / "a" / "tall.png").write_bytes(_jpeg((30, 200, 30), size=(1, 60000), fmt="PNG"))
    big = io.BytesIO()
    Image.new("L", (8000, 8000), 128).save(big, format="JPEG", quality=75)
    (tree / "b" / "big.jpg").write_bytes(big.getvalue())
    (tree / "b" / "bomb1.jpg").write_bytes(_bomb_header())
    (tree / "b" / "bomb2.jpg").write_bytes(_bomb_header())
    (tree / "b" / "chunk.png").write_bytes(_broken_png())
    (tree / "b" / "new\nline.jpg").write_bytes(b"\xff\xd8 truncated")
    (outside / "secret.jpg").write_bytes(_jpeg((1, 1, 1)))
    (outside / "c" / "x.jpg").write_bytes(_jpeg((2, 2, 2)))
    (tree / "a" / "link.jpg").symlink_to(outside / "secret.jpg")
    (tree / "c").symlink_to(outside / "c")
    os.mkfifo(tree / "b" / "fifo.jpg")
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
            "from port.data.__main__ import main; sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code, "imagenet", "--source", str(tree), "--out",
                        str(tmp_path / "out"), "--size", str(S), "--workers", "0"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr    # one warning line
    assert "2 classes, training batches 1 (3 images)" in r.stdout               # ok, tall, big
    report = (tmp_path / "out" / "skipped.txt").read_text().splitlines()
    reasons = {line.split("\t")[0].replace(str(tree) + "/", ""): line.split("\t")[1] for line in report}
    assert len(report) == 7 and all(line.count("\t") == 1 for line in report)
    assert "over Pillow's decompression-bomb limit" in reasons["b/bomb1.jpg"] == reasons["b/bomb2.jpg"]
    assert "SyntaxError" in reasons["b/chunk.png"]
    assert "FIFO" in reasons["b/fifo.jpg"]
    assert "symbolic link out of the tree" in reasons["a/link.jpg"]
    assert "class folder is a symbolic link out of the tree" in reasons["c"]
    assert repr(str(tree / "b" / "new\nline.jpg")) in report[[i for i, x in enumerate(report)
                                                              if "new\\nline" in x][0]]
    cases = unpickle(tmp_path / "out" / "data_batch_1")
    assert sorted(c for _, c in cases[2]) == [0, 0, 1] and sorted(cases[1]) == [(1, 60000), (48, 40),
                                                                             (8000, 8000)]


def test_convnet_trains_on_the_converted_tars(official, tmp_path):
    """The converted fake trains one epoch through port.convnet (the feed's workers on the
    training batches, the test batch beside), and the checkpoint is written."""
    from tests.port.cfgnets import TINY_DEF, edit, tiny_params
    from tests.port.test_convnet import run_cli

    root = official[0]
    out = tmp_path / "data"
    with pytest.warns(UserWarning):
        s = convert_imagenet(root / "ILSVRC2012_img_train.tar", out, batch_size=8, size=S,
                             val=root / "ILSVRC2012_img_val.tar",
                             devkit=root / "ILSVRC2012_devkit_t12.tar.gz", workers=0)
    layer_def, params = tmp_path / "layers.cfg", tmp_path / "params.cfg"    # 24×24×3: S − 2·4
    layer_def.write_text(edit(TINY_DEF, "fc10", "outputs=10", "outputs=3"))    # 3 classes
    params.write_text(tiny_params(eps_w=1e-6))                                # 0–255 inputs
    r = run_cli([f"--data-path={out}", f"--save-path={tmp_path / 'save'}", "--train-range=1-3",
                 f"--test-range={s['test_range'][0]}", f"--layer-def={layer_def}",
                 f"--layer-params={params}", "--data-provider=inet-lr-cropped-jpeg",
                 "--crop-border=4", "--color-noise=0.1", "--scalar-mean=1", "--test-freq=3",
                 "--epochs=1", "--mini=8", "--backend=numpy"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and list((tmp_path / "save").glob("ConvNet__*/1.3"))


def test_ustar_headers_read_directly_agree_with_tarfile(tmp_path):
    """The fast header reader gives tarfile's members for plain ustar, and defers (None) to
    tarfile for a long (pax) name."""
    for names, fast in ((["a.JPEG", "d/b.JPEG"], True), (["x" * 120 + ".JPEG"], False)):
        path = tmp_path / f"{fast}.tar"
        with tarfile.open(path, "w") as tar:
            for i, n in enumerate(names):
                _add(tar, n, bytes(range(i + 1)) * 300)
        with open(path, "rb") as f:
            got = imagenet._ustar_members(f, 0, path.stat().st_size)
        with tarfile.open(path) as tar:
            want = [(m.name, m.offset_data, m.size, True) for m in tar if m.isfile()]
        assert got == (want if fast else None)
