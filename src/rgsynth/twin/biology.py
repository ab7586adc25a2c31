"""The twin's latent biology: gene programs, molecular subtypes and the gene-to-trait map.

Generative story (all drawn from the cohort seed, nothing fixed):

1. ``K`` latent gene programs. Subjects belong to one of ``S`` molecular subtypes; a subject's
   program activities are its subtype's mean plus individual variation, then whitened over
   the cohort (z-scores, mutually uncorrelated).
2. A sparse trait map ``effects`` (traits × programs): every nodule trait has one or two
   driving programs with a random sign and strength; ``n_null_programs`` programs drive
   nothing. A trait's latent score is ``effects @ activities + noise`` with unit variance, so
   ``effects[t, k]`` is the correlation the trait's latent has with program ``k``.
3. Latent scores become physical traits (diameter in mm, solid fraction, spiculation, ...).
4. Genes load on at most one program; log2 expression is a gene baseline plus loading times
   activity plus gene noise. Values are back-transformed to non-negative RNA-seq-like
   levels with heavy-tailed outliers (see :mod:`rgsynth.twin.tables`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAITS = ("diameter", "solidity", "spiculation", "lobulation", "heterogeneity", "location")
LOCATIONS = ("free", "juxta-vascular", "juxta-pleural")
NODULE_TYPES = ("ground-glass", "part-solid", "solid")
SUBTYPE_NAMES = (
    "terminal respiratory unit",
    "proximal inflammatory",
    "proximal proliferative",
    "mucinous",
    "squamoid",
    "mesenchymal",
)

# Cut points of the location latent: the three categories are equally likely a priori.
_LOCATION_CUTS = (-0.43, 0.43)


@dataclass(frozen=True)
class GeneProgramModel:
    """Cohort-level ground truth shared by every subject.

    Attributes:
        effects: (n_traits, n_programs) correlation of each trait latent with each program.
        subtype_means: (n_subtypes, n_programs) mean program activity of each subtype.
        gene_names: (n_genes,) gene symbols (twin genes are named ``TG#####``).
        gene_program: (n_genes,) index of the program a gene loads on, -1 for none.
        gene_loading: (n_genes,) log2 change per unit program activity (0 for none).
        gene_baseline: (n_genes,) mean log2 expression.
        gene_noise: (n_genes,) standard deviation of log2 expression around the model.
    """

    effects: np.ndarray
    subtype_means: np.ndarray
    gene_names: tuple[str, ...]
    gene_program: np.ndarray
    gene_loading: np.ndarray
    gene_baseline: np.ndarray
    gene_noise: np.ndarray

    @property
    def n_programs(self) -> int:
        return self.effects.shape[1]

    @property
    def null_programs(self) -> list[int]:
        return [k for k in range(self.n_programs) if not np.any(self.effects[:, k])]

    @property
    def program_names(self) -> list[str]:
        return [f"P{k + 1}" for k in range(self.n_programs)]


@dataclass(frozen=True)
class CohortBiology:
    """Per-subject draws: subtype, program activities, trait latents and physical traits."""

    subtype: np.ndarray  # (n_subjects,) int
    activities: np.ndarray  # (n_subjects, n_programs) z-scores
    trait_latents: np.ndarray  # (n_subjects, n_traits) unit-variance scores
    traits: list[dict[str, float | str]]


def draw_trait_map(rng: np.random.Generator, n_programs: int, n_null: int) -> np.ndarray:
    """Sparse (n_traits, n_programs) effect matrix; ``n_null`` programs get no effect.

    Every non-null program drives at least one trait, every trait has one or two drivers
    with |effect| in [0.45, 0.8], and each trait's explained variance stays <= 0.85.
    """
    n_traits = len(TRAITS)
    driving = rng.permutation(n_programs)[: n_programs - n_null]
    effects = np.zeros((n_traits, n_programs))
    # Deal the driving programs round-robin over traits so none is left unused, then let
    # some traits take a second driver.
    order = rng.permutation(driving)
    for i, program in enumerate(order):
        effects[i % n_traits, program] = 1.0
    for trait in range(n_traits):
        if not effects[trait].any():
            effects[trait, rng.choice(driving)] = 1.0
        elif rng.random() < 0.35:
            spare = [p for p in driving if not effects[trait, p]]
            if spare:
                effects[trait, rng.choice(spare)] = 1.0
    signs = rng.choice([-1.0, 1.0], size=effects.shape)
    strengths = rng.uniform(0.45, 0.8, size=effects.shape)
    effects = effects * signs * strengths
    explained = (effects**2).sum(axis=1, keepdims=True)
    return effects * np.minimum(1.0, np.sqrt(0.85 / np.maximum(explained, 1e-12)))


def draw_gene_model(
    rng: np.random.Generator,
    n_genes: int,
    n_programs: int,
    n_null: int,
    n_subtypes: int,
    genes_per_program_fraction: float,
) -> GeneProgramModel:
    effects = draw_trait_map(rng, n_programs, n_null)
    subtype_means = rng.normal(0.0, 1.1, size=(n_subtypes, n_programs))
    gene_program = np.full(n_genes, -1)
    per_program = max(4, round(genes_per_program_fraction * n_genes))
    chosen = rng.permutation(n_genes)[: per_program * n_programs]
    for k in range(n_programs):
        gene_program[chosen[k * per_program : (k + 1) * per_program]] = k
    in_program = gene_program >= 0
    gene_loading = np.where(
        in_program,
        rng.choice([-1.0, 1.0], n_genes) * rng.uniform(0.6, 1.4, n_genes),
        0.0,
    )
    gene_baseline = rng.normal(4.0, 2.5, n_genes)
    gene_noise = rng.uniform(0.35, 0.9, n_genes)
    names = tuple(f"TG{i + 1:05d}" for i in range(n_genes))
    return GeneProgramModel(
        effects=effects,
        subtype_means=subtype_means,
        gene_names=names,
        gene_program=gene_program,
        gene_loading=gene_loading,
        gene_baseline=gene_baseline,
        gene_noise=gene_noise,
    )


def draw_cohort_biology(
    rng: np.random.Generator, model: GeneProgramModel, n_subjects: int
) -> CohortBiology:
    n_subtypes = model.subtype_means.shape[0]
    # Balanced-ish subtype sizes with random order, so small cohorts still see every subtype.
    subtype = rng.permutation(np.arange(n_subjects) % n_subtypes)
    raw = model.subtype_means[subtype] + rng.normal(0.0, 0.75, (n_subjects, model.n_programs))
    activities = _whiten(raw)
    n_traits = len(TRAITS)
    explained = (model.effects**2).sum(axis=1)
    residual_sd = np.sqrt(np.clip(1.0 - explained, 0.15, None))
    latents = activities @ model.effects.T + rng.normal(size=(n_subjects, n_traits)) * residual_sd
    traits = [traits_from_latents(row) for row in latents]
    return CohortBiology(
        subtype=subtype, activities=activities, trait_latents=latents, traits=traits
    )


def traits_from_latents(latent: np.ndarray) -> dict[str, float | str]:
    """Physical nodule traits from one subject's trait latents (order of :data:`TRAITS`).

    Returns a dict with ``diameter_mm`` (5–40), ``solid_fraction`` (0–1, the solid core's
    share of the radius), ``nodule_type``, ``ground_glass_volume_fraction``, ``spiculation``,
    ``lobulation``, ``heterogeneity`` (all 0–1) and ``location``.
    """
    z = dict(zip(TRAITS, latent, strict=True))
    diameter_mm = float(np.clip(np.exp(np.log(15.0) + 0.5 * z["diameter"]), 5.0, 40.0))
    solid_score = _sigmoid(1.8 * z["solidity"] + 0.5)
    # Below 0.2 the nodule is pure ground glass, above 0.8 fully solid.
    core_ratio = float(np.clip((solid_score - 0.2) / 0.6, 0.0, 1.0))
    if core_ratio == 0.0:
        nodule_type = "ground-glass"
    elif core_ratio == 1.0:
        nodule_type = "solid"
    else:
        nodule_type = "part-solid"
    location_index = int(np.searchsorted(_LOCATION_CUTS, z["location"]))
    return {
        "diameter_mm": round(diameter_mm, 3),
        "solid_fraction": round(core_ratio, 4),
        "nodule_type": nodule_type,
        "ground_glass_volume_fraction": round(1.0 - core_ratio**3, 4),
        "spiculation": round(_sigmoid(1.6 * z["spiculation"]), 4),
        "lobulation": round(_sigmoid(1.6 * z["lobulation"]), 4),
        "heterogeneity": round(_sigmoid(1.6 * z["heterogeneity"]), 4),
        "location": LOCATIONS[location_index],
    }


def log2_expression(
    rng: np.random.Generator, model: GeneProgramModel, activities: np.ndarray
) -> np.ndarray:
    """(n_genes, n_subjects) log2 expression implied by program activities."""
    n_subjects = activities.shape[0]
    signal = model.gene_loading[:, None] * activities.T[model.gene_program.clip(0)]
    signal[model.gene_program < 0] = 0.0
    noise = rng.normal(size=(model.gene_loading.size, n_subjects)) * model.gene_noise[:, None]
    return model.gene_baseline[:, None] + signal + noise


def _whiten(values: np.ndarray) -> np.ndarray:
    """Zero-mean, identity-covariance activities over the cohort (ZCA whitening).

    Subtype means make raw programs correlated; then a null program would borrow
    correlation with traits from the programs it co-varies with. Whitening (a linear map,
    so clusters survive) makes ``effects`` exactly the trait-program correlations and keeps
    null programs null. Cohorts too small to estimate a covariance are only standardised.
    """
    centred = values - values.mean(axis=0, keepdims=True)
    n, k = values.shape
    if n <= 2 * k:
        sd = centred.std(axis=0, keepdims=True)
        return centred / np.where(sd > 0, sd, 1.0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(centred, rowvar=False, bias=True))
    inverse_sqrt = eigenvectors @ np.diag(eigenvalues**-0.5) @ eigenvectors.T
    return centred @ inverse_sqrt


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))
