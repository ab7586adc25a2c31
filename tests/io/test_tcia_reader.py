"""The TCIA reader: both folder layouts, SEG → CT matching three ways, documented choices."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from rgsynth.io.source import keep_largest_nodule
from rgsynth.io.tcia import load_all


def test_descriptive_layout_matches_truth(tiny_cohort: Path, tiny_truth: dict) -> None:
    loaded = load_all(tiny_cohort)
    truth = {s["subject_id"]: s for s in tiny_truth["subjects"]}
    assert set(loaded) == set(truth)
    for subject_id, images in loaded.items():
        subject = truth[subject_id]
        if not subject["has_seg"]:
            assert images is None
            continue
        assert images.hu.shape[0] == subject["ct"]["n_slices"]
        assert images.nodule_mask.sum() == subject["nodule"]["mask_voxels"]
        assert images.spacing_mm[1] == pytest.approx(subject["acquisition"]["pixel_spacing_mm"])
        centroid = images.index_to_mm(np.argwhere(images.nodule_mask).mean(axis=0))
        assert np.linalg.norm(centroid - subject["nodule"]["centre_mm"]) < 3.0
        assert "referenced SOP Instance UID" in images.notes[0]


def _uid_layout(source: Path, out: Path) -> None:
    """TCIA's "classic" layout: <PatientID>/<StudyUID>/<SeriesUID>/<SOPUID>.dcm, no CSV."""
    for path in sorted(source.rglob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        folder = out / str(ds.PatientID) / ds.StudyInstanceUID / ds.SeriesInstanceUID
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / f"{ds.SOPInstanceUID}.dcm")


def test_uid_named_layout_without_metadata(small_cohort: Path, tmp_path: Path) -> None:
    _uid_layout(small_cohort, tmp_path / "uid")
    descriptive, uid_named = load_all(small_cohort), load_all(tmp_path / "uid")
    assert set(descriptive) == set(uid_named) == {"AMC-001", "R01-001", "R01-002"}
    for subject_id, images in descriptive.items():
        np.testing.assert_array_equal(uid_named[subject_id].hu, images.hu)
        np.testing.assert_array_equal(uid_named[subject_id].nodule_mask, images.nodule_mask)


def _seg_paths(root: Path) -> list[Path]:
    return [
        p
        for p in sorted(root.rglob("*.dcm"))
        if pydicom.dcmread(p, stop_before_pixels=True).Modality == "SEG"
    ]


def test_seg_without_references_is_placed_by_frame_of_reference_and_position(
    small_cohort: Path, cohort_copy: Path
) -> None:
    for path in _seg_paths(cohort_copy):
        ds = pydicom.dcmread(path)
        del ds.ReferencedSeriesSequence
        for item in ds.PerFrameFunctionalGroupsSequence:
            del item.DerivationImageSequence
        ds.save_as(path)
    by_uid, by_position = load_all(small_cohort), load_all(cohort_copy)
    for subject_id, images in by_uid.items():
        placed = by_position[subject_id]
        np.testing.assert_array_equal(placed.nodule_mask, images.nodule_mask)
        assert any("patient position" in note for note in placed.notes)


def test_several_segs_choose_the_lowest_series_number(cohort_copy: Path) -> None:
    original = next(p for p in _seg_paths(cohort_copy) if "R01-002" in str(p))
    extra = pydicom.dcmread(original)
    extra.SeriesNumber = int(extra.SeriesNumber) + 5000
    extra.SeriesInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["second seg series"])
    extra.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["second seg instance"])
    extra.PixelData = bytes(len(extra.PixelData))  # empty: choosing it would fail
    (original.parent.parent / "9000-second").mkdir()
    extra.save_as(original.parent.parent / "9000-second" / "1-1.dcm")
    (cohort_copy / "metadata.csv").unlink()
    images = load_all(cohort_copy)["R01-002"]
    assert images.nodule_mask.any()
    assert any("2 SEGs found" in note and original.name in note for note in images.notes)


def test_keep_largest_nodule_reports_the_others() -> None:
    mask = np.zeros((10, 20, 20), dtype=bool)
    mask[2:5, 2:5, 2:5] = True  # 27 voxels
    mask[6:9, 10:16, 10:16] = True  # 108 voxels, the primary
    kept, notes = keep_largest_nodule(mask, (2.0, 1.0, 1.0), "R01-123", "seg.dcm")
    assert kept.sum() == 108 and kept[7, 12, 12]
    assert notes == ["2 separate regions in the mask (0.22, 0.05 mL); kept the largest"]


def test_windows_metadata_paths_and_a_localizer_in_the_ct_series(
    small_cohort: Path, cohort_copy: Path
) -> None:
    metadata = cohort_copy / "metadata.csv"
    metadata.write_text(
        metadata.read_text().replace("./NSCLC Radiogenomics/", ".\\NSCLC Radiogenomics\\")
    )
    ct_slice = next(
        p
        for p in sorted((cohort_copy / "NSCLC Radiogenomics" / "R01-001").rglob("*.dcm"))
        if pydicom.dcmread(p, stop_before_pixels=True).Modality == "CT"
    )
    scout = pydicom.dcmread(ct_slice)  # a coronal scout filed in the same series
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    scout.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["scout"])
    scout.save_as(ct_slice.parent / "1-000.dcm")
    expected, got = load_all(small_cohort), load_all(cohort_copy)
    for subject_id, images in expected.items():
        np.testing.assert_array_equal(got[subject_id].hu, images.hu)
        np.testing.assert_array_equal(got[subject_id].nodule_mask, images.nodule_mask)
