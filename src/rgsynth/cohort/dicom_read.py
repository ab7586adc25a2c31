"""Reading a CT series and a nodule SEG back into aligned arrays.

The CT is read with SimpleITK (which sorts slices by position along the slice normal and
applies rescale slope/intercept); the SEG with highdicom, matching its frames to the CT by
referenced SOP Instance UID, never by frame index, so both SEG flavours (one frame per
slice, empty frames omitted) land on the right slices whatever the instance order.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk


@dataclass
class CtVolume:
    """A CT series as an array with its geometry.

    Attributes:
        hu: (z, y, x) float32 Hounsfield units, slices ordered by ascending position.
        spacing_mm: (slice, row, column) spacing in mm.
        origin_mm: patient (x, y, z) of voxel [0, 0, 0].
        direction: 3×3 direction cosines (SimpleITK order, columns = i, j, k axes).
        sop_instance_uids: SOP Instance UID of each slice, in array order.
        files: the DICOM file of each slice, in array order.
    """

    hu: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: np.ndarray
    sop_instance_uids: list[str]
    files: list[Path]


def read_ct_series(series_dir: Path) -> CtVolume:
    series_dir = Path(series_dir)
    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(series_dir))
    if not names:
        raise ValueError(f"{series_dir}: no DICOM series found")
    reader.SetFileNames(names)
    image = reader.Execute()
    hu = sitk.GetArrayFromImage(image).astype(np.float32)
    sx, sy, sz = image.GetSpacing()
    uids = [
        str(
            pydicom.dcmread(
                name, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]
            ).SOPInstanceUID
        )
        for name in names
    ]
    direction = np.array(image.GetDirection()).reshape(3, 3)
    files = [Path(n) for n in names]
    origin = tuple(image.GetOrigin())
    if direction[2, 2] < 0:  # GDCM sorted top-down: flip to ascending z
        hu, uids, files = hu[::-1].copy(), uids[::-1], files[::-1]
        origin = tuple(image.TransformIndexToPhysicalPoint((0, 0, hu.shape[0] - 1)))
        direction[:, 2] *= -1
    return CtVolume(
        hu=hu,
        spacing_mm=(sz, sy, sx),
        origin_mm=origin,
        direction=direction,
        sop_instance_uids=uids,
        files=files,
    )


def read_seg_mask(seg_path: Path, ct: CtVolume, segment_number: int = 1) -> np.ndarray:
    """The SEG's segment as a (z, y, x) bool mask aligned to ``ct``.

    CT slices that the SEG has no frame for (empty frames omitted) come back empty.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        seg = hd.seg.segread(seg_path)
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    unknown = referenced - set(ct.sop_instance_uids)
    if unknown:
        raise ValueError(
            f"{seg_path}: {len(unknown)} referenced CT instances are not in the series "
            f"{ct.files[0].parent}"
        )
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=ct.sop_instance_uids,
        segment_numbers=[segment_number],
        assert_missing_frames_are_empty=True,
    )
    return pixels[..., 0] > 0
