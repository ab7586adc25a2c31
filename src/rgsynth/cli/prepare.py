"""``rgsynth prepare``: cohort files → training cache."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from rgsynth.cli.common import errors, progress, settings
from rgsynth.config import PREPARE_ON_ERROR, PrepareConfig
from rgsynth.errors import UsageError

LAYOUTS = ("auto", "tcia", "folder")
_D = PrepareConfig  # its defaults are the options' defaults


def prepare(
    cohort: Annotated[Path, typer.Argument(help="TCIA download or images/ + masks/ folder.")],
    out: Annotated[Path, typer.Option(help="Cache folder to create or resume.")],
    layout: Annotated[str, typer.Option("--format", help="auto, tcia or folder.")] = "auto",
    genes_file: Annotated[
        Path | None, typer.Option("--genes", help="Expression table [found in COHORT].")
    ] = None,
    clinical: Annotated[Path | None, typer.Option(help="Clinical CSV [found in COHORT].")] = None,
    size: Annotated[
        int | None, typer.Option(help=f"VOI edge in pixels (64 CPU, 128 paper) [{_D.size}].")
    ] = None,
    backgrounds: Annotated[
        int | None,
        typer.Option(help=f"Background VOI centres per subject [{_D.background_centres}]."),
    ] = None,
    background_slices: Annotated[
        int | None,
        typer.Option(help=f"Random slices per background VOI [{_D.background_slices}]."),
    ] = None,
    val_fraction: Annotated[
        float | None,
        typer.Option(help=f"Subjects held out for validation [{_D.val_fraction}]."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help=f"Seed of the split and background sampling [{_D.seed}].")
    ] = None,
    max_slice_mm: Annotated[
        float | None, typer.Option(help=f"Refuse series thicker than this [{_D.max_slice_mm}].")
    ] = None,
    gene_transform: Annotated[
        str | None,
        typer.Option(help=f"log2p1 (counts/FPKM) or none (already logged) [{_D.gene_transform}]."),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Parallel processes [CPU count].")] = None,
    on_error: Annotated[
        str, typer.Option(help="fail: stop at the first bad input; skip: record it, go on.")
    ] = "fail",
    force: Annotated[
        bool, typer.Option(help="Rebuild a cache made with other settings or inputs.")
    ] = False,
) -> None:
    """Cohort files → training cache: nodule VOI slices, lung backgrounds, genes, split."""
    with errors():
        if on_error not in PREPARE_ON_ERROR:
            raise UsageError(f"--on-error must be fail or skip, got {on_error!r}")
        if layout not in LAYOUTS:
            raise UsageError(f"--format must be auto, tcia or folder, got {layout!r}")
        config = settings(
            PrepareConfig,
            size=size,
            background_centres=backgrounds,
            background_slices=background_slices,
            val_fraction=val_fraction,
            seed=seed,
            max_slice_mm=max_slice_mm,
            gene_transform=gene_transform,
        )
        run_prepare(cohort, out, config, layout, genes_file, clinical, workers, on_error, force)


def run_prepare(
    cohort: Path,
    out: Path,
    config: PrepareConfig,
    layout: str = "auto",
    genes_file: Path | None = None,
    clinical: Path | None = None,
    workers: int | None = None,
    on_error: str = "fail",
    force: bool = False,
) -> dict:
    from rgsynth.prepare.run import find_inputs, prepare_cache

    start = time.perf_counter()
    inputs = find_inputs(cohort, layout, genes_file, clinical)
    typer.echo(f"{inputs.kind} cohort {cohort}: {len(inputs.sources)} subjects with images")
    with progress("preparing", len(inputs.sources)) as advance:
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
