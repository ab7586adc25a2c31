"""The report's metric tables, from the score records, evaluation.json and maps.json: one
long table of numbers (section, metric, column, value, interval) that is written as
``summary.csv``, and its sections pivoted to text for the page."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from rgsynth.analysis.evaluate import map_label
from rgsynth.analysis.ground_truth import TRAIT_FEATURES
from rgsynth.analysis.reference import REFERENCE
from rgsynth.metrics.builtin import CONVENTIONAL_VARIANTS, PERTURBATION_MAP
from rgsynth.metrics.records import (
    CONVENTIONAL,
    EMBEDDING,
    FEATURE_VALIDITY,
    REAL_NODULES,
    SINGLE_FEATURE_VALIDITY,
    Score,
)
from rgsynth.report.inputs import RunFiles

REALISM = (
    ("frd", "FRD to real validation nodules (lower is better)"),
    ("two_sample_accuracy", "two-sample classifier accuracy (0.5 = indistinguishable)"),
    ("empty_or_tiny_mask_rate", "empty or tiny masks (share)"),
    ("background_psnr_db", "background PSNR outside the eroded mask (dB)"),
    ("background_ssim", "background SSIM outside the eroded mask"),
    ("mask_consistency_dice", "Dice of mask vs pixels changed by > 150 HU"),
)
CONDITIONING = (
    ("matched", "donor_auroc", "donor AUROC, matched genes (0.5 = genes unused)"),
    ("shuffled genes", "donor_auroc", "donor AUROC, shuffled genes (ablation)"),
    ("zeroed genes", "donor_auroc", "donor AUROC, zeroed genes (ablation)"),
    ("shuffled genes", "frd", "FRD, shuffled genes"),
    ("zeroed genes", "frd", "FRD, zeroed genes"),
)
MAP_SCORES = (
    ("auroc", "AUROC of |effect| for the true pairs [interval over pairs]"),
    ("average_precision", "average precision"),
    ("true_pairs_found", "true pairs found (q < 0.05, right sign)"),
    ("false_positive_rate", "false positives among negative pairs (q < 0.05, |effect| > 0.1)"),
    ("null_program_false_positives", "null-program pairs with q < 0.05, |effect| > 0.1"),
    *((f"auroc_{t}", f"AUROC within {t}") for t in TRAIT_FEATURES),
)


@dataclass
class Section:
    """One table of the page: a title, what it means, and its rows as display text."""

    key: str
    title: str
    note: str
    table: pd.DataFrame


def summary_rows(files: RunFiles) -> pd.DataFrame:
    """Every headline number as (section, metric, column, value, ci_low, ci_high, n): the
    scores from the run's score records, the training facts from evaluation.json."""
    rows: list[dict[str, Any]] = []
    scores = files.scores

    def add(section: str, metric: str, column: str, value: Any, n: Any = None) -> None:
        low = high = None
        if isinstance(value, Score):
            value, low, high = value.value, value.ci_low, value.ci_high
        if value is None:
            return
        row = {"section": section, "metric": metric, "column": column, "value": value}
        rows.append(row | {"ci_low": low, "ci_high": high, "n": n})

    for name, facts in files.evaluation["models"].items():
        column = map_label(name)
        add("training", "checkpoint step", column, facts.get("checkpoint_step"))
        training = facts.get("training", {})
        add("training", "training compute (min)", column, _minutes(training))
        add("training", "seconds per step", column, training.get("seconds_per_step"))
        for key in ("base_channels", "max_channels", "batch_size", "lr", "image_size", "n_genes"):
            add("training", key.replace("_", " "), column, training.get(key))
        for key, label in REALISM:
            add("realism", label, column, scores.get(name, "matched", key))
        for condition, key, label in CONDITIONING:
            add("conditioning", label, column, scores.get(name, condition, key))
        for score in scores.where(model=name, condition="trait fidelity"):
            add("traits", score.metric, column, score)
        _add_map_scores(add, column, scores.where(model=name, condition="perturbation map"))
        empty = facts.get("perturbation_empty_rate", {})
        for arm, rate in empty.get("programs", {}).items():
            add("map", f"empty masks at the {arm} arm (headline rule)", column, rate)
        for rule in ("genes", "axis"):
            recovery = scores.where(model=name, condition=f"perturbation map ({rule} rule)")
            _add_map_scores(add, f"{column}, {rule} rule", recovery)
    for score in scores.where(model=REAL_NODULES, condition=FEATURE_VALIDITY):
        add("traits", score.metric, "real nodules: readout vs true trait", score)
    for score in scores.where(model=REAL_NODULES, condition=SINGLE_FEATURE_VALIDITY):
        add("traits", score.metric, "real nodules: single feature (before)", score)
    for variant, label in (
        ("as_discovered", "discovered"),
        ("with_true_programs", "true programs"),
        ("sampling_bound", "sampling bound"),
    ):
        if recovery := scores.where(model=CONVENTIONAL, condition=variant):
            _add_map_scores(add, map_label(label), recovery)
    silhouettes = files.maps.get("embeddings", {})
    for space, values in silhouettes.items():
        add("codes", "k-means silhouette (code space)", space, values.get("silhouette"))
        add("codes", "k-means silhouette (t-SNE plane)", space, values.get("silhouette_tsne"))
    for score in scores.where(condition=EMBEDDING):
        add("codes", "adjusted Rand index of clusters vs true subtypes", score.model, score)
    return pd.DataFrame(
        rows, columns=["section", "metric", "column", "value", "ci_low", "ci_high", "n"]
    )


def _add_map_scores(add, column: str, recovery: list[Score]) -> None:
    by_metric = {score.metric: score for score in recovery}
    counts = {
        k: by_metric[k].value for k in ("n_true_pairs", "null_program_pairs") if k in by_metric
    }
    for key, label in MAP_SCORES:
        n = counts.get("n_true_pairs") if key == "true_pairs_found" else None
        n = counts.get("null_program_pairs") if key == "null_program_false_positives" else n
        add("map", label, column, by_metric.get(key), n)


def _minutes(training: dict[str, Any]) -> float | None:
    seconds = training.get("train_seconds")
    return round(seconds / 60, 2) if seconds is not None else None


SECTIONS = (
    (
        "map",
        "Radiogenomic map against the twin's truth",
        "Each map gives an effect for every (program, trait) pair. The truth says which "
        "pairs are real. AUROC (bootstrap interval over pairs) and average precision rank "
        "the pairs by |effect|; found and false-positive counts use q < 0.05 "
        "(Benjamini–Hochberg over the pairs scored), false positives also an effect above "
        "0.1. The reference paints what the twin would; the classic rows run on the "
        "training donors with the same readout; the sampling bound is the true programs "
        "against the true traits on those donors.",
    ),
    (
        "realism",
        "Realism (validation split, one synthesis per real nodule slice)",
        "FRD is a Fréchet distance over the 11 standardised nodule features; the "
        "two-sample test is a cross-validated logistic regression, real vs synthetic. "
        "Brackets: bootstrap 95 % intervals.",
    ),
    (
        "conditioning",
        "Conditioning and gene ablations",
        "Donor AUROC: how often a donor's syntheses sit closer to the donor's own real "
        "nodule than to another donor's. Shuffled and zeroed genes keep background and "
        "noise: if the genes matter, matched beats both.",
    ),
    (
        "traits",
        "Trait fidelity (Spearman over donors, true trait vs its readout)",
        "Per model: the trait's readout (at most three features, fitted on calibration "
        "twins of other seeds) averaged over syntheses with a donor's genes. Real nodules: "
        "the readout on the donor's real nodule, out of sample, the ceiling of any map "
        "that reads the trait through it; beside it the single feature used before.",
    ),
    (
        "codes",
        "Gene codes (paper Fig. 4)",
        "k-means (k as in `rgsynth map`) on each code: its silhouette, and how well the "
        "clusters match the twin's expression subtypes (0 = chance).",
    ),
    ("training", "Training", "Compute is the sum of logged step times."),
)


# the classic pipeline's variants that compete in the verdict, in plain words (the sampling
# bound also uses the true traits: a bound, like the reference, and left to the table)
CLASSIC_MAPS = {
    "discovered": "the classic pipeline (metagenes as discovered)",
    "true programs": "the classic pipeline (true programs as metagenes)",
}
REFERENCE_PHRASE = "the reference generator (the twin's own painter: an upper bound)"


def verdict(files: RunFiles) -> str | None:
    """The page's lead: which map recovered the twin's true gene→trait pairs best, by map
    AUROC with its interval, in plain words, so a reader need not search the tables.

    The winner is chosen among the trained models and the classic pipeline; the reference
    generator paints the twin's own map, so it is quoted beside as an upper bound. None
    without a truth (a real cohort's maps are discoveries, not scored)."""
    if files.evaluation.get("truth") is None:
        return None
    competitors = _competing_maps(files)
    if not competitors:
        return None
    top = max(score.value for _, score in competitors)
    best = [(n, s) for n, s in competitors if math.isclose(s.value, top)]
    others = [c for c in competitors if c not in best]
    names = _join([name for name, _ in best])
    claim = "found the map best" if len(best) == 1 else "tie for the best map"
    quoted = [f"{name} {_auroc(score)}" for name, score in others]
    reference = files.scores.get(REFERENCE, PERTURBATION_MAP, "auroc")
    if reference is not None and not _nan(reference.value):
        quoted.append(f"{REFERENCE_PHRASE} {_auroc(reference)}")
    distinct = list(dict.fromkeys(_auroc(score) for _, score in best))
    tied = len(best) > 1 and len(distinct) == 1
    aurocs = f"{distinct[0]} each" if tied else " and ".join(distinct)
    text = f"Against the twin's truth, {names} {claim}: AUROC {aurocs}"
    text += ("; " + ", ".join(quoted) if quoted else "") + "."
    return " ".join([text, *_unresolved(best, others, _trained(files))])


def _competing_maps(files: RunFiles) -> list[tuple[str, Score]]:
    """(display name, map AUROC) of each trained model's perturbation map and of the
    classic pipeline's variants, where the evaluation scored one."""
    candidates = [
        (map_label(name), files.scores.get(name, PERTURBATION_MAP, "auroc"))
        for name in _trained(files)
    ]
    candidates += [
        (phrase, files.scores.get(CONVENTIONAL, CONVENTIONAL_VARIANTS[variant], "auroc"))
        for variant, phrase in CLASSIC_MAPS.items()
    ]
    return [(n, s) for n, s in candidates if s is not None and not _nan(s.value)]


def _trained(files: RunFiles) -> list[str]:
    return [name for name in files.evaluation["models"] if name != REFERENCE]


def _unresolved(
    best: list[tuple[str, Score]], others: list[tuple[str, Score]], trained: list[str]
) -> list[str]:
    """Sentences on the differences the intervals do not resolve: the winner against the
    rest, and the trained models among themselves (the paper's question)."""
    sentences = []
    if len(best) == 1:
        winner, score = best[0]
        rest = [name for name, other in others if _overlap(score, other)]
        if rest:
            apart = f"{winner} is not told apart from {_join(rest)}"
            sentences.append(f"{apart}: the intervals overlap.")
        elif others and all(_overlap(score, other) is False for _, other in others):
            sentences.append("Its interval overlaps no other's: the lead is resolved.")
    labels = {map_label(name) for name in trained}
    said = best if len(best) == 1 else []  # the winner's overlaps are said above
    models = [(n, s) for n, s in best + others if n in labels and (n, s) not in said]
    for i, (first, a) in enumerate(models):
        for second, b in models[i + 1 :]:
            if _overlap(a, b):
                pair = f"{first} and {second} are not told apart"
                sentences.append(f"{pair}: their intervals overlap.")
    return [sentence[0].upper() + sentence[1:] for sentence in sentences]


def _overlap(a: Score, b: Score) -> bool | None:
    """Whether two AUROC intervals overlap; None if either has no interval."""
    if not (_interval(a) and _interval(b)):
        return None
    return a.ci_low <= b.ci_high and b.ci_low <= a.ci_high  # type: ignore[operator]


def _interval(score: Score) -> bool:
    return not any(x is None or _nan(x) for x in (score.ci_low, score.ci_high))


def _auroc(score: Score) -> str:
    text = f"{score.value:.2f}"
    if _interval(score):
        text += f" [{score.ci_low:.2f}, {score.ci_high:.2f}]"
    return text


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def sections(summary: pd.DataFrame) -> list[Section]:
    """The long table as display sections: metric rows × column, 'value [low, high]'."""
    result = []
    for key, title, note in SECTIONS:
        part = summary[summary["section"] == key]
        if part.empty:
            continue
        text = part.assign(cell=[_cell(row) for row in part.itertuples()])
        wide = text.pivot(index="metric", columns="column", values="cell")
        wide = wide.loc[list(dict.fromkeys(part["metric"])), list(dict.fromkeys(part["column"]))]
        wide.index.name = wide.columns.name = None  # the page shows no pivot labels
        result.append(Section(key, title, note, wide.fillna("")))
    return result


def _cell(row: Any) -> str:
    value = row.value
    if row.metric.startswith("true pairs found") and row.n is not None and not _nan(row.n):
        return f"{round(value * row.n):d}/{int(row.n)}"
    if row.metric.startswith("null-program") and row.n is not None and not _nan(row.n):
        return f"{int(value)}/{int(row.n)}"
    if _nan(value):
        return "n/a"
    text = _number(value)
    if row.ci_low is not None and not _nan(row.ci_low):
        text += f" [{_number(row.ci_low)}, {_number(row.ci_high)}]"
    return text


def _number(value: float) -> str:
    value = float(value)
    if value.is_integer():
        return f"{int(value)}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}" if round(value, 3) != 0 else f"{value:.1e}"


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
