#!/usr/bin/env bash
# The four-command new-device pipeline on NAS-Bench-201, each listed device playing the new one (its column
# left out of the references; its 10 suggested cells "measured" by reading the table), then HyperPower with
# point predictions and with P(feasible) from predict-device's interval; regret and violations per seed.
#   bash benchmarks/nb201_new_device_pipeline.sh OUTDIR [devices...]   (default: pixel3 gold_6240)
set -euo pipefail
OUT=${1:?output folder}; shift
DEVICES=${*:-pixel3 gold_6240}
PY=${PY:-.venv/bin/python}; H="$PY -m hwnas.cli.app"
mkdir -p "$OUT"
for dev in $DEVICES; do
  col=lat_${dev}_ms
  $H nb201 suggest-samples --k 10 --exclude "$col" -o "$OUT/cells_$dev.csv" --json > /dev/null
  $PY - "$OUT" "$dev" <<'PY'
import sys, pandas as pd
from hwnas.spaces.nb201_table import load_table
out, dev = sys.argv[1], sys.argv[2]
t = load_table().set_index("arch"); c = pd.read_csv(f"{out}/cells_{dev}.csv")
lat = t.loc[c["arch"], f"lat_{dev}_ms"].to_numpy()
pd.DataFrame({"arch": c["arch"], "latency_ms": lat}).to_csv(f"{out}/samples_{dev}.csv", index=False)
PY
  $H nb201 predict-device --samples "$OUT/samples_$dev.csv" --exclude "$col" -o "$OUT/pred_$dev.csv" --json \
    > "$OUT/info_$dev.json"
  for seed in 0 1 2; do
    for s in hyperpower hyperpower_prob; do
      $H search --objective nb201 --device "$dev" --table "$OUT/pred_$dev.csv" --searcher $s --evals 50 \
        --seed $seed --json > "$OUT/${s}_${dev}_$seed.json" || true
    done
  done
done
$PY - "$OUT" $DEVICES <<'PY'
import glob, json, sys
import numpy as np
from hwnas.spaces.nb201_table import load_table
out, devices = sys.argv[1], sys.argv[2:]
t = load_table(); err = 1 - t["cifar10_valid_acc"] / 100
for dev in devices:
    col = f"lat_{dev}_ms"; budget = float(np.percentile(t[col], 25)); opt = err[t[col] <= budget].min()
    for s in ("hyperpower", "hyperpower_prob"):
        regs, viol = [], []
        for f in sorted(glob.glob(f"{out}/{s}_{dev}_*.json")):
            d = json.load(open(f)); feas = [x for x in d["trials"] if x["feasible"]]
            best = min(feas, key=lambda x: x["objective"]) if feas else None
            regs.append(100 * (best["info"]["true_error"] - opt) if best else float("nan")); viol.append(d["violations"])
        print(f"{dev:<12} {s:<16} regret {np.mean(regs):.2f} {np.round(regs, 2).tolist()}  violations {viol}")
PY
