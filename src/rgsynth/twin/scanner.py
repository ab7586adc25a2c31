"""The acquisition: scanner, reconstruction kernel, slice profile and CT noise.

Real NSCLC Radiogenomics series mix vendors, smooth (soft-tissue) and sharp (lung)
kernels, 0.6–0.9 mm pixels and 1–2.5 mm slices. Here a smooth kernel blurs slightly and
has coarse-grained noise of 10–20 HU; a sharp kernel enhances edges (overshoot) and has
fine-grained noise of 40–80 HU (DESIGN.md §4). Noise is correlated in-plane, as filtered
back-projection makes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

HU_MIN, HU_MAX = -1024, 3071  # the range int16 storage with intercept -1024 can hold

_VENDORS = (
    # manufacturer, model, smooth kernel, sharp kernel
    ("GE MEDICAL SYSTEMS", "LightSpeed VCT", "STANDARD", "LUNG"),
    ("SIEMENS", "SOMATOM Definition AS", "B31f", "B70f"),
    ("TOSHIBA", "Aquilion ONE", "FC08", "FC52"),
)


@dataclass(frozen=True)
class Acquisition:
    """How one CT series was acquired and reconstructed."""

    pixel_spacing_mm: float
    slice_thickness_mm: float
    kernel: str  # "smooth" or "sharp"
    kernel_name: str  # the vendor's ConvolutionKernel value
    manufacturer: str
    model: str
    noise_sd_hu: float
    kvp: float
    tube_current_ma: int
    contrast: bool
    descending_instances: bool  # instance 1 at the top (GE style) or at the bottom

    def to_dict(self) -> dict:
        return asdict(self)


def draw_acquisition(
    rng: np.random.Generator,
    spacing_range_mm: tuple[float, float],
    thickness_choices_mm: tuple[float, ...],
) -> Acquisition:
    manufacturer, model, smooth_name, sharp_name = _VENDORS[rng.integers(len(_VENDORS))]
    sharp = bool(rng.random() < 0.5)
    # Scanners offer spacings as FOV / 512 in 1 mm FOV steps; round to 0.001 mm as they do.
    spacing = round(float(rng.uniform(*spacing_range_mm)), 3)
    return Acquisition(
        pixel_spacing_mm=spacing,
        slice_thickness_mm=float(rng.choice(thickness_choices_mm)),
        kernel="sharp" if sharp else "smooth",
        kernel_name=sharp_name if sharp else smooth_name,
        manufacturer=manufacturer,
        model=model,
        noise_sd_hu=float(rng.uniform(40.0, 80.0) if sharp else rng.uniform(10.0, 20.0)),
        kvp=float(rng.choice([100.0, 120.0, 120.0, 140.0])),
        tube_current_ma=int(rng.integers(80, 400)),
        contrast=bool(rng.random() < 0.4),
        descending_instances=bool(rng.random() < 0.5),
    )


def acquire(rng: np.random.Generator, hu: np.ndarray, acquisition: Acquisition) -> np.ndarray:
    """Noise-free HU (z, y, x) → reconstructed HU as int16, clipped to the storable range."""
    image = reconstruct(hu, acquisition) + ct_noise(rng, hu.shape, acquisition)
    return np.clip(np.rint(image), HU_MIN, HU_MAX).astype(np.int16)


def reconstruct(hu: np.ndarray, acquisition: Acquisition) -> np.ndarray:
    """The noiseless part of the reconstruction: slice profile and kernel (linear, so the
    reference generator applies it to a nodule alone)."""
    # Slice sensitivity profile: each slice integrates a little of its neighbours.
    image = ndimage.gaussian_filter1d(hu, sigma=0.35, axis=0)
    in_plane = (0.0, 1.0, 1.0)
    if acquisition.kernel == "sharp":
        blurred = ndimage.gaussian_filter(image, sigma=[s * 1.0 for s in in_plane])
        return image + 0.5 * (image - blurred)  # edge enhancement with overshoot
    return ndimage.gaussian_filter(image, sigma=[s * 0.5 for s in in_plane])


def ct_noise(
    rng: np.random.Generator, shape: tuple[int, ...], acquisition: Acquisition
) -> np.ndarray:
    """In-plane correlated noise of the kernel's grain, scaled to its level in HU."""
    grain_px = 0.7 if acquisition.kernel == "sharp" else 1.4
    in_plane = (0.0, 1.0, 1.0)
    noise = ndimage.gaussian_filter(
        rng.standard_normal(shape, dtype=np.float32), sigma=[s * grain_px for s in in_plane]
    )
    noise *= acquisition.noise_sd_hu / (noise.std() + 1e-9)
    return noise
