#!/usr/bin/env bash
# Prepare benchmarks/gpu.sh on a CPU machine (no GPU needed), from the worktree root's venv:
#   1. copies the CIFAR-10 subset (../shared/data/cifar-10-subset, or $CIFAR_SUBSET) into
#      benchmarks/gpu-data/ (git-ignored, so the device run must `carry` it) and converts it into
#      port batches there (training batches 1-4, test batch 5: python -m port.data cifar10 --split);
#   2. checks that the release cfgs the GPU run reads are fetched (original/alexnet-2012, carried too);
#   3. checks that every module the GPU run imports loads without Sphinx and tomli-w (the device
#      machine has neither): the port, its data providers, benchmarks.networks/torchnet/nets and the
#      test modules gpu.sh runs, imported with those packages blocked;
#   4. trains the NumPy reference (layers-80sec, 10 epochs, the GPU run's seed and data) into
#      benchmarks/gpu-data/numpy-80sec.json, unless --no-reference (then gpu.sh takes the committed
#      benchmarks/gpu-reference/numpy-80sec.json, made this way, or runs it itself on the device
#      machine's CPU while the GPU works). 5-10 minutes on an idle 2-core CPU (30 on a busy one).
# Then see benchmarks/gpu.sh's header for the exact `run` invocation.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH=$PWD
DATA=benchmarks/gpu-data
SUBSET=${CIFAR_SUBSET:-../shared/data/cifar-10-subset}

[ -f "$SUBSET/data_batch_1" ] || { echo "gpu-prepare: no CIFAR subset at $SUBSET (set CIFAR_SUBSET)" >&2; exit 2; }
for f in example-layers/layers-80sec.cfg example-layers/layer-params-80sec.cfg \
         layers/layers-145.cfg layers/layer-params-145.cfg; do
  [ -f "original/alexnet-2012/$f" ] || { echo "gpu-prepare: original/alexnet-2012/$f is missing: make original" >&2; exit 2; }
done
mkdir -p "$DATA"
git check-ignore -q "$DATA" || { echo "gpu-prepare: $DATA is not git-ignored" >&2; exit 2; }
rm -rf "$DATA/cifar-10-subset" "$DATA/cifar"
cp -r "$SUBSET" "$DATA/cifar-10-subset"
"$PY" -m port.data cifar10 --source "$DATA/cifar-10-subset" --out "$DATA/cifar" --split

"$PY" - <<'EOF'
"""Import what gpu.sh imports with sphinx, docutils, myst_parser and tomli_w made unimportable."""
import importlib, importlib.abc, sys
BLOCKED = ("sphinx", "docutils", "myst_parser", "tomli_w")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked (the GPU machine does not have it)")
        return None
for m in list(sys.modules):
    if m.split(".")[0] in BLOCKED:
        del sys.modules[m]
sys.meta_path.insert(0, Block())
mods = ["port.backend", "port.strict", "port.convnet", "port.model", "port.gpumodel", "port.checkpoint",
        "port.data", "port.data.convert", "port.layer", "benchmarks.networks", "benchmarks.nets",
        "benchmarks.torchnet", "benchmarks.__main__", "tests.conftest", "tests.port.cudaconv2.test_backends",
        "tests.port.test_model", "tests.port.test_weights", "tests.port.layers.test_gradients"]
for m in mods:
    try:
        importlib.import_module(m)
    except ImportError as e:
        if "blocked" in str(e):
            sys.exit(f"gpu-prepare: {m} needs a package the GPU machine lacks: {e}")
        if m.startswith("benchmarks.") and "torch" in str(e):
            continue                      # torch is on the GPU machine
        raise
from port import data
data.get_instance  # the providers' registry imported
print(f"gpu-prepare: {len(mods)} modules import without {', '.join(BLOCKED)}")
EOF

if [ "${1:-}" != "--no-reference" ]; then
  echo "gpu-prepare: training the NumPy reference (layers-80sec, 10 epochs) ..."
  PYTHON="$PY" bash benchmarks/gpu.sh --numpy-reference
fi
du -sh "$DATA" original/alexnet-2012
echo "gpu-prepare: ready; run benchmarks/gpu.sh on the device machine (its header says how)"
