"""Issue 16, eighth round: how precise is the map's readout, and does a map averaged over
independently trained runs beat one run of the same total training steps?

    python benchmarks/bench_map_members.py --seed 1 [--work /tmp/bench-map]

Reads the snapshots ``bench_map.py train`` wrote (``focus``, ``focus-seed1`` at 675 and
2025 steps, ``focus-seed2`` at 675) and scores the headline perturbation map (the
``axis`` rule, ``rgsynth map``'s code and other defaults, held-out bases) against the
truth, for these *arms*:

- ``single``: one 2025-step run (training seeds 0 and 1), at the map's default 24
  replicates (readout seed 0) and at 72 (as many syntheses per program as three members
  at 24); one of the two runs per seed also at readout seeds 1 to 3 (how much of a map's
  score is the readout's own noise) and at 216;
- ``member``: each 675-step run alone, 24 and 72 replicates;
- ``early`` (tenth round): a run's 675-step snapshot alone at 72 replicates, readout seeds
  0 and 1, against ``snapshots`` (675 + 2025 steps at 36 each, ninth round) and ``single``
  (2025 steps at 72), on training seeds 0 to 3;
- ``three`` (eleventh round): a run's snapshots at 675, 1350 and 2025 steps as one map,
  24 replicates each (as many syntheses as ``snapshots`` at 36 each), readout seeds 0
  and 1; the 1350-step snapshot is trained by resuming the run's 675-step one
  (``--resume-mid``); and, read after the round's verdict, the 1350-step snapshot alone
  (``mid``, 72 replicates) on the rule's test runs;
- ``ensemble``: the three 675-step runs (training seeds 0, 1, 2; 2025 steps in all, the
  same training budget as one single run) as one map, each replicate's slope the
  members' mean (``perturbation_map`` with several synthesizers), 24 and 72 replicates;
  and its donor AUROC gain on the held-out donors, each slice's features the members'
  mean.

Rows go to ``benchmarks/results/map_members.csv`` (one per arm, seed and readout
setting); a row already there is not recomputed.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

import bench_map
from bench_map import RESULTS, paths, t_interval
from bench_map_score import append_row, done_keys, draws, held_out, per_donor_auroc
from rgsynth.analysis.ground_truth import program_trait_table, score_against_truth
from rgsynth.analysis.maps import _fixed_backgrounds, perturbation_maps
from rgsynth.analysis.realism import bootstrap_mean
from rgsynth.config import MapSettings
from rgsynth.inference import Synthesizer, load_run
from rgsynth.metrics.context import ModelContext

MEMBERS_CSV = RESULTS / "map_members.csv"
FIELDS = [
    "seed", "arm", "runs", "training_steps", "replicates", "readout_seed", "map_auroc",
    "map_auroc_lo", "map_auroc_hi", "true_pairs_found", "false_positive_rate",
    "null_program_false_positives", "true_abs_effect", "null_abs_effect", "donor_auroc",
    "donor_auroc_shuffled", "donor_gain", "donor_gain_lo", "donor_gain_hi", "seconds",
    "subjects",
]  # fmt: skip
SINGLES = ("focus/at-002025", "focus-seed1/at-002025")
# tenth round: fresh 2025-step runs (training seeds 2 and 3), the test set of its rule
FRESH = ("focus-seed2/at-002025", "focus-seed3/at-002025")
REPORT_SEEDS = (1, 2, 3)
TEST_RUNS = len(FRESH) * len(REPORT_SEEDS)  # the tenth round's test set: 6 fresh runs
MID = "at-001350"  # eleventh round: the middle snapshot of a 2025-step run
MEMBERS = ("focus/at-000675", "focus-seed1/at-000675", "focus-seed2/at-000675")


def map_scores(synthesizers, setup: dict, replicates: int, readout_seed: int) -> dict:
    """The headline map of one or several generators, scored against the truth."""
    base = MapSettings()
    perturbation = dataclasses.replace(
        base.perturbation, replicates=replicates, seed=readout_seed, rules=("axis",)
    )
    settings = dataclasses.replace(base, perturbation=perturbation)
    maps = perturbation_maps(
        synthesizers, setup["cohort"], setup["features_real"], setup["programs"],
        setup["fixed"], setup["config"].hu_window, settings,
    )  # fmt: skip
    table = program_trait_table(maps["programs"].table, "effect_sd")
    truth = setup["truth"]
    recovery = score_against_truth(table, truth, 500, 0)
    true = np.array([truth.effects.at[p, t] != 0 if p in truth.effects.index else False
                     for p, t in zip(table.program, table.trait, strict=True)])  # fmt: skip
    strength = table["effect"].abs().to_numpy()
    return {
        "map_auroc": recovery["auroc"], "map_auroc_lo": recovery["auroc_ci_low"],
        "map_auroc_hi": recovery["auroc_ci_high"],
        "true_pairs_found": recovery["true_pairs_found"],
        "false_positive_rate": recovery["false_positive_rate"],
        "null_program_false_positives": recovery["null_program_false_positives"],
        "true_abs_effect": float(np.nanmean(strength[true])),
        "null_abs_effect": float(np.nanmean(strength[~true])),
    }  # fmt: skip


def donor_gain(contexts: list[ModelContext]) -> dict:
    """Donor AUROC with own and with another held-out donor's genes, each slice's features
    the mean over the runs (``bench_map_score.score``'s draws of backgrounds, noise and
    shuffles)."""
    first = contexts[0]
    backgrounds, seeds, shuffled, rng = draws(first)
    per = {}
    for condition, who in (("matched", first.real.owner), ("shuffled", shuffled)):
        features = []
        for context in contexts:
            synthesis = context.synthesizer(
                backgrounds, context.genes(who), seeds,
                heights_mm=context.real.height_mm,
            )  # fmt: skip
            features.append(context.measure(synthesis)[0])
        with np.errstate(all="ignore"):
            mean = np.nanmean(np.stack(features), axis=0)
        per[condition] = per_donor_auroc(first, mean).fillna(0.5)
    matched, shuffled_values = per["matched"], per["shuffled"]
    gain = bootstrap_mean((matched - shuffled_values).to_numpy(), rng)
    return {
        "donor_auroc": float(matched.mean()), "donor_auroc_shuffled": float(shuffled_values.mean()),
        "donor_gain": gain.value, "donor_gain_lo": gain.ci_low, "donor_gain_hi": gain.ci_high,
    }  # fmt: skip


def arms(seed: int, seed_dir: Path | None = None) -> list[tuple[str, tuple[str, ...], int, int]]:
    """(arm, runs, replicates, readout seed) of every row of ``seed`` (and, with
    ``seed_dir``, of every longer snapshot whose third was kept too)."""
    readouts = ((24, 0), (24, 1), (24, 2), (24, 3), (72, 0), (72, 1), (216, 0))
    todo = [
        ("single", (name,), replicates, readout)
        for name in SINGLES
        for replicates, readout in readouts
        # readout seeds 1-3 and 216 replicates: one run per seed, for the machine's time
        if name == SINGLES[seed != 0] or (replicates, readout) in ((24, 0), (72, 0), (72, 1))
    ]
    todo += [("member", (name,), replicates, 0) for name in MEMBERS for replicates in (24, 72)]
    todo += [("ensemble", MEMBERS, replicates, 0) for replicates in (24, 72)]
    # ninth round: two snapshots of one run (675 and 2025 steps) as one map, at 36
    # replicates each (as many syntheses as the run alone at 72), readout seeds 0 and 1
    todo += [
        ("snapshots", (f"{run.split('/')[0]}/at-000675", run), 36, readout)
        for run in SINGLES
        for readout in (0, 1)
    ]  # fmt: skip
    # tenth round: the early snapshot (675 steps) alone at 72 replicates against both
    # snapshots at 36 each and the end alone at 72, readout seeds 0 and 1, on the rounds'
    # runs and on the fresh ones (the rule's test: round10_decision_rule.txt)
    for run in SINGLES + FRESH:
        early = f"{run.split('/')[0]}/at-000675"
        for readout in (0, 1):
            todo.append(("early", (early,), 72, readout))
            if run in FRESH:
                todo.append(("single", (run,), 72, readout))
                todo.append(("snapshots", (early, run), 36, readout))
    # eleventh round: three snapshots of one run (675, 1350, 2025 steps) at 24 replicates
    # each against both (675 + 2025 at 36 each): round11_decision_rule.txt
    for run in SINGLES + FRESH:
        name = run.split("/")[0]
        for readout in (0, 1):
            todo.append(("three", (f"{name}/at-000675", f"{name}/{MID}", run), 24, readout))
            if run in FRESH:  # read after the rule's verdict: the middle snapshot alone
                todo.append(("mid", (f"{name}/{MID}",), 72, readout))
    # a longer run (past 2025 steps) with a snapshot at a third of it: the same two arms
    for run in sorted({name.split("/")[0] for name in SINGLES}) if seed_dir else ():
        for folder in sorted((seed_dir / run).glob("at-*")):
            steps = int(folder.name.removeprefix("at-"))
            third = f"{run}/at-{round(steps / 3):06d}"
            if steps > 2025 and (seed_dir / third).is_dir():
                for readout in (0, 1):
                    todo.append(("single", (f"{run}/{folder.name}",), 72, readout))
                    todo.append(("snapshots", (third, f"{run}/{folder.name}"), 36, readout))
    return todo


def run_seed(work: Path, seed: int, subjects: int | None = None) -> None:
    seed_dir = bench_map.seed_dir(work, seed, subjects)
    size = "" if seed_dir.name == f"seed-{seed}" else str(subjects)  # blank: the demo's
    done = done_keys(MEMBERS_CSV, ("seed", "subjects", "runs", "replicates", "readout_seed"))
    todo = [
        (arm, names, replicates, readout)
        for arm, names, replicates, readout in arms(seed, seed_dir)
        if (str(seed), size, "+".join(names), str(replicates), str(readout)) not in done
        and all((seed_dir / n / "checkpoints" / "last.pt").is_file() for n in names)
    ]
    if not todo:
        return  # nothing trained and not yet scored: skip loading the cohort
    cohort_dir, cache = paths(work, seed, subjects)
    held = held_out(cohort_dir, cache)
    setup = {
        "cohort": held.cohort, "features_real": held.features, "truth": held.truth,
        "config": held.config, "programs": held.programs,
        "fixed": _fixed_backgrounds(cache, MapSettings()),
    }  # fmt: skip
    runs = {}

    def context(name: str) -> ModelContext:
        if name not in runs:
            run = load_run(seed_dir / name, cache)
            runs[name] = held.context(run, Synthesizer(run.generator))
        return runs[name]

    for arm, names, replicates, readout in todo:
        start = time.perf_counter()
        contexts = [context(n) for n in names]
        row = map_scores([c.synthesizer for c in contexts], setup, replicates, readout)
        if arm == "ensemble" and replicates == 24:  # the same syntheses at any count
            row |= donor_gain(contexts)
        steps = [int(n.rsplit("-", 1)[1]) for n in names]
        steps = max(steps) if arm in ("snapshots", "three") else sum(steps)  # one run's
        append_row(MEMBERS_CSV, FIELDS, row | {
            "seed": seed, "subjects": size, "arm": arm, "runs": "+".join(names),
            "training_steps": steps, "replicates": replicates, "readout_seed": readout,
            "seconds": round(time.perf_counter() - start),
        })  # fmt: skip


def round10_table(path: Path = MEMBERS_CSV) -> None:
    """The tenth round's table (each run: early snapshot alone, both snapshots, end alone,
    each the mean of readout seeds 0 and 1) and its rule's verdict on the fresh runs."""
    import pandas as pd

    rows = pd.read_csv(path, dtype={"subjects": str}).fillna({"subjects": ""})
    rows = rows[rows.subjects == ""]
    runs = sorted({r.split("/")[0] for r in SINGLES + FRESH})
    lines, diffs = [], []
    for seed in sorted(rows.seed.unique()):
        mine = rows[rows.seed == seed]
        for run in runs:
            early, end = f"{run}/at-000675", f"{run}/at-002025"
            reads = {
                "early": mine[(mine.runs == early) & (mine.replicates == 72)],
                "both": mine[(mine.runs == f"{early}+{end}") & (mine.replicates == 36)],
                "end": mine[(mine.runs == end) & (mine.replicates == 72)],
            }
            means = {}
            for arm, found in reads.items():
                found = found.drop_duplicates("readout_seed", keep="last")
                found = found[found.readout_seed.isin((0, 1))]
                means[arm] = found.map_auroc.mean() if len(found) == 2 else float("nan")
            if all(np.isnan(v) for v in means.values()):
                continue
            fresh = end in FRESH and seed in REPORT_SEEDS
            diff = means["early"] - means["both"]
            lines.append(
                f"| {seed}{' (dev)' if seed == 0 else ''} | {run} | {means['end']:.2f} | "
                f"{means['both']:.2f} | {means['early']:.2f} | {diff:+.3f} | "
                f"{'test' if fresh else 'beside'} |"
            )
            if fresh and not np.isnan(diff):
                diffs.append(diff)
    print("| seed | run | end alone, 72 | both, 36 each | early alone, 72 | early − both | set |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    if len(diffs) < TEST_RUNS:
        print(f"rule: {len(diffs)} of {TEST_RUNS} test runs scored, no decision")
        return
    mean, higher = float(np.mean(diffs)), int(np.sum(np.array(diffs) > 0))
    adopt = mean >= 0.03 and higher >= 4
    print(f"rule: mean {mean:+.3f} (>= +0.03), higher in {higher} of {TEST_RUNS} (>= 4): "
          f"{'adopt' if adopt else 'not adopted'}")  # fmt: skip


def round11_table(path: Path = MEMBERS_CSV) -> None:
    """The eleventh round's table (each run: both snapshots at 36, three at 24 each, the
    end alone at 72, each the mean of readout seeds 0 and 1) and its rule's verdict on the
    test runs (round11_decision_rule.txt: training seeds 2 and 3 on the report seeds)."""
    import pandas as pd

    rows = pd.read_csv(path, dtype={"subjects": str}).fillna({"subjects": ""})
    rows = rows[rows.subjects == ""]
    lines, diffs, beside = [], [], []
    for seed in sorted(rows.seed.unique()):
        mine = rows[rows.seed == seed]
        for end in SINGLES + FRESH:
            run = end.split("/")[0]
            early, mid = f"{run}/at-000675", f"{run}/{MID}"
            reads = {
                "end": mine[(mine.runs == end) & (mine.replicates == 72)],
                "both": mine[(mine.runs == f"{early}+{end}") & (mine.replicates == 36)],
                "three": mine[(mine.runs == f"{early}+{mid}+{end}") & (mine.replicates == 24)],
                "early": mine[(mine.runs == early) & (mine.replicates == 72)],
                "mid": mine[(mine.runs == mid) & (mine.replicates == 72)],
            }
            means = {}
            for arm, found in reads.items():
                found = found.drop_duplicates("readout_seed", keep="last")
                found = found[found.readout_seed.isin((0, 1))]
                means[arm] = found.map_auroc.mean() if len(found) == 2 else float("nan")
            if np.isnan(means["three"]):
                continue
            test = end in FRESH and seed in REPORT_SEEDS
            diff = means["three"] - means["both"]
            lines.append(
                f"| {seed}{' (dev)' if seed == 0 else ''} | {run} | {means['early']:.2f} | "
                f"{means['mid']:.2f} | {means['end']:.2f} | {means['both']:.2f} | "
                f"{means['three']:.2f} | {diff:+.3f} | {'test' if test else 'beside'} |"
            )
            (diffs if test else beside).append(diff)
    print("| seed | run | 675 alone, 72 | 1350 alone, 72 | 2025 alone, 72 | both (675 + 2025), "
          "36 each | three, 24 each | three − both | set |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    for label, values in (("test", diffs), ("beside", beside), ("all", diffs + beside)):
        if len(values) > 1:
            mean, low, high = t_interval(values)
            print(f"{label}: mean {mean:+.3f} [{low:+.3f}, {high:+.3f}], higher in "
                  f"{int(np.sum(np.array(values) > 0))} of {len(values)}")  # fmt: skip
    if len(diffs) < TEST_RUNS:
        print(f"rule: {len(diffs)} of {TEST_RUNS} test runs scored, no decision")
        return
    mean, higher = float(np.mean(diffs)), int(np.sum(np.array(diffs) > 0))
    adopt = mean >= 0.03 and higher >= 4
    print(f"rule: mean {mean:+.3f} (>= +0.03), higher in {higher} of {TEST_RUNS} (>= 4): "
          f"{'adopt' if adopt else 'not adopted'}")  # fmt: skip


def resume_mid(work: Path, seed: int, recipe: str) -> None:
    """Train a run's 1350-step snapshot by resuming its 675-step one (a complete
    checkpoint: the trainer resumes it exactly), in a scratch live folder, so the run's
    own ``live`` (past 2025 steps) is left as it is."""
    import shutil

    root = bench_map.seed_dir(work, seed) / recipe
    if (root / MID / "checkpoints" / "last.pt").is_file():
        return
    scratch = root.with_name(f"{recipe}.mid")
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "live" / "checkpoints").mkdir(parents=True)
    early = root / "at-000675"
    shutil.copy2(early / "checkpoints" / "last.pt", scratch / "live" / "checkpoints" / "last.pt")
    for name in ("config.yaml", "stats.jsonl", "diagnostics.jsonl"):
        if (early / name).is_file():
            shutil.copy2(early / name, scratch / "live" / name)
    bench_map.train(work, seed, recipe, [int(MID.removeprefix("at-"))], root=scratch)
    shutil.move(scratch / MID, root / MID)
    shutil.rmtree(scratch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-map"))
    parser.add_argument("--subjects", type=int, default=None, help="twin size [the demo's]")
    parser.add_argument("--round10", action="store_true", help="print the tenth round's table")
    parser.add_argument("--round11", action="store_true", help="print the eleventh round's")
    parser.add_argument(
        "--resume-mid", metavar="RECIPE", help="train RECIPE's 1350-step snapshot from its 675"
    )
    args = parser.parse_args()
    if args.round10:
        round10_table()
    elif args.round11:
        round11_table()
    elif args.resume_mid:
        resume_mid(args.work, args.seed or 0, args.resume_mid)
    elif args.seed is None:
        parser.error("--seed is required to score")
    else:
        run_seed(args.work, args.seed, args.subjects)


if __name__ == "__main__":
    main()
