"""The paper's example figures, as data a report can draw from the run folder alone.

Fig. 3 of the paper: a row of donor nodules (whose genes are used), a row of backgrounds,
and the baseline's and the proposed model's syntheses from those genes on those
backgrounds. Fig. 2: for two of the columns, the proposed model's background, synthesis,
background weight map and mask. Here the donors are validation subjects (unseen in
training) spread over nodule size, and both models get the same backgrounds and noise.

``rgsynth evaluate`` writes ``RUN/examples.npz`` (every panel, HU and [0, 1] maps) and
``RUN/examples.csv`` (what each column is: donor, background, seed, and the features of
the donor's nodule and of each synthesis).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from rgsynth.analysis.cohort import CohortView
from rgsynth.analysis.features import FeatureExtractor
from rgsynth.fsutil import atomic_write_bytes, atomic_write_text
from rgsynth.inference import Synthesizer, TrainedRun
from rgsynth.intensity import unit_to_hu
from rgsynth.layout import EXAMPLES_CSV, EXAMPLES_NPZ
from rgsynth.synthesize.paste import nodule_component

SHOWN_FEATURES = ("max_diameter_mm", "mean_hu", "ground_glass_fraction", "convexity_deficit")


def pick_donors(cohort: CohortView, diameters: pd.Series, count: int) -> list[str]:
    """``count`` validation subjects (all subjects if the split has too few) evenly spread
    over the diameter of their widest nodule slice, smallest first."""
    validation = [
        s for s, split in zip(cohort.subject_ids, cohort.split, strict=True) if split == "val"
    ]
    pool = validation if len(validation) >= count else list(cohort.subject_ids)
    ranked = diameters.loc[pool].sort_values(kind="stable")
    ranked = ranked[np.isfinite(ranked)]
    if len(ranked) <= count:
        return list(ranked.index)
    positions = np.linspace(0, len(ranked) - 1, count).round().astype(int)
    return [ranked.index[p] for p in positions]


def write_examples(
    run_dir: Path,
    runs: list[TrainedRun],
    cohort: CohortView,
    real_features: pd.DataFrame,
    extractor: FeatureExtractor,
    backgrounds: np.ndarray,
    hu_window: tuple[float, float],
    seed: int,
    columns: int = 7,
    synthesizers: list[Callable] | None = None,
) -> pd.DataFrame:
    """Synthesise the example grid with every run and write it beside ``run_dir``'s scores.

    Args:
        runs: the runs to show (the proposed model and, if given, MC-GAN).
        real_features: features of each subject's widest real nodule slice (rows: IDs).
        extractor: measures the syntheses as the real nodules were measured.
        backgrounds: (N, S, S) candidate background patches in [-1, 1].
        hu_window: the cache's HU window (patches' [-1, 1] maps onto it).
        synthesizers: what paints each run's column (the scores' own, e.g. unshrinking
            unseen donors); None: each run's generator as it is.
    Returns:
        The column table written to ``examples.csv``.
    """
    donors = pick_donors(cohort, real_features["max_diameter_mm"], columns)
    rows = [cohort.subject_ids.index(d) for d in donors]
    rng = np.random.default_rng([seed, 7])
    picks = rng.choice(len(backgrounds), size=len(donors), replace=len(backgrounds) < len(donors))
    seeds = [int(s) for s in rng.integers(2**31, size=len(donors))]
    arrays = {
        "donor_hu": cohort.nodule_hu[rows].astype(np.float32),
        "donor_mask": cohort.nodule_mask[rows],
        "background_hu": unit_to_hu(backgrounds[picks], hu_window).astype(np.float32),
    }
    table = pd.DataFrame(
        {
            "column": range(1, len(donors) + 1),
            "donor": donors,
            "donor_split": [cohort.split[r] for r in rows],
            "background_index": picks,
            "noise_seed": seeds,
        }
    )
    for feature in SHOWN_FEATURES:
        table[f"donor {feature}"] = real_features.loc[donors, feature].to_numpy()
    genes = cohort.genes[rows]
    painters = synthesizers or [Synthesizer(run.generator) for run in runs]
    for run, painter in zip(runs, painters, strict=True):
        name = run.config.model.architecture
        synthesis = painter(backgrounds[picks], genes, seeds)
        image_hu = unit_to_hu(synthesis.image, hu_window).astype(np.float32)
        masks = np.stack([nodule_component(m > 0.5)[0] for m in synthesis.mask])
        arrays |= {
            f"{name}_hu": image_hu,
            f"{name}_mask": masks,
            f"{name}_weight_map": synthesis.weight_map.astype(np.float32),
        }
        features = extractor.table(image_hu, masks, donors)
        for feature in SHOWN_FEATURES:
            table[f"{name} {feature}"] = features[feature].to_numpy()
    _write_npz(Path(run_dir) / EXAMPLES_NPZ, arrays)
    atomic_write_text(Path(run_dir) / EXAMPLES_CSV, table.to_csv(index=False))
    return table


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
