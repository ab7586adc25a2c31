"""Image features of a 2-D nodule (an axial slice and its mask): a small, readable set.

Most features come from pyradiomics (IBSI-minded, the field's common reference; chosen
over MIRP because its 2-D shape class works directly on one slice). Two are computed here
because pyradiomics has no equivalent: the ground-glass fraction (a HU band, not a
texture) and the convexity deficit (1 − area / convex-hull area, from scikit-image),
the margin irregularity that lobulation and spiculation raise.

| feature | unit | reads | source |
|---|---|---|---|
| area_mm2 | mm² | size | shape2D PixelSurface |
| max_diameter_mm | mm | size | shape2D MaximumDiameter |
| circularity | 1 | shape (1 = disc) | shape2D Sphericity |
| elongation | 1 | shape (1 = round) | shape2D Elongation |
| convexity_deficit | 1 | margin irregularity | 1 − area / convex hull (skimage) |
| mean_hu | HU | density (solid vs ground-glass) | firstorder Mean |
| ground_glass_fraction | 1 | part-solid / GGO | share of mask in [−750, −300] HU |
| hu_sd | HU | heterogeneity | √ firstorder Variance |
| entropy | bits | heterogeneity | firstorder Entropy, 25 HU bins |
| glcm_contrast | 1 | texture | GLCM Contrast, 25 HU bins |
| glcm_homogeneity | 1 | texture | GLCM Idm, 25 HU bins |
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd
import SimpleITK as sitk
from skimage.measure import regionprops

from rgsynth.analysis.margin import MARGIN_FEATURES, margin_features
from rgsynth.io.itk_threads import one_itk_thread

GROUND_GLASS_HU = (-750.0, -300.0)
BIN_WIDTH_HU = 25.0
MIN_PIXELS = 5  # below this (or one pixel wide) shape and texture are noise: NaN instead

_RADIOMICS = {
    "area_mm2": ("shape2D", "PixelSurface"),
    "max_diameter_mm": ("shape2D", "MaximumDiameter"),
    "circularity": ("shape2D", "Sphericity"),
    "elongation": ("shape2D", "Elongation"),
    "mean_hu": ("firstorder", "Mean"),
    "hu_variance": ("firstorder", "Variance"),  # its StandardDeviation is deprecated
    "entropy": ("firstorder", "Entropy"),
    "glcm_contrast": ("glcm", "Contrast"),
    "glcm_homogeneity": ("glcm", "Idm"),
}
FEATURES = (
    "area_mm2",
    "max_diameter_mm",
    "circularity",
    "elongation",
    "convexity_deficit",
    "mean_hu",
    "ground_glass_fraction",
    "hu_sd",
    "entropy",
    "glcm_contrast",
    "glcm_homogeneity",
)
# What the trait readout may combine: the realism set above plus the margin descriptors
# of :mod:`rgsynth.analysis.margin` (spicules, lobes and texture live where pyradiomics
# does not look). FRD and the donor test keep to FEATURES, the published radiomic set.
ALL_FEATURES = FEATURES + MARGIN_FEATURES


def _extractor():
    import radiomics
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.ERROR)  # it logs per call at INFO...
    logging.getLogger("radiomics").setLevel(logging.ERROR)  # ...and propagates to the root
    extractor = featureextractor.RadiomicsFeatureExtractor(
        force2D=True, force2Ddimension=0, binWidth=BIN_WIDTH_HU, label=1
    )
    extractor.disableAllFeatures()
    wanted: dict[str, list[str]] = {}
    for feature_class, name in _RADIOMICS.values():
        wanted.setdefault(feature_class, []).append(name)
    extractor.enableFeaturesByName(**wanted)
    return extractor


class FeatureExtractor:
    """Features of (S, S) HU slices with their masks, at ``pixel_mm`` square pixels.

    Example:
        >>> yy, xx = np.mgrid[:64, :64]
        >>> disc = (yy - 32) ** 2 + (xx - 32) ** 2 < 10**2
        >>> row = FeatureExtractor(pixel_mm=1.0)(np.where(disc, 40.0, -850.0), disc)
        >>> round(row["mean_hu"]), row["ground_glass_fraction"], 20 <= row["max_diameter_mm"] <= 21
        (40, 0.0, True)
    """

    def __init__(self, pixel_mm: float) -> None:
        self.pixel_mm = float(pixel_mm)
        self._radiomics = _extractor()

    def __call__(self, image_hu: np.ndarray, mask: np.ndarray) -> dict[str, float]:
        mask = np.asarray(mask, dtype=bool)
        rows, cols = np.nonzero(mask)
        if mask.sum() < MIN_PIXELS or np.ptp(rows) == 0 or np.ptp(cols) == 0:
            # pyradiomics refuses a one-pixel-wide region (it sees a 1-D mask)
            return dict.fromkeys(ALL_FEATURES, float("nan"))
        # A one-pixel frame: pyradiomics finds no label in a mask that fills the whole
        # patch (an untrained generator's); the frame changes no feature.
        framed_hu = np.pad(np.asarray(image_hu, np.float32), 1, mode="edge")
        framed_mask = np.pad(mask, 1)
        with one_itk_thread():  # a 66² slice: threads cost more than they save
            values = self._radiomics.execute(
                self._image(framed_hu), self._image(framed_mask, sitk.sitkUInt8)
            )
        row = {name: float(values[f"original_{c}_{f}"]) for name, (c, f) in _RADIOMICS.items()}
        row["hu_sd"] = float(np.sqrt(row.pop("hu_variance")))
        inside = np.asarray(image_hu)[mask]
        low, high = GROUND_GLASS_HU
        row["ground_glass_fraction"] = float(((inside >= low) & (inside <= high)).mean())
        row["convexity_deficit"] = 1.0 - float(regionprops(mask.astype(np.uint8))[0].solidity)
        row |= margin_features(image_hu, mask, self.pixel_mm)
        return {name: row[name] for name in ALL_FEATURES}

    def _image(self, array: np.ndarray, pixel_type: int = sitk.sitkFloat32) -> sitk.Image:
        image = sitk.Cast(sitk.GetImageFromArray(np.asarray(array, np.float32)[None]), pixel_type)
        image.SetSpacing((self.pixel_mm,) * 3)
        return image

    def table(
        self, images_hu: np.ndarray, masks: np.ndarray, index: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """One row per (S, S) slice of (N, S, S) images and masks."""
        rows = [self(image, mask) for image, mask in zip(images_hu, masks, strict=True)]
        return pd.DataFrame(rows, index=list(index) if index is not None else None)


def largest_slice(masks: np.ndarray) -> int:
    """Index of the slice with the most mask pixels in (n, S, S): the nodule's widest
    section, which stands for the nodule when one 2-D view per subject is needed."""
    return int(np.argmax(np.asarray(masks).reshape(len(masks), -1).sum(axis=1)))
