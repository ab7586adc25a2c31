"""``rgsynth map``, ``rgsynth evaluate`` and ``rgsynth report``: what a trained run says."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rgsynth.cli.common import (
    FILE,
    SEED,
    RunCache,
    RunFolder,
    arg,
    check_strength,
    errors,
    opt,
    output_folder,
    settings,
    strength_option,
    unseen_option,
)
from rgsynth.config import EvaluationSettings, MapSettings, PerturbationSettings
from rgsynth.errors import UsageError
from rgsynth.layout import EVALUATION_FILENAME, MAPS_DIRNAME, REPORT_RECORD, SCORES_FILENAME

_M, _P, _E = MapSettings, PerturbationSettings, EvaluationSettings  # the options' defaults


def map_command(
    run: RunFolder,
    cache: RunCache = None,
    mcgan: Annotated[Path | None, opt("An MC-GAN run on the same cache, for the t-SNE")] = None,
    gene_sets: Annotated[
        Path | None,
        opt("Programs to perturb: GMT, CSV or ground_truth.json [metagenes]", None, **FILE),
    ] = None,
    clusters: Annotated[int | None, opt("k of the k-means on each code", _M.n_clusters)] = None,
    metagene_min_r: Annotated[
        float | None,
        opt("Metagenes: average |r| where the gene tree is cut", _M.metagene_min_correlation),
    ] = None,
    metagene_min_genes: Annotated[
        int | None, opt("Metagenes: smallest module", _M.metagene_min_genes)
    ] = None,
    top_genes: Annotated[int | None, opt("Single genes to perturb", _M.top_genes)] = None,
    replicates: Annotated[
        int | None, opt("Background/noise/base triples per program", _P.replicates)
    ] = None,
    shift: Annotated[float | None, opt("Perturbation size, z, each way", _P.shift)] = None,
    backgrounds: Annotated[
        int | None, opt("Fixed backgrounds for perturbations", _M.n_backgrounds)
    ] = None,
    seed: Annotated[
        int | None, opt("Seed of clusters, t-SNE, perturbations", _M.seed, **SEED)
    ] = None,
    map_weights: Annotated[
        str | None,
        opt(
            "Which weights the perturbation maps are read from: both (the map snapshot a "
            "focus run keeps at a third of its budget and the final weights, slopes "
            "averaged), snapshot (it alone) or final; a run without a snapshot: final",
            _M.map_weights,
        ),
    ] = None,
    unshrink_unseen: Annotated[
        bool | None,
        unseen_option(
            "Divide the held-out donors' whitened gene scores by a power of the training "
            "donors' leave-one-out shrinkage in the headline map's bases, not its moves "
            "(focus recipes)",
            _M.unshrink_unseen,
        ),
    ] = None,
    unshrink_strength: Annotated[float | None, strength_option(_M.unshrink_strength)] = None,
    force: Annotated[bool, opt("Replace RUN/maps once the new maps are done")] = False,
) -> None:
    """Radiogenomic maps of a run: embeddings, cluster map, conventional and perturbation maps."""
    with errors():
        check_strength(unshrink_unseen, unshrink_strength)
        from rgsynth.analysis.maps import build_maps

        perturbation = settings(PerturbationSettings, shift=shift, replicates=replicates, seed=seed)
        chosen = settings(
            MapSettings,
            n_clusters=clusters,
            metagene_min_correlation=metagene_min_r,
            metagene_min_genes=metagene_min_genes,
            top_genes=top_genes,
            n_backgrounds=backgrounds,
            perturbation=perturbation,
            seed=seed,
            map_weights=map_weights,
            unshrink_unseen=unshrink_unseen,
            unshrink_strength=unshrink_strength,
        )
        summary = build_maps(run, chosen, cache, mcgan, gene_sets, force, typer.echo)
        silhouettes = ", ".join(
            f"{name} {values['silhouette']:.2f}" for name, values in summary["embeddings"].items()
        )
        typer.echo(
            f"wrote {run / MAPS_DIRNAME} in {summary['seconds']:.0f} s; silhouettes: "
            f"{silhouettes}; q < 0.05: conventional {summary['conventional_pairs_q05']}, "
            f"perturbation {summary['perturbation_program_pairs_q05']} program and "
            f"{summary['perturbation_gene_pairs_q05']} gene pairs"
        )


def evaluate(
    run: RunFolder,
    against: Annotated[Path | None, opt("A second run on the same cache (MC-GAN)")] = None,
    truth: Annotated[
        Path | None, opt("A twin's ground_truth.json: score the maps", None, **FILE)
    ] = None,
    cache: RunCache = None,
    per_donor: Annotated[
        int | None, opt("Syntheses per donor for trait fidelity", _E.per_donor)
    ] = None,
    resamples: Annotated[int | None, opt("Bootstrap resamples per interval", _E.resamples)] = None,
    seed: Annotated[
        int | None, opt("Seed of backgrounds, noise, shuffles", _E.seed, **SEED)
    ] = None,
    unshrink_unseen: Annotated[
        bool | None,
        unseen_option(
            "Divide the held-out donors' whitened gene scores by a power of the training "
            "donors' leave-one-out shrinkage in every synthesis scored (focus recipes)",
            _E.unshrink_unseen,
        ),
    ] = None,
    unshrink_strength: Annotated[float | None, strength_option(_E.unshrink_strength)] = None,
) -> None:
    """Score a run: realism, conditioning, ablations and (twin) ground-truth recovery."""
    with errors():
        check_strength(unshrink_unseen, unshrink_strength)
        from rgsynth.analysis.evaluate import evaluate as run_evaluation

        chosen = settings(
            EvaluationSettings, per_donor=per_donor, resamples=resamples, seed=seed,
            unshrink_unseen=unshrink_unseen, unshrink_strength=unshrink_strength,
        )  # fmt: skip
        report = run_evaluation(run, chosen, cache, against, truth, typer.echo)
        echo_scores(run, list(report["models"]))
        typer.echo(f"wrote {run / EVALUATION_FILENAME} in {report['seconds']:.0f} s")


def echo_scores(run: Path, models: list[str]) -> None:
    """The headline numbers, read back from the run's score records."""
    from rgsynth.metrics.records import CONVENTIONAL, ScoreTable, read_scores

    scores = ScoreTable(read_scores(run / SCORES_FILENAME))
    for model in models:
        line = (
            f"{model}: FRD {scores.value(model, 'matched', 'frd'):.2f}, two-sample accuracy "
            f"{scores.value(model, 'matched', 'two_sample_accuracy'):.2f}, donor AUROC "
            f"{scores.value(model, 'matched', 'donor_auroc'):.2f} (shuffled genes "
            f"{scores.value(model, 'shuffled genes', 'donor_auroc'):.2f})"
        )
        if (auroc := scores.get(model, "perturbation map", "auroc")) is not None:
            found = scores.value(model, "perturbation map", "true_pairs_found")
            interval = f" [{auroc.ci_low:.2f}, {auroc.ci_high:.2f}]" if auroc.has_interval else ""
            line += f", map AUROC {auroc.value:.2f}{interval}, true pairs found {found:.0%}"
        typer.echo(line)
    if scores.get(CONVENTIONAL, "as_discovered", "auroc") is not None:
        discovered = scores.value(CONVENTIONAL, "as_discovered", "auroc")
        true_programs = scores.value(CONVENTIONAL, "with_true_programs", "auroc")
        bound = scores.value(CONVENTIONAL, "sampling_bound", "auroc")
        typer.echo(
            f"conventional (training donors): map AUROC {discovered:.2f} "
            f"(true programs as metagenes: {true_programs:.2f}; sampling bound {bound:.2f})"
        )


def report(
    run: Annotated[Path, arg("A run folder after `rgsynth map` and `evaluate`.")],
    out: Annotated[Path | None, opt("Report folder [RUN/report; replaced when complete]")] = None,
) -> None:
    """A self-contained HTML report (and its figures and tables) from a run folder alone."""
    with errors():
        from rgsynth.report.build import build_report

        _check_report_folder(out)
        build_report(run, out, typer.echo)


def _check_report_folder(out: Path | None) -> None:
    """The report replaces ``--out`` once the new one is complete: refuse a file, or a
    folder of other files, rather than delete it."""
    output_folder(out, "--out")
    if out is not None and out.is_dir() and any(out.iterdir()):
        if not (out / REPORT_RECORD).is_file():
            raise UsageError(
                f"--out {out}: holds files but no {REPORT_RECORD}, so it is not a report to "
                "replace; choose an empty or new folder"
            )
