"""``python -m benchmarks``: kernel timings (port vs torch) and whole-net timings, as a table on
stdout and JSON under benchmarks/results/."""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy

from benchmarks import kernels, nets
from port import backend
from port.util import atomic_write_bytes
from port.errors import UserError, main_guard

RESULTS = Path(__file__).resolve().parent / "results"


def _progress(what: str) -> None:
    if sys.stderr.isatty():
        print(f"… {what}", file=sys.stderr, flush=True)


def _ms(s) -> str:
    return "—" if s is None else f"{1000 * s:9.1f}"


def kernel_table(rows: list[dict]) -> str:
    out = [f"{'kernel':18} {'port fwd ms':>11} {'torch fwd':>10} {'port bwd ms':>11} {'torch bwd':>10}  shape",
           "-" * 100]
    for r in rows:
        out.append(f"{r['case']:18} {_ms(r['port_fwd_s']):>11} {_ms(r.get('torch_fwd_s')):>10} "
                   f"{_ms(r['port_bwd_s']):>11} {_ms(r.get('torch_bwd_s')):>10}  {r['shape']}")
    return "\n".join(out)


def net_table(rows: list[dict]) -> str:
    out = [f"{'net':14} {'seconds':>9} {'images/s':>9}  what", "-" * 60]
    for r in rows:
        out.append(f"{r['net']:14} {r['seconds']:9.2f} {r['images_per_s']:9.1f}  {r['what']}")
    return "\n".join(out)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--backend", choices=backend.CHOICES, default=None,
                    help="array module for the port (default: $ALEXNET_BACKEND or auto)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per case, best kept (default 3)")
    ap.add_argument("--minibatch", type=int, default=128, help="images per minibatch (default 128)")
    ap.add_argument("--train-minibatches", type=int, default=8,
                    help="minibatches in the 80sec training-rate run (default 8)")
    ap.add_argument("--only", choices=("kernels", "nets"), default=None, help="run one part only")
    ap.add_argument("--nets", nargs="+", choices=sorted(nets.NETS), default=sorted(nets.NETS),
                    help="which nets to time (default both)")
    ap.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/*.json")
    return ap.parse_args(argv)


@main_guard("benchmarks")
def main(argv=None) -> int:
    a = parse_args(argv)
    if a.repeats < 1 or a.minibatch < 1 or a.train_minibatches < 1:
        raise UserError("--repeats, --minibatch and --train-minibatches must be ≥ 1")
    try:
        xp = backend.set_backend(a.backend)
    except backend.BackendError as e:
        raise UserError(str(e)) from None
    report = {"time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "backend": xp.__name__, "machine": platform.machine(), "processor": platform.processor(),
              "cpu_count": os.cpu_count(), "python": platform.python_version(),
              "numpy": numpy.__version__, "minibatch": a.minibatch, "repeats": a.repeats,
              "loadavg_start": list(os.getloadavg()), "kernels": [], "nets": [], "skipped": []}
    torch = kernels._torch()
    report["torch"] = torch.__version__ if torch else None
    print(f"backend {xp.__name__}, {os.cpu_count()} CPUs, torch {report['torch'] or 'absent'}, "
          f"best of {a.repeats}, load average {report['loadavg_start'][0]:.1f} (other work on the "
          "machine slows every number)")
    if a.only in (None, "kernels"):
        report["kernels"] = kernels.run(a.minibatch, a.repeats, _progress)
        print("\nKernels of the 145 net (one GPU's half), milliseconds\n" + kernel_table(report["kernels"]))
    if a.only in (None, "nets"):
        for name in a.nets:
            if not nets.model_available():
                report["skipped"].append(f"{name}: port.model is not importable")
                continue
            if nets.release_files(name) is None:
                report["skipped"].append(f"{name}: original/alexnet-2012 is not fetched (make original)")
                continue
            _progress(f"net {name}")
            report["nets"].append(nets.fwd_bwd(name, a.minibatch, a.repeats))
            if name == "layers-80sec":
                _progress(f"training rate {name}")
                report["nets"].append(nets.train_rate(name, a.minibatch, a.train_minibatches))
        if report["nets"]:
            print("\nWhole nets on random data\n" + net_table(report["nets"]))
    report["loadavg_end"] = list(os.getloadavg())
    for s in report["skipped"]:
        print(f"skipped: {s}")
    if not a.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{report['time_utc'].replace(':', '')}-{xp.__name__}.json"
        atomic_write_bytes(path, lambda f: f.write(json.dumps(report, indent=1).encode()))
        print(f"\nwrote {path.relative_to(RESULTS.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
