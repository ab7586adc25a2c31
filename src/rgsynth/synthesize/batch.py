"""A synthesis batch: targets × gene profiles × nodules per pair, into one output folder.

Output folder (written in a staging folder and moved into place when complete)::

    OUT/manifest.csv         one row per nodule: background, location, profile, seed, files
    OUT/synthesis.json       the run, cache, settings, notes and timing
    OUT/profiles.csv         every gene profile used (standardised values, one row each)
    OUT/previews/nodule-NNNN.png
    OUT/nifti/nodule-NNNN_image.nii.gz, nodule-NNNN_mask.nii.gz
    OUT/dicom/nodule-NNNN/CT/*.dcm and SEG.dcm

Every random choice (a donor subject, the noise) derives from (seed, nodule number), so a
batch is a function of its command line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from rgsynth.config import BatchSettings, Blend, PrepareConfig
from rgsynth.fsutil import atomic_write_json, atomic_write_text, staged_directory
from rgsynth.inference import SeenProfiles, Synthesis, Synthesizer, TrainedRun, assemble
from rgsynth.intensity import unit_to_hu
from rgsynth.layout import (
    SYNTHESIS_MANIFEST_FILENAME,
    SYNTHESIS_PROFILES_FILENAME,
    SYNTHESIS_SUMMARY_FILENAME,
)
from rgsynth.models.registry import get_spec
from rgsynth.synthesize import dicom_out
from rgsynth.synthesize.backgrounds import CachePatch, Location, SourceVolume, volume_patch
from rgsynth.synthesize.export import patch_image, preview_png, write_nifti
from rgsynth.synthesize.paste import PastedSlice, nodule_component, paste_patch
from rgsynth.synthesize.profiles import CacheGenes, GeneProfile


@dataclass(frozen=True)
class Target:
    """A background for the generator: a cache patch, or a checked location in a CT."""

    label: str
    patch: np.ndarray  # (S, S) in [-1, 1]
    centre_mm: tuple[float, float, float]
    volume: SourceVolume | None = None
    location: Location | None = None
    cache_patch: CachePatch | None = None

    @property
    def kind(self) -> str:
        return "cache" if self.volume is None else self.volume.kind


def cache_targets(patches: list[CachePatch]) -> list[Target]:
    return [
        Target(f"{p.subject_id}/background-{p.index}", p.patch, p.centre_mm, cache_patch=p)
        for p in patches
    ]


def volume_targets(
    volume: SourceVolume, locations: list[Location], config: PrepareConfig
) -> list[Target]:
    return [
        Target(
            f"{volume.label}@" + ",".join(f"{c:.1f}" for c in location.centre_mm),
            volume_patch(volume, location, config),
            location.centre_mm,
            volume=volume,
            location=location,
        )
        for location in locations
    ]


@dataclass(frozen=True)
class Job:
    number: int
    target: Target
    profile: GeneProfile
    seed: int

    @property
    def nodule_id(self) -> str:
        return f"nodule-{self.number:04d}"


def plan_jobs(
    targets: list[Target],
    profiles: list[GeneProfile] | None,
    cache_genes: CacheGenes,
    per_target: int,
    seed: int,
) -> list[Job]:
    """Every target × profile × ``per_target``; with no profiles, each nodule takes the
    genes of a random subject of the cache (a "donor")."""
    jobs: list[Job] = []
    for target in targets:
        for profile in profiles or [None]:
            for _ in range(per_target):
                number = len(jobs) + 1
                state = np.random.SeedSequence([seed, number]).generate_state(2)
                if profile is None:
                    donor = cache_genes.subject_ids[int(state[1]) % len(cache_genes.subject_ids)]
                    chosen = cache_genes.subject(donor)
                    chosen = GeneProfile(chosen.name, chosen.values, "random donor (cache)")
                else:
                    chosen = profile
                jobs.append(Job(number, target, chosen, int(state[0])))
    return jobs


def check_slice_height(run: TrainedRun, settings: BatchSettings) -> None:
    """Refuse a slice height for a run whose generator is not told slice heights.

    Raises:
        ValueError: ``settings.slice_height_mm`` is set and the run's model has no height
            input (only ``focus-height`` has one).
    """
    architecture = run.config.model.architecture
    if settings.slice_height_mm and not get_spec(architecture).slice_height:
        raise ValueError(
            f"--slice-height-mm {settings.slice_height_mm:g}: a {architecture} run, whose "
            "generator is not told slice heights (train --model focus-height)"
        )


def synthesize_batch(
    jobs: list[Job],
    run: TrainedRun,
    prepare_config: PrepareConfig,
    out: Path,
    settings: BatchSettings,
    force: bool = False,
    gene_names: list[str] | None = None,
    on_nodule: Callable[[str], None] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """Synthesise every job and write the output folder; returns the summary it saves.

    Raises:
        OutputExistsError: ``out`` exists and ``force`` is not set.
    """
    check_slice_height(run, settings)
    painters = Painters.of(run, settings, jobs)
    writer = NoduleWriter(run, prepare_config, settings)
    start, rows = time.perf_counter(), []
    with staged_directory(Path(out), replace=force) as staging:
        for first in range(0, len(jobs), settings.batch_size):
            chunk = slice(first, first + settings.batch_size)
            result = painters(jobs[chunk], first, settings.slice_height_mm)
            for n, job in enumerate(jobs[chunk]):
                row = writer.write(staging, job, result, n)
                rows.append(row | {"unshrink_divisor": painters.divisor(first + n)})
                if on_nodule is not None:
                    on_nodule(job.nodule_id)
        seconds = time.perf_counter() - start
        summary = _summary(jobs, run, settings, seconds, notes or [])
        summary |= painters.record()
        summary["notes"] += painters.notes(jobs)
        _write_tables(staging, jobs, rows, summary, gene_names)
    return summary


@dataclass(frozen=True)
class Painters:
    """The run's generator as it paints each job's profile. A measured profile that is
    not a training donor's (a held-out or validation cache subject's, a row of the
    user's table) is painted with its whitened gene scores divided by ``unseen``'s
    shrinkage (the run's leave-one-out shrinkage s to the power the settings give), as
    ``rgsynth map`` and ``evaluate`` read held-out donors; an edit on such a profile keeps
    the size it was given, as the map's move along a program does (the profile painted
    is ``base + s^p (values - base)``). Training donors' own profiles (edited or not) and
    the training mean are painted as they are. ``unshrunk``: per job, whether it is
    painted unshrunk; ``unseen`` is None where none is (turned off, a model without
    fitted gene components, or no such profile)."""

    plain: Synthesizer
    unshrunk: np.ndarray
    unseen: Synthesizer | None = None
    shrinkage: float | None = None
    strength: float | None = None

    @classmethod
    def of(cls, run: TrainedRun, settings: BatchSettings, jobs: list[Job]) -> Painters:
        """The painters of ``jobs``; the training split's genes are read, and the
        shrinkage estimated, only where some job may need them."""
        options = {
            "precision": settings.precision,
            "device": settings.device,
            "batch_size": settings.batch_size,
        }
        plain = Synthesizer(run.generator, **options)
        none = np.zeros(len(jobs), bool)
        if not (settings.unshrink_unseen and run.has_fitted_components and jobs):
            return cls(plain, none)
        seen = SeenProfiles(run.training_profiles())
        unseen_base: dict[int, bool] = {}  # a profile object is shared by many jobs
        for job in jobs:
            profile = job.profile
            if id(profile) not in unseen_base:
                unseen_base[id(profile)] = profile.measured and profile.unedited not in seen
        unshrunk = np.array([unseen_base[id(j.profile)] for j in jobs], bool)
        shrinkage = run.unseen_shrinkage() if unshrunk.any() else None
        if shrinkage is None:
            return cls(plain, none)
        strength = settings.unshrink_strength
        unseen = Synthesizer(run.generator, unseen_shrinkage=shrinkage**strength, **options)
        return cls(plain, unshrunk, unseen, shrinkage, strength)

    @property
    def factor(self) -> float | None:
        """s^p, what an unseen donor's whitened scores are divided by."""
        return None if self.unseen is None else self.unseen.unseen_shrinkage

    def divisor(self, job: int) -> float:
        """What job ``job``'s whitened gene scores were divided by (1: as they are)."""
        if self.factor is None or not self.unshrunk[job]:
            return 1.0
        return round(float(self.factor), 6)

    def __call__(self, jobs: list[Job], first: int, height_mm: float) -> Synthesis:
        """The syntheses of ``jobs`` (numbered from ``first`` among all jobs) in order,
        the unshrunk ones by ``unseen`` (painted apart and put back: see ``assemble``)."""
        unshrunk = self.unshrunk[first : first + len(jobs)]

        def paint(picked: list[Job], painter: Synthesizer) -> Synthesis:
            profiles = np.stack([j.profile.values for j in picked])
            if painter is self.unseen:  # the edit (values - base) kept at its size
                bases = np.stack([j.profile.unedited for j in picked])
                profiles = bases + np.float32(self.factor) * (profiles - bases)
            return painter(
                np.stack([j.target.patch for j in picked]),
                profiles.astype(np.float32),
                [j.seed for j in picked],
                heights_mm=np.full(len(picked), height_mm, np.float32),
            )

        groups = ((~unshrunk, self.plain), (unshrunk, self.unseen))
        return assemble(
            len(jobs),
            (
                (rows, paint([j for j, keep in zip(jobs, rows, strict=True) if keep], painter))
                for rows, painter in groups
                if rows.any() and painter is not None
            ),
        )

    def record(self) -> dict[str, Any]:
        """The summary's account of the correction."""
        return {
            "unseen_shrinkage": self.shrinkage,
            "unshrink_strength": self.strength,
            "unshrink_divisor": None if self.factor is None else round(float(self.factor), 6),
            "n_unshrunk": int(self.unshrunk.sum()),
        }

    def notes(self, jobs: list[Job]) -> list[str]:
        if self.factor is None or not self.unshrunk.any():
            return []
        notes = [
            f"{int(self.unshrunk.sum())} of {len(jobs)} nodules were painted from profiles "
            "that are not training donors' (held-out or validation cache subjects, "
            f"expression-table rows): their whitened gene scores were divided by "
            f"{self.factor:.2f} (the training donors' leave-one-out shrinkage "
            f"{self.shrinkage:.2f} ^ {self.strength:g}), as rgsynth map and evaluate read "
            "held-out donors; --plain-unseen paints them as they are"
        ]
        if any(j.profile.base is not None for j, u in zip(jobs, self.unshrunk, strict=True) if u):
            notes.append(
                "edits (--set, --set-program) on those profiles keep the size given, as the "
                "map's move along a program does: only the donor's own scores are divided"
            )
        return notes


class NoduleWriter:
    """Turns one synthesis into the files of one nodule and its manifest row."""

    def __init__(self, run: TrainedRun, config: PrepareConfig, settings: BatchSettings) -> None:
        self.run, self.config, self.settings = run, config, settings
        self.derivation = (
            f"synthetic nodule painted in by rgsynth ({run.config.model.architecture} GAN, "
            f"run {run.run_dir.name}, step {run.step}); not an acquired image"
        )

    def write(self, folder: Path, job: Job, result: Synthesis, n: int) -> dict[str, Any]:
        hu_window = self.config.hu_window
        synthesis_hu = unit_to_hu(result.image[n], hu_window)
        background_hu = unit_to_hu(job.target.patch, hu_window)
        nodule, dropped = nodule_component(result.mask[n] > self.settings.blend.mask_threshold)
        if job.target.volume is None:
            files, pasted, mask_mm2 = self._write_patch(
                folder, job, synthesis_hu, background_hu, nodule
            )
        else:
            files, pasted, mask_mm2 = self._write_volume(folder, job, synthesis_hu, nodule)
        if "png" in self.settings.formats:
            path = folder / "previews" / f"{job.nodule_id}.png"
            preview_png(
                path,
                background_hu,
                synthesis_hu,
                result.weight_map[n],
                result.mask[n],
                (pasted.hu, pasted.mask),
            )
            files["preview"] = path
        return _manifest_row(job, files, mask_mm2, dropped, self.settings.blend, folder)

    def _write_patch(
        self,
        folder: Path,
        job: Job,
        synthesis_hu: np.ndarray,
        background_hu: np.ndarray,
        nodule: np.ndarray,
    ) -> tuple[dict[str, Path], PastedSlice, float]:
        """A cache patch: the synthesis pasted into the background patch itself, by the
        same rule as into a CT, written as a one-slice volume where the patch was cut."""
        voxel, size = self.config.voxel_mm, self.config.size
        centre = job.target.centre_mm
        corner = (centre[0] - (size - 1) * voxel / 2, centre[1] - (size - 1) * voxel / 2)
        pasted = paste_patch(
            background_hu,
            (voxel, voxel),
            corner,
            centre[:2],
            synthesis_hu,
            nodule.astype(np.float32),
            self.config.voi_mm,
            self.settings.blend,
        )
        hu = np.rint(pasted.hu)[None].astype(np.int16)  # (1, S, S)
        mask = pasted.mask[None].astype(np.uint8)
        files = {}
        if "nifti" in self.settings.formats:
            files |= self._nifti(
                folder, job, patch_image(hu, centre, voxel), patch_image(mask, centre, voxel)
            )
        if "dicom" in self.settings.formats:
            ct = dicom_out.new_series(
                hu,
                (voxel, voxel, voxel),
                (*corner, centre[2]),
                job.target.cache_patch.subject_id,
                self._uid_parts(job),
                self.derivation,
            )
            files |= self._dicom(folder, job, ct, mask)
        return files, pasted, float(mask.sum()) * voxel * voxel

    def _write_volume(
        self, folder: Path, job: Job, synthesis_hu: np.ndarray, nodule: np.ndarray
    ) -> tuple[dict[str, Path], PastedSlice, float]:
        volume, location = job.target.volume, job.target.location
        k = location.slice_index
        pasted = paste_patch(
            volume.hu[k],
            volume.spacing_mm[1:],
            volume.origin_mm[:2],
            location.centre_mm[:2],
            synthesis_hu,
            nodule.astype(np.float32),
            self.config.voi_mm,
            self.settings.blend,
        )
        hu = volume.hu.copy()
        # Whole HU, once, so that the NIfTI and the DICOM outputs hold the same values.
        hu[k, pasted.rows, pasted.cols] = np.rint(pasted.hu)
        mask = np.zeros(hu.shape, np.uint8)
        mask[k, pasted.rows, pasted.cols] = pasted.mask
        files: dict[str, Path] = {}
        if "nifti" in self.settings.formats:
            image = sitk.Cast(volume.to_source_grid(np.rint(hu).astype(np.int16)), sitk.sitkInt16)
            files |= self._nifti(folder, job, image, volume.to_source_grid(mask))
        if "dicom" in self.settings.formats:
            files |= self._volume_dicom(folder, job, hu, mask, pasted.alpha > 0, k, pasted)
        mask_mm2 = float(pasted.mask.sum()) * volume.spacing_mm[1] * volume.spacing_mm[2]
        return files, pasted, mask_mm2

    def _volume_dicom(self, folder, job, hu, mask, changed_region, k, pasted) -> dict[str, Path]:
        volume = job.target.volume
        if volume.kind != "dicom":
            ct = dicom_out.new_series(
                hu,
                volume.spacing_mm,
                volume.origin_mm,
                volume.label,
                self._uid_parts(job),
                self.derivation,
            )
            return self._dicom(folder, job, ct, mask)
        changed = np.zeros(hu.shape, np.uint8)
        changed[k, pasted.rows, pasted.cols] = changed_region
        on_source = [sitk.GetArrayFromImage(volume.to_source_grid(a)) for a in (hu, changed, mask)]
        ct = dicom_out.derived_series(
            volume.dicom_files,
            on_source[0],
            on_source[1] > 0,
            self._uid_parts(job),
            self.derivation,
        )
        return self._dicom(folder, job, ct, on_source[2])

    def _uid_parts(self, job: Job) -> tuple[object, ...]:
        return (self.run.cache_fingerprint, self.settings.seed, job.number, job.target.label)

    def _nifti(
        self, folder: Path, job: Job, image: sitk.Image, mask: sitk.Image
    ) -> dict[str, Path]:
        base = folder / "nifti" / job.nodule_id
        return {
            "image_nifti": write_nifti(Path(f"{base}_image.nii.gz"), image),
            "mask_nifti": write_nifti(Path(f"{base}_mask.nii.gz"), sitk.Cast(mask, sitk.sitkUInt8)),
        }

    def _dicom(self, folder: Path, job: Job, ct: list, mask: np.ndarray) -> dict[str, Path]:
        seg = dicom_out.nodule_seg(
            ct, mask, self._uid_parts(job), f"{job.nodule_id} {job.profile.name}"
        )
        series_dir, seg_path = dicom_out.write_dicom(folder / "dicom" / job.nodule_id, ct, seg)
        return {"dicom_ct": series_dir, "dicom_seg": seg_path}


def _manifest_row(
    job: Job, files: dict[str, Path], mask_mm2: float, dropped: int, blend: Blend, folder: Path
) -> dict[str, Any]:
    target, location = job.target, job.target.location
    x, y, z = target.centre_mm
    if target.cache_patch is not None:
        source = f"{target.cache_patch.subject_id} background {target.cache_patch.index}"
    else:
        source = str(target.volume.path)
    return {
        "nodule_id": job.nodule_id,
        "background_kind": target.kind,
        "background": source,
        "location": location.requested if location else "cache patch centre",
        "x_mm": round(x, 2),
        "y_mm": round(y, 2),
        "z_mm": round(z, 2),
        "slice_index": location.slice_index if location else "",
        "lung_depth_mm": round(location.lung_depth_mm, 1) if location else "",
        "gene_profile": job.profile.name,
        "profile_source": job.profile.source,
        "seed": job.seed,
        "blend": _blend_text(blend),
        "mask_area_mm2": round(mask_mm2, 2),
        "mask_parts_dropped": dropped,
        "note": "" if mask_mm2 > 0 else "the generated mask is empty",
        **{key: str(path.relative_to(folder)) for key, path in files.items()},
    }


def _blend_text(blend: Blend) -> str:
    edge = f"Gaussian feather σ {blend.feather_mm:g} mm" if blend.feather_mm else "hard edge"
    return f"mask + {blend.margin_mm:g} mm, {edge}"


def _summary(
    jobs: list[Job], run: TrainedRun, settings: BatchSettings, seconds: float, notes: list[str]
) -> dict[str, Any]:
    profile_notes = sorted({n for j in jobs for n in j.profile.notes})
    volume_notes = sorted({n for j in jobs if j.target.volume for n in j.target.volume.notes})
    return {
        "format": "rgsynth-synthesis/1",
        "run": str(run.run_dir.resolve()),
        "checkpoint_step": run.step,
        "architecture": run.config.model.architecture,
        "image_size": run.config.model.image_size,
        "cache": str(run.cache_root.resolve()),
        "cache_fingerprint": run.cache_fingerprint,
        "settings": {
            "seed": settings.seed,
            "formats": list(settings.formats),
            "precision": settings.precision,
            "blend": _blend_text(settings.blend),
            "mask_threshold": settings.blend.mask_threshold,
            "slice_height_mm": settings.slice_height_mm,
            "unshrink_unseen": settings.unshrink_unseen,
            "unshrink_strength": settings.unshrink_strength,
        },
        "n_nodules": len(jobs),
        "n_backgrounds": len({j.target.label for j in jobs}),
        "n_profiles": len({j.profile.name for j in jobs}),
        "notes": notes + profile_notes + volume_notes,
        "seconds": round(seconds, 2),
        "nodules_per_second": round(len(jobs) / seconds, 2) if seconds > 0 else None,
    }


def _write_tables(
    folder: Path,
    jobs: list[Job],
    rows: list[dict[str, Any]],
    summary: dict[str, Any],
    gene_names: list[str] | None,
) -> None:
    atomic_write_text(folder / SYNTHESIS_MANIFEST_FILENAME, pd.DataFrame(rows).to_csv(index=False))
    profiles = {j.profile.name: j.profile for j in jobs}
    genes = pd.DataFrame(
        [p.values for p in profiles.values()],
        index=pd.Index(list(profiles), name="gene_profile"),
        columns=gene_names,
    )
    genes.insert(0, "source", [p.source for p in profiles.values()])
    atomic_write_text(folder / SYNTHESIS_PROFILES_FILENAME, genes.to_csv())
    atomic_write_json(folder / SYNTHESIS_SUMMARY_FILENAME, summary)
