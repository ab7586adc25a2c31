"""The twin's files look like the real collection's, and agree with the ground truth."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pydicom
import pytest

from rgsynth.twin.cohort import METADATA_COLUMNS
from rgsynth.twin.tables import CLINICAL_FILENAME, MISSING_TOKENS, RNASEQ_FILENAME

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


def _metadata(cohort: Path) -> list[dict[str, str]]:
    with open(cohort / "metadata.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == METADATA_COLUMNS
        return list(reader)


def test_layout_matches_tcia(tiny_cohort: Path, tiny_truth: dict) -> None:
    rows = _metadata(tiny_cohort)
    subjects = {s["subject_id"] for s in tiny_truth["subjects"]}
    assert {r["Subject ID"] for r in rows} == subjects
    assert any(s.startswith("R01-") for s in subjects) and any(
        s.startswith("AMC-") for s in subjects
    )
    for row in rows:
        folder = tiny_cohort / row["File Location"]
        parts = Path(row["File Location"]).parts
        assert row["File Location"].startswith("./")
        assert parts[:2] == ("NSCLC Radiogenomics", row["Subject ID"])
        study, series = parts[2], parts[3]
        assert study.startswith(row["Study Date"] + "-NA-") and study.endswith(
            row["Study UID"][-5:]
        )
        assert series.endswith(row["Series UID"][-5:]) and ".000000-" in series
        files = sorted(folder.glob("*.dcm"))
        assert len(files) == int(row["Number of Images"])
        assert all(f.name.startswith("1-") for f in files)
        assert row["SOP Class UID"] == (CT_STORAGE if row["Modality"] == "CT" else SEG_STORAGE)


def test_ct_series_geometry(tiny_cohort: Path, tiny_config) -> None:
    for row in _metadata(tiny_cohort):
        if row["Modality"] != "CT":
            continue
        slices = [pydicom.dcmread(f) for f in (tiny_cohort / row["File Location"]).glob("*.dcm")]
        first = slices[0]
        assert first.SOPClassUID == CT_STORAGE and "NumberOfFrames" not in first
        assert (first.BitsAllocated, first.PixelRepresentation) == (16, 1)
        assert first.pixel_array.dtype == np.int16
        assert float(first.RescaleIntercept) == -1024 and float(first.RescaleSlope) == 1
        spacing = [float(v) for v in first.PixelSpacing]
        assert spacing[0] == spacing[1]
        assert tiny_config.pixel_spacing_mm[0] <= spacing[0] <= tiny_config.pixel_spacing_mm[1]
        thickness = float(first.SliceThickness)
        assert thickness in tiny_config.slice_thickness_mm
        z = sorted(float(s.ImagePositionPatient[2]) for s in slices)
        np.testing.assert_allclose(np.diff(z), thickness, atol=1e-3)
        for s in slices:
            assert [float(v) for v in s.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
            assert [float(v) for v in s.PixelSpacing] == spacing
            assert float(s.SliceThickness) == thickness
            assert s.FrameOfReferenceUID == first.FrameOfReferenceUID
            hu = s.pixel_array.astype(np.int32) - 1024
            assert hu.min() >= -1024 and hu.max() <= 3071


def test_acquisitions_vary_between_subjects(tiny_truth: dict) -> None:
    acquisitions = [s["acquisition"] for s in tiny_truth["subjects"]]
    assert len({a["pixel_spacing_mm"] for a in acquisitions}) > 1
    assert len({a["slice_thickness_mm"] for a in acquisitions}) > 1
    assert {a["kernel"] for a in acquisitions} == {"smooth", "sharp"}
    assert len({a["descending_instances"] for a in acquisitions}) == 2


def test_seg_flavours(tiny_cohort: Path, tiny_truth: dict) -> None:
    flavours = set()
    for subject in tiny_truth["subjects"]:
        seg = subject["seg"]
        if not subject["has_seg"]:
            assert seg is None
            continue
        flavours.add(seg["flavour"])
        ds = pydicom.dcmread(tiny_cohort / seg["file"])
        assert ds.SOPClassUID == SEG_STORAGE and ds.SegmentationType == "BINARY"
        n_slices = subject["ct"]["n_slices"]
        if seg["flavour"] == "slicer":
            assert ds.SeriesDescription == "3D Slicer segmentation result"
            assert int(ds.NumberOfFrames) == n_slices
        else:
            assert ds.SeriesDescription == "ePAD Generated DSO"
            assert 0 < int(ds.NumberOfFrames) < n_slices
            assert all(frame.any() for frame in ds.pixel_array.reshape(int(ds.NumberOfFrames), -1))
    assert flavours == {"slicer", "epad"}
    assert not all(s["has_seg"] for s in tiny_truth["subjects"]), "some subjects have no SEG"


def test_rnaseq_table_format(tiny_cohort: Path, tiny_truth: dict, tiny_config) -> None:
    with gzip.open(tiny_cohort / RNASEQ_FILENAME, "rt") as handle:
        lines = handle.read().splitlines()
    header = lines[0].split("\t")
    assert header[0] == "", "GEO tables start with an empty header field"
    with_genes = [s["subject_id"] for s in tiny_truth["subjects"] if s["has_rnaseq"]]
    assert sorted(header[1:]) == sorted(with_genes)
    assert 0 < len(with_genes) < len(tiny_truth["subjects"])
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == tiny_config.n_genes
    assert [r[0] for r in rows] == tiny_truth["genes"]["names"]
    cells = np.array([r[1:] for r in rows])
    missing = cells == "NA"
    assert (~missing.any(axis=1)).sum() == tiny_config.n_genes_complete
    assert list(~missing.any(axis=1)) == tiny_truth["genes"]["complete"]
    values = cells[~missing].astype(float)
    assert values.min() >= 0 and np.isfinite(values).all()
    assert (values == 0).any(), "low genes have exact zeros"
    assert values.max() > 50 * np.median(values[values > 0]), "heavy-tailed outliers"


def test_clinical_table(tiny_cohort: Path, tiny_truth: dict) -> None:
    with open(tiny_cohort / CLINICAL_FILENAME, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        columns = reader.fieldnames or []
    for column in (
        "Case ID",
        "Histology ",
        "%GG",
        "EGFR mutation status",
        "KRAS mutation status",
        "Recurrence",
        "Survival Status",
    ):
        assert column in columns
    assert [r["Case ID"] for r in rows] == [s["subject_id"] for s in tiny_truth["subjects"]]
    lobes = {s["subject_id"]: s["nodule"]["lobe"] for s in tiny_truth["subjects"]}
    for row in rows:
        checked = [c for c in columns if c.startswith("Tumor Location") and row[c] == "Checked"]
        assert checked == [f"Tumor Location (choice={lobes[row['Case ID']]})"]


def test_clinical_missing_tokens_are_mixed() -> None:
    from rgsynth.twin.tables import clinical_rows

    subjects = [
        {
            "subject_id": f"R01-{i:03d}",
            "subtype": i % 3,
            "age": 60,
            "sex": "F",
            "traits": {"ground_glass_volume_fraction": 0.5},
            "nodule": {"diameter_mm": 15.0, "lobe": "RUL"},
        }
        for i in range(300)
    ]
    rows = clinical_rows(np.random.default_rng(0), subjects)
    seen = {value for row in rows for value in row.values()}
    assert {"N/A", "Not Collected", "Unknown"} <= seen
    assert set(MISSING_TOKENS) & seen


@pytest.mark.slow
def test_paper_sized_gene_table_has_5172_complete_genes(tmp_path: Path) -> None:
    from rgsynth.config import twin_preset
    from rgsynth.twin import biology, tables
    from rgsynth.twin.cohort import plan_cohort

    plan = plan_cohort(twin_preset("paper"))
    ids = [s.subject_id for s in plan.subjects if s.has_rnaseq]
    assert len(ids) == 130
    index = [s.index for s in plan.subjects if s.has_rnaseq]
    rng = np.random.default_rng(0)
    log2 = biology.log2_expression(rng, plan.model, plan.biology.activities[index])
    values, missing = tables.rnaseq_values(rng, log2, 5172)
    path = tmp_path / tables.RNASEQ_FILENAME
    tables.write_rnaseq(path, list(plan.model.gene_names), ids, values, missing)
    with gzip.open(path, "rt") as handle:
        next(handle)
        complete = sum("\tNA" not in line for line in handle)
    assert len(plan.model.gene_names) == 22126
    assert complete == 5172
