"""The port's own device kernels: CUDA source, each paired in this one module with its NumPy twin.

Why: on the GPU every CuPy call is at least one kernel launch (5-10 µs each), and the layers'
array code, written for NumPy, makes up to 27 passes per pooling or normalization and one copy per
filter offset per block of the convolutions' im2col (``python -m benchmarks.launches`` counts
them). Here each such step is **one** launch of a hand-written CUDA kernel on CuPy.

How: every kernel is a :class:`Kernel` (a name and CUDA C source, compiled for float and double
by defining ``T``) and a Python function of this module that takes the arrays as the port's code
holds them and dispatches on their module:

- NumPy arrays: the NumPy path, unchanged (the twin: the cudaconv2 function or the NumPy lines
  the layers ran before; the CPU keeps its speed, its Numba kernels and its results);
- CuPy arrays: the kernel, launched once on the current stream;
- the strict stand-in (:mod:`port.strict`): the twin, run on the stand-in's NumPy arrays, with
  its own launches not counted and the whole charged as one launch of the kernel.

So the stand-in runs the same numerics as the NumPy path (the tests compare them) and counts
what the GPU will launch. The CUDA source is compiled for sm_80 and sm_90 in CI without a GPU
(:func:`compile_sources`, ``python -m port.device_kernels --compile``; the tests skip, saying
why, without nvcc).

NOT YET RUN ON A GPU: the CUDA kernels below compile, but none has run on a device; the CuPy
branch of each function is untested until ``benchmarks/gpu.sh`` runs on one (it compares them
with their twins first, ``--check-kernels``).
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from port import backend

THREADS = 256
ARCHS = ("sm_80", "sm_90")
# On the device a convolution builds its whole im2col matrix at once (one gather, one GEMM)
# while it stays below this size; above it, one slice of cases at a time.
DEVICE_COLS_BUDGET_BYTES = 2 * 2**30
_BOUNDS = r'''
#define GRID_LOOP(i, total) \
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (total); \
       i += (long long)blockDim.x * gridDim.x)
'''


@dataclass(frozen=True)
class Kernel:
    """One CUDA kernel: ``name`` (its ``extern "C"`` symbol) and source that uses ``T``."""
    name: str
    source: str

    def code(self, dtype) -> str:
        t = {"float32": "float", "float64": "double"}[np.dtype(dtype).name]
        return f"#define T {t}\n{_BOUNDS}\n{self.source}"


KERNELS: dict[str, Kernel] = {}


def kernel(name: str, source: str) -> Kernel:
    k = Kernel(name, source)
    KERNELS[name] = k
    return k


# ---- dispatch ----------------------------------------------------------------------------------

def module_of(*arrays):
    """``numpy``, ``cupy`` or ``port.strict``: the module of the first device array."""
    return backend.get_array_module(*arrays)


def on_device(*arrays) -> bool:
    return module_of(*arrays) is not np


def _is_strict(m) -> bool:
    return m.__name__ == "port.strict"


_DEVICE = object()  # what _twin_path returns where the CUDA kernel is the path


def _twin_path(m, name: str, twin, args: tuple):
    """The twin's result where the twin is the path: NumPy (unless the CUDA source is emulated on
    the host, :func:`emulated`) and the strict stand-in (charged as one launch of ``name``);
    ``_DEVICE`` where the kernel itself runs. The one place every pair decides."""
    if m is np and _EMULATED is None:
        return twin(*args)
    if _is_strict(m):
        return _twin_on_stand_in(name, twin, args)
    return _DEVICE


def _twin_on_stand_in(name: str, twin, args: tuple, kwargs: dict | None = None):
    """Run ``twin`` on the stand-in's NumPy arrays, charged as one launch of ``name``."""
    from port import strict  # noqa: PLC0415 (tests only)

    def un(x):
        return x._a if type(x) is strict.StrictArray else x
    with strict.paused():
        r = twin(*[un(a) for a in args], **{k: un(v) for k, v in (kwargs or {}).items()})
    strict.kernel_launch(name)
    return strict._wrap(r)


@functools.cache
def _compiled(name: str, dtype: str):
    import cupy  # noqa: PLC0415

    return cupy.RawModule(code=KERNELS[name].code(dtype)).get_function(name)


def _launch(name: str, total: int, dtype, *args) -> None:
    """One launch of kernel ``name`` over ``total`` threads (a grid-stride loop)."""
    if _EMULATED is not None:
        return _EMULATED.call(name, np.dtype(dtype).name, args)
    blocks = max(1, min(65535 * 8, -(-int(total) // THREADS)))
    fn = _compiled(name, np.dtype(dtype).name)
    fn((blocks,), (THREADS,), tuple(args))
    return None


# ---- the CUDA source run on the host (tests) ---------------------------------------------------
# The kernels' C++ compiled by the host compiler with one block of one thread (the grid-stride
# loop then visits every element in order), called through ctypes on NumPy arrays: the CuPy
# branch of every function above, launch arguments included, checked against its twin without
# a GPU. What it cannot check: the device's float rounding, races (none: every kernel writes
# only its own element) and launch limits.

_EMULATED = None
_HOST_PRELUDE = r'''
#include <cmath>
#include <algorithm>
using std::min; using std::max; using std::fabs; using std::fmax; using std::pow;
struct host_dim3 { unsigned int x; };
static const host_dim3 blockIdx = {0}, threadIdx = {0}, blockDim = {1}, gridDim = {1};
#define __global__
#define __device__
#define __forceinline__ inline
'''


class HostKernels:
    """The kernels built as a host library per dtype (g++ or $CXX), called by :func:`_launch`."""

    def __init__(self, directory: Path, compiler: str | None = None):
        import ctypes  # noqa: PLC0415

        self._ct = ctypes
        cxx = compiler or os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
        if cxx is None:
            raise RuntimeError("no host C++ compiler (g++ or $CXX)")
        self.libs = {}
        for dt in ("float32", "float64"):
            src = Path(directory) / f"host_{dt}.cpp"
            src.write_text(_HOST_PRELUDE + translation_unit(dt))
            so = src.with_suffix(".so")
            p = subprocess.run([cxx, "-O1", "-shared", "-fPIC", "-o", str(so), str(src)],
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError(f"host build of the kernels failed:\n{p.stderr.strip()}")
            self.libs[dt] = ctypes.CDLL(str(so))

    def _arg(self, a):
        ct = self._ct
        if isinstance(a, np.ndarray):
            assert a.flags.c_contiguous, "a kernel argument must be C-contiguous"
            return ct.c_void_p(a.ctypes.data)
        return {np.int32: ct.c_int, np.int64: ct.c_longlong, np.uint32: ct.c_uint,
                np.float32: ct.c_float, np.float64: ct.c_double}[type(a)](a)

    def call(self, name: str, dtype: str, args) -> None:
        getattr(self.libs[dtype], name)(*[self._arg(a) for a in args])


class emulated:
    """``with device_kernels.emulated(HostKernels(tmp)):`` NumPy arrays take the CUDA branch,
    launched on the host (tests only)."""

    def __init__(self, kernels: HostKernels):
        self.kernels = kernels

    def __enter__(self):
        global _EMULATED
        self._outer, _EMULATED = _EMULATED, self.kernels
        return self

    def __exit__(self, *exc):
        global _EMULATED
        _EMULATED = self._outer


def _i(v) -> np.int32:
    return np.int32(v)


def _t(v, dtype):
    return np.dtype(dtype).type(v)


def _c(cupy, a):
    return cupy.ascontiguousarray(a)


# ---- convolution: im2col gather and col2im sum -------------------------------------------------

IM2COL = kernel("im2col", r'''
extern "C" __global__ void im2col(const T* src, T* cols, long long total, int H, int W, int Ntot,
                                  int n0, int n, int fs, int my, int mx, int pad, int stride) {
  GRID_LOOP(i, total) {
    long long r = i;
    int j = r % n; r /= n;
    int ox = r % mx; r /= mx;
    int oy = r % my; r /= my;
    int fx = r % fs; r /= fs;
    int fy = r % fs; r /= fs;
    long long c = r;
    int y = pad + oy * stride + fy, x = pad + ox * stride + fx;
    cols[i] = (y >= 0 && y < H && x >= 0 && x < W) ? src[((c * H + y) * W + x) * (long long)Ntot + n0 + j]
                                                 : (T)0;
  }
}
''')


def _im2col_twin(x4, g, n0, n):
    from port.cudaconv2.filter_acts import im2col_into, pad_images  # noqa: PLC0415

    x = x4[..., n0:n0 + n]
    cols = np.empty((x4.shape[0], g.filter_size, g.filter_size, g.num_modules_y,
                     g.num_modules_x, n), dtype=x4.dtype)
    im2col_into(cols, pad_images(x, g), g)
    return cols.reshape(x4.shape[0] * g.filter_pixels, g.num_modules * n)


def im2col(x4, g, n0: int = 0, n: int | None = None):
    """(C, H, W, N) images (zero outside, as the geometry pads them), cases [n0, n0 + n) →
    the (C·fs², mY·mX·n) im2col matrix, rows (c, fy, fx), columns (my, mx, case): one gather.
    Its rows split as (G, fc·fs²) per group."""
    m = module_of(x4)
    n = x4.shape[-1] - n0 if n is None else n
    r = _twin_path(m, "im2col", _im2col_twin, (x4, g, n0, n))
    if r is not _DEVICE:
        return r
    x4 = _c(m, x4)
    C, H, W, N = x4.shape
    cols = m.empty((C * g.filter_pixels, g.num_modules * n), dtype=x4.dtype)
    _launch("im2col", cols.size, x4.dtype, x4, cols, np.int64(cols.size), _i(H), _i(W), _i(N),
            _i(n0), _i(n), _i(g.filter_size), _i(g.num_modules_y), _i(g.num_modules_x),
            _i(g.padding_start), _i(g.module_stride))
    return cols


COL2IM = kernel("col2im", r'''
extern "C" __global__ void col2im(const T* cols, T* out, long long total, int H, int W, int n,
                                  int fs, int my, int mx, int pad, int stride) {
  GRID_LOOP(i, total) {
    long long r = i;
    int j = r % n; r /= n;
    int x = r % W; r /= W;
    int y = r % H; r /= H;
    long long c = r;
    T acc = 0;
    for (int fy = 0; fy < fs; ++fy) {
      int ty = y - pad - fy;
      if (ty < 0 || ty % stride) continue;
      int oy = ty / stride;
      if (oy >= my) continue;
      for (int fx = 0; fx < fs; ++fx) {
        int tx = x - pad - fx;
        if (tx < 0 || tx % stride) continue;
        int ox = tx / stride;
        if (ox >= mx) continue;
        acc += cols[((((c * fs + fy) * fs + fx) * my + oy) * mx + ox) * (long long)n + j];
      }
    }
    out[i] = acc;
  }
}
''')


def _col2im_twin(cols, g, n):
    from port.cudaconv2.filter_acts import col2im as col2im_np  # noqa: PLC0415

    c = cols.shape[0] // g.filter_pixels
    return col2im_np(cols.reshape(c, g.filter_size, g.filter_size, g.num_modules_y,
                                  g.num_modules_x, n), g, cols.dtype)


def col2im(cols, g, n: int):
    """The adjoint of :func:`im2col`: (C·fs², mY·mX·n) → (C, H, W, n), each pixel the sum of the
    columns that read it, in (fy, fx) order (a gather: no atomics, the same order as the twin)."""
    m = module_of(cols)
    r = _twin_path(m, "col2im", _col2im_twin, (cols, g, n))
    if r is not _DEVICE:
        return r
    cols = _c(m, cols)
    c = cols.shape[0] // g.filter_pixels
    out = m.empty((c, g.img_size_y, g.img_size_x, n), dtype=cols.dtype)
    _launch("col2im", out.size, cols.dtype, cols, out, np.int64(out.size), _i(g.img_size_y),
            _i(g.img_size_x), _i(n), _i(g.filter_size), _i(g.num_modules_y), _i(g.num_modules_x),
            _i(g.padding_start), _i(g.module_stride))
    return out


# ---- pooling -----------------------------------------------------------------------------------

POOL = kernel("local_pool", r'''
extern "C" __global__ void local_pool(const T* src, T* out, long long total, int S, int O, int n,
                                      int subs, int start, int stride, int mode, T base) {
  // mode 0 max (fmax from base = -2e38, as MaxPooler: NaN skipped, nothing below the base),
  // 1 avg (sum / clipped area), 2 maxabs (last on ties)
  GRID_LOOP(i, total) {
    long long r = i;
    int j = r % n; r /= n;
    int ox = r % O; r /= O;
    int oy = r % O; r /= O;
    long long c = r;
    int y0 = start + oy * stride, x0 = start + ox * stride;
    T acc = mode == 0 ? base : (T)0;
    for (int dy = 0; dy < subs; ++dy) {
      for (int dx = 0; dx < subs; ++dx) {
        int y = y0 + dy, x = x0 + dx;
        T v = (y >= 0 && y < S && x >= 0 && x < S) ? src[((c * S + y) * S + x) * (long long)n + j] : base;
        if (mode == 0) acc = fmax(acc, v);
        else if (dy == 0 && dx == 0) acc = v;
        else if (mode == 1) acc += v;
        else acc = (fabs(acc) > fabs(v)) ? acc : v;
      }
    }
    if (mode == 1) {
      int ey = min(S, y0 + subs) - max(0, y0), ex = min(S, x0 + subs) - max(0, x0);
      acc /= (T)ey * (T)ex;
    }
    out[i] = acc;
  }
}
''')
_POOL_MODES = {"max": 0, "avg": 1, "maxabs": 2}


def conv_local_pool(images, num_filters, subs_x, start_x, stride_x, outputs_x, pooler):
    """:func:`port.cudaconv2.conv_local_pool` (its twin) as one launch on the device.

    Ports: cuda-convnet-r561/include/cudaconv2/conv_util.cuh:126-190 kLocalPool
    Ports: cuda-convnet-r561/include/cudaconv2/conv_util.cuh:71-108 MaxAbsPooler
    """
    from port import cudaconv2 as cc  # noqa: PLC0415
    from port.cudaconv2.conv_util import MAX_POOL_BASE  # noqa: PLC0415

    args = (images, num_filters, subs_x, start_x, stride_x, outputs_x, pooler)
    m = module_of(images)
    r = _twin_path(m, "local_pool", cc.conv_local_pool, args)
    if r is not _DEVICE:
        return r
    images = _c(m, images)
    S = int(round((images.shape[0] // num_filters) ** 0.5))
    n = images.shape[1]
    out = m.empty((num_filters * outputs_x * outputs_x, n), dtype=images.dtype)
    base = {"max": MAX_POOL_BASE, "avg": 0.0, "maxabs": 0.0}[pooler]
    _launch("local_pool", out.size, images.dtype, images, out, np.int64(out.size), _i(S),
            _i(outputs_x), _i(n), _i(subs_x), _i(start_x), _i(stride_x), _i(_POOL_MODES[pooler]),
            _t(base, images.dtype))
    return out


POOL_UNDO = kernel("local_pool_undo", r'''
extern "C" __global__ void local_pool_undo(const T* x, const T* acts, const T* grads, T* out,
                                           long long total, int S, int O, int n, int subs,
                                           int start, int stride, int avg) {
  // each pixel gathers from the windows that hold it, in its twin's order: max undo (avg = 0)
  // (img == max)·grad with offsets last to first (its outputs ascending, as kLocalMaxUndo; a 0·inf
  // or 0·NaN term is NaN), avg undo (avg = 1) the gradient over the window area, offsets first to last
  GRID_LOOP(i, total) {
    long long r = i;
    int j = r % n; r /= n;
    int px = r % S; r /= S;
    int py = r % S; r /= S;
    long long c = r;
    T acc = 0;
    T xv = avg ? (T)0 : x[i];
    for (int ky = 0; ky < subs; ++ky) {
      int dy = avg ? ky : subs - 1 - ky;
      int ty = py - start - dy;
      if (ty < 0 || ty % stride) continue;
      int oy = ty / stride;
      if (oy >= O) continue;
      for (int kx = 0; kx < subs; ++kx) {
        int dx = avg ? kx : subs - 1 - kx;
        int tx = px - start - dx;
        if (tx < 0 || tx % stride) continue;
        int ox = tx / stride;
        if (ox >= O) continue;
        long long o = ((c * O + oy) * O + ox) * (long long)n + j;
        if (avg) {
          int y0 = start + oy * stride, x0 = start + ox * stride;
          int ey = min(S, y0 + subs) - max(0, y0), ex = min(S, x0 + subs) - max(0, x0);
          acc += grads[o] / ((T)ey * (T)ex);
        } else {
          T g = grads[o];
          acc += (xv == acts[o]) ? g : g - g;  // 0·g: +0, or NaN for an inf or NaN gradient
        }
      }
    }
    out[i] = acc;
  }
}
''')


def _pool_undo(m, images, acts, grads, C, S, subs_x, start_x, stride_x, outputs_x, avg):
    grads = _c(m, grads)
    n = grads.shape[1]
    out = m.empty((C * S * S, n), dtype=grads.dtype)
    _launch("local_pool_undo", out.size, grads.dtype, _c(m, images), _c(m, acts), grads, out,
            np.int64(out.size), _i(S), _i(outputs_x), _i(n), _i(subs_x), _i(start_x),
            _i(stride_x), _i(int(avg)))
    return out


def conv_local_max_undo(images, max_grads, max_acts, subs_x, start_x, stride_x, outputs_x):
    """:func:`port.cudaconv2.conv_local_max_undo` (its twin) as one launch on the device.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1496-1587 kLocalMaxUndo
    """
    from port import cudaconv2 as cc  # noqa: PLC0415

    args = (images, max_grads, max_acts, subs_x, start_x, stride_x, outputs_x)
    m = module_of(images, max_grads, max_acts)
    r = _twin_path(m, "local_pool_undo", cc.conv_local_max_undo, args)
    if r is not _DEVICE:
        return r
    C = max_grads.shape[0] // (outputs_x * outputs_x)
    S = int(round((images.shape[0] // C) ** 0.5))
    return _pool_undo(m, images, max_acts, max_grads, C, S, subs_x, start_x, stride_x, outputs_x, False)


def conv_local_avg_undo(avg_grads, subs_x, start_x, stride_x, outputs_x, img_size):
    """:func:`port.cudaconv2.conv_local_avg_undo` (its twin) as one launch on the device.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1392-1475 kLocalAvgUndo
    """
    from port import cudaconv2 as cc  # noqa: PLC0415

    args = (avg_grads, subs_x, start_x, stride_x, outputs_x, img_size)
    m = module_of(avg_grads)
    r = _twin_path(m, "local_pool_undo", cc.conv_local_avg_undo, args)
    if r is not _DEVICE:
        return r
    C = avg_grads.shape[0] // (outputs_x * outputs_x)
    return _pool_undo(m, avg_grads, avg_grads, avg_grads, C, img_size, subs_x, start_x, stride_x,
                      outputs_x, True)


# ---- normalizations ----------------------------------------------------------------------------
# Within-map (rnorm, cnorm): windows over the S×S map; cross-map (cmrnorm): windows over the C
# maps, clipped or in aligned blocks. Forward: d = k + α·Σ_W u², y = x·d^(−β); undo:
# g·d^(−β) + x·Σ_{q: p ∈ W(q)} (−2αβ)·g_q·y_q/d_q, the neighbours' terms computed in place.

NORM_SRC = r'''
__device__ __forceinline__ void norm_window(int cross, int blocked, long long c, int C, int y,
                                            int x, int S, int lo, int size, int* a0, int* a1,
                                            int* b0, int* b1) {
  if (cross) {                            // over maps: [a0, a1) of c; one pixel
    if (blocked) { *a0 = (c / size) * size; *a1 = min(C, *a0 + size); }
    else { *a0 = max(0, (int)c + lo); *a1 = min(C, (int)c + lo + size); }
    *b0 = y; *b1 = y + 1;                 // unused pair for the rows: one row, one column
  } else {                                // over the map: rows [a0, a1), columns [b0, b1)
    *a0 = max(0, y + lo); *a1 = min(S, y + lo + size);
    *b0 = max(0, x + lo); *b1 = min(S, x + lo + size);
  }
}

extern "C" __global__ void NORM_FWD(const T* xin, const T* md, T* out, T* denoms, long long total,
                                    int C, int S, int n, int lo, int size, int cross, int blocked,
                                    T k, T alpha, T beta) {
  GRID_LOOP(i, total) {
    long long r = i;
    int j = r % n; r /= n;
    int x = r % S; r /= S;
    int y = r % S; r /= S;
    long long c = r;
    int a0, a1, b0, b1;
    norm_window(cross, blocked, c, C, y, x, S, lo, size, &a0, &a1, &b0, &b1);
    T s = 0;
    if (cross) {
      for (int f = a0; f < a1; ++f) { T u = md[((f * (long long)S + y) * S + x) * n + j]; s += u * u; }
    } else {
      for (int yy = a0; yy < a1; ++yy)
        for (int xx = b0; xx < b1; ++xx) { T u = md[((c * S + yy) * S + xx) * n + j]; s += u * u; }
    }
    T d = k + alpha * s;
    denoms[i] = d;
    out[i] = xin[i] * pow(d, -beta);
  }
}

extern "C" __global__ void NORM_UNDO(const T* g, const T* denoms, const T* xin, const T* acts,
                                     T* out, long long total, int C, int S, int n, int lo_t,
                                     int size, int cross, int blocked, T coef, T beta) {
  GRID_LOOP(i, total) {
    long long r = i;
    int j = r % n; r /= n;
    int x = r % S; r /= S;
    int y = r % S; r /= S;
    long long c = r;
    int a0, a1, b0, b1;
    norm_window(cross, blocked, c, C, y, x, S, lo_t, size, &a0, &a1, &b0, &b1);
    T s = 0;
    if (cross) {
      for (int f = a0; f < a1; ++f) {
        long long q = ((f * (long long)S + y) * S + x) * n + j;
        s += coef * g[q] * acts[q] / denoms[q];
      }
    } else {
      for (int yy = a0; yy < a1; ++yy)
        for (int xx = b0; xx < b1; ++xx) {
          long long q = ((c * S + yy) * S + xx) * n + j;
          s += coef * g[q] * acts[q] / denoms[q];
        }
    }
    out[i] = xin[i] * s + g[i] * pow(denoms[i], -beta);
  }
}
'''
NORM_SRC = NORM_SRC.replace("NORM_FWD", "norm_fwd").replace("NORM_UNDO", "norm_undo")
NORM_FWD = kernel("norm_fwd", NORM_SRC)
NORM_UNDO = kernel("norm_undo", NORM_SRC)             # one source, both kernels


def _norm_fwd(m, images, md, C, lo, size, cross, blocked, k, alpha, beta):
    images, md = _c(m, images), _c(m, md)
    n = images.shape[1]
    S = int(round((images.shape[0] // C) ** 0.5))
    out, denoms = m.empty_like(images), m.empty_like(images)
    dt = images.dtype
    _launch("norm_fwd", out.size, dt, images, md, out, denoms, np.int64(out.size), _i(C), _i(S),
            _i(n), _i(lo), _i(size), _i(int(cross)), _i(int(blocked)), _t(k, dt), _t(alpha, dt),
            _t(beta, dt))
    return out, denoms


def _norm_undo(m, grads, denoms, inputs, acts, C, lo_t, size, cross, blocked, alpha, beta):
    grads, denoms, inputs, acts = (_c(m, a) for a in (grads, denoms, inputs, acts))
    n = grads.shape[1]
    S = int(round((grads.shape[0] // C) ** 0.5))
    out = m.empty_like(grads)
    dt = grads.dtype
    _launch("norm_undo", out.size, dt, grads, denoms, inputs, acts, out, np.int64(out.size), _i(C),
            _i(S), _i(n), _i(lo_t), _i(size), _i(int(cross)), _i(int(blocked)),
            _t(-2 * alpha * beta, dt), _t(beta, dt))
    return out


def conv_contrast_norm(images, mean_diffs, num_filters, size_x, add_scale, pow_scale):
    """:func:`port.cudaconv2.conv_contrast_norm` (its twin) as one launch on the device.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:746-808 kCNorm_fewfilter
    """
    from port import cudaconv2 as cc  # noqa: PLC0415

    args = (images, mean_diffs, num_filters, size_x, add_scale, pow_scale)
    m = module_of(images, mean_diffs)
    r = _twin_path(m, "norm_fwd", cc.conv_contrast_norm, args)
    if r is not _DEVICE:
        return r
    return _norm_fwd(m, images, mean_diffs, num_filters, -(size_x // 2), size_x, False, False, 1.0,
                     add_scale, pow_scale)


def conv_response_norm(images, num_filters, size_x, add_scale, pow_scale):
    """:func:`port.cudaconv2.conv_response_norm` (its twin) as one launch on the device.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2064-2066 convResponseNorm
    """
    return conv_contrast_norm(images, images, num_filters, size_x, add_scale, pow_scale)


def conv_response_norm_undo(out_grads, denoms, inputs, acts, num_filters, size_x, add_scale,
                            pow_scale):
    """:func:`port.cudaconv2.conv_response_norm_undo` (its twin) as one launch on the device.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1628-1712 kRNormUndo
    """
    from port import cudaconv2 as cc  # noqa: PLC0415

    args = (out_grads, denoms, inputs, acts, num_filters, size_x, add_scale, pow_scale)
    m = module_of(out_grads, denoms, inputs, acts)
    r = _twin_path(m, "norm_undo", cc.conv_response_norm_undo, args)
    if r is not _DEVICE:
        return r
    return _norm_undo(m, out_grads, denoms, inputs, acts, num_filters, -size_x + size_x // 2 + 1,
                      size_x, False, False, add_scale, pow_scale)


def conv_contrast_norm_undo(out_grads, denoms, mean_diffs, acts, num_filters, size_x, add_scale,
                            pow_scale):
    """:func:`port.cudaconv2.conv_contrast_norm_undo` (its twin) as one launch on the device.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:2214-2217 convContrastNormUndo
    """
    return conv_response_norm_undo(out_grads, denoms, mean_diffs, acts, num_filters, size_x,
                                   add_scale, pow_scale)


def conv_response_norm_cross_map(images, num_filters, size_f, add_scale, pow_scale, min_div,
                                 blocked):
    """:func:`port.cudaconv2.conv_response_norm_cross_map` (its twin) as one launch on the device.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1038-1089 kFCNorm
    """
    from port import cudaconv2 as cc  # noqa: PLC0415

    args = (images, num_filters, size_f, add_scale, pow_scale, min_div, blocked)
    m = module_of(images)
    r = _twin_path(m, "norm_fwd", cc.conv_response_norm_cross_map, args)
    if r is not _DEVICE:
        return r
    return _norm_fwd(m, images, images, num_filters, -(size_f // 2), size_f, True, blocked,
                     min_div, add_scale, pow_scale)


def conv_response_norm_cross_map_undo(out_grads, denoms, inputs, acts, num_filters, size_f,
                                      add_scale, pow_scale, blocked):
    """:func:`port.cudaconv2.conv_response_norm_cross_map_undo` (its twin), one launch on the device.

    Ports: cuda-convnet-r561/src/cudaconv2/conv_util.cu:1112-1179 kFRNormUndo
    """
    from port import cudaconv2 as cc  # noqa: PLC0415

    args = (out_grads, denoms, inputs, acts, num_filters, size_f, add_scale, pow_scale, blocked)
    m = module_of(out_grads, denoms, inputs, acts)
    r = _twin_path(m, "norm_undo", cc.conv_response_norm_cross_map_undo, args)
    if r is not _DEVICE:
        return r
    return _norm_undo(m, out_grads, denoms, inputs, acts, num_filters, -size_f + size_f // 2 + 1,
                      size_f, True, blocked, add_scale, pow_scale)


# ---- dropout -----------------------------------------------------------------------------------

DROPOUT = kernel("dropout", r'''
__device__ __forceinline__ unsigned int mix32(unsigned int x) {   // lowbias32, as port.backend
  x ^= x >> 16; x *= 0x7FEB352Du; x ^= x >> 15; x *= 0x846CA68Bu; x ^= x >> 16; return x;
}
extern "C" __global__ void dropout(const T* x, T* acts, T* mask, long long total,
                                   unsigned int key_lo, unsigned int key_hi, T keep) {
  GRID_LOOP(i, total) {
    unsigned int b = (unsigned int)i * 0x9E3779B9u + key_lo;
    b = mix32(mix32(b) ^ key_hi) >> 8;
    T u = (T)b * (T)5.9604644775390625e-08;       // 2^-24
    T k = (u < keep) ? (T)1 : (T)0;
    mask[i] = k;
    acts[i] = x[i] * k;
  }
}
''')


def _dropout_twin(x, key: int, keep: float):
    """The NumPy lines of port.backend.uniform and HiddenSexLayer, for a drawn key."""
    m = np
    b = m.arange(x.size, dtype=m.uint32)
    b *= m.uint32(backend._GOLDEN)
    b += m.uint32(key & 0xFFFFFFFF)
    b = backend._mix32(m, b)
    b ^= m.uint32(key >> 32)
    b = backend._mix32(m, b) >> m.uint32(8)
    u = (b.astype(x.dtype) * np.dtype(x.dtype).type(2.0 ** -24)).reshape(x.shape)
    mask = (u < keep).astype(x.dtype)
    return x * mask, mask


def dropout(x, rng: np.random.Generator, keep: float):
    """(acts, mask): x·mask with mask = [U < keep], U drawn as :func:`port.backend.uniform` draws
    it (the same key from ``rng``, the same bits): one launch on the device."""
    m = module_of(x)
    key = int(rng.integers(0, 2 ** 64, dtype=np.uint64))
    r = _twin_path(m, "dropout", _dropout_twin, (x, key, keep))
    if r is not _DEVICE:
        return r
    x = _c(m, x)
    acts, mask = m.empty_like(x), m.empty_like(x)
    _launch("dropout", x.size, x.dtype, x, acts, mask, np.int64(x.size), np.uint32(key & 0xFFFFFFFF),
            np.uint32(key >> 32), _t(keep, x.dtype))
    return acts, mask


# ---- weight updates ----------------------------------------------------------------------------

SGD = kernel("sgd_update", r'''
extern "C" __global__ void sgd_update(T* w, T* inc, const T* grad, long long total, int has_grad,
                                      T mom, T eps, int decay, T wc_eps) {
  // inc = mom·inc + eps·grad (has_grad); inc −= wc_eps·w (decay); w += inc
  GRID_LOOP(i, total) {
    T v = inc[i];
    if (has_grad) { v *= mom; v += eps * grad[i]; }
    if (decay) v -= wc_eps * w[i];
    inc[i] = v;
    w[i] += v;
  }
}
''')


def _sgd_twin(w, inc, grad, mom, eps, wc_eps):
    if grad is not None:
        inc *= mom
        inc += eps * grad
    if wc_eps is not None:
        inc -= wc_eps * w
    w += inc
    return None


def sgd_update(w, inc, grad, mom: float, eps: float, wc_eps: float | None) -> None:
    """In place: ``inc = mom·inc + eps·grad`` (when ``grad`` is given), ``inc −= wc_eps·w`` (when
    ``wc_eps`` is given), ``w += inc``: the NumPy lines of :meth:`port.weights.Weights.update`,
    one launch on the device.

    Ports: alexnet-2012/src/weights.cu:146-198 Weights::update
    """
    m = module_of(w)
    if _twin_path(m, "sgd_update", _sgd_twin, (w, inc, grad, mom, eps, wc_eps)) is not _DEVICE:
        return None
    dt = w.dtype
    _launch("sgd_update", w.size, dt, w, inc, grad if grad is not None else w, np.int64(w.size),
            _i(grad is not None), _t(mom, dt), _t(eps, dt), _i(wc_eps is not None),
            _t(wc_eps or 0.0, dt))
    return None


AXPBY = kernel("scale_add", r'''
extern "C" __global__ void scale_add(T* y, const T* x, long long total, int scale_y, T a, T b) {
  GRID_LOOP(i, total) {                    // y = a·y + b·x (scale_y), else y += b·x
    T v = y[i];
    if (scale_y) v *= a;
    y[i] = v + b * x[i];
  }
}
''')


def _scale_add_twin(y, x, a, b):
    if a is not None:
        y *= a
    y += b * x
    return None


def scale_add(y, x, a: float | None, b: float) -> None:
    """In place: ``y *= a`` (when ``a`` is given), then ``y += b·x``: one launch on the device."""
    m = module_of(y)
    if _twin_path(m, "scale_add", _scale_add_twin, (y, x, a, b)) is not _DEVICE:
        return None
    dt = y.dtype
    _launch("scale_add", y.size, dt, y, _c(m, x), np.int64(y.size), _i(a is not None),
            _t(a or 0.0, dt), _t(b, dt))
    return None


# ---- the batch: pinned host memory, a stream of its own, the next one prefetched ---------------

class BatchUploader:
    """Uploads a batch's matrices to the device (CuPy): converted into pinned host buffers (two
    sets, alternating), copied on a stream of their own, and the compute stream made to wait for
    that copy only (an event, no host synchronisation). :meth:`prefetch` starts the next batch's
    copy while the current step computes; :meth:`take` returns the device matrices, using the
    prefetched copy when it is of the same host arrays. Elsewhere (NumPy, the strict stand-in),
    and for matrices already on the device, it is what ``ConvNet._to_device`` did before.

    NOT YET RUN ON A GPU (see the module docstring)."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self._stream = None
        self._sets: list = [[], []]          # pinned buffers, (events of their last copy)
        self._events = [None, None]
        self._turn = 0
        self._pending = None                 # (ids of the host arrays, device arrays, event)

    def _cupy(self):
        m = backend.xp()
        return m if m.__name__ == "cupy" else None

    def prefetch(self, data: list) -> None:
        cp = self._cupy()
        if cp is None:
            return
        import cupyx  # noqa: PLC0415

        if self._stream is None:
            self._stream = cp.cuda.Stream(non_blocking=True)
        t = self._turn
        self._turn ^= 1
        if self._events[t] is not None:
            self._events[t].synchronize()    # the copy out of these buffers, two batches ago
        bufs = self._sets[t]
        dev = []
        for i, d in enumerate(data):
            if i >= len(bufs) or bufs[i].shape != d.shape:
                bufs[i:i + 1] = [cupyx.empty_pinned(d.shape, dtype=self.dtype)]
            np.copyto(bufs[i], d, casting="unsafe")
            a = cp.empty(d.shape, dtype=self.dtype)
            a.set(bufs[i], stream=self._stream)
            dev.append(a)
        ev = self._stream.record()
        self._events[t] = ev
        self._pending = (tuple(id(d) for d in data), dev, ev)

    def take(self, data: list) -> list:
        cp = self._cupy()
        if cp is None or any(backend.get_array_module(d) is not np for d in data):
            return [d.astype(self.dtype, copy=False) if backend.get_array_module(d) is not np  # on the
                    else backend.to_device(np.asarray(d, dtype=self.dtype)) for d in data]  # device already
        if self._pending is None or self._pending[0] != tuple(id(d) for d in data):
            self.prefetch(data)
        _, dev, ev = self._pending
        self._pending = None
        cp.cuda.get_current_stream().wait_event(ev)
        return dev


# ---- compiling without a GPU -------------------------------------------------------------------

def nvcc() -> str | None:
    """The CUDA compiler: $ALEXNET_NVCC, nvcc on PATH, /usr/local/cuda/bin/nvcc, or the
    nvidia-cuda-nvcc wheel's (``pip install -e '.[kernels]'``, which CI installs), as
    ``python -m archive.kernels`` finds it; None when there is none."""
    import importlib.util  # noqa: PLC0415

    cands = [os.environ.get("ALEXNET_NVCC"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"]
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        cands.append(str(Path(root) / "cu13" / "bin" / "nvcc"))
    for c in cands:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    return None


def translation_unit(dtype) -> str:
    """Every kernel's source once (kernels that share a source share it), for ``T`` = dtype."""
    t = {"float32": "float", "float64": "double"}[np.dtype(dtype).name]
    sources = list(dict.fromkeys(k.source for k in KERNELS.values()))
    return f"#define T {t}\n{_BOUNDS}\n" + "\n".join(sources)


def compile_sources(archs=ARCHS, dtypes=("float32", "float64"), compiler: str | None = None) -> list:
    """Compile every kernel for every architecture and dtype with nvcc (a fatbin; no GPU needed),
    one translation unit per dtype. Returns the kernel names compiled; raises RuntimeError with
    the compiler's message on failure."""
    cc = compiler or nvcc()
    if cc is None:
        raise RuntimeError("no nvcc (set $ALEXNET_NVCC, put nvcc on PATH or pip install -e '.[kernels]')")
    with tempfile.TemporaryDirectory() as d:
        for dt in dtypes:
            src = Path(d) / f"kernels_{dt}.cu"
            src.write_text(translation_unit(dt))
            cmd = [cc, "-fatbin", "-o", str(src.with_suffix(".fatbin"))]
            for a in archs:
                cmd += ["-gencode", f"arch=compute_{a[3:]},code={a}"]
            p = subprocess.run(cmd + [str(src)], capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError(f"kernels ({dt}): nvcc failed:\n{p.stderr.strip()}")
            if "warning" in p.stderr:
                raise RuntimeError(f"kernels ({dt}): nvcc warned:\n{p.stderr.strip()}")
    return sorted(KERNELS)


if __name__ == "__main__":
    if sys.argv[1:] != ["--compile"]:
        sys.exit("usage: python -m port.device_kernels --compile   (nvcc, sm_80 and sm_90; no GPU needed)")
    try:
        r = compile_sources()
    except RuntimeError as e:
        sys.exit(f"port.device_kernels: {e}")
    print(f"compiled {len(r)} kernels (float32, float64) for {', '.join(ARCHS)}: {', '.join(r)}")
