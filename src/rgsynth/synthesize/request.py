"""What a user asks of ``rgsynth synthesize``, checked and turned into jobs.

Every input is read and checked (gene profiles, CT volumes, locations) before anything
is synthesised or written, so a bad input stops the command with nothing on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rgsynth.config import PrepareConfig
from rgsynth.prepare.cache import cache_prepare_config
from rgsynth.synthesize.backgrounds import (
    cache_backgrounds,
    load_volume,
    locate,
    random_locations,
)
from rgsynth.synthesize.batch import Job, Target, cache_targets, plan_jobs, volume_targets
from rgsynth.synthesize.profiles import (
    CacheGenes,
    GeneProfile,
    edit_profile,
    profiles_from_table,
    read_gene_sets,
)


@dataclass
class SynthesisRequest:
    """Attributes:
    subjects: cache subjects whose genes to use.
    expression: a user's expression table; table_subjects: its rows to use (all if empty).
    gene_edits, program_edits: (name, z) pairs applied to every profile; with edits and
        no base profile, the base is the training mean (z = 0 everywhere).
    gene_sets: the file defining programs (GMT, set/gene/weight CSV, twin ground truth).
    cts: user CT volumes (DICOM series folders or NIfTI/NRRD/MHA files).
    points_mm, voxels: explicit locations (one CT only); random_locations: per CT.
    cache_backgrounds: how many cache background slices, from ``split``.
    per_background: nodules per background and profile.
    seed: the batch seed.
    """

    subjects: list[str] = field(default_factory=list)
    expression: Path | None = None
    table_subjects: list[str] = field(default_factory=list)
    gene_edits: list[tuple[str, float]] = field(default_factory=list)
    program_edits: list[tuple[str, float]] = field(default_factory=list)
    gene_sets: Path | None = None
    cts: list[Path] = field(default_factory=list)
    points_mm: list[tuple[float, float, float]] = field(default_factory=list)
    voxels: list[tuple[float, float, float]] = field(default_factory=list)
    random_locations: int = 0
    cache_backgrounds: int = 0
    split: str = "val"
    per_background: int = 1
    seed: int = 0

    def check(self) -> None:
        """Raises ValueError on a request that cannot mean anything."""
        if self.per_background < 1:
            raise ValueError("--per-background must be at least 1")
        if (self.points_mm or self.voxels) and len(self.cts) != 1:
            raise ValueError("--at-mm/--at-voxel need exactly one --ct")
        if self.cts and not (self.points_mm or self.voxels or self.random_locations):
            raise ValueError("--ct needs a location: --at-mm, --at-voxel or --random-locations")
        if self.random_locations and not self.cts:
            raise ValueError("--random-locations needs --ct")
        if self.program_edits and self.gene_sets is None:
            raise ValueError("--set-program needs --gene-sets FILE (GMT, CSV or ground_truth.json)")
        if self.split not in ("train", "val", "all"):
            raise ValueError(f"--split must be train, val or all, not {self.split!r}")


def gene_profiles(request: SynthesisRequest, cache_genes: CacheGenes) -> list[GeneProfile] | None:
    """The profiles asked for, edited; None means a random cache donor per nodule."""
    profiles = [cache_genes.subject(s) for s in request.subjects]
    if request.expression is not None:
        profiles += profiles_from_table(
            request.expression, cache_genes, request.table_subjects or None
        )
    edits = request.gene_edits or request.program_edits
    if not profiles and not edits:
        return None
    if not profiles:
        zeros = np.zeros(len(cache_genes.names), np.float32)
        profiles = [GeneProfile("mean", zeros, "training mean (z = 0)", measured=False)]
    gene_sets = read_gene_sets(request.gene_sets) if request.gene_sets else None
    return [
        edit_profile(p, cache_genes, request.gene_edits, request.program_edits, gene_sets)
        for p in profiles
    ]


def targets(request: SynthesisRequest, cache_root: Path, config: PrepareConfig) -> list[Target]:
    """Cache patches and checked CT locations; by default eight cache patches."""
    found: list[Target] = []
    count = request.cache_backgrounds or (0 if request.cts else 8)
    if count:
        rng = np.random.default_rng([request.seed, 1])
        found += cache_targets(cache_backgrounds(cache_root, request.split, count, rng))
    for ct in request.cts:
        volume = load_volume(ct, config.max_slice_mm)
        locations = [locate(volume, config, point_mm=p) for p in request.points_mm]
        locations += [locate(volume, config, voxel_ijk=v) for v in request.voxels]
        if request.random_locations:
            rng = np.random.default_rng([request.seed, 2, len(found)])
            locations += random_locations(volume, config, request.random_locations, rng)
        found += volume_targets(volume, locations, config)
    return found


def plan(
    request: SynthesisRequest, cache_root: Path
) -> tuple[list[Job], PrepareConfig, CacheGenes]:
    """Check the request and every input it names, and list the jobs.

    Raises:
        ValueError: an inconsistent request, or an unknown gene or program.
        InputError: a bad table, CT or location.
    """
    request.check()
    config = cache_prepare_config(cache_root)
    cache_genes = CacheGenes.load(cache_root)
    profiles = gene_profiles(request, cache_genes)
    found = targets(request, cache_root, config)
    jobs = plan_jobs(found, profiles, cache_genes, request.per_background, request.seed)
    return jobs, config, cache_genes
