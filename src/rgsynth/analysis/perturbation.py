"""The perturbation map (beyond the paper): what the generator does when a gene program
moves.

For each program (a signed gene set) and each replicate r (a fixed background, a fixed
noise seed and a real subject's profile as the base), two nodules are synthesised: the
base with the program's genes moved up by ``shift`` z (times their sign) and moved down
by the same. The features of the two nodules differ only by the program, so their
difference is the program's effect on each feature in this replicate. Effects are
averaged over replicates, with bootstrap 95 % intervals, Wilcoxon signed-rank p-values
and BH q-values over every program × feature pair.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from rgsynth.analysis.features import FEATURES, FeatureExtractor
from rgsynth.analysis.statistics import fdr
from rgsynth.config import PerturbationSettings
from rgsynth.inference import Synthesizer
from rgsynth.intensity import unit_to_hu
from rgsynth.synthesize.paste import nodule_component
from rgsynth.synthesize.profiles import GeneSet


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


def perturbation_map(
    synthesizer: Synthesizer,
    extractor: FeatureExtractor,
    programs: pd.DataFrame,
    backgrounds: np.ndarray,
    base_profiles: np.ndarray,
    hu_window: tuple[float, float],
    settings: PerturbationSettings,
    feature_scale: pd.Series | None = None,
    on_program: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """One row per program × feature: effect (up − down, feature units), effect_sd (in
    units of ``feature_scale``, e.g. the real nodules' SD), its 95 % CI, p, q, n.

    Args:
        programs: (P, G) signed memberships (see :func:`program_matrix`).
        backgrounds: (B, S, S) fixed backgrounds in [-1, 1].
        base_profiles: (N, G) real profiles the replicates start from.
    """
    rng = np.random.default_rng(settings.seed)
    picks = rng.integers(len(backgrounds), size=settings.replicates)
    bases = base_profiles[rng.integers(len(base_profiles), size=settings.replicates)]
    seeds = [int(s) for s in rng.integers(2**31, size=settings.replicates)]
    rows = []
    for name, direction in programs.iterrows():
        move = settings.shift * direction.to_numpy(np.float32)
        up = _features(synthesizer, extractor, backgrounds[picks], bases + move, seeds, hu_window)
        down = _features(synthesizer, extractor, backgrounds[picks], bases - move, seeds, hu_window)
        rows += _effects(str(name), up - down, settings, rng, feature_scale)
        if on_program is not None:
            on_program(str(name))
    columns = ["program", "feature", "n", "effect", "effect_sd", "ci_low", "ci_high", "p"]
    result = pd.DataFrame(rows, columns=columns)
    result["q"] = fdr(result["p"].to_numpy())
    return result


def _features(
    synthesizer: Synthesizer,
    extractor: FeatureExtractor,
    backgrounds: np.ndarray,
    profiles: np.ndarray,
    seeds: list[int],
    hu_window: tuple[float, float],
) -> np.ndarray:
    """(R, F) features of the synthesised nodules (NaN where the mask is empty)."""
    result = synthesizer(backgrounds, profiles.astype(np.float32), seeds)
    rows = []
    for image, soft_mask in zip(result.image, result.mask, strict=True):
        mask, _ = nodule_component(soft_mask > 0.5)
        row = extractor(unit_to_hu(image, hu_window), mask)
        rows.append([row[f] for f in FEATURES])
    return np.array(rows, dtype=np.float64)


def _effects(
    program: str,
    differences: np.ndarray,
    settings: PerturbationSettings,
    rng: np.random.Generator,
    feature_scale: pd.Series | None,
) -> list[dict]:
    rows = []
    for f, feature in enumerate(FEATURES):
        diff = differences[:, f][np.isfinite(differences[:, f])]
        scale = float(feature_scale[feature]) if feature_scale is not None else 1.0
        row = {"program": program, "feature": feature, "n": len(diff)}
        if len(diff) < 3:
            rows.append(
                row | dict.fromkeys(["effect", "effect_sd", "ci_low", "ci_high", "p"], np.nan)
            )
            continue
        means = rng.choice(diff, size=(settings.bootstrap, len(diff))).mean(axis=1)
        low, high = np.percentile(means, [2.5, 97.5])
        p = stats.wilcoxon(diff).pvalue if np.any(diff != 0) else 1.0
        scale = scale if scale > 0 else 1.0
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
