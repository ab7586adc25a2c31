"""File outputs of a synthesis other than DICOM: PNG previews and NIfTI volumes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image, ImageDraw

from rgsynth.fsutil import atomic_write_bytes

PANELS = ("background", "synthesis", "weight map", "mask")
DISPLAY_HU = (-1000.0, 150.0)  # the lung window the training samples use
_PANEL_PX = 192
_HEADER_PX = 16


def preview_png(
    path: Path,
    background_hu: np.ndarray,
    synthesis_hu: np.ndarray,
    weight_map: np.ndarray,
    mask: np.ndarray,
    pasted: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Write ``background | synthesis | weight map | mask`` (each (S, S); HU, or [0, 1] for
    the weight map and mask) and the pasted result at the background's own resolution with
    the kept nodule mask outlined in red (``pasted`` = (HU, bool mask)).

    Drawn with Pillow rather than matplotlib: a batch writes one per nodule, so it must
    cost little beside the synthesis itself."""
    panels = [_gray(background_hu, DISPLAY_HU), _gray(synthesis_hu, DISPLAY_HU)]
    panels += [_gray(weight_map, (0.0, 1.0)), _gray(mask, (0.0, 1.0))]
    labels = list(PANELS)
    if pasted is not None:
        panels.append(_outlined(_gray(pasted[0], DISPLAY_HU), pasted[1]))
        labels.append("pasted")
    sheet = Image.new("RGB", (_PANEL_PX * len(panels), _PANEL_PX + _HEADER_PX), "black")
    draw = ImageDraw.Draw(sheet)
    for n, (panel, label) in enumerate(zip(panels, labels, strict=True)):
        sheet.paste(
            panel.resize((_PANEL_PX, _PANEL_PX), Image.Resampling.NEAREST),
            (n * _PANEL_PX, _HEADER_PX),
        )
        draw.text((n * _PANEL_PX + 4, 2), label, fill="white")
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _gray(values: np.ndarray, window: tuple[float, float]) -> Image.Image:
    low, high = window
    scaled = np.clip((np.asarray(values, dtype=np.float32) - low) / (high - low), 0.0, 1.0)
    return Image.fromarray((255 * scaled).astype(np.uint8), mode="L").convert("RGB")


def _outlined(image: Image.Image, mask: np.ndarray) -> Image.Image:
    from scipy import ndimage

    edge = mask & ~ndimage.binary_erosion(mask)
    pixels = np.array(image)
    pixels[edge] = (255, 40, 40)
    return Image.fromarray(pixels)


def write_nifti(path: Path, image: sitk.Image) -> Path:
    """A compressed NIfTI (``.nii.gz``); the caller's staging folder makes it atomic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), useCompression=True)
    return path


def patch_image(
    array: np.ndarray, centre_mm: tuple[float, float, float], voxel_mm: float
) -> sitk.Image:
    """A (1, S, S) patch as a one-slice volume on the axial LPS grid it was cut from."""
    image = sitk.GetImageFromArray(array)
    size = array.shape[-1]
    image.SetSpacing((voxel_mm,) * 3)
    corner = (size - 1) * voxel_mm / 2
    image.SetOrigin((centre_mm[0] - corner, centre_mm[1] - corner, centre_mm[2]))
    return image
