"""Issue 16's thirty-eighth round (a reading; nothing trained or chosen): how much of the
area of G's drawn outline its waves make, and whether G ties size to roughness as the
real slices do.

The drawn outline (``rgsynth.models.outline.star_mask``) is r(θ) = r0 · exp(waves), so its
area is π r0² · mean_θ exp(2 · waves): the waves, which the roughness term asks to follow
the genes, also grow the nodule. For each run, on the syntheses of its training donors that
``bench_map_traits`` reads (``training_donor_masks``' draws), per donor (mean over its
draws): the log pixel area of the binary mask, its polar-signature roughness
(``rgsynth.models.outline.polar_roughness``), log r0² and the waves' area factor
log mean_θ exp(2 · waves) (0 for an equal-area outline) read from the outline's
parameters. Reported: the SD over donors of each, the Pearson correlation of the waves'
factor with log area and with log r0², and of log area with roughness. ``real`` reads the
real training slices (area and roughness only): the coupling G should have. Rows to
``round38_area_share.csv`` (a re-read replaces a run's row):

    python benchmarks/bench_outline_area.py --seed 0 real focus-star focus-star-rough
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench_map import RESULTS, paths, reading_parser, register_ablations
from bench_map_score import held_out, replace_rows
from bench_map_traits import training_donor_masks

CSV = RESULTS / "round38_area_share.csv"
KEYS = ["seed", "model", "step"]
ANGLES = 360


def wave_factor(params):
    """(B,) log mean_θ exp(2 · waves) and (B,) log r0² of outline parameters (B, 3 + 2K), as
    ``star_mask`` draws them without ``equal_area``.

    Example:
        >>> import torch
        >>> factor, log_r0sq = wave_factor(torch.zeros(1, 27))
        >>> round(factor.item(), 6), round(log_r0sq.item(), 3)  # a 7 px disc
        (0.0, 3.892)
    """
    import torch

    from rgsynth.models.outline import star_radius, wave_area_factor

    return wave_area_factor(params, ANGLES), 2 * torch.log(star_radius(params))


def _donor_means(values: dict[str, np.ndarray], owners: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(values)
    frame["donor"] = owners
    return frame.groupby("donor").mean()


def _row(means: pd.DataFrame) -> dict[str, float]:
    row = {"donors": len(means), "mean_log_area": means["log_area"].mean()}
    for column in means:
        row[f"sd_{column}"] = means[column].std(ddof=0)
    row["corr_log_area_roughness"] = means["log_area"].corr(means["roughness"])
    if "wave_factor" in means:
        row["mean_wave_factor"] = means["wave_factor"].mean()
        row["corr_wave_factor_log_area"] = means["wave_factor"].corr(means["log_area"])
        row["corr_wave_factor_log_r0sq"] = means["wave_factor"].corr(means["log_r0sq"])
    return row


def read(work, seed: int, recipe: str, step: int, setup) -> dict[str, float]:
    import torch

    from rgsynth.models.outline import polar_roughness

    caught, generators = [], []

    def catch(run) -> None:  # the outline's parameters, caught on the way to the masks
        generators.append(run.generator)
        run.generator.star_head.register_forward_hook(lambda m, i, o: caught.append(o.detach()))

    _, masks, owners = training_donor_masks(work, seed, recipe, step, setup, on_run=catch)
    values = {}
    if generators:  # a run, not "real"
        params = torch.cat(caught)
        assert len(params) == len(owners), "the generator ran more than once per synthesis"
        factor, log_r0sq = wave_factor(params)
        if getattr(generators[0], "equal_area", False):
            factor = torch.zeros_like(factor)
        values = {"wave_factor": factor.numpy(), "log_r0sq": log_r0sq.numpy()}
    binary = torch.as_tensor(masks > 0.5, dtype=torch.float32)[:, None]
    with torch.no_grad():
        values["roughness"] = polar_roughness(binary).numpy()
    values["log_area"] = np.log(np.maximum(binary.sum(dim=(1, 2, 3)).numpy(), 1.0))
    return _row(_donor_means(values, owners))


def main() -> None:
    parser = reading_parser(__doc__)
    args = parser.parse_args()
    register_ablations()
    setup = held_out(*paths(args.work, args.seed))
    rows = []
    for recipe in args.recipes:
        rows.append({"seed": args.seed, "model": recipe, "step": args.step}
                    | read(args.work, args.seed, recipe, args.step, setup))  # fmt: skip
        print(rows[-1], flush=True)
    replace_rows(CSV, rows, KEYS)
    print(pd.DataFrame(rows).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
