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
import textwrap
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
    monkeypatch.setattr(convert, "MAX_CIFAR_TAR_BYTES", 8 << 20)  # the 1 GiB case: test_bombs_under_1_gib
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


def test_cifar_reconversion_replaces_the_folder(tmp_path, capsys):
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big", "out", "small"]
    refused(call(data_main, ["cifar10", "--source", big, "--out", big], capsys), "is inside --source")
    refused(call(data_main, ["cifar10", "--source", big.parent, "--out", big / "sub"], capsys),
            "is inside --source")
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
        ("string an int", dict(strings=[5] + good[1:]), "JPEG string 0 is a int, not bytes"),
        ("string a str", dict(strings=good[:5] + ["abc"]), "JPEG string 5 is a str, not bytes"),
        ("30000x30000 header", dict(strings=good[:2] + [jpeg_claiming(30000, 30000)] + good[3:]),
         "image 2 is too large to decode"),
        ("64x64 image", dict(strings=good[:3] + [jpeg_bytes(64, 64)] + good[4:]), "image 3 is 64×64; expected 32×32"),
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
