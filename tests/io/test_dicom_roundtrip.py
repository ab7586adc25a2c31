"""What goes into DICOM comes back out aligned: pixels, geometry and the nodule mask.

Slice-order flips are the classic SEG bug, so masks here are asymmetric along z and
in-plane, instance numbers run both ways, and both SEG flavours are read.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from rgsynth.io.dicom_read import read_ct_series, read_seg_mask
from rgsynth.io.montage import cohort_series
from rgsynth.twin.cohort import plan_cohort
from rgsynth.twin.dicom_write import StudyInfo, ct_datasets, seg_dataset, write_ct_series
from rgsynth.twin.subject import render_subject


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("flavour", ["slicer", "epad"])
def test_asymmetric_mask_round_trip(
    tmp_path: Path, descending: bool, flavour: str, write_asymmetric_case
) -> None:
    hu, mask, grid, seg = write_asymmetric_case(
        tmp_path / "ct", tmp_path / "seg.dcm", descending, flavour
    )
    assert int(seg.NumberOfFrames) == (9 if flavour == "slicer" else 3)

    ct = read_ct_series(tmp_path / "ct")
    np.testing.assert_array_equal(ct.hu, hu.astype(np.float32))
    assert ct.origin_mm == pytest.approx(grid.origin_mm)
    assert ct.spacing_mm == pytest.approx(grid.spacing_mm)
    read_mask = read_seg_mask(tmp_path / "seg.dcm", ct)
    np.testing.assert_array_equal(read_mask, mask)
    assert not np.array_equal(read_mask[::-1], mask), "the test mask must be z-asymmetric"


def test_twin_subject_round_trip(tiny_cohort: Path, tiny_config) -> None:
    """Every SEG read back from disk equals the mask the generator rendered."""
    plan = plan_cohort(tiny_config)
    series = cohort_series(tiny_cohort)
    checked = set()
    for subject in plan.subjects:
        entry = series[subject.subject_id]
        if "SEG" not in entry:
            continue
        scan = render_subject(subject)
        ct = read_ct_series(entry["CT"])
        np.testing.assert_array_equal(ct.hu, scan.hu.astype(np.float32))
        mask = read_seg_mask(entry["SEG"], ct)
        np.testing.assert_array_equal(mask, scan.nodule_mask)
        checked.add((subject.seg_flavour, scan.acquisition.descending_instances))
    assert {flavour for flavour, _ in checked} == {"slicer", "epad"}


def test_seg_on_a_missing_series_is_reported(tmp_path: Path, asymmetric_case, acquisition) -> None:
    hu, mask, grid = asymmetric_case
    study = StudyInfo("R01-999", 0, dt.date(1995, 3, 1), "CHEST", "F", 70)
    datasets = ct_datasets(hu, grid, acquisition(False), study, series_number=3)
    seg_dataset(datasets, mask, "slicer", study).save_as(tmp_path / "seg.dcm")
    other = ct_datasets(
        hu,
        grid,
        acquisition(False),
        StudyInfo("R01-998", 0, dt.date(1995, 3, 1), "CHEST", "F", 70),
        3,
    )
    write_ct_series(other, tmp_path / "other")
    with pytest.raises(ValueError, match="referenced CT instances are not in the series"):
        read_seg_mask(tmp_path / "seg.dcm", read_ct_series(tmp_path / "other"))


def test_independent_validator_finds_no_errors(
    tiny_cohort: Path, tiny_truth: dict, dicom_errors
) -> None:
    files = []
    for subject in tiny_truth["subjects"][:4]:
        files.append(next((tiny_cohort / subject["ct"]["folder"]).glob("*.dcm")))
    files += [tiny_cohort / s["seg"]["file"] for s in tiny_truth["subjects"] if s["seg"]]
    for path in files:
        assert not dicom_errors(path), path


def test_simpleitk_reads_twin_ct_in_hu(tiny_cohort: Path, tiny_truth: dict) -> None:
    subject = tiny_truth["subjects"][0]
    ct = read_ct_series(tiny_cohort / subject["ct"]["folder"])
    assert ct.hu.shape == tuple(subject["grid"]["shape"])
    assert ct.hu.min() >= -1024 and -1024 <= np.median(ct.hu) < 0
    lung_like = ((ct.hu > -950) & (ct.hu < -700)).mean()
    assert lung_like > 0.05, "lungs should fill a good part of the slab"


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("flavour", ["slicer", "epad"])
def test_tcia_reader_aligns_asymmetric_mask(
    tmp_path: Path, descending: bool, flavour: str, write_asymmetric_case
) -> None:
    """The whole reader path (discovery, SEG → CT matching, LPS orientation) on an L shape."""
    from rgsynth.io import tcia

    study = tmp_path / "R01-999" / "study"
    hu, mask, grid, _ = write_asymmetric_case(
        study / "3-ct", study / "300-seg" / "1-1.dcm", descending, flavour
    )
    sources, problems = tcia.discover(tmp_path)
    assert [s.subject_id for s in sources] == ["R01-999"] and problems == []
    images = tcia.load(sources[0])
    np.testing.assert_array_equal(images.hu, hu.astype(np.float32))
    np.testing.assert_array_equal(images.nodule_mask, mask)
    assert images.origin_mm == pytest.approx(grid.origin_mm)
