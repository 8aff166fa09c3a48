"""``python -m benchmarks``: kernel timings (port vs torch), as a table on stdout and JSON under
benchmarks/results/. Whole networks side by side: ``python -m benchmarks.networks``."""
from __future__ import annotations

import os
import platform
import sys
import time

import numpy

from benchmarks import kernels
from benchmarks.timing import save_report
from port import backend
from port.errors import ArgumentParser, UserError, main_guard


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


def parse_args(argv):
    ap = ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--backend", choices=backend.CHOICES, default=None,
                    help="array module for the port (default: $ALEXNET_BACKEND or auto)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per case, best kept (default 3)")
    ap.add_argument("--minibatch", type=int, default=128, help="images per minibatch (default 128)")
    ap.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/*.json")
    return ap.parse_args(argv)


@main_guard("benchmarks")
def main(argv=None) -> int:
    a = parse_args(argv)
    if a.repeats < 1 or a.minibatch < 1:
        raise UserError("--repeats and --minibatch must be ≥ 1")
    try:
        xp = backend.set_backend(a.backend)
    except backend.BackendError as e:
        raise UserError(str(e)) from None
    report = {"time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "backend": xp.__name__, "machine": platform.machine(), "processor": platform.processor(),
              "cpu_count": os.cpu_count(), "python": platform.python_version(),
              "numpy": numpy.__version__, "minibatch": a.minibatch, "repeats": a.repeats,
              "loadavg_start": list(os.getloadavg()), "kernels": []}
    torch = kernels._torch()
    report["torch"] = torch.__version__ if torch else None
    print(f"backend {xp.__name__}, {os.cpu_count()} CPUs, torch {report['torch'] or 'absent'}, "
          f"best of {a.repeats}, load average {report['loadavg_start'][0]:.1f} (other work on the "
          "machine slows every number)")
    report["kernels"] = kernels.run(a.minibatch, a.repeats, _progress)
    print("\nKernels of the 145 net (one GPU's half), milliseconds\n" + kernel_table(report["kernels"]))
    report["loadavg_end"] = list(os.getloadavg())
    if not a.no_save:
        print(f"\nwrote {save_report(report, xp.__name__)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
