"""``python -m benchmarks.parallel``: data-parallel training (port/parallel.py) with 1 and 2 ranks.

For each rank count it starts ``mpiexec -n N python -m benchmarks.parallel --worker`` (each rank
given cores/N threads), and reports:

* training steps/s and images/s of a net (default layers-80sec, global minibatch 128) on random
  data, and the part of each step spent in the gradient allreduce;
* the allreduce alone for a big net (default layers-145, 60 M parameters): the bytes each rank
  sums per step (the gradient buffers) and the time one step's allreduce takes.

Results go to stdout as a table and to benchmarks/results/<time>-parallel.json. Timings depend
on the machine and its load; they are never asserted in tests.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import nets
from benchmarks.timing import save_report
from port.errors import ArgumentParser, UserError, main_guard


def _mpiexec() -> str | None:
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.is_file() else shutil.which("mpiexec")


def parse_args(argv):
    ap = ArgumentParser(prog="python -m benchmarks.parallel", description=__doc__.split("\n\n")[0])
    ap.add_argument("--net", default="layers-80sec", choices=sorted(nets.NETS), help="net trained for steps/s")
    ap.add_argument("--big-net", default="layers-145", choices=sorted(nets.NETS),
                    help="net whose gradient allreduce is timed alone")
    ap.add_argument("--ranks", default="1,2", help="rank counts to run (default 1,2)")
    ap.add_argument("--minibatch", type=int, default=128, help="global minibatch (default 128)")
    ap.add_argument("--steps", type=int, default=10, help="timed training steps (default 10)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    ap.add_argument("--reduces", type=int, default=5, help="timed allreduces of the big net (default 5)")
    ap.add_argument("--bucket-mb", type=int, default=64, help="gradient buffer size, MiB (default 64)")
    ap.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/*.json")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


# ---- a rank ---------------------------------------------------------------------------------------

def _model(name: str, minibatch: int):
    from port import model  # noqa: PLC0415
    from port.layer_def import guess_data_dims  # noqa: PLC0415
    from port.layer import parse_layers  # noqa: PLC0415

    d, p, nc = nets.release_files(name)
    layers = parse_layers(d, p, {"num_gpus": 2, "seed": 0, "data_dims": guess_data_dims(d)})
    dims = {l["dataIdx"]: l["outputs"] for l in layers.values() if l["type"] == "data"}
    return model.ConvNet(layers, minibatch_size=minibatch, rng=0), nets.random_batch(dims, nc, minibatch)


def worker(a) -> int:
    from port import backend, parallel  # noqa: PLC0415

    backend.set_backend("numpy")
    dp = parallel.DataParallel.start(hash_freq=0, bucket_mb=a.bucket_mb)
    out: dict = {"ranks": dp.size}
    net, data = _model(a.net, a.minibatch)
    dp.attach(net)
    times, reduce_s = [], []
    for i in range(a.warmup + a.steps):
        dp.comm.Barrier()
        dp.reduce_seconds = 0.0
        t = time.perf_counter()
        net.start_batch(data, 0.0)
        net.finish_batch()
        if i >= a.warmup:
            times.append(time.perf_counter() - t)
            reduce_s.append(dp.reduce_seconds)
    med = statistics.median(times)
    out["train"] = {"net": a.net, "minibatch": a.minibatch, "step_s": times, "median_step_s": med,
                    "steps_per_s": 1 / med, "images_per_s": a.minibatch / med,
                    "allreduce_median_s": statistics.median(reduce_s),
                    "bytes_per_step": dp.buckets.nbytes, "buffers": len(dp.buckets.buffers)}
    del net
    if nets.release_files(a.big_net) is not None:
        big, _ = _model(a.big_net, a.minibatch)
        b = parallel.GradientBuckets(big, dp.engine(), a.bucket_mb << 20)
        for buf in b.buffers:
            buf[...] = 1.0
        rt = []
        for _ in range(1 + a.reduces):
            dp.comm.Barrier()
            t = time.perf_counter()
            for buf in b.buffers:
                dp.engine()(buf)
            rt.append(time.perf_counter() - t)
        med = statistics.median(rt[1:])
        out["allreduce"] = {"net": a.big_net, "parameters": sum(int(x.size) for x in b.buffers) - b.num_flags,
                            "bytes_per_step": b.nbytes, "buffers": len(b.buffers), "times_s": rt[1:],
                            "median_s": med, "gb_per_s": b.nbytes / med / 1e9}
    if dp.is_root:
        print("RESULT " + json.dumps(out), flush=True)
    return 0


# ---- the launcher ---------------------------------------------------------------------------------

def table(results: list[dict]) -> str:
    rows = [f"{'ranks':>5} {'net':13} {'steps/s':>8} {'img/s':>7} {'allreduce/step':>15} {'MB/step':>8}"
            f"   {'big net':11} {'MB/step':>8} {'allreduce':>10} {'GB/s':>6}", "-" * 96]
    for r in results:
        t, ar = r["train"], r.get("allreduce")
        rate = f"{ar['gb_per_s']:6.2f}" if ar and r["ranks"] > 1 else f"{'—':>6}"   # 1 rank: nothing moves
        big = (f"{ar['net']:11} {ar['bytes_per_step'] / 1e6:8.1f} {1000 * ar['median_s']:8.1f} ms {rate}"
               if ar else "(big net not fetched)")
        rows.append(f"{r['ranks']:5d} {t['net']:13} {t['steps_per_s']:8.2f} {t['images_per_s']:7.0f} "
                    f"{1000 * t['allreduce_median_s']:12.1f} ms {t['bytes_per_step'] / 1e6:8.2f}   {big}")
    return "\n".join(rows)


@main_guard("benchmarks.parallel")
def main(argv=None) -> int:
    a = parse_args(argv)
    if a.worker:
        return worker(a)
    try:
        import mpi4py  # noqa: F401, PLC0415
    except ImportError:
        print("benchmarks.parallel: skipped: mpi4py is not installed (pip install -e '.[mpi]')")
        return 0
    mpiexec = _mpiexec()
    if mpiexec is None:
        print("benchmarks.parallel: skipped: no mpiexec (pip install -e '.[mpi]' brings MPICH's)")
        return 0
    if nets.release_files(a.net) is None:
        print(f"benchmarks.parallel: skipped: {a.net} needs original/alexnet-2012 (make original)")
        return 0
    try:
        ranks = [int(x) for x in a.ranks.split(",")]
    except ValueError:
        raise UserError(f"--ranks={a.ranks}: expected comma-separated integers") from None
    cores = os.cpu_count() or 1
    report = {"time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.machine(),
              "cpu_count": cores, "loadavg_start": list(os.getloadavg()), "results": []}
    args = [f"--net={a.net}", f"--big-net={a.big_net}", f"--minibatch={a.minibatch}", f"--steps={a.steps}",
            f"--warmup={a.warmup}", f"--reduces={a.reduces}", f"--bucket-mb={a.bucket_mb}"]
    for n in ranks:
        threads = str(max(1, cores // n))
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
               "MKL_NUM_THREADS": threads, "NUMBA_NUM_THREADS": threads}
        print(f"… {n} rank(s), {threads} thread(s) each", file=sys.stderr, flush=True)
        r = subprocess.run([mpiexec, "-n", str(n), sys.executable, "-m", "benchmarks.parallel", "--worker",
                            *args], capture_output=True, text=True, env=env)
        line = next((x for x in r.stdout.splitlines() if x.startswith("RESULT ")), None)
        if r.returncode != 0 or line is None:
            raise UserError(f"mpiexec -n {n} failed (exit {r.returncode}): "
                            f"{(r.stderr.strip().splitlines() or ['no output'])[-1]}")
        res = json.loads(line[len("RESULT "):])
        res["threads_per_rank"] = int(threads)
        report["results"].append(res)
    report["loadavg_end"] = list(os.getloadavg())
    print(table(report["results"]))
    print(f"(load average {report['loadavg_start'][0]:.1f} at the start, {report['loadavg_end'][0]:.1f} "
          f"at the end, {cores} cores)")
    if not a.no_save:
        print(f"saved {save_report(report, 'parallel')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
