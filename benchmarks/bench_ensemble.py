"""Issue 16's twenty-first round: three short `focus` runs as one generator, read with the
product's defaults (held-out donors at s^1/2), against one run of the same training steps.

The rule (``benchmarks/results/round21_decision_rule.txt``) was committed before any of
these runs was trained. Members are trained into ``<seed dir>/round21/<recipe>`` (675
steps each; the eighth round's members are not reused):

    python benchmarks/bench_ensemble.py train --seed 1 --members focus focus-seed1 focus-seed2
    python benchmarks/bench_ensemble.py read --seed 1 --members focus focus-seed1 focus-seed2
    python benchmarks/bench_ensemble.py table

A reading: the headline (``axis``) map of the members' mixture (each replicate's slope
their mean) with held-out bases divided by each member's s^p and the move kept at the
yardstick's step, at 8 replicates (as many syntheses as one run's 24: the rule's) and at
24; and the donor readings of the mixture (held-out slice i painted by member i mod K:
one synthesis per slice, as a single run's), genes divided by s^p. Rows go to
``benchmarks/results/round21_ensemble.csv``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

import bench_map
from bench_map import RESULTS, paths, register_ablations, seed_dir, t_interval
from bench_map_moves import axis_settings, classic_targets, map_recovery
from bench_map_score import append_row, done_keys, held_out, score
from rgsynth.analysis.maps import _fixed_backgrounds, perturbation_maps
from rgsynth.config import UNSHRINK_STRENGTH
from rgsynth.data import load_split
from rgsynth.inference import Synthesis, Synthesizer, assemble, load_run

ENSEMBLE_CSV = RESULTS / "round21_ensemble.csv"
TABLE_TXT = RESULTS / "round21_ensemble_table.txt"
MEMBER_STEPS = 675  # a third of the single run's 2025 (15 calibrated minutes)
FOLDER = "round21"
ENSEMBLES = {
    "A": ("focus", "focus-seed1", "focus-seed2"),
    "B": ("focus-seed3", "focus-seed4", "focus-seed5"),
}
SINGLES = ("focus", "focus-seed1", "focus-seed2")  # round 20's p = 1/2 readings
REPORT_SEEDS = (1, 2, 3)
RULE_REPLICATES = 8  # x 3 members = 24 syntheses per arm, the single run's count
READ_REPLICATES = (RULE_REPLICATES, 24)  # 24: the map's default count, reported beside
FIELDS = [
    "seed", "ensemble", "members", "power", "replicates", "shrinkage", "n_donors",
    "donor_auroc", "donor_auroc_lo", "donor_auroc_hi", "donor_auroc_shuffled", "donor_gain",
    "donor_gain_lo", "donor_gain_hi", "frd", "empty_rate", "map_auroc", "map_auroc_lo",
    "map_auroc_hi", "true_pairs_found", "false_positive_rate",
    "null_program_false_positives", "map_empty_rate", "seconds",
]  # fmt: skip


class Mixture:
    """One synthesis per item, item i painted by member i mod K: a uniform mixture of the
    members with the member fixed by position (so a reading is reproducible)."""

    def __init__(self, members: list[Synthesizer]) -> None:
        self.members = members

    def __call__(self, backgrounds, profiles, seeds, heights_mm=None) -> Synthesis:
        def paint(member: Synthesizer, rows: np.ndarray) -> Synthesis:
            return member(
                backgrounds[rows], profiles[rows], [seeds[i] for i in rows],
                **({} if heights_mm is None else {"heights_mm": np.asarray(heights_mm)[rows]}),
            )  # fmt: skip

        count, k = len(seeds), len(self.members)
        picks = [(member, np.arange(i, count, k)) for i, member in enumerate(self.members)]
        return assemble(count, ((rows, paint(m, rows)) for m, rows in picks if len(rows)))


def train_members(work: Path, seed: int, members: list[str]) -> None:
    for recipe in members:
        root = seed_dir(work, seed) / FOLDER / recipe
        bench_map.train(work, seed, recipe, [MEMBER_STEPS], root=root)


def read(
    work: Path, seed: int, members: list[str], power: float = UNSHRINK_STRENGTH,
    replicates: tuple[int, ...] = READ_REPLICATES,
) -> None:  # fmt: skip
    """The rule's reading of one ensemble on one seed (map at 8 and 24 replicates; the
    addendum's plain reading: ``power`` 0, 24 replicates)."""
    name = next((k for k, v in ENSEMBLES.items() if list(v) == list(members)), "+".join(members))
    done = done_keys(ENSEMBLE_CSV, ("seed", "ensemble", "power", "replicates"))
    todo = [r for r in replicates if (str(seed), name, str(power), str(r)) not in done]
    if not todo:
        return
    register_ablations()
    cohort_dir, cache = paths(work, seed)
    setup = held_out(cohort_dir, cache)
    train_genes = load_split(cache, "train").genes
    runs = [
        load_run(seed_dir(work, seed) / FOLDER / m / f"at-{MEMBER_STEPS:06d}", cache)
        for m in members
    ]
    shrinkages = [run.unseen_shrinkage(train_genes) for run in runs]
    if any(s is None for s in shrinkages):
        raise SystemExit(f"seed {seed}: a member has no fitted gene components")
    factors = [s**power for s in shrinkages]
    if max(factors) - min(factors) > 1e-6:  # the move is one number for every member
        raise SystemExit(f"seed {seed}: members' shrinkages differ: {shrinkages}")
    synthesizers = [Synthesizer(run.generator) for run in runs]
    mixture = Mixture(synthesizers)
    context = setup.context(runs[0], mixture)
    base = axis_settings()
    with contextlib.ExitStack() as stack:
        for run, factor in zip(runs, factors, strict=True):
            stack.enter_context(run.generator.mapping.unseen(factor))
        start = time.perf_counter()
        donor = score(
            context, setup.truth, base, None, setup.programs, setup.features, map_too=False
        )
        donor_seconds = time.perf_counter() - start
        for replicates in todo:
            start = time.perf_counter()
            maps_settings = dataclasses.replace(
                base, perturbation=dataclasses.replace(base.perturbation, replicates=replicates)
            )
            fixed = _fixed_backgrounds(cache, maps_settings)
            maps = perturbation_maps(
                synthesizers, setup.cohort, setup.features, setup.programs, fixed,
                setup.config.hu_window, maps_settings, unseen_move=factors[0],
            )  # fmt: skip
            append_row(ENSEMBLE_CSV, FIELDS, donor | {
                "seed": seed, "ensemble": name, "members": "+".join(members), "power": power,
                "replicates": replicates, "shrinkage": shrinkages[0],
                **map_recovery(maps, setup.truth),
                "seconds": round(time.perf_counter() - start + donor_seconds),
            })  # fmt: skip
            print(f"seed {seed} ensemble {name} at {replicates} replicates: read", flush=True)


def table() -> str:
    """Each ensemble reading beside its seed's single runs (round 20's p = 1/2), the
    rule's differences and the targets met."""

    from bench_partial_unshrink import readings

    singles = readings(2025)
    singles = singles[(singles["power"] == UNSHRINK_STRENGTH) & singles["model"].isin(
        [bench_map.model_label(m) for m in SINGLES])]  # fmt: skip
    ens = pd.read_csv(ENSEMBLE_CSV)
    targets = classic_targets()
    halfway = singles.groupby("seed")["halfway"].mean()
    lines = ["single 2025-step runs, p = 1/2 (round 20):"]
    for _, r in singles.sort_values(["seed", "model"]).iterrows():
        lines.append(
            f"  seed {r.seed} {r.model}: donor {r.donor_auroc:.3f} (shuffled "
            f"{r.donor_auroc_shuffled:.3f}, halfway {r.halfway:.3f}), gain {r.donor_gain:+.3f} "
            f"[{r.donor_gain_lo:+.3f}, {r.donor_gain_hi:+.3f}], map {r.map_auroc:.3f} (target "
            f"{r.map_target:.3f}), empty {100 * r.empty_rate:.1f} % (map's "
            f"{100 * r.map_empty_rate:.1f} %)"
        )
    lines.append("ensembles of three 675-step runs:")
    for _, r in ens.sort_values(["seed", "ensemble", "power", "replicates"]).iterrows():
        half = halfway.get(r.seed, np.nan)
        lines.append(
            f"  seed {r.seed} {r.ensemble} (p = {r.power:g}, {r.replicates} replicates): donor "
            f"{r.donor_auroc:.3f}"
            f" (shuffled {r.donor_auroc_shuffled:.3f}, halfway {half:.3f}), gain "
            f"{r.donor_gain:+.3f} [{r.donor_gain_lo:+.3f}, {r.donor_gain_hi:+.3f}], FRD "
            f"{r.frd:.1f}, map {r.map_auroc:.3f} [{r.map_auroc_lo:.2f}, {r.map_auroc_hi:.2f}] "
            f"(target {targets.get(r.seed, np.nan):.3f}), null pairs called "
            f"{100 * r.false_positive_rate:.0f} %, empty {100 * r.empty_rate:.1f} % (map's "
            f"{100 * r.map_empty_rate:.1f} %)"
        )
    rule = ens[(ens["replicates"] == RULE_REPLICATES) & ens["seed"].isin(REPORT_SEEDS)
               & (ens["power"] == UNSHRINK_STRENGTH)]  # fmt: skip
    mean = singles.groupby("seed")[["map_auroc", "donor_gain"]].mean()
    if len(rule):
        lines.append(f"the rule's readings ({len(rule)}; {RULE_REPLICATES} replicates), "
                     "each against its seed's single runs' mean:")  # fmt: skip
        for value in ("map_auroc", "donor_gain"):
            diff = rule[value].to_numpy() - rule["seed"].map(mean[value]).to_numpy()
            m, low, high = t_interval(diff)
            lines.append(f"  {value}: {m:+.3f} [{low:+.3f}, {high:+.3f}], above 0 in "
                         f"{int((diff > 0).sum())} of {len(diff)}")  # fmt: skip
        over = int(((rule["empty_rate"] > 0.05) | (rule["map_empty_rate"] > 0.05)).sum())
        lines.append(f"  gain intervals above 0: {int((rule['donor_gain_lo'] > 0).sum())} of "
                     f"{len(rule)}; readings with empty masks over 5 %: {over}")  # fmt: skip
    for label, part, halfs in (
        ("single runs (9)", singles[singles["seed"].isin(REPORT_SEEDS)], None),
        ("ensembles (rule's readings)", rule, halfway),
    ):
        if not len(part):
            continue
        half = part["seed"].map(halfs) if halfs is not None else part["halfway"]
        met = {
            "gain CI above 0": (part["donor_gain_lo"] > 0),
            "halfway": part["donor_auroc"] >= half,
            "map": part["map_auroc"] >= part["seed"].map(targets),
            "empty <= 5 %": part["empty_rate"] <= 0.05,
        }
        every = np.logical_and.reduce([v.to_numpy() for v in met.values()])
        lines.append(
            f"targets met, {label}: "
            + ", ".join(f"{k} {int(v.sum())}" for k, v in met.items())
            + f", all at once {int(every.sum())}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("train", "read", "table"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-map"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--members", nargs="+", default=list(ENSEMBLES["A"]))
    parser.add_argument("--power", type=float, default=UNSHRINK_STRENGTH)
    parser.add_argument("--replicates", type=int, nargs="+", default=list(READ_REPLICATES))
    args = parser.parse_args()
    if args.command == "train":
        train_members(args.work, args.seed, args.members)
    elif args.command == "read":
        read(args.work, args.seed, args.members, args.power, tuple(args.replicates))
    if args.command != "train" and ENSEMBLE_CSV.is_file():
        text = table()
        TABLE_TXT.write_text(text + "\n")
        print(text)


if __name__ == "__main__":
    main()
