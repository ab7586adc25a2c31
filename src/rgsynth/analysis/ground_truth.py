"""Scoring maps against a twin's written truth: which program moves which trait.

A map gives, for each (program, feature) pair, an effect (the perturbation map's effect
in real-nodule SDs, the conventional pipeline's Spearman ρ). Each twin trait is read by
one feature of the 2-D slice (below); ``location`` (free / juxta-vascular /
juxta-pleural) cannot be read from a nodule-centred patch and is left out of the scores.
Over every (program, trait) pair, |effect| ranks the pairs, the truth labels them
(effect ≠ 0), and AUROC and average precision say how well the map recovers the truth.
Null programs move nothing: the count of their pairs with q < 0.05 is the false-positive
tally.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

from rgsynth.metrics.records import Estimate
from rgsynth.synthesize.profiles import GeneSet, read_gene_sets

# trait: (the feature that reads it on a slice, that feature's sign along the trait)
TRAIT_FEATURES = {
    "diameter": ("max_diameter_mm", 1.0),
    "solidity": ("mean_hu", 1.0),
    "spiculation": ("convexity_deficit", 1.0),
    "lobulation": ("circularity", -1.0),
    "heterogeneity": ("hu_sd", 1.0),
}
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


def load_truth(path: Path) -> Truth:
    truth = json.loads(Path(path).read_text())
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
    """(program, trait) rows from a map's (program, feature) rows: the trait's feature's
    ``value`` (turned to the trait's direction) and q."""
    rows = []
    for trait, (feature, sign) in TRAIT_FEATURES.items():
        part = map_table[map_table["feature"] == feature]
        for _, row in part.iterrows():
            rows.append(
                {
                    "program": row["program"],
                    "trait": trait,
                    "effect": sign * float(row[value]),
                    "q": float(row["q"]),
                }
            )
    return pd.DataFrame(rows, columns=["program", "trait", "effect", "q"])


def score_against_truth(table: pd.DataFrame, truth: Truth) -> dict[str, float]:
    """AUROC and average precision of |effect| for the true pairs, the share of true
    pairs found with the right sign at q < 0.05, and null-program false positives.

    Args:
        table: (program, trait, effect, q) rows, programs named as in the truth.
    """
    table = table[table["program"].isin(truth.effects.index)].copy()
    table["true_effect"] = [
        truth.effects.at[p, t] for p, t in zip(table["program"], table["trait"], strict=True)
    ]
    table = table[np.isfinite(table["effect"])]
    positive = table["true_effect"] != 0
    found = (
        positive & (table["q"] < 0.05) & (np.sign(table["effect"]) == np.sign(table["true_effect"]))
    )
    null_rows = table["program"].isin(truth.null_programs)
    scores = {
        "n_pairs": len(table),
        "n_true_pairs": int(positive.sum()),
        "auroc": float("nan"),
        "average_precision": float("nan"),
        "true_pairs_found": float(found.sum() / max(positive.sum(), 1)),
        "null_program_pairs": int(null_rows.sum()),
        "null_program_false_positives": int((null_rows & (table["q"] < 0.05)).sum()),
    }
    if 0 < positive.sum() < len(table):
        strength = table["effect"].abs().to_numpy()
        scores["auroc"] = float(roc_auc_score(positive, strength))
        scores["average_precision"] = float(average_precision_score(positive, strength))
    return scores


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
    features: pd.DataFrame, truth: Truth, rng: np.random.Generator, resamples: int
) -> dict[str, Estimate]:
    """Spearman, over the subjects in both, between each true trait and the feature that
    reads it (rows of ``features`` are subject IDs), with bootstrap intervals. On real
    nodules it says how well a feature reads its trait (the ceiling of every map for
    that trait); on syntheses averaged per donor it is trait fidelity."""
    known = [s for s in features.index if s in truth.traits.index]
    result = {}
    for trait, (feature, sign) in TRAIT_FEATURES.items():
        pair = pd.DataFrame(
            {
                "truth": truth.traits.loc[known, trait],
                "measured": sign * features.loc[known, feature],
            }
        ).dropna()
        result[trait] = _spearman_estimate(pair, rng, resamples)
    return result


def _spearman_estimate(pair: pd.DataFrame, rng, resamples: int) -> Estimate:
    if len(pair) < 4 or pair["measured"].nunique() < 2:
        return Estimate(float("nan"), float("nan"), float("nan"), len(pair))
    value = stats.spearmanr(pair["truth"], pair["measured"])[0]
    draws = []
    for _ in range(resamples):
        sample = pair.iloc[rng.integers(len(pair), size=len(pair))]
        if sample["measured"].nunique() > 1 and sample["truth"].nunique() > 1:
            draws.append(stats.spearmanr(sample["truth"], sample["measured"])[0])
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan)
    return Estimate(float(value), float(low), float(high), len(pair))
