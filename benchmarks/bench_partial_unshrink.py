"""Issue 16's twentieth round: unseen donors' scores divided by a power of the shrinkage.

`--unshrink-unseen` divides an unseen donor's whitened gene scores by the training donors'
leave-one-out shrinkage s (p = 1). Over `focus`'s report readings it raised the donor gain
and the map but also the empty masks. This reads the same snapshots at s^p with the
p fixed in `benchmarks/results/round20_decision_rule.txt` (1/2) and sets each reading
beside the plain (p = 0) and full (p = 1) readings of the same weights already in
`map_curves.csv` (donor readings) and `round19_moves.csv` (the map, readings A and C).

Each reading: donor AUROC matched and shuffled with the held-out donors' genes divided by
s^p, FRD and empty masks (`bench_map_score.score`, no map), then the headline (`axis`)
map through the product's `perturbation_maps`, bases divided by s^p and the move
multiplied by s^p in gene space (the yardstick's step, as the product's C reading).
Rows go to `benchmarks/results/round20_partial.csv`:

    python benchmarks/bench_partial_unshrink.py --seed 1 --recipe focus-seed1
    python benchmarks/bench_partial_unshrink.py --table
"""

from __future__ import annotations

import argparse
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
from bench_map_moves import MOVES_CSV, axis_settings, classic_targets, map_recovery
from bench_map_score import REREAD, UNSHRUNK, append_row, done_keys, held_out, score
from rgsynth.analysis.maps import _fixed_backgrounds, perturbation_maps
from rgsynth.data import load_split
from rgsynth.inference import Synthesizer, load_run

PARTIAL_CSV = RESULTS / "round20_partial.csv"
TABLE_TXT = RESULTS / "round20_partial_table.txt"
POWER = 0.5  # fixed by the round's rule before any reading
FIELDS = [
    "seed", "model", "step", "power", "shrinkage", "factor", "n_donors", "donor_auroc",
    "donor_auroc_lo", "donor_auroc_hi", "donor_auroc_shuffled", "donor_gain",
    "donor_gain_lo", "donor_gain_hi", "frd", "empty_rate", "map_auroc", "map_auroc_lo",
    "map_auroc_hi", "true_pairs_found", "false_positive_rate",
    "null_program_false_positives", "map_empty_rate", "seconds",
]  # fmt: skip
RULE_RECIPES = ("focus", "focus-seed1", "focus-seed2")  # the rule's 9 report readings
BESIDE = ("focus-daug-seed1", "focus-daug-seed2")  # read beside them (15 in all)
CONFIRMATION = ("focus-seed3",)  # the addendum's weights the rule never saw
REPORT_SEEDS = (1, 2, 3)


def read(
    work: Path, seed: int, recipe: str, power: float, step: int = 2025, csv: Path = PARTIAL_CSV
) -> None:
    """One reading of ``recipe``'s snapshot at ``step`` on one seed's twin with unseen
    donors' scores divided by s**power, appended to ``csv`` (another round's file gets the
    map's true / null mean |effect| too); skipped if the CSV has it."""
    label = model_label(recipe)
    if (str(seed), label, str(step), str(power)) in done_keys(
        csv, ("seed", "model", "step", "power")
    ):
        return
    start = time.perf_counter()
    register_ablations()
    cohort_dir, cache = paths(work, seed)
    snapshot = seed_dir(work, seed) / recipe / f"at-{step:06d}"
    setup = held_out(cohort_dir, cache)
    truth, cohort, features, programs = setup.truth, setup.cohort, setup.features, setup.programs
    maps_settings = axis_settings()  # the headline rule alone, as bench_map_moves reads it
    fixed = _fixed_backgrounds(cache, maps_settings)
    run = load_run(snapshot, cache)
    shrinkage = run.unseen_shrinkage(load_split(cache, "train").genes)
    if shrinkage is None:
        raise SystemExit(f"{snapshot}: no fitted gene components, nothing to unshrink")
    factor = shrinkage**power
    synthesizer = Synthesizer(run.generator)
    context = setup.context(run, synthesizer)
    # every profile painted here is a held-out donor's or a move from one: all unseen
    with run.generator.mapping.unseen(factor):
        row = score(context, truth, maps_settings, fixed, programs, features, map_too=False)
        maps = perturbation_maps(
            synthesizer, cohort, features, programs, fixed, setup.config.hu_window, maps_settings,
            unseen_move=factor,
        )  # fmt: skip
    fields = FIELDS if csv == PARTIAL_CSV else [*FIELDS, "true_mean_effect", "null_mean_effect"]
    append_row(csv, fields, row | {
        "seed": seed, "model": label, "step": step, "power": power, "shrinkage": shrinkage,
        "factor": factor, **map_recovery(maps, truth),
        "seconds": round(time.perf_counter() - start),
    })  # fmt: skip


def readings(step: int = 2025) -> pd.DataFrame:
    """One row per (seed, model, power in 0, the round's, 1): donor readings and map, the
    plain and full ones from the earlier rounds' files, the partial ones from this one's."""
    every = pd.read_csv(CURVES_CSV)
    reference = every[every["model"] == "reference"].set_index("seed")["donor_auroc"]
    curves = every[every["step"] == step]
    moves = pd.read_csv(MOVES_CSV)
    partial = pd.read_csv(PARTIAL_CSV)
    partial = partial[partial["step"] == step]
    donor = ["donor_auroc", "donor_auroc_shuffled", "donor_gain", "donor_gain_lo",
             "donor_gain_hi", "empty_rate"]  # fmt: skip
    maps = ["map_auroc", "false_positive_rate", "map_empty_rate"]
    rows = []
    for (seed, model), group in partial.groupby(["seed", "model"]):
        for power in (0.0, 1.0):
            # a retrained snapshot's plain row is its "plain re-read"
            labels = [model + UNSHRUNK] if power else [model + REREAD, model]
            found = curves[(curves["seed"] == seed) & curves["model"].isin(labels)]
            found = found.sort_values("model", key=lambda m: m.map(labels.index))
            move = moves[(moves["seed"] == seed) & (moves["model"] == model)
                         & (moves["reading"] == ("C" if power else "A"))]  # fmt: skip
            if found.empty or move.empty:
                continue
            key = {"seed": seed, "model": model, "power": power}
            rows.append(key | found.iloc[0][donor].to_dict() | move.iloc[0][maps].to_dict())
        for _, row in group.iterrows():
            rows.append(row[["seed", "model", "power", *donor, *maps]].to_dict())
    table = pd.DataFrame(rows).drop_duplicates(["seed", "model", "power"], keep="last")
    table = with_targets(table, reference, map_empty_too=False)
    return table.sort_values(["model", "seed", "power"]).reset_index(drop=True)


def with_targets(table: pd.DataFrame, reference: pd.Series, map_empty_too: bool) -> pd.DataFrame:
    """``table`` with each reading's 15-minute targets (halfway mark from the seed's
    ``reference`` donor AUROC, map target) and which it meets; the empty-mask target on
    the donor readings alone, or also on the map's with ``map_empty_too``."""
    table["halfway"] = table["donor_auroc_shuffled"] + 0.5 * (
        table["seed"].map(reference) - table["donor_auroc_shuffled"]
    )
    table["map_target"] = table["seed"].map(classic_targets())
    table["gain_ok"] = table["donor_gain_lo"] > 0
    table["halfway_ok"] = table["donor_auroc"] >= table["halfway"]
    table["map_ok"] = table["map_auroc"] >= table["map_target"]
    table["empty_ok"] = table["empty_rate"] <= 0.05
    if map_empty_too:
        table["empty_ok"] &= table["map_empty_rate"] <= 0.05
    table["all_ok"] = table[["gain_ok", "halfway_ok", "map_ok", "empty_ok"]].all(axis=1)
    return table


def summary(table: pd.DataFrame, paired: bool = True) -> str:
    """Per reading p = 0 / partial / 1; over the rule's report readings the paired
    differences (95 % t-intervals, how often above 0) and the targets met per power."""

    powers = sorted(table["power"].unique())
    lines = [f"powers read: {', '.join(f'{p:g}' for p in powers)}",
             "per reading (p = " + " / ".join(f"{p:g}" for p in powers) + "):"]  # fmt: skip
    for (model, seed), group in table.groupby(["model", "seed"], sort=False):
        by = group.set_index("power")

        def cells(column: str, scale: float = 1.0, fmt: str = ".3f", by=by) -> str:
            return " / ".join(format(scale * by[column].get(p, np.nan), fmt) for p in powers)

        lines.append(
            f"  seed {seed} {model}: donor {cells('donor_auroc')} (halfway "
            f"{cells('halfway')}); gain {cells('donor_gain', fmt='+.3f')} (lo "
            f"{cells('donor_gain_lo', fmt='+.3f')}); map {cells('map_auroc')} (target "
            f"{by['map_target'].iloc[0]:.3f}); empty {cells('empty_rate', 100, '.1f')} %, "
            f"map's {cells('map_empty_rate', 100, '.1f')} %; null pairs called "
            f"{cells('false_positive_rate', 100, '.0f')} %; every target "
            + " / ".join("yes" if by["all_ok"].get(p, False) else "no" for p in powers)
        )
    if not paired:
        return "\n".join(lines)
    report = table[table["seed"].isin(REPORT_SEEDS)]
    rule = report[report["model"].isin(RULE_RECIPES)]
    lines += _paired(rule, powers, "the rule's readings (focus at training seeds 0-2, seeds 1-3)")
    lines += _paired(report[report["model"].isin(RULE_RECIPES + BESIDE)], powers,
                     "every report reading of the rule's round (focus and focus-daug)")  # fmt: skip
    confirmation = report[report["model"].isin(CONFIRMATION)]
    if len(confirmation):
        lines += _paired(confirmation, powers, "the addendum's confirmation (focus t3)")
    return "\n".join(lines)


def _paired(rule: pd.DataFrame, powers: list[float], title: str) -> list[str]:
    """Over ``rule``'s readings: each partial power against 0 and 1 (95 % t-intervals and
    how often above 0), and the targets met at each power."""

    lines = []
    wide = rule.pivot_table(index=["seed", "model"], columns="power",
                            values=["donor_gain", "map_auroc", "empty_rate", "map_empty_rate",
                                    "false_positive_rate", "donor_auroc"])  # fmt: skip
    n = len(wide)
    lines.append(f"{title}, {n} readings:")
    partial = [p for p in powers if p not in (0.0, 1.0)] if n else []
    for p in partial:
        for against in (0.0, 1.0):
            for value in ("donor_gain", "map_auroc", "empty_rate", "map_empty_rate",
                          "false_positive_rate"):  # fmt: skip
                diff = (wide[value][p] - wide[value][against]).dropna().to_numpy()
                if len(diff) < 2:
                    continue
                mean, low, high = t_interval(diff)
                lines.append(
                    f"  p={p:g} - p={against:g} {value}: {mean:+.3f} "
                    f"[{low:+.3f}, {high:+.3f}] (above 0 in "
                    f"{(diff > 0).sum()} of {len(diff)})"
                )
    for p in powers:
        at = rule[rule["power"] == p]
        over = int(((at["empty_rate"] > 0.05) | (at["map_empty_rate"] > 0.05)).sum())
        lines.append(
            f"  targets met at p={p:g} ({len(at)} readings): gain CI above 0 "
            f"{int(at['gain_ok'].sum())}, halfway {int(at['halfway_ok'].sum())}, map "
            f"{int(at['map_ok'].sum())}, empty <= 5 % {int(at['empty_ok'].sum())}, every "
            f"target at once {int(at['all_ok'].sum())}; empty over 5 % in any reading "
            f"(donor or map) {over}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-map"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipe", default="focus")
    parser.add_argument("--power", type=float, default=POWER)
    parser.add_argument("--step", type=int, default=2025)
    parser.add_argument("--table", action="store_true", help="print the table only")
    parser.add_argument("--csv", type=Path, help="another round's CSV: read into it, no table")
    args = parser.parse_args()
    if args.csv is not None:
        read(args.work, args.seed, args.recipe, args.power, args.step, args.csv)
        return
    if not args.table:
        read(args.work, args.seed, args.recipe, args.power, args.step)
    # the 15-minute readings with the rule's paired tables, then any other budget's
    steps = sorted(set(pd.read_csv(PARTIAL_CSV)["step"]) - {2025})
    text = "\n\n".join(
        [f"2025 steps (15 minutes):\n{summary(readings(2025))}"]
        + [f"{step} steps:\n{summary(readings(step), paired=False)}" for step in steps]
    )
    TABLE_TXT.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
