"""``rgsynth map RUN``: every radiogenomic map of a run, as CSV/JSON tables and PNG figures.

Written to ``RUN/maps/`` (staged, moved into place when complete)::

    real_features.csv        image features of each subject's widest real nodule slice
    gene_codes.csv           the run's gene code of every subject (gene_codes_mcgan.csv too)
    embedding.csv / .json / .png   t-SNE and k-means of raw genes, MC-GAN's code, ours
    cluster_features.csv     features across the proposed code's clusters (Kruskal–Wallis, BH)
    cluster_genes.csv        genes across those clusters
    metagenes.csv            the conventional pipeline's co-expression metagenes
    conventional_map.csv / .png   Spearman ρ, metagene × feature, BH
    perturbation_programs.csv / .png   the generator's program × feature effects
    perturbation_genes.csv   the same for single genes (the ones the network weighs most)
    maps.json                settings, silhouettes, counts, timing
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rgsynth.analysis.cohort import CohortView, load_cohort
from rgsynth.analysis.embedding import Embedding, embed, embedding_figure
from rgsynth.analysis.features import FeatureExtractor
from rgsynth.analysis.perturbation import perturbation_map, program_matrix
from rgsynth.analysis.statistics import cluster_tests, metagenes, spearman_map
from rgsynth.config import MapSettings
from rgsynth.data import CacheError
from rgsynth.fsutil import atomic_write_json, atomic_write_text, staged_directory
from rgsynth.inference import Synthesizer, TrainedRun, load_run_pair
from rgsynth.layout import (
    CLUSTER_FEATURES_CSV,
    CLUSTER_GENES_CSV,
    CONVENTIONAL_MAP_CSV,
    EMBEDDING_CSV,
    MAPS_DIRNAME,
    MAPS_SUMMARY_FILENAME,
    METAGENES_CSV,
    REAL_FEATURES_CSV,
)
from rgsynth.models.registry import gene_codes, get_spec
from rgsynth.plotting import pyplot, save_png
from rgsynth.prepare.cache import Cache, cache_prepare_config
from rgsynth.synthesize.backgrounds import cache_backgrounds
from rgsynth.synthesize.profiles import GeneSet, read_gene_sets

log = logging.getLogger(__name__)


def build_maps(
    run_dir: Path,
    settings: MapSettings,
    cache_root: Path | None = None,
    mcgan_run: Path | None = None,
    gene_sets_path: Path | None = None,
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Compute every map of ``run_dir`` and write them under ``run_dir/maps``."""
    start = time.perf_counter()
    run, other = load_run_pair(run_dir, mcgan_run, cache_root)
    others = [other] if other else []
    cohort = load_cohort(run.cache_root)
    needed = settings.n_clusters + 1  # k-means and its silhouette need k < subjects
    if len(cohort.subject_ids) < needed:
        raise CacheError(
            f"{run.cache_root}: {len(cohort.subject_ids)} subjects with genes and a nodule; "
            f"the maps need at least {needed}"
        )
    echo(f"maps of {run_dir} on {len(cohort.subject_ids)} subjects with genes and a nodule")
    gene_sets = read_gene_sets(gene_sets_path) if gene_sets_path else None
    with staged_directory(Path(run_dir) / MAPS_DIRNAME, replace=force) as out:
        features = cohort.features()
        atomic_write_text(out / REAL_FEATURES_CSV, features.to_csv(index_label="subject_id"))
        echo("  embeddings: k-means, silhouettes, t-SNE")
        mapped = [*others, run]
        embeddings = _embeddings(cohort, mapped, settings)
        hu_window = cache_prepare_config(run.cache_root).hu_window
        _write_embeddings(out, cohort, embeddings, mapped, hu_window)
        echo("  cluster map and conventional pipeline")
        summary, metagene_sets = _cluster_and_conventional(
            out, cohort, embeddings[-1], features, settings
        )
        programs = gene_sets or metagene_sets
        echo(
            f"  perturbation map: {len(programs)} programs and {settings.top_genes} genes, "
            f"{settings.perturbation.replicates} up/down pairs each"
        )
        summary |= _perturbation(out, run, cohort, features, programs, gene_sets is None, settings)
        summary |= {
            "format": "rgsynth-maps/1",
            "run": str(Path(run_dir).resolve()),
            "checkpoint_step": run.step,
            "cache_fingerprint": run.cache_fingerprint,
            "mcgan_run": str(Path(mcgan_run).resolve()) if other else None,
            "mcgan_checkpoint_step": other.step if other else None,
            "gene_sets": str(gene_sets_path) if gene_sets_path else None,
            "embeddings": {
                e.name: {"silhouette": e.silhouette, "silhouette_tsne": e.silhouette_tsne}
                for e in embeddings
            },
            "settings": asdict(settings),
            "seconds": round(time.perf_counter() - start, 1),
        }
        atomic_write_json(out / MAPS_SUMMARY_FILENAME, summary)
    return summary


def _embeddings(
    cohort: CohortView, runs: list[TrainedRun], settings: MapSettings
) -> list[Embedding]:
    spaces = [("raw genes", cohort.genes)]
    for run in runs:
        codes = gene_codes(run.generator, torch.as_tensor(cohort.genes)).numpy()
        spaces.append((get_spec(run.config.model.architecture).code_name, codes))
    return [embed(name, codes, settings.n_clusters, settings.seed) for name, codes in spaces]


def _write_embeddings(
    out: Path,
    cohort: CohortView,
    embeddings: list[Embedding],
    runs: list[TrainedRun],
    hu_window: tuple[float, float],
) -> None:
    # embeddings[0] is the raw genes (they are in the cache); then one per run
    for embedding, run in zip(embeddings[1:], runs, strict=True):
        stem = get_spec(run.config.model.architecture).code_file_stem
        codes = pd.DataFrame(embedding.codes, index=cohort.subject_ids)
        codes.columns = [f"code_{n}" for n in range(codes.shape[1])]
        atomic_write_text(out / f"{stem}.csv", codes.to_csv(index_label="subject_id"))
    table = pd.DataFrame({"subject_id": cohort.subject_ids, "split": cohort.split})
    for e in embeddings:
        table[f"{e.name} tsne_x"], table[f"{e.name} tsne_y"] = e.tsne[:, 0], e.tsne[:, 1]
        table[f"{e.name} cluster"] = e.clusters + 1
    atomic_write_text(out / EMBEDDING_CSV, table.to_csv(index=False))
    embedding_figure(embeddings, cohort.nodule_hu, out / "embedding.png", hu_window)


def _cluster_and_conventional(
    out: Path,
    cohort: CohortView,
    ours: Embedding,
    features: pd.DataFrame,
    settings: MapSettings,
) -> tuple[dict[str, Any], dict[str, GeneSet]]:
    """Cluster tests and the conventional pipeline; returns counts and the metagenes as
    gene sets (the perturbation map's programs when no gene-set file is given)."""
    by_feature = cluster_tests(ours.clusters, features)
    genes = pd.DataFrame(cohort.genes, index=cohort.subject_ids, columns=cohort.gene_names)
    by_gene = cluster_tests(ours.clusters, genes)
    atomic_write_text(out / CLUSTER_FEATURES_CSV, by_feature.to_csv(index=False))
    atomic_write_text(out / CLUSTER_GENES_CSV, by_gene.to_csv(index=False))
    found = metagenes(
        cohort.genes,
        cohort.gene_names,
        cohort.subject_ids,
        settings.metagene_min_correlation,
        settings.metagene_min_genes,
    )
    atomic_write_text(out / METAGENES_CSV, found.membership.to_csv(index=False))
    conventional = spearman_map(found.scores, features)
    atomic_write_text(out / CONVENTIONAL_MAP_CSV, conventional.to_csv(index=False))
    heatmap(
        conventional,
        "rho",
        "conventional pipeline: Spearman ρ, metagene × feature",
        out / "conventional_map.png",
    )
    programs = {
        name: GeneSet(name, tuple(rows["gene"]), tuple(rows["sign"]))
        for name, rows in found.membership.groupby("metagene", sort=True)
    }
    counts = {
        "cluster_features_q05": int((by_feature["q"] < 0.05).sum()),
        "cluster_genes_q05": int((by_gene["q"] < 0.05).sum()),
        "conventional_pairs_q05": int((conventional["q"] < 0.05).sum()),
        "n_metagenes": int(found.scores.shape[1]),
        "genes_in_metagenes": len(found.membership),
    }
    return counts, programs


def _perturbation(
    out: Path,
    run: TrainedRun,
    cohort: CohortView,
    features: pd.DataFrame,
    gene_sets: dict[str, GeneSet],
    from_metagenes: bool,
    settings: MapSettings,
) -> dict[str, Any]:
    programs = program_matrix(gene_sets, cohort.gene_names)
    singles = _top_genes(run, cohort.gene_names, settings.top_genes)
    backgrounds = _fixed_backgrounds(run.cache_root, settings)
    synthesizer = Synthesizer(run.generator)
    extractor = FeatureExtractor(cohort.pixel_mm)
    hu_window = cache_prepare_config(run.cache_root).hu_window
    scale = features.std()
    results = {}
    for name, matrix in (("programs", programs), ("genes", singles)):
        results[name] = perturbation_map(
            synthesizer,
            extractor,
            matrix,
            backgrounds,
            cohort.genes,
            hu_window,
            settings.perturbation,
            scale,
            on_program=lambda program: log.info("perturbation map: %s done", program),
        )
        atomic_write_text(out / f"perturbation_{name}.csv", results[name].to_csv(index=False))
    heatmap(
        results["programs"],
        "effect_sd",
        f"perturbation map: effect of ±{settings.perturbation.shift:g} z, in real-nodule SDs",
        out / "perturbation_programs.png",
    )
    return {
        "perturbation_programs_from": "metagenes" if from_metagenes else "gene-set file",
        "perturbation_program_pairs_q05": int((results["programs"]["q"] < 0.05).sum()),
        "perturbation_gene_pairs_q05": int((results["genes"]["q"] < 0.05).sum()),
    }


def _top_genes(run: TrainedRun, gene_names: list[str], count: int) -> pd.DataFrame:
    """Single-gene 'programs' for the genes the network's first gene layer weighs most."""
    weight = run.generator.gene_input_weight().detach().norm(dim=0).numpy()
    chosen = np.argsort(-weight)[: min(count, len(gene_names))]
    matrix = np.zeros((len(chosen), len(gene_names)), np.float32)
    matrix[np.arange(len(chosen)), chosen] = 1.0
    return pd.DataFrame(matrix, index=[gene_names[c] for c in chosen], columns=gene_names)


def _fixed_backgrounds(cache_root: Path, settings: MapSettings) -> np.ndarray:
    rng = np.random.default_rng([settings.seed, 3])
    manifest = Cache(cache_root).manifest()
    val = sum(s["n_background_slices"] for s in manifest["subjects"] if s["split"] == "val")
    split = "val" if val >= settings.n_backgrounds else "all"
    patches = cache_backgrounds(cache_root, split, settings.n_backgrounds, rng)
    return np.stack([p.patch for p in patches])


def heatmap(table: pd.DataFrame, value: str, title: str, path: Path) -> Path | None:
    """Programs × features of ``value``, diverging around 0; * marks q < 0.05. Nothing
    is drawn for an empty table (no metagene found, say)."""
    if table.empty:
        return None
    plt = pyplot()
    matrix = table.pivot(index="program", columns="feature", values=value)
    matrix = matrix[[c for c in table["feature"].unique()]]
    q = table.pivot(index="program", columns="feature", values="q").loc[
        matrix.index, matrix.columns
    ]
    limit = (
        float(np.nanmax(np.abs(matrix.to_numpy()))) if np.isfinite(matrix.to_numpy()).any() else 1.0
    )
    fig, ax = plt.subplots(
        figsize=(2.0 + 0.6 * matrix.shape[1], 2.6 + 0.35 * matrix.shape[0]), layout="constrained"
    )
    image = ax.imshow(matrix.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    for (i, j), q_value in np.ndenumerate(q.to_numpy()):
        if q_value < 0.05:
            ax.text(j, i, "*", ha="center", va="center", fontsize=10)
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(matrix.shape[0]), matrix.index, fontsize=8)
    fig.colorbar(image, ax=ax, label=value)
    ax.set_title(title, fontsize=9)
    return save_png(fig, path, dpi=100)
