"""``rgsynth map RUN``: every radiogenomic map of a run, as CSV/JSON tables and PNG figures.

Written to ``RUN/maps/`` (staged, moved into place when complete)::

    real_features.csv        image features of each subject's widest real nodule slice
    gene_codes.csv           the run's gene code of every subject (gene_codes_mcgan.csv too)
    embedding.csv / .json / .png   t-SNE and k-means of raw genes, MC-GAN's code, ours
    cluster_features.csv     features across the proposed code's clusters (Kruskal–Wallis, BH)
    cluster_genes.csv        genes across those clusters
    metagenes.csv            the conventional pipeline's co-expression metagenes
    conventional_map.csv / .png   Spearman ρ, metagene × feature, BH
    perturbation_programs.csv / .png   the generator's program × feature / trait effects
                             (the headline rule; perturbation_programs_<rule>_rule.csv
                             for the others, see :mod:`rgsynth.analysis.perturbation`)
    perturbation_empty.csv   the share of empty masks per program and arm
    perturbation_genes.csv   the same for single genes (the ones the network weighs most)
    program_sweep.png        per program, nodules at −2 … +2 SD on one background
    maps.json                settings, silhouettes, counts, timing
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from rgsynth.analysis.cohort import CohortView, load_cohort
from rgsynth.analysis.embedding import Embedding, embed, embedding_figure
from rgsynth.analysis.features import FeatureExtractor
from rgsynth.analysis.perturbation import (
    AXIS_ARMS,
    GENES_ARMS,
    PerturbationResult,
    perturbation_map,
    program_axes,
    program_matrix,
)
from rgsynth.analysis.readout import load_readout
from rgsynth.analysis.statistics import cluster_tests, metagenes, spearman_map
from rgsynth.config import MapSettings
from rgsynth.data import CacheError
from rgsynth.fsutil import atomic_write_json, atomic_write_text, staged_directory
from rgsynth.inference import Synthesizer, TrainedRun, load_run_pair
from rgsynth.intensity import unit_to_hu
from rgsynth.layout import (
    CLUSTER_FEATURES_CSV,
    CLUSTER_GENES_CSV,
    CONVENTIONAL_MAP_CSV,
    EMBEDDING_CSV,
    MAPS_DIRNAME,
    MAPS_SUMMARY_FILENAME,
    METAGENES_CSV,
    PERTURBATION_EMPTY_CSV,
    PROGRAM_SWEEP_PNG,
    REAL_FEATURES_CSV,
    perturbation_filename,
)
from rgsynth.models.registry import gene_codes, get_spec
from rgsynth.plotting import pyplot, save_png
from rgsynth.prepare.cache import Cache, cache_prepare_config
from rgsynth.synthesize.backgrounds import cache_backgrounds
from rgsynth.synthesize.profiles import GeneSet, read_gene_sets

log = logging.getLogger(__name__)
SWEEP_STEPS = (-2.0, -1.0, 0.0, 1.0, 2.0)


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
        generators = run.map_generators(settings.map_weights)
        over = ", ".join(f"{w} weights (step {k})" for w, k, _ in generators)
        echo(
            f"  perturbation map: {len(programs)} programs and {settings.top_genes} genes, "
            f"{settings.perturbation.replicates} up/down pairs each, read from the {over}"
        )
        summary |= _perturbation(
            out, run, generators, cohort, features, programs, gene_sets is None, settings
        )
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
    generators: list[tuple[str, int, nn.Module]],
    cohort: CohortView,
    features: pd.DataFrame,
    gene_sets: dict[str, GeneSet],
    from_metagenes: bool,
    settings: MapSettings,
) -> dict[str, Any]:
    programs = program_matrix(gene_sets, cohort.gene_names)
    singles = _top_genes(run, cohort.gene_names, settings.top_genes)
    backgrounds = _fixed_backgrounds(run.cache_root, settings)
    hu_window = cache_prepare_config(run.cache_root).hu_window
    # Unseen donors' scores unshrunk where asked, if the run has fitted components and the
    # map's bases are held-out donors (a cohort without a held-out split has none); the
    # move along each program stays the yardstick's step
    unseen_bases = cohort.scoring_split() != "all"
    unseen = (
        run.unseen_synthesizers(
            [generator for _, _, generator in generators], settings.unshrink_strength
        )
        if settings.unshrink_unseen and unseen_bases
        else None
    )
    divisor = None if unseen is None else unseen[0].unseen_shrinkage  # s ** strength
    # Each replicate's slope is the mean over ``generators`` (run.map_generators: by
    # default the final weights and, where the run kept one, its map snapshot; issue 16's
    # ninth round)
    maps = perturbation_maps(
        [Synthesizer(generator) for _, _, generator in generators],
        cohort,
        features,
        programs,
        backgrounds,
        hu_window,
        settings,
        singles=singles,
        on_program=lambda program: log.info("perturbation map: %s done", program),
        unseen=unseen,
        unseen_move=1.0 if divisor is None else divisor,  # the base unshrunk, not the move
    )
    for name, result in maps.items():
        atomic_write_text(out / perturbation_filename(name), result.table.to_csv(index=False))
    empty = pd.concat([r.empty.assign(map=name) for name, r in maps.items()], ignore_index=True)
    atomic_write_text(out / PERTURBATION_EMPTY_CSV, empty.to_csv(index=False))
    headline = settings.perturbation.rules[0]
    heatmap(
        maps["programs"].table,
        "effect_sd",
        f"perturbation map ({headline} rule): effect per program step, in real-nodule SDs",
        out / "perturbation_programs.png",
    )
    sweep_figure(  # from the training donors' mean: no unseen donor, painted as it is
        Synthesizer(run.generator),
        cohort,
        programs,
        backgrounds,
        hu_window,
        settings,
        out / PROGRAM_SWEEP_PNG,
        get_spec(run.config.model.architecture).display_name,
    )
    return {
        "perturbation_generators": [
            {"weights": which, "step": step} for which, step, _ in generators
        ],
        "perturbation_programs_from": "metagenes" if from_metagenes else "gene-set file",
        "perturbation_rules": list(settings.perturbation.rules),
        # the run's leave-one-out shrinkage s, the power of it the bases were divided by
        # (a file without the power: 1) and the divisor s ** power
        "perturbation_unseen_shrinkage": None if divisor is None else run.unseen_shrinkage(),
        "perturbation_unseen_strength": None if divisor is None else settings.unshrink_strength,
        "perturbation_unseen_divisor": divisor,
        # what the divisor divided (issue 16's eighteenth round divided base and move)
        "perturbation_unseen_divides": None if divisor is None else "bases",
        "perturbation_program_pairs_q05": int((maps["programs"].table["q"] < 0.05).sum()),
        "perturbation_gene_pairs_q05": int((maps["genes"].table["q"] < 0.05).sum()),
    }


def perturbation_maps(
    synthesizer: Callable | Sequence[Callable],
    cohort: CohortView,
    features: pd.DataFrame,
    programs: pd.DataFrame,
    backgrounds: np.ndarray,
    hu_window: tuple[float, float],
    settings: MapSettings,
    singles: pd.DataFrame | None = None,
    on_program: Callable[[str], None] | None = None,
    unseen: Callable | Sequence[Callable] | None = None,
    unseen_move: float = 1.0,
) -> dict[str, PerturbationResult]:
    """Every perturbation map of one generator (the reference, or several runs whose
    slopes are averaged, as ``perturbation_map`` does): the programs under each rule
    (``programs`` is the headline rule's, ``programs:<rule>`` the others'), and single
    genes (``genes``, moved ±shift z, the headline rule's bases). ``unseen``: what paints
    the maps whose bases are the held-out donors (the ``axis`` rule's), told they are
    unseen (``MapSettings.unshrink_unseen``); None: ``synthesizer`` paints every map.
    ``unseen_move``: those maps' moves are multiplied by it in gene space. With ``unseen``
    dividing whitened scores by a shrinkage s, ``unseen_move=s`` leaves the move in score
    space as the yardstick defines it, so only the base is unshrunk (issue 16's
    nineteenth round: the move is built from the training donors, and the reference and
    classic maps are read at that step)."""
    unseen = synthesizer if unseen is None else unseen
    readout = load_readout()
    extractor = FeatureExtractor(cohort.pixel_mm)
    scale = features.std(numeric_only=True)
    train, validation = cohort.split_genes("train"), cohort.split_genes(cohort.scoring_split())
    perturbation = settings.perturbation
    results = {}
    for n, rule in enumerate(perturbation.rules):
        if rule == "axis":
            directions, arms, bases = program_axes(programs, train), AXIS_ARMS, validation
            directions = directions * unseen_move
        else:
            directions, arms, bases = programs * perturbation.shift, GENES_ARMS, cohort.genes
        results["programs" if n == 0 else f"programs:{rule}"] = perturbation_map(
            unseen if rule == "axis" else synthesizer,
            extractor,
            readout,
            directions,
            arms,
            backgrounds,
            bases,
            hu_window,
            perturbation,
            scale,
            empty_as_size_zero=rule == "axis",
            on_program=on_program,
        )
    if singles is not None:
        headline = perturbation.rules[0]
        results["genes"] = perturbation_map(
            unseen if headline == "axis" else synthesizer,
            extractor,
            readout,
            singles * perturbation.shift * (unseen_move if headline == "axis" else 1.0),
            GENES_ARMS,
            backgrounds,
            validation if headline == "axis" else cohort.genes,
            hu_window,
            perturbation,
            scale,
            empty_as_size_zero=headline == "axis",
        )
    return results


def sweep_figure(
    synthesizer: Callable,
    cohort: CohortView,
    programs: pd.DataFrame,
    backgrounds: np.ndarray,
    hu_window: tuple[float, float],
    settings: MapSettings,
    path: Path,
    title: str,
) -> Path | None:
    """The map as a picture: per program, nodules at −2 … +2 SD along its training axis
    from the mean profile, on one fixed background and noise seed."""
    if programs.empty:
        return None
    train = cohort.split_genes("train")
    axes_ = program_axes(programs, train)
    steps = np.array(SWEEP_STEPS, np.float32)
    base = train.mean(axis=0).astype(np.float32)
    background = backgrounds[:1]
    seed = int(np.random.default_rng([settings.seed, 8]).integers(2**31))
    plt = pyplot()
    rows, cols = len(axes_), len(steps)
    fig, grid = plt.subplots(
        rows,
        cols,
        figsize=(1.3 * cols + 0.8, 1.3 * rows + 0.6),
        squeeze=False,
        layout="constrained",
    )
    low, high = (-1000.0, 200.0)
    for i, (name, axis) in enumerate(axes_.iterrows()):
        profiles = base[None] + steps[:, None] * axis.to_numpy(np.float32)[None]
        result = synthesizer(np.repeat(background, cols, axis=0), profiles, [seed] * cols)
        for j in range(cols):
            ax = grid[i, j]
            ax.imshow(unit_to_hu(result.image[j], hu_window), cmap="gray", vmin=low, vmax=high)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{steps[j]:+g} SD", fontsize=8)
            if j == 0:
                ax.set_ylabel(str(name), fontsize=8)
    fig.suptitle(f"program sweep: {title}", fontsize=9)
    return save_png(fig, path, dpi=90)


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
