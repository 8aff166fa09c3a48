"""``python -m benchmarks.launches``: what one training step costs the device, counted on the
strict CuPy stand-in (:mod:`port.strict`) with CuPy 14's launch rules: kernel launches, host
synchronisations and host-to-device bytes per training step of layers-80sec, conv-local-13pct and
layers-145 (random data of the cfg's shapes, minibatch 128), by layer and pass, by kind, and the
call sites that launch most.

A training step is ``start_batch`` + ``finish_batch`` on one minibatch: upload, forward, cost,
backward, weight update and the read-back of the costs. One step runs first uncounted (caches
filled, buffers made), then one counted. No GPU is needed and nothing is timed: counts only,
exact for the port's code under the rules that :mod:`port.strict` documents (a real GPU adds what
cuBLAS splits a GEMM into, and CuPy's kernel compilations on first use).

``--json`` writes the whole record under benchmarks/results/.
"""
from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict

from benchmarks import nets
from benchmarks.timing import save_report
from port import backend
from port.convnet import guess_data_dims
from port.errors import ArgumentParser, UserError, main_guard
from port.layer import parse_layers

DEFAULT_NETS = ("layers-80sec", "conv-local-13pct", "layers-145")
# (method, pass) of every layer that the model calls; receive_grad runs on the receiving layer.
METHODS = (("fprop", "fwd"), ("bprop", "bwd"), ("bprop_common", "bwd_weights"),
           ("bprop_acts", "bwd_acts"), ("receive_grad", "bwd_acts"), ("update_weights", "update"),
           ("start_fprop", "fwd"))
MODEL = "(model)"


def _scoped(layer, method: str, name: str, strict):
    inner = getattr(layer, method)

    def call(*args, **kw):
        with strict.scope(name):
            return inner(*args, **kw)
    setattr(layer, method, call)


def count_step(layers: dict, minibatch: int, nc: int) -> dict:
    """Build the net on the strict stand-in and count one training step (after one uncounted)."""
    from port import strict  # noqa: PLC0415 (the stand-in is chosen by the caller)
    from port.model import ConvNet  # noqa: PLC0415

    dims = {l["dataIdx"]: l["outputs"] for l in layers.values() if l["type"] == "data"}
    data = nets.random_batch(dims, nc, minibatch, seed=0)
    net = ConvNet(layers, minibatch_size=minibatch, rng=0)
    for layer in net.layers.values():
        for method, pss in METHODS:
            if hasattr(layer, method):
                _scoped(layer, method, f"{layer.name}|{pss}", strict)

    def step():
        net.start_batch(data, 0.0)
        net.finish_batch()
    step()
    strict.reset_counts()
    step()
    launches, h2d, syncs = strict.launch_counts(), strict.h2d_counts(), strict.syncs()
    strict.reset_counts()
    types = {l.name: l.type for l in net.layers.values()}
    return summarise(launches, h2d, syncs, types)


def _split(sc: str) -> tuple[str, str]:
    return tuple(sc.split("|", 1)) if "|" in sc else (MODEL, sc if sc != "-" else "")


def summarise(launches: Counter, h2d: Counter, syncs: Counter, types: dict) -> dict:
    by_layer: dict = defaultdict(lambda: {"launches": 0, "passes": Counter(), "kinds": Counter()})
    kinds, sites = Counter(), Counter()
    for (site, kind, sc), n in launches.items():
        layer, pss = _split(sc)
        row = by_layer[layer]
        row["launches"] += n
        row["passes"][pss or "-"] += n
        row["kinds"][kind] += n
        kinds[kind] += n
        sites[f"{site} ({kind})"] += n
    h2d_layer = Counter()
    for (site, sc), b in h2d.items():
        h2d_layer[_split(sc)[0]] += b
    layers = [{"layer": k, "type": types.get(k, ""), "launches": v["launches"],
               "passes": dict(v["passes"]), "kinds": dict(v["kinds"]), "h2d_bytes": h2d_layer.get(k, 0)}
              for k, v in by_layer.items()]
    layers.sort(key=lambda r: -r["launches"])
    return {"launches": sum(kinds.values()), "syncs": sum(syncs.values()),
            "h2d_bytes": sum(h2d.values()), "kinds": dict(kinds.most_common()),
            "sync_sites": dict(syncs), "top_sites": dict(sites.most_common(15)),
            "h2d_sites": {f"{s} [{sc}]": b for (s, sc), b in h2d.most_common(5)},
            "layers": layers}


def report_text(name: str, r: dict, top: int = 10) -> str:
    out = [f"{name}: {r['launches']:,} launches, {r['syncs']} host sync(s), "
           f"{r['h2d_bytes'] / 2**20:,.1f} MiB host→device per training step"]
    out.append("  by kind: " + ", ".join(f"{k} {n:,}" for k, n in r["kinds"].items()))
    out.append(f"  {'layer':<14} {'type':<12} {'launches':>8}  passes / kinds")
    for row in r["layers"]:
        passes = " ".join(f"{p}={n}" for p, n in sorted(row["passes"].items()))
        kinds = " ".join(f"{k}={n}" for k, n in sorted(row["kinds"].items(), key=lambda kv: -kv[1]))
        out.append(f"  {row['layer']:<14} {row['type']:<12} {row['launches']:>8}  {passes} | {kinds}")
    out.append("  top call sites:")
    for s, n in list(r["top_sites"].items())[:top]:
        out.append(f"    {n:>7,}  {s}")
    if r["sync_sites"]:
        out.append("  host syncs: " + ", ".join(f"{s} ×{n}" for s, n in r["sync_sites"].items()))
    return "\n".join(out)


def parse_args(argv):
    ap = ArgumentParser(prog="python -m benchmarks.launches", description=__doc__.split("\n\n")[0])
    ap.add_argument("--nets", nargs="+", default=list(DEFAULT_NETS), choices=list(nets.NETS),
                    help="nets of original/alexnet-2012 (default: all three)")
    ap.add_argument("--minibatch", type=int, default=128, help="images per step (default 128)")
    ap.add_argument("--top", type=int, default=10, help="call sites listed per net (default 10)")
    ap.add_argument("--json", action="store_true", help="write benchmarks/results/<UTC>-launches.json")
    return ap.parse_args(argv)


@main_guard("benchmarks.launches")
def main(argv=None) -> int:
    a = parse_args(argv)
    if a.minibatch < 1:
        raise UserError("--minibatch must be ≥ 1")
    backend.set_backend(backend.STRICT)
    report = {"time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "backend": "strict",
              "minibatch": a.minibatch, "nets": {}}
    for name in a.nets:
        files = nets.release_files(name)
        if files is None:
            print(f"{name}: skipped, original/alexnet-2012 is not fetched (python -m archive fetch)")
            continue
        d, p, nc = files
        layers = parse_layers(d, p, {"num_gpus": 2, "seed": 0, "data_dims": guess_data_dims(d)})
        r = count_step(layers, a.minibatch, nc)
        report["nets"][name] = r
        print(report_text(name, r, a.top) + "\n", flush=True)
    if a.json and report["nets"]:
        print(f"wrote {save_report(report, 'launches')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
