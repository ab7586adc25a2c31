"""Where a synthetic nodule goes: a cache background patch, or a point in a user's CT.

A user CT (a DICOM series folder or a NIfTI/NRRD/MHA file) is read onto an axial LPS
grid, as ``prepare`` reads cohorts, and keeps its source grid so that outputs can be
written back on it. A location (patient mm, or a voxel index of the image as stored) is
snapped to the nearest slice and must lie inside the volume and inside the lung mask
``prepare`` would compute. The generator's input is the ``voi_mm`` axial patch around it,
resampled to the model's size exactly as the cache's backgrounds were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from rgsynth.config import PrepareConfig
from rgsynth.intensity import to_unit_range
from rgsynth.io.dicom_read import hu_voxels, read_ct_image, read_header, to_axial_lps
from rgsynth.io.folder import read_image
from rgsynth.io.source import InputError
from rgsynth.prepare.cache import Cache
from rgsynth.prepare.examples import AIR_HU, lung_depth_mm, pick_depth_band, resample_box
from rgsynth.prepare.lungs import segment_lungs


@dataclass
class SourceVolume:
    """A user CT on two grids: as stored (``image``) and axial LPS (``hu``).

    Attributes:
        label: a short name: the PatientID of a DICOM series, else the file name.
        path: the file or series folder read.
        kind: ``dicom`` or ``image`` (NIfTI, NRRD, MetaImage).
        image: the volume as stored, float32 HU (SimpleITK; DICOM slices in position order).
        hu: (z, y, x) float32 HU on the axial LPS grid.
        spacing_mm: (dz, dy, dx) of ``hu``; origin_mm: patient (x, y, z) of ``hu[0, 0, 0]``.
        dicom_files: for DICOM, the file of each slice of ``image`` (its k axis), else [].
        notes: reorientation notes.
    """

    label: str
    path: Path
    kind: str
    image: sitk.Image
    hu: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    dicom_files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _lungs: np.ndarray | None = None
    _depth: np.ndarray | None = None

    def oriented_image(self, array: np.ndarray) -> sitk.Image:
        """A (z, y, x) array on the LPS grid as a SimpleITK image."""
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(tuple(float(s) for s in self.spacing_mm[::-1]))
        image.SetOrigin(tuple(float(o) for o in self.origin_mm))
        return image

    def to_source_grid(self, array: np.ndarray) -> sitk.Image:
        """A (z, y, x) array on the LPS grid, put back on the stored grid: the two grids
        hold the same voxel centres (reorientation only permutes and flips axes), so
        nearest-neighbour resampling moves every value exactly."""
        return sitk.Resample(
            self.oriented_image(array), self.image, sitk.Transform(), sitk.sitkNearestNeighbor, 0
        )

    def lungs(self, threshold_hu: float) -> np.ndarray:
        if self._lungs is None:
            self._lungs = segment_lungs(self.hu, self.spacing_mm, threshold_hu)
        return self._lungs

    def depth_mm(self, threshold_hu: float) -> np.ndarray:
        """Half in-plane resolution map of the distance to the lung boundary (mm)."""
        if self._depth is None:
            self._depth = lung_depth_mm(self.lungs(threshold_hu), self.spacing_mm)
        return self._depth

    def index_to_mm(self, index_zyx: np.ndarray) -> np.ndarray:
        return np.asarray(self.origin_mm) + np.asarray(index_zyx)[..., ::-1] * np.asarray(
            self.spacing_mm[::-1]
        )

    def mm_to_index(self, point_mm: np.ndarray) -> np.ndarray:
        """Continuous (z, y, x) index of a patient point on the LPS grid."""
        return ((np.asarray(point_mm) - self.origin_mm) / np.asarray(self.spacing_mm[::-1]))[::-1]


def load_volume(path: Path, max_slice_mm: float | None = None) -> SourceVolume:
    """Read a DICOM CT series folder, or a NIfTI/NRRD/MetaImage file, as a SourceVolume.

    Raises:
        InputError: unreadable, not one axial CT series, or slices thicker than allowed.
    """
    path = Path(path)
    label = path.name.split(".")[0] if path.is_file() else path.name
    if path.is_dir():
        image, files, patient_id = _read_dicom_series(path, label)
        label, kind = patient_id or label, "dicom"
    elif path.is_file():
        image, files, kind = sitk.Cast(read_image(path, label), sitk.sitkFloat32), [], "image"
        if image.GetDimension() != 3:
            raise InputError(label, path, f"expected a 3-D CT, got {image.GetDimension()}-D")
    else:
        raise InputError(label, path, "no such file or folder")
    oriented, notes = to_axial_lps(image, label, path, max_slice_mm)
    hu = hu_voxels(oriented, label, path)
    return SourceVolume(
        label=label,
        path=path,
        kind=kind,
        image=image,
        hu=hu,
        spacing_mm=tuple(float(s) for s in oriented.GetSpacing()[::-1]),
        origin_mm=tuple(float(o) for o in oriented.GetOrigin()),
        dicom_files=files,
        notes=notes,
    )


def _read_dicom_series(folder: Path, label: str) -> tuple[sitk.Image, list[Path], str]:
    """The series as stored, its files in slice order, and its PatientID."""
    files = [p for p in sorted(folder.iterdir()) if p.is_file()]
    headers = [h for p in files if (h := read_header(p, label)) is not None]
    slices = [h for h in headers if h.modality == "CT" and not h.is_localizer]
    series = {h.series_instance_uid for h in slices}
    if len(series) != 1:
        found = f"{len(series)} CT series" if series else "no CT image"
        hint = "; give the CT series folder itself" if not files else ""
        raise InputError(
            label, folder, f"expected one CT series in this folder, found {found}{hint}"
        )
    stack = read_ct_image(slices, label)
    if stack.resampled or len(stack.uids) != len(slices):
        raise InputError(
            label,
            folder,
            "synthesis writes one slice per source file, so it needs an evenly spaced series "
            f"of one orientation ({'; '.join(stack.notes)})",
        )
    by_uid = {h.sop_instance_uid: h.path for h in slices}
    return stack.image, [by_uid[u] for u in stack.uids], slices[0].patient_id


@dataclass(frozen=True)
class Location:
    """A checked place for a nodule in a SourceVolume.

    Attributes:
        centre_mm: patient (x, y, z); z is the centre of slice ``slice_index``.
        slice_index: the axial slice (LPS grid) the nodule is painted into.
        requested: the location as the user gave it, for messages and the manifest.
        lung_depth_mm: distance from the centre to the lung boundary.
    """

    centre_mm: tuple[float, float, float]
    slice_index: int
    requested: str
    lung_depth_mm: float


def locate(
    volume: SourceVolume,
    config: PrepareConfig,
    point_mm: tuple[float, float, float] | None = None,
    voxel_ijk: tuple[float, float, float] | None = None,
) -> Location:
    """Check a location given in patient mm or as a voxel index (i, j, k) of the image as
    stored (for DICOM: column, row, slice in position order).

    Raises:
        InputError: the location lies outside the volume or outside the lung.
    """
    if voxel_ijk is not None:
        requested = "voxel ({:g}, {:g}, {:g})".format(*voxel_ijk)
        point_mm = volume.image.TransformContinuousIndexToPhysicalPoint(
            tuple(float(v) for v in voxel_ijk)
        )
    else:
        requested = "({:g}, {:g}, {:g}) mm".format(*point_mm)
    index = volume.mm_to_index(np.asarray(point_mm, dtype=float))
    shape = np.array(volume.hu.shape)
    if np.any(index < -0.5) or np.any(index > shape - 0.5):
        low, high = volume.index_to_mm(np.zeros(3)), volume.index_to_mm(shape - 1)
        extent = ", ".join(
            f"{axis} {a:.1f} to {b:.1f}" for axis, a, b in zip("xyz", low, high, strict=True)
        )
        raise InputError(
            volume.label, volume.path, f"location {requested} lies outside the volume ({extent} mm)"
        )
    z, y, x = np.rint(np.clip(index, 0, shape - 1)).astype(int)
    if not volume.lungs(config.lung_threshold_hu)[z, y, x]:
        raise InputError(
            volume.label,
            volume.path,
            f"location {requested} is not inside the lung ({volume.hu[z, y, x]:.0f} HU there; "
            f"the lung mask is the air below {config.lung_threshold_hu:g} HU inside the body)",
        )
    depth = float(volume.depth_mm(config.lung_threshold_hu)[z, y // 2, x // 2])
    centre = volume.index_to_mm(np.array([z, index[1], index[2]]))
    return Location(tuple(float(c) for c in centre), z, requested, depth)


def random_locations(
    volume: SourceVolume, config: PrepareConfig, count: int, rng: np.random.Generator
) -> list[Location]:
    """Up to ``count`` locations drawn where ``prepare`` draws background centres (the
    configured depth band inside the lung), in slice order.

    Raises:
        InputError: the lung mask has no voxel in that band.
    """
    depth = volume.depth_mm(config.lung_threshold_hu)
    picks = pick_depth_band(depth, config.background_depth_mm, count, rng)
    if len(picks) == 0:
        near, far = config.background_depth_mm
        raise InputError(
            volume.label, volume.path, f"no lung voxel lies {near:g}–{far:g} mm inside the lung"
        )
    return [
        Location(
            tuple(float(c) for c in volume.index_to_mm(pick)),
            int(pick[0]),
            "random",
            float(depth[pick[0], pick[1] // 2, pick[2] // 2]),
        )
        for pick in picks
    ]


def volume_patch(volume: SourceVolume, location: Location, config: PrepareConfig) -> np.ndarray:
    """(S, S) float32 in [-1, 1]: the axial ``voi_mm`` patch around ``location``, made as
    the cache's background slices were made."""
    hu = resample_box(
        volume.oriented_image(volume.hu),
        np.asarray(location.centre_mm),
        (config.size, config.size, 1),
        config.voxel_mm,
        AIR_HU,
    )[0]
    return to_unit_range(hu, config.hu_window)


@dataclass(frozen=True)
class CachePatch:
    """A background slice of the cache: its subject, its index in the subject's shard,
    its centre (patient mm) and the (S, S) patch in [-1, 1]."""

    subject_id: str
    index: int
    centre_mm: tuple[float, float, float]
    patch: np.ndarray


def cache_backgrounds(
    cache_root: Path, split: str, count: int, rng: np.random.Generator
) -> list[CachePatch]:
    """``count`` background slices drawn without replacement from the subjects of ``split``
    (``train``, ``val`` or ``all``), ordered by subject and index.

    Raises:
        InputError: the split has no background slices, or fewer than ``count``.
    """
    cache = Cache(Path(cache_root))
    subjects = [
        s["subject_id"]
        for s in cache.manifest()["subjects"]
        if split == "all" or s["split"] == split
    ]
    shards = {sid: cache.load_shard(sid) for sid in subjects}
    pool = [(sid, n) for sid in subjects for n in range(len(shards[sid]["background_image"]))]
    if len(pool) < count:
        raise InputError(
            "",
            cache_root,
            f"the {split} split has {len(pool)} background slices, fewer than the {count} asked",
        )
    chosen = sorted(rng.choice(len(pool), size=count, replace=False))
    patches = []
    for sid, n in (pool[c] for c in chosen):
        shard = shards[sid]
        patches.append(
            CachePatch(
                sid,
                n,
                tuple(float(c) for c in shard["background_centre_mm"][n]),
                shard["background_image"][n].astype(np.float32),
            )
        )
    return patches
