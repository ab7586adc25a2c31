"""The digital twin of NSCLC Radiogenomics: a whole synthetic cohort, written like the real one.

``generate_cohort(out, config)`` writes::

    out/
      NSCLC Radiogenomics/<Subject>/<study>/<series>/1-NNN.dcm   CT series and nodule SEGs
      metadata.csv                                               TCIA's download manifest
      GSE103584_R01_NSCLC_RNAseq.txt.gz                          GEO RNA-seq table
      NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv   clinical table
      ground_truth.json                                          the known gene→image map

Everything is a pure function of the config (seed included); subjects are rendered in
parallel and the folder appears only when complete.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import logging
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom

from rgsynth.config import TwinConfig
from rgsynth.fsutil import atomic_write_json, atomic_write_text, staged_directory
from rgsynth.layout import GROUND_TRUTH_FILENAME, HOLDOUT_FILENAME
from rgsynth.twin import biology, quirks, tables
from rgsynth.twin.dicom_write import (
    COLLECTION,
    StudyInfo,
    ct_datasets,
    extra_series_datasets,
    second_study_folder,
    seg_dataset,
    series_folder,
    write_ct_series,
)
from rgsynth.twin.subject import SubjectPlan, render_subject

log = logging.getLogger(__name__)


METADATA_COLUMNS = (
    "Series UID",
    "Collection",
    "3rd Party Analysis",
    "Data Description URI",
    "Subject ID",
    "Study UID",
    "Study Description",
    "Study Date",
    "Series Description",
    "Manufacturer",
    "Modality",
    "SOP Class Name",
    "SOP Class UID",
    "Number of Images",
    "File Size",
    "File Location",
    "Download Timestamp",
)
_CT_SERIES_NUMBER = 3
# 2: nodules drawn from their own random stream (the reference generator replays them);
#    lobes, spicules and internal texture drawn visibly enough to read on a 64² slice.
TWIN_VERSION = 2


@dataclass(frozen=True)
class CohortPlan:
    config: TwinConfig
    model: biology.GeneProgramModel
    biology: biology.CohortBiology
    subjects: list[SubjectPlan]
    studies: list[StudyInfo]


def subject_ids(n_subjects: int, amc_fraction: float) -> list[str]:
    """R01-NNN then AMC-NNN IDs, as in the real collection (162 R01 and 49 AMC of 211)."""
    n_amc = round(amc_fraction * n_subjects) if n_subjects > 1 else 0
    n_r01 = n_subjects - n_amc
    return [f"R01-{i:03d}" for i in range(1, n_r01 + 1)] + [
        f"AMC-{i:03d}" for i in range(1, n_amc + 1)
    ]


def plan_cohort(config: TwinConfig) -> CohortPlan:
    """Draw everything but the images: biology, who has genes and SEGs, subject seeds."""
    root = np.random.SeedSequence(config.seed)
    bio_seq, choice_seq, subject_seq = root.spawn(3)
    bio_rng = np.random.default_rng(bio_seq)
    model = biology.draw_gene_model(
        bio_rng,
        config.n_genes,
        config.n_programs,
        config.n_null_programs,
        config.n_subtypes,
        config.genes_per_program_fraction,
    )
    if config.independent_traits:  # a calibration cohort: no program moves any trait
        model = dataclasses.replace(model, effects=np.zeros_like(model.effects))
    cohort = biology.draw_cohort_biology(bio_rng, model, config.n_subjects)
    ids = subject_ids(config.n_subjects, config.amc_fraction)
    rng = np.random.default_rng(choice_seq)
    has_rnaseq = _choose(rng, config.n_subjects, config.rnaseq_fraction)
    has_seg = _choose(rng, config.n_subjects, config.seg_fraction)
    n_seg = int(has_seg.sum())
    slicer = np.zeros(config.n_subjects, dtype=bool)
    slicer[np.flatnonzero(has_seg)] = _choose(rng, n_seg, config.slicer_seg_fraction)
    subject_seeds = [int(s.generate_state(1)[0]) for s in subject_seq.spawn(config.n_subjects)]
    plans, studies = [], []
    if config.quirks == quirks.COLLECTION:  # as the download: no AMC SEG, none for R01-147…163
        kept = [quirks.collection_has_seg(s, bool(h)) for s, h in zip(ids, has_seg, strict=True)]
        has_seg = np.array(kept, dtype=bool)
    for i, sid in enumerate(ids):
        flavour = ("slicer" if slicer[i] else "epad") if has_seg[i] else None
        plans.append(
            SubjectPlan(
                subject_id=sid,
                index=i,
                seed=subject_seeds[i],
                traits=cohort.traits[i],
                has_seg=bool(has_seg[i]),
                seg_flavour=flavour,
                has_rnaseq=bool(has_rnaseq[i]),
                matrix=config.matrix,
                slab_mm=config.slab_mm,
                pixel_spacing_mm=config.pixel_spacing_mm,
                slice_thickness_mm=config.slice_thickness_mm,
            )
        )
        studies.append(_draw_study(rng, sid, config.seed))
    if config.n_holdout:
        cohort = _add_holdout(config, model, cohort, plans, studies)
    return CohortPlan(config=config, model=model, biology=cohort, subjects=plans, studies=studies)


def _draw_study(rng: np.random.Generator, subject_id: str, seed: int) -> StudyInfo:
    """A subject's study: date, description and the patient's sex and age."""
    return StudyInfo(
        subject_id=subject_id,
        seed=seed,
        study_date=dt.date(1990, 1, 1) + dt.timedelta(days=int(rng.integers(0, 3650))),
        study_description=str(
            rng.choice(["CT CHEST WITHOUT CONTRAST", "CT CHEST WITH CONTRAST", "CHEST"])
        ),
        patient_sex=str(rng.choice(["M", "F"], p=[0.7, 0.3])),
        patient_age_years=int(rng.integers(45, 88)),
    )


def holdout_ids(n: int) -> list[str]:
    """IDs of the held-out donors: ``R01-H001`` … (never an ID of the collection)."""
    return [f"R01-H{i:03d}" for i in range(1, n + 1)]


def _add_holdout(
    config: TwinConfig,
    model: biology.GeneProgramModel,
    cohort: biology.CohortBiology,
    plans: list[SubjectPlan],
    studies: list[StudyInfo],
) -> biology.CohortBiology:
    """Append ``config.n_holdout`` donors of the same gene model and trait map, each with
    genes and a SEG, drawn from streams of their own so the cohort's other subjects stay
    exactly what they are without them. Returns the biology of all subjects."""
    bio_seq, choice_seq, subject_seq = np.random.SeedSequence([config.seed, 41]).spawn(3)
    held = biology.draw_cohort_biology(np.random.default_rng(bio_seq), model, config.n_holdout)
    rng = np.random.default_rng(choice_seq)
    seeds = [int(s.generate_state(1)[0]) for s in subject_seq.spawn(config.n_holdout)]
    first = len(plans)
    for k, sid in enumerate(holdout_ids(config.n_holdout)):
        plans.append(
            dataclasses.replace(
                plans[0],
                subject_id=sid,
                index=first + k,
                seed=seeds[k],
                traits=held.traits[k],
                has_seg=True,
                seg_flavour="slicer" if rng.random() < config.slicer_seg_fraction else "epad",
                has_rnaseq=True,
            )
        )
        studies.append(_draw_study(rng, sid, config.seed))
    return biology.CohortBiology(
        subtype=np.concatenate([cohort.subtype, held.subtype]),
        activities=np.vstack([cohort.activities, held.activities]),
        trait_latents=np.vstack([cohort.trait_latents, held.trait_latents]),
        traits=cohort.traits + held.traits,
    )


def generate_cohort(
    out: Path,
    config: TwinConfig,
    workers: int | None = None,
    force: bool = False,
    on_subject: Callable[[str], None] | None = None,
) -> Path:
    """Write a twin cohort to ``out`` (atomically); returns ``out``.

    Args:
        out: destination folder; must not exist unless ``force``.
        config: the cohort's settings (see :func:`rgsynth.config.twin_preset`).
        workers: processes rendering subjects in parallel (default: CPU count, at most 8).
        force: replace an existing ``out`` once the new cohort is complete.
        on_subject: called with each subject ID when that subject is written (progress).
    """
    out = Path(out)
    plan = plan_cohort(config)
    workers = workers or min(8, os.cpu_count() or 1)
    with staged_directory(out, replace=force) as staging:
        results = _render_all(plan, staging, workers, on_subject)
        _write_tables(plan, results, staging)
    return out


def _render_all(
    plan: CohortPlan, staging: Path, workers: int, on_subject: Callable[[str], None] | None
) -> list[dict]:
    n = len(plan.subjects)
    jobs = list(
        zip(plan.subjects, plan.studies, [staging] * n, [plan.config.quirks] * n, strict=True)
    )
    results: list[dict] = []
    if workers <= 1:
        for job in jobs:
            results.append(_render_and_write(job))
            if on_subject:
                on_subject(job[0].subject_id)
        return results
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(_render_and_write, jobs):
            results.append(result)
            if on_subject:
                on_subject(result["subject_id"])
    return results


def _render_and_write(job: tuple[SubjectPlan, StudyInfo, Path, str]) -> dict:
    """Render one subject and write its CT (and SEG); returns what the tables need."""
    plan, study, staging, quirk_mode = job
    scan = render_subject(plan)
    study_dir = Path(COLLECTION) / plan.subject_id / study.study_folder()
    collection = quirk_mode == quirks.COLLECTION
    variant = quirks.ct_variant(plan.index) if collection else "plain"
    hu, mask, z_mm = scan.hu, scan.nodule_mask, None
    if variant == "uneven slice spacing":
        z_even = scan.grid.axis_mm()[0]
        z_mm = quirks.uneven_positions(np.random.default_rng([plan.seed, 23]), z_even)
        hu, mask = quirks.resample_on_positions(hu, mask, z_even, z_mm)
    ct = ct_datasets(hu, scan.grid, scan.acquisition, study, _CT_SERIES_NUMBER, z_mm=z_mm)
    quirks.encode_ct(ct, variant)
    ct_uid = ct[0].SeriesInstanceUID
    ct_dir = study_dir / series_folder(_CT_SERIES_NUMBER, ct[0].SeriesDescription, ct_uid)
    paths = write_ct_series(ct, staging / ct_dir)
    rows = [_metadata_row(ct[0], study, ct_dir, len(paths), sum(p.stat().st_size for p in paths))]
    extras = quirks.extra_series(scan.hu, scan.grid, variant, plan.index) if collection else []
    for extra in extras:
        datasets = extra_series_datasets(extra, scan.grid, scan.acquisition, study)
        folder = (
            study_dir.parent / second_study_folder(study) if extra.second_study else study_dir
        ) / series_folder(extra.series_number, extra.description, datasets[0].SeriesInstanceUID)
        written = write_ct_series(datasets, staging / folder)
        size = sum(p.stat().st_size for p in written)
        rows.append(_metadata_row(datasets[0], study, folder, len(written), size))
    seg_info = None
    if plan.has_seg and plan.seg_flavour:
        seg = seg_dataset(ct, mask, "slicer" if collection else plan.seg_flavour, study)
        if collection:
            seg = _as_collection_writer(seg, ct, plan, study)
        seg_dir = study_dir / series_folder(
            int(seg.SeriesNumber), str(seg.SeriesDescription), seg.SeriesInstanceUID
        )
        (staging / seg_dir).mkdir(parents=True)
        seg_path = staging / seg_dir / "1-1.dcm"
        seg.save_as(seg_path)
        rows.append(_metadata_row(seg, study, seg_dir, 1, seg_path.stat().st_size))
        seg_info = {
            "flavour": plan.seg_flavour,
            "series_uid": str(seg.SeriesInstanceUID),
            "frames": int(seg.NumberOfFrames),
            "file": str(seg_dir / "1-1.dcm"),
        }
    log.info(
        "%s: %d slices, %s kernel, nodule %s",
        plan.subject_id,
        len(paths),
        scan.acquisition.kernel,
        scan.nodule["location"],
    )
    result = {
        "subject_id": plan.subject_id,
        "metadata_rows": rows,
        "acquisition": scan.acquisition.to_dict(),
        "grid": {
            "shape": list(scan.grid.shape),
            "spacing_mm": list(scan.grid.spacing_mm),
            "origin_mm": [round(v, 4) for v in scan.grid.origin_mm],
        },
        "nodule": scan.nodule,
        "ct": {"series_uid": str(ct_uid), "folder": str(ct_dir), "n_slices": len(paths)},
        "seg": seg_info,
    }
    if collection:
        result["quirks"] = {
            "ct": variant,
            "slice_positions_mm": None if z_mm is None else [float(z) for z in z_mm],
            "extra_series": [extra.description for extra in extras],
            "seg_duplicate_reference": _duplicate_reference(plan),
        }
    return result


def _duplicate_reference(plan: SubjectPlan) -> bool:
    """Which collection SEGs name a CT instance twice: Slicer SEGs of subjects whose cohort
    index is 2 mod 3 (R01-003 is one, as in the real download), ePAD SEGs of those 3 mod 4."""
    if plan.seg_flavour == "slicer":
        return plan.index % 3 == 2
    return plan.seg_flavour == "epad" and plan.index % 4 == 3


def _as_collection_writer(seg, ct: list, plan: SubjectPlan, study: StudyInfo):
    """A clean one-frame-per-slice SEG rewritten with pydicom as ePAD or 3D Slicer wrote
    theirs (:mod:`rgsynth.twin.quirks`)."""
    buffer = io.BytesIO()
    seg.save_as(buffer)
    buffer.seek(0)
    ds = pydicom.dcmread(buffer)
    rng = np.random.default_rng([plan.seed, 29])
    written = dt.datetime.combine(
        study.study_date + dt.timedelta(days=int(rng.integers(30, 3000))),
        dt.time(int(rng.integers(0, 24)), int(rng.integers(0, 60)), int(rng.integers(0, 60))),
    )
    if plan.seg_flavour == "epad":
        quirks.epad_seg(ds, ct, written, _duplicate_reference(plan))
    else:
        quirks.slicer_seg(ds, written, _duplicate_reference(plan))
    ds.SeriesInstanceUID = study.uid("seg-series", plan.seg_flavour, "collection")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = study.uid(
        "seg", plan.seg_flavour, "collection"
    )
    return ds


def _metadata_row(ds, study: StudyInfo, folder: Path, n_images: int, n_bytes: int) -> dict:
    return {
        "Series UID": str(ds.SeriesInstanceUID),
        "Collection": COLLECTION,
        "3rd Party Analysis": "NO",
        "Data Description URI": "https://doi.org/10.7937/K9/TCIA.2017.7hs46erv",
        "Subject ID": study.subject_id,
        "Study UID": study.study_uid,
        "Study Description": study.study_description,
        "Study Date": f"{study.study_date:%m-%d-%Y}",
        "Series Description": str(ds.SeriesDescription),
        "Manufacturer": str(ds.Manufacturer),
        "Modality": str(ds.Modality),
        "SOP Class Name": "CT Image Storage" if ds.Modality == "CT" else "Segmentation Storage",
        "SOP Class UID": str(ds.SOPClassUID),
        "Number of Images": str(n_images),
        "File Size": f"{n_bytes / 1e6:.2f} MB",
        "File Location": f"./{folder.as_posix()}",
        "Download Timestamp": "2026-01-01T00:00:00.000",
    }


def _write_tables(plan: CohortPlan, results: list[dict], staging: Path) -> None:
    config = plan.config
    collection = config.quirks == "collection"
    quirk_rngs = tables.collection_table_rngs(config.seed) if collection else {}
    table_rng = np.random.default_rng(np.random.SeedSequence([config.seed, 7]))
    metadata_rows = [row for result in results for row in result["metadata_rows"]]
    if collection:
        metadata_rows = _windows_locations(quirk_rngs["metadata"], metadata_rows)
    with open(staging / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(METADATA_COLUMNS))
        writer.writeheader()
        writer.writerows(metadata_rows)

    # The genes are drawn for the clean twin's subjects (so every value is the clean twin's);
    # the collection's table then keeps only the subjects it really has (R01).
    drawn = _drawn_rnaseq(plan)
    n_main = config.n_subjects
    rnaseq_index = [i for i, s in enumerate(plan.subjects[:n_main]) if drawn[i]]
    rnaseq_ids = [plan.subjects[i].subject_id for i in rnaseq_index]
    log2 = biology.log2_expression(table_rng, plan.model, plan.biology.activities[rnaseq_index])
    values, missing = tables.rnaseq_values(
        table_rng, log2, min(config.n_genes_complete, config.n_genes)
    )
    if not rnaseq_index:
        missing = np.zeros_like(missing)
    if config.n_holdout:  # the held-out donors' columns: their own draws, nothing missing
        values, missing, rnaseq_ids = _holdout_expression(plan, values, missing, rnaseq_ids)
        atomic_write_text(
            staging / HOLDOUT_FILENAME,
            "subject_id\n" + "".join(f"{sid}\n" for sid in holdout_ids(config.n_holdout)),
        )
    gene_names, all_na_rows = list(plan.model.gene_names), None
    if collection:
        keep = [n for n, sid in enumerate(rnaseq_ids) if tables.collection_has_rnaseq(sid, True)]
        geo = tables.collection_rnaseq(
            quirk_rngs["rnaseq"],
            gene_names,
            [rnaseq_ids[n] for n in keep],
            values[:, keep],
            missing[:, keep],
        )
        tables.write_rnaseq(
            staging / tables.RNASEQ_FILENAME,
            geo.gene_names,
            geo.subject_ids,
            geo.values,
            geo.missing,
        )
        gene_names, all_na_rows, complete = (
            geo.model_gene_names(),
            geo.all_na_rows,
            geo.model_complete(),
        )
        plan = dataclasses.replace(
            plan,
            subjects=[
                dataclasses.replace(
                    s, has_rnaseq=tables.collection_has_rnaseq(s.subject_id, s.has_rnaseq)
                )
                for s in plan.subjects
            ],
        )
    else:
        tables.write_rnaseq(
            staging / tables.RNASEQ_FILENAME, gene_names, rnaseq_ids, values, missing
        )
        complete = ~missing.any(axis=1)

    subjects = []
    for plan_i, study, result in zip(plan.subjects, plan.studies, results, strict=True):
        subjects.append(
            {
                "subject_id": plan_i.subject_id,
                "subtype": int(plan.biology.subtype[plan_i.index]),
                "traits": plan_i.traits,
                "nodule": result["nodule"],
                "age": study.patient_age_years,
                "sex": study.patient_sex,
            }
        )
    clinical = tables.clinical_rows(table_rng, subjects)
    if collection:
        clinical = tables.collection_clinical_rows(
            quirk_rngs["clinical"], clinical, [study.study_date for study in plan.studies]
        )
        tables.write_collection_clinical(staging / tables.CLINICAL_FILENAME, clinical)
    else:
        tables.write_clinical(staging / tables.CLINICAL_FILENAME, clinical)
    truth = _ground_truth(plan, results, complete)
    if collection:  # the genes by the names the table gives them, and its rows of no gene
        truth["genes"]["names"] = gene_names
        truth["genes"]["all_na_rows"] = all_na_rows
    atomic_write_json(staging / GROUND_TRUTH_FILENAME, truth)


def _holdout_expression(
    plan: CohortPlan, values: np.ndarray, missing: np.ndarray, ids: list[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The table with the held-out donors' columns appended. They miss no value, so the
    genes complete over the cohort's subjects stay the complete ones."""
    n_main, n_held = plan.config.n_subjects, plan.config.n_holdout
    rng = np.random.default_rng(np.random.SeedSequence([plan.config.seed, 43]))
    log2 = biology.log2_expression(rng, plan.model, plan.biology.activities[n_main:])
    held, _ = tables.rnaseq_values(rng, log2, plan.config.n_genes)
    return (
        np.hstack([values, held]),
        np.hstack([missing, np.zeros((missing.shape[0], n_held), dtype=bool)]),
        ids + holdout_ids(n_held),
    )


def _drawn_rnaseq(plan: CohortPlan) -> list[bool]:
    """Who the clean twin of this config draws genes for (the collection's plan may have
    dropped the AMC subjects already; their draws still shape everyone else's values)."""
    if plan.config.quirks == "none":
        return [s.has_rnaseq for s in plan.subjects]
    clean = plan_cohort(dataclasses.replace(plan.config, quirks="none"))
    if [s.subject_id for s in clean.subjects] != [s.subject_id for s in plan.subjects]:
        raise RuntimeError("the collection twin's subjects differ from the clean twin's")
    return [s.has_rnaseq for s in clean.subjects]


def _windows_locations(rng: np.random.Generator, rows: list[dict]) -> list[dict]:
    """Some subjects' rows with ``File Location`` as a download made on Windows writes it,
    ``.\\NSCLC Radiogenomics\\R01-001\\...`` (in a cohort of two or more: some, not all)."""
    subjects = sorted({row["Subject ID"] for row in rows})
    chosen = rng.random(len(subjects)) < 0.5
    if not subjects:
        return rows
    if not chosen.any():
        chosen[rng.integers(len(subjects))] = True
    elif chosen.all() and len(subjects) >= 2:
        chosen[rng.integers(len(subjects))] = False
    windows = {s for s, c in zip(subjects, chosen, strict=True) if c}
    out = []
    for row in rows:
        location = row["File Location"]
        if row["Subject ID"] in windows:
            location = ".\\" + location.removeprefix("./").replace("/", "\\")
        out.append({**row, "File Location": location})
    return out


def _ground_truth(plan: CohortPlan, results: list[dict], complete: np.ndarray) -> dict:
    model, cohort = plan.model, plan.biology
    programs = []
    for k, name in enumerate(model.program_names):
        drives = [
            {"trait": t, "effect": round(float(model.effects[i, k]), 4)}
            for i, t in enumerate(biology.TRAITS)
            if model.effects[i, k]
        ]
        programs.append(
            {
                "name": name,
                "null": not drives,
                "drives": drives,
                "n_genes": int((model.gene_program == k).sum()),
                "n_complete_genes": int(((model.gene_program == k) & complete).sum()),
            }
        )
    subjects = []
    for s, study, result in zip(plan.subjects, plan.studies, results, strict=True):
        i = s.index
        subjects.append(
            {
                "subject_id": s.subject_id,
                "nuisance_seed": s.seed,
                "subtype": int(cohort.subtype[i]),
                "activities": [round(float(v), 5) for v in cohort.activities[i]],
                "trait_latents": [round(float(v), 5) for v in cohort.trait_latents[i]],
                "traits": s.traits,
                "nodule": result["nodule"],
                "has_rnaseq": s.has_rnaseq,
                "has_seg": s.has_seg,
                "seg": result["seg"],
                "ct": result["ct"],
                "grid": result["grid"],
                "acquisition": result["acquisition"],
                "patient": {"sex": study.patient_sex, "age": study.patient_age_years},
                **({"quirks": result["quirks"]} if "quirks" in result else {}),
                **({"holdout": True} if i >= plan.config.n_subjects else {}),
            }
        )
    return {
        "format": "rgsynth-twin-ground-truth",
        "version": TWIN_VERSION,
        "config": plan.config.to_dict(),
        "config_fingerprint": plan.config.fingerprint(),
        "traits": list(biology.TRAITS),
        "trait_notes": {
            "diameter": "diameter_mm = clip(15 * exp(0.5 z), 5, 40)",
            "solidity": "solid_fraction = clip((sigmoid(1.8 z + 0.5) - 0.2) / 0.6, 0, 1); "
            "0 = ground-glass, 1 = solid",
            "spiculation": "sigmoid(1.6 z): number and length of spicules",
            "lobulation": "sigmoid(1.6 z): amplitude of margin lobes",
            "heterogeneity": "sigmoid(1.6 z): internal texture amplitude, air lucencies > 0.6",
            "location": "z < -0.43 free, < 0.43 juxta-vascular, else juxta-pleural",
        },
        "programs": programs,
        "effects": {
            "rows": list(biology.TRAITS),
            "columns": model.program_names,
            "matrix": [[round(float(v), 4) for v in row] for row in model.effects],
            "meaning": "trait latent = effects @ program activities + noise; unit variance, "
            "so each entry is the latent's correlation with the program",
        },
        "subtypes": [
            {
                "index": j,
                "name": biology.SUBTYPE_NAMES[j % len(biology.SUBTYPE_NAMES)],
                "mean_activity": [round(float(v), 4) for v in model.subtype_means[j]],
                "n_subjects": int((cohort.subtype == j).sum()),
            }
            for j in range(model.subtype_means.shape[0])
        ],
        "genes": {
            "names": list(model.gene_names),
            "program": [int(v) for v in model.gene_program],
            "loading": [round(float(v), 4) for v in model.gene_loading],
            "complete": [bool(v) for v in complete],
            "meaning": "log2 expression = baseline + loading * activity[program] + noise; "
            "program -1 = no program",
        },
        "subjects": subjects,
    }


def _choose(rng: np.random.Generator, n: int, fraction: float) -> np.ndarray:
    """A boolean mask with round(fraction * n) True entries at random positions.

    Small cohorts keep at least one subject on each side when 0 < fraction < 1, so even the
    tiny preset exercises both cases (with and without genes, both SEG flavours).
    """
    k = round(fraction * n)
    if n >= 2 and 0.0 < fraction < 1.0:
        k = min(max(k, 1), n - 1)
    chosen = np.zeros(n, dtype=bool)
    chosen[rng.permutation(n)[:k]] = True
    return chosen
