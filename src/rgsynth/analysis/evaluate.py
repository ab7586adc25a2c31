"""``rgsynth evaluate RUN [--against RUN2]``: realism, conditioning, ablations and the
ground-truth recovery of the maps, side by side for the two models and the classic
pipeline.

Realism and conditioning use the validation split: every validation nodule slice gets a
synthesis with its owner's genes on a random validation background ("matched"), and the
same background and noise with another validation subject's genes ("shuffled genes") and
with the training mean ("zeroed genes"). On a twin cohort, ``--truth`` adds trait
fidelity (every subject with genes as a donor) and the maps' recovery of the true
program → trait effects. Writes ``RUN/evaluation.json`` (every score with its interval),
``RUN/evaluation_metrics.csv``, ``RUN/evaluation.png``, the paper's example grid
(``RUN/examples.npz`` / ``.csv``, see :mod:`rgsynth.analysis.examples`) and, with a truth,
``RUN/map_pairs.csv`` (every map beside the true effects) and ``RUN/truth_subjects.csv``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import adjusted_rand_score

from rgsynth.analysis.cohort import CohortView, load_cohort
from rgsynth.analysis.examples import write_examples
from rgsynth.analysis.features import FEATURES, MIN_PIXELS, FeatureExtractor
from rgsynth.analysis.ground_truth import (
    TRAIT_FEATURES,
    Truth,
    load_truth,
    match_metagenes,
    program_trait_table,
    score_against_truth,
)
from rgsynth.analysis.perturbation import program_matrix
from rgsynth.analysis.realism import (
    Estimate,
    background_fidelity,
    bootstrap_mean,
    frechet_radiomics_distance,
    mask_consistency,
    two_sample_accuracy,
)
from rgsynth.analysis.statistics import spearman_map
from rgsynth.config import PrepareConfig
from rgsynth.fsutil import atomic_write_json, atomic_write_text
from rgsynth.intensity import unit_to_hu
from rgsynth.layout import (
    CONVENTIONAL_MAP_CSV,
    EMBEDDING_CSV,
    EVALUATION_FIGURE_FILENAME,
    EVALUATION_FILENAME,
    EVALUATION_METRICS_FILENAME,
    EXAMPLES_NPZ,
    MAP_PAIRS_CSV,
    MAPS_DIRNAME,
    METAGENES_CSV,
    PERTURBATION_PROGRAMS_CSV,
    REAL_FEATURES_CSV,
    TRUTH_SUBJECTS_CSV,
)
from rgsynth.models.registry import get_spec
from rgsynth.plotting import pyplot, save_png
from rgsynth.prepare.cache import Cache, cache_prepare_config
from rgsynth.synthesize.backgrounds import cache_backgrounds
from rgsynth.synthesize.model import Synthesizer, TrainedRun, load_run_pair
from rgsynth.synthesize.paste import nodule_component
from rgsynth.train.stats import training_summary

CONDITIONS = ("matched", "shuffled genes", "zeroed genes")
CONVENTIONAL_LABELS = {
    "discovered": "conventional",
    "true programs": "conventional, true programs",
}


def map_label(name: str) -> str:
    """A map's name in map_pairs.csv and the report: a model's display name (``name`` is
    its architecture) or one of the conventional pipeline's two variants."""
    return CONVENTIONAL_LABELS.get(name) or get_spec(name).display_name


@dataclass(frozen=True)
class EvaluationSettings:
    """Attributes:
    per_donor: syntheses per donor for trait fidelity.
    resamples: bootstrap resamples of every interval.
    change_hu: what counts as changed for mask consistency.
    seed: fixes backgrounds, noise and shuffles.
    """

    per_donor: int = 8
    resamples: int = 500
    change_hu: float = 150.0
    seed: int = 0


@dataclass
class RealSlices:
    """Validation nodule slices: (n, S, S) HU and masks, their owners, and features."""

    hu: np.ndarray
    mask: np.ndarray
    owner: list[str]
    features: np.ndarray


def evaluate(
    run_dir: Path,
    settings: EvaluationSettings,
    cache_root: Path | None = None,
    against: Path | None = None,
    truth_path: Path | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    start = time.perf_counter()
    run, other = load_run_pair(run_dir, against, cache_root)
    runs = [run, other] if other else [run]
    cohort = load_cohort(run.cache_root)
    config = cache_prepare_config(run.cache_root)
    extractor = FeatureExtractor(cohort.pixel_mm)
    real, split = _real_slices(run.cache_root, cohort, config, extractor)
    backgrounds = _backgrounds(run.cache_root, split, settings)
    truth = load_truth(truth_path) if truth_path else None
    features = _real_features(run.run_dir, cohort)
    report: dict[str, Any] = {"format": "rgsynth-evaluation/1", "models": {}}
    pairs: dict[str, pd.DataFrame] = {}
    for model in runs:
        name = model.config.model.architecture
        echo(f"evaluating {name} ({model.run_dir}): {len(real.owner)} validation nodule slices")
        context = _Context(model, cohort, real, backgrounds, extractor, config, settings)
        report["models"][name] = context.scores(truth)
        if truth is not None and (table := context.map_pairs(truth)) is not None:
            pairs[map_label(name)] = table
    echo(f"example grid (paper Fig. 2 and 3) → {Path(run_dir) / EXAMPLES_NPZ}")
    write_examples(
        run_dir, runs, cohort, features, extractor, backgrounds, config.hu_window, settings.seed
    )
    if truth is not None:
        conventional = _conventional_tables(run.run_dir, cohort, features, truth)
        report["conventional"] = {
            "as_discovered": score_against_truth(conventional["discovered"], truth),
            "metagene_match": conventional["matches"].to_dict(orient="records"),
            "with_true_programs": score_against_truth(conventional["true programs"], truth),
        }
        for variant in CONVENTIONAL_LABELS:
            pairs[map_label(variant)] = conventional[variant]
        _write_truth_tables(Path(run_dir), pairs, truth)
        report["embedding_vs_subtypes"] = _embedding_scores(run.run_dir, truth)
        rng = np.random.default_rng([settings.seed, 5])
        report["feature_validity"] = trait_spearman(features, truth, rng, settings.resamples)
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
    _write(Path(run_dir), report)
    return report


def _real_slices(
    cache_root: Path, cohort: CohortView, config: PrepareConfig, extractor: FeatureExtractor
) -> tuple[RealSlices, str]:
    donors = [
        s for s, split in zip(cohort.subject_ids, cohort.split, strict=True) if split == "val"
    ]
    split = "val" if len(donors) >= 3 else "all"
    donors = donors if split == "val" else cohort.subject_ids
    cache = Cache(cache_root)
    hu, masks, owners = [], [], []
    for sid in donors:
        shard = cache.load_shard(sid)
        for image, mask in zip(shard["nodule_image"], shard["nodule_mask"], strict=True):
            if mask.sum() >= MIN_PIXELS:
                hu.append(unit_to_hu(image, config.hu_window))
                masks.append(mask.astype(bool))
                owners.append(sid)
    table = extractor.table(np.stack(hu), np.stack(masks))
    return RealSlices(np.stack(hu), np.stack(masks), owners, table.to_numpy()), split


def _backgrounds(cache_root: Path, split: str, settings: EvaluationSettings) -> np.ndarray:
    manifest = Cache(cache_root).manifest()
    subjects = [s for s in manifest["subjects"] if split == "all" or s["split"] == split]
    available = sum(s["n_background_slices"] for s in subjects)
    rng = np.random.default_rng([settings.seed, 4])
    return np.stack([p.patch for p in cache_backgrounds(cache_root, split, available, rng)])


class _Context:
    """Everything one model's scores need."""

    def __init__(self, run, cohort, real, backgrounds, extractor, config, settings) -> None:
        self.run: TrainedRun = run
        self.cohort: CohortView = cohort
        self.real: RealSlices = real
        self.backgrounds, self.extractor = backgrounds, extractor
        self.config: PrepareConfig = config
        self.settings: EvaluationSettings = settings
        self.synthesizer = Synthesizer(run.generator)
        self.row_of = {s: n for n, s in enumerate(cohort.subject_ids)}

    def scores(self, truth: Truth | None) -> dict[str, Any]:
        rng = np.random.default_rng(self.settings.seed)
        n = len(self.real.owner)
        picks = rng.integers(len(self.backgrounds), size=n)
        seeds = [int(s) for s in rng.integers(2**31, size=n)]
        donors = sorted(set(self.real.owner))
        shuffled = [self._other(owner, donors, rng) for owner in self.real.owner]
        profiles = {
            "matched": self._genes(self.real.owner),
            "shuffled genes": self._genes(shuffled),
            "zeroed genes": np.zeros((n, len(self.cohort.gene_names)), np.float32),
        }
        result: dict[str, Any] = {
            "checkpoint_step": self.run.step,
            "training": _training_facts(self.run),
        }
        for condition in CONDITIONS:
            synthesis = self.synthesizer(self.backgrounds[picks], profiles[condition], seeds)
            features, masks = self._features(synthesis)
            result[condition] = self._realism(features, masks, rng)
            result[condition]["donor_auroc"] = self._donor_auroc(features, rng).to_dict()
            if condition == "matched":
                result[condition] |= self._fidelity(synthesis, self.backgrounds[picks], rng)
        if truth is not None:
            result["trait_fidelity"] = self._trait_fidelity(truth, rng)
            result["perturbation_map"] = self._map_scores(truth)
        return result

    def _other(self, owner: str, donors: list[str], rng: np.random.Generator) -> str:
        others = [d for d in donors if d != owner]
        return others[int(rng.integers(len(others)))] if others else owner

    def _genes(self, subjects: list[str]) -> np.ndarray:
        return self.cohort.genes[[self.row_of[s] for s in subjects]]

    def _features(self, synthesis) -> tuple[np.ndarray, np.ndarray]:
        rows, masks = [], []
        for image, soft in zip(synthesis.image, synthesis.mask, strict=True):
            mask, _ = nodule_component(soft > 0.5)
            row = self.extractor(unit_to_hu(image, self.config.hu_window), mask)
            rows.append([row[f] for f in FEATURES])
            masks.append(mask)
        return np.array(rows, dtype=float), np.stack(masks)

    def _realism(self, features: np.ndarray, masks: np.ndarray, rng) -> dict[str, Any]:
        usable = np.isfinite(features).all(axis=1)
        scores: dict[str, Any] = {"empty_or_tiny_mask_rate": float(1 - usable.mean())}
        if usable.sum() < 4:
            return scores
        resamples = self.settings.resamples
        scores["frd"] = frechet_radiomics_distance(
            self.real.features, features, rng, resamples
        ).to_dict()
        scores["two_sample_accuracy"] = two_sample_accuracy(
            self.real.features, features, rng
        ).to_dict()
        return scores

    def _fidelity(self, synthesis, backgrounds: np.ndarray, rng) -> dict[str, Any]:
        erosion = self.run.config.erosion_px
        pairs = [
            background_fidelity(image, background, mask, erosion)
            for image, background, mask in zip(
                synthesis.image, backgrounds, synthesis.mask, strict=True
            )
        ]
        window = self.config.hu_window
        dice = [
            mask_consistency(
                unit_to_hu(i, window), unit_to_hu(b, window), m, self.settings.change_hu
            )
            for i, b, m in zip(synthesis.image, backgrounds, synthesis.mask, strict=True)
        ]
        psnr, ssim = np.array(pairs).T
        return {
            "background_psnr_db": bootstrap_mean(psnr, rng).to_dict(),
            "background_ssim": bootstrap_mean(ssim, rng).to_dict(),
            "mask_consistency_dice": bootstrap_mean(np.array(dice), rng).to_dict(),
        }

    def _donor_auroc(self, features: np.ndarray, rng) -> Estimate:
        """How often a donor's syntheses sit closer (standardised features) to the donor's
        own real nodule than to another donor's: 0.5 = the genes are not used."""
        frame = pd.DataFrame(features, columns=FEATURES).assign(owner=self.real.owner)
        real = pd.DataFrame(self.real.features, columns=FEATURES).assign(owner=self.real.owner)
        sd = real[list(FEATURES)].std().replace(0, 1)
        synthetic_mean = (frame.groupby("owner")[list(FEATURES)].mean() / sd).dropna()
        real_mean = (real.groupby("owner")[list(FEATURES)].mean() / sd).dropna()
        donors = [d for d in synthetic_mean.index if d in real_mean.index]
        per_donor = []
        for donor in donors:
            distance = np.linalg.norm(real_mean.loc[donors] - synthetic_mean.loc[donor], axis=1)
            own = distance[donors.index(donor)]
            others = np.delete(distance, donors.index(donor))
            per_donor.append(float((others > own).mean() + 0.5 * (others == own).mean()))
        return bootstrap_mean(np.array(per_donor), rng)

    def _trait_fidelity(self, truth: Truth, rng) -> dict[str, Any]:
        """Spearman, over donors, between a donor's true trait and the trait's feature
        averaged over ``per_donor`` syntheses with its genes (random backgrounds)."""
        donors = [s for s in self.cohort.subject_ids if s in truth.traits.index]
        k = self.settings.per_donor
        picks = rng.integers(len(self.backgrounds), size=len(donors) * k)
        seeds = [int(s) for s in rng.integers(2**31, size=len(donors) * k)]
        owners = [d for d in donors for _ in range(k)]
        synthesis = self.synthesizer(self.backgrounds[picks], self._genes(owners), seeds)
        features, _ = self._features(synthesis)
        measured = pd.DataFrame(features, columns=FEATURES).assign(owner=owners)
        measured = measured.groupby("owner")[list(FEATURES)].mean().loc[donors]
        return trait_spearman(measured, truth, rng, self.settings.resamples)

    def map_pairs(self, truth: Truth) -> pd.DataFrame | None:
        """The run's perturbation map as (program, trait, effect, q) rows, or None when
        there is no map of the truth's programs."""
        path = self.run.run_dir / MAPS_DIRNAME / PERTURBATION_PROGRAMS_CSV
        if not path.is_file():
            return None
        table = program_trait_table(pd.read_csv(path), "effect_sd")
        return table if table["program"].isin(truth.effects.index).any() else None

    def _map_scores(self, truth: Truth) -> dict[str, Any]:
        table = self.map_pairs(truth)
        if table is None:
            path = self.run.run_dir / MAPS_DIRNAME / PERTURBATION_PROGRAMS_CSV
            return {"missing": f"{path}: run `rgsynth map {self.run.run_dir} --gene-sets TRUTH`"}
        return score_against_truth(table, truth)


def _spearman_estimate(pair: pd.DataFrame, rng, resamples: int) -> dict[str, float]:
    if len(pair) < 4 or pair["measured"].nunique() < 2:
        return {
            "value": float("nan"),
            "ci_low": float("nan"),
            "ci_high": float("nan"),
            "n": len(pair),
        }
    value = stats.spearmanr(pair["truth"], pair["measured"])[0]
    draws = []
    for _ in range(resamples):
        sample = pair.iloc[rng.integers(len(pair), size=len(pair))]
        if sample["measured"].nunique() > 1 and sample["truth"].nunique() > 1:
            draws.append(stats.spearmanr(sample["truth"], sample["measured"])[0])
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan)
    return {"value": float(value), "ci_low": float(low), "ci_high": float(high), "n": len(pair)}


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
        return pd.read_csv(path, index_col=0)
    return cohort.features()


def _conventional_tables(
    run_dir: Path, cohort: CohortView, features: pd.DataFrame, truth: Truth
) -> dict[str, pd.DataFrame]:
    """The classic pipeline in the truth's terms: as discovered (metagenes matched to the
    true programs by gene overlap), and with the true programs as its metagenes (an upper
    bound: metagene discovery made perfect). Returns the metagene matches and both
    (program, trait, effect, q) tables."""
    maps = Path(run_dir) / MAPS_DIRNAME
    membership = pd.read_csv(maps / METAGENES_CSV)
    conventional = pd.read_csv(maps / CONVENTIONAL_MAP_CSV)
    matches = match_metagenes(membership, truth, cohort.gene_names)
    renamed = []
    for _, match in matches.dropna(subset=["metagene"]).iterrows():
        rows = conventional[conventional["program"] == match["metagene"]].copy()
        renamed.append(rows.assign(program=match["program"]))
    discovered = program_trait_table(pd.concat(renamed) if renamed else conventional, "rho")
    programs = program_matrix(truth.gene_sets, cohort.gene_names)
    counts = np.abs(programs.to_numpy()).sum(axis=1, keepdims=True)
    scores = pd.DataFrame(
        cohort.genes @ (programs.to_numpy() / counts).T,
        index=cohort.subject_ids,
        columns=programs.index,
    )
    oracle = program_trait_table(spearman_map(scores, features), "rho")
    return {"matches": matches, "discovered": discovered, "true programs": oracle}


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


def trait_spearman(
    features: pd.DataFrame, truth: Truth, rng: np.random.Generator, resamples: int
) -> dict[str, dict[str, float]]:
    """Spearman, over the subjects in both, between each true trait and the feature that
    reads it (rows of ``features`` are subject IDs), with bootstrap intervals. On real
    nodules it says how well a feature reads its trait (the ceiling of every map for
    that trait); on syntheses averaged per donor it is trait fidelity."""
    known = [s for s in features.index if s in truth.traits.index]
    result = {}
    for trait, (feature, sign) in TRAIT_FEATURES.items():
        pair = pd.DataFrame(
            {
                "truth": truth.traits.loc[known, trait],
                "measured": sign * features.loc[known, feature],
            }
        ).dropna()
        result[trait] = _spearman_estimate(pair, rng, resamples)
    return result


def _embedding_scores(run_dir: Path, truth: Truth) -> dict[str, float]:
    """Adjusted Rand index of each code's k-means clusters against the twin's expression
    subtypes (0 = chance, 1 = the subtypes exactly)."""
    table = pd.read_csv(Path(run_dir) / MAPS_DIRNAME / EMBEDDING_CSV).set_index("subject_id")
    known = table.index.intersection(truth.subtypes.index)
    return {
        column.removesuffix(" cluster"): float(
            adjusted_rand_score(truth.subtypes[known], table.loc[known, column])
        )
        for column in table.columns
        if column.endswith(" cluster")
    }


def _write(run_dir: Path, report: dict[str, Any]) -> None:
    atomic_write_json(run_dir / EVALUATION_FILENAME, report)
    rows = []
    for model, scores in report["models"].items():
        for condition in CONDITIONS:
            for metric, value in scores[condition].items():
                rows.append(_metric_row(model, condition, metric, value))
        for trait, value in scores.get("trait_fidelity", {}).items():
            rows.append(_metric_row(model, "matched", f"trait_fidelity_{trait}", value))
        for metric, value in scores.get("perturbation_map", {}).items():
            rows.append(_metric_row(model, "perturbation map", metric, value))
    for trait, value in report.get("feature_validity", {}).items():
        rows.append(_metric_row("real nodules", "feature reads trait", trait, value))
    for space, ari in report.get("embedding_vs_subtypes", {}).items():
        rows.append(_metric_row(space, "embedding", "subtype_adjusted_rand", ari))
    for variant, scores in report.get("conventional", {}).items():
        if isinstance(scores, dict):
            for metric, value in scores.items():
                rows.append(_metric_row("conventional", variant, metric, value))
    table = pd.DataFrame(rows)
    atomic_write_text(run_dir / EVALUATION_METRICS_FILENAME, table.to_csv(index=False))
    _figure(table, run_dir / EVALUATION_FIGURE_FILENAME)


def _metric_row(model: str, condition: str, metric: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {
            "model": model,
            "condition": condition,
            "metric": metric,
            **{k: value.get(k) for k in ("value", "ci_low", "ci_high")},
        }
    return {
        "model": model,
        "condition": condition,
        "metric": metric,
        "value": value,
        "ci_low": None,
        "ci_high": None,
    }


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
        low = values - part["ci_low"].astype(float).to_numpy()
        high = part["ci_high"].astype(float).to_numpy() - values
        ax.bar(range(len(values)), values, yerr=[low, high], color="tab:blue", capsize=3)
        ax.set_xticks(range(len(values)), labels, fontsize=7, rotation=45, ha="right")
        if metric != "frd":
            ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_title(metric.replace("_", " "), fontsize=9)
    return save_png(fig, path, dpi=100)
