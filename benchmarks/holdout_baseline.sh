#!/bin/bash
# The demo-seed-0 baseline scored on 128 held-out donors (issue 16): a demo-preset twin with
# --holdout 128, the demo's CPU widths, ours for 700 steps and MC-GAN for 270 (what 5.5
# minutes gave each on 2 quiet cores, fixed here so a shared machine cannot change them),
# maps of the true programs, evaluate with the truth. Usage: benchmarks/holdout_baseline.sh [DIR]
set -e
cd "$(dirname "$0")/.."
R=".venv/bin/rgsynth"
W=${1:-/tmp/holdout-baseline}
date
[ -f $W/cohort/ground_truth.json ] || $R synth-cohort $W/cohort --seed 0 --holdout 128
date
[ -f $W/cache/manifest.json ] || $R prepare $W/cohort --out $W/cache
date
$R train $W/cache $W/run --steps 700 --seed 0 --base-channels 16 --max-channels 128 --gene-hidden 256 --log-every 20 > $W/train-xu.log 2>&1
date
$R train $W/cache $W/run-mcgan --model mcgan --steps 270 --seed 0 --base-channels 16 --max-channels 128 --gene-hidden 256 --log-every 20 > $W/train-mcgan.log 2>&1
date
$R map $W/run-mcgan --gene-sets $W/cohort/ground_truth.json > $W/map-mcgan.log 2>&1
$R map $W/run --mcgan $W/run-mcgan --gene-sets $W/cohort/ground_truth.json > $W/map.log 2>&1
date
$R evaluate $W/run --against $W/run-mcgan --truth $W/cohort/ground_truth.json > $W/evaluate.log 2>&1
.venv/bin/python - "$W" <<'PY'
import csv, json, sys
run = sys.argv[1] + "/run"
keep = ("donor_auroc", "frd", "empty_or_tiny_mask_rate", "auroc", "true_pairs_found", "false_positive_rate")
rows = [json.loads(line) for line in open(run + "/evaluation_scores.jsonl")]
rows = [r for r in rows if r["metric"] in keep]
with open("benchmarks/results/holdout_baseline.csv", "w", newline="") as out:
    w = csv.writer(out)
    w.writerow(["model", "condition", "metric", "value", "ci_low", "ci_high"])
    for r in rows:
        w.writerow([r["model"], r["condition"], r["metric"], r["value"], r.get("ci_low"), r.get("ci_high")])
PY
date
echo done
