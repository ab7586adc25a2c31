"""Frozen per-stage settings, YAML/JSON round trips and fingerprints.

This module imports nothing of ours but the (equally light) model sizes, so every stage
can depend on it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from rgsynth.models.config import ModelConfig

__all__ = [
    "BatchSettings",
    "Blend",
    "EvaluationSettings",
    "MapSettings",
    "ModelConfig",
    "PerturbationSettings",
    "PrepareConfig",
    "TrainConfig",
    "TwinConfig",
    "fingerprint",
]

TWIN_PRESETS = ("tiny", "demo", "paper", "calibration")
TWIN_QUIRKS = ("none", "collection")


@dataclass(frozen=True)
class TwinConfig:
    """Settings of one synthetic NSCLC Radiogenomics cohort (the digital twin).

    Attributes:
        preset: name of the preset these values came from.
        seed: master seed; the whole cohort is a pure function of this config.
        n_subjects: number of subjects (the real collection has 211).
        matrix: rows = columns of every CT slice (the real scans are 512).
        slab_mm: craniocaudal coverage of each CT series, centred near the nodule, in mm.
            Real scans cover the whole chest; a slab keeps the twin small on disk while
            holding every 60 mm nodule VOI and plenty of lung for background patches.
        pixel_spacing_mm: range of in-plane spacing drawn per subject, in mm.
        slice_thickness_mm: choices of slice thickness (= spacing), in mm.
        n_genes: rows of the RNA-seq table (the real GSE103584 table has 22126).
        n_genes_complete: genes with no missing value (the real table has 5172).
        n_programs: latent gene programs (some drive no nodule trait).
        n_null_programs: programs that drive nothing, by construction.
        n_subtypes: molecular subtypes (clusters in program space).
        genes_per_program_fraction: fraction of all genes that load on each program.
        rnaseq_fraction: fraction of subjects present in the RNA-seq table (real: 130/211).
        seg_fraction: fraction of subjects with a nodule DICOM SEG (real: 144/211).
        slicer_seg_fraction: among SEGs, the fraction in the "3D Slicer" flavour (one
            frame per CT slice); the rest are "ePAD Generated DSO" (empty frames omitted).
        amc_fraction: fraction of subjects with AMC-NNN rather than R01-NNN IDs.
        independent_traits: draw every nodule trait independently of the genes (no
            program drives anything): the calibration cohorts the trait readout is fitted
            on, so it cannot learn one trait from another through a shared program.
        quirks: ``none`` (clean files) or ``collection``: the files carry what is known of
            the real TCIA download's quirks (SEG writers' variants, extra CT series, uneven
            slices, table oddities; :mod:`rgsynth.twin.quirks`). The images and genes drawn
            are the same either way: only how they are written differs.
        n_holdout: extra donors ``R01-H001`` … of the same gene model and trait map, each
            with genes and a SEG, listed in ``holdout.csv`` so ``prepare`` keeps them out
            of training: a large unseen set to score a run on. The other subjects' files
            are the same with or without them.
    """

    preset: str = "demo"
    seed: int = 0
    n_subjects: int = 64
    matrix: int = 384
    slab_mm: float = 72.0
    pixel_spacing_mm: tuple[float, float] = (0.6, 0.9)
    slice_thickness_mm: tuple[float, ...] = (1.0, 1.25, 1.5, 2.0, 2.5)
    n_genes: int = 2000
    n_genes_complete: int = 500
    n_programs: int = 8
    n_null_programs: int = 3
    n_subtypes: int = 3
    genes_per_program_fraction: float = 0.04
    rnaseq_fraction: float = 0.75
    seg_fraction: float = 0.9
    slicer_seg_fraction: float = 0.5
    amc_fraction: float = 0.23
    independent_traits: bool = False
    quirks: str = "none"
    n_holdout: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.n_subjects < 1:
            problems.append(f"n_subjects must be >= 1, got {self.n_subjects}")
        if not 0 < self.n_genes_complete <= self.n_genes:
            problems.append(
                f"n_genes_complete must be in 1..n_genes ({self.n_genes}), "
                f"got {self.n_genes_complete}"
            )
        if not 0 <= self.n_null_programs < self.n_programs:
            problems.append("n_null_programs must leave at least one driving program")
        if self.matrix < 128:
            problems.append(f"matrix must be >= 128 pixels, got {self.matrix}")
        if self.slab_mm < 30:
            problems.append(f"slab_mm must be >= 30 mm, got {self.slab_mm}")
        for name in ("rnaseq_fraction", "seg_fraction", "slicer_seg_fraction", "amc_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be in [0, 1]")
        if self.n_holdout < 0:
            problems.append(f"n_holdout must be >= 0, got {self.n_holdout}")
        if self.quirks not in TWIN_QUIRKS:
            problems.append(f"quirks must be one of {', '.join(TWIN_QUIRKS)}, got {self.quirks!r}")
        if problems:
            raise ValueError("invalid twin config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        # Twins without these keep the fingerprint they always had.
        if values["quirks"] == "none":
            del values["quirks"]
        if values["n_holdout"] == 0:
            del values["n_holdout"]
        return values

    def fingerprint(self) -> str:
        return fingerprint(self.to_dict())


def twin_preset(name: str, **overrides: Any) -> TwinConfig:
    """The settings of a named preset, with explicit overrides applied.

    ``tiny`` is for tests (seconds), ``demo`` is what ``rgsynth demo`` trains on (under a
    minute on 2 cores), ``paper`` mirrors the real collection's sizes (211 subjects, 512²
    slices, 22126 genes of which 5172 are complete).
    """
    presets: dict[str, dict[str, Any]] = {
        "tiny": dict(
            n_subjects=6,
            matrix=256,
            slab_mm=48.0,
            n_genes=400,
            n_genes_complete=120,
            n_programs=6,
            n_null_programs=2,
            genes_per_program_fraction=0.06,
            rnaseq_fraction=0.84,
            seg_fraction=0.84,
        ),
        "demo": dict(),
        # demo-sized, traits drawn independently of the genes: what the readout is fitted on
        "calibration": dict(independent_traits=True),
        "paper": dict(
            n_subjects=211,
            matrix=512,
            slab_mm=100.0,
            n_genes=22126,
            n_genes_complete=5172,
            n_programs=10,
            n_null_programs=3,
            n_subtypes=4,
            genes_per_program_fraction=0.03,
            rnaseq_fraction=130 / 211,
            seg_fraction=144 / 211,
        ),
    }
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(TWIN_PRESETS)}")
    values = {**presets[name], **{k: v for k, v in overrides.items() if v is not None}}
    return TwinConfig(preset=name, **values)


def fingerprint(obj: Any) -> str:
    """A short stable hash of a JSON-serialisable object (sorted keys)."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _below(name: str, value: int, least: int) -> list[str]:
    """``[problem]`` when a count or seed is under its least value, else ``[]``."""
    return [f"{name} must be >= {least}, got {value}"] if value < least else []


PREPARE_ON_ERROR = ("fail", "skip")
PRECISIONS = ("fp32", "bf16", "auto")


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of ``rgsynth prepare``: how cohort files become training examples (paper §3).

    Attributes:
        size: pixels along each edge of a VOI after resampling (64 on CPU, 128 as in the
            paper); the VOI is resampled to an isotropic grid of ``voi_mm / size`` mm.
        voi_mm: edge of the cubic volume of interest, in mm (the paper's 60 mm).
        hu_window: HU range kept and mapped linearly onto [-1, 1].
        background_centres: background VOI centres drawn per subject.
        background_slices: random axial slices taken from each background VOI (paper: 20).
        background_depth_mm: (min, max) distance of a background centre inside the lung
            boundary, in mm (paper: 5 to 25).
        nodule_margin_mm: the nodule is dilated by this much before it is cut out of the
            lung mask, so no background centre lies within it of the nodule.
        lung_threshold_hu: voxels below this are air when the lungs are segmented.
        max_slice_mm: series with a slice spacing above this are refused.
        val_fraction: fraction of subjects held out for validation (subject-level split).
        seed: seed of the split and of background sampling.
        gene_transform: ``log2p1`` (log2(x + 1), for RNA-seq counts or FPKM) or ``none``
            (the table is already on a log scale).
    """

    size: int = 64
    voi_mm: float = 60.0
    hu_window: tuple[float, float] = (-1000.0, 500.0)
    background_centres: int = 4
    background_slices: int = 20
    background_depth_mm: tuple[float, float] = (5.0, 25.0)
    nodule_margin_mm: float = 10.0
    lung_threshold_hu: float = -400.0
    max_slice_mm: float = 5.0
    val_fraction: float = 0.2
    seed: int = 0
    gene_transform: str = "log2p1"

    def __post_init__(self) -> None:
        problems = []
        trainable = ModelConfig.image_sizes(16, 512)  # what the networks can be built for
        if self.size not in trainable:
            problems.append(
                f"size must be one of {', '.join(map(str, trainable))} pixels (the model's "
                f"bottleneck, {ModelConfig.bottleneck_size}, times a power of two), "
                f"got {self.size}"
            )
        if self.voi_mm <= 0:
            problems.append(f"voi_mm must be positive, got {self.voi_mm}")
        low, high = self.hu_window
        if not low < high:
            problems.append(f"hu_window must be (low, high) with low < high, got {self.hu_window}")
        problems += _below("background_centres", self.background_centres, 0)
        problems += _below("background_slices", self.background_slices, 1)
        near, far = self.background_depth_mm
        if not 0 <= near < far:
            problems.append(f"background_depth_mm must be 0 <= min < max, got {near}, {far}")
        if not 0.0 <= self.val_fraction < 1.0:
            problems.append(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.max_slice_mm <= 0:
            problems.append(f"max_slice_mm must be positive, got {self.max_slice_mm}")
        problems += _below("seed", self.seed, 0)
        if self.gene_transform not in ("log2p1", "none"):
            problems.append(f"gene_transform must be log2p1 or none, got {self.gene_transform!r}")
        if problems:
            raise ValueError("invalid prepare settings: " + "; ".join(problems))

    @property
    def voxel_mm(self) -> float:
        return self.voi_mm / self.size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PrepareConfig:
        """The inverse of ``to_dict`` (JSON turns tuples into lists)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in fields}
        )

    def fingerprint(self) -> str:
        return fingerprint(self.to_dict())


@dataclass(frozen=True)
class TrainConfig:
    """Settings of ``rgsynth train``.

    The settings marked † default to None: "the model's own", the published values its
    :class:`~rgsynth.models.spec.ModelSpec` gives (the authors' prototype for the paper's
    model, DESIGN.md §2). The trainer fills them in (``ModelSpec.resolve``), so a config
    built in Python trains each architecture with its own weights, and what a run stores
    and reports is always concrete.

    Attributes:
        model: network sizes and the architecture.
        batch_size†: examples per step (per process under torchrun).
        lr†: Adam learning rate for G and D; betas: Adam betas.
        weight_i†, weight_is†, weight_isg†: weights of the D_I, D_IS and D_ISG terms, in
            the discriminator's and the generator's loss alike.
        weight_background†: λ, the eroded-background L1 weight.
        weight_kl†: weight of the conditioning-augmentation KL term (MC-GAN only).
        erosion_px†: edge of the square that erodes the generated background region.
        ema_decay: decay of the generator's exponential moving average (after a warm-up
            where the decay is (1 + step) / (10 + step), whichever is smaller).
        seed: seed of initialisation, data order and noise.
        precision†: ``fp32``, ``bf16`` (CPU/GPU autocast) or ``auto`` (bf16 where the
            device computes it natively, else fp32; the trainer stores its choice).
        gene_noise†: standard deviation of Gaussian noise added to every training gene
            profile along the model's whitened gene components, in units of the training
            donors' spread (0: none; only models with a fitted gene projection take it).
        cross_fit_genes†: train on each training donor's profile as the other donors'
            gene projection sees it (leave-one-out), where unseen donors' codes fall.
        shrink_genes†: train on each training donor's profile with its whitened gene
            scores shrunk by one leave-one-out factor shared by all components: its own
            direction, the spread unseen donors' codes have (not with cross_fit_genes).
        d_translate†: DiffAugment translation (Zhao et al. 2020) before every
            discriminator, in D's phase and G's: each real (image, mask, mismatched mask)
            tuple and each fake (image, mask) pair shifted by its own random whole-pixel
            offset of up to this share of the edge in x and y, zero-padded (0: off;
            ``focus-daug`` uses 1/8, issue 16's seventeenth round).
        map_snapshot†: fraction of the run's budget (its ``max_steps``, else its
            ``max_minutes``) at which the EMA generator is kept beside the final weights
            (``checkpoints/map-snapshot.pt``), for ``rgsynth map`` to read the perturbation
            map over both (0: none; ``focus`` keeps one at a third: issue 16's ninth round).
            Saving it changes nothing in training.
        log_every, sample_every, checkpoint_every: in steps.
        n_samples: columns of the sample grid.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    batch_size: int | None = None
    lr: float | None = None
    betas: tuple[float, float] = (0.5, 0.999)
    weight_i: float | None = None
    weight_is: float | None = None
    weight_isg: float | None = None
    weight_background: float | None = None
    weight_kl: float | None = None
    erosion_px: int | None = None
    ema_decay: float = 0.999
    seed: int = 0
    precision: str | None = None
    gene_noise: float | None = None
    cross_fit_genes: bool | None = None
    shrink_genes: bool | None = None
    d_translate: float | None = None
    map_snapshot: float | None = None
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 200
    n_samples: int = 8

    def __post_init__(self) -> None:
        if self.precision not in (None, *PRECISIONS):
            raise ValueError(f"precision must be fp32, bf16 or auto, got {self.precision!r}")
        if self.batch_size is not None and self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (batch norm and mismatched pairs)")
        if self.erosion_px is not None and (self.erosion_px < 1 or self.erosion_px % 2 == 0):
            raise ValueError(f"erosion_px must be an odd number >= 1, got {self.erosion_px}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.gene_noise is not None and not self.gene_noise >= 0:
            raise ValueError(f"gene_noise must be >= 0, got {self.gene_noise}")
        if self.d_translate is not None and not 0.0 <= self.d_translate < 0.5:
            raise ValueError(f"d_translate must be in [0, 0.5), got {self.d_translate}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.map_snapshot is not None and not 0.0 <= self.map_snapshot < 1.0:
            raise ValueError(f"map_snapshot must be in [0, 1), got {self.map_snapshot}")
        problems = _below("seed", self.seed, 0)
        for name in ("log_every", "sample_every", "checkpoint_every", "n_samples"):
            problems += _below(name, getattr(self, name), 1)  # steps between, or columns
        if problems:
            raise ValueError("; ".join(problems))

    def resolved(self) -> TrainConfig:
        """This config with every † setting left to the model given the model's own value.

        Raises:
            ValueError: the architecture is not registered.
        """
        from rgsynth.models.registry import get_spec  # the registry builds networks: lazy

        return get_spec(self.model.architecture).resolve(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        values = dict(values)
        model = ModelConfig(**values.pop("model", {}))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(model=model, **values)

    def fingerprint(self) -> str:
        return fingerprint(self.to_dict())


# What `rgsynth map`, `evaluate` and `synthesize` are run with.


@dataclass(frozen=True)
class PerturbationSettings:
    """Attributes:
    shift: how far member genes move, in z, each way (the ``genes`` rule, single genes).
    replicates: (background, noise, base profile) triples per program.
    rules: how a program moves (see :mod:`rgsynth.analysis.perturbation`); the first is
        the headline map, the others are computed beside it.
    bootstrap: resamples for the confidence intervals.
    seed: fixes backgrounds, noise and bases.
    """

    shift: float = 2.0
    replicates: int = 24
    rules: tuple[str, ...] = ("axis", "genes")
    bootstrap: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        problems = _below("replicates", self.replicates, 1) + _below("bootstrap", self.bootstrap, 1)
        problems += _below("seed", self.seed, 0)
        if not self.shift > 0:
            problems.append(f"shift must be positive, got {self.shift}")
        if problems:
            raise ValueError("invalid perturbation settings: " + "; ".join(problems))


MAP_WEIGHTS = ("both", "snapshot", "final")
# The power of the leave-one-out shrinkage that unseen donors' whitened gene scores are
# divided by (issue 16's twentieth round, benchmarks/results/round20_decision_rule.txt:
# fixed at 1/2 before any reading, adopted by that rule over 9 report readings)
UNSHRINK_STRENGTH = 0.5


def _strength_problems(strength: float) -> list[str]:
    if not 0.0 < strength <= 1.0:
        return [f"unshrink_strength must be in (0, 1], got {strength}"]
    return []


@dataclass(frozen=True)
class MapSettings:
    """Settings of ``rgsynth map`` (the CLI's options name each).

    ``map_weights``: which of the run's EMA generators the perturbation maps are read
    from. ``both`` (default, issue 16's ninth round): its map snapshot (kept at
    ``TrainConfig.map_snapshot`` of its budget) and its final weights, each replicate's
    slope their mean; ``snapshot``: the snapshot alone (the tenth round's rule did not
    adopt it); ``final``: the final weights. A run that kept no snapshot is read from its
    final weights whatever this says.

    ``unshrink_unseen`` (on by default since issue 16's twentieth round): the perturbation
    maps whose base profiles are held-out donors' (the headline ``axis`` rule, the single
    genes under it) divide each base's whitened gene scores by the run's leave-one-out
    shrinkage s (``TrainedRun.unseen_shrinkage``; eighteenth round) raised to
    ``unshrink_strength`` p: 1/2 by default (twentieth round: most of the full
    correction's donor gain without its empty masks), 1 the full correction. The move
    along a program stays the yardstick's step (nineteenth round: the eighteenth divided
    it too). The ``genes`` rule, whose bases include training donors, the program sweep
    (from the training donors' mean) and a cohort without held-out donors are read as they
    are. Models without fitted gene components (``xu2019``, MC-GAN) ignore both.
    """

    n_clusters: int = 3
    metagene_min_correlation: float = 0.4
    metagene_min_genes: int = 5
    top_genes: int = 20
    n_backgrounds: int = 32
    perturbation: PerturbationSettings = field(default_factory=PerturbationSettings)
    seed: int = 0
    map_weights: str = "both"
    unshrink_unseen: bool = True
    unshrink_strength: float = UNSHRINK_STRENGTH

    def __post_init__(self) -> None:
        problems = _below("n_clusters", self.n_clusters, 2)  # a silhouette needs two clusters
        problems += _strength_problems(self.unshrink_strength)
        problems += _below("metagene_min_genes", self.metagene_min_genes, 1)
        problems += _below("top_genes", self.top_genes, 0)
        problems += _below("n_backgrounds", self.n_backgrounds, 1) + _below("seed", self.seed, 0)
        if self.map_weights not in MAP_WEIGHTS:
            problems.append(f"map_weights must be one of {', '.join(MAP_WEIGHTS)}, "
                            f"got {self.map_weights!r}")  # fmt: skip
        if not 0.0 <= self.metagene_min_correlation <= 1.0:  # an average |r|
            problems.append(
                f"metagene_min_correlation must be in [0, 1], got {self.metagene_min_correlation}"
            )
        if problems:
            raise ValueError("invalid map settings: " + "; ".join(problems))


@dataclass(frozen=True)
class EvaluationSettings:
    """Attributes:
    per_donor: syntheses per donor for trait fidelity.
    resamples: bootstrap resamples of every interval.
    change_hu: what counts as changed for mask consistency.
    seed: fixes backgrounds, noise and shuffles.
    unshrink_unseen: every profile a score synthesises from that is not a training
        donor's own (held-out donors', shuffled among them) has its whitened gene scores
        divided by the run's leave-one-out shrinkage to the power ``unshrink_strength``
        (as ``MapSettings``: on, at 1/2, by default); training donors' profiles (trait
        fidelity paints them too) are painted as they are; models without fitted gene
        components ignore both.
    """

    per_donor: int = 8
    resamples: int = 500
    change_hu: float = 150.0
    seed: int = 0
    unshrink_unseen: bool = True
    unshrink_strength: float = UNSHRINK_STRENGTH

    def __post_init__(self) -> None:
        problems = _below("per_donor", self.per_donor, 1) + _below("resamples", self.resamples, 1)
        problems += _strength_problems(self.unshrink_strength)
        problems += _below("seed", self.seed, 0)
        if not self.change_hu > 0:
            problems.append(f"change_hu must be positive, got {self.change_hu}")
        if problems:
            raise ValueError("invalid evaluation settings: " + "; ".join(problems))


@dataclass(frozen=True)
class Blend:
    """How a synthesis replaces the source pixels.

    Attributes:
        margin_mm: pixels this close to the generated mask take the synthesis.
        feather_mm: σ of the Gaussian fall-off beyond that region; 0 = hard edge (default).
        mask_threshold: the generated soft mask is binarised at this value.
    """

    margin_mm: float = 2.0
    feather_mm: float = 0.0
    mask_threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.margin_mm < 0 or self.feather_mm < 0:
            raise ValueError("blend margin and feather must be ≥ 0 mm")
        if not 0 < self.mask_threshold < 1:
            raise ValueError("the mask threshold must lie in (0, 1)")


SYNTHESIS_FORMATS = ("png", "nifti", "dicom")


@dataclass(frozen=True)
class BatchSettings:
    """Attributes:
    slice_height_mm: for a model told slice heights (``focus-height``), the height above
        the nodule's centroid of the axial slice it paints (0: the equator, the widest
        cut); other models paint as they learnt and refuse anything but 0.
    unshrink_unseen: a measured profile that is not a training donor's (a held-out or
        validation cache subject's, a row of the user's expression table) has its
        whitened gene scores divided by the run's leave-one-out shrinkage to the power
        ``unshrink_strength``, as ``MapSettings`` reads held-out donors (on, at 1/2, by
        default); an edit on it (``--set``, ``--set-program``) keeps the size given, as
        the map's move does. Training donors' own profiles and the training mean are
        painted as they are. Models without fitted gene components (``xu2019``, MC-GAN)
        ignore both (see ``synthesize.batch.Painters``).
    """

    blend: Blend = field(default_factory=Blend)
    formats: tuple[str, ...] = SYNTHESIS_FORMATS
    precision: str = "fp32"
    device: str = "cpu"
    batch_size: int = 32
    seed: int = 0
    slice_height_mm: float = 0.0
    unshrink_unseen: bool = True
    unshrink_strength: float = UNSHRINK_STRENGTH

    def __post_init__(self) -> None:
        if not math.isfinite(self.slice_height_mm):
            raise ValueError(f"slice_height_mm must be a finite number, got {self.slice_height_mm}")
        if problems := _strength_problems(self.unshrink_strength):
            raise ValueError("; ".join(problems))
        unknown = set(self.formats) - set(SYNTHESIS_FORMATS)
        if unknown or not self.formats:
            raise ValueError(
                f"formats must be some of {', '.join(SYNTHESIS_FORMATS)}, not {self.formats}"
            )
