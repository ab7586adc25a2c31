"""The yardstick on several twin seeds, without training: readout validity, the reference
generator's map and the classic pipeline's rows.

    python benchmarks/bench_yardstick.py --seeds 0 1 2 [--work DIR] [--replicates 24]

Per seed: a demo-preset twin is generated and prepared (kept in ``--work`` for reuse), then

- each trait's readout validity on the real nodules (out of sample: the readout was fitted
  on calibration seeds) beside the single feature used before it;
- the reference generator's perturbation map under both rules (``axis``: ±1/±2 SD along
  the training axis, validation bases, empty = size 0; ``genes``: ±2 z per gene, any base,
  empty dropped), with AUROC [interval over pairs], true pairs found, false positives;
- the classic pipeline on the training donors with the same readout (as discovered, with
  the true programs, and the sampling bound with the true traits).

Writes ``benchmarks/results/yardstick_seeds.csv`` (one row per seed × map) and prints the
table with the mean over seeds. The GAN rows come from ``rgsynth demo --seed N``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from rgsynth.analysis.cohort import load_cohort
from rgsynth.analysis.evaluate import conventional_tables, reference_maps
from rgsynth.analysis.ground_truth import (
    SINGLE_FEATURES,
    load_truth,
    program_trait_table,
    score_against_truth,
    trait_spearman,
)
from rgsynth.config import MapSettings
from rgsynth.fsutil import atomic_write_text
from rgsynth.layout import GROUND_TRUTH_FILENAME, perturbation_filename

RESULTS = Path(__file__).parent / "results"


def prepared(work: Path, seed: int) -> tuple[Path, Path]:
    cohort, cache = work / f"demo-{seed}", work / f"demo-{seed}-cache"
    rgsynth = [sys.executable, "-m", "rgsynth.cli"]
    if not (cohort / GROUND_TRUTH_FILENAME).is_file():
        subprocess.run(
            [*rgsynth, "synth-cohort", str(cohort), "--seed", str(seed), "--force"], check=True
        )
    if not (cache / "manifest.json").is_file():  # a demo's cache (its own seed) is kept
        subprocess.run([*rgsynth, "prepare", str(cohort), "--out", str(cache)], check=True)
    return cohort, cache


def one_seed(work: Path, seed: int, settings: MapSettings) -> list[dict]:
    cohort_dir, cache = prepared(work, seed)
    truth_path = cohort_dir / GROUND_TRUTH_FILENAME
    truth = load_truth(truth_path)
    cohort = load_cohort(cache)
    features = cohort.features()
    rng = np.random.default_rng([seed, 5])
    rows = []
    for reader, readers in (("readout", None), ("single feature", SINGLE_FEATURES)):
        kwargs = {"readers": readers} if readers else {}
        for trait, estimate in trait_spearman(features, truth, rng, 1000, **kwargs).items():
            rows.append(
                {
                    "seed": seed,
                    "map": f"validity: {reader}",
                    "metric": trait,
                    "value": estimate.value,
                    "ci_low": estimate.ci_low,
                    "ci_high": estimate.ci_high,
                }
            )
    start = time.perf_counter()
    out = work / f"demo-{seed}-reference"
    reference_maps(truth_path, cache, cohort, features, settings, out)
    seconds = time.perf_counter() - start
    maps = {"reference, axis rule": perturbation_filename("programs")}
    for rule in settings.perturbation.rules[1:]:
        maps[f"reference, {rule} rule"] = perturbation_filename(f"programs:{rule}")
    tables = {
        label: program_trait_table(pd.read_csv(out / name), "effect_sd")
        for label, name in maps.items()
    }
    classic = conventional_tables(cohort, features, truth, settings)
    tables |= {
        "classic, as discovered": classic["discovered"],
        "classic, true programs": classic["true programs"],
        "classic, sampling bound": classic["sampling bound"],
    }
    for label, table in tables.items():
        scores = score_against_truth(table, truth, resamples=1000, seed=seed)
        for metric, value in scores.items():
            if metric in ("auroc_ci_low", "auroc_ci_high"):
                continue
            low = scores["auroc_ci_low"] if metric == "auroc" else np.nan
            high = scores["auroc_ci_high"] if metric == "auroc" else np.nan
            rows.append(
                {
                    "seed": seed,
                    "map": label,
                    "metric": metric,
                    "value": value,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    rows.append({"seed": seed, "map": "reference", "metric": "seconds", "value": seconds})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--work", type=Path, default=Path("yardstick-work"))
    parser.add_argument("--replicates", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "yardstick_seeds.csv")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    settings = MapSettings()
    if args.replicates:
        settings = replace(
            settings, perturbation=replace(settings.perturbation, replicates=args.replicates)
        )
    rows = []
    for seed in args.seeds:
        rows += one_seed(args.work, seed, settings)
        table = pd.DataFrame(rows)
        args.out.parent.mkdir(exist_ok=True)
        atomic_write_text(args.out, table.to_csv(index=False, float_format="%.4f"))
    table = pd.DataFrame(rows)
    wanted = ["auroc", "true_pairs_found", "false_positive_rate", "null_program_false_positives"]
    maps = table[table["metric"].isin(wanted)]
    wide = maps.pivot_table(index=["map", "metric"], columns="seed", values="value")
    wide["mean"] = wide.mean(axis=1)
    validity = table[table["map"].str.startswith("validity")]
    vwide = validity.pivot_table(index=["map", "metric"], columns="seed", values="value")
    vwide["mean"] = vwide.mean(axis=1)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(wide.round(3))
        print(vwide.round(3))


if __name__ == "__main__":
    main()
