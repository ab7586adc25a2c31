"""``rgsynth evaluate RUN [--against RUN2]``: realism, conditioning, ablations and the
ground-truth recovery of the maps, side by side for the two models and the classic
pipeline.

Realism and conditioning use the held-out donors when the cache has them (``synth-cohort
--holdout``, kept out of training by ``prepare``), else the validation split: every such
nodule slice gets a synthesis with its owner's genes on a random background of the same
split ("matched"), and the same background and noise with another such subject's genes
("shuffled genes") and with the training mean ("zeroed genes"). On a twin cohort,
``--truth`` adds trait fidelity (every subject with genes as a donor) and the maps'
recovery of the true
program → trait effects. Every number is one record computed by a registered metric
(:mod:`rgsynth.metrics`). Writes ``RUN/evaluation_scores.jsonl`` (the records),
``RUN/evaluation.json`` (the records nested beside the run's facts),
``RUN/evaluation_metrics.csv``, ``RUN/evaluation.png``, the paper's example grid
(``RUN/examples.npz`` / ``.csv``, see :mod:`rgsynth.analysis.examples`) and, with a truth,
``RUN/map_pairs.csv`` (every map beside the true effects) and ``RUN/truth_subjects.csv``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rgsynth.analysis.cohort import CohortView, load_cohort
from rgsynth.analysis.examples import write_examples
from rgsynth.analysis.features import MIN_PIXELS, FeatureExtractor
from rgsynth.analysis.ground_truth import (
    TRAIT_FEATURES,
    Truth,
    load_truth,
    match_metagenes,
    program_trait_table,
    trait_spearman,
)
from rgsynth.analysis.maps import _fixed_backgrounds, perturbation_maps, sweep_figure
from rgsynth.analysis.perturbation import program_matrix
from rgsynth.analysis.readout import load_readout, readout_column
from rgsynth.analysis.reference import REFERENCE, ReferenceGenerator
from rgsynth.analysis.statistics import metagenes, spearman_map
from rgsynth.config import MapSettings, PerturbationSettings, PrepareConfig
from rgsynth.fsutil import atomic_write_json, atomic_write_text
from rgsynth.inference import Synthesizer, TrainedRun, load_run_pair
from rgsynth.intensity import unit_to_hu
from rgsynth.layout import (
    EVALUATION_FIGURE_FILENAME,
    EVALUATION_FILENAME,
    EVALUATION_METRICS_FILENAME,
    EXAMPLES_NPZ,
    MAP_PAIRS_CSV,
    MAPS_DIRNAME,
    MAPS_SUMMARY_FILENAME,
    PERTURBATION_EMPTY_CSV,
    PROGRAM_SWEEP_PNG,
    REAL_FEATURES_CSV,
    REFERENCE_DIRNAME,
    SCORES_FILENAME,
    TRUTH_SUBJECTS_CSV,
    perturbation_filename,
)
from rgsynth.metrics.builtin import perturbation_pairs
from rgsynth.metrics.context import EvaluationSettings, ModelContext, RealSlices, StudyContext
from rgsynth.metrics.records import Score, nest, write_scores
from rgsynth.metrics.registry import CONDITIONS, score_model, score_study
from rgsynth.models.registry import get_spec
from rgsynth.plotting import pyplot, save_png
from rgsynth.prepare.cache import Cache, cache_prepare_config
from rgsynth.synthesize.backgrounds import cache_backgrounds
from rgsynth.train.stats import training_summary

__all__ = ["CONDITIONS", "EvaluationSettings", "evaluate", "map_label", "trait_spearman"]
CONVENTIONAL_LABELS = {
    "discovered": "conventional",
    "true programs": "conventional, true programs",
    "sampling bound": "conventional, true programs and traits",
}
REFERENCE_LABEL = "reference (the twin's painter)"


def map_label(name: str) -> str:
    """A map's name in map_pairs.csv and the report: a model's display name (``name`` is
    its architecture), the reference generator, or a conventional pipeline variant."""
    if name == REFERENCE:
        return REFERENCE_LABEL
    return CONVENTIONAL_LABELS.get(name) or get_spec(name).display_name


def evaluate(
    run_dir: Path,
    settings: EvaluationSettings,
    cache_root: Path | None = None,
    against: Path | None = None,
    truth_path: Path | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Score a run (and a compared run) with every registered metric; write the records,
    evaluation.json built from them, the metrics table and figure, and the example grid.
    Returns evaluation.json's content."""
    start = time.perf_counter()
    truth = load_truth(truth_path) if truth_path else None  # a bad file fails before any work
    run, other = load_run_pair(run_dir, against, cache_root)
    runs = [run, other] if other else [run]
    cohort = load_cohort(run.cache_root)
    config = cache_prepare_config(run.cache_root)
    extractor = FeatureExtractor(cohort.pixel_mm)
    real, split = _real_slices(run.cache_root, cohort, config, extractor)
    backgrounds = _backgrounds(run.cache_root, split, settings)
    features = _real_features(run.run_dir, cohort)
    report: dict[str, Any] = {"format": "rgsynth-evaluation/1", "models": {}}
    scores: list[Score] = []
    pairs: dict[str, pd.DataFrame] = {}
    contexts = []
    for model in runs:
        # held-out donors are unseen: their gene scores unshrunk where asked (and possible;
        # a cohort scored on all its donors has none, as the map's bases)
        unseen = (
            model.unseen_synthesizers([model.generator], settings.unshrink_strength)
            if settings.unshrink_unseen and split != "all"
            else None
        )
        synthesizer = unseen[0] if unseen else Synthesizer(model.generator)
        contexts.append(
            ModelContext(model, cohort, real, backgrounds, extractor, config, settings, synthesizer)
        )
        # the run's shrinkage s, its power and the divisor s ** power (None: read plain)
        contexts[-1].facts |= {
            "unseen_shrinkage": model.unseen_shrinkage() if unseen else None,
            "unseen_strength": settings.unshrink_strength if unseen else None,
            "unseen_divisor": synthesizer.unseen_shrinkage,
        }
    if truth is not None:
        echo("reference generator: the twin's own painter through the same maps and scores")
        contexts.append(
            _reference_context(
                run, truth_path, cohort, features, real, backgrounds, extractor, config, settings
            )
        )
    for context in contexts:
        name = context.model
        echo(f"evaluating {name}: {len(real.owner)} nodule slices of the {split} donors")
        scores += score_model(context, truth)
        facts = {}
        if context.run is not None:
            facts = {"checkpoint_step": context.run.step, "training": _training_facts(context.run)}
        report["models"][name] = facts | context.facts
        if truth is not None and (table := perturbation_pairs(context, truth)) is not None:
            pairs[map_label(name)] = table
    echo(f"example grid (paper Fig. 2 and 3) → {Path(run_dir) / EXAMPLES_NPZ}")
    write_examples(  # painted as the scores were (unseen donors unshrunk where asked)
        run_dir, runs, cohort, features, extractor, backgrounds, config.hu_window, settings.seed,
        synthesizers=[context.synthesizer for context in contexts[: len(runs)]],
    )  # fmt: skip
    study = StudyContext(run.run_dir, cohort, features, truth, settings)
    if truth is not None:
        study.conventional = conventional_tables(
            cohort, features, truth, _map_settings(run.run_dir)
        )
        for variant in CONVENTIONAL_LABELS:
            pairs[map_label(variant)] = study.conventional[variant]
        _write_truth_tables(Path(run_dir), pairs, truth)
    scores += score_study(study)
    nest(scores, into=report)
    if truth is not None:
        matches = study.conventional["matches"].to_dict(orient="records")
        report["conventional"]["metagene_match"] = matches
        report["conventional"]["n_donors"] = study.conventional["n_donors"]
    report |= {
        "run": str(Path(run_dir).resolve()),
        "against": str(Path(against).resolve()) if against else None,
        "truth": str(truth_path) if truth_path else None,
        "cache_fingerprint": run.cache_fingerprint,
        "validation_split": split,
        "n_real_slices": len(real.owner),
        "settings": asdict(settings),
        "seconds": round(time.perf_counter() - start, 1),
    }
    _write(Path(run_dir), report, scores)
    return report


def _real_slices(
    cache_root: Path, cohort: CohortView, config: PrepareConfig, extractor: FeatureExtractor
) -> tuple[RealSlices, str]:
    split = cohort.scoring_split()
    donors = [
        s
        for s, part in zip(cohort.subject_ids, cohort.split, strict=True)
        if split == "all" or part == split
    ]
    cache = Cache(cache_root)
    hu, masks, owners, heights = [], [], [], []
    for sid in donors:
        shard = cache.load_shard(sid)
        slices = (shard["nodule_image"], shard["nodule_mask"], shard["nodule_slice_mm"])
        for image, mask, height in zip(*slices, strict=True):
            if mask.sum() >= MIN_PIXELS:
                hu.append(unit_to_hu(image, config.hu_window))
                masks.append(mask.astype(bool))
                owners.append(sid)
                heights.append(float(height))
    table = extractor.table(np.stack(hu), np.stack(masks))
    heights_mm = np.asarray(heights, dtype=np.float32)
    return RealSlices(np.stack(hu), np.stack(masks), owners, table.to_numpy(), heights_mm), split


def _backgrounds(cache_root: Path, split: str, settings: EvaluationSettings) -> np.ndarray:
    manifest = Cache(cache_root).manifest()
    subjects = [s for s in manifest["subjects"] if split == "all" or s["split"] == split]
    available = sum(s["n_background_slices"] for s in subjects)
    rng = np.random.default_rng([settings.seed, 4])
    return np.stack([p.patch for p in cache_backgrounds(cache_root, split, available, rng)])


def _training_facts(run: TrainedRun) -> dict[str, Any]:
    """What the report says about how a model was trained, kept with its scores."""
    model = run.config.model
    return {
        "architecture": model.architecture,
        "image_size": model.image_size,
        "base_channels": model.base_channels,
        "max_channels": model.max_channels,
        "n_genes": model.n_genes,
        "batch_size": run.config.batch_size,
        "lr": run.config.lr,
        "precision": run.config.precision,
        **training_summary(run.run_dir),
    }


def _real_features(run_dir: Path, cohort: CohortView) -> pd.DataFrame:
    """The real nodules' features as `rgsynth map` measured them (measured here if the
    run has no maps yet)."""
    path = Path(run_dir) / MAPS_DIRNAME / REAL_FEATURES_CSV
    if path.is_file():
        table = pd.read_csv(path, index_col=0)
        if all(readout_column(t) in table.columns for t in TRAIT_FEATURES):
            return table
        return load_readout().apply(table)  # maps made before the readout existed
    return cohort.features()


def _reference_context(
    run: TrainedRun,
    truth_path: Path,
    cohort: CohortView,
    features: pd.DataFrame,
    real: RealSlices,
    backgrounds: np.ndarray,
    extractor: FeatureExtractor,
    config: PrepareConfig,
    settings: EvaluationSettings,
) -> ModelContext:
    """The reference generator, its perturbation maps written to ``RUN/reference/`` with
    the settings the run's own maps used (so the two compare), as a model to score."""
    out = Path(run.run_dir) / REFERENCE_DIRNAME
    reference = reference_maps(
        truth_path, run.cache_root, cohort, features, _map_settings(run.run_dir), out
    )
    return ModelContext(
        None,
        cohort,
        real,
        backgrounds,
        extractor,
        config,
        settings,
        synthesizer=reference,
        name=REFERENCE,
        maps_dir=out,
        # it paints each profile's expected nodule: the gene ablations say nothing new
        conditions=("matched",),
    )


def reference_maps(
    truth_path: Path,
    cache_root: Path,
    cohort: CohortView,
    features: pd.DataFrame,
    map_settings: MapSettings,
    out: Path,
) -> ReferenceGenerator:
    """The reference generator's perturbation maps (every rule), empty rates and program
    sweep, written to ``out``; returns the generator."""
    reference = ReferenceGenerator(truth_path, cache_root)
    truth = load_truth(truth_path)
    hu_window = cache_prepare_config(cache_root).hu_window
    programs = program_matrix(truth.gene_sets, cohort.gene_names)
    fixed = _fixed_backgrounds(cache_root, map_settings)
    out.mkdir(parents=True, exist_ok=True)
    maps = perturbation_maps(reference, cohort, features, programs, fixed, hu_window, map_settings)
    for name, result in maps.items():
        atomic_write_text(out / perturbation_filename(name), result.table.to_csv(index=False))
    empty = pd.concat([r.empty.assign(map=n) for n, r in maps.items()], ignore_index=True)
    atomic_write_text(out / PERTURBATION_EMPTY_CSV, empty.to_csv(index=False))
    sweep_figure(
        reference,
        cohort,
        programs,
        fixed,
        hu_window,
        map_settings,
        out / PROGRAM_SWEEP_PNG,
        REFERENCE_LABEL,
    )
    return reference


def _map_settings(run_dir: Path) -> MapSettings:
    """The settings the run's maps were made with (the defaults if it has none)."""
    path = Path(run_dir) / MAPS_DIRNAME / MAPS_SUMMARY_FILENAME
    if not path.is_file():
        return MapSettings()
    stored = json.loads(path.read_text()).get("settings", {})
    perturbation = stored.pop("perturbation", {})
    if "rules" in perturbation:
        perturbation["rules"] = tuple(perturbation["rules"])
    known = {f for f in MapSettings.__dataclass_fields__}
    values = {k: v for k, v in stored.items() if k in known}
    if "unshrink_unseen" in values and "unshrink_strength" not in values:
        values["unshrink_strength"] = 1.0  # written before the power: the full correction
    values.setdefault("unshrink_unseen", False)  # written before the option: plain
    fields = PerturbationSettings.__dataclass_fields__
    return MapSettings(
        **values,
        perturbation=PerturbationSettings(**{k: v for k, v in perturbation.items() if k in fields}),
    )


def conventional_tables(
    cohort: CohortView, features: pd.DataFrame, truth: Truth, settings: MapSettings
) -> dict[str, pd.DataFrame]:
    """The classic pipeline in the truth's terms, on the training donors (the subjects
    the generators learned from) and with the same readout: as discovered (metagenes found
    on those donors, matched to the true programs by gene overlap), with the true programs
    as its metagenes (metagene discovery made perfect: the fair headline, since the
    perturbation map is handed the true programs too), and the sampling bound (the true
    programs against the true traits on those donors: what any map could find from so
    many subjects). Returns the metagene matches and the (program, trait, effect, q)
    tables."""
    split = np.array(cohort.split)
    train = split == "train" if (split == "train").sum() >= 8 else np.ones(len(split), bool)
    ids = [s for s, keep in zip(cohort.subject_ids, train, strict=True) if keep]
    genes = cohort.genes[train]
    found = metagenes(
        genes,
        cohort.gene_names,
        ids,
        settings.metagene_min_correlation,
        settings.metagene_min_genes,
    )
    readouts = [readout_column(t) for t in TRAIT_FEATURES]
    observed = features.loc[ids, readouts]
    conventional = spearman_map(found.scores, observed)
    matches = match_metagenes(found.membership, truth, cohort.gene_names)
    renamed = []
    for _, match in matches.dropna(subset=["metagene"]).iterrows():
        rows = conventional[conventional["program"] == match["metagene"]].copy()
        renamed.append(rows.assign(program=match["program"]))
    discovered = program_trait_table(pd.concat(renamed) if renamed else conventional, "rho")
    programs = program_matrix(truth.gene_sets, cohort.gene_names)
    counts = np.abs(programs.to_numpy()).sum(axis=1, keepdims=True)
    scores = pd.DataFrame(
        genes @ (programs.to_numpy() / counts).T, index=ids, columns=programs.index
    )
    oracle = program_trait_table(spearman_map(scores, observed), "rho")
    true_traits = truth.traits.reindex(ids)[list(TRAIT_FEATURES)]
    true_traits.columns = readouts
    bound = program_trait_table(spearman_map(scores, true_traits), "rho")
    return {
        "matches": matches,
        "discovered": discovered,
        "true programs": oracle,
        "sampling bound": bound,
        "n_donors": len(ids),
    }


def _write_truth_tables(run_dir: Path, pairs: dict[str, pd.DataFrame], truth: Truth) -> None:
    """``map_pairs.csv``: every map's (program, trait) effect and q beside the true effect;
    ``truth_subjects.csv``: each subject's true subtype and traits. With them the report
    draws the maps next to the truth from the run folder alone."""
    rows = []
    for label, table in pairs.items():
        for _, row in table.iterrows():
            if row["program"] not in truth.effects.index:
                continue
            rows.append(
                {
                    "map": label,
                    "program": row["program"],
                    "trait": row["trait"],
                    "feature": TRAIT_FEATURES[row["trait"]][0],
                    "effect": row["effect"],
                    "q": row["q"],
                    "true_effect": truth.effects.at[row["program"], row["trait"]],
                    "null_program": row["program"] in truth.null_programs,
                }
            )
    columns = ["map", "program", "trait", "feature", "effect", "q", "true_effect", "null_program"]
    atomic_write_text(
        run_dir / MAP_PAIRS_CSV, pd.DataFrame(rows, columns=columns).to_csv(index=False)
    )
    subjects = truth.traits.copy()
    if truth.subtypes is not None:
        subjects.insert(0, "subtype", truth.subtypes.reindex(subjects.index))
    atomic_write_text(run_dir / TRUTH_SUBJECTS_CSV, subjects.to_csv(index_label="subject_id"))


def _write(run_dir: Path, report: dict[str, Any], scores: list[Score]) -> None:
    """The records (JSON lines), evaluation.json, the same records as a CSV, the figure."""
    write_scores(run_dir / SCORES_FILENAME, scores)
    atomic_write_json(run_dir / EVALUATION_FILENAME, report)
    table = pd.DataFrame([asdict(s) for s in scores], columns=list(Score.__dataclass_fields__))
    atomic_write_text(run_dir / EVALUATION_METRICS_FILENAME, table.to_csv(index=False))
    _figure(table, run_dir / EVALUATION_FIGURE_FILENAME)


def _figure(table: pd.DataFrame, path: Path) -> Path:
    """FRD, two-sample accuracy and donor AUROC per model and condition, with intervals."""
    plt = pyplot()
    metrics = ("frd", "two_sample_accuracy", "donor_auroc")
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(4.2 * len(metrics), 3.4), layout="constrained"
    )
    for ax, metric in zip(axes, metrics, strict=True):
        part = table[(table["metric"] == metric) & table["condition"].isin(CONDITIONS)]
        labels = [f"{m}\n{c}" for m, c in zip(part["model"], part["condition"], strict=True)]
        values = part["value"].astype(float).to_numpy()
        # a bootstrap interval need not hold its point estimate (FRD is biased): clip
        low = np.clip(values - part["ci_low"].astype(float).to_numpy(), 0.0, None)
        high = np.clip(part["ci_high"].astype(float).to_numpy() - values, 0.0, None)
        ax.bar(range(len(values)), values, yerr=[low, high], color="tab:blue", capsize=3)
        ax.set_xticks(range(len(values)), labels, fontsize=7, rotation=45, ha="right")
        if metric != "frd":
            ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_title(metric.replace("_", " "), fontsize=9)
    return save_png(fig, path, dpi=100)
