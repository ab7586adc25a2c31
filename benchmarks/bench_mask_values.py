"""Issue 16's thirty-fifth round (a reading; nothing trained or chosen): where G's soft
mask puts its values.

Rounds 26-35 met every ask for the nodule's outline through the soft mask channel's
freedoms (fuzz, a faint channel, a floor, a mask hovering at 0.5), each seen by eye in a
montage. This counts them: for each run, on the syntheses of its training donors that
``bench_map_traits.roughness`` reads (``training_donor_masks``), the share of all mask
pixels in each value band, the share of syntheses whose mask has no pixel above 0.5
(empty to the readout), the median of each synthesis's largest value, where the fuzzy
pixels (0.1-0.9) lie: within ``EDGE_PX`` of the binarised outline (an edge band) or
beyond it, and the share of all pixels at 0.01-0.5 beyond that band (a floor, a haze; a
soft outline is not counted), and the mean number of 8-connected pieces of the
binarised mask. ``real`` reads the real training slices' masks (binary:
the bands' check). A montage of ``MONTAGE`` syntheses per run (image above, soft mask
below) goes to ``round35_masks.png`` or ``--png`` (the recipes of the last call only),
rows to ``round35_mask_values.csv`` (a re-read replaces a run's row):

    python benchmarks/bench_mask_values.py --seed 0 real focus focus-coin focus-rough-coin
    python benchmarks/bench_mask_values.py --seed 0 --png round37_masks.png real focus-star
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from bench_map import RESULTS, paths, reading_parser, register_ablations
from bench_map_score import held_out, replace_rows
from bench_map_traits import training_donor_masks

CSV = RESULTS / "round35_mask_values.csv"
PNG = RESULTS / "round35_masks.png"
BANDS = (0.0, 0.01, 0.1, 0.5, 0.9, 1.0)  # value bands (the last one closed)
EDGE_PX = 2  # a fuzzy pixel this close to the binarised outline is edge, not floor
MONTAGE = 6
KEYS = ["seed", "model", "step"]


def bands(masks: np.ndarray) -> dict[str, float]:
    """The reading's row (see the module's doc) of soft masks (N, H, W).

    Example:
        >>> m = np.zeros((1, 16, 16), np.float32); m[0, 4:12, 4:12] = 1; m[0, 0, 0] = 0.3
        >>> row = bands(m)
        >>> row["share_0.9-1"], row["empty"], row["fuzzy_beyond_edge"], row["floor_beyond_edge"]
        (0.25, 0.0, 1.0, 0.00390625)
        >>> m[0, 14, 14] = 1  # a second piece
        >>> bands(m)["pieces"]
        2.0
    """
    row = {}
    for low, high in itertools.pairwise(BANDS):
        inside = (masks >= low) & ((masks <= high) if high == 1.0 else (masks < high))
        row[f"share_{low:g}-{high:g}"] = float(inside.mean())
    hard = masks > 0.5
    row["empty"] = float((~hard.any(axis=(1, 2))).mean())
    row["median_max"] = float(np.median(masks.max(axis=(1, 2))))
    fuzzy = (masks > 0.1) & (masks < 0.9)
    outline = np.stack([m ^ ndimage.binary_erosion(m) for m in hard])
    near = np.stack([ndimage.binary_dilation(o, iterations=EDGE_PX) for o in outline])
    row["fuzzy_per_pixel_above_half"] = float(fuzzy.sum() / max(hard.sum(), 1))
    row["fuzzy_beyond_edge"] = float((fuzzy & ~near).sum() / max(fuzzy.sum(), 1))
    row["floor_beyond_edge"] = float(((masks > 0.01) & (masks < 0.5) & ~near).mean())
    # 8-connected pieces of the binarised mask, mean over the syntheses that have one (a
    # drawn star-shaped outline is one region in the continuum, not always on the grid)
    pieces = [ndimage.label(m, structure=np.ones((3, 3)))[1] for m in hard if m.any()]
    row["pieces"] = float(np.mean(pieces)) if pieces else float("nan")
    return row


def montage(panels: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """Per run, ``MONTAGE`` images (grey, the demo's unit window) over their soft masks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 2 * len(panels)
    fig, axes = plt.subplots(rows, MONTAGE, figsize=(1.4 * MONTAGE, 1.45 * rows), squeeze=False)
    for r, (name, (images, masks)) in enumerate(panels.items()):
        picks = np.linspace(0, len(images) - 1, MONTAGE).astype(int)
        for c, i in enumerate(picks):
            axes[2 * r, c].imshow(images[i], cmap="gray", vmin=-1, vmax=1)
            axes[2 * r + 1, c].imshow(masks[i], cmap="magma", vmin=0, vmax=1)
        axes[2 * r, 0].set_ylabel(name, fontsize=7)
        axes[2 * r + 1, 0].set_ylabel("soft mask", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def main() -> None:
    parser = reading_parser(__doc__)
    parser.add_argument("--png", default=PNG.name, help="the montage's name in results/")
    args = parser.parse_args()
    register_ablations()
    setup = held_out(*paths(args.work, args.seed))
    rows, panels = [], {}
    for recipe in args.recipes:
        images, masks, _ = training_donor_masks(args.work, args.seed, recipe, args.step, setup)
        rows.append({"seed": args.seed, "model": recipe, "step": args.step} | bands(masks))
        panels[recipe] = (images, masks)
        print(rows[-1], flush=True)
    replace_rows(CSV, rows, KEYS)
    montage(panels, RESULTS / args.png)
    print(pd.DataFrame(rows).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
