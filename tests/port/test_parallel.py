"""Data-parallel training (port/parallel.py) against one process.

Two ranks (``mpiexec -n 2``) train 20 steps of a small net with dropout from the same seed on the
same global minibatches as one process; their weights, increments, random state and costs end
within float32 round-off of the one process's. The summation order is the only difference: each
weight gradient is summed over a rank's cases and then over the ranks (MPI's allreduce), instead
of over all the minibatch's cases at once; dropout masks are drawn for the whole global minibatch
on every rank. Also: three ranks, where a short minibatch leaves a rank without cases; a rank
killed with SIGKILL stops the job within seconds and leaves the last checkpoint loadable; a run
of two ranks resumes in one process; and the flag without mpi4py says what to install.
Tests that need mpiexec skip, saying so, when the [mpi] extra is not installed.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from archive import ROOT
from port import checkpoint, parallel
from tests.port.test_convnet import run_cli, save_dirs, train_args, write_cifar_like
from tests.port.test_training import DROPOUT_DEF, DROPOUT_PARAMS


def _mpiexec() -> str | None:
    here = Path(sys.executable).parent / "mpiexec"
    found = str(here) if here.is_file() else shutil.which("mpiexec")
    try:
        import mpi4py  # noqa: F401, PLC0415
    except ImportError:
        return None
    return found


MPIEXEC = _mpiexec()
# one xdist worker runs the module, so its module fixtures (the runs compared) run once
pytestmark = pytest.mark.xdist_group("parallel")
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec or mpi4py is not installed "
                               "(pip install -e '.[mpi]' brings both)")


def run_ranks(n: int, args: list[str], timeout: float = 300, env=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, "-m", "port.convnet", *args,
                           "--data-parallel=1"], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)


# ---- without MPI ---------------------------------------------------------------------------------

def test_microbatches_cover_each_minibatch_in_rank_order():
    assert parallel.microbatch(16, 0, 2) == (0, 8) and parallel.microbatch(16, 1, 2) == (8, 16)
    assert [parallel.microbatch(7, r, 3) for r in range(3)] == [(0, 3), (3, 6), (6, 7)]
    assert parallel.microbatch(2, 2, 3) == (2, 2)       # a rank without cases
    assert parallel.minibatch_sizes(66, 16) == [16, 16, 16, 16, 2]
    for size in (1, 2, 3, 5):
        cols = np.concatenate([parallel.share_columns(66, 16, r, size) for r in range(size)])
        assert sorted(cols.tolist()) == list(range(66))   # every case once, none twice
    assert parallel.share_columns(66, 16, 1, 2)[:8].tolist() == list(range(8, 16))


class _Comm:
    """A stand-in communicator whose other rank reports ``other`` as its weights' hash."""

    def __init__(self, other):
        self.other = other

    def allgather(self, value):
        return [value, self.other]


def test_a_weights_mismatch_stops_every_rank_with_one_line():
    dp = parallel.DataParallel.__new__(parallel.DataParallel)
    dp.comm, dp.steps = _Comm("f" * 32), 40
    dp.weights_digest = lambda model: "0" * 32
    with pytest.raises(parallel.CollectiveError, match=r"after step 40 the weights of rank\(s\) 1 differ"):
        dp.check_same_weights(None)
    dp.comm = _Comm("0" * 32)
    dp.check_same_weights(None)


def test_the_flag_without_mpi4py_says_what_to_install(tmp_path, monkeypatch, capsys):
    from port import convnet  # noqa: PLC0415

    data = write_cifar_like(tmp_path / "data", num_batches=2, n=16)
    layer_def, params = tmp_path / "l.cfg", tmp_path / "p.cfg"
    layer_def.write_text(DROPOUT_DEF)
    params.write_text(DROPOUT_PARAMS)
    monkeypatch.setitem(sys.modules, "mpi4py", None)    # import mpi4py now fails
    rc = convnet.main(train_args(data, tmp_path / "save", layer_def, params, **{"train-range": "1",
                                                                                "test-range": "2"})
                      + ["--data-parallel=1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "pip install" in err and "[mpi]" in err and "mpiexec" in err


# ---- mpiexec -n 2 against one process --------------------------------------------------------------

def _args(root: Path, save: Path, epochs: int = 1, **over) -> list[str]:
    # 4 training batches of 80 cases, minibatches of 16: 5 steps a batch, 20 steps an epoch
    return train_args(root / "data", save, root / "layers-hs.cfg", root / "layer-params-hs.cfg",
                      epochs=epochs, **{"train-range": "1-4", "test-range": "5", "mini": 16,
                                        "test-freq": 2, "max-filesize": 100, "multiview-test": 1,
                                        **over})


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dp")
    write_cifar_like(root / "data", num_batches=5, n=80)
    (root / "layers-hs.cfg").write_text(DROPOUT_DEF)
    (root / "layer-params-hs.cfg").write_text(DROPOUT_PARAMS)
    return root


@pytest.fixture(scope="module")
def one_process(net) -> Path:
    """One process, two epochs (every checkpoint kept)."""
    r = run_cli(_args(net, net / "one", epochs=2))
    assert r.returncode == 0, r.stderr[-3000:]
    (d,) = save_dirs(net / "one")
    return d


@pytest.fixture(scope="module")
def two_ranks(net) -> tuple[Path, subprocess.CompletedProcess]:
    """Two ranks, one epoch (20 steps), the ranks' weights compared every 5 steps."""
    r = run_ranks(2, _args(net, net / "two", epochs=1) + ["--dp-hash-freq=5"])
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    (d,) = save_dirs(net / "two")
    return d, r


def _assert_close(a: dict, b: dict) -> None:
    """Weights and increments within float32 round-off; the same random state and positions."""
    la, lb = a["model_state"]["layers"], b["model_state"]["layers"]
    compared = 0
    for name in la:
        for key in ("weights", "weightsInc", "biases", "biasesInc"):
            if key not in la[name]:
                continue
            xs, ys = la[name][key], lb[name][key]
            xs, ys = (xs, ys) if isinstance(xs, list) else ([xs], [ys])
            for x, y in zip(xs, ys, strict=True):
                scale = float(np.abs(x).max())
                assert scale > 0 and not np.array_equal(x, np.zeros_like(x))
                np.testing.assert_allclose(y, x, rtol=0, atol=2e-5 * scale, err_msg=f"{name}.{key}")
                compared += 1
    assert compared == 8
    for key in ("epoch", "batchnum", "model_rng", "test_dp_position"):
        assert a["model_state"][key] == b["model_state"][key], key
    for ca, cb in zip(a["model_state"]["train_outputs"] + a["model_state"]["test_outputs"],
                      b["model_state"]["train_outputs"] + b["model_state"]["test_outputs"], strict=True):
        assert ca[1] == cb[1]                                   # the global case counts
        np.testing.assert_allclose(cb[0]["logprob"], ca[0]["logprob"], rtol=1e-5)


@needs_mpi
def test_two_ranks_train_as_one_process(one_process, two_ranks):
    d2, r = two_ranks
    assert "data parallel: 2 ranks, gradients summed by MPI" in r.stdout
    assert len(re.findall(r"^1\.4\.\.\. ", r.stdout, re.M)) == 1          # rank 0 alone prints
    assert len(checkpoint.list_checkpoints(d2)) == 2                     # 1.2 and 1.4, rank 0's
    _assert_close(checkpoint.load(one_process / "1.4"), checkpoint.load(d2 / "1.4"))


@needs_mpi
def test_one_rank_is_bit_identical_to_one_process(net, one_process):
    """With one rank nothing is summed over ranks: the buffers, the allreduce and the deferred
    update must change no bit."""
    r = run_ranks(1, _args(net, net / "one-rank", epochs=1))
    assert r.returncode == 0, r.stderr[-3000:]
    (d,) = save_dirs(net / "one-rank")
    a, b = checkpoint.load(one_process / "1.4"), checkpoint.load(d / "1.4")
    for name, layer in a["model_state"]["layers"].items():
        for key in ("weights", "weightsInc", "biases", "biasesInc"):
            if key in layer:
                xs, ys = layer[key], b["model_state"]["layers"][name][key]
                for x, y in zip(*((xs, ys) if isinstance(xs, list) else ([xs], [ys])), strict=True):
                    assert np.array_equal(x, y), f"{name}.{key}"
    assert a["model_state"]["train_outputs"] == b["model_state"]["train_outputs"]


@needs_mpi
def test_two_ranks_resume_in_one_process(one_process, two_ranks, tmp_path):
    d2, _ = two_ranks
    resumed = tmp_path / "resumed"
    shutil.copytree(d2, resumed)
    r = run_cli(["-f", str(resumed), "--epochs=2"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"^2\.1\.\.\. ", r.stdout, re.M)
    _assert_close(checkpoint.load(one_process / "2.4"), checkpoint.load(resumed / "2.4"))


@needs_mpi
def test_three_ranks_with_a_rank_without_cases(net, one_process, tmp_path):
    """Minibatches of 6 split 2/2/2 and the batch's last (80 = 13·6 + 2) 1/1/0: the third rank
    computes nothing in that step, yet updates as the others and keeps its random state in step."""
    one = run_cli(_args(net, tmp_path / "one", epochs=1, mini=6, **{"train-range": "1"}))
    assert one.returncode == 0, one.stderr[-3000:]
    three = run_ranks(3, _args(net, tmp_path / "three", epochs=1, mini=6, **{"train-range": "1"})
                      + ["--dp-hash-freq=7"])
    assert three.returncode == 0, three.stderr[-3000:]
    (a,), (b,) = save_dirs(tmp_path / "one"), save_dirs(tmp_path / "three")
    _assert_close(checkpoint.load(a), checkpoint.load(b))


def _rank_pid(tag: str, rank: int) -> int | None:
    """The pid of the process launched with ``DP_TEST_TAG=tag`` and ``PMI_RANK=rank``."""
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            env = (p / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"DP_TEST_TAG={tag}".encode() in env and f"PMI_RANK={rank}".encode() in env:
            return int(p.name)
    return None


@needs_mpi
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to find the rank's pid")
def test_a_killed_rank_stops_the_job_and_keeps_the_last_checkpoint(net, tmp_path):
    tag = uuid.uuid4().hex
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DP_TEST_TAG": tag}
    proc = subprocess.Popen([MPIEXEC, "-n", "2", sys.executable, "-m", "port.convnet",
                             *_args(net, tmp_path / "save", epochs=50, **{"test-freq": 1}),
                             "--data-parallel=1"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out = []
    for line in proc.stdout:
        out.append(line)
        if line.startswith("Saved checkpoint") and sum(x.startswith("Saved checkpoint") for x in out) == 2:
            break
    pid = _rank_pid(tag, 1)
    assert pid is not None, "".join(out)[-2000:]
    os.kill(pid, signal.SIGKILL)
    t = time.monotonic()
    rest, _ = proc.communicate(timeout=60)
    stopped_after = time.monotonic() - t
    assert proc.returncode != 0
    assert stopped_after < 20, stopped_after
    assert "Killed (signal 9)" in rest, rest[-2000:]
    (d,) = save_dirs(tmp_path / "save")
    last = checkpoint.load(d)["model_state"]
    assert (last["epoch"], last["batchnum"]) >= (1, 2)
    assert last["layers"]["conv1"]["weights"][0].any()


# ---- NCCL (CuPy) without a GPU: the calls, on a stand-in ---------------------------------------------

class _FakeNccl:
    """``cupy.cuda.nccl``'s names used by NcclAllreduce; allReduce sums ``ranks`` equal buffers."""

    NCCL_FLOAT32, NCCL_FLOAT64, NCCL_SUM = 7, 8, 0

    def __init__(self, ranks: int):
        self.ranks, self.calls, self.made = ranks, [], []

    def get_unique_id(self):
        return tuple(range(128))

    def NcclCommunicator(self, ndev, uid, rank):  # noqa: N802 (cupy's name)
        self.made.append((ndev, uid, rank))
        return self

    def allReduce(self, send, recv, count, dtype, op, stream):  # noqa: N802
        import ctypes  # noqa: PLC0415

        self.calls.append((count, dtype, op, stream))
        assert send == recv and dtype == self.NCCL_FLOAT32 and op == self.NCCL_SUM
        a = np.ctypeslib.as_array((ctypes.c_float * count).from_address(recv))
        a *= self.ranks


class _DeviceBuffer:
    """A NumPy buffer seen through CuPy's ``.data.ptr``."""

    def __init__(self, a):
        self.a, self.size, self.dtype = a, a.size, a.dtype
        self.data = type("Mem", (), {"ptr": a.ctypes.data})()


class _BcastComm:
    def __init__(self, rank, size, root_value):
        self.rank, self.size, self.root_value = rank, size, root_value

    def bcast(self, value, root=0):
        assert root == 0 and (value is None) == (self.rank != 0)
        return self.root_value


def test_nccl_gets_rank_0s_unique_id_over_mpi_and_sums_in_place():
    fake = _FakeNccl(ranks=2)
    cupy = type("cupy", (), {"cuda": type("cuda", (), {
        "get_current_stream": staticmethod(lambda: type("S", (), {"ptr": 1234})())})})
    uid = fake.get_unique_id()
    ar = parallel.NcclAllreduce(_BcastComm(1, 2, uid), nccl=fake, cupy=cupy)
    assert fake.made == [(2, uid, 1)]
    buf = np.arange(6, dtype=np.float32)
    ar(_DeviceBuffer(buf))
    assert fake.calls == [(6, fake.NCCL_FLOAT32, fake.NCCL_SUM, 1234)]
    np.testing.assert_array_equal(buf, 2 * np.arange(6, dtype=np.float32))


def test_cupy_nccl_imports_where_cupy_is_installed():
    pytest.importorskip("cupy", reason="CuPy is not installed (the [cuda12]/[cuda13] extras)")
    try:
        from cupy.cuda import nccl  # noqa: PLC0415
    except ImportError as e:
        pytest.skip(f"this CuPy has no NCCL ({e}); the MPI engine stages through the host instead")
    assert hasattr(nccl, "NcclCommunicator") and hasattr(nccl, "get_unique_id")


_ONE_RANK_FAILS = """
import sys
from port import parallel
from port.errors import UserError
dp = parallel.DataParallel.start()
with dp.guard("prog"):
    if dp.rank == 1:
        raise UserError("only here")
    dp.comm.Barrier()   # rank 0 waits for a rank that will never come
"""


@needs_mpi
def test_an_error_on_one_rank_prints_one_line_and_stops_the_others():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.monotonic()
    r = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-c", _ONE_RANK_FAILS], capture_output=True,
                       text=True, timeout=120, cwd=ROOT, env=env)
    assert time.monotonic() - t < 60
    assert r.returncode == 2, (r.stdout, r.stderr)
    ours = [line for line in r.stderr.splitlines() if line.startswith("prog:")]
    assert ours == ["prog: rank 1 of 2: only here; stopping every rank"], r.stderr


@needs_mpi
def test_device_buffers_staged_through_the_host_on_the_strict_stand_in(net, tmp_path):
    """On the strict CuPy stand-in the gradient buffers are device arrays, summed by MPI through
    host copies (CuPy without NCCL takes this path): the same result as one NumPy process."""
    over = {"train-range": "1", "epochs": 1}
    one = run_cli(_args(net, tmp_path / "one", **over))
    assert one.returncode == 0, one.stderr[-3000:]
    strict = run_ranks(2, _args(net, tmp_path / "strict", **{**over, "backend": "auto"}),
                       env={"ALEXNET_BACKEND": "strict"})
    assert strict.returncode == 0, strict.stderr[-3000:]
    assert "strict CuPy stand-in" in strict.stdout and "summed by MPI" in strict.stdout
    (a,), (b,) = save_dirs(tmp_path / "one"), save_dirs(tmp_path / "strict")
    _assert_close(checkpoint.load(a), checkpoint.load(b))
