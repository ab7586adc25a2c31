"""Why the old perturbation rule missed what fidelity saw: one change at a time.

    python benchmarks/bench_perturbation_ablation.py RUN [RUN ...] --truth ground_truth.json
        [--reference-cache CACHE]

For each trained run (and, with ``--reference-cache``, the reference generator on that
cache), the perturbation map of the truth's programs is computed five ways, each adding
one change to the one before:

1. ``genes``: every member gene ±2 z, bases any subject, empty masks dropped (the old rule);
2. ``+ empty = size 0``: empty masks read as size 0;
3. ``+ validation bases``: bases are validation donors only;
4. ``+ ±1/±2 arms``: four arms of the same per-gene move (slope over them);
5. ``axis``: the move is the program's first principal axis over the training profiles,
   in its SD (the new rule).

Each is scored against the truth (AUROC [interval over pairs], true pairs found, false
positives, diameter AUROC) and its empty-mask rate per arm is kept. Writes
``benchmarks/results/perturbation_ablation.csv``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from rgsynth.analysis.cohort import load_cohort
from rgsynth.analysis.features import FeatureExtractor
from rgsynth.analysis.ground_truth import load_truth, program_trait_table, score_against_truth
from rgsynth.analysis.maps import _fixed_backgrounds
from rgsynth.analysis.perturbation import (
    AXIS_ARMS,
    GENES_ARMS,
    perturbation_map,
    program_axes,
    program_matrix,
)
from rgsynth.analysis.readout import load_readout
from rgsynth.analysis.reference import ReferenceGenerator
from rgsynth.config import MapSettings
from rgsynth.fsutil import atomic_write_text
from rgsynth.inference import Synthesizer, load_run
from rgsynth.prepare.cache import cache_prepare_config

RESULTS = Path(__file__).parent / "results"


def steps(programs: pd.DataFrame, cohort, settings: MapSettings) -> list[tuple]:
    split = np.array(cohort.split)
    train, val = cohort.genes[split == "train"], cohort.genes[split == "val"]
    shift = settings.perturbation.shift
    per_gene = programs * shift
    half = programs * (shift / 2)  # ±1, ±2 arms of the same per-gene move, in units of shift/2
    return [
        ("1 genes (old rule)", per_gene, GENES_ARMS, cohort.genes, False),
        ("2 + empty = size 0", per_gene, GENES_ARMS, cohort.genes, True),
        ("3 + validation bases", per_gene, GENES_ARMS, val, True),
        ("4 + ±1/±2 arms", half, AXIS_ARMS, val, True),
        ("5 axis (new rule)", program_axes(programs, train), AXIS_ARMS, val, True),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="*")
    parser.add_argument("--truth", type=Path, required=True)
    parser.add_argument("--reference-cache", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "perturbation_ablation.csv")
    args = parser.parse_args()
    truth = load_truth(args.truth)
    settings = MapSettings()
    generators = []
    for run_dir in args.runs:
        run = load_run(run_dir)
        generators.append(
            (run.config.model.architecture, Synthesizer(run.generator), run.cache_root)
        )
    if args.reference_cache:
        generators.append(
            (
                "reference",
                ReferenceGenerator(args.truth, args.reference_cache),
                args.reference_cache,
            )
        )
    readout, rows = load_readout(), []
    for name, generator, cache in generators:
        cohort = load_cohort(cache)
        features = cohort.features()
        programs = program_matrix(truth.gene_sets, cohort.gene_names)
        backgrounds = _fixed_backgrounds(cache, settings)
        hu_window = cache_prepare_config(cache).hu_window
        extractor = FeatureExtractor(cohort.pixel_mm)
        for label, directions, arms, bases, empty_zero in steps(programs, cohort, settings):
            result = perturbation_map(
                generator,
                extractor,
                readout,
                directions,
                arms,
                backgrounds,
                bases,
                hu_window,
                settings.perturbation,
                features.std(numeric_only=True),
                empty_zero,
            )
            scores = score_against_truth(
                program_trait_table(result.table, "effect_sd"), truth, 1000, 0
            )
            empty = result.empty.groupby("arm")["empty_rate"].mean()
            row = {"generator": name, "step": label} | {
                k: scores.get(k)
                for k in (
                    "auroc",
                    "auroc_ci_low",
                    "auroc_ci_high",
                    "true_pairs_found",
                    "false_positive_rate",
                    "auroc_diameter",
                )
            }
            row |= {f"empty at {a:+g}": v for a, v in empty.items()}
            rows.append(row)
            print(row, flush=True)
            table = pd.DataFrame(rows)
            atomic_write_text(args.out, table.to_csv(index=False, float_format="%.4f"))
    with pd.option_context("display.width", 220):
        print(pd.DataFrame(rows).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
