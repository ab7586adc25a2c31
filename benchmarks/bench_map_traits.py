"""Issue 16's twenty-fourth round: where the map is won and lost, trait by trait.

The headline map ranks (program, trait) pairs by |effect| in real-nodule SDs per program
step and pools the five traits. This writes, per reading (the product's default: `axis`
rule, held-out bases unshrunk at p = 1/2, 24 replicates, final weights, as
`bench_partial_unshrink.read`), every (program, trait) pair of the map with its effect,
its Wilcoxon p and the truth; the generator's own spread of each trait's readout over its
syntheses of the held-out donors (`SPREAD_DRAWS` syntheses: held-out bases, the map's
fixed backgrounds, fresh noise, each base unshrunk as the map's are); and trait fidelity
on the training and on the held-out donors. Rows go to
`benchmarks/results/round24_pairs.csv`; `--table` prints, per reading, the AUROC pooled
over diameter and solidity, over the three finer traits and within each trait, beside
the fidelities and the own / real spread ratios (`round24_traits_table.txt`).

`--roughness RECIPE...` says whether the boundary roughness G paints for its training
donors follows their lobulation, read on the soft and on the binarised mask (rows in
`round26_roughness.csv`; `real` reads the real slices):

    python benchmarks/bench_map_traits.py --seed 0 --recipe focus
    python benchmarks/bench_map_traits.py --table
    python benchmarks/bench_map_traits.py --seed 0 --roughness real focus focus-rough
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from bench_map import RESULTS, model_label, paths, register_ablations, seed_dir
from bench_map_moves import axis_settings, map_recovery
from bench_map_score import done_keys, held_out, replace_rows
from rgsynth.analysis.evaluate import conventional_tables
from rgsynth.analysis.ground_truth import (
    TRAIT_FEATURES,
    program_trait_table,
    score_against_truth,
    trait_spearman,
)
from rgsynth.analysis.maps import _fixed_backgrounds, perturbation_maps
from rgsynth.analysis.perturbation import COLUMNS, measure_syntheses
from rgsynth.analysis.readout import load_readout
from rgsynth.analysis.reference import ReferenceGenerator
from rgsynth.data import load_split
from rgsynth.fsutil import atomic_write_text
from rgsynth.inference import Synthesizer, load_run
from rgsynth.prepare.cache import Cache

PAIRS_CSV = RESULTS / "round24_pairs.csv"
ROUGHNESS_CSV = RESULTS / "round26_roughness.csv"
TABLE_TXT = RESULTS / "round24_traits_table.txt"
FIDELITY_DRAWS = 4  # syntheses per donor the trait fidelity averages
SPREAD_DRAWS = 192  # syntheses the generator's own spread is measured on
POWER = 0.5  # the product's default reading (round 20)
GROUPS = {  # the traits of a nodule's size and density, and the three finer ones
    "size_density": ("diameter", "solidity"),
    "fine": ("spiculation", "lobulation", "heterogeneity"),
}


def _readouts(synthesizer, setup, backgrounds, profiles, seeds) -> pd.DataFrame:
    """Features and trait readouts of the syntheses of ``profiles`` on ``backgrounds``
    (an empty mask reads as size 0, as the map reads it)."""
    values, _ = measure_syntheses(
        synthesizer, setup.extractor, load_readout(), backgrounds, profiles, seeds,
        setup.config.hu_window, True,
    )  # fmt: skip
    return pd.DataFrame(values, columns=list(COLUMNS))


def _draws(rng: np.random.Generator, fixed: np.ndarray, n: int) -> tuple[np.ndarray, list[int]]:
    """``n`` of the map's fixed backgrounds and noise seeds, drawn in that order."""
    picks = rng.integers(len(fixed), size=n)
    return fixed[picks], [int(s) for s in rng.integers(2**31, size=n)]


def own_spread(synthesizer, setup, fixed: np.ndarray, seed: int) -> pd.Series:
    """SD of each trait readout over the generator's syntheses of the held-out donors
    (nodules painted empty read as size 0, as the map reads them)."""
    rng = np.random.default_rng([seed, 24])
    bases = setup.cohort.split_genes(setup.cohort.scoring_split())
    picks = rng.integers(len(fixed), size=SPREAD_DRAWS)
    donors = rng.integers(len(bases), size=SPREAD_DRAWS)
    seeds = [int(s) for s in rng.integers(2**31, size=SPREAD_DRAWS)]
    table = _readouts(synthesizer, setup, fixed[picks], bases[donors], seeds)
    return pd.Series(
        {t: float(np.nanstd(table[c], ddof=1)) for t, (c, _) in TRAIT_FEATURES.items()}
    )


def fidelity(synthesizer, setup, fixed: np.ndarray, split: str, seed: int) -> dict[str, float]:
    """Trait fidelity on one split's donors (``rgsynth evaluate``'s metric: Spearman over
    donors between the true trait and its readout averaged over FIDELITY_DRAWS syntheses
    with the donor's genes on the map's fixed backgrounds)."""
    cohort = setup.cohort
    ids = [s for s, p in zip(cohort.subject_ids, cohort.split, strict=True) if p == split]
    ids = [s for s in ids if s in setup.truth.traits.index]
    genes = cohort.genes[[cohort.subject_ids.index(s) for s in ids]]
    rng = np.random.default_rng([seed, 24, len(ids)])
    owners = np.repeat(np.arange(len(ids)), FIDELITY_DRAWS)
    backgrounds, seeds = _draws(rng, fixed, len(owners))
    measured = _readouts(synthesizer, setup, backgrounds, genes[owners], seeds)
    measured = measured.groupby(owners).mean()
    measured.index = ids
    rng = np.random.default_rng(0)
    return {
        f"fidelity_{split}_{t}": e.value
        for t, e in trait_spearman(measured, setup.truth, rng, 0).items()
    }


def reading_synthesizer(work: Path, seed: int, recipe: str, step: int = 2025):
    """(synthesizer, factor, unseen) of a reading: the run's snapshot at ``step``, or with
    ``recipe`` "reference" the twin's painter (no gene components: factor 1). ``unseen()``
    is a fresh context in which the generator unshrinks held-out profiles by ``factor``
    (the shrinkage ** ``POWER``), as the product's default reading does."""
    cohort_dir, cache = paths(work, seed)
    if recipe == "reference":
        return ReferenceGenerator(cohort_dir / "ground_truth.json", cache), 1.0, nullcontext
    run = load_run(seed_dir(work, seed) / recipe / f"at-{step:06d}", cache)
    factor = run.unseen_shrinkage(load_split(cache, "train").genes) ** POWER
    return Synthesizer(run.generator), factor, lambda: run.generator.mapping.unseen(factor)


def read(work: Path, seed: int, recipe: str, step: int = 2025) -> None:
    """One reading's pairs appended to ``PAIRS_CSV`` (skipped if there)."""
    label = recipe if recipe in ("classic", "reference") else model_label(recipe)
    if (str(seed), label, str(step)) in done_keys(PAIRS_CSV, ("seed", "model", "step")):
        return
    start = time.perf_counter()
    register_ablations()
    cohort_dir, cache = paths(work, seed)
    setup = held_out(cohort_dir, cache)
    settings = axis_settings()
    fixed = _fixed_backgrounds(cache, settings)
    truth = setup.truth
    if recipe == "classic":  # Spearman rho on the training donors, true programs
        table = conventional_tables(setup.cohort, setup.features, truth, settings)["true programs"]
        own = pd.Series(np.nan, index=list(TRAIT_FEATURES))
        faithful = {}
        reported = score_against_truth(table, truth)["auroc"]
    else:
        synthesizer, factor, unseen = reading_synthesizer(work, seed, recipe, step)
        with unseen():
            maps = perturbation_maps(
                synthesizer, setup.cohort, setup.features, setup.programs, fixed,
                setup.config.hu_window, settings, unseen_move=factor,
            )  # fmt: skip
            own = own_spread(synthesizer, setup, fixed, seed)
            faithful = fidelity(synthesizer, setup, fixed, setup.cohort.scoring_split(), seed)
        faithful |= fidelity(synthesizer, setup, fixed, "train", seed)  # seen: painted as they are
        table = program_trait_table(maps["programs"].table, "effect_sd")
        reported = map_recovery(maps, truth)["map_auroc"]  # the reading as reported
    real = setup.features.std(numeric_only=True)
    table = table[table["program"].isin(truth.effects.index)].copy()
    table["true_effect"] = [
        truth.effects.at[p, t] for p, t in zip(table["program"], table["trait"], strict=True)
    ]
    table["null_program"] = table["program"].isin(truth.null_programs)
    table["own_sd"] = table["trait"].map(own)
    table["real_sd"] = table["trait"].map(
        {t: float(real[c]) for t, (c, _) in TRAIT_FEATURES.items()}
    )
    table.insert(0, "step", step)
    table.insert(0, "model", label)
    table.insert(0, "seed", seed)
    table["map_auroc"] = reported
    for name, value in faithful.items():
        table[name] = value
    table["seconds"] = round(time.perf_counter() - start)
    old = pd.read_csv(PAIRS_CSV) if PAIRS_CSV.is_file() else None
    both = table if old is None else pd.concat([old, table], ignore_index=True)
    atomic_write_text(PAIRS_CSV, both.to_csv(index=False))


def _auroc(positive: np.ndarray, strength: np.ndarray) -> float:
    ok = np.isfinite(strength)
    positive, strength = positive[ok], strength[ok]
    return (
        float(roc_auc_score(positive, strength)) if 0 < positive.sum() < len(positive) else np.nan
    )


def aurocs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per reading: the pooled map AUROC, the AUROC pooled over each of ``GROUPS``, and
    each trait's AUROC, own / real spread ratio and fidelity."""
    rows = []
    for (seed, model, step), part in pairs.groupby(["seed", "model", "step"], sort=False):
        positive = (part["true_effect"] != 0).to_numpy()
        size = part["effect"].abs().to_numpy()
        row = {
            "seed": seed, "model": model, "step": step,
            "reported": part["map_auroc"].iloc[0],
            "pooled": _auroc(positive, size),
        }  # fmt: skip
        for name, traits in GROUPS.items():
            inside = part["trait"].isin(traits).to_numpy()
            row[name] = _auroc(positive[inside], size[inside])
        for trait, within in part.groupby("trait", sort=False):
            row[f"auroc_{trait}"] = _auroc(
                (within["true_effect"] != 0).to_numpy(), within["effect"].abs().to_numpy()
            )
            row[f"own/real_{trait}"] = float(within["own_sd"].iloc[0] / within["real_sd"].iloc[0])
            for split in ("train", "val", "test", "holdout"):
                column = f"fidelity_{split}_{trait}"
                if column in within:
                    row[column] = within[column].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


TRAITS = ("diameter", "solidity", "spiculation", "lobulation", "heterogeneity")


def training_donor_masks(work: Path, seed: int, recipe: str, step: int, setup, on_run=None):
    """(images, soft masks (N, H, W), owners) of the training donors with a truth:
    FIDELITY_DRAWS syntheses of each on the map's fixed backgrounds (a fixed draw per
    seed), or with ``recipe`` "real" every nodule slice of theirs in the cache of at least
    20 pixels. ``setup``: the seed's :func:`bench_map_score.held_out`. ``on_run``, if given,
    is called with the loaded run before it paints (``bench_outline_area`` hooks it)."""
    _, cache = paths(work, seed)
    cohort, truth = setup.cohort, setup.truth
    ids = [s for s, p in zip(cohort.subject_ids, cohort.split, strict=True) if p == "train"]
    ids = [s for s in ids if s in truth.traits.index]
    if recipe == "real":
        images, masks, owners = [], [], []
        for sid in ids:
            shard = Cache(cache).load_shard(sid)
            keep = [i for i, m in enumerate(shard["nodule_mask"]) if m.sum() >= 20]
            images += [shard["nodule_image"][i] for i in keep]
            masks += [shard["nodule_mask"][i].astype(np.float32) for i in keep]
            owners += [sid] * len(keep)
        return np.stack(images), np.stack(masks), owners
    fixed = _fixed_backgrounds(cache, axis_settings())
    run = load_run(seed_dir(work, seed) / recipe / f"at-{step:06d}", cache)
    if on_run is not None:
        on_run(run)
    genes = cohort.genes[[cohort.subject_ids.index(s) for s in ids]]
    rng = np.random.default_rng([seed, 26])
    picks = np.repeat(np.arange(len(ids)), FIDELITY_DRAWS)
    backgrounds, seeds = _draws(rng, fixed, len(picks))
    result = Synthesizer(run.generator)(backgrounds, genes[picks].astype(np.float32), seeds)
    return np.asarray(result.image), np.asarray(result.mask), [ids[i] for i in picks]


def roughness(work: Path, seed: int, recipe: str, step: int = 2025) -> dict:
    """Does the boundary roughness (``bench_map.nodule_descriptors``' last column) of the
    nodules a run paints for its training donors follow their lobulation? Spearman over
    donors of the mean roughness of FIDELITY_DRAWS syntheses each (on the map's fixed
    backgrounds), read on the soft mask (what a differentiable term sees) and on the mask
    binarised at 0.5 (what the readout sees); the SD of the binarised roughness between
    donors; the share of mask pixels between 0.1 and 0.9 among those above 0.5. The
    ``polar_`` columns read ``rgsynth.models.outline.polar_roughness`` (twenty-eighth
    round) instead, the ``polar_exit_`` columns the same up to each ray's first exit
    (thirty-sixth round). With ``recipe`` "real": the real training slices' own (the mask
    is binary; the roughness reads the mask alone)."""
    import torch
    from scipy.stats import spearmanr

    from bench_map import nodule_descriptors
    from rgsynth.models.outline import polar_roughness

    register_ablations()
    cohort_dir, cache = paths(work, seed)
    setup = held_out(cohort_dir, cache)
    images, masks, owners = training_donor_masks(work, seed, recipe, step, setup)
    image = torch.tensor(images[:, None])
    soft = torch.tensor(masks[:, None])
    hard = (soft > 0.5).float()
    lobulation = setup.truth.traits["lobulation"]
    row = {"seed": seed, "model": recipe, "step": step}
    for name, mask in (("soft", soft), ("binarised", hard)):
        for prefix, reading in (
            ("", nodule_descriptors(image, mask)[:, 3]),
            ("polar_", polar_roughness(mask)),  # the twenty-eighth round's measure
            ("polar_exit_", polar_roughness(mask, first_exit=True)),  # the thirty-sixth's
        ):
            values = pd.Series(reading.numpy()).groupby(owners).mean()
            row[f"{prefix}{name}_vs_lobulation"] = float(
                spearmanr(values, lobulation.loc[values.index]).statistic
            )
            row[f"{prefix}{name}_sd_between_donors"] = float(values.std())
    row["fuzzy_share"] = float(((soft > 0.1) & (soft < 0.9)).sum() / max(hard.sum(), 1))
    return row


def markdown(pairs: pd.DataFrame) -> str:
    """Two markdown tables, one row per reading: where the map AUROC is won and lost (per
    group and per trait), and trait fidelity on the training and the held-out donors."""
    table = aurocs(pairs)
    counts = pairs.assign(true=pairs["true_effect"] != 0).groupby(["seed", "model", "step"])

    def group_count(key, traits) -> str:
        part = counts.get_group(key)
        part = part[part["trait"].isin(traits)]
        return f"{int(part['true'].sum())}/{len(part)}"

    def cell(value: float) -> str:
        return "—" if not np.isfinite(value) else f"{value:.2f}"

    lines = [
        "| seed | model | map AUROC | size & density pairs (true/all) | finer three (true/all) "
        "| within diameter / solidity / spiculation / lobulation / heterogeneity |",
        "|---|---|---|---|---|---|",
    ]
    fidelity = [
        "| seed | model | training donors: diameter / solidity / spiculation / lobulation / "
        "heterogeneity | held-out donors: the same | own spread / real, the same |",
        "|---|---|---|---|---|",
    ]
    for _, row in table.iterrows():
        key = (row["seed"], row["model"], row["step"])
        label = row["model"] if row["step"] == 2025 else f"{row['model']}, step {row['step']}"
        lines.append(
            f"| {row['seed']} | {label} | {cell(row['pooled'])} | "
            f"{cell(row['size_density'])} ({group_count(key, GROUPS['size_density'])}) | "
            f"{cell(row['fine'])} ({group_count(key, GROUPS['fine'])}) | "
            + " / ".join(cell(row[f"auroc_{t}"]) for t in TRAITS)
            + " |"
        )
        if row["model"] == "classic":
            continue
        held = next(c for c in ("holdout", "val", "test") if f"fidelity_{c}_diameter" in row)
        fidelity.append(
            f"| {row['seed']} | {label} | "
            + " / ".join(cell(row[f"fidelity_train_{t}"]) for t in TRAITS)
            + " | "
            + " / ".join(cell(row[f"fidelity_{held}_{t}"]) for t in TRAITS)
            + " | "
            + " / ".join(cell(row[f"own/real_{t}"]) for t in TRAITS)
            + " |"
        )
    return "\n".join([*lines, "", *fidelity])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-map"))
    parser.add_argument("--seed", type=int)
    parser.add_argument("--recipe", default="focus")
    parser.add_argument("--step", type=int, default=2025)
    parser.add_argument("--table", action="store_true")
    parser.add_argument(
        "--roughness", nargs="+", metavar="RECIPE", help="roughness against lobulation ('real')"
    )
    args = parser.parse_args()
    if args.roughness:
        rows = [roughness(args.work, args.seed or 0, r, args.step) for r in args.roughness]
        table = replace_rows(ROUGHNESS_CSV, rows, ["seed", "model", "step"])
        print(table.round(3).to_string(index=False))
        return
    if args.seed is not None:
        read(args.work, args.seed, args.recipe, args.step)
    if args.table:
        text = markdown(pd.read_csv(PAIRS_CSV))
        atomic_write_text(TABLE_TXT, text + "\n")
        print(text)


if __name__ == "__main__":
    main()
