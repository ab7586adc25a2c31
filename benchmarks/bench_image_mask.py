"""Issue 16's thirtieth round (a reading; nothing trained or chosen): does G's image carry
the traits its own mask does not?

The map and every fidelity read a synthesis's traits with G's own mask, binarised at 0.5.
Rounds 24-29 found G renders no lobulation from the genes in that mask, and that asking
the mask for it is met through freedoms of the soft mask channel. If the image carried
lobulation the mask missed, the readout, not the generator, would be where the map is
lost. This reads trait fidelity (`rgsynth evaluate`'s metric, as
`bench_map_traits.fidelity`: training donors painted as they are, held-out donors
unshrunk at p = 1/2) twice per run: with G's mask, and with a mask segmented from G's
image: the pixels of the lightly smoothed image (Gaussian, 0.7 px) above ``THRESHOLD`` HU
within G's binarised mask grown by ``GROW`` px, opened by a 3×3 cross (spicule strands
are not the body), the component overlapping G's mask most, holes filled. The twin's
painter is read the same way, as the check of the segmentation itself (its own mask is
the truth). Rows in `benchmarks/results/round30_image_mask.csv`:

    python benchmarks/bench_image_mask.py --seed 0 reference focus
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from bench_map import RESULTS, paths, reading_parser, register_ablations
from bench_map_moves import axis_settings
from bench_map_score import held_out, replace_rows
from bench_map_traits import fidelity, reading_synthesizer
from rgsynth.analysis.maps import _fixed_backgrounds
from rgsynth.intensity import unit_to_hu

CSV = RESULTS / "round30_image_mask.csv"
THRESHOLD = -700.0  # HU: above aerated lung (about -850), below ground glass (-650 to -450)
GROW = 3  # px the image's nodule may reach beyond G's mask
KEYS = ["seed", "model", "step", "mask"]  # a row's identity in CSV


class ImageMasked:
    """A synthesizer whose masks are segmented from its images (see the module's doc)."""

    def __init__(self, inner, hu_window: tuple[float, float]) -> None:
        self.inner, self.hu_window = inner, hu_window

    def __call__(self, backgrounds, profiles, seeds):
        result = self.inner(backgrounds, profiles, seeds)
        cross = ndimage.generate_binary_structure(2, 1)
        masks = []
        for image, soft in zip(result.image, result.mask, strict=True):
            own = soft > 0.5
            hu = ndimage.gaussian_filter(unit_to_hu(image, self.hu_window), 0.7)
            region = ndimage.binary_dilation(own, iterations=GROW) & (hu > THRESHOLD)
            labels, count = ndimage.label(ndimage.binary_opening(region, structure=cross))
            if not own.any() or count == 0:
                masks.append(np.zeros_like(soft))
                continue
            overlap = ndimage.sum(own, labels, index=np.arange(1, count + 1))
            body = ndimage.binary_fill_holes(labels == 1 + int(np.argmax(overlap)))
            masks.append(body.astype(np.float32))
        result.mask[...] = np.stack(masks)
        return result


def read(work: Path, seed: int, recipe: str, step: int = 2025) -> list[dict]:
    """Two rows (G's mask, the image's) of trait fidelity on both splits."""
    register_ablations()
    cohort_dir, cache = paths(work, seed)
    setup = held_out(cohort_dir, cache)
    fixed = _fixed_backgrounds(cache, axis_settings())
    synthesizer, _, unseen = reading_synthesizer(work, seed, recipe, step)
    rows = []
    for mask, reader in (("G", synthesizer),
                         ("image", ImageMasked(synthesizer, setup.config.hu_window))):  # fmt: skip
        start = time.perf_counter()
        with unseen():
            row = fidelity(reader, setup, fixed, setup.cohort.scoring_split(), seed)
        row |= fidelity(reader, setup, fixed, "train", seed)  # seen: painted as they are
        rows.append({"seed": seed, "model": recipe, "step": step, "mask": mask}
                    | row | {"seconds": round(time.perf_counter() - start)})  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    args = reading_parser(__doc__).parse_args()
    for recipe in args.recipes:
        replace_rows(CSV, read(args.work, args.seed, recipe, args.step), KEYS)


if __name__ == "__main__":
    main()
