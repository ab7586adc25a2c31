"""Scores of ``bench_map.py``'s snapshots on the held-out donors (see its docstring).

Every number comes from the package's own code: the realism and donor-AUROC metrics of
``rgsynth evaluate``, the perturbation map of ``rgsynth map`` (programs only, its default
settings) scored by ``score_against_truth``, the reference generator and the classic
pipeline of ``rgsynth evaluate``. Only the real slices are fewer: up to
``SLICES_PER_DONOR`` per held-out donor, so a snapshot scores in about a minute.
"""

from __future__ import annotations

import csv
import json
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench_map import (
    CURVES_CSV,
    RECIPES,
    RESULTS_PNG,
    SLICES_PER_DONOR,
    model_label,
    paths,
    register_ablations,
    seed_dir,
)
from rgsynth.analysis.cohort import CohortView, load_cohort
from rgsynth.analysis.evaluate import _backgrounds, conventional_tables
from rgsynth.analysis.features import MIN_PIXELS, FeatureExtractor
from rgsynth.analysis.ground_truth import (
    Truth,
    load_truth,
    program_trait_table,
    score_against_truth,
)
from rgsynth.analysis.maps import _fixed_backgrounds, perturbation_maps
from rgsynth.analysis.perturbation import program_matrix
from rgsynth.analysis.realism import bootstrap_mean
from rgsynth.analysis.reference import ReferenceGenerator
from rgsynth.config import EvaluationSettings, MapSettings, PrepareConfig
from rgsynth.data import load_split
from rgsynth.fsutil import atomic_write_text
from rgsynth.inference import Synthesizer, load_run
from rgsynth.intensity import unit_to_hu
from rgsynth.metrics.builtin import donor_closeness, realism
from rgsynth.metrics.context import ConditionSample, ModelContext, RealSlices
from rgsynth.prepare.cache import Cache, cache_prepare_config

FIELDS = [
    "seed", "model", "step", "quiet_minutes", "donor_auroc", "donor_auroc_lo",
    "donor_auroc_hi", "donor_auroc_shuffled", "donor_gain", "donor_gain_lo", "donor_gain_hi",
    "frd", "frd_lo", "frd_hi", "empty_rate", "map_auroc", "map_auroc_lo", "map_auroc_hi",
    "true_pairs_found", "false_positive_rate", "n_donors", "n_slices", "seconds",
    "donor_auroc_train", "isg_auroc_train", "isg_auroc_filled_train", "isg_auroc_val",
    "isg_auroc_filled_val", "d_i_real_train", "d_i_real_val", "code_spread",
    "null_program_false_positives", "shrinkage",
]  # fmt: skip
UNSHRUNK = ", unshrunk"  # the label suffix of a snapshot read with unseen donors' scores unshrunk
# the suffix of a plain reading of a retrained snapshot (its recipe's own label holds an
# earlier run's row): round 18's focus snapshots at training seed 0 on report seeds 1-3
REREAD = ", plain re-read"
DIAGNOSTICS = ("isg_auroc", "isg_auroc_filled", "d_i_real")


@dataclass(frozen=True)
class HeldOut:
    """What a reading of one seed's snapshots on its held-out donors needs: the truth,
    the cohort and its prepare config, the held-out slices and their backgrounds (as
    ``rgsynth evaluate`` draws them), the real nodules' features, the truth's programs."""

    truth: Truth
    cohort: CohortView
    config: PrepareConfig
    settings: EvaluationSettings
    extractor: FeatureExtractor
    real: RealSlices
    split: str
    backgrounds: np.ndarray
    features: pd.DataFrame
    programs: pd.DataFrame

    def context(self, run, synthesizer, **more) -> ModelContext:  # type: ignore[no-untyped-def]
        """A scoring context of ``run`` painting with ``synthesizer`` (``more``: the
        reference's ``name`` and ``maps_dir``)."""
        return ModelContext(
            run, self.cohort, self.real, self.backgrounds, self.extractor, self.config,
            self.settings, synthesizer=synthesizer, **more,
        )  # fmt: skip


def held_out(cohort_dir: Path, cache: Path) -> HeldOut:
    """The :class:`HeldOut` set-up of a seed's twin (``cohort_dir``) and cache."""
    truth = load_truth(cohort_dir / "ground_truth.json")
    cohort = load_cohort(cache)
    settings = EvaluationSettings()
    extractor = FeatureExtractor(cohort.pixel_mm)
    real, split = held_out_slices(cache, cohort, extractor)
    return HeldOut(
        truth, cohort, cache_prepare_config(cache), settings, extractor, real, split,
        _backgrounds(cache, split, settings), cohort.features(),
        program_matrix(truth.gene_sets, cohort.gene_names),
    )  # fmt: skip


def held_out_slices(
    cache_root: Path, cohort: CohortView, extractor: FeatureExtractor, split: str | None = None
):
    """Up to SLICES_PER_DONOR nodule slices of each donor of ``split`` (the held-out
    donors by default), fixed seed."""
    config = cache_prepare_config(cache_root)
    split = split or cohort.scoring_split()
    donors = [s for s, p in zip(cohort.subject_ids, cohort.split, strict=True) if p == split]
    cache, rng = Cache(cache_root), np.random.default_rng(16)
    hu, masks, owners, heights = [], [], [], []
    for sid in donors:
        shard = cache.load_shard(sid)
        usable = [n for n, m in enumerate(shard["nodule_mask"]) if m.sum() >= MIN_PIXELS]
        picks = rng.choice(usable, size=min(SLICES_PER_DONOR, len(usable)), replace=False)
        for n in sorted(picks):
            hu.append(unit_to_hu(shard["nodule_image"][n], config.hu_window))
            masks.append(shard["nodule_mask"][n].astype(bool))
            owners.append(sid)
            heights.append(float(shard["nodule_slice_mm"][n]))
    table = extractor.table(np.stack(hu), np.stack(masks))
    heights_mm = np.asarray(heights, dtype=np.float32)  # where focus-height paints
    return RealSlices(np.stack(hu), np.stack(masks), owners, table.to_numpy(), heights_mm), split


def per_donor_auroc(context: ModelContext, features: np.ndarray) -> pd.Series:
    """The donor AUROC metric's per-donor values, each against every held-out donor
    (NaN where a donor has no usable synthesis; the metric itself drops such donors)."""
    real = context.real
    return donor_closeness(real.features, features, real.owner, against_all=True)


def draws(context: ModelContext) -> tuple[np.ndarray, list[int], list[str], np.random.Generator]:
    """Each held-out slice's background and noise seed, and another held-out donor's genes
    for it (the shuffled condition), from a fixed seed; and the generator drawn from, for
    the intervals."""
    rng = np.random.default_rng(0)
    owners = context.real.owner
    n = len(owners)
    picks = rng.integers(len(context.backgrounds), size=n)
    seeds = [int(s) for s in rng.integers(2**31, size=n)]
    donors = sorted(set(owners))
    others = {d: [o for o in donors if o != d] for d in donors}
    shuffled = [others[o][int(rng.integers(len(others[o])))] for o in owners]
    return context.backgrounds[picks], seeds, shuffled, rng


def score(
    context: ModelContext, truth: Truth, maps_settings: MapSettings, fixed: np.ndarray,
    programs: pd.DataFrame, features_real: pd.DataFrame, shuffled_too: bool = True,
    pairs_csv: Path | None = None, map_too: bool = True,
) -> dict:  # fmt: skip
    """The donor readings (matched, shuffled, FRD, empty masks) of ``context``'s
    synthesizer on the held-out slices and, with ``map_too``, its perturbation map's
    recovery of the twin's true pairs."""
    owners = context.real.owner
    backgrounds, seeds, shuffled, rng = draws(context)
    donors = sorted(set(owners))
    n = len(owners)
    row: dict = {"n_donors": len(donors), "n_slices": n}
    per = {}
    for condition, who in (("matched", owners), ("shuffled genes", shuffled)):
        if condition != "matched" and not shuffled_too:
            continue
        synthesis = context.synthesizer(
            backgrounds, context.genes(who), seeds, heights_mm=context.real.height_mm
        )
        features, masks = context.measure(synthesis)
        per[condition] = per_donor_auroc(context, features)
        if condition == "matched":
            sample = ConditionSample(condition, synthesis, backgrounds, features, masks)
            for s in realism(context, sample, rng):
                if s.metric == "frd":
                    row |= {"frd": s.value, "frd_lo": s.ci_low, "frd_hi": s.ci_high}
                if s.metric == "empty_or_tiny_mask_rate":
                    row["empty_rate"] = s.value
    matched = per["matched"].fillna(0.5)  # a donor with no nodule is matched at chance
    estimate = bootstrap_mean(matched.to_numpy(), rng)
    row |= {"donor_auroc": estimate.value, "donor_auroc_lo": estimate.ci_low,
            "donor_auroc_hi": estimate.ci_high}  # fmt: skip
    if "shuffled genes" in per:
        shuffled_values = per["shuffled genes"].fillna(0.5)
        gain = bootstrap_mean((matched - shuffled_values).to_numpy(), rng)
        row |= {"donor_auroc_shuffled": float(shuffled_values.mean()), "donor_gain": gain.value,
                "donor_gain_lo": gain.ci_low, "donor_gain_hi": gain.ci_high}  # fmt: skip
    if not map_too:
        return row
    maps = perturbation_maps(
        context.synthesizer, context.cohort, features_real, programs, fixed,
        context.config.hu_window, maps_settings,
    )  # fmt: skip
    table = program_trait_table(maps["programs"].table, "effect_sd")
    recovery = score_against_truth(table, truth, 500, 0)
    if pairs_csv is not None:  # each (program, trait) pair's effect, for a look by hand
        table.assign(true_effect=[truth.effects.at[p, t] if p in truth.effects.index else 0.0
                                  for p, t in zip(table.program, table.trait, strict=True)],
                     ).to_csv(pairs_csv, index=False)  # fmt: skip
    row |= {
        "null_program_false_positives": recovery.get("null_program_false_positives"),
        "map_auroc": recovery["auroc"], "map_auroc_lo": recovery["auroc_ci_low"],
        "map_auroc_hi": recovery["auroc_ci_high"],
        "true_pairs_found": recovery.get("true_pairs_found"),
        "false_positive_rate": recovery.get("false_positive_rate"),
    }  # fmt: skip
    return row


def memorisation(context: ModelContext, train_real: RealSlices) -> dict:
    """The donor AUROC on the training donors (their own slices): far above the held-out
    one, the generator learned its donors, not the map."""
    rng = np.random.default_rng(0)
    n = len(train_real.owner)
    picks = rng.integers(len(context.backgrounds), size=n)
    seeds = [int(s) for s in rng.integers(2**31, size=n)]
    synthesis = context.synthesizer(
        context.backgrounds[picks], context.genes(train_real.owner), seeds,
        heights_mm=train_real.height_mm,
    )  # fmt: skip
    features, _ = context.measure(synthesis)
    saved, context.real = context.real, train_real
    try:
        per = per_donor_auroc(context, features).fillna(0.5)
    finally:
        context.real = saved
    return {"donor_auroc_train": float(per.mean())}


def code_spread(
    run, train_genes: np.ndarray, held_genes: np.ndarray, unshrink: bool = False
) -> dict:
    """Held-out donors' gene codes φ(g) against the codes G trained on: the RMS distance
    from the training codes' mean, held-out over training. Near 1: unseen donors' codes
    fall where G learned; well below 1: G meets them in a region it never trained on."""
    import torch

    from rgsynth.models.registry import get_spec
    from rgsynth.models.spec import GanNetworks

    trained = get_spec(run.config.model.architecture).training_genes(
        run.config, GanNetworks(run.generator, None), train_genes
    )
    with torch.no_grad():
        codes = run.generator.encode_genes(torch.as_tensor(trained, dtype=torch.float32))
        with unshrunk(run, train_genes) if unshrink else nullcontext():
            held = run.generator.encode_genes(torch.as_tensor(held_genes))
    centre = codes.mean(dim=0)
    spread = lambda c: float(((c - centre) ** 2).sum(dim=1).mean().sqrt())  # noqa: E731
    return {"code_spread": spread(held) / spread(codes)}


@contextmanager
def unshrunk(run, train_genes: np.ndarray):
    """Within the block, every profile the run's generator is given has its whitened
    scores divided by the run's shrinkage (:meth:`TrainedRun.unseen_shrinkage` of the
    training donors' profiles, leave-one-out): the correction of unseen samples'
    principal-component scores of Lee, Zou & Wright (2010), as issue 16's eighteenth round
    tests it. Only for unseen donors' profiles (every synthesis of :func:`score`): a
    training donor's own scores are not shrunk. Yields the factor."""
    factor = run.unseen_shrinkage(train_genes)
    if factor is None:
        raise SystemExit(f"{run.run_dir}: no fitted gene components, nothing to unshrink")
    with run.generator.mapping.unseen(factor):  # the product's correction (--unshrink-unseen)
        yield factor


def diagnostics(snapshot: Path, cache: Path) -> dict:
    """The trainer's discriminator diagnostics (rgsynth.train.diagnostics) of the
    snapshot's D, on training and validation slices."""
    from rgsynth.config import TrainConfig
    from rgsynth.data import load_split
    from rgsynth.models.registry import get_spec
    from rgsynth.train.checkpoint import load_checkpoint
    from rgsynth.train.diagnostics import discriminator_diagnostics

    state = load_checkpoint(snapshot / "checkpoints" / "last.pt")
    config = TrainConfig.from_dict(state["config"])
    networks = get_spec(config.model.architecture).build(config.model)
    networks.discriminators.load_state_dict(state["discriminators"])
    splits = {"train": load_split(cache, "train"), "val": load_split(cache, "val")}
    values = discriminator_diagnostics(networks.discriminators, splits)
    return {
        f"{name}_{split}": values[f"{name}/{split}"]
        for name in DIAGNOSTICS
        for split in ("train", "val")
    }


def done_keys(path: Path, columns: tuple[str, ...]) -> set[tuple[str, ...]]:
    """The ``columns`` of every row already in the CSV at ``path`` (as strings; an empty
    cell, or a column the file does not have yet, is "")."""
    if not path.is_file():
        return set()
    table = pd.read_csv(path, dtype=str).reindex(columns=list(columns)).fillna("")
    return set(zip(*(table[c] for c in columns), strict=True))


def replace_rows(path: Path, rows: list[dict], keys: list[str]) -> pd.DataFrame:
    """The CSV at ``path`` with ``rows`` added, each replacing an earlier row with the same
    ``keys`` (a re-read supersedes), written atomically; returns the table."""
    old = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    table = pd.concat([old, pd.DataFrame(rows)], ignore_index=True)
    table = table.drop_duplicates(keys, keep="last")
    atomic_write_text(path, table.to_csv(index=False))
    return table


def append_row(path: Path, fields: list[str], row: dict) -> None:
    """Append ``row`` (its ``fields``) to the CSV at ``path``, header first if new."""
    if path.is_file() and list(pd.read_csv(path, nrows=0).columns) != fields:
        # a column was added since these rows were written: widen them (empty cells)
        pd.read_csv(path).reindex(columns=fields).to_csv(path, index=False)
    new = not path.is_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as out:
        writer = csv.DictWriter(out, fields)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k) for k in fields})
    print(json.dumps({k: row.get(k) for k in fields}), flush=True)


def _done() -> set[tuple[str, ...]]:
    return done_keys(CURVES_CSV, ("seed", "model", "step"))


def _append(row: dict) -> None:
    append_row(CURVES_CSV, FIELDS, row)


def score_seed(
    work: Path, seed: int, recipes: list[str], subjects: int | None = None,
    unshrink: bool = False, plain_label: str = "",
) -> None:  # fmt: skip
    """Score every snapshot of ``recipes`` not yet in the curves, on one seed's twin (of
    ``subjects`` subjects: the demo's size by default; rows of other sizes say theirs);
    with ``unshrink``, each snapshot a second time with unseen donors' scores unshrunk
    (:func:`unshrunk`; its own row, the recipe's label + ``UNSHRUNK``; its map divides
    base and move, round 18's reading: ``bench_map_moves.py`` reads the product's). ``plain_label``:
    a suffix for the plain reading's label, to read a retrained snapshot again where a
    row of an earlier one holds the recipe's own label (``REREAD``)."""
    folder = seed_dir(work, seed, subjects)
    reference_name = model_label("reference", subjects)
    done = _done()
    readings = (plain_label, UNSHRUNK) if unshrink else (plain_label,)
    if plain_label and unshrink:
        # the unshrunk label has no re-read form: an earlier snapshot's row under it would
        # be kept and the retrained one's unshrunk reading silently skipped. A row written
        # after this snapshot's re-read (an interrupted run resumed) is this snapshot's.
        stale = sorted(
            model
            for s, model, step in done
            for recipe in recipes
            if s == str(seed)
            and model == model_label(recipe, subjects) + UNSHRUNK
            and (s, model_label(recipe, subjects) + plain_label, step) not in done
        )
        if stale:
            raise SystemExit(
                f"seed {seed}: {', '.join(stale)} already scored without a re-read beside "
                "it (an earlier snapshot's?); a re-read would skip its unshrunk reading: "
                "remove those rows first"
            )
    todo = [
        snapshot
        for recipe in recipes
        for snapshot in (folder / recipe).glob("at-*")
        for suffix in readings
        if (str(seed), model_label(recipe, subjects) + suffix,
            str(int(snapshot.name.removeprefix("at-")))) not in done
    ]  # fmt: skip
    if not todo and (str(seed), reference_name, "0") in done:
        return  # nothing new: skip loading the cohort
    register_ablations()
    cohort_dir, cache = paths(work, seed, subjects)
    truth_path = cohort_dir / "ground_truth.json"
    setup = held_out(cohort_dir, cache)
    truth, cohort, features_real, programs = (
        setup.truth,
        setup.cohort,
        setup.features,
        setup.programs,
    )
    maps_settings = MapSettings()
    train_real, _ = held_out_slices(cache, cohort, setup.extractor, "train")
    train_genes = load_split(cache, "train").genes  # the trainer's donors, in its order
    held_genes = cohort.genes[[s == setup.split for s in cohort.split]]
    fixed = _fixed_backgrounds(cache, maps_settings)
    done = _done()
    if (str(seed), reference_name, "0") not in done:
        start = time.perf_counter()
        reference = ReferenceGenerator(truth_path, cache)
        context = setup.context(None, reference, name="reference", maps_dir=folder / "reference")
        row = score(context, truth, maps_settings, fixed, programs, features_real, False)
        _append(row | {"seed": seed, "model": reference_name, "step": 0,
                       "seconds": round(time.perf_counter() - start)})  # fmt: skip
        tables = conventional_tables(cohort, features_real, truth, maps_settings)
        recovery = score_against_truth(tables["true programs"], truth, 500, 0)
        _append({"seed": seed, "model": model_label("classic (true programs)", subjects),
                 "step": 0,
                 "map_auroc": recovery["auroc"], "map_auroc_lo": recovery["auroc_ci_low"],
                 "map_auroc_hi": recovery["auroc_ci_high"],
                 "true_pairs_found": recovery.get("true_pairs_found"),
                 "false_positive_rate": recovery.get("false_positive_rate"),
                 "n_donors": tables["n_donors"]})  # fmt: skip
    for recipe in recipes:
        per_minute = RECIPES[recipe][2]
        for snapshot in sorted((folder / recipe).glob("at-*")):
            step = int(snapshot.name.removeprefix("at-"))
            for suffix in readings:
                label = model_label(recipe, subjects) + suffix
                if (str(seed), label, str(step)) in done:
                    continue
                start = time.perf_counter()
                run = load_run(snapshot, cache)
                context = setup.context(run, Synthesizer(run.generator))
                # unseen donors unshrunk (memorisation's training donors read as they are);
                # the map divides base and move: round 18's reading B, not the product's C
                if suffix == UNSHRUNK:
                    with unshrunk(run, train_genes) as factor:
                        row = score(
                            context, truth, maps_settings, fixed, programs, features_real,
                            pairs_csv=snapshot / "pairs-unshrunk.csv",
                        )  # fmt: skip
                    row["shrinkage"] = factor
                else:
                    row = score(context, truth, maps_settings, fixed, programs, features_real,
                                pairs_csv=snapshot / "pairs.csv")  # fmt: skip
                row |= memorisation(context, train_real) | diagnostics(snapshot, cache)
                row |= code_spread(run, train_genes, held_genes, unshrink=suffix == UNSHRUNK)
                _append(row | {"seed": seed, "model": label, "step": step,
                               "quiet_minutes": round(step / per_minute, 2),
                               "seconds": round(time.perf_counter() - start)})  # fmt: skip


def print_table() -> None:
    table = pd.read_csv(CURVES_CSV)
    keep = ["seed", "model", "step", "quiet_minutes", "donor_auroc", "donor_auroc_shuffled",
            "donor_gain", "donor_gain_lo", "donor_gain_hi", "frd", "empty_rate", "map_auroc",
            "map_auroc_lo", "map_auroc_hi", "true_pairs_found", "false_positive_rate"]  # fmt: skip
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table[keep].round(3).to_string(index=False))


def plot(path: Path = RESULTS_PNG) -> Path:
    """Map AUROC, donor AUROC gain and FRD against quiet training minutes, one line per
    run: the recipes a user can train in colour (other training seeds dashed), every
    bench-only arm in grey; a marker per twin seed; the reference and the classic
    pipeline as horizontal marks."""
    from matplotlib.lines import Line2D

    from rgsynth.plotting import pyplot, save_png

    table = pd.read_csv(CURVES_CSV)
    trained = table[table["quiet_minutes"].notna()]
    plt = pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    recipes = {"focus": "C0", "focus-height": "C2", "focus-daug": "C5", "xu2019": "C1",
               "mcgan": "C3", "focus, 211 subjects": "C4"}  # fmt: skip
    # other training seeds of a recipe (bench_map.RECIPES names them "<recipe>-seed<k>")
    seed_variant = {f"{name}-seed{k}": name for name in recipes for k in (1, 2, 3)}
    markers = "os^Dv"  # one per twin seed
    panels = (
        ("map_auroc", "map AUROC (true pairs, held-out bases)"),
        ("donor_gain", "donor AUROC − shuffled (held-out donors)"),
        ("frd", "FRD (held-out donors)"),
    )
    for ax, (column, title) in zip(axes, panels, strict=True):
        for (model, seed), rows in trained.groupby(["model", "seed"]):
            rows = rows.sort_values("quiet_minutes")
            if model.endswith(REREAD):  # the same point as its recipe's, other weights
                continue
            if model.endswith(UNSHRUNK):  # a second reading of a run's snapshot, not a run
                ax.plot(rows["quiet_minutes"], rows[column], linestyle="none", color="k",
                        marker="x", zorder=4)  # fmt: skip
                continue
            recipe = seed_variant.get(model, model)
            colour = recipes.get(recipe, "0.75")
            ax.plot(rows["quiet_minutes"], rows[column], "--" if model in seed_variant else "-",
                    marker=markers[int(seed) % 5], color=colour,
                    alpha=0.9 if recipe in recipes else 0.6,
                    zorder=3 if recipe in recipes else 1)  # fmt: skip
        for model, style in (("reference", "--"), ("classic (true programs)", ":")):
            values = table.loc[table["model"] == model, column].dropna()
            if len(values) and column != "donor_gain":
                ax.axhline(values.mean(), color="grey", linestyle=style)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training minutes (quiet 2 cores, from steps)")
    axes[1].axhline(0, color="grey", linewidth=0.8)
    shown = set(trained["model"].map(lambda m: seed_variant.get(m, m)))
    unshrunk = trained["model"].str.endswith(UNSHRUNK).any()
    handles = [Line2D([], [], color=c, label=n) for n, c in recipes.items() if n in shown]
    handles += [
        Line2D([], [], color="0.75", label="bench-only arms (one change on focus)"),
        Line2D([], [], color="k", linestyle="--", label="training seeds 1–3"),
        *([Line2D([], [], color="k", marker="x", linestyle="none",
                  label="a 15-min snapshot read unshrunk (round 18)")] if unshrunk else []),
        *(Line2D([], [], color="k", marker=markers[s], linestyle="none", label=f"twin seed {s}")
          for s in sorted(trained["seed"].astype(int).unique())),
        Line2D([], [], color="grey", linestyle="--", label="reference (mean over seeds)"),
        Line2D([], [], color="grey", linestyle=":", label="classic, true programs (mean)"),
    ]  # fmt: skip
    axes[2].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    figure.tight_layout()
    return save_png(figure, path, dpi=110)
