"""``rgsynth synthesize``: gene-conditioned nodules into cache backgrounds or a CT."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rgsynth.cli.common import (
    AT_LEAST_ONE,
    FILE,
    SEED,
    RunCache,
    RunFolder,
    arg,
    check_strength,
    errors,
    opt,
    output_folder,
    progress,
    settings,
    strength_option,
    unseen_option,
)
from rgsynth.config import SYNTHESIS_FORMATS, BatchSettings, Blend
from rgsynth.errors import InputError, UsageError
from rgsynth.layout import SYNTHESIS_MANIFEST_FILENAME

_B = BatchSettings  # its defaults are the options' defaults
PRECISIONS, DEVICES = ("fp32", "bf16"), ("cpu", "cuda")


def synthesize(
    run: RunFolder,
    out: Annotated[Path, arg("Output folder to create (see --force).")],
    cache: RunCache = None,
    subject: Annotated[list[str] | None, opt("Genes of this cache subject (repeatable)")] = None,
    expression: Annotated[
        Path | None, opt("Your expression table (raw, as the cohort's)", None, **FILE)
    ] = None,
    table_subject: Annotated[list[str] | None, opt("Row(s) of --expression to use [all]")] = None,
    set_gene: Annotated[
        list[str] | None, opt("GENE=Z: set a gene's z-score (repeatable)", None, "--set")
    ] = None,
    set_program: Annotated[
        list[str] | None, opt("PROGRAM=Z: set every gene of a gene set to ±Z (repeatable)")
    ] = None,
    gene_sets: Annotated[
        Path | None, opt("Programs: GMT, CSV (set,gene,weight) or ground_truth.json", None, **FILE)
    ] = None,
    ct: Annotated[
        list[Path] | None, opt("A CT to paint into: DICOM folder or NIfTI file (repeatable)")
    ] = None,
    at_mm: Annotated[list[str] | None, opt("X,Y,Z: a location in patient mm (repeatable)")] = None,
    at_voxel: Annotated[list[str] | None, opt("I,J,K: a voxel index of the CT as stored")] = None,
    random_locations: Annotated[
        int, opt("Random lung locations per CT (5–25 mm deep, as prepare)", None, min=0)
    ] = 0,
    backgrounds: Annotated[
        int | None, opt("Cache background slices [8 without --ct]", None, min=0)
    ] = None,
    split: Annotated[str | None, opt("Split of the cache backgrounds: val, train, all [val]")] = (
        None
    ),
    per_background: Annotated[
        int | None, opt("Nodules per background and gene profile, new noise each [1]")
    ] = None,
    seed: Annotated[int | None, opt("The batch is a function of this seed", _B.seed, **SEED)] = (
        None
    ),
    margin_mm: Annotated[
        float | None, opt("Source pixels this close to the mask are replaced", Blend.margin_mm)
    ] = None,
    feather_mm: Annotated[
        float | None, opt("Gaussian σ of the paste edge, 0 = off", Blend.feather_mm)
    ] = None,
    formats: Annotated[str | None, opt(f"Any of {','.join(SYNTHESIS_FORMATS)} [all]")] = None,
    precision: Annotated[str | None, opt("fp32, or bf16 autocast", _B.precision)] = None,
    batch_size: Annotated[
        int | None, opt("Nodules per generator pass", _B.batch_size, **AT_LEAST_ONE)
    ] = None,
    device: Annotated[str | None, opt("cpu or cuda", _B.device)] = None,
    slice_height_mm: Annotated[
        float | None,
        opt("focus-height: the slice's height above the nodule's centre", _B.slice_height_mm),
    ] = None,
    unshrink_unseen: Annotated[
        bool | None,
        unseen_option(
            "Divide the whitened gene scores of a measured profile that is not a training "
            "donor's (a held-out subject's, a table row) by a power of the training donors' "
            "leave-one-out shrinkage, as map and evaluate read held-out donors; edits keep "
            "the size given (focus recipes)",
            _B.unshrink_unseen,
        ),
    ] = None,
    unshrink_strength: Annotated[float | None, strength_option(_B.unshrink_strength)] = None,
    force: Annotated[bool, opt("Replace OUT once the new batch is complete")] = False,
) -> None:
    """Synthesise gene-conditioned nodules into cache backgrounds or your CT, with masks."""
    with errors():
        check_strength(unshrink_unseen, unshrink_strength)
        from rgsynth.synthesize.request import SynthesisRequest

        _check_choices(precision, device)
        output_folder(out, "OUT")
        request = settings(
            SynthesisRequest,
            subjects=subject or [],
            expression=expression,
            table_subjects=table_subject or [],
            gene_edits=[_edit(e) for e in set_gene or []],
            program_edits=[_edit(e) for e in set_program or []],
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
        batch = settings(
            BatchSettings,
            blend=settings(Blend, margin_mm=margin_mm, feather_mm=feather_mm),
            formats=_formats(formats),
            precision=precision,
            device=device,
            batch_size=batch_size,
            seed=seed,
            slice_height_mm=slice_height_mm,
            unshrink_unseen=unshrink_unseen,
            unshrink_strength=unshrink_strength,
        )
        run_synthesize(run, out, cache, request, batch, force)


def _check_choices(precision: str | None, device: str | None) -> None:
    """Refused here, before the run is loaded, rather than by torch in the first pass."""
    if precision is not None and precision not in PRECISIONS:
        raise UsageError(f"--precision must be fp32 or bf16, got {precision!r}")
    if device is not None and device not in DEVICES:
        raise UsageError(f"--device must be cpu or cuda, got {device!r}")


def _triple(text: str, option: str) -> tuple[float, float, float]:
    parts = text.replace(" ", "").split(",")
    try:
        if len(parts) != 3:
            raise ValueError
        return tuple(float(p) for p in parts)  # type: ignore[return-value]
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected three numbers, e.g. -60.5,40,-120") from None


def run_synthesize(run, out, cache, request, batch, force) -> None:
    from rgsynth.inference import load_run
    from rgsynth.synthesize.batch import check_slice_height, synthesize_batch
    from rgsynth.synthesize.request import plan

    trained = load_run(run, cache)
    try:  # before planning: nothing is read or written for a request refused here
        check_slice_height(trained, batch)
    except ValueError as error:
        raise UsageError(f"{run}: {error}") from None
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
    with progress("synthesizing", len(jobs)) as advance:
        summary = synthesize_batch(
            jobs,
            trained,
            prepare_config,
            out,
            batch,
            force=force,
            gene_names=cache_genes.names,
            on_nodule=advance,
        )
    typer.echo(
        f"wrote {summary['n_nodules']} nodules ({summary['n_backgrounds']} backgrounds, "
        f"{summary['n_profiles']} gene profiles) to {out} in {summary['seconds']:.1f} s; "
        f"manifest: {out / SYNTHESIS_MANIFEST_FILENAME}"
    )
    for note in summary["notes"]:
        typer.echo(f"note: {note}")


def _edit(text: str):
    from rgsynth.synthesize.profiles import parse_edit

    try:
        return parse_edit(text)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _formats(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(f.strip() for f in text.split(",") if f.strip())
