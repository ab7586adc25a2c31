"""The classic radiogenomic statistics: cluster tests, co-expression metagenes, Spearman
correlations, all with Benjamini–Hochberg FDR across the family tested together."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform
from statsmodels.stats.multitest import multipletests


def fdr(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values; NaN p-values stay NaN and do not count."""
    p = np.asarray(p_values, dtype=float)
    q = np.full_like(p, np.nan)
    valid = np.isfinite(p)
    if valid.any():
        q[valid] = multipletests(p[valid], method="fdr_bh")[1]
    return q


def cluster_tests(clusters: np.ndarray, table: pd.DataFrame) -> pd.DataFrame:
    """Kruskal–Wallis test of each column of ``table`` (rows = subjects) across clusters,
    with the per-cluster medians; sorted by q."""
    rows = []
    labels = np.unique(clusters)
    for column in table.columns:
        values = table[column].to_numpy(dtype=float)
        groups = [values[(clusters == c) & np.isfinite(values)] for c in labels]
        usable = [g for g in groups if len(g) > 0]
        if len(usable) < 2 or np.ptp(np.concatenate(usable)) == 0:
            statistic, p = np.nan, np.nan
        else:
            statistic, p = stats.kruskal(*usable)
        medians = {
            f"median_cluster_{c + 1}": float(np.median(g)) if len(g) else np.nan
            for c, g in zip(labels, groups, strict=True)
        }
        rows.append({"name": column, "kruskal_h": statistic, "p": p, **medians})
    result = pd.DataFrame(rows)
    result["q"] = fdr(result["p"].to_numpy())
    return result.sort_values(["q", "p"], na_position="last").reset_index(drop=True)


@dataclass
class Metagenes:
    """Co-expression metagenes (Gevaert 2012 style).

    Attributes:
        membership: one row per gene in a metagene: gene, metagene, sign (+1/−1 against
            the metagene's first principal component). Genes in no module are left out.
        scores: (subjects × metagenes) mean of sign × z over each metagene's genes.
    """

    membership: pd.DataFrame
    scores: pd.DataFrame


def metagenes(
    genes: np.ndarray,
    gene_names: list[str],
    subject_ids: list[str],
    min_correlation: float = 0.4,
    min_genes: int = 5,
) -> Metagenes:
    """Co-expression modules: average linkage on 1 − |Pearson r|, cut where the average
    |r| between two groups falls below ``min_correlation``; modules of at least
    ``min_genes`` genes are the metagenes. Genes moving together in either direction
    share one; genes that co-vary with nothing stay out.

    Why a height cut, not a fixed number of clusters: on the twin, most genes belong to
    no program, and a fixed-k cut of the tree left them chained into one giant cluster
    that swallowed every program (best Jaccard 0.05); the height cut recovers them
    (Jaccard 0.8–1.0).

    Args:
        genes: (S, G) standardised expression.
    """
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant gene correlates with none
        correlation = np.nan_to_num(np.corrcoef(np.asarray(genes, dtype=np.float64).T))
    distance = np.clip(1.0 - np.abs(correlation), 0.0, None)
    np.fill_diagonal(distance, 0.0)
    tree = hierarchy.linkage(squareform(distance, checks=False), method="average")
    labels = hierarchy.fcluster(tree, t=1.0 - min_correlation, criterion="distance")
    sizes = np.bincount(labels)
    modules = sorted(
        (k for k in np.unique(labels) if sizes[k] >= min_genes), key=lambda k: -sizes[k]
    )
    rows, scores = [], {}
    for number, k in enumerate(modules, start=1):
        members = np.flatnonzero(labels == k)
        block = genes[:, members] - genes[:, members].mean(axis=0)
        first_pc = np.linalg.svd(block, full_matrices=False)[2][0]
        signs = np.where(first_pc < 0, -1.0, 1.0)
        if signs.sum() < 0:  # orient each module so that most of its genes count +1
            signs = -signs
        name = f"M{number}"
        scores[name] = (genes[:, members] * signs).mean(axis=1)
        rows += [
            {"gene": gene_names[m], "metagene": name, "sign": s}
            for m, s in zip(members, signs, strict=True)
        ]
    membership = pd.DataFrame(rows, columns=["gene", "metagene", "sign"])
    return Metagenes(membership, pd.DataFrame(scores, index=subject_ids))


def spearman_map(scores: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Spearman ρ of every score column against every feature column over the subjects
    both share, one row per pair, with BH q over all pairs."""
    rows = []
    for score in scores.columns:
        for feature in features.columns:
            x, y = scores[score], features[feature]
            valid = x.notna() & y.notna()
            if valid.sum() < 4 or x[valid].nunique() < 2 or y[valid].nunique() < 2:
                rho, p = np.nan, np.nan
            else:
                rho, p = stats.spearmanr(x[valid], y[valid])
            rows.append(
                {"program": score, "feature": feature, "rho": rho, "p": p, "n": int(valid.sum())}
            )
    result = pd.DataFrame(rows, columns=["program", "feature", "rho", "p", "n"])
    result["q"] = fdr(result["p"].to_numpy())
    return result
