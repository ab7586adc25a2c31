"""How much of the map do focus's gene inputs carry? A linear learner on exactly what its
generator sees, read by the perturbation map's own rule (issue 16 diagnostic).

    python benchmarks/bench_linear_map.py [--work /tmp/bench-map] [--seeds 0 1 2 3]

On each seed's ``bench_map.py cohort`` cache: the training donors' profiles go through the
projection focus fits (the first k whitened principal components of those donors,
``ProjectedGeneMapping.fit`` itself), each trait readout of the donor's widest
nodule slice (the classic pipeline's targets) is regressed on them by ordinary least
squares, and each true program's effect is the fitted model's change when the profile moves
one SD along the program's axis (``program_axes``, the ``axis`` rule of ``rgsynth map``),
with a Wald p-value, BH q over all pairs and ``score_against_truth``'s AUROC and interval.

If this linear reading matches the classic pipeline while the GAN's perturbation map falls
short, the information is in G's input and is lost in what G learns from it, not in the
number of donors or the gene projection. k = 5 shows how much the 10 components matter.
Rows go to ``benchmarks/results/linear_map.csv``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))

from bench_map import CURVES_CSV, RESULTS, paths
from rgsynth.analysis.cohort import load_cohort
from rgsynth.analysis.ground_truth import (
    TRAIT_FEATURES,
    load_truth,
    score_against_truth,
)
from rgsynth.analysis.perturbation import program_axes, program_matrix
from rgsynth.analysis.statistics import fdr
from rgsynth.models.blocks import ProjectedGeneMapping
from rgsynth.models.focus import GENE_COMPONENTS

OUT_CSV = RESULTS / "linear_map.csv"


def linear_map(genes: np.ndarray, readouts: pd.DataFrame, axes: pd.DataFrame, k: int):
    """(program, trait, effect, p, q): OLS of each standardised readout on the first k
    whitened PCs of ``genes`` (donors, G), each program axis pushed through the fit."""
    projection = ProjectedGeneMapping(genes.shape[1], k, 1, 1)  # only its fitted buffers
    projection.fit(torch.as_tensor(genes, dtype=torch.float32))
    mean = projection.mean.numpy().astype(np.float64)
    whiten = projection.components.numpy().astype(np.float64).T  # (G, k)
    scores = (genes.astype(np.float64) - mean) @ whiten
    moves = axes.to_numpy() @ whiten  # (P, k): each program's one-SD move in the PCs
    rows = []
    for trait, (feature, sign) in TRAIT_FEATURES.items():
        y = readouts[feature].to_numpy(np.float64)
        ok = np.isfinite(y)
        y = (y[ok] - y[ok].mean()) / y[ok].std()
        design = np.c_[np.ones(ok.sum()), scores[ok]]
        beta, *_ = np.linalg.lstsq(design, y, rcond=None)
        dof = max(len(y) - design.shape[1], 1)
        sigma2 = np.sum((y - design @ beta) ** 2) / dof
        cov = np.linalg.pinv(design.T @ design)[1:, 1:] * sigma2
        for program, move in zip(axes.index, moves, strict=True):
            effect, se = float(move @ beta[1:]), float(np.sqrt(move @ cov @ move))
            p = float(2 * stats.t.sf(abs(effect) / se, dof)) if se > 0 else 1.0
            rows.append({"program": program, "trait": trait, "effect": sign * effect, "p": p})
    table = pd.DataFrame(rows)
    table["q"] = fdr(table["p"].to_numpy())
    return table


def run_seed(work: Path, seed: int, ks: tuple[int, ...]) -> list[dict]:
    cohort_dir, cache = paths(work, seed)
    truth = load_truth(cohort_dir / "ground_truth.json")
    cohort = load_cohort(cache)
    train = np.array(cohort.split) == "train"
    ids = [s for s, keep in zip(cohort.subject_ids, train, strict=True) if keep]
    genes = cohort.genes[train]
    readouts = cohort.features().loc[ids]
    axes = program_axes(program_matrix(truth.gene_sets, cohort.gene_names), genes)
    rows = []
    for k in ks:
        scores = score_against_truth(linear_map(genes, readouts, axes, k), truth, 500, 0)
        rows.append(
            {
                "seed": seed,
                "components": k,
                "n_donors": len(ids),
                "map_auroc": round(scores["auroc"], 4),
                "map_auroc_lo": round(scores["auroc_ci_low"], 4),
                "map_auroc_hi": round(scores["auroc_ci_high"], 4),
                "true_pairs_found": round(scores["true_pairs_found"], 4),
                "false_positive_rate": round(scores["false_positive_rate"], 4),
            }
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-map"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    args = parser.parse_args()
    rows = [r for s in args.seeds for r in run_seed(args.work, s, (GENE_COMPONENTS, 5))]
    table = pd.DataFrame(rows)
    tmp = OUT_CSV.with_suffix(".csv.tmp")
    table.to_csv(tmp, index=False)
    tmp.replace(OUT_CSV)
    curves = pd.read_csv(CURVES_CSV)
    classic = curves[curves["model"] == "classic (true programs)"].set_index("seed")["map_auroc"]
    focus = curves[(curves["model"] == "focus") & (curves["step"] == 2025)]
    table["classic"] = table["seed"].map(classic).round(3)
    table["focus 15 min"] = table["seed"].map(focus.set_index("seed")["map_auroc"]).round(3)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
