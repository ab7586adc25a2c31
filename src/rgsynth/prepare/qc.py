"""QC montage of a cache: for each subject its middle nodule slice with the mask contour,
and one background slice with the lung contour, read back from the shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rgsynth.intensity import LUNG_WINDOW
from rgsynth.plotting import pyplot, save_png
from rgsynth.prepare.cache import Cache

MAX_SUBJECTS = 16


def save_montage(
    cache: Cache,
    subject_ids: list[str],
    path: Path,
    hu_window: tuple[float, float],
    columns: int = 4,
) -> Path | None:
    """Write the montage PNG (images in the lung window, through the cache's ``hu_window``);
    None when no subject has examples."""
    plt = pyplot()

    shown = subject_ids[:MAX_SUBJECTS]
    if not shown:
        return None
    n_rows = int(np.ceil(len(shown) / columns))
    fig, axes = plt.subplots(
        n_rows, 2 * columns, figsize=(2.0 * 2 * columns, 2.2 * n_rows), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    for n, subject_id in enumerate(shown):
        shard = cache.load_shard(subject_id)
        nodule_ax = axes[n // columns, 2 * (n % columns)]
        background_ax = axes[n // columns, 2 * (n % columns) + 1]
        k = int(np.argmax(shard["nodule_mask"].sum(axis=(1, 2))))
        _panel(nodule_ax, shard["nodule_image"][k], shard["nodule_mask"][k], "red", hu_window)
        nodule_ax.set_title(f"{subject_id} nodule", fontsize=6.5)
        if len(shard["background_image"]):
            j = len(shard["background_image"]) // 2
            _panel(
                background_ax,
                shard["background_image"][j],
                shard["background_lung"][j],
                "cyan",
                hu_window,
            )
            background_ax.set_title("background + lung", fontsize=6.5)
    fig.suptitle(
        "rgsynth prepare QC: nodule VOI slice with mask (red), background slice with lung "
        f"mask (cyan); [-1, 1] = [{hu_window[0]:g}, {hu_window[1]:g}] HU",
        fontsize=7,
    )
    fig.tight_layout()
    return save_png(fig, path, dpi=100)


def _panel(
    ax, image: np.ndarray, mask: np.ndarray, colour: str, hu_window: tuple[float, float]
) -> None:
    vmin, vmax = LUNG_WINDOW.in_unit_range(hu_window)  # the cache's [-1, 1] units
    ax.imshow(image.astype(np.float32), cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
    if mask.any() and not mask.all():
        ax.contour(mask, levels=[0.5], colors=colour, linewidths=0.6)
