"""Sample grids like the paper's Fig. 2: background, synthesis, weight map, mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rgsynth.intensity import LUNG_WINDOW
from rgsynth.plotting import pyplot, save_png

ROWS = ("background", "synthesis", "weight map", "mask", "real nodule (genes' owner)")


def save_sample_grid(
    path: Path,
    background: np.ndarray,
    synthesis: np.ndarray,
    weight_map: np.ndarray,
    mask: np.ndarray,
    real: np.ndarray,
    title: str,
    hu_window: tuple[float, float],
) -> Path:
    """Write a PNG with one column per example. Arrays are (N, H, W): images in [-1, 1]
    (the lung window, for a cache made with ``hu_window``), weight map and mask in [0, 1]."""
    plt = pyplot()

    lung = LUNG_WINDOW.in_unit_range(hu_window)
    n = len(background)
    fig, axes = plt.subplots(len(ROWS), n, figsize=(1.3 * n, 1.35 * len(ROWS)), squeeze=False)
    rows = (background, synthesis, weight_map, mask, real)
    for r, (label, images) in enumerate(zip(ROWS, rows, strict=True)):
        image_like = label in ("background", "synthesis", "real nodule (genes' owner)")
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(
                images[c],
                cmap="gray",
                vmin=lung[0] if image_like else 0.0,
                vmax=lung[1] if image_like else 1.0,
                interpolation="nearest",
            )
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return save_png(fig, path, dpi=100)
