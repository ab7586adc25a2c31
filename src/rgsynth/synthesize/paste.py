"""Pasting a synthesised patch back into a full CT slice at the slice's own resolution.

The generator rebuilds the whole 60 mm patch, but only approximately outside the nodule
(its background L1) and through the HU window, so the patch is not pasted whole: the
source slice keeps every pixel except those within ``margin_mm`` of the generated mask,
which take the synthesis. With ``feather_mm`` > 0 the edge of that region is blended with
a Gaussian fall-off of the distance to it (weight exp(−d²/2σ²), cut at 3σ) instead of a
hard edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from rgsynth.config import Blend


def nodule_component(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The connected part of a binary (S, S) patch mask nearest the patch centre, and how
    many other parts were dropped. The generator is asked for one nodule at the centre;
    a stray fragment elsewhere (on the chest wall, say) must not be pasted as a second.

    Example:
        >>> m = np.zeros((8, 8), bool); m[3:5, 3:5] = True; m[0, 7] = True
        >>> kept, dropped = nodule_component(m)
        >>> int(kept.sum()), dropped
        (4, 1)
    """
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask.astype(bool), 0
    centre = (np.array(mask.shape) - 1) / 2
    rows, cols = np.indices(mask.shape)
    distance = np.hypot(rows - centre[0], cols - centre[1])
    nearest = ndimage.minimum(distance, labels, index=np.arange(1, count + 1))
    return labels == 1 + int(np.argmin(nearest)), count - 1


@dataclass
class PastedSlice:
    """The part of a slice a paste touched: ``rows`` × ``cols`` of the slice.

    Attributes:
        hu: (h, w) float32 HU after pasting.
        mask: (h, w) bool synthetic nodule mask at the slice's resolution.
        alpha: (h, w) float32 weight of the synthesis in ``hu`` (0 = source kept).
    """

    rows: slice
    cols: slice
    hu: np.ndarray
    mask: np.ndarray
    alpha: np.ndarray


def paste_patch(
    slice_hu: np.ndarray,
    spacing_yx_mm: tuple[float, float],
    origin_xy_mm: tuple[float, float],
    centre_xy_mm: tuple[float, float],
    patch_hu: np.ndarray,
    patch_mask: np.ndarray,
    patch_mm: float,
    blend: Blend,
) -> PastedSlice:
    """Paste a square patch of edge ``patch_mm`` centred on ``centre_xy_mm`` into a slice.

    Args:
        slice_hu: (y, x) HU of the source slice (axial, LPS: x grows with the column).
        spacing_yx_mm: (row, column) spacing of the slice.
        origin_xy_mm: patient (x, y) of pixel [0, 0].
        centre_xy_mm: patient (x, y) of the patch centre.
        patch_hu: (S, S) synthesis in HU. patch_mask: (S, S) generated mask in [0, 1].
    """
    size = patch_hu.shape[-1]
    voxel = patch_mm / size
    dy, dx = spacing_yx_mm
    rows = _span(centre_xy_mm[1], origin_xy_mm[1], dy, patch_mm, slice_hu.shape[0])
    cols = _span(centre_xy_mm[0], origin_xy_mm[0], dx, patch_mm, slice_hu.shape[1])
    reference = sitk.Image(cols.stop - cols.start, rows.stop - rows.start, sitk.sitkFloat32)
    reference.SetSpacing((dx, dy))
    reference.SetOrigin((origin_xy_mm[0] + cols.start * dx, origin_xy_mm[1] + rows.start * dy))
    corner = tuple(c - (size - 1) * voxel / 2 for c in centre_xy_mm)
    synthesis = _resample_2d(patch_hu, voxel, corner, reference, np.nan)
    mask = _resample_2d(patch_mask, voxel, corner, reference, 0.0) > blend.mask_threshold
    footprint = np.isfinite(synthesis)
    alpha = _alpha(mask, (dy, dx), blend) * footprint
    source = slice_hu[rows, cols]
    pasted = alpha * np.nan_to_num(synthesis) + (1.0 - alpha) * source
    return PastedSlice(rows, cols, pasted.astype(np.float32), mask & footprint, alpha)


def _span(centre: float, origin: float, spacing: float, extent: float, n: int) -> slice:
    first = int(np.floor((centre - extent / 2 - origin) / spacing))
    last = int(np.ceil((centre + extent / 2 - origin) / spacing))
    return slice(max(first, 0), min(last + 1, n))


def _resample_2d(
    array: np.ndarray,
    voxel_mm: float,
    corner_mm: tuple[float, float],
    reference: sitk.Image,
    default: float,
) -> np.ndarray:
    image = sitk.GetImageFromArray(np.asarray(array, dtype=np.float32))
    image.SetSpacing((voxel_mm, voxel_mm))
    image.SetOrigin(corner_mm)
    resampled = sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, default)
    return sitk.GetArrayFromImage(resampled)


def _alpha(mask: np.ndarray, spacing_yx: tuple[float, float], blend: Blend) -> np.ndarray:
    if not mask.any():
        return np.zeros(mask.shape, np.float32)
    outside_mm = ndimage.distance_transform_edt(~mask, sampling=spacing_yx)
    beyond = outside_mm - blend.margin_mm  # > 0 outside the pasted region
    if blend.feather_mm == 0:
        return (beyond <= 0).astype(np.float32)
    sigma = blend.feather_mm
    feather = np.exp(-np.square(np.maximum(beyond, 0.0)) / (2 * sigma**2))
    return np.where(beyond > 3 * sigma, 0.0, feather).astype(np.float32)
