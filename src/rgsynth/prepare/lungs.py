"""A classical lung mask: threshold, drop the air outside the body, fill, close.

Why not a learned model: nothing can be downloaded here and the paper only needs the
lungs to place background patches 5–25 mm inside their boundary. Limits: airways that
join the lungs are included; dense consolidation, effusion or collapse is left out of the
mask (it is not air); a scan whose field of view cuts through a lung loses that lung's
cut part to the "outside air" rule; juxta-pleural nodules wider than the closing radius
are cut out (harmless here: the nodule is removed from the mask anyway).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import disk

LUNG_MIN_FRACTION = 0.1  # a second lung is kept if at least this fraction of the largest
CLOSING_RADIUS_MM = 5.0


def segment_lungs(
    hu: np.ndarray, spacing_mm: tuple[float, float, float], threshold_hu: float = -400.0
) -> np.ndarray:
    """(z, y, x) bool lung mask of an axial chest CT in HU.

    Args:
        hu: (z, y, x) Hounsfield units.
        spacing_mm: (dz, dy, dx) in mm.
        threshold_hu: voxels below this are air.
    """
    air = hu < threshold_hu
    labels, count = ndimage.label(air)
    if count == 0:
        return np.zeros_like(air)
    border = np.unique(
        np.concatenate(
            [
                labels[:, 0, :].ravel(),
                labels[:, -1, :].ravel(),
                labels[:, :, 0].ravel(),
                labels[:, :, -1].ravel(),
            ]
        )
    )
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    sizes[border] = 0  # air touching the in-plane border is outside the body
    if sizes.max() == 0:
        return np.zeros_like(air)
    order = np.argsort(sizes)[::-1][:2]
    keep = [k for k in order if sizes[k] >= LUNG_MIN_FRACTION * sizes[order[0]]]
    lungs = np.isin(labels, keep)
    radius_px = max(1, round(CLOSING_RADIUS_MM / min(spacing_mm[1:])))
    footprint = disk(radius_px).astype(bool)
    rows, cols = np.flatnonzero(lungs.any(axis=(0, 2))), np.flatnonzero(lungs.any(axis=(0, 1)))
    # Work inside the lungs' bounding box (plus the closing radius): half the pixels or less.
    r0, r1 = max(rows[0] - radius_px, 0), rows[-1] + radius_px + 1
    c0, c1 = max(cols[0] - radius_px, 0), cols[-1] + radius_px + 1
    box = lungs[:, r0:r1, c0:c1]
    for k in np.flatnonzero(box.any(axis=(1, 2))):  # per slice: vessels and nodules become lung
        closed = ndimage.binary_closing(box[k], structure=footprint, border_value=0)
        box[k] = ndimage.binary_fill_holes(closed)
    return lungs
