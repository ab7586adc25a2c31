"""Issue 16, after round 40: what the real slices' moments inside the mask carry of the
twin's true traits, per training donor (Spearman over donors of the donor-mean
descriptor against the ground truth the twin wrote). Read before writing a next round's
rule that asks G for the SD inside its mask (nodule_descriptors' column 2), as round 40
asked for the mean (column 1). It reads real slices and the twin's truth only, no
generator and no map; a rule that acts on it should quote development seed 0 (the first
read, results/round40_inside_moments.txt, is on report seeds 1-3 because seed 0's twin
was not rebuilt that session). Needs the bench twins (`bench_map.py cohort --seed S`):

    python benchmarks/check_inside_moments.py --seeds 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from bench_map import nodule_descriptors, paths
from rgsynth.analysis.ground_truth import load_truth
from rgsynth.data import load_split

COLUMNS = ("log area", "mean inside", "SD inside")
TRAITS = ("solidity", "heterogeneity", "spiculation", "lobulation")


def donor_table(work: Path, seed: int) -> np.ndarray:
    """(donors, 3 + 4): donor-mean descriptors beside the donor's true traits."""
    cohort, cache = paths(work, seed)
    split = load_split(cache, "train")
    traits = load_truth(cohort / "ground_truth.json").traits
    image = torch.from_numpy(split.nodule_image).unsqueeze(1)
    mask = torch.from_numpy(split.nodule_mask).unsqueeze(1)
    described = nodule_descriptors(image, mask).numpy()
    rows = []
    for n, subject in enumerate(split.subject_ids):
        if subject in traits.index:
            mine = described[split.nodule_subject == n, :3].mean(axis=0)
            rows.append([*mine, *traits.loc[subject, list(TRAITS)]])
    return np.array(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-map"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    print("| seed | donors | descriptor | " + " | ".join(TRAITS) + " |")
    print("|---|---|---|" + "---|" * len(TRAITS))
    for seed in args.seeds:
        table = donor_table(args.work, seed)
        for j, name in enumerate(COLUMNS):
            rho = [spearmanr(table[:, j], table[:, 3 + k])[0] for k in range(len(TRAITS))]
            cells = " | ".join(f"{r:+.2f}" for r in rho)
            print(f"| {seed} | {len(table)} | {name} | {cells} |")


if __name__ == "__main__":
    main()
