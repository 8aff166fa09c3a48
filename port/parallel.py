"""Data-parallel training over MPI (``mpiexec -n N python -m port.convnet ... --data-parallel=1``).

What this is: :class:`DataParallel`, which lets N processes (ranks) train one net as one process
would. Every rank reads the same batch from its data provider, keeps its rank-order share of every
global minibatch (cuda-convnet2's microbatch rule), runs the forward and backward passes on it, and
the weight gradients, summed over the cases of each rank, are summed over the ranks by one
allreduce per step into a few large buffers (:class:`GradientBuckets`); every rank then applies the
same update (``Weights.accumulate`` with the global case count, then ``update``), so the weights
stay identical, which a hash compared every ``--dp-hash-freq`` steps checks. Costs and error
counts are summed over the ranks before they are printed (by rank 0 alone); test batches are split
the same way; rank 0 alone writes checkpoints, which hold nothing rank-specific, so a run resumes
with any number of ranks. What this is not: model parallelism (the 2012 net's two columns,
``port.devices``), or a launcher: ``mpiexec`` starts the ranks.

The engine: mpi4py on an MPI library (``pip install '.[mpi]'`` brings mpi4py and MPICH's wheel,
whose ``mpiexec`` lands in the virtual environment's ``bin``). With CuPy the buffers are summed
by NCCL (``cupy.cuda.nccl``; its unique id broadcast over MPI), each rank on the GPU of its local
rank; without NCCL they are staged through the host and summed by MPI.

Equivalence. With the same global minibatch, N ranks compute what one process computes, except
for the order of the sums: each weight gradient is a sum over the minibatch's cases, here summed
per rank and then over the ranks. Dropout masks are drawn for the whole global minibatch on every
rank and each rank keeps its columns, so they equal one process's masks and every rank's random
generator stays in step (``nrelu``'s noise and ``rscale``'s draws are keyed per rank's shape:
identical state, different numbers from one process's).

Failure. A Python error on one rank prints one line naming the rank and aborts the job
(``MPI_Abort``: mpiexec ends the others at once, adding its own line); a rank that dies (killed,
out of memory) is noticed by mpiexec, which ends the others within a second or so and prints its
"BAD TERMINATION" banner. Errors that every rank meets at the same point (options, files, a
weights mismatch) are agreed on collectively and printed once, by rank 0, with exit code 2.
Checkpoints are written atomically by rank 0, so the last one stays intact whatever dies.

DIVERGES: cuda-convnet2 ran one thread per GPU in one process, each replica reducing one shard of
every gradient and broadcasting its shard of the increment (weights.cu aggregateReplicaGradients);
here processes (on one machine or many) sum whole gradients with MPI or NCCL allreduce and each
rank updates every matrix itself: the same arithmetic, no broadcast of weights, and no threads.
"""
from __future__ import annotations

import hashlib
import os
import sys
from contextlib import contextmanager

import numpy as np

from port import backend
from port.errors import UserError

INSTALL_HINT = ("--data-parallel needs mpi4py and an MPI library: pip install 'alexnet-archive[mpi]' "
                "(from a checkout: pip install -e '.[mpi]'; it brings mpi4py and MPICH), then run "
                "mpiexec -n N python -m port.convnet ... --data-parallel=1")
DEFAULT_BUCKET_MB = 64


class CollectiveError(UserError):
    """An error every rank raises at the same point: printed once (rank 0), exit 2, no abort.
    Other errors that every rank meets together say so with a true ``collective`` attribute."""

    collective = True


def launched_rank() -> int:
    """This process's rank as the MPI launcher says it (MPICH, Open MPI, PMIx), before MPI starts;
    0 when not launched by one."""
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def load_mpi():
    """``mpi4py.MPI`` (which starts MPI), or a one-line UserError saying what to install."""
    try:
        from mpi4py import MPI  # noqa: PLC0415
    except ImportError as e:
        raise UserError(f"{INSTALL_HINT} ({e})") from None
    return MPI


def microbatch(num_cases: int, rank: int, size: int) -> tuple[int, int]:
    """The columns ``[lo, hi)`` of a minibatch of ``num_cases`` that rank ``rank`` of ``size`` takes:
    slices of ``ceil(num_cases / size)`` cases in rank order (the last ranks may get fewer or none).

    Ports: cuda-convnet2/cudaconvnet/src/layer.cu:1525-1560 DataCopyThread::run
    """
    micro = -(-num_cases // size)
    return min(num_cases, rank * micro), min(num_cases, (rank + 1) * micro)


def minibatch_sizes(num_cases: int, minibatch_size: int) -> list[int]:
    """The sizes of the global minibatches a batch of ``num_cases`` is cut into (the last may be short)."""
    return [min(minibatch_size, num_cases - s) for s in range(0, num_cases, minibatch_size)]


def share_columns(num_cases: int, minibatch_size: int, rank: int, size: int) -> np.ndarray:
    """The batch columns rank ``rank`` keeps: its microbatch of every global minibatch, in order."""
    cols = []
    for i, n in enumerate(minibatch_sizes(num_cases, minibatch_size)):
        lo, hi = microbatch(n, rank, size)
        cols.append(np.arange(i * minibatch_size + lo, i * minibatch_size + hi))
    return np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)


# ---- the gradient buffers --------------------------------------------------------------------------

def _gradient_owners(model) -> list[tuple[str, object, object]]:
    """``(key, owner Weights, owner's layer)`` for every matrix a backward pass may give a gradient
    (some user of it has ε > 0), owners only, in the net's layer order (the same on every rank)."""
    rates: dict[int, float] = {}
    owners: dict[int, tuple[str, object, object]] = {}
    for layer in model.order:
        mats = [(f"{layer.name}.weights[{i}]", w) for i, w in enumerate(getattr(layer, "weights", []) or [])]
        if getattr(layer, "biases", None) is not None:
            mats.append((f"{layer.name}.biases", layer.biases))
        for key, w in mats:
            o = w.owner
            rates[id(o)] = max(rates.get(id(o), 0.0), w.base_rate)
            if w.src is None:
                owners[id(o)] = (key, o, layer)
    return [owners[i] for i in owners if rates[i] > 0]


class GradientBuckets:
    """The weight gradients of one step in a few flat buffers of about ``bucket_bytes`` each.

    During the backward pass :meth:`add` receives each matrix's gradient (descent direction, summed
    over this rank's cases) and copies it into its slice (a second contribution, from shared
    weights, adds). The last buffer ends with one count per matrix and one flag per weight layer,
    so a rank with no cases in a step (a short last minibatch) learns which matrices the others
    computed. :meth:`reduce` sums the buffers over the ranks; :meth:`apply` hands each matrix its
    global sum and the global case count (``Weights.accumulate``), as one process would have.

    Ports: cuda-convnet2/cudaconvnet/src/layer.cu:848-856 WeightLayer::getGradScale
    Ports: cuda-convnet2/cudaconvnet/include/weights.cuh:38-67 IWeightReducer
    DIVERGES: cuda-convnet2 scaled each replica's gradient by 1/(global minibatch) in the backward
    pass and reduced matrix by matrix, shard by shard; here the raw sums travel, in buckets, and the
    scaling is applied once after the sum (one rounding fewer, one call per bucket).
    """

    def __init__(self, model, allreduce, bucket_bytes: int = DEFAULT_BUCKET_MB << 20):
        self.model = model
        self.allreduce = allreduce
        self.entries = _gradient_owners(model)
        self.weight_layers = [l for l in model.order if hasattr(l, "grad_computed")]
        xp = backend.xp()
        dtype = model.dtype
        self.slots: dict[int, tuple[int, int, int]] = {}       # id(owner) -> (bucket, offset, size)
        sizes, cur = [], 0
        limit = max(1, bucket_bytes // dtype.itemsize)
        for _key, o, _layer in self.entries:
            n = int(np.prod(o.w.shape))
            if cur and cur + n > limit:
                sizes.append(cur)
                cur = 0
            self.slots[id(o)] = (len(sizes), cur, n)
            cur += n
        self.num_flags = len(self.entries) + len(self.weight_layers)
        sizes.append(cur + self.num_flags)
        self.flag_offset = cur
        self.buffers = [xp.zeros(s, dtype=dtype) for s in sizes]
        self.counts = np.zeros(len(self.entries), dtype=np.int64)
        self.index = {id(o): i for i, (_k, o, _l) in enumerate(self.entries)}

    @property
    def nbytes(self) -> int:
        return sum(int(b.size) * b.dtype.itemsize for b in self.buffers)

    def begin(self) -> None:
        self.counts[:] = 0

    def add(self, weights, grad_sum) -> None:
        """Store one gradient of ``weights`` (a user of the owner's matrix) for this step."""
        o = weights.owner
        if id(o) not in self.slots:
            raise UserError(f"data parallel: a gradient for a matrix of shape {o.w.shape} that no "
                            "layer with epsW/epsB > 0 owns; cannot sum it over the ranks")
        b, off, n = self.slots[id(o)]
        view = self.buffers[b][off:off + n]
        flat = grad_sum.reshape(-1)
        if flat.size != n:
            raise UserError(f"data parallel: a gradient of {flat.size} values for a matrix of {n}")
        i = self.index[id(o)]
        if self.counts[i] == 0:
            view[...] = flat
        else:
            view += flat
        self.counts[i] += 1

    def reduce(self) -> None:
        """Zero what this rank did not compute, write the flags, and sum every buffer over the ranks."""
        for (_k, o, _l), c in zip(self.entries, self.counts):
            if c == 0:
                b, off, n = self.slots[id(o)]
                self.buffers[b][off:off + n] = 0
        flags = np.concatenate([(self.counts > 0).astype(np.float32),
                                np.array([bool(l.grad_computed) for l in self.weight_layers], np.float32)])
        last = self.buffers[-1]
        last[self.flag_offset:] = backend.to_device(flags.astype(last.dtype))
        for buf in self.buffers:
            self.allreduce(buf)

    def apply(self, num_cases: int, progress: float) -> None:
        """Give each matrix some rank computed its summed gradient, as ``Weights.accumulate`` takes it."""
        flags = backend.to_host(self.buffers[-1][self.flag_offset:])
        k = len(self.entries)
        for (_key, o, _layer), f in zip(self.entries, flags[:k]):
            if f > 0:
                b, off, n = self.slots[id(o)]
                o.accumulate(self.buffers[b][off:off + n].reshape(o.w.shape), num_cases, False, progress)
        for layer, f in zip(self.weight_layers, flags[k:]):
            layer.grad_computed = bool(layer.grad_computed or f > 0)


# ---- the allreduce engines ---------------------------------------------------------------------------

class MpiAllreduce:
    """Sum a buffer over the ranks with ``MPI_Allreduce`` (in place; device buffers staged through the host)."""

    name = "MPI"

    def __init__(self, comm, MPI):
        self.comm, self.MPI = comm, MPI

    def __call__(self, buf) -> None:
        if isinstance(buf, np.ndarray):
            self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
            return
        host = backend.to_host(buf)
        self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
        buf[...] = backend.to_device(host)


class NcclAllreduce:
    """Sum a device buffer over the ranks with NCCL (``cupy.cuda.nccl``), in place, on the current
    stream. Rank 0 makes the unique id; MPI broadcasts it; every rank joins the communicator."""

    name = "NCCL"

    def __init__(self, comm, nccl=None, cupy=None):
        if nccl is None:
            from cupy.cuda import nccl  # noqa: PLC0415
        if cupy is None:
            import cupy  # noqa: PLC0415
        self.nccl, self.cupy = nccl, cupy
        uid = nccl.get_unique_id() if comm.rank == 0 else None
        uid = comm.bcast(uid, root=0)
        self.comm = nccl.NcclCommunicator(comm.size, uid, comm.rank)
        self.types = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64}

    def __call__(self, buf) -> None:
        stream = self.cupy.cuda.get_current_stream()
        ptr = buf.data.ptr
        self.comm.allReduce(ptr, ptr, int(buf.size), self.types[np.dtype(buf.dtype)], self.nccl.NCCL_SUM,
                            stream.ptr)


def make_allreduce(comm, MPI, want: str = "auto"):
    """NCCL on CuPy when ``cupy.cuda.nccl`` is there (``want``: auto, nccl, mpi), else MPI."""
    if backend.name() == "cupy" and want in ("auto", "nccl"):
        try:
            return NcclAllreduce(comm)
        except ImportError as e:
            if want == "nccl":
                raise UserError(f"--dp-engine=nccl: cupy.cuda.nccl is not available ({e})") from None
    elif want == "nccl":
        raise UserError("--dp-engine=nccl needs the CuPy backend")
    return MpiAllreduce(comm, MPI)


# ---- the driver's side ---------------------------------------------------------------------------

class DataParallel:
    """One rank's view of a data-parallel run: the communicator, its rank, the buckets, the steps."""

    def __init__(self, comm, MPI, hash_freq: int = 100, bucket_mb: float = DEFAULT_BUCKET_MB,
                 engine: str = "auto"):
        self.comm, self.MPI = comm, MPI
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.is_root = self.rank == 0
        self.hash_freq = int(hash_freq)
        self.bucket_bytes = int(bucket_mb * (1 << 20))
        self.engine_wanted = engine
        self.local_rank = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
        self.allreduce = None
        self.buckets: GradientBuckets | None = None
        self.steps = 0
        self.reduce_seconds = 0.0
        self.current: tuple[int, int, int] | None = None     # (global n, lo, hi) of the minibatch running

    @classmethod
    def start(cls, **kw) -> "DataParallel":
        MPI = load_mpi()
        return cls(MPI.COMM_WORLD, MPI, **kw)

    def describe(self) -> str:
        engine = self.engine().name
        return (f"data parallel: {self.size} rank{'s' if self.size != 1 else ''}, gradients summed by "
                f"{engine} in {len(self.buckets.buffers) if self.buckets else '?'} buffer(s) of "
                f"{(self.buckets.nbytes if self.buckets else 0) / 2**20:.1f} MiB in all per step")

    # agreement ------------------------------------------------------------------------------
    def bcast(self, value):
        return self.comm.bcast(value, root=0)

    def agree(self, error: BaseException | None) -> None:
        """Every rank says whether its setup failed; if any did, all raise the first one's message."""
        msgs = self.comm.allgather(None if error is None else str(error))
        for r, m in enumerate(msgs):
            if m is not None:
                raise CollectiveError(m if r == 0 else f"rank {r}: {m}")

    @contextmanager
    def guard(self, prog: str):
        """An error that is not collective prints one line naming the rank and aborts the job."""
        try:
            yield
        except UserError as e:
            if not getattr(e, "collective", False):
                self._abort(prog, e)
            if not self.is_root:
                sys.stderr = open(os.devnull, "w")
            raise
        except SystemExit:
            raise
        except KeyboardInterrupt:   # mpiexec hands Ctrl-C to every rank: rank 0 says it
            if self.is_root:
                sys.stderr.write(f"{prog}: interrupted\n")
                sys.stderr.flush()
            self.comm.Abort(130)
        except BaseException as e:  # noqa: BLE001 (a rank that stops alone must stop the others)
            self._abort(prog, e)

    def _abort(self, prog: str, e: BaseException) -> None:
        what = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
        sys.stderr.write(f"{prog}: rank {self.rank} of {self.size}: {what}; stopping every rank\n")
        sys.stderr.flush()
        self.comm.Abort(2)

    # the model ------------------------------------------------------------------------------
    def attach(self, model) -> None:
        """Make ``model`` (port.model.ConvNet) data-parallel: its gradients go to the buckets."""
        self.model = model
        model.parallel = self
        self.buckets = GradientBuckets(model, self._timed_allreduce, self.bucket_bytes)
        model.gradient_sink = self.buckets.add

    def engine(self):
        """The allreduce (made on first use, a collective call: NCCL's id is broadcast)."""
        if self.allreduce is None:
            self.allreduce = make_allreduce(self.comm, self.MPI, self.engine_wanted)
        return self.allreduce

    def _timed_allreduce(self, buf) -> None:
        from time import perf_counter  # noqa: PLC0415

        t = perf_counter()
        self.engine()(buf)
        self.reduce_seconds += perf_counter() - t

    def random_uniform(self, shape, draw):
        """A dropout mask drawn for the global minibatch (``draw(shape)``), this rank's columns kept."""
        if self.current is None:
            return draw(shape)
        n, lo, hi = self.current
        if len(shape) != 2 or shape[1] != hi - lo:
            return draw(shape)
        return draw((shape[0], n))[:, lo:hi]

    def run_batch(self, model, data: list, progress: float, test: bool):
        """Train (or test) on this rank's share of every global minibatch of ``data``.

        Ports: cuda-convnet2/cudaconvnet/src/convnet.cu:296-325 ConvNet::fprop
        """
        from port.layers.base import PASS_TEST, PASS_TRAIN  # noqa: PLC0415
        from port.model import Cost  # noqa: PLC0415

        n_all = int(data[0].shape[1])
        m = model.minibatch_size
        cols = share_columns(n_all, m, self.rank, self.size)
        dev = model._to_device([np.ascontiguousarray(d[:, cols]) for d in data])
        cost = Cost(0)
        off = 0
        for n in minibatch_sizes(n_all, m):
            lo, hi = microbatch(n, self.rank, self.size)
            mini = [d[:, off:off + hi - lo] for d in dev]
            off += hi - lo
            self.current = (n, lo, hi)
            try:
                if hi > lo:
                    model.fprop(mini, PASS_TEST if test else PASS_TRAIN)
                    cost += model.get_cost()
                if not test:
                    self.step(model, n, hi > lo)
            finally:
                self.current = None
        return cost

    def step(self, model, n: int, has_cases: bool) -> None:
        """Backward pass on this rank's cases, the sum over the ranks, the update, and the checks.

        Ports: cuda-convnet2/cudaconvnet/src/weights.cu:277-318 Weights::aggregateReplicaGradients
        Ports: cuda-convnet2/cudaconvnet/src/layer.cu:698-720 WeightLayer::WeightLayer
        DIVERGES: cuda-convnet2 forced useGrad on replicated layers so that the increment is
        written once, after the sum; here fc and local weights keep the 2012 increment rule
        (Weights.accumulate), applied once to the summed gradient, which is the same thing.
        """
        from port.layers.base import PASS_TRAIN  # noqa: PLC0415

        self.buckets.begin()
        if has_cases:
            model.bprop(PASS_TRAIN)
        else:
            model.num_bwd_mini_passes = (model.num_bwd_mini_passes + 1) % model.wupdate_freq
        self.buckets.reduce()
        num_cases = n if model.wupdate_freq == 1 else model.wupdate_freq * model.minibatch_size
        self.buckets.apply(num_cases, model.progress)
        model.update_weights()
        if microbatch(n, self.size - 1, self.size)[0] >= n:
            # some rank drew no random numbers this step: rank 0 drew the global minibatch's
            model.set_rng_state(self.bcast(model.get_rng_state()))
        self.steps += 1
        if self.hash_freq > 0 and self.steps % self.hash_freq == 0:
            self.check_same_weights(model)

    def global_cost(self, costs: dict, num_cases: int) -> tuple[dict, int]:
        """The costs summed over the ranks, in rank order (every rank gets the same)."""
        total: dict = {}
        n = 0
        for c, k in self.comm.allgather((costs, num_cases)):
            n += k
            for name, vals in c.items():
                have = total.setdefault(name, [0.0] * len(vals))
                for i, v in enumerate(vals):
                    have[i] += v
        return total, n

    def multiview_columns(self, num_cases: int, num_views: int, minibatch_size: int) -> np.ndarray:
        """This rank's columns of a multiview test batch: its share of the real cases, in every view."""
        real = num_cases // num_views
        idx = share_columns(real, minibatch_size, self.rank, self.size)
        return np.concatenate([v * real + idx for v in range(num_views)]) if idx.size else idx

    # checks -------------------------------------------------------------------------------
    def weights_digest(self, model) -> str:
        """A hash of every matrix and increment a step updates (read from the device)."""
        h = hashlib.blake2b(digest_size=16)
        for key, o, _layer in self.buckets.entries:
            h.update(key.encode())
            for a in (o.w, o.inc):
                h.update(np.ascontiguousarray(backend.to_host(a)).tobytes())
        return h.hexdigest()

    def check_same_weights(self, model) -> None:
        """Stop every rank (one line, exit 2) when some rank's weights differ from rank 0's."""
        digests = self.comm.allgather(self.weights_digest(model))
        bad = [r for r, d in enumerate(digests) if d != digests[0]]
        if bad:
            raise CollectiveError(f"data parallel: after step {self.steps} the weights of rank(s) "
                                  f"{', '.join(map(str, bad))} differ from rank 0's (hash "
                                  f"{digests[bad[0]][:12]} against {digests[0][:12]}); training stopped")


__all__ = ["DataParallel", "GradientBuckets", "MpiAllreduce", "NcclAllreduce", "CollectiveError",
           "INSTALL_HINT", "load_mpi", "microbatch", "minibatch_sizes", "share_columns"]
