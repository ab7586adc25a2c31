"""What goes into DICOM comes back out aligned: pixels, geometry and the nodule mask.

Slice-order flips are the classic SEG bug, so masks here are asymmetric along z and
in-plane, instance numbers run both ways, and both SEG flavours are read.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset

from rgsynth.io.dicom_read import read_ct_series, read_seg_mask
from rgsynth.io.montage import cohort_series
from rgsynth.twin.anatomy import Grid
from rgsynth.twin.cohort import plan_cohort
from rgsynth.twin.dicom_write import StudyInfo, ct_datasets, seg_dataset, write_ct_series
from rgsynth.twin.scanner import Acquisition
from rgsynth.twin.subject import render_subject


def _acquisition(descending: bool) -> Acquisition:
    return Acquisition(
        pixel_spacing_mm=0.7,
        slice_thickness_mm=2.0,
        kernel="sharp",
        kernel_name="LUNG",
        manufacturer="GE MEDICAL SYSTEMS",
        model="LightSpeed VCT",
        noise_sd_hu=50.0,
        kvp=120.0,
        tube_current_ma=200,
        contrast=False,
        descending_instances=descending,
    )


def _asymmetric_case() -> tuple[np.ndarray, np.ndarray, Grid]:
    """A 9-slice CT with an L-shaped mask present on slices 2-4 only, growing with z."""
    grid = Grid((9, 32, 40), (2.0, 0.7, 0.7), (-14.0, -11.0, 100.0))
    hu = np.full(grid.shape, -800, dtype=np.int16)
    hu += np.arange(9, dtype=np.int16)[:, None, None] * 10  # each slice distinguishable
    mask = np.zeros(grid.shape, dtype=bool)
    mask[2, 5:8, 6:9] = True
    mask[3, 5:15, 6:9] = True
    mask[4, 5:15, 6:20] = True
    hu[mask] = 40
    return hu, mask, grid


def _write_asymmetric_case(
    ct_folder: Path, seg_path: Path, descending: bool, flavour: str
) -> tuple[np.ndarray, np.ndarray, Grid, Dataset]:
    """Write the L-shaped case as a CT series and a SEG; return (hu, mask, grid, SEG)."""
    hu, mask, grid = _asymmetric_case()
    study = StudyInfo("R01-999", 0, dt.date(1995, 3, 1), "CHEST", "F", 70)
    datasets = ct_datasets(hu, grid, _acquisition(descending), study, series_number=3)
    write_ct_series(datasets, ct_folder)
    seg = seg_dataset(datasets, mask, flavour, study)
    seg_path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(seg_path)
    return hu, mask, grid, seg


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("flavour", ["slicer", "epad"])
def test_asymmetric_mask_round_trip(tmp_path: Path, descending: bool, flavour: str) -> None:
    hu, mask, grid, seg = _write_asymmetric_case(
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


def test_seg_on_a_missing_series_is_reported(tmp_path: Path) -> None:
    hu, mask, grid = _asymmetric_case()
    study = StudyInfo("R01-999", 0, dt.date(1995, 3, 1), "CHEST", "F", 70)
    datasets = ct_datasets(hu, grid, _acquisition(False), study, series_number=3)
    seg_dataset(datasets, mask, "slicer", study).save_as(tmp_path / "seg.dcm")
    other = ct_datasets(
        hu,
        grid,
        _acquisition(False),
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
def test_tcia_reader_aligns_asymmetric_mask(tmp_path: Path, descending: bool, flavour: str) -> None:
    """The whole reader path (discovery, SEG → CT matching, LPS orientation) on an L shape."""
    from rgsynth.io import tcia

    study = tmp_path / "R01-999" / "study"
    hu, mask, grid, _ = _write_asymmetric_case(
        study / "3-ct", study / "300-seg" / "1-1.dcm", descending, flavour
    )
    sources, problems = tcia.discover(tmp_path)
    assert [s.subject_id for s in sources] == ["R01-999"] and problems == []
    images = tcia.load(sources[0])
    np.testing.assert_array_equal(images.hu, hu.astype(np.float32))
    np.testing.assert_array_equal(images.nodule_mask, mask)
    assert images.origin_mm == pytest.approx(grid.origin_mm)
