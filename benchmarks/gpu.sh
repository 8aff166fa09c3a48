#!/usr/bin/env bash
# The GPU run of issue 14 (part B), in one script that stays under 8 minutes and writes its
# results to the folder given as its argument. Prepare it on a CPU machine first:
#
#     bash benchmarks/gpu-prepare.sh        # data + NumPy reference into benchmarks/gpu-data/ (git-ignored)
#
# then, from a session that has the device machine (one H200; python3 with CuPy 14 for CUDA 13,
# PyTorch, NumPy, pytest, Pillow, matplotlib, tqdm; no Sphinx, no tomli-w, nothing installable),
# with the `run` tool, exactly:
#
#     run(command='bash benchmarks/gpu.sh "$OUT"',
#         carry=["benchmarks/gpu-data", "original/alexnet-2012"], timeout_s=540)
#
# (benchmarks/gpu-data: the CIFAR subset, its converted batches and the NumPy reference, ~33 MB;
# original/alexnet-2012: the release's cfg files, which are git-ignored and so do not travel
# otherwise). The files come back under the reply's files_at; commit the JSON under
# benchmarks/results/ with the GPU's name.
#
# Stages (each capped by `timeout`, each writes as it goes, a failed stage does not stop the rest):
#   0. probe.txt, device.txt: port.backend's probe (why CuPy is not used, or the device), nvidia-smi
#   1. tests.log: the port's tests on CuPy: the CuPy-vs-NumPy kernel tests and every layer, model
#      and training test that takes a backend (pytest -m backend, ALEXNET_TEST_BACKENDS=cupy)
#   2. train-cupy.json (+ .log): layers-80sec on the CIFAR subset (batches 1-4, test 5), 10 epochs,
#      --backend=cupy, seed 1; beside it numpy-80sec.json, the same run on NumPy made by
#      gpu-prepare.sh (else the committed benchmarks/gpu-reference/numpy-80sec.json, else run here
#      on the CPU in the background meanwhile)
#   3. networks-cuda.json (+ .log): `python -m benchmarks.networks --device cuda --backend cupy`,
#      layers-80sec and layers-145 at minibatch 128, the port on CuPy against torch on the same GPU
#   4. memory.jsonl: peak GPU memory of 3 training steps at minibatch 128, layers-80sec and layers-145,
#      the port (CuPy's pool total) and torch (max allocated and reserved), each in its own process
#   summary.json: each stage's exit code and seconds, the two test errors side by side.
# The caps add up to 7.5 minutes (probe 60, tests 150, train 130, bench 120, memory 60; the probe
# takes seconds); CuPy compiles its kernels on first use, which the first stages pay.
#
# Issue 19 (the GPU-shaped step), a shorter run of its own (about 5 minutes; run it FIRST when a
# GPU is at hand, it needs only original/alexnet-2012):
#
#     run(command='bash benchmarks/gpu.sh --shaped "$OUT"', timeout_s=420,
#         carry = ["original/alexnet-2012"])
#
#   kernels.log: port/device_kernels.py's CUDA kernels on the device against their NumPy twins
#     (they have never run on a GPU before this), and the cudaconv2 backend tests on CuPy
#   launches.json: launches, host syncs and host-to-device bytes per training step (the strict
#     stand-in, on the CPU: counts, not timings)
#   networks-cuda.json, networks-cuda-tf32.json: layers-145 and layers-80sec training and inference
#     images/s of the port on CuPy and of torch on the same GPU, fp32 products (torch's TF32 off)
#     and then TF32 on both sides (CUPY_TF32=1, allow_tf32)
# Commit them under benchmarks/results/ with the GPU's name (the issue's goal: layers-145 training
# at least 1.0x torch eager fp32).
#
# Also: `bash benchmarks/gpu.sh --numpy-reference` (what gpu-prepare.sh calls) trains the NumPy run
# and writes benchmarks/gpu-data/numpy-80sec.json; `GPU_DRY_RUN=1 bash benchmarks/gpu.sh DIR` checks
# the script's plumbing on a CPU (the strict CuPy stand-in, 1 epoch, a tiny CPU benchmark).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
PY=${PYTHON:-python3}
DATA=benchmarks/gpu-data
REL=original/alexnet-2012
EPOCHS=${GPU_EPOCHS:-10}
TRAIN_BACKEND=cupy TEST_BACKENDS=cupy MEM_ARGS=(cuda cupy)
BENCH_ARGS=(--device cuda --backend cupy --nets layers-80sec layers-145 --minibatch 128 --repeats 5 --warmup 2)
if [ -n "${GPU_DRY_RUN:-}" ]; then   # the script's plumbing checked on a CPU: the strict stand-in, 1 epoch
  export ALEXNET_BACKEND=strict
  TRAIN_BACKEND=auto TEST_BACKENDS=strict EPOCHS=1 MEM_ARGS=(cpu numpy)
  BENCH_ARGS=(--device cpu --backend numpy --nets layers-80sec --minibatch 32 --repeats 1 --warmup 0 --no-profile --no-save)
fi

# train BACKEND SAVE_DIR: layers-80sec, $EPOCHS epochs, a test and a checkpoint after every epoch
train() {
  rm -rf "$2"
  "$PY" -m port.convnet --data-path="$DATA/cifar" --save-path="$2" --train-range=1-4 --test-range=5 \
    --layer-def="$REL/example-layers/layers-80sec.cfg" --layer-params="$REL/example-layers/layer-params-80sec.cfg" \
    --data-provider=cifar-cropped --test-freq=4 --epochs="$EPOCHS" --mini=128 --seed=1 --backend="$1"
}

# errors BACKEND SAVE_DIR JSON SECONDS EXIT_CODE EPOCHS: the test errors of the newest checkpoint
# (of a cut-off run too: a checkpoint is written after every epoch)
errors() {
  COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown) "$PY" - "$@" <<'EOF'
import json, os, platform, sys
from pathlib import Path
from port import checkpoint
backend, save, out, seconds, rc = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rec = {"net": "layers-80sec", "data": "CIFAR-10 subset: train batches 1-4 (4068 images), test batch 5 (1017)",
       "backend": backend, "seed": 1, "epochs_asked": int(sys.argv[6]), "exit_code": rc, "seconds": seconds,
       "commit": os.environ.get("COMMIT"), "host": f"{platform.node()}, {os.cpu_count()} CPUs"}
dirs = sorted(Path(save).glob("ConvNet__*"))
if dirs:
    ms = checkpoint.load(dirs[-1])["model_state"]
    # test_outputs: (cost name -> [logprob, error rate, top-k error] per case, cases), one per epoch here
    rec["test_errors"] = [t[0]["logprob"][1] for t in ms["test_outputs"]]
    rec["test_logprobs"] = [t[0]["logprob"][0] for t in ms["test_outputs"]]
    rec["final_test_error"] = rec["test_errors"][-1] if rec["test_errors"] else None
out.write_text(json.dumps(rec, indent=1) + "\n")
print(f"{out}: {backend}, exit {rc}, {seconds} s, test errors {rec.get('test_errors')}")
EOF
}

if [ "${1:-}" = "--numpy-reference" ]; then
  save=$(mktemp -d)/save t0=$SECONDS
  train numpy "$save" > "$DATA/numpy-80sec.log" 2>&1
  rc=$?
  errors numpy "$save" "$DATA/numpy-80sec.json" "$((SECONDS - t0))" "$rc" "$EPOCHS"
  exit 0
elif [ "${1:-}" = "--train" ]; then     # --train BACKEND SAVE_DIR (for a time-capped stage)
  train "$2" "$3"
  exit
elif [ "${1:-}" = "--tests" ]; then     # the backend tests, the light ones first (a cut-off run keeps them)
  export ALEXNET_TEST_BACKENDS=$TEST_BACKENDS
  files=(tests/port/test_device_kernels.py tests/port/cudaconv2/test_backends.py tests/port/test_model.py
         tests/port/test_weights.py tests/port/layers/test_gradients.py)
  "$PY" -m pytest -v -p no:cacheprovider -m "backend and not strict_heavy" "${files[@]}"
  rc=$?
  "$PY" -m pytest -v -p no:cacheprovider -m "backend and strict_heavy" "${files[@]}" || rc=$?
  exit $rc
elif [ "${1:-}" = "--shaped" ]; then    # --shaped OUT: issue 19's run (see the header)
  OUT=${2:?usage: bash benchmarks/gpu.sh --shaped RESULTS_DIR}
  mkdir -p "$OUT"
  [ -f "$REL/layers/layers-145.cfg" ] || { echo "gpu.sh: $REL is missing: carry it (git-ignored)" >&2; exit 2; }
  { nvidia-smi -L; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; } > "$OUT/device.txt" 2>&1
  "$PY" -c "from port import backend; print(backend.probe().reason)" > "$OUT/probe.txt" 2>&1
  cat "$OUT/probe.txt"
  ALEXNET_TEST_BACKENDS=$TEST_BACKENDS timeout --kill-after=10 90 "$PY" -m pytest -v -p no:cacheprovider \
    -m backend tests/port/test_device_kernels.py tests/port/cudaconv2/test_backends.py > "$OUT/kernels.log" 2>&1
  echo "kernels: exit $?"; tail -3 "$OUT/kernels.log"
  timeout --kill-after=10 90 "$PY" -m benchmarks.launches --minibatch 32 --json > "$OUT/launches.log" 2>&1
  echo "launches: exit $?"; grep -E "^[a-z0-9-]+: " "$OUT/launches.log"
  newest=$(ls -t benchmarks/results/*-launches.json 2>/dev/null | head -1)
  [ -n "$newest" ] && cp "$newest" "$OUT/launches.json"
  for tf in "" --tf32; do
    args=("${BENCH_ARGS[@]}" --nets layers-145 layers-80sec --no-profile $tf)
    [ -n "${GPU_DRY_RUN:-}" ] && args=("${BENCH_ARGS[@]}" $tf)
    name=networks-cuda${tf:+-tf32}
    timeout --kill-after=10 120 "$PY" -m benchmarks.networks "${args[@]}" > "$OUT/$name.log" 2>&1
    echo "$name: exit $?"; tail -8 "$OUT/$name.log"
    newest=$(ls -t benchmarks/results/*-networks-*.json 2>/dev/null | head -1)
    [ -n "$newest" ] && cp "$newest" "$OUT/$name.json"
  done
  exit 0
elif [ "${1:-}" = "--memory-all" ]; then   # --memory-all DEVICE BACKEND: both nets, both kinds
  for net in layers-80sec layers-145; do for kind in port torch; do
    bash "$0" --memory "$net" "$kind" "$2" "$3"; done; done
  exit
elif [ "${1:-}" = "--memory" ]; then    # --memory NET port|torch DEVICE BACKEND: peak memory of 3 training steps
  exec "$PY" - "${@:2}" <<'EOF'
import json, sys
from benchmarks import networks
net, kind, device, backend = sys.argv[1:5]
a = networks.parse_args(["--nets", net, "--minibatch", "128", "--device", device, "--backend", backend,
                         "--worker", kind])
w = (networks.PortWorker if kind == "port" else networks.TorchWorker)(a)
seconds = [w.train() for _ in range(3)]
rec = {"net": net, "kind": kind, "minibatch": 128, "step_seconds": seconds}
if kind == "port" and w.xp.__name__ == "cupy":
    pool = w.xp.get_default_memory_pool()      # CuPy's pool keeps what it took: its total is the peak held
    rec.update(pool_total_mib=pool.total_bytes() / 2**20, pool_used_mib_after=pool.used_bytes() / 2**20)
elif kind == "torch" and device == "cuda":
    import torch
    rec.update(max_allocated_mib=torch.cuda.max_memory_allocated() / 2**20,
               max_reserved_mib=torch.cuda.max_memory_reserved() / 2**20)
else:
    rec.update(w.stats())
print(json.dumps(rec))
EOF
fi

OUT=${1:?usage: bash benchmarks/gpu.sh RESULTS_DIR   (or --numpy-reference)}
mkdir -p "$OUT"
[ -f "$DATA/cifar/data_batch_5" ] || { echo "gpu.sh: $DATA/cifar is missing: run benchmarks/gpu-prepare.sh and carry $DATA" >&2; exit 2; }
[ -f "$REL/layers/layers-145.cfg" ] || { echo "gpu.sh: $REL is missing: carry it (git-ignored)" >&2; exit 2; }
declare -A RC SEC
stage() {   # stage NAME LIMIT_S COMMAND...: run with a time cap, record exit code and seconds
  local name=$1 limit=$2 t0=$SECONDS
  shift 2
  echo "== $name (at most ${limit}s)"
  timeout --kill-after=10 "$limit" "$@"
  RC[$name]=$?
  SEC[$name]=$((SECONDS - t0))
  echo "== $name: exit ${RC[$name]} after ${SEC[$name]}s"
}

# 0. the device
{ nvidia-smi -L; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; } > "$OUT/device.txt" 2>&1
stage probe 60 "$PY" -c "from port import backend; p = backend.probe(); print(p.reason); raise SystemExit(p.cupy is None)" \
  > "$OUT/probe.txt" 2>&1
cat "$OUT/probe.txt"

# the NumPy reference: made beforehand (gpu-prepare.sh, or the committed copy), or now on the CPU
NUMPY_PID=
if [ -f "$DATA/numpy-80sec.json" ]; then
  cp "$DATA/numpy-80sec.json" "$OUT/numpy-80sec.json"
elif [ -f benchmarks/gpu-reference/numpy-80sec.json ]; then
  cp benchmarks/gpu-reference/numpy-80sec.json "$OUT/numpy-80sec.json"
elif [ -z "${GPU_DRY_RUN:-}" ]; then
  (OMP_NUM_THREADS=8 OPENBLAS_NUM_THREADS=8 timeout 420 bash "$0" --numpy-reference \
     && cp "$DATA/numpy-80sec.json" "$OUT/numpy-80sec.json") > "$OUT/numpy-80sec.log" 2>&1 &
  NUMPY_PID=$!
fi

# 1. the tests on CuPy (verbose, so that a cut-off run still shows each result)
stage tests 150 bash "$0" --tests > "$OUT/tests.log" 2>&1
tail -3 "$OUT/tests.log"

# 2. layers-80sec, 10 epochs on CuPy
save=$(mktemp -d)/save
stage train 130 bash "$0" --train "$TRAIN_BACKEND" "$save" > "$OUT/train-cupy.log" 2>&1
errors "$TRAIN_BACKEND" "$save" "$OUT/train-cupy.json" "${SEC[train]}" "${RC[train]}" "$EPOCHS"

# 3. the side-by-side benchmark (issue 13's benchmarks.networks; `python -m benchmarks` if it is absent)
if [ -f benchmarks/networks.py ]; then
  stage bench 120 "$PY" -m benchmarks.networks "${BENCH_ARGS[@]}" > "$OUT/networks-cuda.log" 2>&1
  newest=$(ls -t benchmarks/results/*-networks-cuda.json 2>/dev/null | head -1)
else
  stage bench 120 "$PY" -m benchmarks --backend cupy --only nets > "$OUT/networks-cuda.log" 2>&1
  newest=$(ls -t benchmarks/results/*.json 2>/dev/null | head -1)
fi
[ -n "$newest" ] && cp "$newest" "$OUT/networks-cuda.json"
tail -25 "$OUT/networks-cuda.log"

# 4. peak GPU memory of training at minibatch 128, the port's CuPy pool and torch's allocator
stage memory 60 bash "$0" --memory-all "${MEM_ARGS[@]}" > "$OUT/memory.jsonl" 2> "$OUT/memory.log"
cat "$OUT/memory.jsonl"

[ -n "$NUMPY_PID" ] && wait "$NUMPY_PID"
"$PY" - "$OUT" "probe=${RC[probe]}:${SEC[probe]}" "tests=${RC[tests]}:${SEC[tests]}" \
  "train=${RC[train]}:${SEC[train]}" "bench=${RC[bench]}:${SEC[bench]}" "memory=${RC[memory]}:${SEC[memory]}" <<'EOF'
import json, math, sys
from pathlib import Path
out = Path(sys.argv[1])
s = {"stages": {k: {"exit_code": int(v.split(":")[0]), "seconds": int(v.split(":")[1])}
                for k, v in (a.split("=") for a in sys.argv[2:])}}
runs = {}
for name in ("train-cupy", "numpy-80sec"):
    p = out / f"{name}.json"
    runs[name] = json.loads(p.read_text()) if p.is_file() else None
probe = out / "probe.txt"
s["probe"] = " ".join(l for l in probe.read_text().splitlines() if not l.startswith("== ")) if probe.is_file() else None
gs, ns = ((runs[k] or {}).get("test_errors") or [] for k in ("train-cupy", "numpy-80sec"))
k = min(len(gs), len(ns))            # the same number of epochs on both (a cut-off run has fewer)
s["epochs_compared"] = k
if k:
    g, n = gs[k - 1], ns[k - 1]
    se = math.sqrt(max(n * (1 - n), 1e-12) / 1017)       # binomial standard error on 1017 test images
    s.update(test_error_cupy=g, test_error_numpy=n, difference=g - n,
             within_noise=abs(g - n) <= 3 * math.sqrt(2) * se,
             noise_rule="|cupy - numpy| <= 3*sqrt(2)*sqrt(p(1-p)/1017), at the same epoch")
(out / "summary.json").write_text(json.dumps(s, indent=1) + "\n")
print(json.dumps(s, indent=1))
EOF
