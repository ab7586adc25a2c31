"""Issue 16's nineteenth round: where `--unshrink-unseen`'s map gain comes from.

The eighteenth round divided an unseen donor's whitened gene scores by the training donors'
leave-one-out shrinkage s in every profile the map painted, base and move together, so
the move along each program was 1/s (about 2x) the yardstick's step in score space. Four
paired readings of one snapshot's headline (`axis`) map separate the two
(`benchmarks/results/round19_decision_rule.txt`):

    A  plain base, plain move          B  unshrunk base, move x 1/s  (round 18)
    C  unshrunk base, plain move       D  plain base, move x 1/s     (the larger move alone)

Map only, through the product's `perturbation_maps` (its `unseen_move`), 24 replicates,
final weights. Rows go to `benchmarks/results/round19_moves.csv`:

    python benchmarks/bench_map_moves.py --seed 1 --recipe focus-daug-seed1
    python benchmarks/bench_map_moves.py --table
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench_map import (
    CURVES_CSV,
    RESULTS,
    model_label,
    paths,
    register_ablations,
    seed_dir,
    t_interval,
)
from bench_map_score import append_row, done_keys, unshrunk
from rgsynth.analysis.cohort import load_cohort
from rgsynth.analysis.ground_truth import load_truth, program_trait_table, score_against_truth
from rgsynth.analysis.maps import _fixed_backgrounds, perturbation_maps
from rgsynth.analysis.perturbation import program_matrix
from rgsynth.config import MapSettings
from rgsynth.data import load_split
from rgsynth.inference import Synthesizer, load_run
from rgsynth.prepare.cache import cache_prepare_config

MOVES_CSV = RESULTS / "round19_moves.csv"
FIELDS = [
    "seed", "model", "step", "reading", "base", "move", "shrinkage", "map_auroc",
    "map_auroc_lo", "map_auroc_hi", "true_pairs_found", "false_positive_rate",
    "null_program_false_positives", "map_empty_rate", "seconds",
]  # fmt: skip
VALUES = ("map_auroc", "map_empty_rate", "false_positive_rate", "null_program_false_positives")
READINGS = {  # reading: (base unshrunk?, the move's factor in score space: "1" or "1/s")
    "A": (False, "1"),
    "B": (True, "1/s"),
    "C": (True, "1"),
    "D": (False, "1/s"),
}


def read_moves(work: Path, seed: int, recipe: str, step: int = 2025) -> None:
    """The four readings of ``recipe``'s snapshot at ``step`` on one seed's twin; readings
    already in the CSV are skipped."""
    done = done_keys(MOVES_CSV, ("seed", "model", "step", "reading"))
    todo = [r for r in READINGS if (str(seed), recipe, str(step), r) not in done]
    if not todo:
        return
    register_ablations()
    cohort_dir, cache = paths(work, seed)
    snapshot = seed_dir(work, seed) / recipe / f"at-{step:06d}"
    truth = load_truth(cohort_dir / "ground_truth.json")
    cohort = load_cohort(cache)
    settings = axis_settings()
    programs = program_matrix(truth.gene_sets, cohort.gene_names)
    fixed = _fixed_backgrounds(cache, settings)
    hu_window = cache_prepare_config(cache).hu_window
    features = cohort.features()
    run = load_run(snapshot, cache)
    synthesizer = Synthesizer(run.generator)
    train_genes = load_split(cache, "train").genes
    shrinkage = run.unseen_shrinkage()
    if shrinkage is None:
        raise SystemExit(f"{snapshot}: no fitted gene components, nothing to unshrink")
    for reading in todo:
        unshrink_base, move = READINGS[reading]
        start = time.perf_counter()
        # the synthesizer divides every score by s inside `unshrunk`: B's move is then
        # 1/s, C's is put back by multiplying it by s; D multiplies a plain move by 1/s
        factor = {("1", True): shrinkage, ("1/s", False): 1 / shrinkage}.get(
            (move, unshrink_base), 1.0
        )

        def paint(factor: float = factor) -> dict:
            return perturbation_maps(
                synthesizer, cohort, features, programs, fixed, hu_window, settings,
                unseen_move=factor,
            )  # fmt: skip

        if unshrink_base:
            with unshrunk(run, train_genes):
                maps = paint()
        else:
            maps = paint()
        append_row(MOVES_CSV, FIELDS, {
            "seed": seed, "model": model_label(recipe), "step": step, "reading": reading,
            "base": "unshrunk" if unshrink_base else "plain", "move": move,
            "shrinkage": shrinkage, **map_recovery(maps, truth),
            "seconds": round(time.perf_counter() - start),
        })  # fmt: skip


def axis_settings() -> MapSettings:
    """The product's map settings with the headline rule alone: the map AUROC reads it,
    and each rule's draws are seeded apart, so dropping the genes rule leaves the axis map
    as the product paints it."""
    base = MapSettings()
    return dataclasses.replace(
        base, perturbation=dataclasses.replace(base.perturbation, rules=("axis",))
    )


def map_recovery(maps: dict, truth) -> dict:
    """The headline map's recovery of the twin's true pairs (map AUROC with its interval,
    true pairs found, null pairs called) and the map's empty-mask rate, as CSV fields."""
    table = program_trait_table(maps["programs"].table, "effect_sd")
    recovery = score_against_truth(table, truth, 500, 0)
    true = [truth.effects.at[p, t] != 0 if p in truth.effects.index else False
            for p, t in zip(table["program"], table["trait"], strict=True)]  # fmt: skip
    size = table["effect"].abs().groupby(true).mean()
    return {
        # the mechanism: mean |effect| (trait SDs) of the true pairs and of the others
        "true_mean_effect": float(size.get(True, np.nan)),
        "null_mean_effect": float(size.get(False, np.nan)),
        "map_auroc": recovery["auroc"],
        "map_auroc_lo": recovery["auroc_ci_low"], "map_auroc_hi": recovery["auroc_ci_high"],
        "true_pairs_found": recovery.get("true_pairs_found"),
        "false_positive_rate": recovery.get("false_positive_rate"),
        "null_program_false_positives": recovery.get("null_program_false_positives"),
        "map_empty_rate": float(maps["programs"].empty["empty_rate"].mean()),
    }  # fmt: skip


def classic_targets() -> dict[int, float]:
    """Per twin seed, issue 16's map target: max(0.75, classic with true programs - 0.10),
    the classic pipeline as `bench_map.py score` read it on the same twin."""
    curves = pd.read_csv(CURVES_CSV)
    classic = curves[curves["model"] == "classic (true programs)"]
    return {
        int(s): max(0.75, float(a) - 0.10)
        for s, a in zip(classic.seed, classic.map_auroc, strict=True)
    }


def paired_table(path: Path = MOVES_CSV, report_seeds: tuple[int, ...] = (1, 2, 3)) -> str:
    """Per reading: the mean over the report snapshots, and the paired differences the
    rule names (C - A, B - C, D - A) with 95 % t-intervals and how often each is above 0."""

    table = pd.read_csv(path)
    lines = ["per snapshot (map AUROC A / B / C / D; empty masks of the map, %):"]
    wide = table.pivot_table(index=["seed", "model"], columns="reading", values=list(VALUES))
    targets = classic_targets()
    met = dict.fromkeys(READINGS, 0)
    for (seed, model), row in wide.iterrows():
        aurocs = " / ".join(f"{row['map_auroc'].get(r, np.nan):.3f}" for r in READINGS)
        empties = " / ".join(f"{100 * row['map_empty_rate'].get(r, np.nan):.1f}" for r in READINGS)
        false = " / ".join(
            f"{100 * row['false_positive_rate'].get(r, np.nan):.0f}" for r in READINGS
        )
        target = targets.get(seed, np.nan)
        lines.append(f"  seed {seed} {model}: {aurocs} (target {target:.3f})   empty {empties}"
                     f"   null pairs called {false}")  # fmt: skip
        if seed in report_seeds:
            for r in READINGS:
                met[r] += int(row["map_auroc"].get(r, np.nan) >= target)
    lines.append("map target met on the report seeds: "
                 + ", ".join(f"{r} {n}" for r, n in met.items()))  # fmt: skip
    report = wide[wide.index.get_level_values("seed").isin(report_seeds)]
    for a, b in (("C", "A"), ("B", "C"), ("D", "A"), ("B", "A")):
        for value in VALUES:
            if a not in report[value] or b not in report[value]:
                continue
            diff = (report[value][a] - report[value][b]).dropna().to_numpy()
            if len(diff) < 2:
                continue
            mean, low, high = t_interval(diff)
            lines.append(
                f"{a} - {b} {value}: {mean:+.3f} [{low:+.3f}, {high:+.3f}]"
                f" (above 0 in {(diff > 0).sum()} of {len(diff)})"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-map"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipe", default="focus")
    parser.add_argument("--step", type=int, default=2025)
    parser.add_argument("--table", action="store_true", help="print the paired table only")
    args = parser.parse_args()
    if not args.table:
        read_moves(args.work, args.seed, args.recipe, args.step)
    print(paired_table())


if __name__ == "__main__":
    main()
