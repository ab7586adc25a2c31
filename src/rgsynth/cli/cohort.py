"""``rgsynth synth-cohort`` (the twin) and ``rgsynth view`` (a cohort's QC montage)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from rgsynth.cli.common import AT_LEAST_ONE, SEED, Workers, arg, errors, opt, progress
from rgsynth.config import TWIN_PRESETS, TwinConfig
from rgsynth.errors import UsageError
from rgsynth.layout import COHORT_MONTAGE_FILENAME, METADATA_FILENAME

_T = TwinConfig  # its defaults are the options' defaults


def synth_cohort(
    out: Annotated[Path, arg("Folder to create (must not exist, see --force).")],
    subjects: Annotated[int | None, opt("Number of subjects [preset's]")] = None,
    seed: Annotated[
        int | None, opt("Master seed; the cohort is its function", _T.seed, **SEED)
    ] = None,
    preset: Annotated[
        str | None,
        opt(
            f"{', '.join(TWIN_PRESETS)}: tiny for tests, paper as real, calibration for the "
            "readout (traits independent of genes)",
            _T.preset,
        ),
    ] = None,
    quirks: Annotated[
        str | None,
        opt(
            "none, or collection: write the real TCIA download's known quirks (SEG writers' "
            "variants, extra CT series, uneven slices, table oddities)",
            _T.quirks,
        ),
    ] = None,
    holdout: Annotated[
        int | None,
        opt(
            "Extra donors of the same biology, with genes and SEG, that prepare keeps out of "
            "training (holdout.csv): score a run on many unseen donors",
            _T.n_holdout,
        ),
    ] = None,
    workers: Workers = None,
    force: Annotated[bool, opt("Replace OUT once the new cohort is complete")] = False,
) -> None:
    """Write a synthetic NSCLC Radiogenomics cohort (DICOM CT + SEG, RNA-seq, clinical, truth)."""
    with errors():
        config = twin_config(preset, seed, subjects, quirks, holdout)
        run_synth_cohort(out, config, workers, force)


def twin_config(
    preset: str | None,
    seed: int | None,
    subjects: int | None,
    quirks: str | None = None,
    holdout: int | None = None,
) -> TwinConfig:
    from rgsynth.config import twin_preset

    try:
        return twin_preset(
            preset or TwinConfig.preset,
            seed=seed,
            n_subjects=subjects,
            quirks=quirks,
            n_holdout=holdout,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def run_synth_cohort(out: Path, config: TwinConfig, workers: int | None, force: bool) -> None:
    from rgsynth.twin.cohort import generate_cohort

    start = time.perf_counter()
    total = config.n_subjects + config.n_holdout
    with progress(f"twin cohort ({config.preset}, seed {config.seed})", total) as bar:
        generate_cohort(out, config, workers=workers, force=force, on_subject=bar)
    held = f" (+ {config.n_holdout} held-out donors)" if config.n_holdout else ""
    typer.echo(
        f"wrote {config.n_subjects} subjects{held} to {out} in {time.perf_counter() - start:.1f} s"
    )


def view(
    cohort: Annotated[Path, arg("A cohort folder (with metadata.csv).")],
    out: Annotated[Path | None, opt("PNG to write [COHORT/qc_montage.png]")] = None,
    max_subjects: Annotated[int, opt("Subjects to show", None, **AT_LEAST_ONE)] = 24,
    columns: Annotated[int, opt("Subjects per montage row", None, **AT_LEAST_ONE)] = 4,
) -> None:
    """QC montage: an axial slice through each nodule (lung window) with its SEG contour."""
    with errors():
        path = run_view(cohort, out, max_subjects, columns)
        typer.echo(f"wrote {path}")


def run_view(cohort: Path, out: Path | None, max_subjects: int, columns: int) -> Path:
    if out is not None and out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give the PNG file to write")
    if not (cohort / METADATA_FILENAME).is_file():
        raise UsageError(f"{cohort}: no metadata.csv; is this a cohort folder?")
    from rgsynth.io.montage import load_views, save_montage  # the DICOM readers

    with progress("reading nodules", max_subjects) as advance:
        views = load_views(cohort, max_subjects, on_subject=advance)
    return save_montage(views, out or cohort / COHORT_MONTAGE_FILENAME, columns=columns)
