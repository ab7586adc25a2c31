"""Fit the trait readout on calibration cohorts and write ``analysis/readout.json``.

    python benchmarks/calibrate_readout.py --seeds 101 102 103 [--work DIR] [--check 7]

Each seed is a ``--preset calibration`` twin (demo-sized, traits drawn independently of
the genes): generated, prepared, and every nodule slice measured. The readout is fitted
on all of them (subject-grouped cross-validation chooses at most three features per
trait) and written beside the code with the twin version it belongs to. ``--check``
seeds are ordinary demo twins: the readout is applied to their real nodules, never fitted
on them, and each trait's Spearman with its truth (widest slice, bootstrap interval) is
printed and saved to ``benchmarks/results/readout_validity.csv``. Refit whenever the twin's
version changes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from rgsynth.analysis.readout import (
    READOUT_PATH,
    TRAIT_TARGETS,
    calibration_slices,
    fit_readout,
    load_readout,
    readout_column,
)
from rgsynth.fsutil import atomic_write_json, atomic_write_text
from rgsynth.twin.cohort import TWIN_VERSION

RESULTS = Path(__file__).parent / "results"


def prepared(work: Path, preset: str, seed: int) -> tuple[Path, Path]:
    cohort, cache = work / f"{preset}-{seed}", work / f"{preset}-{seed}-cache"
    rgsynth = [sys.executable, "-m", "rgsynth.cli"]
    if not (cohort / "ground_truth.json").is_file():
        subprocess.run(
            [
                *rgsynth,
                "synth-cohort",
                str(cohort),
                "--preset",
                preset,
                "--seed",
                str(seed),
                "--force",
            ],
            check=True,
        )
    subprocess.run([*rgsynth, "prepare", str(cohort), "--out", str(cache)], check=True)
    return cohort, cache


def slices(work: Path, preset: str, seed: int) -> pd.DataFrame:
    stored = work / f"{preset}-{seed}-slices.csv"
    if stored.is_file():
        return pd.read_csv(stored)
    table = calibration_slices(*prepared(work, preset, seed))
    table.to_csv(stored, index=False)
    return table


def validity(table: pd.DataFrame, resamples: int = 1000) -> list[dict]:
    widest = table[table["widest"]]
    rng = np.random.default_rng(0)
    rows = []
    for trait, target in TRAIT_TARGETS.items():
        pair = widest[[readout_column(trait), target]].dropna().to_numpy()
        rho = stats.spearmanr(pair[:, 0], pair[:, 1])[0]
        draws = [
            stats.spearmanr(*pair[rng.integers(len(pair), size=len(pair))].T)[0]
            for _ in range(resamples)
        ]
        low, high = np.nanpercentile(draws, [2.5, 97.5])
        rows.append(
            {"trait": trait, "spearman": rho, "ci_low": low, "ci_high": high, "n": len(pair)}
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103])
    parser.add_argument("--check", type=int, nargs="*", default=[])
    parser.add_argument("--work", type=Path, default=Path("readout-calibration"))
    parser.add_argument("--no-fit", action="store_true", help="check the committed readout")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.no_fit:
        table = pd.concat([slices(args.work, "calibration", s) for s in args.seeds])
        table = table.reset_index(drop=True)
        readout = fit_readout(
            table,
            TWIN_VERSION,
            {
                "seeds": args.seeds,
                "preset": "calibration",
                "n_slices": len(table),
                "n_subjects": int(table.groupby(["seed", "subject_id"]).ngroups),
            },
        )
        atomic_write_json(READOUT_PATH, readout.to_dict())
        for trait, r in readout.traits.items():
            print(f"{trait:14s} {', '.join(r.features):60s} CV ρ {r.calibration_spearman:.3f}")
    readout = load_readout()
    rows = []
    for seed in args.check:
        scored = readout.apply(slices(args.work, "demo", seed))
        for row in validity(scored):
            rows.append({"seed": seed, **row})
            print(
                f"seed {seed} {row['trait']:14s} ρ {row['spearman']:.3f} "
                f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}] n={row['n']}"
            )
    if rows:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / "readout_validity.csv"
        atomic_write_text(out, pd.DataFrame(rows).to_csv(index=False, float_format="%.4f"))


if __name__ == "__main__":
    main()
