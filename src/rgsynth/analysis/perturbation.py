"""The perturbation map (beyond the paper): what the generator does when a gene program
moves.

For each program and each replicate r (a fixed background, a fixed noise seed and a real
donor's profile as the base), nodules are synthesised with the base moved along the
program's direction by each of a few *arms* t. The features and trait readouts of those
nodules differ only by the program, so the slope of each against t is the program's
effect in this replicate. Slopes are averaged over replicates, with bootstrap 95 %
intervals, Wilcoxon signed-rank p-values and BH q-values over every program × column.

Two rules (``PerturbationSettings.rules``; the first is the headline):

``axis`` (stays on the data)
    The direction is the program's first principal axis over the *training* profiles of
    its member genes (signed to agree with the gene set), in units of that axis's SD;
    arms are ±1 and ±2 SD; bases are validation donors (the generator did not see
    them); an empty mask reads as size 0 (its other features are missing), so the
    shrinking arm of a size program counts.
``genes`` (the first published rule)
    Every member gene moves by ±``shift`` z at once (times its sign); bases are any
    subject; an empty mask's features are all missing and the pair drops out.

Several generators (independently trained runs of one recipe) give one map: each
replicate's slope is the mean of the members' slopes on the same background, noise seed
and base, so the map is that of the runs' uniform mixture with the member index averaged
out exactly (not sampled), and the replicates stay paired for the tests. Where a member
has no slope for a replicate (no value on one side of the arms), the mean is over the
members that have one, so the map leans towards the members that kept their masks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from rgsynth.analysis.features import ALL_FEATURES, FeatureExtractor
from rgsynth.analysis.readout import READOUT_COLUMNS, SIZE_FEATURES, Readout
from rgsynth.analysis.statistics import fdr
from rgsynth.config import PerturbationSettings
from rgsynth.intensity import unit_to_hu
from rgsynth.synthesize.paste import nodule_component
from rgsynth.synthesize.profiles import GeneSet

RULES = ("axis", "genes")
AXIS_ARMS = (-2.0, -1.0, 1.0, 2.0)
GENES_ARMS = (-1.0, 1.0)
COLUMNS = ALL_FEATURES + READOUT_COLUMNS


def program_matrix(gene_sets: dict[str, GeneSet], gene_names: list[str]) -> pd.DataFrame:
    """(programs × genes) signed membership in the model's genes; programs with no gene
    there are dropped."""
    column = {g: n for n, g in enumerate(gene_names)}
    rows = {}
    for name, gene_set in gene_sets.items():
        row = np.zeros(len(gene_names), np.float32)
        for gene, sign in zip(gene_set.genes, gene_set.signs, strict=True):
            if gene in column:
                row[column[gene]] = sign
        if row.any():
            rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index", columns=gene_names)


def program_axes(programs: pd.DataFrame, training_profiles: np.ndarray) -> pd.DataFrame:
    """(programs × genes): each program's first principal axis over its member genes in
    ``training_profiles`` (N, G), scaled to one SD along it and signed to agree with the
    gene set's signs. Adding it to a profile moves the program by one SD of the data."""
    rows = {}
    for name, membership in programs.iterrows():
        signs = membership.to_numpy(np.float64)
        members = np.flatnonzero(signs)
        block = training_profiles[:, members].astype(np.float64)
        block = block - block.mean(axis=0)
        if len(members) == 1 or len(block) < 3:
            axis = np.sign(signs[members]) * block.std(axis=0)
        else:
            _, singular, vt = np.linalg.svd(block, full_matrices=False)
            axis = vt[0] * singular[0] / np.sqrt(len(block) - 1)
            if axis @ signs[members] < 0:
                axis = -axis
        row = np.zeros(programs.shape[1])
        row[members] = axis
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index", columns=programs.columns)


@dataclass
class PerturbationResult:
    """``table``: one row per program × column (features, then trait readouts);
    ``empty``: the share of empty masks per program and arm."""

    table: pd.DataFrame
    empty: pd.DataFrame


def perturbation_map(
    synthesizer: Callable | Sequence[Callable],
    extractor: FeatureExtractor,
    readout: Readout,
    directions: pd.DataFrame,
    arms: tuple[float, ...],
    backgrounds: np.ndarray,
    base_profiles: np.ndarray,
    hu_window: tuple[float, float],
    settings: PerturbationSettings,
    feature_scale: pd.Series | None = None,
    empty_as_size_zero: bool = True,
    on_program: Callable[[str], None] | None = None,
) -> PerturbationResult:
    """Effects of moving each direction by each arm (see the module docstring).

    Args:
        synthesizer: ``(backgrounds, profiles, seeds) → Synthesis`` (a generator's
            :class:`~rgsynth.inference.Synthesizer`, or the reference generator), or a
            sequence of them whose slopes are averaged per replicate (see the module
            docstring).
        directions: (P, G) one unit of each program's move.
        backgrounds: (B, S, S) fixed backgrounds in [-1, 1].
        base_profiles: (N, G) real profiles the replicates start from.
        feature_scale: SDs (e.g. of the real nodules) ``effect_sd`` is in units of.
    """
    rng = np.random.default_rng(settings.seed)
    picks = rng.integers(len(backgrounds), size=settings.replicates)
    bases = base_profiles[rng.integers(len(base_profiles), size=settings.replicates)]
    seeds = [int(s) for s in rng.integers(2**31, size=settings.replicates)]
    t = np.asarray(arms, np.float64)
    members = list(synthesizer) if isinstance(synthesizer, Sequence) else [synthesizer]
    if not members:
        raise ValueError("perturbation_map needs at least one synthesizer")
    rows, empty_rows = [], []
    for name, direction in directions.iterrows():
        step = direction.to_numpy(np.float32)
        slopes, empties = [], np.zeros((len(t), len(seeds)))
        for member in members:
            measured = []
            for a, arm in enumerate(t):
                values, empty = measure_syntheses(
                    member,
                    extractor,
                    readout,
                    backgrounds[picks],
                    bases + np.float32(arm) * step,
                    seeds,
                    hu_window,
                    empty_as_size_zero,
                )
                measured.append(values)
                empties[a] += empty / len(members)
            slopes.append(_slopes(t, np.stack(measured)))  # (R, C)
        slopes = _member_mean(np.stack(slopes))
        rows += _effects(str(name), slopes, settings, rng, feature_scale)
        empty_rows += [
            {"program": str(name), "arm": float(a), "empty_rate": float(e.mean())}
            for a, e in zip(t, empties, strict=True)
        ]
        if on_program is not None:
            on_program(str(name))
    columns = ["program", "feature", "n", "effect", "effect_sd", "ci_low", "ci_high", "p"]
    table = pd.DataFrame(rows, columns=columns)
    table["q"] = fdr(table["p"].to_numpy())
    return PerturbationResult(
        table, pd.DataFrame(empty_rows, columns=["program", "arm", "empty_rate"])
    )


def measure_syntheses(
    synthesizer: Callable,
    extractor: FeatureExtractor,
    readout: Readout,
    backgrounds: np.ndarray,
    profiles: np.ndarray,
    seeds: list[int],
    hu_window: tuple[float, float],
    empty_as_size_zero: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(R, len(COLUMNS)) features and readouts of each synthesis's central nodule, and
    whether its mask was empty. An empty or too-small mask has missing features; with
    ``empty_as_size_zero`` its size features are its pixels' (0 when empty)."""
    result = synthesizer(backgrounds, profiles.astype(np.float32), seeds)
    rows, empty = [], []
    pixel = extractor.pixel_mm
    for image, soft_mask in zip(result.image, result.mask, strict=True):
        mask, _ = nodule_component(soft_mask > 0.5)
        row = extractor(unit_to_hu(image, hu_window), mask)
        if empty_as_size_zero and not np.isfinite(row[SIZE_FEATURES[0]]):
            rows_, cols_ = np.nonzero(mask)
            extent = max(np.ptp(rows_), np.ptp(cols_)) + 1 if mask.any() else 0
            row["area_mm2"] = float(mask.sum()) * pixel**2
            row["max_diameter_mm"] = float(extent) * pixel
        rows.append(row)
        empty.append(not mask.any())
    table = readout.apply(pd.DataFrame(rows, columns=list(ALL_FEATURES)))
    return table[list(COLUMNS)].to_numpy(np.float64), np.array(empty)


def _member_mean(slopes: np.ndarray) -> np.ndarray:
    """(R, C) mean over the members (M, R, C) of the finite slopes; NaN where no member
    has one."""
    finite = np.isfinite(slopes)
    count = finite.sum(axis=0)
    total = np.where(finite, slopes, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _slopes(t: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(R, C) least-squares slope of values (A, R, C) against the arms t (A,), over the
    arms where a value exists (NaN with fewer than two, or all on one side)."""
    finite = np.isfinite(values)
    weight = finite.astype(np.float64)
    tt = t[:, None, None] * weight
    n = weight.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_mean = tt.sum(axis=0) / n
        v = np.where(finite, values, 0.0)
        v_mean = v.sum(axis=0) / n
        centred_t = (t[:, None, None] - t_mean) * weight
        slope = (centred_t * (v - v_mean)).sum(axis=0) / (centred_t**2).sum(axis=0)
    both_sides = ((t[:, None, None] > 0) & finite).any(axis=0) & (
        (t[:, None, None] < 0) & finite
    ).any(axis=0)
    return np.where((n >= 2) & both_sides, slope, np.nan)


def _effects(
    program: str,
    slopes: np.ndarray,
    settings: PerturbationSettings,
    rng: np.random.Generator,
    feature_scale: pd.Series | None,
) -> list[dict]:
    rows = []
    for c, column in enumerate(COLUMNS):
        diff = slopes[:, c][np.isfinite(slopes[:, c])]
        scale = 1.0
        if feature_scale is not None and column in feature_scale.index:
            scale = float(feature_scale[column])
        row = {"program": program, "feature": column, "n": len(diff)}
        if len(diff) < 3:
            rows.append(
                row | dict.fromkeys(["effect", "effect_sd", "ci_low", "ci_high", "p"], np.nan)
            )
            continue
        means = rng.choice(diff, size=(settings.bootstrap, len(diff))).mean(axis=1)
        low, high = np.percentile(means, [2.5, 97.5])
        p = stats.wilcoxon(diff).pvalue if np.any(diff != 0) else 1.0
        scale = scale if np.isfinite(scale) and scale > 0 else 1.0
        rows.append(
            row
            | {
                "effect": float(diff.mean()),
                "effect_sd": float(diff.mean() / scale),
                "ci_low": float(low),
                "ci_high": float(high),
                "p": float(p),
            }
        )
    return rows
