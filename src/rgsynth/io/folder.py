"""Reader for a plain folder cohort: ``images/<id>.nii.gz`` and ``masks/<id>.nii.gz``.

NIfTI, NRRD and MetaImage are read with SimpleITK. A mask whose grid differs from its
image is resampled onto the image by nearest neighbour (noted); any non-zero label counts
as nodule, and of several nodules the largest is kept. The expression table beside them
is read by :mod:`rgsynth.io.genes`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from rgsynth.io.dicom_read import hu_voxels, to_axial_lps
from rgsynth.io.source import (
    InputError,
    MissingInput,
    SubjectImages,
    SubjectSource,
    keep_largest_nodule,
)

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
_GEOMETRY_TOLERANCE_MM = 1e-3


def is_folder_cohort(root: Path) -> bool:
    return (Path(root) / "images").is_dir() and (Path(root) / "masks").is_dir()


def discover(root: Path) -> tuple[list[SubjectSource], list[InputError]]:
    """Subjects under ``root``/images, sorted by ID, and the problems found listing them."""
    root = Path(root)
    images, masks = _by_stem(root / "images"), _by_stem(root / "masks")
    sources, problems = [], []
    for subject_id in sorted(images):
        found = images[subject_id]
        if len(found) > 1:
            problems.append(
                InputError(subject_id, found[1], f"duplicated subject ID: also {found[0].name}")
            )
            continue
        subject_masks = masks.get(subject_id, [])
        if len(subject_masks) > 1:
            problems.append(
                InputError(subject_id, subject_masks[1], f"two masks: also {subject_masks[0].name}")
            )
            continue
        sources.append(SubjectSource(subject_id, "folder", (found[0], *subject_masks), root))
    for subject_id in sorted(set(masks) - set(images)):
        problems.append(InputError(subject_id, masks[subject_id][0], "a mask with no image"))
    return sources, problems


def _by_stem(folder: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = defaultdict(list)
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        suffix = next((s for s in IMAGE_SUFFIXES if path.name.endswith(s)), None)
        if suffix is not None and path.is_file():
            found[path.name[: -len(suffix)]].append(path)
    return found


def load(source: SubjectSource, max_slice_mm: float | None = None) -> SubjectImages:
    """Read one subject's image (HU) and nodule mask onto one axial LPS grid.

    Raises:
        MissingInput: no mask for this subject.
        InputError: unreadable files, non-axial or too thick image, empty mask.
    """
    sid = source.subject_id
    if len(source.paths) < 2:
        raise MissingInput(sid, source.paths[0], "no mask for this image in masks/")
    image_path, mask_path = source.paths[:2]
    image = sitk.Cast(read_image(image_path, sid), sitk.sitkFloat32)
    if image.GetDimension() != 3:
        raise InputError(sid, image_path, f"expected a 3-D image, got {image.GetDimension()}-D")
    mask = read_image(mask_path, sid)
    notes = []
    if not _same_grid(image, mask):
        mask = sitk.Resample(mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
        notes.append("mask grid differs from the image; resampled onto it (nearest neighbour)")
    image_lps, orient_notes = to_axial_lps(image, sid, image_path, max_slice_mm)
    mask_lps, _ = to_axial_lps(mask, sid, mask_path)
    spacing = tuple(image_lps.GetSpacing()[::-1])
    nodule, nodule_notes = keep_largest_nodule(
        sitk.GetArrayFromImage(mask_lps) > 0, spacing, sid, mask_path
    )
    hu = hu_voxels(image_lps, sid, image_path)
    return SubjectImages(
        subject_id=sid,
        hu=hu,
        nodule_mask=nodule,
        spacing_mm=spacing,
        origin_mm=tuple(image_lps.GetOrigin()),
        ct_file=str(image_path),
        mask_file=str(mask_path),
        notes=notes + orient_notes + nodule_notes,
    )


def read_image(path: Path, subject_id: str) -> sitk.Image:
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "unknown"
        raise InputError(subject_id, path, f"unreadable image ({first_line})") from None


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=_GEOMETRY_TOLERANCE_MM)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=_GEOMETRY_TOLERANCE_MM)
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-4)
    )
