"""The built-in metrics, in the order ``rgsynth evaluate`` runs them.

The computations live in :mod:`rgsynth.analysis` (realism, ground truth, statistics);
each function here measures one thing on a context and returns its records.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from rgsynth.analysis.features import FEATURES
from rgsynth.analysis.ground_truth import (
    SINGLE_FEATURES,
    Truth,
    program_trait_table,
    score_against_truth,
    trait_spearman,
)
from rgsynth.analysis.perturbation import COLUMNS, RULES
from rgsynth.analysis.realism import (
    background_fidelity,
    bootstrap_mean,
    frechet_radiomics_distance,
    mask_consistency,
    two_sample_accuracy,
)
from rgsynth.intensity import unit_to_hu
from rgsynth.layout import (
    EMBEDDING_CSV,
    MAPS_DIRNAME,
    PERTURBATION_EMPTY_CSV,
    PERTURBATION_PROGRAMS_CSV,
    perturbation_filename,
)
from rgsynth.metrics.context import ConditionSample, ModelContext, StudyContext
from rgsynth.metrics.records import (
    CONVENTIONAL,
    EMBEDDING,
    FEATURE_VALIDITY,
    REAL_NODULES,
    SINGLE_FEATURE_VALIDITY,
    Score,
)
from rgsynth.metrics.registry import register_metric

MIN_USABLE = 4  # syntheses with a nodule below which FRD and the two-sample test are not run
CONVENTIONAL_VARIANTS = {
    "discovered": "as_discovered",
    "true programs": "with_true_programs",
    "sampling bound": "sampling_bound",
}
PERTURBATION_MAP = "perturbation map"


@register_metric("realism", scope="condition")
def realism(context: ModelContext, sample: ConditionSample, rng) -> list[Score]:
    """The share of syntheses without a usable nodule; FRD and the two-sample accuracy
    against the real validation slices, over those with one."""
    model, condition = context.model, sample.condition
    synthetic = sample.features[:, : len(FEATURES)]
    usable = np.isfinite(synthetic).all(axis=1)
    empty = Score(model, condition, "empty_or_tiny_mask_rate", float(1 - usable.mean()))
    if usable.sum() < MIN_USABLE:
        return [empty]
    real, resamples = context.real.features[:, : len(FEATURES)], context.settings.resamples
    frd = frechet_radiomics_distance(real, synthetic, rng, resamples)
    accuracy = two_sample_accuracy(real, synthetic, rng)
    return [
        empty,
        Score.of(model, condition, "frd", frd),
        Score.of(model, condition, "two_sample_accuracy", accuracy),
    ]


@register_metric("donor_auroc", scope="condition")
def donor_auroc(context: ModelContext, sample: ConditionSample, rng) -> list[Score]:
    """How often a donor's syntheses sit closer (standardised features) to the donor's
    own real nodule than to another donor's: 0.5 = the genes are not used."""
    per_donor = donor_closeness(context.real.features, sample.features, context.real.owner)
    estimate = bootstrap_mean(per_donor.dropna().to_numpy(), rng)
    return [Score.of(context.model, sample.condition, "donor_auroc", estimate)]


def donor_closeness(
    real: np.ndarray, synthetic: np.ndarray, owners: list[str], *, against_all: bool = False
) -> pd.Series:
    """Per donor (sorted), the share of other donors whose mean real features are farther
    from this donor's mean synthesis than its own mean real features are (ties count
    half), features standardised by the real slices' SD; NaN for a donor with no usable
    synthesis. Row i of ``real`` and ``synthetic`` belongs to ``owners[i]``. The other
    donors are those with a usable synthesis (the metric), or every donor with a real
    nodule (``against_all``: a benchmark's per-donor values, where one donor's failed
    syntheses must not change the others')."""
    columns = list(FEATURES)
    frame = pd.DataFrame(synthetic[:, : len(FEATURES)], columns=columns).assign(owner=owners)
    reals = pd.DataFrame(real[:, : len(FEATURES)], columns=columns).assign(owner=owners)
    sd = reals[columns].std().replace(0, 1)
    synthetic_mean = (frame.groupby("owner")[columns].mean() / sd).dropna()
    real_mean = (reals.groupby("owner")[columns].mean() / sd).dropna()
    donors = [d for d in real_mean.index if against_all or d in synthetic_mean.index]
    values = {}
    for i, donor in enumerate(donors):
        if donor not in synthetic_mean.index:
            values[donor] = np.nan  # no usable synthesis for this donor
            continue
        distance = np.linalg.norm(real_mean.loc[donors] - synthetic_mean.loc[donor], axis=1)
        others = np.delete(distance, i)
        values[donor] = float((others > distance[i]).mean() + 0.5 * (others == distance[i]).mean())
    return pd.Series(values, dtype=float)


@register_metric("background_fidelity", scope="condition", conditions=("matched",))
def background_and_mask(context: ModelContext, sample: ConditionSample, rng) -> list[Score]:
    """PSNR and SSIM of the background outside the eroded mask, and the Dice of the mask
    against the pixels the synthesis changed."""
    erosion = context.run.config.erosion_px if context.run is not None else 0
    window = context.config.hu_window
    outputs = zip(sample.synthesis.image, sample.backgrounds, sample.synthesis.mask, strict=True)
    pairs, dice = [], []
    for image, background, mask in outputs:
        pairs.append(background_fidelity(image, background, mask, erosion))
        changed = (unit_to_hu(image, window), unit_to_hu(background, window))
        dice.append(mask_consistency(*changed, mask, context.settings.change_hu))
    psnr, ssim = np.array(pairs).T
    measured = {"background_psnr_db": psnr, "background_ssim": ssim}
    measured["mask_consistency_dice"] = np.array(dice)
    return [
        Score.of(context.model, sample.condition, name, bootstrap_mean(values, rng))
        for name, values in measured.items()
    ]


@register_metric("trait_fidelity", scope="model")
def trait_fidelity(context: ModelContext, truth: Truth, rng) -> list[Score]:
    """Spearman, over donors, between a donor's true trait and the trait's feature
    averaged over ``per_donor`` syntheses with its genes (random backgrounds)."""
    donors = [s for s in context.cohort.subject_ids if s in truth.traits.index]
    k = context.settings.per_donor
    picks = rng.integers(len(context.backgrounds), size=len(donors) * k)
    seeds = [int(s) for s in rng.integers(2**31, size=len(donors) * k)]
    owners = [d for d in donors for _ in range(k)]
    synthesis = context.synthesizer(context.backgrounds[picks], context.genes(owners), seeds)
    features, _ = context.measure(synthesis)
    measured = pd.DataFrame(features, columns=COLUMNS).assign(owner=owners)
    measured = measured.groupby("owner")[list(COLUMNS)].mean().loc[donors]
    fidelity = trait_spearman(measured, truth, rng, context.settings.resamples)
    return [Score.of(context.model, "trait fidelity", t, e) for t, e in fidelity.items()]


def perturbation_pairs(
    context: ModelContext, truth: Truth, filename: str = PERTURBATION_PROGRAMS_CSV
) -> pd.DataFrame | None:
    """A perturbation map of the model as (program, trait, effect, q) rows, or None when
    there is no map of the truth's programs."""
    path = context.maps_dir / filename
    if not path.is_file():
        return None
    table = program_trait_table(pd.read_csv(path), "effect_sd")
    return table if table["program"].isin(truth.effects.index).any() else None


@register_metric("perturbation_map", scope="model")
def perturbation_map(context: ModelContext, truth: Truth, rng) -> list[Score]:
    """The perturbation maps' recovery of the true (program, trait) pairs: the headline
    rule's, and each other rule's beside it."""
    table = perturbation_pairs(context, truth)
    if table is None:
        path = context.maps_dir / PERTURBATION_PROGRAMS_CSV
        missing = f"{path}: run `rgsynth map {context.maps_dir.parent} --gene-sets TRUTH`"
        context.facts["perturbation_map"] = {"missing": missing}
        return []
    resamples, seed = context.settings.resamples, context.settings.seed
    recovery = score_against_truth(table, truth, resamples, seed)
    scores = recovery_scores(context.model, PERTURBATION_MAP, recovery)
    empty = context.maps_dir / PERTURBATION_EMPTY_CSV
    if empty.is_file():  # the share of empty masks per arm, beside the scores
        rates = pd.read_csv(empty).groupby(["map", "arm"])["empty_rate"].mean()
        context.facts["perturbation_empty_rate"] = {
            name: {f"{arm:+g}": round(float(v), 4) for (m, arm), v in rates.items() if m == name}
            for name in rates.index.get_level_values(0).unique()
        }
    for rule in RULES:
        other = perturbation_pairs(context, truth, perturbation_filename(f"programs:{rule}"))
        if other is not None:
            recovery = score_against_truth(other, truth, resamples, seed)
            scores += recovery_scores(context.model, f"{PERTURBATION_MAP} ({rule} rule)", recovery)
    return scores


def recovery_scores(model: str, condition: str, recovery: dict[str, float]) -> list[Score]:
    """A map's recovery as records; the AUROC carries its interval over pairs."""
    values = dict(recovery)
    low, high = values.pop("auroc_ci_low", None), values.pop("auroc_ci_high", None)
    scores = []
    for metric, value in values.items():
        if metric == "auroc" and low is not None and not np.isnan(low):
            scores.append(Score(model, condition, metric, value, low, high))
        else:
            scores.append(Score(model, condition, metric, value))
    return scores


@register_metric("conventional_map", scope="study", needs_truth=True)
def conventional_map(study: StudyContext) -> list[Score]:
    """The classic pipeline's recovery of the true pairs on the training donors, with the
    same readout: as discovered, with the true programs as its metagenes, and the
    sampling bound (true programs against the true traits on those donors)."""
    assert study.truth is not None
    scores = []
    resamples, seed = study.settings.resamples, study.settings.seed
    for table_name, variant in CONVENTIONAL_VARIANTS.items():
        table = study.conventional[table_name]
        recovery = score_against_truth(table, study.truth, resamples, seed)
        scores += recovery_scores(CONVENTIONAL, variant, recovery)
    return scores


@register_metric("codes_vs_subtypes", scope="study", needs_truth=True)
def codes_vs_subtypes(study: StudyContext) -> list[Score]:
    """Adjusted Rand index of each code's k-means clusters against the twin's expression
    subtypes (0 = chance, 1 = the subtypes exactly)."""
    assert study.truth is not None
    table = pd.read_csv(study.run_dir / MAPS_DIRNAME / EMBEDDING_CSV).set_index("subject_id")
    known = table.index.intersection(study.truth.subtypes.index)
    return [
        Score(
            column.removesuffix(" cluster"),
            EMBEDDING,
            "subtype_adjusted_rand",
            float(adjusted_rand_score(study.truth.subtypes[known], table.loc[known, column])),
        )
        for column in table.columns
        if column.endswith(" cluster")
    ]


@register_metric("feature_validity", scope="study", needs_truth=True)
def feature_validity(study: StudyContext) -> list[Score]:
    """How well each trait's readout reads the trait on the scored cohort's real nodules,
    out of sample (the readout was fitted on calibration cohorts): the ceiling of every
    map for that trait. Beside it, the single feature that read each trait before the
    readout (``feature reads trait (single feature)``), for the ablation."""
    assert study.truth is not None
    rng = np.random.default_rng([study.settings.seed, 5])
    validity = trait_spearman(study.features, study.truth, rng, study.settings.resamples)
    scores = [Score.of(REAL_NODULES, FEATURE_VALIDITY, t, e) for t, e in validity.items()]
    single = trait_spearman(
        study.features, study.truth, rng, study.settings.resamples, SINGLE_FEATURES
    )
    condition = SINGLE_FEATURE_VALIDITY
    return scores + [Score.of(REAL_NODULES, condition, t, e) for t, e in single.items()]
