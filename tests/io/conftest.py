"""The asymmetric CT + SEG case the reader tests write: slice-order flips are the classic
SEG bug, so the mask is asymmetric along z and in-plane."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset

from rgsynth.twin.anatomy import Grid
from rgsynth.twin.dicom_write import StudyInfo, ct_datasets, seg_dataset, write_ct_series
from rgsynth.twin.scanner import Acquisition

STUDY = StudyInfo("R01-999", 0, dt.date(1995, 3, 1), "CHEST", "F", 70)


@pytest.fixture
def acquisition() -> Callable[[bool], Acquisition]:
    def make(descending: bool) -> Acquisition:
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

    return make


@pytest.fixture
def asymmetric_case() -> tuple[np.ndarray, np.ndarray, Grid]:
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


@pytest.fixture
def write_asymmetric_case(asymmetric_case, acquisition) -> Callable:
    """Write the L-shaped case as a CT series and a SEG; returns (hu, mask, grid, SEG)."""

    def write(
        ct_folder: Path, seg_path: Path, descending: bool, flavour: str
    ) -> tuple[np.ndarray, np.ndarray, Grid, Dataset]:
        hu, mask, grid = asymmetric_case
        datasets = ct_datasets(hu, grid, acquisition(descending), STUDY, series_number=3)
        write_ct_series(datasets, ct_folder)
        seg = seg_dataset(datasets, mask, flavour, STUDY)
        seg_path.parent.mkdir(parents=True, exist_ok=True)
        seg.save_as(seg_path)
        return hu, mask, grid, seg

    return write
