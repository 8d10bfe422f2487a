#!/usr/bin/env bash
# One-call check of the nvidia-gpu backend on a machine with an NVIDIA GPU (e.g. the device tool's H200):
#   profile MobileNetV2 and ResNet-18 per layer and whole (latency with CUDA events, NVML power, energy from
#   the counter and from the integral, memory, clocks), a training step, and a power-budgeted HyperPower
#   search; then figures and a summary. Everything lands in $OUT (default ./gpu_check_out).
#
#   device tool:  run(command="bash tools/gpu_check.sh", timeout_s=540)
#   a workstation: OUT=/tmp/gpu bash tools/gpu_check.sh
#
# The machine needs hwnas's runtime dependencies importable by $PYTHON (torch, torchvision, numpy, scipy,
# pandas, scikit-learn, onnx, pyyaml, typer, rich, optuna, matplotlib, nvidia-ml-py). The first step lists
# what is missing and stops (exit 3) before any device time is spent. Budget: about 6-8 minutes on an H200.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check_out}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-nvidia-gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
STORE="$OUT/gpu.db"
HW=("$PY" -m hwnas.cli.app)
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/log.txt" >&2; }

log "uptime: $(uptime)"
(nvidia-smi; nvidia-smi -q -d POWER,CLOCK,TEMPERATURE,PERFORMANCE) > "$OUT/nvidia-smi.txt" 2>&1 || true
"$PY" - > "$OUT/env.json" <<'PYEOF'
import importlib, json, platform, sys
mods = ["torch", "torchvision", "numpy", "scipy", "pandas", "sklearn", "onnx", "yaml", "typer", "rich",
        "optuna", "matplotlib", "pynvml", "onnxruntime"]
out = {"python": platform.python_version(), "missing": [], "versions": {}}
for m in mods:
    try:
        out["versions"][m] = getattr(importlib.import_module(m), "__version__", "?")
    except Exception as exc:
        out["missing"].append(f"{m}: {type(exc).__name__}: {exc}")
try:
    import torch
    out["cuda"] = torch.cuda.is_available() and torch.cuda.get_device_name(0)
except Exception as exc:
    out["cuda"] = str(exc)
print(json.dumps(out, indent=1))
sys.exit(3 if [m for m in out["missing"] if not m.startswith("onnxruntime")] else 0)
PYEOF
rc=$?
cat "$OUT/env.json" >&2
if [ $rc -ne 0 ]; then log "missing dependencies (see $OUT/env.json); nothing measured"; exit 3; fi

"${HW[@]}" devices --json > "$OUT/devices.json" 2>> "$OUT/log.txt"

# The whole run stays under $BUDGET_S (the device tool allows 600 s per command): each step gets at most
# its own limit and what is left, keeping 25 s for the figures.
BUDGET_S=${BUDGET_S:-540}
T0=$(date +%s)
step() {  # step NAME TIMEOUT_S ARGS... : one hwnas command, its JSON on stdout, stderr to the log
  local name=$1 limit=$2; shift 2
  local left=$(( BUDGET_S - 25 - ($(date +%s) - T0) ))
  if [ "$left" -lt 20 ]; then log "$name: skipped (time budget spent)"; return 124; fi
  [ "$limit" -gt "$left" ] && limit=$left
  log "$name: hwnas $*"
  timeout "$limit" "${HW[@]}" "$@" > "$OUT/$name.json" 2>> "$OUT/log.txt"
  local r=$?
  log "$name: exit $r"
  return $r
}

for m in mobilenet_v2 resnet18; do
  step "profile_$m" 150 profile -d "$DEVICE" -m "$m" --store "$STORE" --csv "$OUT/$m.csv" --json
done
step profile_resnet18_train 60 profile -d "$DEVICE" -m resnet18 --train-step --no-per-layer --store "$STORE" --json
step profile_mobilenet_v2_b32 60 profile -d "$DEVICE" -m mobilenet_v2 -b 32 --no-per-layer --store "$STORE" --json

# HyperPower under a real power budget: profile 12 random CNN configs (no training) for the power model
# (thesis eq. 3.2), set the budget at their median power so about half the space is infeasible, then search.
step search_profile 90 search -d "$DEVICE" --searcher hyperpower --constraint "power<=100000W" \
  --evals 1 --epochs 1 --profile-samples 12 --save-cost-data "$OUT/cost_data.csv" --store "$STORE" --json
BUDGET_W=$("$PY" -c "import pandas as p; print(round(p.read_csv('$OUT/cost_data.csv')['power_mw'].median()/1e3, 2))" 2>/dev/null)
if [ -n "${BUDGET_W:-}" ]; then
  log "power budget: ${BUDGET_W} W (median of the profiled configs)"
  step search_hyperpower 150 search -d "$DEVICE" --searcher hyperpower --constraint "power<=${BUDGET_W}W" \
    --cost-data "$OUT/cost_data.csv" --evals 10 --epochs 3 --store "$STORE" --history "$OUT/search_history.json" --json
fi

"$PY" tools/gpu_figures.py "$OUT" >> "$OUT/log.txt" 2>&1 || log "figures failed (see log)"
log "done; summary in $OUT/summary.md"
