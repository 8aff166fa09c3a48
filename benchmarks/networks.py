"""``python -m benchmarks.networks``: whole networks of the original's cfg files, the port against
its PyTorch twin (:mod:`benchmarks.torchnet`), side by side.

For each net (default layers-80sec, conv-local-13pct, layers-145; minibatch 128; random data
with the cfg's shapes) two worker processes are started, one running the port
(``port.model.ConvNet``), one running the twin, both built from the same parsed layer dicts
(same shapes, same initial weights). The parent drives them in turns: warm-up steps
(excluded), then ``--repeats`` rounds of [port train, torch train, port infer, torch infer],
so the load of a shared machine falls on both alike; each number is the median of the rounds.
Each step's CPU time (all the worker's threads) is recorded too: on a machine shared with other
work it says how much computing each side spent, which the wall clock alone does not.
A training step is forward, cost, backward and weight update of one minibatch
(``start_batch`` / SGD with the cfg's ε, momentum and decay); an inference step is forward and
cost in test mode. Each worker reports its peak resident memory (VmHWM) and the memory it added
after its imports (peak − RSS after imports: weights, activations, buffers), its thread
counts and its BLAS. The port worker then profiles one training step: seconds per layer and
pass (forward, backward to the activations, backward to the weights, update).

A table goes to stdout, the whole record to ``benchmarks/results/<UTC>-networks-<device>.json``.

OpenBLAS: where OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set (some machines set them for old
OpenBLAS builds), the workers run without them, so numpy's BLAS picks its kernel for this
processor (recorded as ``blas.architecture``); ``--keep-openblas-env`` keeps them.

``--device cuda --backend cupy``: the port on CuPy (device synchronised after each step),
torch on CUDA timed with CUDA events. UNTESTED on this project's CPU-only machines; kept
small on purpose for the GPU script (issue 14).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import nets
from benchmarks.timing import save_report
from port import backend
from port.layer_def import guess_data_dims
from port.cudaconv2 import fast
from port.errors import ArgumentParser, UserError, main_guard
from port.layer import parse_layers
from port.model import ConvNet

DEFAULT_NETS = ("layers-80sec", "conv-local-13pct", "layers-145")
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
PASSES = ("fwd", "bwd_acts", "bwd_weights", "update")


# ---------------------------------------------------------------------------------------------
# memory and machine

def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _peak_kib() -> int:
    hwm = _proc_status_kib("VmHWM")
    if hwm is not None:
        return hwm
    import resource  # noqa: PLC0415

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def machine() -> dict:
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        uptime = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        uptime = None
    return {"cpu": model, "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "loadavg": list(os.getloadavg()), "uptime": uptime,
            "openblas_env": {v: os.environ.get(v) for v in OPENBLAS_VARS}}


# ---------------------------------------------------------------------------------------------
# workers (one process per framework and net)

class _Worker:
    """What both workers share: the parsed net, the random batch, the timing of one step."""

    def __init__(self, a):
        self.a = a
        self.rss_after_imports_kib = _proc_status_kib("VmRSS")
        d, p, nc = nets.release_files(a.net)
        self.layers = parse_layers(d, p, {"num_gpus": 2, "seed": 0, "data_dims": guess_data_dims(d)})
        dims = {l["dataIdx"]: l["outputs"] for l in self.layers.values() if l["type"] == "data"}
        self.data = nets.random_batch(dims, nc, a.minibatch, seed=0)

    def timed(self, fn) -> float:
        self.sync()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        self.sync()
        self.last_cpu_s = time.process_time() - c0      # all the process's threads, spinning included
        return time.perf_counter() - t0

    def sync(self) -> None:
        pass

    def stats(self) -> dict:
        peak = _peak_kib()
        return {"peak_rss_mib": peak / 1024,
                "rss_after_imports_mib": (self.rss_after_imports_kib or 0) / 1024,
                "added_mib": (peak - (self.rss_after_imports_kib or 0)) / 1024,
                "threads": self.threads()}

    def threads(self) -> dict:
        try:
            from threadpoolctl import threadpool_info  # noqa: PLC0415
        except ImportError:
            return {"threadpools": "threadpoolctl is not installed"}
        return {"threadpools": [{k: i.get(k) for k in ("internal_api", "num_threads", "architecture",
                                                       "version", "prefix")}
                                for i in threadpool_info()]}


class PortWorker(_Worker):
    def __init__(self, a):
        self.xp = backend.set_backend(a.backend)
        super().__init__(a)
        self.net = ConvNet(self.layers, minibatch_size=a.minibatch, rng=0)

    def sync(self) -> None:
        if self.xp.__name__ == "cupy":
            self.xp.cuda.Device().synchronize()

    def train(self) -> float:
        def step():
            self.net.start_batch(self.data, 0.0)
            self.net.finish_batch()
        return self.timed(step)

    def infer(self) -> float:
        def step():
            self.net.start_batch(self.data, 0.0, test=True)
            self.net.finish_batch()
        return self.timed(step)

    def profile(self) -> dict:
        """One training step with every layer's passes timed (device synchronised per call)."""
        table: dict[str, dict[str, float]] = {}

        def wrap(layer, method, key):
            inner = getattr(layer, method)

            def timed(*args, **kw):
                self.sync()
                t0 = time.perf_counter()
                out = inner(*args, **kw)
                self.sync()
                row = table.setdefault(layer.name, {"type": layer.type, **{p: 0.0 for p in PASSES}})
                row[key] += time.perf_counter() - t0
                return out
            setattr(layer, method, timed)

        for layer in self.net.layers.values():
            for method, key in (("fprop", "fwd"), ("bprop_acts", "bwd_acts"),
                                ("receive_grad", "bwd_acts"), ("bprop_common", "bwd_weights"),
                                ("update_weights", "update")):
                wrap(layer, method, key)
        total = self.train()
        for layer in self.net.layers.values():
            for method in ("fprop", "bprop_acts", "receive_grad", "bprop_common", "update_weights"):
                del layer.__dict__[method]
        rows = [{"layer": n, **r} for n, r in table.items()]
        for r in rows:
            r["total"] = sum(r[p] for p in PASSES)
        rows.sort(key=lambda r: -r["total"])
        accounted = sum(r["total"] for r in rows)
        return {"step_s": total, "other_s": total - accounted, "rows": rows}


class TorchWorker(_Worker):
    def __init__(self, a):
        import torch  # noqa: PLC0415 (torch is optional; only the torch worker loads it)

        from benchmarks import torchnet  # noqa: PLC0415 (imports torch)

        self.torch = torch
        if getattr(a, "tf32", False):
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        else:                            # fp32 products, as the port's (torch's cuDNN default is TF32)
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        super().__init__(a)
        self.device = torch.device(a.device)
        self.net = torchnet.TorchNet(self.layers).to(self.device)
        self.opt = self.net.optimizer()
        self.x = [t.to(self.device) for t in torchnet.to_torch_input(self.net, self.data)]

    def sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def timed(self, fn) -> float:
        if self.device.type != "cuda":
            return super().timed(fn)
        start, end = (self.torch.cuda.Event(enable_timing=True) for _ in range(2))
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000

    def train(self) -> float:
        def step():
            self.opt.zero_grad(set_to_none=True)
            objective, _ = self.net(self.x, "train")
            objective.backward()
            self.opt.step()
        return self.timed(step)

    def infer(self) -> float:
        def step():
            with self.torch.inference_mode():
                self.net(self.x, "test")
        return self.timed(step)

    def threads(self) -> dict:
        t = self.torch
        return {"torch_threads": t.get_num_threads(), "torch_interop_threads": t.get_num_interop_threads(),
                "mkldnn": bool(t.backends.mkldnn.is_available()), **super().threads()}


def worker_main(a) -> int:
    """Serve one command per stdin line (train, infer, profile, stats, quit) with one JSON line."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)                               # stray prints (the parser's log) go to stderr
    w = (PortWorker if a.worker == "port" else TorchWorker)(a)
    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            break
        reply = {"train": w.train, "infer": w.infer, "stats": w.stats,
                 "profile": getattr(w, "profile", dict)}[cmd]()
        out.write(json.dumps({"result": reply, "cpu_s": getattr(w, "last_cpu_s", None)}) + "\n")
    return 0


# ---------------------------------------------------------------------------------------------
# the parent

class _Child:
    def __init__(self, kind: str, a, net: str):
        env = dict(os.environ)
        if fast.OMP_WAIT_POLICY_SET_HERE:       # the port's own choice, not torch's: each child decides
            env.pop("OMP_WAIT_POLICY", None)
        if not a.keep_openblas_env:
            for v in OPENBLAS_VARS:
                env.pop(v, None)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else root
        self.err = tempfile.TemporaryFile(mode="w+")
        cmd = [sys.executable, "-m", "benchmarks.networks", "--worker", kind, "--nets", net,
               "--minibatch", str(a.minibatch), "--device", a.device, "--backend", a.backend]
        if a.tf32:                       # CuPy reads it when it first multiplies; torch: the flag
            env["CUPY_TF32"] = "1"
            cmd.append("--tf32")
        self.kind = kind
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                  text=True, env=env, cwd=root)
        self._read()

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            self.err.seek(0)
            tail = self.err.read()[-2000:]
            raise UserError(f"the {self.kind} worker stopped:\n{tail}")
        return json.loads(line)

    def ask(self, cmd: str):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        reply = self._read()
        self.last_cpu_s = reply.get("cpu_s")
        return reply["result"]

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
        except OSError:
            pass
        try:
            self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
        self.err.close()


def _progress(what: str) -> None:
    print(f"… {what}", file=sys.stderr, flush=True)


def run_net(name: str, a) -> dict:
    if nets.release_files(name) is None:
        return {"net": name, "skipped": "original/alexnet-2012 is not fetched (make original)"}
    _progress(f"{name}: starting the port and torch workers")
    port, torch_ = _Child("port", a, name), _Child("torch", a, name)
    try:
        times = {(w, m): [] for w in ("port", "torch") for m in ("train", "infer")}
        cpu = {(w, m): [] for w in ("port", "torch") for m in ("train", "infer")}
        for r in range(a.warmup + a.repeats):
            _progress(f"{name}: {'warm-up' if r < a.warmup else 'round'} "
                      f"{r + 1 if r < a.warmup else r - a.warmup + 1}")
            for mode in ("train", "infer"):
                for who, child in (("port", port), ("torch", torch_)):
                    t = child.ask(mode)
                    if r >= a.warmup:
                        times[(who, mode)].append(t)
                        cpu[(who, mode)].append(child.last_cpu_s)
        profile = None
        if not a.no_profile:
            _progress(f"{name}: profile of one port training step")
            profile = port.ask("profile")
        stats = {"port": port.ask("stats"), "torch": torch_.ask("stats")}
    finally:
        port.close()
        torch_.close()
    res = {"net": name, "minibatch": a.minibatch, "repeats": a.repeats, "warmup": a.warmup}
    for who in ("port", "torch"):
        res[who] = {f"{mode}_s": times[(who, mode)] for mode in ("train", "infer")}
        for mode in ("train", "infer"):
            med = statistics.median(times[(who, mode)])
            res[who][f"{mode}_median_s"] = med
            res[who][f"{mode}_images_per_s"] = a.minibatch / med
            res[who][f"{mode}_cpu_s"] = cpu[(who, mode)]
            res[who][f"{mode}_cpu_median_s"] = statistics.median(cpu[(who, mode)])
        res[who].update(stats[who])
    for mode in ("train", "infer"):
        res[f"{mode}_ratio"] = res["port"][f"{mode}_images_per_s"] / res["torch"][f"{mode}_images_per_s"]
        res[f"{mode}_cpu_ratio"] = res["torch"][f"{mode}_cpu_median_s"] / res["port"][f"{mode}_cpu_median_s"]
    res["memory_ratio"] = res["port"]["added_mib"] / max(res["torch"]["added_mib"], 1e-9)
    res["profile"] = profile
    return res


def table(results: list[dict]) -> str:
    out = [f"{'net':17} {'pass':6} {'port img/s':>10} {'torch img/s':>11} {'port/torch':>10} "
           f"{'port ms':>9} {'torch ms':>9} {'CPU-s ratio':>11}", "-" * 90]
    for r in results:
        if "skipped" in r:
            out.append(f"{r['net']:17} skipped: {r['skipped']}")
            continue
        for mode in ("train", "infer"):
            p, t = r["port"], r["torch"]
            out.append(f"{r['net'] if mode == 'train' else '':17} {mode:6} {p[f'{mode}_images_per_s']:10.1f} "
                       f"{t[f'{mode}_images_per_s']:11.1f} {r[f'{mode}_ratio']:10.2f} "
                       f"{1000 * p[f'{mode}_median_s']:9.1f} {1000 * t[f'{mode}_median_s']:9.1f} "
                       f"{r[f'{mode}_cpu_ratio']:11.2f}")
    out += ["(port/torch: the port's images/s over torch's, wall clock; CPU-s ratio: torch's CPU seconds "
            "per step over the port's, all threads, spin-waits included)",
            "", f"{'net':17} {'port peak MiB':>13} {'(added)':>8} {'torch peak MiB':>14} {'(added)':>8} "
            f"{'added ratio':>11}", "-" * 78]
    for r in results:
        if "skipped" not in r:
            p, t = r["port"], r["torch"]
            out.append(f"{r['net']:17} {p['peak_rss_mib']:13.0f} {p['added_mib']:8.0f} "
                       f"{t['peak_rss_mib']:14.0f} {t['added_mib']:8.0f} {r['memory_ratio']:11.2f}")
    return "\n".join(out)


def profile_table(r: dict, top: int = 12) -> str:
    pr = r.get("profile")
    if not pr:
        return ""
    step = pr["step_s"]
    sums = {p: sum(row[p] for row in pr["rows"]) for p in PASSES}
    out = [f"\nProfile of one port training step, {r['net']}: {1000 * step:.1f} ms "
           f"(forward {1000 * sums['fwd']:.1f}, backward acts {1000 * sums['bwd_acts']:.1f}, "
           f"backward weights {1000 * sums['bwd_weights']:.1f}, update {1000 * sums['update']:.1f}, "
           f"outside the layers {1000 * pr['other_s']:.1f})",
           f"{'layer':18} {'type':12} {'fwd ms':>8} {'bwd acts':>9} {'bwd wts':>8} {'update':>7} "
           f"{'total':>8} {'share':>6}", "-" * 84]
    for row in pr["rows"][:top]:
        out.append(f"{row['layer']:18} {row['type']:12} {1000 * row['fwd']:8.1f} {1000 * row['bwd_acts']:9.1f} "
                   f"{1000 * row['bwd_weights']:8.1f} {1000 * row['update']:7.1f} "
                   f"{1000 * row['total']:8.1f} {100 * row['total'] / step:5.1f}%")
    if len(pr["rows"]) > top:
        rest = sum(row["total"] for row in pr["rows"][top:])
        more = f"({len(pr['rows']) - top} more layers)"
        out.append(f"{more:31} {'':35}{1000 * rest:8.1f} {100 * rest / step:5.1f}%")
    return "\n".join(out)


def threads_line(r: dict) -> str:
    if "skipped" in r:
        return ""
    p, t = r["port"]["threads"], r["torch"]["threads"]

    def pools(th):
        tp = th.get("threadpools")
        if isinstance(tp, str):
            return tp
        return ", ".join(f"{i['internal_api']} {i['num_threads']}"
                         + (f" ({i['architecture']})" if i.get("architecture") else "") for i in tp)
    return (f"threads, {r['net']}: port [{pools(p)}]; torch {t['torch_threads']} intra-op, "
            f"{t['torch_interop_threads']} inter-op [{pools(t)}]")


def parse_args(argv):
    ap = ArgumentParser(prog="python -m benchmarks.networks", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="+", default=list(DEFAULT_NETS),
                    help=f"nets to run (default: {' '.join(DEFAULT_NETS)})")
    ap.add_argument("--minibatch", type=int, default=128, help="images per step (default 128)")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds, the median is kept (default 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch's device (default cpu)")
    ap.add_argument("--backend", choices=("numpy", "cupy"), default=None,
                    help="the port's array module (default numpy on cpu, cupy on cuda)")
    ap.add_argument("--keep-openblas-env", action="store_true",
                    help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the workers' environment")
    ap.add_argument("--no-profile", action="store_true", help="skip the per-layer profile")
    ap.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/*.json")
    ap.add_argument("--tf32", action="store_true",
                    help="GPU products in TF32 on both sides (CUPY_TF32=1 for the port, "
                         "allow_tf32 for torch; DIVERGES from the original's fp32 products)")
    ap.add_argument("--worker", choices=("port", "torch"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.backend = a.backend or ("cupy" if a.device == "cuda" else "numpy")
    if a.worker:
        a.net = a.nets[0]
    return a


@main_guard("benchmarks.networks")
def main(argv=None) -> int:
    a = parse_args(argv)
    if a.worker:
        return worker_main(a)
    unknown = [n for n in a.nets if n not in nets.NETS]
    if unknown:
        raise UserError(f"--nets: unknown {', '.join(unknown)} (known: {', '.join(sorted(nets.NETS))})")
    if a.repeats < 1 or a.minibatch < 1 or a.warmup < 0:
        raise UserError("--repeats and --minibatch must be ≥ 1, --warmup ≥ 0")
    report = {"time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device": a.device,
              "backend": a.backend, "machine_start": machine(),
              "openblas_env_in_workers": "kept" if a.keep_openblas_env else "unset",
              "tf32": bool(a.tf32), "nets": []}
    m = report["machine_start"]
    print(f"{m['cpu']}, {m['cpu_count']} CPUs; {m['uptime']}\nport on {a.backend}, torch on {a.device}; "
          f"median of {a.repeats} interleaved rounds after {a.warmup} warm-up; minibatch {a.minibatch}; "
          f"OpenBLAS env {report['openblas_env_in_workers']} in the workers\n")
    for name in a.nets:
        report["nets"].append(run_net(name, a))
    report["machine_end"] = machine()
    print(table(report["nets"]))
    print()
    for r in report["nets"]:
        line = threads_line(r)
        if line:
            print(line)
    for r in report["nets"]:
        print(profile_table(r))
    print(f"\nload at the end: {report['machine_end']['uptime']}")
    if not a.no_save:
        print(f"wrote {save_report(report, f'networks-{a.device}' + ('-tf32' if a.tf32 else ''))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
