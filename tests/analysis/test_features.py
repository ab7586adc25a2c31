"""Image features of 2-D nodules on shapes whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rgsynth.analysis.features import ALL_FEATURES, FEATURES, FeatureExtractor, largest_slice
from rgsynth.analysis.margin import margin_features


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    return FeatureExtractor(pixel_mm=0.5)


def _disc(radius_px: float, size: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < radius_px**2


def _star(radius_px: float, spikes: int, size: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] - size / 2
    angle, distance = np.arctan2(yy, xx), np.hypot(yy, xx)
    return distance < radius_px * (0.7 + 0.3 * np.cos(spikes * angle) ** 8 * 2)


def test_size_and_density_of_a_solid_disc(extractor: FeatureExtractor) -> None:
    disc = _disc(16)  # 8 mm radius at 0.5 mm pixels
    row = extractor(np.where(disc, 40.0, -850.0), disc)
    assert row["area_mm2"] == pytest.approx(math.pi * 8**2, rel=0.03)
    assert row["max_diameter_mm"] == pytest.approx(16, abs=0.6)
    assert row["circularity"] > 0.95 and row["elongation"] > 0.95
    assert row["mean_hu"] == pytest.approx(40) and row["hu_sd"] == pytest.approx(0, abs=1e-6)
    assert row["ground_glass_fraction"] == 0 and row["convexity_deficit"] < 0.03


def test_ground_glass_texture_and_margin_move_the_right_features(
    extractor: FeatureExtractor,
) -> None:
    disc = _disc(16)
    rng = np.random.default_rng(0)
    ground_glass = np.where(disc, -550.0 + rng.normal(0, 60, disc.shape), -850.0)
    row = extractor(ground_glass, disc)
    assert row["ground_glass_fraction"] > 0.95 and -600 < row["mean_hu"] < -500
    assert row["hu_sd"] > 40 and row["entropy"] > 1.5
    star = _star(20, spikes=7)
    irregular = extractor(np.where(star, 40.0, -850.0), star)
    assert irregular["convexity_deficit"] > 0.1 and irregular["circularity"] < 0.8


def test_empty_or_tiny_masks_give_nan(extractor: FeatureExtractor) -> None:
    tiny = np.zeros((32, 32), bool)
    tiny[5, 5:8] = True
    assert all(math.isnan(v) for v in extractor(np.zeros((32, 32)), tiny).values())
    line = np.zeros((32, 32), bool)
    line[5, 2:20] = True  # many pixels, one wide: pyradiomics would raise
    assert all(math.isnan(v) for v in extractor(np.zeros((32, 32)), line).values())
    table = extractor.table(np.zeros((2, 32, 32)), np.zeros((2, 32, 32), bool), ["a", "b"])
    assert list(table.columns) == list(ALL_FEATURES) and list(table.index) == ["a", "b"]
    assert list(ALL_FEATURES[: len(FEATURES)]) == list(FEATURES)  # the realism set first


def test_largest_slice() -> None:
    masks = np.zeros((3, 8, 8), bool)
    masks[0, :2, :2] = masks[1, :4, :4] = masks[2, :3, :3] = True
    assert largest_slice(masks) == 1


def test_a_mask_filling_the_patch_is_measured() -> None:
    """pyradiomics finds no label in a mask that covers the whole image; an untrained
    generator makes such masks, and they must be measured, not crash the maps."""
    rng = np.random.default_rng(0)
    image = rng.normal(-500.0, 100.0, (32, 32))
    row = FeatureExtractor(pixel_mm=1.0)(image, np.ones((32, 32), bool))
    assert row["area_mm2"] == pytest.approx(32 * 32)
    assert row["mean_hu"] == pytest.approx(image.mean(), abs=1e-3)


def _lung(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    return rng.normal(-850.0, 15.0, (size, size))


def test_strands_leaving_the_margin_raise_strand_fraction() -> None:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:64, :64] - 31.5
    body = np.hypot(yy, xx) <= 8
    smooth = np.where(body, 30.0, _lung(rng))
    spiky = smooth.copy()
    angle = np.arctan2(yy, xx)
    for a in np.linspace(-np.pi, np.pi, 8, endpoint=False):  # eight radial strands
        strand = (np.abs(np.angle(np.exp(1j * (angle - a)))) < 0.08) & (np.hypot(yy, xx) < 16)
        spiky[strand & ~body] = 0.0
    plain = margin_features(smooth, body, 1.0)
    spiculated = margin_features(spiky, body, 1.0)
    assert plain["strand_fraction"] == 0.0
    assert spiculated["strand_fraction"] > 0.08
    assert spiculated["ring_excess_hu"] > plain["ring_excess_hu"] + 50


def test_lobes_raise_the_boundary_harmonics_but_elongation_does_not() -> None:
    yy, xx = np.mgrid[:64, :64] - 31.5
    radius, angle = np.hypot(yy, xx), np.arctan2(yy, xx)
    ellipse = (yy / 8) ** 2 + (xx / 13) ** 2 <= 1
    lobed = radius <= 10 * (1 + 0.25 * np.cos(6 * angle))
    image = np.full((64, 64), -850.0)
    e, lob = margin_features(image, ellipse, 1.0), margin_features(image, lobed, 1.0)
    assert lob["radius_harmonics"] > 3 * e["radius_harmonics"]


def test_texture_is_measured_against_the_slices_own_noise() -> None:
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:64, :64] - 31.5
    body = np.hypot(yy, xx) <= 12
    from scipy import ndimage

    texture = ndimage.gaussian_filter(rng.normal(size=(64, 64)), 2.0)
    texture /= texture.std()
    flat = np.where(body, 30.0, -850.0) + rng.normal(0, 20.0, (64, 64))
    mottled = flat + np.where(body, 150.0 * texture, 0.0)
    assert (
        margin_features(mottled, body, 1.0)["texture_ratio"]
        > 2 * margin_features(flat, body, 1.0)["texture_ratio"]
    )


def test_one_itk_thread_is_scoped_and_the_extractor_leaves_the_default_alone(
    extractor: FeatureExtractor,
) -> None:
    import SimpleITK as sitk

    from rgsynth.io.itk_threads import one_itk_thread

    before = sitk.ProcessObject_GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(2)
    try:
        with pytest.raises(RuntimeError), one_itk_thread():
            assert sitk.ProcessObject_GetGlobalDefaultNumberOfThreads() == 1
            raise RuntimeError("inside")
        assert sitk.ProcessObject_GetGlobalDefaultNumberOfThreads() == 2
        row = extractor(np.where(_disc(9), 40.0, -850.0), _disc(9))
        assert sitk.ProcessObject_GetGlobalDefaultNumberOfThreads() == 2
        assert row["area_mm2"] == pytest.approx(_disc(9).sum() * 0.25)
    finally:
        sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(before)
