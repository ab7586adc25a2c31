"""QC montage of a cache: for each subject its middle nodule slice with the mask contour,
and one background slice with the lung contour, read back from the shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rgsynth.figures import pyplot, save_png
from rgsynth.prepare.cache import Cache

MAX_SUBJECTS = 16


def save_montage(cache: Cache, subject_ids: list[str], path: Path, columns: int = 4) -> Path | None:
    """Write the montage PNG; None when no subject has examples."""
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
        _panel(nodule_ax, shard["nodule_image"][k], shard["nodule_mask"][k], "red")
        nodule_ax.set_title(f"{subject_id} nodule", fontsize=6.5)
        if len(shard["background_image"]):
            j = len(shard["background_image"]) // 2
            _panel(background_ax, shard["background_image"][j], shard["background_lung"][j], "cyan")
            background_ax.set_title("background + lung", fontsize=6.5)
    fig.suptitle(
        "rgsynth prepare QC: nodule VOI slice with mask (red), background slice with lung "
        "mask (cyan); [-1, 1] = [-1000, 500] HU",
        fontsize=7,
    )
    fig.tight_layout()
    return save_png(fig, path, dpi=100)


def _panel(ax, image: np.ndarray, mask: np.ndarray, colour: str) -> None:
    # Lung window (L -600 / W 1500) in the cache's [-1, 1] units.
    ax.imshow(image.astype(np.float32), cmap="gray", vmin=-1.0, vmax=0.53, interpolation="nearest")
    if mask.any() and not mask.all():
        ax.contour(mask, levels=[0.5], colors=colour, linewidths=0.6)
