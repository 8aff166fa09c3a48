"""Worker processes that decode, crop and mirror JPEG batches into shared memory (the JPEG feed).

What this is: the machinery behind ``inet-lr-cropped-jpeg``'s training path at GPU rates. A batch's
JPEG strings are copied once into a shared-memory buffer; worker processes (default: one per core)
each take a run of cases, decode them (simplejpeg), cut the crop and mirror it, and write uint8
crops straight into a shared (3, inner, inner, N) output buffer, the layout of the provider's
(3·inner², N) matrix. Nothing is pickled but the task's few numbers; K batches are in flight at
once (a ring of K buffer pairs). On CuPy the provider uploads the uint8 crops and applies the mean
and the colour noise on the device (:func:`port.data.jpeg.finish_crops` through
:mod:`port.backend`); on NumPy the workers run that same function on their own columns and write
finished float32 crops (the provider's single thread would otherwise be the bottleneck: four passes
over 600 MB per 1,024 images), and the provider hands out the shared buffer itself, leased: the
slot returns to the ring when the batch's array is freed (the ring grows while the trainer holds
more batches than are in flight). What this is not: the semantics (which crops, which noise), which
the provider fixes and hands over as arrays of offsets and flips.

Shared memory is plain files in ``/dev/shm`` (the temp folder when that is short) mapped by both
sides (``mmap``), unlinked by the provider when it closes (and at exit); the workers never own
them.
"""
from __future__ import annotations

import atexit
import ctypes
import mmap
import os
import tempfile
import weakref
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

import numpy as np

SHM_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None
CASES_PER_TASK = 32  # one crop chunk of the original per task


class SharedBuffer:
    """A file in /dev/shm mapped here; workers map the same file by its path."""

    def __init__(self, size: int):
        self.size = max(1, int(size))
        fd, self.path = tempfile.mkstemp(prefix="alexnet-feed-", dir=_folder_for(self.size))
        try:
            os.ftruncate(fd, self.size)
            self.map = mmap.mmap(fd, self.size)
        finally:
            os.close(fd)
        self._unlink = weakref.finalize(self, _unlink, self.path)

    def array(self, dtype, shape) -> np.ndarray:
        count = int(np.prod(shape))
        return np.frombuffer(self.map, dtype=dtype, count=count).reshape(shape)

    def close(self) -> None:
        self._unlink()


def _folder_for(size: int) -> str | None:
    """/dev/shm when it has room for ``size`` twice over (a container's is often 64 MiB, and a
    write past a full tmpfs kills the writer with SIGBUS), else the temp folder (a mapped file
    there is shared through the page cache as well)."""
    if SHM_DIR is not None:
        try:
            st = os.statvfs(SHM_DIR)
            if st.f_bavail * st.f_frsize >= 2 * size:
                return SHM_DIR
        except OSError:
            pass
    return None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class Slot:
    """One batch in flight: the JPEG bytes in, the uint8 crops out (grown when a batch needs more)."""

    def __init__(self):
        self.inp: SharedBuffer | None = None
        self.out: SharedBuffer | None = None

    def ensure(self, in_bytes: int, out_bytes: int) -> None:
        if self.inp is None or self.inp.size < in_bytes:
            if self.inp is not None:
                self.inp.close()
            self.inp = SharedBuffer(max(in_bytes, 1 << 20) * 5 // 4)
        if self.out is None or self.out.size < out_bytes:
            if self.out is not None:
                self.out.close()
            self.out = SharedBuffer(out_bytes)

    def close(self) -> None:
        for b in (self.inp, self.out):
            if b is not None:
                b.close()


# ---- in the workers ----------------------------------------------------------------------------

_maps: dict[str, mmap.mmap] = {}


def _attach(path: str, size: int) -> mmap.mmap:
    m = _maps.get(path)
    if m is None or len(m) < size:
        fd = os.open(path, os.O_RDWR)
        try:
            m = mmap.mmap(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        _maps[path] = m
    return m


def crop_task(task: tuple) -> list[int]:
    """Decode cases lo..hi of a batch from shared memory, crop (and mirror) each, and write them
    into columns lo..hi of the shared output: uint8 (3·inner², N) crops, or, given the mean
    (``finish``), the finished float32 crops (:func:`port.data.jpeg.finish_crops` on NumPy).
    Returns the cases that could not be decoded to S×S×3 (the provider then redoes the batch in
    process, as the original would: it drops them).

    Ports: alexnet-2012/convdata_jpeg.py:27-47 JPEGBatchLoaderThread.load_jpeg_batch
    Ports: alexnet-2012/convdata_jpeg.py:221-262 JPEGCroppedImageNetDP.__trim_borders
    """
    from port.data.jpeg import decode_rgb, finish_crops  # noqa: PLC0415 (imported once)

    in_path, in_size, bounds, out_path, n, lo, hi, img_size, inner, oy, ox, flip, finish = task
    d = 3 * inner * inner
    src = memoryview(_attach(in_path, in_size))
    dtype = np.float32 if finish else np.uint8
    out = np.frombuffer(_attach(out_path, d * n * np.dtype(dtype).itemsize), dtype=dtype,
                        count=d * n).reshape(d, n)
    tmp = np.empty((hi - lo, inner, inner, 3), dtype=np.uint8)                  # (g, inner, inner, 3)
    buf = np.empty((img_size, img_size, 3), dtype=np.uint8)
    failed = []
    for j in range(hi - lo):
        try:
            img = decode_rgb(src[bounds[j]:bounds[j + 1]], buffer=buf, max_pixels=buf.size // 3)
        except Exception:  # noqa: BLE001 (a bad image: the provider redoes the batch in process)
            failed.append(lo + j)
            continue
        if img.shape != (img_size, img_size, 3):
            failed.append(lo + j)
            continue
        c = img[oy[j]:oy[j] + inner, ox[j]:ox[j] + inner]
        tmp[j] = c[:, ::-1] if flip[j] else c
    src.release()
    if failed:
        return failed
    cols = tmp.transpose(3, 1, 2, 0).reshape(d, hi - lo)                       # (3·inner², g) uint8
    if finish:
        mean_path, mean_value, noise, coeff = finish
        mean = mean_value if mean_path is None else \
            np.frombuffer(_attach(mean_path, 4 * d), dtype=np.float32, count=d).reshape(d, 1)
        noise = None if noise is None else np.asarray(noise, dtype=np.float32).reshape(hi - lo, 3)
        cols = finish_crops(cols, mean, noise, coeff, xp=np)
    out[:, lo:hi] = cols
    return failed


def _worker_init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


# ---- in the provider ---------------------------------------------------------------------------

_pools: dict[int, ProcessPoolExecutor] = {}


def shared_pool(workers: int) -> ProcessPoolExecutor:
    """The process pool of ``workers`` workers, started once per process and shared by every
    provider (the driver's training and test providers use the same processes)."""
    pool = _pools.get(workers)
    if pool is None:
        ctx = get_context("forkserver")
        ctx.set_forkserver_preload(["port.data.jpeg"])  # imported once, in the fork server
        pool = _pools[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                                     initializer=_worker_init)
    return pool


def _drop_pool(pool: ProcessPoolExecutor) -> None:
    for k, p in list(_pools.items()):
        if p is pool:
            del _pools[k]
    pool.shutdown(wait=False, cancel_futures=True)


@atexit.register
def _shutdown_pools() -> None:
    for pool in _pools.values():
        pool.shutdown(wait=True, cancel_futures=True)
    _pools.clear()


class Feed:
    """``workers`` processes and ``slots`` buffer pairs; :meth:`submit` returns a job whose
    :meth:`Job.result` is the (3·inner², N) uint8 view of its output slot (valid until released)."""

    def __init__(self, workers: int, slots: int, mean=None):
        self.workers = workers
        self.host = mean is not None  # the workers finish the crops (NumPy): float32 out
        self.mean_value, self.mean = None, None
        if self.host and np.ndim(mean) == 0:
            self.mean_value = np.float32(mean)
        elif self.host:
            m = np.ascontiguousarray(mean, dtype=np.float32).reshape(-1)
            self.mean = SharedBuffer(m.nbytes)
            self.mean.array(np.float32, m.shape)[:] = m
        self.pool = shared_pool(workers)
        self.free = [Slot() for _ in range(max(1, slots))]
        self.all = list(self.free)
        self._closed = False  # the files go at exit anyway (SharedBuffer's finalizer)

    def submit(self, strings: list[bytes], img_size: int, inner: int, oy, ox, flip,
               noise=None, coeff: float = 0.0) -> "Job":
        """Start decoding and cropping one batch; ``oy``, ``ox``, ``flip`` per case (N,); the
        colour noise (N, 3) and its coefficient are applied by the workers when they finish."""
        if not self.free:  # every slot in flight or held by a batch still in use: one more
            self.all.append(Slot())
            self.free.append(self.all[-1])
        slot = self.free.pop()
        n = len(strings)
        lens = np.fromiter((len(s) for s in strings), dtype=np.int64, count=n)
        bounds = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lens, out=bounds[1:])
        slot.ensure(int(bounds[-1]), 3 * inner * inner * n * (4 if self.host else 1))
        slot.inp.map[:int(bounds[-1])] = b"".join(strings)
        futures = []
        for lo in range(0, n, CASES_PER_TASK):
            hi = min(lo + CASES_PER_TASK, n)
            task = (slot.inp.path, slot.inp.size, bounds[lo:hi + 1].tolist(), slot.out.path,
                    n, lo, hi, img_size, inner, oy[lo:hi].tolist(), ox[lo:hi].tolist(),
                    flip[lo:hi].tolist(),
                    (self.mean.path if self.mean else None, self.mean_value,
                     None if noise is None else noise[lo:hi].tolist(), coeff) if self.host else None)
            futures.append(self.pool.submit(crop_task, task))
        return Job(self, slot, futures, n, inner)

    def release(self, slot: Slot) -> None:
        if not self._closed:
            self.free.append(slot)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for s in self.all:
            s.close()
        self.all, self.free = [], []  # unmapped once no batch array holds them
        if self.mean is not None:
            self.mean.close()


class _Lease:
    """Gives a slot back to its feed when the array holding it is freed."""

    def __init__(self, feed: "Feed", slot: Slot):
        self.feed, self.slot = feed, slot

    def __del__(self):
        self.feed.release(self.slot)


class Job:
    def __init__(self, feed: Feed, slot: Slot, futures: list[Future], n: int, inner: int):
        self.feed, self.slot, self.futures, self.n, self.inner = feed, slot, futures, n, inner
        self.host = feed.host
        self._released = False

    def failed(self) -> list[int]:
        """Wait for the workers; the cases they could not decode."""
        out = []
        for f in self.futures:
            try:
                out += f.result()
            except BrokenProcessPool as e:
                from port.errors import UserError  # noqa: PLC0415

                _drop_pool(self.feed.pool)  # the next provider starts fresh workers

                raise UserError(f"a JPEG feed worker process died ({e}); a script that builds the "
                                f"provider needs `if __name__ == '__main__':`, or pass "
                                f"feed_workers=0 to decode in this process") from None
        return out

    def leased_crops(self) -> np.ndarray:
        """The finished float32 crops (3·inner², N) in place, without a copy: the slot goes back to
        the ring only when this array (and every view of it) has been freed."""
        shape = (3 * self.inner * self.inner, self.n)
        nbytes = 4 * shape[0] * shape[1]
        holder = (ctypes.c_char * nbytes).from_buffer(self.slot.out.map)
        holder.lease = _Lease(self.feed, self.slot)
        self._released = True  # the lease gives the slot back
        return np.frombuffer(holder, dtype=np.float32, count=shape[0] * shape[1]).reshape(shape)

    def crops(self) -> np.ndarray:
        """(3·inner², N) view of the shared output (after :meth:`failed`): float32 finished crops
        when the workers finish them (``host``), else uint8 crops."""
        return self.slot.out.array(np.float32 if self.host else np.uint8,
                                   (3 * self.inner * self.inner, self.n))

    def release(self) -> None:
        if not self._released:
            self._released = True
            for f in self.futures:
                f.cancel()
            for f in self.futures:
                if not f.cancelled():
                    try:
                        f.result()
                    except Exception:  # noqa: BLE001 (the slot is free either way)
                        pass
            self.feed.release(self.slot)
