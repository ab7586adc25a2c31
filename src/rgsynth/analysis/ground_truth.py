"""Scoring maps against a twin's written truth: which program moves which trait.

A map gives, for each (program, feature) pair, an effect (the perturbation map's effect
in real-nodule SDs, the conventional pipeline's Spearman ρ). Each twin trait is read by
its calibrated readout (:mod:`rgsynth.analysis.readout`, a column beside the features);
``location`` (free / juxta-vascular / juxta-pleural) cannot be read from a
nodule-centred patch and is left out of the scores. Over every (program, trait) pair,
|effect| ranks the pairs, the truth labels them (effect ≠ 0), and AUROC (with a bootstrap
interval over pairs, and per trait) and average precision say how well the map recovers
the truth. A true pair is found when q < 0.05 with the right sign; a negative pair (a null
program's, or a program that does not drive that trait) is a false positive when q < 0.05
and |effect| is above ``EFFECT_FLOOR``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

from rgsynth.analysis.readout import READOUT_TRAITS, readout_column
from rgsynth.analysis.statistics import fdr
from rgsynth.errors import InputError
from rgsynth.metrics.records import Estimate
from rgsynth.synthesize.profiles import GeneSet, read_gene_sets

# trait: (the column that reads it on a slice, that column's sign along the trait)
TRAIT_FEATURES = {t: (readout_column(t), 1.0) for t in READOUT_TRAITS}
# The one feature that read each trait before the calibrated readout (kept for the ablation)
SINGLE_FEATURES = {
    "diameter": ("max_diameter_mm", 1.0),
    "solidity": ("mean_hu", 1.0),
    "spiculation": ("convexity_deficit", 1.0),
    "lobulation": ("circularity", -1.0),
    "heterogeneity": ("hu_sd", 1.0),
}
# |effect| below which a significant negative pair is not counted as a false positive:
# 0.1 real-nodule SDs per program SD for the perturbation map, ρ = 0.1 for the classic one
EFFECT_FLOOR = 0.1
SUBJECT_TRAITS = {
    "diameter": "diameter_mm",
    "solidity": "solid_fraction",
    "spiculation": "spiculation",
    "lobulation": "lobulation",
    "heterogeneity": "heterogeneity",
}


@dataclass
class Truth:
    """Attributes:
    effects: (programs × traits) true effects, 0 where a program does not move a trait.
    null_programs: programs that move nothing.
    traits: (subjects × traits) each subject's true trait values.
    gene_sets: the programs as signed gene sets.
    subtypes: each subject's expression subtype (what clusters of gene codes could find).
    """

    effects: pd.DataFrame
    null_programs: list[str]
    traits: pd.DataFrame
    gene_sets: dict[str, GeneSet]
    subtypes: pd.Series | None = None


TRUTH_FORMAT = "rgsynth-twin-ground-truth"  # what a twin writes as ground_truth.json


def load_truth(path: Path) -> Truth:
    """A twin's ground_truth.json, read and checked before any scoring starts.

    Raises:
        InputError: the file cannot be read, is not JSON (or is cut short), or is not
            a twin's ground truth.
    """
    path = Path(path)
    try:
        truth = json.loads(path.read_text())
    except OSError as error:
        raise InputError("", path, f"unreadable ground truth ({error})") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise InputError("", path, f"not JSON, or cut short ({error})") from None
    if not isinstance(truth, dict) or truth.get("format") != TRUTH_FORMAT:
        raise InputError("", path, f'not a twin\'s ground truth (no "format": "{TRUTH_FORMAT}")')
    try:
        return _parse_truth(truth, path)
    except InputError:  # its programs as gene sets: already one line naming the file
        raise
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise InputError(
            "", path, f"damaged ground truth ({type(error).__name__}: {error})"
        ) from None


def _parse_truth(truth: dict, path: Path) -> Truth:
    matrix = truth["effects"]
    effects = pd.DataFrame(matrix["matrix"], index=matrix["rows"], columns=matrix["columns"]).T
    traits = pd.DataFrame(
        {
            s["subject_id"]: {t: s["traits"][k] for t, k in SUBJECT_TRAITS.items()}
            for s in truth["subjects"]
        }
    ).T
    return Truth(
        effects=effects[list(TRAIT_FEATURES)],
        null_programs=[p["name"] for p in truth["programs"] if p["null"]],
        traits=traits.astype(float),
        gene_sets=read_gene_sets(Path(path)),
        subtypes=pd.Series({s["subject_id"]: s["subtype"] for s in truth["subjects"]}),
    )


def program_trait_table(map_table: pd.DataFrame, value: str) -> pd.DataFrame:
    """(program, trait) rows from a map's (program, feature) rows: the trait readout's
    ``value`` (turned to the trait's direction) and q, BH-corrected again over these rows
    alone (the hypotheses scored, whatever else the map tested)."""
    rows = []
    for trait, (feature, sign) in TRAIT_FEATURES.items():
        part = map_table[map_table["feature"] == feature]
        for _, row in part.iterrows():
            rows.append(
                {
                    "program": row["program"],
                    "trait": trait,
                    "effect": sign * float(row[value]),
                    "p": float(row["p"]),
                }
            )
    table = pd.DataFrame(rows, columns=["program", "trait", "effect", "p"])
    table["q"] = fdr(table["p"].to_numpy())
    return table


def score_against_truth(
    table: pd.DataFrame, truth: Truth, resamples: int = 0, seed: int = 0
) -> dict[str, float]:
    """AUROC (and, with ``resamples``, its bootstrap interval over pairs) and average
    precision of |effect| for the true pairs, per-trait AUROC, the share of true pairs
    found with the right sign at q < 0.05, and the false positives among the negative
    pairs (see the module docstring).

    Args:
        table: (program, trait, effect, q) rows, programs named as in the truth.
    """
    table = table[table["program"].isin(truth.effects.index)].copy()
    table["true_effect"] = [
        truth.effects.at[p, t] for p, t in zip(table["program"], table["trait"], strict=True)
    ]
    table = table[np.isfinite(table["effect"])]
    positive = (table["true_effect"] != 0).to_numpy()
    significant = (table["q"] < 0.05).to_numpy()
    found = (
        positive
        & significant
        & (np.sign(table["effect"]) == np.sign(table["true_effect"])).to_numpy()
    )
    strength = table["effect"].abs().to_numpy()
    false_positive = ~positive & significant & (strength > EFFECT_FLOOR)
    null_rows = table["program"].isin(truth.null_programs).to_numpy()
    scores = {
        "n_pairs": len(table),
        "n_true_pairs": int(positive.sum()),
        "auroc": float("nan"),
        "auroc_ci_low": float("nan"),
        "auroc_ci_high": float("nan"),
        "average_precision": float("nan"),
        "true_pairs_found": float(found.sum() / max(positive.sum(), 1)),
        "false_positive_rate": float(false_positive.sum() / max((~positive).sum(), 1)),
        "null_program_pairs": int(null_rows.sum()),
        "null_program_false_positives": int((null_rows & false_positive).sum()),
    }
    if 0 < positive.sum() < len(table):
        scores["auroc"] = float(roc_auc_score(positive, strength))
        scores["average_precision"] = float(average_precision_score(positive, strength))
        if resamples:
            scores["auroc_ci_low"], scores["auroc_ci_high"] = _auroc_interval(
                positive, strength, resamples, seed
            )
    traits = table["trait"].to_numpy()
    for trait in TRAIT_FEATURES:
        part = traits == trait
        if 0 < positive[part].sum() < part.sum():
            scores[f"auroc_{trait}"] = float(roc_auc_score(positive[part], strength[part]))
    return scores


def _auroc_interval(
    positive: np.ndarray, strength: np.ndarray, resamples: int, seed: int
) -> tuple[float, float]:
    """95 % percentile interval of the AUROC over pairs resampled with replacement
    (stratified, so every resample keeps both classes)."""
    rng = np.random.default_rng([seed, 6])
    pos, neg = np.flatnonzero(positive), np.flatnonzero(~positive)
    picks = np.empty((resamples, len(pos) + len(neg)), dtype=int)
    for row in picks:  # the same draws, in the same order, as one roc_auc_score per resample
        row[:] = np.concatenate([rng.choice(pos, size=len(pos)), rng.choice(neg, size=len(neg))])
    # Every resample at once as Mann-Whitney U over mid-ranks (= roc_auc_score with its
    # tie handling): sklearn's per-call validation was most of the time on 40 pairs.
    ranks = stats.rankdata(strength[picks], axis=1)
    n_pos, n_neg = len(pos), len(neg)
    u = ranks[:, :n_pos].sum(axis=1) - n_pos * (n_pos + 1) / 2
    low, high = np.percentile(u / (n_pos * n_neg), [2.5, 97.5])
    return float(low), float(high)


def match_metagenes(membership: pd.DataFrame, truth: Truth, genes: list[str]) -> pd.DataFrame:
    """For each true program, the discovered metagene sharing the most genes with it
    (Jaccard over the model's genes): how the conventional map is named in truth's terms."""
    known = set(genes)
    groups = {m: set(rows["gene"]) for m, rows in membership.groupby("metagene")}
    rows = []
    for name, gene_set in truth.gene_sets.items():
        members = set(gene_set.genes) & known
        jaccard = {m: len(members & g) / len(members | g) for m, g in groups.items() if members | g}
        best = max(jaccard, key=jaccard.get) if jaccard else None
        rows.append({"program": name, "metagene": best, "jaccard": jaccard.get(best, 0.0)})
    return pd.DataFrame(rows)


def trait_spearman(
    features: pd.DataFrame,
    truth: Truth,
    rng: np.random.Generator,
    resamples: int,
    readers: dict[str, tuple[str, float]] = TRAIT_FEATURES,
) -> dict[str, Estimate]:
    """Spearman, over the subjects in both, between each true trait and the feature that
    reads it (rows of ``features`` are subject IDs), with bootstrap intervals. On real
    nodules it says how well a feature reads its trait (the ceiling of every map for
    that trait); on syntheses averaged per donor it is trait fidelity."""
    known = [s for s in features.index if s in truth.traits.index]
    result = {}
    for trait, (feature, sign) in readers.items():
        pair = pd.DataFrame(
            {
                "truth": truth.traits.loc[known, trait],
                "measured": sign * features.loc[known, feature],
            }
        ).dropna()
        result[trait] = _spearman_estimate(pair, rng, resamples)
    return result


def _spearman_estimate(pair: pd.DataFrame, rng, resamples: int) -> Estimate:
    if len(pair) < 4 or pair["measured"].nunique() < 2 or pair["truth"].nunique() < 2:
        return Estimate(float("nan"), float("nan"), float("nan"), len(pair))
    value = stats.spearmanr(pair["truth"], pair["measured"])[0]
    draws = []
    for _ in range(resamples):
        sample = pair.iloc[rng.integers(len(pair), size=len(pair))]
        if sample["measured"].nunique() > 1 and sample["truth"].nunique() > 1:
            draws.append(stats.spearmanr(sample["truth"], sample["measured"])[0])
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan)
    return Estimate(float(value), float(low), float(high), len(pair))
