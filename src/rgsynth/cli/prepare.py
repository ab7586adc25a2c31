"""``rgsynth prepare``: cohort files → training cache."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from rgsynth.cli.common import (
    FILE,
    SEED,
    Workers,
    arg,
    errors,
    opt,
    output_folder,
    progress,
    settings,
)
from rgsynth.config import PREPARE_ON_ERROR, PrepareConfig
from rgsynth.errors import UsageError

LAYOUTS = ("auto", "tcia", "folder")
_D = PrepareConfig  # its defaults are the options' defaults


def prepare(
    cohort: Annotated[
        Path, arg("TCIA download or images/ + masks/ folder.", exists=True, file_okay=False)
    ],
    out: Annotated[Path, opt("Cache folder to create or resume")],
    layout: Annotated[str, opt("auto, tcia or folder", None, "--format")] = "auto",
    genes_file: Annotated[
        Path | None, opt("Expression table [in COHORT]", None, "--genes", **FILE)
    ] = None,
    clinical: Annotated[Path | None, opt("Clinical CSV [found in COHORT]", None, **FILE)] = None,
    holdout: Annotated[
        Path | None,
        opt("CSV (subject_id) of donors kept out of training [COHORT/holdout.csv]", None, **FILE),
    ] = None,
    size: Annotated[int | None, opt("VOI edge in pixels (64 CPU, 128 paper)", _D.size)] = None,
    backgrounds: Annotated[
        int | None, opt("Background VOI centres per subject", _D.background_centres)
    ] = None,
    background_slices: Annotated[
        int | None, opt("Random slices per background VOI", _D.background_slices)
    ] = None,
    val_fraction: Annotated[
        float | None, opt("Share of subjects held out for validation", _D.val_fraction)
    ] = None,
    seed: Annotated[int | None, opt("Seed of the split and backgrounds", _D.seed, **SEED)] = None,
    max_slice_mm: Annotated[
        float | None, opt("Refuse series thicker than this, mm", _D.max_slice_mm)
    ] = None,
    gene_transform: Annotated[
        str | None, opt("log2p1 (counts/FPKM) or none (logged)", _D.gene_transform)
    ] = None,
    workers: Workers = None,
    on_error: Annotated[str, opt("fail: stop at the first bad input; skip: note it, go on")] = (
        "fail"
    ),
    force: Annotated[bool, opt("Rebuild a cache made with other settings or inputs")] = False,
) -> None:
    """Cohort files → training cache: nodule VOI slices, lung backgrounds, genes, split."""
    with errors():
        if on_error not in PREPARE_ON_ERROR:
            raise UsageError(f"--on-error must be fail or skip, got {on_error!r}")
        if layout not in LAYOUTS:
            raise UsageError(f"--format must be auto, tcia or folder, got {layout!r}")
        output_folder(out, "--out")
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
        run_prepare(
            cohort, out, config, layout, genes_file, clinical, workers, on_error, force, holdout
        )


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
    holdout: Path | None = None,
) -> dict:
    from rgsynth.prepare.run import find_inputs, prepare_cache

    start = time.perf_counter()
    inputs = find_inputs(cohort, layout, genes_file, clinical, holdout)
    _check_clinical(inputs.clinical)
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


def _check_clinical(path: Path | None) -> None:
    """The clinical table is only needed when the cache is sealed, after every subject:
    read it now, so a bad one stops prepare in one line before minutes of work and
    before the cache folder exists."""
    if path is not None:
        from rgsynth.io.genes import read_clinical

        read_clinical(path)
