"""The ``rgsynth`` command line: parse, build a config, make one call. Heavy imports are lazy."""

from __future__ import annotations

import io
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from rgsynth.errors import RgsynthError, UsageError
from rgsynth.layout import (
    DEMO_BUDGET_FILENAME,
    EVALUATION_FILENAME,
    GROUND_TRUTH_FILENAME,
    MAPS_DIRNAME,
    MAPS_SUMMARY_FILENAME,
    METADATA_FILENAME,
    REPORT_DIRNAME,
    SCORES_FILENAME,
    SYNTHESIS_SUMMARY_FILENAME,
)
from rgsynth.models.config import DEFAULT_ARCHITECTURE

app = typer.Typer(
    name="rgsynth",
    help="Radiogenomic synthesis: gene-conditioned lung-nodule GAN and radiogenomic maps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts say "[default: …]" in brackets: not markup
)
log = logging.getLogger("rgsynth")


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Per-subject logging.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("highdicom").setLevel(logging.WARNING)  # its INFO is per attribute
    # Line-buffered even into a file or pipe: progress shows as it happens, and a forked
    # worker (data loading, prepare) cannot flush a copy of unwritten lines at its exit.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)


@app.command("synth-cohort")
def synth_cohort(
    out: Annotated[Path, typer.Argument(help="Folder to create (must not exist, see --force).")],
    subjects: Annotated[int | None, typer.Option(help="Number of subjects [preset's].")] = None,
    seed: Annotated[int, typer.Option(help="Master seed; the cohort is a function of it.")] = 0,
    preset: Annotated[
        str, typer.Option(help="tiny (tests), demo, or paper (real sizes).")
    ] = "demo",
    workers: Annotated[int | None, typer.Option(help="Parallel processes [CPU count].")] = None,
    force: Annotated[
        bool, typer.Option(help="Replace OUT once the new cohort is complete.")
    ] = False,
) -> None:
    """Write a synthetic NSCLC Radiogenomics cohort (DICOM CT + SEG, RNA-seq, clinical, truth)."""
    with _errors():
        _synth_cohort(out, subjects, seed, preset, workers, force)


def _synth_cohort(
    out: Path, subjects: int | None, seed: int, preset: str, workers: int | None, force: bool
) -> None:
    from rgsynth.twin.cohort import generate_cohort

    config = _twin_config(preset, seed, subjects)
    start = time.perf_counter()
    with _progress(
        f"twin cohort ({config.preset}, seed {config.seed})", config.n_subjects
    ) as advance:
        generate_cohort(out, config, workers=workers, force=force, on_subject=advance)
    typer.echo(
        f"wrote {config.n_subjects} subjects to {out} in {time.perf_counter() - start:.1f} s"
    )


@app.command()
def view(
    cohort: Annotated[Path, typer.Argument(help="A cohort folder (with metadata.csv).")],
    out: Annotated[Path | None, typer.Option(help="PNG to write [COHORT/qc_montage.png].")] = None,
    max_subjects: Annotated[int, typer.Option(help="Subjects to show.")] = 24,
    columns: Annotated[int, typer.Option(help="Subjects per montage row.")] = 4,
) -> None:
    """QC montage: an axial slice through each nodule (lung window) with its SEG contour."""
    with _errors():
        path = _view(cohort, out, max_subjects, columns)
        typer.echo(f"wrote {path}")


def _view(cohort: Path, out: Path | None, max_subjects: int, columns: int) -> Path:
    if not (cohort / METADATA_FILENAME).is_file():
        raise UsageError(f"{cohort}: no metadata.csv; is this a cohort folder?")
    from rgsynth.io.montage import load_views, save_montage

    with _progress("reading nodules", max_subjects) as advance:
        views = load_views(cohort, max_subjects, on_subject=advance)
    return save_montage(views, out or cohort / "qc_montage.png", columns=columns)


@app.command()
def prepare(
    cohort: Annotated[Path, typer.Argument(help="TCIA download or images/ + masks/ folder.")],
    out: Annotated[Path, typer.Option(help="Cache folder to create or resume.")],
    layout: Annotated[str, typer.Option("--format", help="auto, tcia or folder.")] = "auto",
    genes_file: Annotated[
        Path | None, typer.Option("--genes", help="Expression table [found in COHORT].")
    ] = None,
    clinical: Annotated[Path | None, typer.Option(help="Clinical CSV [found in COHORT].")] = None,
    size: Annotated[int, typer.Option(help="VOI edge in pixels (64 CPU, 128 paper).")] = 64,
    backgrounds: Annotated[int, typer.Option(help="Background VOI centres per subject.")] = 4,
    background_slices: Annotated[int, typer.Option(help="Random slices per background VOI.")] = 20,
    val_fraction: Annotated[float, typer.Option(help="Subjects held out for validation.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the split and background sampling.")] = 0,
    max_slice_mm: Annotated[float, typer.Option(help="Refuse series thicker than this.")] = 5.0,
    gene_transform: Annotated[
        str, typer.Option(help="log2p1 (counts/FPKM) or none (already logged).")
    ] = "log2p1",
    workers: Annotated[int | None, typer.Option(help="Parallel processes [CPU count].")] = None,
    on_error: Annotated[
        str, typer.Option(help="fail: stop at the first bad input; skip: record it, go on.")
    ] = "fail",
    force: Annotated[
        bool, typer.Option(help="Rebuild a cache made with other settings or inputs.")
    ] = False,
) -> None:
    """Cohort files → training cache: nodule VOI slices, lung backgrounds, genes, split."""
    with _errors():
        from rgsynth.config import PrepareConfig

        if on_error not in ("fail", "skip"):
            raise UsageError(f"--on-error must be fail or skip, got {on_error!r}")
        if layout not in ("auto", "tcia", "folder"):
            raise UsageError(f"--format must be auto, tcia or folder, got {layout!r}")
        try:
            config = PrepareConfig(
                size=size,
                background_centres=backgrounds,
                background_slices=background_slices,
                val_fraction=val_fraction,
                seed=seed,
                max_slice_mm=max_slice_mm,
                gene_transform=gene_transform,
            )
        except ValueError as error:
            raise UsageError(str(error)) from None
        _prepare(cohort, out, config, layout, genes_file, clinical, workers, on_error, force)


def _prepare(cohort, out, config, layout, genes_file, clinical, workers, on_error, force):
    from rgsynth.prepare.run import find_inputs, prepare_cache

    start = time.perf_counter()
    inputs = find_inputs(cohort, layout, genes_file, clinical)
    typer.echo(f"{inputs.kind} cohort {cohort}: {len(inputs.sources)} subjects with images")
    with _progress("preparing", len(inputs.sources)) as advance:
        manifest = prepare_cache(
            inputs,
            out,
            config,
            workers=workers,
            on_error=on_error,
            force=force,
            on_subject=advance,
            echo=typer.echo,
        )
    typer.echo(
        f"cache {out} ready in {time.perf_counter() - start:.1f} s; QC: "
        f"{out / manifest['qc_montage']}"
    )
    return manifest


@app.command()
def train(
    cache: Annotated[Path, typer.Argument(help="A cache written by `rgsynth prepare`.")],
    run: Annotated[Path, typer.Argument(help="Run folder (checkpoints, stats, samples).")],
    steps: Annotated[int | None, typer.Option(help="Stop at this total step count.")] = None,
    minutes: Annotated[float | None, typer.Option(help="Stop after this much time.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue RUN's checkpoint exactly.")] = False,
    model: Annotated[
        str,
        typer.Option(
            help="Architecture: the paper's GAN [default], or the MC-GAN baseline (mcgan)."
        ),
    ] = DEFAULT_ARCHITECTURE,
    precision: Annotated[str, typer.Option(help="fp32, or bf16 autocast.")] = "fp32",
    batch_size: Annotated[
        int | None, typer.Option(help="Examples per step per process [model's: 16 / 32].")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Adam lr of G and D [1e-4 / 2e-4].")] = None,
    base_channels: Annotated[int, typer.Option(help="Channels at full resolution.")] = 32,
    max_channels: Annotated[int, typer.Option(help="Cap on channels at coarse levels.")] = 256,
    gene_hidden: Annotated[int, typer.Option(help="Hidden width of the gene mapping.")] = 512,
    seed: Annotated[int, typer.Option(help="Seed of weights, data order and noise.")] = 0,
    log_every: Annotated[int, typer.Option(help="Steps between stats lines.")] = 10,
    sample_every: Annotated[int, typer.Option(help="Steps between sample grids.")] = 200,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 200,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Train the paper's GAN on a cache; `torchrun --nproc_per_node=K` runs it with DDP."""
    with _errors():
        from rgsynth.config import ModelConfig, TrainConfig

        if steps is None and minutes is None:
            raise UsageError("give --steps N or --minutes M (or both)")
        try:  # batch size, lr and loss weights left None are the model's own
            config = TrainConfig(
                model=ModelConfig(
                    architecture=model,
                    base_channels=base_channels,
                    max_channels=max_channels,
                    gene_hidden=gene_hidden,
                ),
                seed=seed,
                precision=precision,
                log_every=log_every,
                sample_every=sample_every,
                checkpoint_every=checkpoint_every,
                batch_size=batch_size,
                lr=lr,
            ).resolved()
        except ValueError as error:
            raise UsageError(str(error)) from None
        _train(cache, run, config, steps, minutes, resume, device)


def _train(cache, run, config, steps, minutes, resume, device):
    from rgsynth.train.distributed import setup, teardown
    from rgsynth.train.loop import Trainer

    info = setup(device)
    try:
        trainer = Trainer(cache, run, config, info, resume=resume)
        if info.is_main:
            model = trainer.config.model
            typer.echo(
                f"training {model.architecture} {model.image_size}² on {len(trainer.dataset)} "
                f"nodule slices of "
                f"{len(trainer.data.subject_ids)} subjects, {model.n_genes} genes, "
                f"{info.world_size} process(es) on {info.device}, from step "
                f"{trainer.position.step}" + (" (settings from the checkpoint)" if resume else "")
            )
        total = steps if steps is not None else trainer.position.step + 10**6
        with _progress("training", total) as advance:
            on_step = (lambda step, terms: advance(f"step {step}")) if info.is_main else None
            summary = trainer.run(steps, minutes, on_step=on_step)
        if info.is_main:
            _echo_training_summary(summary, run)
    finally:
        teardown(info)


def _echo_training_summary(summary: dict, run: Path) -> None:
    last = summary["history"][-1] if summary["history"] else {}
    losses = (
        f"D {last['D/total']:.3f}, G {last['G/total']:.3f}, background L1 "
        f"{last['G/background_l1']:.4f}; "
        if last
        else ""
    )
    typer.echo(
        f"stopped at step {summary['steps']} after {summary['seconds']:.0f} s; {losses}"
        f"samples: {run / 'samples' / 'latest.png'}"
    )


@app.command()
def synthesize(
    run: Annotated[Path, typer.Argument(help="A run folder written by `rgsynth train`.")],
    out: Annotated[Path, typer.Argument(help="Output folder to create (see --force).")],
    cache: Annotated[
        Path | None, typer.Option(help="The run's cache [the one recorded in the run].")
    ] = None,
    subject: Annotated[
        list[str] | None, typer.Option(help="Genes of this cache subject (repeatable).")
    ] = None,
    expression: Annotated[
        Path | None, typer.Option(help="Your expression table (raw, as the cohort's).")
    ] = None,
    table_subject: Annotated[
        list[str] | None, typer.Option(help="Row(s) of --expression to use [all].")
    ] = None,
    set_gene: Annotated[
        list[str] | None, typer.Option("--set", help="GENE=Z: set a gene's z-score (repeatable).")
    ] = None,
    set_program: Annotated[
        list[str] | None,
        typer.Option(help="PROGRAM=Z: set every gene of a gene set to ±Z (repeatable)."),
    ] = None,
    gene_sets: Annotated[
        Path | None, typer.Option(help="Programs: GMT, CSV (set,gene,weight) or ground_truth.json.")
    ] = None,
    ct: Annotated[
        list[Path] | None,
        typer.Option(help="A CT to paint into: DICOM series folder or NIfTI file (repeatable)."),
    ] = None,
    at_mm: Annotated[
        list[str] | None, typer.Option(help="X,Y,Z: a location in patient mm (repeatable).")
    ] = None,
    at_voxel: Annotated[
        list[str] | None, typer.Option(help="I,J,K: a voxel index of the CT as stored.")
    ] = None,
    random_locations: Annotated[
        int, typer.Option(help="Random lung locations per CT (5–25 mm deep, as prepare).")
    ] = 0,
    backgrounds: Annotated[
        int | None, typer.Option(help="Cache background slices to use [8 without --ct].")
    ] = None,
    split: Annotated[
        str, typer.Option(help="Cache split of the backgrounds: val, train, all.")
    ] = "val",
    per_background: Annotated[
        int, typer.Option(help="Nodules per background and gene profile (new noise each).")
    ] = 1,
    seed: Annotated[int, typer.Option(help="The batch is a function of this seed.")] = 0,
    margin_mm: Annotated[
        float, typer.Option(help="Source pixels this close to the nodule mask are replaced.")
    ] = 2.0,
    feather_mm: Annotated[
        float, typer.Option(help="Gaussian feathering σ of the paste edge (0 = off).")
    ] = 0.0,
    formats: Annotated[str, typer.Option(help="Any of png,nifti,dicom.")] = "png,nifti,dicom",
    precision: Annotated[str, typer.Option(help="fp32, or bf16 autocast.")] = "fp32",
    batch_size: Annotated[int, typer.Option(help="Nodules per generator pass.")] = 32,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    force: Annotated[
        bool, typer.Option(help="Replace OUT once the new batch is complete.")
    ] = False,
) -> None:
    """Synthesise gene-conditioned nodules into cache backgrounds or your CT, with masks."""
    with _errors():
        from rgsynth.synthesize.batch import BatchSettings
        from rgsynth.synthesize.paste import Blend
        from rgsynth.synthesize.profiles import parse_edit
        from rgsynth.synthesize.request import SynthesisRequest

        try:
            request = SynthesisRequest(
                subjects=subject or [],
                expression=expression,
                table_subjects=table_subject or [],
                gene_edits=[parse_edit(e) for e in set_gene or []],
                program_edits=[parse_edit(e) for e in set_program or []],
                gene_sets=gene_sets,
                cts=ct or [],
                points_mm=[_triple(p, "--at-mm") for p in at_mm or []],
                voxels=[_triple(v, "--at-voxel") for v in at_voxel or []],
                random_locations=random_locations,
                cache_backgrounds=backgrounds or 0,
                split=split,
                per_background=per_background,
                seed=seed,
            )
            settings = BatchSettings(
                blend=Blend(margin_mm=margin_mm, feather_mm=feather_mm),
                formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
                precision=precision,
                device=device,
                batch_size=batch_size,
                seed=seed,
            )
        except ValueError as error:
            raise UsageError(str(error)) from None
        _synthesize(run, out, cache, request, settings, force)


def _triple(text: str, option: str) -> tuple[float, float, float]:
    parts = text.replace(" ", "").split(",")
    try:
        if len(parts) != 3:
            raise ValueError
        return tuple(float(p) for p in parts)  # type: ignore[return-value]
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected three numbers, e.g. -60.5,40,-120") from None


def _synthesize(run, out, cache, request, settings, force) -> None:
    from rgsynth.inference import load_run
    from rgsynth.io.source import InputError
    from rgsynth.synthesize.batch import synthesize_batch
    from rgsynth.synthesize.request import plan

    trained = load_run(run, cache)
    try:
        jobs, prepare_config, cache_genes = plan(request, trained.cache_root)
    except InputError:
        raise
    except ValueError as error:  # an inconsistent request, an unknown gene or program
        raise UsageError(str(error)) from None
    if not force and out.exists():
        raise UsageError(
            f"{out}: already exists; choose another folder or pass --force to replace it"
        )
    with _progress("synthesizing", len(jobs)) as advance:
        summary = synthesize_batch(
            jobs,
            trained,
            prepare_config,
            out,
            settings,
            force=force,
            gene_names=cache_genes.names,
            on_nodule=advance,
        )
    typer.echo(
        f"wrote {summary['n_nodules']} nodules ({summary['n_backgrounds']} backgrounds, "
        f"{summary['n_profiles']} gene profiles) to {out} in {summary['seconds']:.1f} s; "
        f"manifest: {out / 'manifest.csv'}"
    )
    for note in summary["notes"]:
        typer.echo(f"note: {note}")


@app.command("map")
def map_command(
    run: Annotated[Path, typer.Argument(help="A run folder written by `rgsynth train`.")],
    cache: Annotated[
        Path | None, typer.Option(help="The run's cache [the one recorded in the run].")
    ] = None,
    mcgan: Annotated[
        Path | None, typer.Option(help="An MC-GAN run on the same cache, for the t-SNE panels.")
    ] = None,
    gene_sets: Annotated[
        Path | None,
        typer.Option(help="Programs to perturb: GMT, CSV or ground_truth.json [metagenes]."),
    ] = None,
    clusters: Annotated[int, typer.Option(help="k of the k-means on each code.")] = 3,
    metagene_min_r: Annotated[
        float, typer.Option(help="Metagenes: average |r| at which the gene tree is cut.")
    ] = 0.4,
    metagene_min_genes: Annotated[int, typer.Option(help="Metagenes: smallest module.")] = 5,
    top_genes: Annotated[int, typer.Option(help="Single genes to perturb.")] = 20,
    replicates: Annotated[
        int, typer.Option(help="Background/noise/base triples per program.")
    ] = 24,
    shift: Annotated[float, typer.Option(help="Perturbation size, z, each way.")] = 2.0,
    backgrounds: Annotated[int, typer.Option(help="Fixed backgrounds for perturbations.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of clustering, t-SNE and perturbations.")] = 0,
    force: Annotated[
        bool, typer.Option(help="Replace RUN/maps once the new maps are done.")
    ] = False,
) -> None:
    """Radiogenomic maps of a run: embeddings, cluster map, conventional and perturbation maps."""
    with _errors():
        from rgsynth.analysis.maps import MapSettings, build_maps
        from rgsynth.analysis.perturbation import PerturbationSettings

        settings = MapSettings(
            n_clusters=clusters,
            metagene_min_correlation=metagene_min_r,
            metagene_min_genes=metagene_min_genes,
            top_genes=top_genes,
            n_backgrounds=backgrounds,
            perturbation=PerturbationSettings(shift=shift, replicates=replicates, seed=seed),
            seed=seed,
        )
        summary = build_maps(run, settings, cache, mcgan, gene_sets, force, typer.echo)
        silhouettes = ", ".join(
            f"{name} {values['silhouette']:.2f}" for name, values in summary["embeddings"].items()
        )
        typer.echo(
            f"wrote {run / 'maps'} in {summary['seconds']:.0f} s; silhouettes: {silhouettes}; "
            f"q < 0.05: conventional {summary['conventional_pairs_q05']}, perturbation "
            f"{summary['perturbation_program_pairs_q05']} program and "
            f"{summary['perturbation_gene_pairs_q05']} gene pairs"
        )


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="A run folder written by `rgsynth train`.")],
    against: Annotated[
        Path | None, typer.Option(help="A second run on the same cache (MC-GAN) to compare.")
    ] = None,
    truth: Annotated[
        Path | None, typer.Option(help="A twin's ground_truth.json: score the maps against it.")
    ] = None,
    cache: Annotated[
        Path | None, typer.Option(help="The run's cache [the one recorded in the run].")
    ] = None,
    per_donor: Annotated[int, typer.Option(help="Syntheses per donor for trait fidelity.")] = 8,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples per interval.")] = 500,
    seed: Annotated[int, typer.Option(help="Seed of backgrounds, noise and shuffles.")] = 0,
) -> None:
    """Score a run: realism, conditioning, ablations and (twin) ground-truth recovery."""
    with _errors():
        from rgsynth.analysis.evaluate import EvaluationSettings
        from rgsynth.analysis.evaluate import evaluate as run_evaluation

        settings = EvaluationSettings(per_donor=per_donor, resamples=resamples, seed=seed)
        report = run_evaluation(run, settings, cache, against, truth, typer.echo)
        _echo_scores(run, list(report["models"]))
        typer.echo(f"wrote {run / EVALUATION_FILENAME} in {report['seconds']:.0f} s")


def _echo_scores(run: Path, models: list[str]) -> None:
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
        if scores.get(model, "perturbation map", "auroc") is not None:
            line += f", map AUROC {scores.value(model, 'perturbation map', 'auroc'):.2f}"
        typer.echo(line)
    if scores.get(CONVENTIONAL, "as_discovered", "auroc") is not None:
        discovered = scores.value(CONVENTIONAL, "as_discovered", "auroc")
        true_programs = scores.value(CONVENTIONAL, "with_true_programs", "auroc")
        typer.echo(
            f"conventional: map AUROC {discovered:.2f} "
            f"(true programs as metagenes: {true_programs:.2f})"
        )


DEMO_MINUTES = 5.5  # per model: with the other stages, about 15 minutes on 2 cores


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="A run folder after `rgsynth map` and `evaluate`.")],
    out: Annotated[
        Path | None, typer.Option(help="Report folder [RUN/report; replaced when complete].")
    ] = None,
) -> None:
    """A self-contained HTML report (and its figures and tables) from a run folder alone."""
    with _errors():
        from rgsynth.report.build import build_report

        build_report(run, out, typer.echo)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for every stage's outputs.")] = Path(
        "rgsynth-demo"
    ),
    minutes: Annotated[
        float, typer.Option(help="Training budget per model (ours, then MC-GAN).")
    ] = DEMO_MINUTES,
    steps: Annotated[
        int | None, typer.Option(help="Also stop each model's training at this step.")
    ] = None,
    subjects: Annotated[
        int | None, typer.Option(help="Twin subjects (default: the demo preset's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the twin cohort and of every stage.")] = 0,
    workers: Annotated[int | None, typer.Option(help="Parallel processes [CPU count].")] = None,
) -> None:
    """The whole pipeline on the synthetic twin: cohort → prepare → train ours and MC-GAN
    under the same budget → maps → evaluation → synthesis → HTML report.

    Stages whose outputs exist and are current are skipped, so a second run, or a run
    after an interruption, picks up where the last one stopped (an interrupted training
    resumes from its checkpoint with what is left of its budget).
    """
    with _errors():
        from rgsynth.config import PrepareConfig
        from rgsynth.models.registry import BASELINE, PROPOSED, get_spec

        config = _twin_config("demo", seed, subjects)
        stage = _stage_printer(9)
        cohort = out / "cohort"
        stage(f"twin cohort → {cohort}")
        if _cohort_is_current(cohort, config):
            typer.echo("      up to date, skipped")
        else:
            _synth_cohort(cohort, subjects, seed, "demo", workers, force=cohort.exists())
        montage = out / "qc_montage.png"
        stage(f"QC montage → {montage}")
        _view(cohort, montage, max_subjects=16, columns=4)
        cache = out / "cache"
        stage(f"training cache → {cache}")
        # A regenerated twin has new file times: the old cache no longer matches, rebuild it.
        _prepare(cohort, cache, PrepareConfig(seed=seed), "tcia", None, None, workers, "fail", True)
        fingerprint = _cache_fingerprint(cache)
        runs = {PROPOSED: out / "run", BASELINE: out / f"run-{BASELINE}"}
        for architecture, run in runs.items():
            stage(f"training {get_spec(architecture).display_name} for {minutes:g} min → {run}")
            budget = {"minutes": minutes, "steps": steps}
            config = _demo_train_config(seed, architecture, cache)
            _train_demo_model(cache, fingerprint, run, config, budget)
        current = {"cache_fingerprint": fingerprint} | {
            name: _checkpoint_facts(run)[0] for name, run in runs.items()
        }  # what every later stage must have been made from
        truth = cohort / GROUND_TRUTH_FILENAME
        stage(f"maps → {runs[BASELINE] / MAPS_DIRNAME}, {runs[PROPOSED] / MAPS_DIRNAME}")
        _demo_maps(runs, cache, truth, seed, current)
        stage(f"evaluation → {runs[PROPOSED] / EVALUATION_FILENAME}")
        if _evaluation_is_current(runs, current):
            typer.echo("      up to date, skipped")
        else:
            _evaluate(runs[PROPOSED], runs[BASELINE], truth, seed)
        synthesis = out / "synthesis"
        stage(f"synthesis → {synthesis}")
        if _synthesis_is_current(synthesis, current[PROPOSED], fingerprint):
            typer.echo("      up to date, skipped")
        else:
            request = _demo_request(cohort, cache, seed)
            _synthesize(runs[PROPOSED], synthesis, cache, request, _demo_batch(seed), True)
        page = runs[PROPOSED] / REPORT_DIRNAME / "index.html"
        stage(f"report → {page}")
        from rgsynth.report.build import build_report, report_is_current

        if report_is_current(runs[PROPOSED]):
            typer.echo("      up to date, skipped")
        else:
            build_report(runs[PROPOSED], echo=typer.echo)
        typer.echo(f"done: open {page} (augmentation examples: {synthesis / 'previews'})")


def _stage_printer(total: int) -> Callable[[str], None]:
    """Prints '[n/total] what' with the time since the demo started."""
    start, count = time.perf_counter(), [0]

    def stage(text: str) -> None:
        count[0] += 1
        elapsed = time.perf_counter() - start
        typer.echo(f"[{count[0]}/{total}] {text}  ({elapsed / 60:.1f} min in)")

    return stage


def _train_demo_model(cache: Path, fingerprint: str, run: Path, config, budget: dict) -> None:
    """Train one demo model within ``budget`` (minutes, steps), skipping a run that
    finished this budget on this cache and resuming one that was interrupted."""
    from rgsynth.fsutil import atomic_write_json
    from rgsynth.train.stats import training_summary

    recorded = _read_json(run / DEMO_BUDGET_FILENAME)
    step, trained_on = _checkpoint_facts(run)
    on_this_cache = trained_on == fingerprint
    if on_this_cache and recorded == budget:
        typer.echo("      up to date, skipped (delete the folder to train again)")
        return
    if on_this_cache and recorded is None:
        done_minutes = training_summary(run).get("train_seconds", 0.0) / 60
        left = budget["minutes"] - done_minutes
        if left > 0.05:
            typer.echo(f"      interrupted after {done_minutes:.1f} min: resuming")
            _train(cache, run, config, budget["steps"], left, True, "auto")
            atomic_write_json(run / DEMO_BUDGET_FILENAME, budget)
            return
    if run.exists():  # the demo's own output, from another cache or budget: replaced
        why = "another cache or budget" if step is not None else "no checkpoint"
        typer.echo(f"      {run}: {why}; training from the start")
        shutil.rmtree(run)
    _train(cache, run, config, budget["steps"], budget["minutes"], False, "auto")
    atomic_write_json(run / DEMO_BUDGET_FILENAME, budget)


def _demo_maps(runs: dict[str, Path], cache: Path, truth: Path, seed: int, current: dict) -> None:
    """MC-GAN's maps (its perturbation map is scored too), then ours with MC-GAN's codes
    beside them; the truth's programs are the ones perturbed."""
    from rgsynth.analysis.maps import build_maps
    from rgsynth.models.registry import BASELINE, PROPOSED, get_spec

    settings = _demo_map_settings(seed)
    for name, compared in ((BASELINE, None), (PROPOSED, runs[BASELINE])):
        recorded = _read_json(runs[name] / MAPS_DIRNAME / MAPS_SUMMARY_FILENAME) or {}
        if (
            recorded.get("checkpoint_step") == current[name]
            and recorded.get("cache_fingerprint") == current["cache_fingerprint"]
            and recorded.get("mcgan_checkpoint_step") == (current[BASELINE] if compared else None)
        ):
            typer.echo(f"      {get_spec(name).display_name}: up to date, skipped")
            continue
        summary = build_maps(runs[name], settings, cache, compared, truth, True, _indented)
        typer.echo(f"      {get_spec(name).display_name}: maps in {summary['seconds']:.0f} s")


def _demo_map_settings(seed: int):
    """`rgsynth map`'s defaults, seeded (a test shrinks them)."""
    from rgsynth.analysis.maps import MapSettings
    from rgsynth.analysis.perturbation import PerturbationSettings

    return MapSettings(perturbation=PerturbationSettings(seed=seed), seed=seed)


def _demo_evaluation_settings(seed: int):
    """`rgsynth evaluate`'s defaults, seeded (a test shrinks them)."""
    from rgsynth.analysis.evaluate import EvaluationSettings

    return EvaluationSettings(seed=seed)


def _indented(line: str) -> None:
    typer.echo(f"      {line}")


def _evaluate(run: Path, against: Path, truth: Path, seed: int) -> None:
    from rgsynth.analysis.evaluate import evaluate as run_evaluation

    settings = _demo_evaluation_settings(seed)
    scores = run_evaluation(run, settings, None, against, truth, _indented)
    typer.echo(f"      scores in {scores['seconds']:.0f} s")


def _checkpoint_facts(run: Path) -> tuple[int | None, str | None]:
    """The run's checkpoint step and the fingerprint of the cache it was trained on
    (None, None without a readable checkpoint)."""
    from rgsynth.layout import CHECKPOINT_PATH
    from rgsynth.train.checkpoint import CheckpointError, load_checkpoint

    try:
        state = load_checkpoint(run / CHECKPOINT_PATH)
    except CheckpointError:
        return None, None
    return int(state["step"]), state["cache_fingerprint"]


def _cache_fingerprint(cache: Path) -> str:
    from rgsynth.data import cache_fingerprint
    from rgsynth.prepare.cache import Cache

    return cache_fingerprint(Cache(cache).manifest())


def _evaluation_is_current(runs: dict[str, Path], current: dict) -> bool:
    """Scores of the current checkpoints on this cache, newer than the maps they read."""
    from rgsynth.models.registry import PROPOSED

    path = runs[PROPOSED] / EVALUATION_FILENAME
    recorded = _read_json(path) or {}
    models = recorded.get("models", {})
    maps = [run / MAPS_DIRNAME / MAPS_SUMMARY_FILENAME for run in runs.values()]
    return (
        recorded.get("cache_fingerprint") == current["cache_fingerprint"]
        and all(models.get(name, {}).get("checkpoint_step") == current[name] for name in runs)
        and all(m.is_file() and m.stat().st_mtime <= path.stat().st_mtime for m in maps)
    )


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _demo_request(cohort: Path, cache: Path, seed: int):
    """Up to eight validation backgrounds with random donors' genes, and four nodules
    painted into the first validation subject's CT (the training split's, if there is
    no validation split)."""
    from rgsynth.prepare.cache import Cache
    from rgsynth.synthesize.request import SynthesisRequest

    subjects = Cache(cache).manifest()["subjects"]
    validation = [s for s in subjects if s["split"] == "val"]
    available = sum(s["n_background_slices"] for s in validation)
    return SynthesisRequest(
        cts=[cohort / (validation or subjects)[0]["ct_file"]],
        random_locations=4,
        cache_backgrounds=min(8, available) if available else 8,
        split="val" if available else "train",
        seed=seed,
    )


def _demo_batch(seed: int):
    from rgsynth.synthesize.batch import BatchSettings

    return BatchSettings(seed=seed)


def _synthesis_is_current(synthesis: Path, step: int | None, fingerprint: str) -> bool:
    summary = _read_json(synthesis / SYNTHESIS_SUMMARY_FILENAME) or {}
    return (
        summary.get("cache_fingerprint") == fingerprint and summary.get("checkpoint_step") == step
    )


def _demo_train_config(seed: int, architecture: str, cache: Path):
    """A CPU-sized model (16 to 128 channels; the paper's widths are 32 to 256), about 4×
    faster per step; each architecture keeps its own batch size and learning rate, the
    batch cut to the training slices of a very small twin (``--subjects``)."""
    import dataclasses

    from rgsynth.config import ModelConfig, TrainConfig
    from rgsynth.prepare.cache import Cache

    model = ModelConfig(
        architecture=architecture, base_channels=16, max_channels=128, gene_hidden=256
    )
    config = TrainConfig(
        model=model, seed=seed, log_every=20, sample_every=300, checkpoint_every=300
    ).resolved()
    slices = sum(
        s["n_nodule_slices"]
        for s in Cache(cache).manifest()["subjects"]
        if s["split"] == "train" and s["has_genes"]
    )
    if 0 < slices < config.batch_size:
        typer.echo(f"      batch {config.batch_size} cut to the {slices} training slices")
        config = dataclasses.replace(config, batch_size=slices)
    return config


def _twin_config(preset: str, seed: int, subjects: int | None):
    from rgsynth.config import twin_preset

    try:
        return twin_preset(preset, seed=seed, n_subjects=subjects)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _cohort_is_current(cohort: Path, config) -> bool:
    truth = cohort / GROUND_TRUTH_FILENAME
    if not truth.is_file():
        return False
    try:
        return json.loads(truth.read_text())["config_fingerprint"] == config.fingerprint()
    except (ValueError, KeyError):
        return False


@contextmanager
def _progress(description: str, total: int) -> Iterator[Callable[[str], None]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task(description, total=total)

        def advance(subject_id: str) -> None:
            progress.update(task, advance=1, description=f"{description}: {subject_id}")
            log.info("done %s", subject_id)

        yield advance


@contextmanager
def _errors() -> Iterator[None]:
    """Expected failures (:class:`RgsynthError`) become one line on stderr and their exit
    code (2, or 130 for an interrupted training); so does a path that does not exist."""
    try:
        yield
    except RgsynthError as error:
        typer.echo(f"{error.label}: {error}", err=True)
        raise typer.Exit(error.exit_code) from None
    except FileNotFoundError as error:  # a path the user gave: Python's message names it
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


if __name__ == "__main__":
    app()
