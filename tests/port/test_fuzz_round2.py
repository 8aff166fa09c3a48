"""Hostile input, second round (issue 24): the converters, the batches the driver reads, shownet,
compat's folders, resumes, and special files given where a regular file is expected.

Every case must end in exactly one error line and exit 2, or in a correct run (checked, not
assumed); warnings are one line each (``<prog>: warning: ...``) and do not count as the error
line. The cases run the commands' ``main()`` in-process (stderr captured), except a few bombs,
run as the real command line in a child limited to 1 GiB of address space (RLIMIT_AS), and the
kills, which need a process to kill. Every input is made here, seeded; nothing is downloaded.

A special file (FIFO) would make a regression hang rather than fail: those cases run under an
alarm (:func:`no_hang`) that turns a block into a failure.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import pickle
import random
import re
import resource
import signal
import subprocess
import sys
import tarfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archive import ROOT
from port import checkpoint
from port.data import convert, get_instance
from port.data.__main__ import main as data_main
from port.errors import main_guard
from tests.port.cfgnets import TINY_DEF, tiny_params
from tests.port.data.conftest import random_cifar_batches, write_official_cifar

SEED = 24
GIB = 1 << 30


# ---- running a command and judging it ---------------------------------------------------------

def call(main, argv: list[str], capsys) -> tuple[int, list[str], list[str]]:
    """``main(argv)`` in-process: (exit code, stderr lines that are not warnings, warnings)."""
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        # as outside pytest (which records warnings): printed, in main_guard's one-line format
        warnings.showwarning = lambda m, c, f, l, *a, **k: print(
            warnings.formatwarning(m, c, f, l), end="", file=sys.stderr)
        rc = main([str(a) for a in argv])
    lines = capsys.readouterr().err.splitlines()
    warns = [l for l in lines if re.match(r"^[\w. -]+: warning: ", l)]
    return rc, [l for l in lines if l not in warns], warns


def run_guarded(fn, capsys) -> tuple[int, list[str], list[str]]:
    """``fn()`` as a command line runs it (through :func:`main_guard`)."""
    @main_guard("fuzz")
    def main(_argv):
        fn()
        return 0
    return call(main, [], capsys)


def refused(outcome, *needles: str) -> None:
    """Exit 2 and one error line holding every needle (never a traceback)."""
    rc, err, _ = outcome
    assert rc == 2 and len(err) == 1 and "Traceback" not in err[0], (rc, err)
    for n in needles:
        assert n in err[0], (n, err[0])


@contextlib.contextmanager
def no_hang(seconds: int = 20):
    """Fail instead of hanging (a FIFO opened for reading blocks until a writer comes)."""
    def fire(*_):
        raise TimeoutError(f"blocked for {seconds} s (a FIFO opened?)")
    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (GIB, GIB))


def cli_1gib(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python <args>`` in a child limited to 1 GiB of address space."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=env, preexec_fn=_limit_memory)


def refused_cli(r: subprocess.CompletedProcess, *needles: str) -> None:
    err = [l for l in r.stderr.splitlines() if ": warning: " not in l]
    assert r.returncode == 2 and len(err) == 1 and "Traceback" not in r.stderr, (r.returncode, r.stderr[-2000:])
    for n in needles:
        assert n in err[0], (n, err[0])


# ---- hostile files ------------------------------------------------------------------------------

def bytearray_bomb(n: int = 1_500_000_000) -> bytes:
    """A 30-byte pickle of ``bytearray(n)`` (the issue's 1.5e9)."""
    return b"\x80\x02c__builtin__\nbytearray\nJ" + n.to_bytes(4, "little") + b"\x85R."


def ndarray_bomb() -> bytes:
    """A pickle of ``numpy.ndarray((2**37,))``: 1 TiB of float64 asked for in 40 bytes."""
    return b"\x80\x02cnumpy\nndarray\n\x8a\x05\x00\x00\x00\x00\x20\x85R."


def gzip_bomb(path: Path, gib: float) -> Path:
    """Many gzip members of 1 MiB of zeros each: ``gib`` GiB out of about 1 KiB per MiB."""
    member = gzip.compress(b"\0" * (1 << 20), compresslevel=9)
    with open(path, "wb") as f:
        for _ in range(int(gib * 1024)):
            f.write(member)
    return path


def sparse_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def sparse_member_tgz(path: Path, member: str, claimed: int) -> Path:
    """A few-KB .tar.gz whose one member is an old-GNU sparse file claiming ``claimed`` bytes
    (all hole): tarfile reports its full size and would read that many zeros."""
    ti = tarfile.TarInfo(member)
    ti.size = 0
    ti.type = tarfile.GNUTYPE_SPARSE
    buf = bytearray(ti.tobuf(format=tarfile.GNU_FORMAT))
    buf[483:495] = tarfile.itn(claimed, 12, tarfile.GNU_FORMAT)     # the real (expanded) size
    buf[148:156] = b" " * 8
    buf[148:156] = b"%06o\0 " % sum(buf[:512])
    path.write_bytes(gzip.compress(bytes(buf) + b"\0" * 1024))
    return path


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def zip_payload(payload: bytes, method: int | None = None, encrypted: bool = False) -> bytes:
    """The original's zipped pickle (one member ``data``), its method or flags then patched."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("data", payload)
    raw = bytearray(buf.getvalue())
    central = raw.rindex(b"PK\x01\x02")
    if method is not None:
        raw[8:10] = raw[central + 10:central + 12] = method.to_bytes(2, "little")
    if encrypted:
        raw[6] |= 1
        raw[central + 8] |= 1
    return bytes(raw)


# ---- port.data cifar10 -----------------------------------------------------------------------

def official_like(root: Path, seed: int = SEED, sizes=(12, 12)) -> Path:
    """A folder in the official python layout (Python-2 keys), with a test batch."""
    rng = np.random.default_rng(seed)
    return write_official_cifar(root / "cifar-10-batches-py", random_cifar_batches(rng, list(sizes)),
                                test=random_cifar_batches(rng, [8])[0])


def tarball(src: Path, path: Path) -> Path:
    with tarfile.open(path, "w:gz") as t:
        t.add(src, arcname="cifar-10-batches-py")
    return path


def batches_of(folder: Path) -> dict[str, bytes]:
    """The converted folder's pickled contents, comparable (the files hold the same objects)."""
    from port.util import unpickle

    out = {}
    for p in sorted(folder.iterdir()):
        d = unpickle(p)
        out[p.name] = pickle.dumps({k: (v.tobytes() if isinstance(v, np.ndarray) else v)
                                    for k, v in d.items()})
    return out


def test_cifar_tarball_corruptions(tmp_path, capsys, monkeypatch):
    """Flipped bytes (the gzip CRC, read at the stream's end, catches them), a truncated and a
    corrupt stream, a gzip bomb, a tar whose sparse member claims 3 GiB, and the official
    file's MD5."""
    src = official_like(tmp_path)
    tgz = tarball(src, tmp_path / "c.tar.gz")
    assert call(data_main, ["cifar10", "--source", tgz, "--out", tmp_path / "clean"], capsys)[0] == 0
    clean = batches_of(tmp_path / "clean")
    raw = tgz.read_bytes()
    rng = random.Random(SEED)
    outcomes = []
    for k in range(10):  # a flipped byte past the gzip header: refused, or the very same batches
        pos = rng.randrange(10, len(raw))
        bad = tmp_path / f"flip{k}.tar.gz"
        bad.write_bytes(raw[:pos] + bytes([raw[pos] ^ (1 << rng.randrange(8))]) + raw[pos + 1:])
        out = tmp_path / f"o-flip{k}"
        rc, err, _ = call(data_main, ["cifar10", "--source", bad, "--out", out], capsys)
        assert (rc == 2 and len(err) == 1) or (rc == 0 and batches_of(out) == clean), (pos, rc, err)
        outcomes.append(rc)
    assert outcomes.count(2) >= 9, outcomes  # a flip in the CRC-covered data cannot pass
    trailer = tmp_path / "crc.tar.gz"         # the case: only the stored CRC-32 differs
    trailer.write_bytes(raw[:-8] + bytes([raw[-8] ^ 1]) + raw[-7:])
    refused(call(data_main, ["cifar10", "--source", trailer, "--out", tmp_path / "o1"], capsys),
            "crc.tar.gz: corrupt or truncated gzip stream")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(raw[:len(raw) // 2])
    refused(call(data_main, ["cifar10", "--source", cut, "--out", tmp_path / "o2"], capsys),
            "cut.tar.gz: corrupt or truncated gzip stream")
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(raw[:10] + np.random.default_rng(SEED).bytes(4000))
    refused(call(data_main, ["cifar10", "--source", garbage, "--out", tmp_path / "o3"], capsys),
            "garbage.tar.gz: corrupt or truncated gzip stream")
    monkeypatch.setattr(convert, "MAX_CIFAR_TAR_BYTES", 8 << 20)  # the real limit: test_bombs_under_1_gib
    refused(call(data_main, ["cifar10", "--source", gzip_bomb(tmp_path / "bomb.tar.gz", 1 / 64),
                             "--out", tmp_path / "o4"], capsys), "decompresses to more than")
    sparse = sparse_member_tgz(tmp_path / "sparse.tar.gz", "cifar-10-batches-py/data_batch_1", 3 * GIB)
    assert len(sparse.read_bytes()) < 10_000
    refused(call(data_main, ["cifar10", "--source", sparse, "--out", tmp_path / "o5"], capsys),
            "data_batch_1: is 3221225472 bytes (3.0 GiB), more than")
    # a file of the official size is the official file: its MD5 must be the published one
    monkeypatch.setattr(convert, "CIFAR10_SIZE", len(raw))
    refused(call(data_main, ["cifar10", "--source", tgz, "--out", tmp_path / "o6"], capsys),
            "has the official CIFAR-10 tarball's size but MD5", convert.CIFAR10_MD5)
    monkeypatch.setattr(convert, "CIFAR10_MD5", hashlib.md5(raw).hexdigest())
    assert call(data_main, ["cifar10", "--source", tgz, "--out", tmp_path / "o7"], capsys)[0] == 0
    assert not any(p.name.startswith(".o") for p in tmp_path.iterdir())  # no partial folder left


CIFAR_BATCH_CASES = [  # (name, what replaces data_batch_1's dict entries, needle)
    ("labels NaN", {b"labels": [float("nan")] * 12}, "label 0 is float nan; expected a class id 0..9"),
    ("labels str", {b"labels": ["abc"] * 12}, "label 0 is str 'abc'"),
    ("labels None", {b"labels": [None] * 12}, "label 0 is NoneType None"),
    ("label -1", {b"labels": [0] * 11 + [-1]}, "label 11 is int -1"),
    ("label 10", {b"labels": [10] + [0] * 11}, "label 0 is int 10"),
    ("labels an int", {b"labels": 5}, "'labels' is int 5; expected a list"),
    ("labels too few", {b"labels": [1, 2]}, "2 labels for 12 images"),
    ("data str", {b"data": "abc"}, "'data' is str 'abc'; expected a uint8 array"),
    ("data float", {b"data": np.zeros((12, 3072))}, "'data' is float64 (12, 3072)"),
    ("no labels", {b"labels": None, "drop": b"labels"}, "expected a dict with 'data' and 'labels'"),
]


@pytest.mark.parametrize("name,change,needle", CIFAR_BATCH_CASES, ids=[c[0] for c in CIFAR_BATCH_CASES])
def test_cifar_batch_contents(tmp_path, capsys, name, change, needle):
    src = official_like(tmp_path)
    with open(src / "data_batch_1", "rb") as f:
        dic = pickle.load(f, encoding="bytes")
    drop = change.pop("drop", None)
    dic.update(change)
    if drop:
        del dic[drop]
    with open(src / "data_batch_1", "wb") as f:
        pickle.dump(dic, f, protocol=2)
    refused(call(data_main, ["cifar10", "--source", src, "--out", tmp_path / "out"], capsys),
            "data_batch_1: ", needle)


@pytest.mark.parametrize("names,needle", [(5, "'label_names' is int 5"),
                                          ([b"a", b"b"], "'label_names' is list [b'a', b'b']"),
                                          ([1] * 10, "expected a list of 10 class names")])
def test_cifar_label_names(tmp_path, capsys, names, needle):
    src = official_like(tmp_path)
    with open(src / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names}, f, protocol=2)
    refused(call(data_main, ["cifar10", "--source", src, "--out", tmp_path / "out"], capsys),
            "batches.meta: ", needle)


def test_cifar_files_that_are_bombs_zips_or_special(tmp_path, capsys):
    """Each as data_batch_1 of a folder source: refused before its size is allocated."""
    good = pickle.dumps({b"data": np.zeros((12, 3072), np.uint8), b"labels": [0] * 12}, protocol=2)
    cases = [
        ("bytearray", lambda p: p.write_bytes(bytearray_bomb()), "bytearray() from something other"),
        ("ndarray", lambda p: p.write_bytes(ndarray_bomb()), "an array of 1099511627776 bytes"),
        ("sparse 2.5 GB", lambda p: sparse_file(p, 2_500_000_000), "is 2500000000 bytes (2.3 GiB), more than"),
        ("gzip bomb", lambda p: gzip_bomb(p, 0.5), "decompresses to more than"),
        ("zip method 99", lambda p: p.write_bytes(zip_payload(good, method=99)), "unknown compression method 99"),
        ("zip encrypted", lambda p: p.write_bytes(zip_payload(good, encrypted=True)), "zip member 'data' is encrypted"),
        ("zip without data", lambda p: p.write_bytes(zip_payload(good)[:0] or _zip_named(good, "x")),
         "zip archive without the member 'data'"),
        ("FIFO", make_fifo, "is a FIFO (named pipe), not a regular file"),
        ("/dev/zero", lambda p: p.symlink_to("/dev/zero"), "is a character device, not a regular file"),
    ]
    for name, make, needle in cases:
        src = official_like(tmp_path / name.replace("/", "_"))
        (src / "data_batch_1").unlink()
        make(src / "data_batch_1")
        with no_hang():
            outcome = call(data_main, ["cifar10", "--source", src, "--out", src.parent / "out"], capsys)
        refused(outcome, "data_batch_1", needle)
    # the good payload zipped the original's way converts
    src = official_like(tmp_path / "zipped")
    (src / "data_batch_1").write_bytes(zip_payload(good))
    assert call(data_main, ["cifar10", "--source", src, "--out", tmp_path / "zipped-out"], capsys)[0] == 0


def _zip_named(payload: bytes, name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, payload)
    return buf.getvalue()


@pytest.mark.parametrize("args,needle", [
    (["--size=20000"], "--size: must lie in 1..4096"), (["--size=0"], "--size: must lie in 1..4096"),
    (["--seed=-1"], "--seed: must lie in 0.."), (["--size=abc"], "--size: expected an integer")])
def test_imagenet_size_and_seed_ranges(tmp_path, capsys, args, needle):
    refused(call(data_main, ["imagenet", "--source", tmp_path, "--out", tmp_path / "o", *args], capsys),
            needle)


def test_cifar_reconversion_replaces_the_folder(tmp_path, capsys, monkeypatch):
    """A second conversion into a used folder leaves exactly its own batches; leftovers of an
    interrupted one are removed (with a warning); --out in --source, or a folder holding other
    files, is refused."""
    big = official_like(tmp_path / "big", sizes=(12, 12, 12))
    small = write_official_cifar(tmp_path / "small" / "x", random_cifar_batches(np.random.default_rng(1), [6, 6]))
    out = tmp_path / "out"
    assert call(data_main, ["cifar10", "--source", big, "--out", out], capsys)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["batches.meta"] + [f"data_batch_{i}" for i in range(1, 5)]
    (out / ".data_batch_1.abc123.tmp").write_bytes(b"half")       # what a killed write leaves
    (tmp_path / ".out.partial-zzz").mkdir()                        # what a killed conversion leaves
    rc, err, warns = call(data_main, ["cifar10", "--source", small, "--out", out, "--split"], capsys)
    assert rc == 0 and not err, err
    assert len(warns) == 1 and ".out.partial-zzz, left by an interrupted conversion" in warns[0]
    assert sorted(p.name for p in out.iterdir()) == ["batches.meta", "data_batch_1", "data_batch_2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big", "out", "small"]  # no leftover
    refused(call(data_main, ["cifar10", "--source", big, "--out", big], capsys), "is inside --source")
    refused(call(data_main, ["cifar10", "--source", big.parent, "--out", big / "sub"], capsys),
            "is inside --source")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    refused(call(data_main, ["cifar10", "--source", small, "--out", "."], capsys),
            "is the current folder, which the conversion would replace")
    before = {p.name: p.read_bytes() for p in big.iterdir()}
    refused(call(data_main, ["cifar10", "--source", small, "--out", big.parent], capsys),
            "--out holds 'cifar-10-batches-py', which is not a batch file")
    assert {p.name: p.read_bytes() for p in big.iterdir()} == before   # the source is untouched


KILL_SCRIPT = """
import os, signal, sys
from port.data import convert
from port import util
real, n = util.pickle, [0]
def pickle_then_die(path, obj):
    real(path, obj)
    n[0] += 1
    if n[0] == 2:
        os.kill(os.getpid(), signal.SIGKILL)
convert.pickle = pickle_then_die
convert.convert_cifar10(sys.argv[1], sys.argv[2])
"""


def test_cifar_conversion_killed_midway_leaves_the_old_folder(tmp_path, capsys):
    """SIGKILL after the second batch of a reconversion: the old batches and meta stand as they
    were (no mix under the old meta); the next conversion removes the leftover, saying so."""
    old = official_like(tmp_path / "old", sizes=(12, 12, 12))
    new = official_like(tmp_path / "new", seed=SEED + 1, sizes=(5, 5, 5))
    out = tmp_path / "out"
    assert call(data_main, ["cifar10", "--source", old, "--out", out], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(new), str(out)], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    (left,) = [p for p in tmp_path.iterdir() if p.name.startswith(".out.partial-")]
    assert sorted(p.name for p in left.iterdir()) == ["data_batch_1", "data_batch_2"]
    rc, err, warns = call(data_main, ["cifar10", "--source", new, "--out", out], capsys)
    assert rc == 0 and not err and len(warns) == 1 and left.name in warns[0]
    assert not left.exists()
    assert len(list(out.iterdir())) == 5


# ---- batches read by port.convnet --------------------------------------------------------------

def cifar_batches(root: Path, n: int = 16) -> Path:
    """Two converted-layout CIFAR batches of ``n`` cases (data (3072, N) uint8) and the meta."""
    from tests.port.test_convnet import write_cifar_like

    return write_cifar_like(root, num_batches=2, n=n)


def _rewrite(path: Path, change) -> None:
    with open(path, "rb") as f:
        dic = pickle.load(f)
    change(dic)
    with open(path, "wb") as f:
        pickle.dump(dic, f)


def _read_first_batch(data: Path, dp_type: str, **dp_params):
    def fn():
        dp = get_instance(data, [1], type=dp_type, dp_params={"crop_border": 4, "prefetch": False, **dp_params},
                          test=False)
        try:
            epoch, batchnum, out = dp.get_next_batch()
            assert (epoch, batchnum) == (1, 1) and out[0].dtype == np.float32
        finally:
            dp.close()
    return fn


CIFAR_READ_CASES = [  # (name, file, change, needle)
    ("label 999", "data_batch_1", lambda d: d.update(labels=[999] * 16), "labels must be integers in [0, 10)"),
    ("label -5", "data_batch_1", lambda d: d.update(labels=[-5] + [0] * 15), "found -5..0"),
    ("labels str", "data_batch_1", lambda d: d.update(labels=["abc"] * 16), "'labels' are not numbers"),
    ("labels NaN", "data_batch_1", lambda d: d.update(labels=[float("nan")] * 16), "labels must be integers"),
    ("labels an int", "data_batch_1", lambda d: d.update(labels=5), "1 labels for 16 cases"),
    ("data str", "data_batch_1", lambda d: d.update(data="abc"), "'data' holds <U3 values"),
    ("data objects", "data_batch_1", lambda d: d.update(data=np.full((3072, 16), None)),
     "'data' holds object values"),
    ("data rows", "data_batch_1", lambda d: d.update(data=np.zeros((100, 16), np.uint8)),
     "'data' has shape (100, 16); expected (3072, N)"),
    ("not a dict", "data_batch_1", lambda d: (d.clear(), d.update(x=1)), "data"),
    ("label_names=5", "batches.meta", lambda d: d.update(label_names=5), "'label_names' is 5"),
    ("label_names=[]", "batches.meta", lambda d: d.update(label_names=[]), "'label_names' is []"),
    ("data_mean str", "batches.meta", lambda d: d.update(data_mean="x"), "data_mean"),
]


@pytest.mark.parametrize("dp_type", ["cifar", "cifar-cropped"])
def test_cifar_batches_read_by_the_driver(tmp_path, capsys, dp_type):
    data = cifar_batches(tmp_path / "clean")
    assert run_guarded(_read_first_batch(data, dp_type), capsys)[0] == 0
    for name, file, change, needle in CIFAR_READ_CASES:
        d = cifar_batches(tmp_path / name)
        _rewrite(d / file, change)
        outcome = run_guarded(_read_first_batch(d, dp_type), capsys)
        try:
            refused(outcome, f"{file}", needle)
        except AssertionError as e:
            raise AssertionError(f"{dp_type} {name}: {e}") from None


def test_cifar_batch_files_that_are_bombs_or_special(tmp_path, capsys, monkeypatch):
    cases = [("bytearray", "data_batch_1", lambda p: p.write_bytes(bytearray_bomb()), "bytearray()"),
             ("gzip bomb", "data_batch_1", lambda p: gzip_bomb(p, 0.25), "decompresses to more than"),
             ("FIFO batch", "data_batch_1", make_fifo, "is a FIFO (named pipe)"),
             ("FIFO meta", "batches.meta", make_fifo, "is a FIFO (named pipe)"),
             ("/dev/zero meta", "batches.meta", lambda p: p.symlink_to("/dev/zero"), "is a character device")]
    from port import util
    monkeypatch.setattr(util, "MAX_PICKLE_FILE_BYTES", 64 << 20)  # the bomb stops at 64 MiB, fast
    for name, file, make, needle in cases:
        d = cifar_batches(tmp_path / name.replace("/", "_"))
        (d / file).unlink()
        make(d / file)
        with no_hang():
            refused(run_guarded(_read_first_batch(d, "cifar"), capsys), file, needle)
    # a batch bigger than the memory left (the 150,000 cases): refused before float32
    from port.data import provider
    d = cifar_batches(tmp_path / "big", n=64)
    monkeypatch.setattr(provider, "memory_ceiling", lambda: 1 << 20)
    refused(run_guarded(_read_first_batch(d, "cifar"), capsys),
            "batch 1 has 64 cases, which need 1575424 bytes", "more than the 1048576 bytes (1.0 MiB) left")


S = 32  # the JPEG tests' image side (the 2012 batches: 256)


def jpeg_bytes(w: int = S, h: int = S, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def jpeg_claiming(w: int, h: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims w×h pixels."""
    raw = bytearray(jpeg_bytes(8, 8))
    sof = raw.index(b"\xff\xc0")
    raw[sof + 5:sof + 7] = h.to_bytes(2, "big")
    raw[sof + 7:sof + 9] = w.to_bytes(2, "big")
    return bytes(raw)


def jpeg_batches(root: Path, strings=None, labels=None, size: int = S, meta_change=None) -> Path:
    """A JPEG batch folder as ``python -m port.data imagenet`` writes it: 3 classes."""
    root.mkdir(parents=True)
    n = 6
    strings = [jpeg_bytes(size, size, i) for i in range(n)] if strings is None else strings
    labels = [("abc"[i % 3], i % 3) for i in range(len(strings))] if labels is None else labels
    with open(root / "data_batch_1", "wb") as f:
        pickle.dump((strings, [(size, size)] * len(strings if isinstance(strings, list) else []), labels), f)
    meta = {"data_mean": np.full((3 * size * size, 1), 128, np.float32),
            "color_pca": (np.ones(3, np.float32), np.eye(3, dtype=np.float32)),
            "label_names": ["a", "b", "c"], "num_vis": 3 * size * size, "batch_size": n,
            "dp_type": "inet-lr-cropped-jpeg"}
    (meta_change or (lambda m: None))(meta)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump(meta, f)
    return root


def test_jpeg_batches_read_by_the_driver(tmp_path, capsys):
    ok = jpeg_batches(tmp_path / "ok")
    assert run_guarded(_read_first_batch(ok, "inet-lr-cropped-jpeg"), capsys)[0] == 0
    good = [jpeg_bytes(S, S, i) for i in range(6)]
    cases = [  # (name, jpeg_batches keyword arguments, needle)
        ("string an int", dict(strings=[5] + good[1:]), "JPEG string 0 is int; expected bytes"),
        ("string a str", dict(strings=good[:5] + ["abc"]), "JPEG string 5 is str; expected bytes"),
        ("30000x30000 header", dict(strings=good[:2] + [jpeg_claiming(30000, 30000)] + good[3:]),
         "image 2 is 30000×30000; larger than"),
        ("64x64 image", dict(strings=good[:3] + [jpeg_bytes(64, 64)] + good[4:]), "image 3 is 64×64; larger than 32×32"),
        ("label 999", dict(labels=[("a", 999)] + [("a", 0)] * 5), "labels must be integers in [0, 3); found 0..999"),
        ("label -5", dict(labels=[("a", 0)] * 5 + [("a", -5)]), "found -5..0"),
        ("label str", dict(labels=[("a", "x")] * 6), "label 0 is 'x'; expected an integer class id"),
        ("label 1-tuple", dict(labels=[("a",)] * 6), "label 0 is ('a',); expected (name, class id)"),
        ("not a triple", dict(strings=5, labels=[]), "expected a pickled (jpeg_strings, orig_sizes, labels)"),
        ("num_vis str", dict(meta_change=lambda m: m.update(num_vis="abc")), "'num_vis' is 'abc'"),
        ("num_vis huge", dict(meta_change=lambda m: m.update(num_vis=3 * 10 ** 9)), "'num_vis' is 3000000000"),
        ("label_names=5", dict(meta_change=lambda m: m.update(label_names=5)), "'label_names' is 5"),
        ("label_offset str", dict(meta_change=lambda m: m.update(label_offset="1")), "'label_offset' is '1'"),
    ]
    for name, kw, needle in cases:
        d = jpeg_batches(tmp_path / name, **kw)
        outcome = run_guarded(_read_first_batch(d, "inet-lr-cropped-jpeg"), capsys)
        try:
            refused(outcome, needle)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None
    # an undecodable string is skipped with a warning, as the original skipped IOError images
    d = jpeg_batches(tmp_path / "junk", strings=good[:5] + [b"not a jpeg"])
    rc, err, warns = run_guarded(_read_first_batch(d, "inet-lr-cropped-jpeg"), capsys)
    assert rc == 0 and not err and len(warns) == 1 and "skipped 1 images" in warns[0]


def test_jpeg_batch_of_150000_cases_is_refused_before_decoding(tmp_path, capsys):
    """150,000 (empty) strings in a 2 MB file: 256×256 images would need 240 GB."""
    d = jpeg_batches(tmp_path / "many", strings=[b""] * 150_000, labels=[("a", 0)] * 150_000, size=256)
    assert (d / "data_batch_1").stat().st_size < 4 << 20
    refused(run_guarded(_read_first_batch(d, "inet-lr-cropped-jpeg", crop_border=16), capsys),
            "batch 1 has 150000 cases, which need", "more than the")


# ---- port.shownet -f ---------------------------------------------------------------------------

def shownet_checkpoint(path: Path, change=None) -> Path:
    """A saved net of shownet's tests (conv1 filters, an fc layer, costs), changed by ``change``."""
    from tests.port.test_shownet import _checkpoint_dict

    dic = _checkpoint_dict(np.random.default_rng(SEED), n_train=40, test_freq=4, batches=4)
    if change is not None:
        change(dic)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save(path, dic)
    return path


def _ms(key, value):
    return lambda d: d["model_state"].__setitem__(key, value)


def _layer(name, key, value):
    return lambda d: d["model_state"]["layers"][name].__setitem__(key, value)


def _op(key, value):
    return lambda d: d["op"].__setitem__(key, {"value": value, "value_given": True})


SHOWNET_CASES = [  # (name, change, view, needle or None for a correct run)
    ("model_state an int", lambda d: d.__setitem__("model_state", 5), "cost", "no 'model_state' dict"),
    ("layers an int", _ms("layers", 5), "cost", "model_state['layers'] is not a dict of layer dicts"),
    ("layers a list of ints", _ms("layers", [5]), "cost", "is a list that does not hold layer dicts"),
    ("layers empty", _ms("layers", {}), "cost", "missing or empty"),
    ("a layer a str", lambda d: d["model_state"]["layers"].__setitem__("conv1", "x"), "filters",
     "is not a dict of layer dicts"),
    ("layer misnamed", _layer("conv1", "name", "other"), "filters", "is not a layer dict with its name and type"),
    ("layer type int", _layer("conv1", "type", 5), "filters", "is not a layer dict with its name and type"),
    ("filters str", _layer("conv1", "filters", "abc"), "filters", "layer 'conv1' is not a well-formed"),
    ("weights empty", _layer("conv1", "weights", []), "filters", "has no weights[0]"),
    ("weights strs", _layer("conv1", "weights", ["abc"]), "filters", "layer 'conv1' is not a well-formed"),
    ("filterChannels int", _layer("conv1", "filterChannels", 5), "filters", "layer 'conv1' is not a well-formed"),
    ("filterChannels 7", _layer("conv1", "filterChannels", [7]), "filters", "layer 'conv1' is not a well-formed"),
    ("train_outputs int", _ms("train_outputs", 5), "cost", "model_state['train_outputs'] is not a list"),
    ("train_outputs of strs", _ms("train_outputs", ["x"]), "cost", "model_state['train_outputs'][0] is not a"),
    ("cost values strs", _ms("train_outputs", [({"logprob": ["a", "b"]}, 1)]), "cost", "are not numbers"),
    ("test_outputs of ints", _ms("test_outputs", [5]), "cost", "model_state['test_outputs'][0] is not a"),
    ("epoch str", _ms("epoch", "x"), "cost", "model_state['epoch'] is not an integer >= 0"),
    ("op an int", lambda d: d.__setitem__("op", 5), "cost", "'op' is not a dict"),
    ("op entry an int", lambda d: d["op"].__setitem__("testing_freq", 5), "cost", "'op' is not a dict"),
    ("testing_freq str", _op("testing_freq", "abc"), "cost", "op['testing_freq'] is 'abc'"),
    ("testing_freq 0", _op("testing_freq", 0), "cost", "op['testing_freq'] is 0"),
    ("testing_freq 10**12", _op("testing_freq", 10 ** 12), "cost", None),   # the 14.6 TiB
    ("train_batch_range int", _op("train_batch_range", 5), "cost", "op['train_batch_range'] is 5"),
    ("train_batch_range strs", _op("train_batch_range", ["a"]), "cost", "op['train_batch_range'] is ['a']"),
]


@pytest.mark.parametrize("name,change,view,needle", SHOWNET_CASES, ids=[c[0] for c in SHOWNET_CASES])
def test_shownet_checkpoint_trees(tmp_path, capsys, name, change, view, needle):
    from port.shownet import main as shownet_main

    path = shownet_checkpoint(tmp_path / "save" / "11.1", change)
    args = ["--show-cost=logprob"] if view == "cost" else ["--show-filters=conv1"]
    outcome = call(shownet_main, ["-f", path.parent, *args, "--out", tmp_path / "png"], capsys)
    if needle is None:
        assert outcome[0] == 0 and not outcome[1], outcome
        assert (tmp_path / "png" / "cost-logprob-0.png").is_file()
    else:
        refused(outcome, needle)


def test_special_files_where_a_checkpoint_is_expected(tmp_path, capsys):
    """shownet -f, convnet -f (a file, or a save folder whose newest checkpoint is special) and
    --initw-source: refused before open(), which would block on a FIFO."""
    from port.convnet import main as convnet_main
    from port.layer import parse_layers
    from port.shownet import main as shownet_main

    fifo = make_fifo(tmp_path / "fifo")
    folder = tmp_path / "save"
    shownet_checkpoint(folder / "1.1")
    make_fifo(folder / "2.1")                       # the newest name
    zero = tmp_path / "zero"
    zero.symlink_to("/dev/zero")
    with no_hang():
        for target, needle in ((fifo, "fifo: checkpoint is a FIFO (named pipe)"),
                               (folder, "2.1: checkpoint is a FIFO (named pipe)"),
                               (zero, "zero: checkpoint is a character device")):
            refused(call(shownet_main, ["-f", target, "--show-cost=logprob"], capsys), needle)
            refused(call(convnet_main, ["-f", target], capsys), needle)
        d = tmp_path / "layers.cfg"
        d.write_text(TINY_DEF.replace("initW=0.01\nneuron=ident", "initW=0.01\nneuron=ident\n"
                                      "initWFunc=initw.makew(fc10)"))
        refused(run_guarded(lambda: parse_layers(d, None, {"data_dims": {0: 3 * 24 * 24, 1: 1},
                                                           "initw_source": str(fifo)}), capsys),
                "[fc10] initWFunc", "checkpoint is a FIFO (named pipe)")


# ---- port.compat: special params files, code named by a cfg -------------------------------------

def compat_release(root: Path, params_maker=None, def_text: str = TINY_DEF) -> Path:
    """A release folder with one def file (example-layers/layers-x.cfg) and its params file."""
    ex = root / "example-layers"
    ex.mkdir(parents=True)
    (ex / "layers-x.cfg").write_text(def_text)
    params = ex / "layer-params-x.cfg"
    if params_maker is None:
        params.write_text(tiny_params())
    else:
        params_maker(params)
    return root


def compat_rows(tmp_path, release: Path, capsys, *extra) -> list[dict]:
    import json

    from port.compat import main as compat_main

    out = tmp_path / f"compat-{release.name}.json"
    with no_hang():
        rc, err, _ = call(compat_main, [release, "--out", out, *extra], capsys)
    assert rc == 0 and not err, err
    return json.loads(out.read_text())["rows"]


def test_compat_params_files_that_are_special(tmp_path, capsys):
    (row,) = compat_rows(tmp_path, compat_release(tmp_path / "ok"), capsys)
    assert row["ran"], row
    for name, make, needle in (("fifo", make_fifo, "is a FIFO (named pipe), not a regular file"),
                               ("zero", lambda p: p.symlink_to("/dev/zero"), "is a character device"),
                               ("sparse", lambda p: sparse_file(p, 1_500_000_000), "a cfg file is text of at most")):
        (row,) = compat_rows(tmp_path, compat_release(tmp_path / name, make), capsys)
        assert not row["parsed"] and needle in row["reason"], row


PWN = """
from pathlib import Path
Path(__file__).with_name("ran").write_text("the cfg's module ran")
import numpy as np
def makew(name, idx, shape, params=None):
    return np.zeros(shape, dtype=np.float32)
"""


def test_code_named_by_a_cfg_runs_only_with_trust_code(tmp_path, capsys):
    """``initWFunc=pwn.makew(x)`` beside a def file: compat refuses to import pwn.py unless given
    --trust-code, and says what it refused."""
    evil = TINY_DEF.replace("initW=0.01\nneuron=ident", "initW=0.01\nneuron=ident\ninitWFunc=pwn.makew(x)")
    release = compat_release(tmp_path / "rel", def_text=evil)
    (release / "example-layers" / "pwn.py").write_text(PWN)
    (row,) = compat_rows(tmp_path, release, capsys)
    assert not (release / "example-layers" / "ran").exists()
    assert not row["parsed"] and "refused to import the Python module 'pwn'" in row["reason"], row
    assert "--trust-code" in row["reason"]
    (row,) = compat_rows(tmp_path, release, capsys, "--trust-code")
    assert (release / "example-layers" / "ran").exists() and row["ran"], row


# ---- resuming, and the first save ---------------------------------------------------------------

def test_resume_from_an_older_checkpoint_keeps_the_newer_ones(tmp_path):
    """``-f DIR/1.1`` while DIR holds 1.2 and 1.3 (--max-filesize=0 deletes all but the newest):
    the run saves into a new folder beside DIR, saying so; DIR's files stay byte for byte."""
    from tests.port.cfgnets import write_cfgs
    from tests.port.test_convnet import run_cli, save_dirs, train_args

    from tests.port.test_convnet import write_cifar_like

    data = write_cifar_like(tmp_path / "data", num_batches=4, n=8)
    layer_def, params = write_cfgs(tmp_path)
    save = tmp_path / "save"
    r = run_cli(train_args(data, save, layer_def, params, epochs=1, **{"test-freq": 1, "max-filesize": 1000}))
    assert r.returncode == 0, r.stderr[-2000:]
    (d,) = save_dirs(save)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    assert sorted(before) == ["1.1", "1.2", "1.3"]
    r = run_cli(["-f", str(d / "1.1"), "--epochs=2", "--max-filesize=0"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    (branch,) = [p for p in save_dirs(save) if p != d]
    assert branch.name.startswith(f"{d.name}_from_1.1_") and f"saving into {branch}" in r.stdout
    assert [p.name for p in checkpoint.list_checkpoints(branch)] == ["2.3"]   # --max-filesize=0: the newest
    r = run_cli(["-f", str(branch), "--epochs=3"])                          # the newest: same folder
    assert r.returncode == 0 and "saving into" not in r.stdout, r.stderr[-2000:]
    assert checkpoint.list_checkpoints(branch)[-1].name == "3.3"


FIRST_SAVE_KILL = """
import os, signal, sys
from port import checkpoint, gpumodel, util
m = object.__new__(gpumodel.IGPUModel)
m.model_state = {"layers": {}, "epoch": 1, "batchnum": 1}
m.op = type("Op", (), {"to_state": lambda self: {}})()
m.save_path, m.save_file = sys.argv[1], "ConvNet__killed"
m.epoch, m.batchnum, m.zip_save, m.max_filesize_mb = 1, 1, 0, 0
real = util.atomic_write_bytes
def die_while_writing(path, write):
    def w(f):
        f.write(b"half a checkpoint")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real(path, w)
checkpoint.atomic_write_bytes = die_while_writing
m.save_state()
"""


def test_a_kill_during_the_first_save_leaves_no_save_folder(tmp_path, capsys):
    from port import gpumodel

    save = tmp_path / "save"
    r = subprocess.run([sys.executable, "-c", FIRST_SAVE_KILL, str(save)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    (left,) = list(save.iterdir())
    assert left.name.startswith(".ConvNet__killed.") and left.name.endswith(".tmp")   # hidden, no save folder
    # the next run's first save in that place writes its folder whole and reports the leftover
    m = object.__new__(gpumodel.IGPUModel)
    m.model_state = {"layers": {}, "epoch": 1, "batchnum": 1}
    m.op = type("Op", (), {"to_state": lambda self: {}})()
    m.save_path, m.save_file = str(save), "ConvNet__next"
    m.epoch, m.batchnum, m.zip_save, m.max_filesize_mb = 1, 1, 0, 0
    rc, err, warns = run_guarded(m.save_state, capsys)
    assert rc == 0 and not err and len(warns) == 1 and left.name in warns[0] and "can be deleted" in warns[0]
    assert [p.name for p in checkpoint.list_checkpoints(save / "ConvNet__next")] == ["1.1"]
    assert sorted(p.name for p in save.iterdir()) == [left.name, "ConvNet__next"]


# ---- the bombs as real command lines, under RLIMIT_AS = 1 GiB ------------------------------------

JPEG_BOMB_READ = """
import sys
from port.data import get_instance
from port.errors import main_guard

@main_guard("read")
def main():
    dp = get_instance(sys.argv[1], [1], type="inet-lr-cropped-jpeg",
                      dp_params={"crop_border": 4, "prefetch": False})
    dp.get_next_batch()
    return 0

sys.exit(main())
"""


def test_bombs_under_1_gib(tmp_path):
    """Representative bombs, each through its real command line in a child whose address space
    is capped at 1 GiB: one line and exit 2 (a MemoryError traceback would fail), or a correct run."""
    def folder_with(name: str, make) -> Path:
        src = official_like(tmp_path / name)
        (src / "data_batch_1").unlink()
        make(src / "data_batch_1")
        return src

    cifar = ["-m", "port.data", "cifar10", "--out", str(tmp_path / "out"), "--source"]
    cases = [
        ("bytearray(1.5e9) pickle", cifar + [str(folder_with("ba", lambda p: p.write_bytes(bytearray_bomb())))],
         "bytearray() from something other"),
        ("ndarray of 1 TiB pickle", cifar + [str(folder_with("nd", lambda p: p.write_bytes(ndarray_bomb())))],
         "an array of 1099511627776 bytes"),
        ("2.5 GB sparse batch", cifar + [str(folder_with("sp", lambda p: sparse_file(p, 2_500_000_000)))],
         "more than the"),
        ("3 GiB gzip bomb batch", cifar + [str(folder_with("gz", lambda p: gzip_bomb(p, 3)))],
         "decompresses to more than"),
        ("0.3 GiB gzip bomb tarball", cifar + [str(gzip_bomb(tmp_path / "bomb.tar.gz", 0.3))],
         "decompresses to more than 268435456 bytes"),
        ("3 GiB sparse tar member", cifar + [str(sparse_member_tgz(
            tmp_path / "sparse.tar.gz", "cifar-10-batches-py/data_batch_1", 3 * GIB))], "3.0 GiB), more than"),
        ("30000x30000 JPEG header", ["-c", JPEG_BOMB_READ, str(jpeg_batches(
            tmp_path / "jpeg", strings=[jpeg_bytes(), jpeg_claiming(30000, 30000)], labels=[("a", 0)] * 2))],
         "image 1 is 30000×30000; larger than"),
    ]
    bad = []
    for name, args, needle in cases:
        r = cli_1gib(args, tmp_path)
        try:
            refused_cli(r, needle)
        except AssertionError as e:
            bad.append(f"{name}: {e}")
    # a correct run: shownet on a checkpoint whose testing_freq is 10**12 (np.repeat: 14.6 TiB)
    ck = shownet_checkpoint(tmp_path / "save" / "11.1", _op("testing_freq", 10 ** 12))
    r = cli_1gib(["-m", "port.shownet", "-f", str(ck), "--show-cost=logprob", "--out", str(tmp_path / "png")],
                 tmp_path)
    if r.returncode != 0 or not (tmp_path / "png" / "cost-logprob-0.png").is_file():
        bad.append(f"shownet testing_freq=10**12: rc={r.returncode} {r.stderr[-1000:]}")
    assert not bad, "\n".join(bad)


def test_legacy_checkpoint_bombs_with_trust_pickle(tmp_path, capsys):
    """--trust-pickle reads a Python 2 pickle through the restricted unpickler: its sizes are
    bounded too (a range of 10**12, a bytearray(1.5e9), a 2.5 GB sparse file, a zip bomb)."""
    from port.shownet import main as shownet_main

    cases = [("range", b"\x80\x02c__builtin__\nlist\nc__builtin__\nxrange\n\x8a\x06\x00\x10\xa5\xd4\xe8\x00"
                       b"\x85R\x85R.", "range of 1000000000000 values"),
             ("bytearray", bytearray_bomb(), "bytearray() from something other"),
             ("sparse", None, "more than the"),
             ("zip bomb", "zip", "would inflate to")]
    for name, payload, needle in cases:
        path = tmp_path / name / "1.1"
        path.parent.mkdir()
        if payload is None:
            sparse_file(path, 2_500_000_000)
        elif payload == "zip":
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("data", b"\0" * (1 << 20))
            raw = bytearray(path.read_bytes())  # then claim 3 GiB in the central directory
            entry = raw.rindex(b"PK\x01\x02")
            raw[entry + 24:entry + 28] = (3 * GIB).to_bytes(4, "little")
            path.write_bytes(bytes(raw))
        else:
            path.write_bytes(payload)
        refused(call(shownet_main, ["-f", path, "--show-cost=x", "--trust-pickle"], capsys), needle)


# ---- seeded mutations -----------------------------------------------------------------------

N_PICKLE = 60
N_TREE = 40


def mutate_bytes(b: bytes, rng: random.Random) -> bytes:
    """A truncation, a few overwritten bytes, or those and an insertion."""
    b = bytearray(b)
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(b[:rng.randrange(len(b))])
    for _ in range(rng.randint(1, 4)):
        b[rng.randrange(len(b))] = rng.randrange(256)
    if kind == 3:
        i = rng.randrange(len(b))
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(b)


def test_fuzz_batch_pickle_mutations(tmp_path, capsys):
    """Mutated batch and meta pickles through the converter and both CIFAR providers; among them
    the two shapes the first runs of this fuzzer found: a refused global whose name holds a
    newline (it split the message in two) and an unknown encoding for ``_codecs.encode``."""
    rng = random.Random(SEED)
    src = write_official_cifar(tmp_path / "src", random_cifar_batches(np.random.default_rng(0), [6, 6]))
    good_batch, good_meta = (src / "data_batch_1").read_bytes(), (src / "batches.meta").read_bytes()
    conv = cifar_batches(tmp_path / "conv", n=8)
    conv_batch, conv_meta = (conv / "data_batch_1").read_bytes(), (conv / "batches.meta").read_bytes()
    found = [b"\x80\x04X\x02\x00\x00\x00osX\x07\x00\x00\x00sys\ntem\x93.",          # os.'sys\ntem'
             b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x06\x00\x00\x00latik1\x86R."]  # encode('a', 'latik1')
    bad, outcomes = [], {0: 0, 2: 0}
    for i in range(N_PICKLE + len(found)):
        s, d = tmp_path / f"s{i}", tmp_path / f"d{i}"
        s.mkdir()
        d.mkdir()
        if i < len(found):
            batch, meta, cbatch, cmeta = found[i], good_meta, found[i], conv_meta
        else:
            mutate_meta = i % 3 == 0
            batch = good_batch if mutate_meta else mutate_bytes(good_batch, rng)
            meta = mutate_bytes(good_meta, rng) if mutate_meta else good_meta
            cbatch = conv_batch if mutate_meta else mutate_bytes(conv_batch, rng)
            cmeta = mutate_bytes(conv_meta, rng) if mutate_meta else conv_meta
        for folder, b, m, other in ((s, batch, meta, good_batch), (d, cbatch, cmeta, conv_batch)):
            (folder / "data_batch_1").write_bytes(b)
            (folder / "data_batch_2").write_bytes(other)
            (folder / "batches.meta").write_bytes(m)
        runs = [("convert", call(data_main, ["cifar10", "--source", s, "--out", tmp_path / f"o{i}"], capsys))]
        runs += [(t, run_guarded(_read_first_batch(d, t), capsys)) for t in ("cifar", "cifar-cropped")]
        for what, (rc, err, _) in runs:
            if not (rc == 0 or (rc == 2 and len(err) == 1)):
                bad.append(f"case {i} {what}: rc={rc} {err[:3]}")
            outcomes[rc] = outcomes.get(rc, 0) + 1
    assert not bad, "\n".join(bad)
    assert outcomes[2] >= N_PICKLE, outcomes   # most mutations are refused, some still load


TREE_VALUES = [None, 0, -1, 10 ** 12, 1.5, float("nan"), "x", "a\nb", [], {}, [1], {"a": 1}, (1, 2),
               np.zeros(3), np.zeros((2, 2), np.float32), True, [[1]], ["a", "b"]]


def _tree_paths(o, at=()):
    yield at
    if isinstance(o, dict):
        for k, v in o.items():
            yield from _tree_paths(v, at + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o[:3]):
            yield from _tree_paths(v, at + (i,))


def test_fuzz_shownet_tree_mutations(tmp_path, capsys):
    """Random places of a saved net set to random values (the first runs found an array where a
    layer's name was, which the resume validator itself choked on, and a filterChannels of 0)."""
    import copy

    from port.shownet import main as shownet_main
    from tests.port.test_shownet import _checkpoint_dict

    rng = random.Random(SEED)
    base = _checkpoint_dict(np.random.default_rng(0), n_train=20, test_freq=4, batches=4)
    first = copy.deepcopy(base)                      # the two found, then random ones
    first["model_state"]["layers"]["conv1"]["name"] = np.zeros(3)
    second = copy.deepcopy(base)
    second["model_state"]["layers"]["conv1"]["filterChannels"] = [0]
    bad, outcomes = [], {0: 0, 2: 0}
    for i in range(N_TREE + 2):
        dic = [first, second][i] if i < 2 else copy.deepcopy(base)
        for _ in range(rng.randint(1, 2) if i >= 2 else 0):
            at = rng.choice(list(_tree_paths(dic))[1:])
            parent = dic
            for k in at[:-1]:
                parent = parent[k]
            if not isinstance(parent, tuple):
                parent[at[-1]] = copy.deepcopy(rng.choice(TREE_VALUES))
        path = tmp_path / f"c{i}" / "1.1"
        path.parent.mkdir()
        checkpoint.save(path, dic)
        for view in (["--show-cost=logprob"], ["--show-filters=conv1"]):
            rc, err, _ = call(shownet_main, ["-f", path, *view, "--out", tmp_path / "png"], capsys)
            if not (rc == 0 or (rc == 2 and len(err) == 1)):
                bad.append(f"case {i} {view}: rc={rc} {err[:3]}")
            outcomes[rc] = outcomes.get(rc, 0) + 1
    assert not bad, "\n".join(bad)
    assert outcomes[0] >= 5 and outcomes[2] >= N_TREE // 2, outcomes
