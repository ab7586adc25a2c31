"""Every kind of bad input: one line naming subject, file and problem; exit 2; with
``--on-error skip`` the run goes on and the manifest records the skip."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from rgsynth.cli import app
from rgsynth.io import tcia
from rgsynth.twin.tables import RNASEQ_FILENAME

runner = CliRunner()


def prepare(cohort: Path, out: Path, *extra: str):
    return runner.invoke(app, ["prepare", str(cohort), "--out", str(out), "--workers", "1", *extra])


def assert_one_line_error(result, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def subject_dir(cohort: Path, subject_id: str) -> Path:
    return cohort / "NSCLC Radiogenomics" / subject_id


def series_files(cohort: Path, subject_id: str, modality: str) -> list[Path]:
    files = sorted(subject_dir(cohort, subject_id).rglob("*.dcm"))
    return [f for f in files if pydicom.dcmread(f, stop_before_pixels=True).Modality == modality]


def skipped(out: Path) -> dict[str, dict]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {entry["subject_id"]: entry for entry in manifest["skipped"]}


def test_truncated_dicom_slice(cohort_copy: Path, tmp_path: Path) -> None:
    victim = series_files(cohort_copy, "R01-002", "CT")[5]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    result = prepare(cohort_copy, tmp_path / "cache")
    assert_one_line_error(result, "subject R01-002", victim.name, "unreadable")
    assert not (tmp_path / "cache" / "manifest.json").exists()

    result = prepare(cohort_copy, tmp_path / "cache", "--on-error", "skip")
    assert result.exit_code == 0, result.output
    entry = skipped(tmp_path / "cache")["R01-002"]
    assert entry["file"].endswith(victim.name) and "unreadable" in entry["problem"]
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert {s["subject_id"] for s in manifest["subjects"]} == {"R01-001", "AMC-001"}


def test_non_dicom_file_with_dcm_suffix(cohort_copy: Path, tmp_path: Path) -> None:
    victim = series_files(cohort_copy, "AMC-001", "CT")[0].parent / "1-999.dcm"
    victim.write_text("this is not DICOM\n")
    result = prepare(cohort_copy, tmp_path / "cache")
    assert_one_line_error(result, "subject AMC-001", "1-999.dcm", "not a readable DICOM file")


def test_seg_whose_referenced_series_is_missing(cohort_copy: Path, tmp_path: Path) -> None:
    ct_folder = series_files(cohort_copy, "R01-001", "CT")[0].parent
    shutil.rmtree(ct_folder)
    (cohort_copy / "metadata.csv").unlink()  # the listing would name the deleted folder
    result = prepare(cohort_copy, tmp_path / "cache")
    seg = series_files(cohort_copy, "R01-001", "SEG")[0]
    assert_one_line_error(result, "subject R01-001", seg.name, "references CT series")


def test_seg_on_another_frame_of_reference(cohort_copy: Path, tmp_path: Path) -> None:
    seg_path = series_files(cohort_copy, "R01-002", "SEG")[0]
    seg = pydicom.dcmread(seg_path)
    seg.FrameOfReferenceUID = pydicom.uid.generate_uid(entropy_srcs=["elsewhere"])
    seg.save_as(seg_path)
    result = prepare(cohort_copy, tmp_path / "cache")
    assert_one_line_error(result, "subject R01-002", seg_path.name, "frame of reference")


def test_empty_mask(cohort_copy: Path, tmp_path: Path) -> None:
    seg_path = series_files(cohort_copy, "AMC-001", "SEG")[0]  # slicer flavour: all frames
    seg = pydicom.dcmread(seg_path)
    seg.PixelData = bytes(len(seg.PixelData))
    seg.save_as(seg_path)
    result = prepare(cohort_copy, tmp_path / "cache")
    assert_one_line_error(result, "subject AMC-001", seg_path.name, "mask is empty")


def test_non_axial_orientation(cohort_copy: Path, tmp_path: Path) -> None:
    ct_files = series_files(cohort_copy, "R01-002", "CT")
    for n, path in enumerate(ct_files):  # a coronal series: rows along x, columns along -z
        ds = pydicom.dcmread(path)
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
        ds.ImagePositionPatient = [-100.0, float(n), 50.0]
        ds.save_as(path)
    result = prepare(cohort_copy, tmp_path / "cache")
    assert_one_line_error(result, "subject R01-002", ct_files[0].parent.name, "non-axial")


def test_very_thick_slices(cohort_copy: Path, tmp_path: Path) -> None:
    result = prepare(cohort_copy, tmp_path / "cache", "--max-slice-mm", "0.9")
    assert_one_line_error(result, "subject", "slice spacing", "--max-slice-mm")


def test_duplicated_subject_id(cohort_copy: Path, tmp_path: Path) -> None:
    # A second folder holding the same patient, as when a download is unpacked twice.
    shutil.copytree(subject_dir(cohort_copy, "R01-001"), subject_dir(cohort_copy, "R01-001 (1)"))
    (cohort_copy / "metadata.csv").unlink()
    result = prepare(cohort_copy, tmp_path / "cache")
    assert_one_line_error(result, "subject R01-001", "duplicated subject ID")


def _rewrite_table(cohort: Path, edit) -> Path:
    path = cohort / RNASEQ_FILENAME
    with gzip.open(path, "rt") as handle:
        lines = handle.read().splitlines()
    lines = edit(lines)
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("token", "what"), [("high", "non-numeric"), ("inf", "infinite")])
def test_bad_expression_value(cohort_copy: Path, tmp_path: Path, token: str, what: str) -> None:
    def spoil(lines: list[str]) -> list[str]:
        header = lines[0].split("\t")
        column = header.index("R01-002")
        cells = lines[3].split("\t")
        cells[column] = token
        lines[3] = "\t".join(cells)
        return lines

    path = _rewrite_table(cohort_copy, spoil)
    result = prepare(cohort_copy, tmp_path / "cache")
    assert_one_line_error(result, "subject R01-002", path.name, what)

    result = prepare(cohort_copy, tmp_path / "cache", "--on-error", "skip")
    assert result.exit_code == 0, result.output
    assert what in skipped(tmp_path / "cache")["R01-002"]["problem"]
    with np.load(tmp_path / "cache" / "genes.npz") as stored:
        assert "R01-002" not in set(stored["subject_ids"])


def test_subject_with_genes_but_no_images(cohort_copy: Path, tmp_path: Path) -> None:
    def add_subject(lines: list[str]) -> list[str]:
        # R01-777 gets a copy of the first subject's values.
        return [lines[0] + "\tR01-777"] + [line + "\t" + line.split("\t")[1] for line in lines[1:]]

    path = _rewrite_table(cohort_copy, add_subject)
    result = prepare(cohort_copy, tmp_path / "cache")
    assert_one_line_error(result, "subject R01-777", path.name, "has genes but no images")

    result = prepare(cohort_copy, tmp_path / "cache", "--on-error", "skip")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["unmatched"]["genes_without_images"] == ["R01-777"]


def test_nodule_touching_the_volume_edge_is_padded(cohort_copy: Path, tmp_path: Path) -> None:
    """Cut the CT just above the nodule centre: the VOI is padded, nothing crashes."""
    source = next(s for s in tcia.discover(cohort_copy)[0] if s.subject_id == "R01-002")
    images = tcia.load(source)
    z_centre = int(np.argwhere(images.nodule_mask)[:, 0].mean())
    ct_files = sorted(
        series_files(cohort_copy, "R01-002", "CT"),
        key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]),
    )
    for path in ct_files[z_centre + 1 :]:
        path.unlink()
    # The SEG still references the removed slices, so its frames are placed by position.
    (cohort_copy / "metadata.csv").unlink()
    out = tmp_path / "cache"
    result = prepare(cohort_copy, out)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "subjects" / "R01-002.json").read_text())
    assert any("padded" in note for note in record["notes"])
    with np.load(out / "subjects" / "R01-002.npz") as shard:
        assert shard["nodule_mask"].any(axis=(1, 2)).all()
    assert any("patient position" in note for note in record["notes"])
