"""DICOM output in the NSCLC Radiogenomics collection's layout: CT series and nodule SEGs.

TCIA's descriptive download layout is
``<Subject>/<MM-DD-YYYY>-<StudyID or NA>-<StudyDescription>-<last 5 of StudyUID>/``
``<SeriesNumber>.000000-<SeriesDescription>-<last 5 of SeriesUID>/1-NNN.dcm``.
All UIDs derive from the cohort seed (``generate_uid`` with entropy sources), and every date
and time is fixed by the subject's plan, so the files are byte-for-byte deterministic.
"""

from __future__ import annotations

import copy
import datetime as dt
import warnings
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from rgsynth import __version__
from rgsynth.intensity import LUNG_WINDOW, SOFT_TISSUE_WINDOW
from rgsynth.io.dicom_write import (
    CtSeriesIdentity,
    ct_slices,
    ct_template,
    decimal_string,
    nodule_segment,
)
from rgsynth.twin.anatomy import Grid
from rgsynth.twin.quirks import ExtraSeries
from rgsynth.twin.scanner import Acquisition

COLLECTION = "NSCLC Radiogenomics"
SEG_FLAVOURS = {
    # flavour: (series description, series number, omit empty frames)
    "slicer": ("3D Slicer segmentation result", 1000, False),
    "epad": ("ePAD Generated DSO", 300, True),
}


@dataclass(frozen=True)
class StudyInfo:
    subject_id: str
    seed: int
    study_date: dt.date
    study_description: str
    patient_sex: str  # "M" or "F"
    patient_age_years: int

    def uid(self, *parts: object) -> str:
        return generate_uid(entropy_srcs=[str(self.seed), self.subject_id, *map(str, parts)])

    @property
    def study_uid(self) -> str:
        return self.uid("study")

    @property
    def frame_of_reference_uid(self) -> str:
        return self.uid("frame-of-reference")

    def study_folder(self) -> str:
        return f"{self.study_date:%m-%d-%Y}-NA-{self.study_description}-{self.study_uid[-5:]}"


def series_folder(series_number: int, description: str, series_uid: str) -> str:
    return f"{series_number}.000000-{description}-{series_uid[-5:]}"


def ct_datasets(
    hu: np.ndarray,
    grid: Grid,
    acquisition: Acquisition,
    study: StudyInfo,
    series_number: int,
    z_mm: np.ndarray | None = None,
) -> list[Dataset]:
    """Single-frame CT Image Storage datasets for an int16 HU volume (z ascending).

    Instance numbers run from the top down when ``acquisition.descending_instances`` (as GE
    scanners write them) and from the bottom up otherwise; readers must sort by position.
    ``z_mm`` places the slices elsewhere than ``grid``'s even positions (uneven spacing).
    """
    nz = hu.shape[0]
    template = _ct_template(grid, acquisition, study, series_number)
    if z_mm is None:
        z_mm, _, _ = grid.axis_mm()
    return ct_slices(
        template,
        hu,
        grid.origin_mm[:2],
        z_mm,
        sop_uid=lambda k: study.uid("ct", k),
        instance_number=lambda k: nz - k if acquisition.descending_instances else k + 1,
        pixel_value_range=True,
    )


def write_ct_series(datasets: list[Dataset], series_dir: Path) -> list[Path]:
    """Write datasets as ``1-NNN.dcm`` by instance number (TCIA's naming)."""
    series_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = series_dir / f"1-{int(ds.InstanceNumber):03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def seg_dataset(
    ct: list[Dataset], mask: np.ndarray, flavour: str, study: StudyInfo
) -> hd.seg.Segmentation:
    """A binary nodule SEG on the CT series; ``mask`` is (z, y, x) in ascending z, the same
    order as ``ct``. ``flavour`` is ``slicer`` (every slice a frame) or ``epad`` (empty
    frames omitted)."""
    segment = nodule_segment("Nodule", study.uid("nodule-tracking"), "nodule 1")
    content_time = dt.time(12, 0, 0)
    with warnings.catch_warnings():
        # TCIA writes the subject ID as a one-component PatientName; highdicom warns on it.
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person")
        seg = _segmentation(ct, mask, segment, flavour, study, content_time)
    # highdicom stamps the wall clock in two places: pin them so files are reproducible
    seg.InstanceCreationDate = f"{study.study_date:%Y%m%d}"
    seg.InstanceCreationTime = f"{content_time:%H%M%S}"
    for item in seg.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            item.ContributionDateTime = f"{study.study_date:%Y%m%d}{content_time:%H%M%S}"
    # ... and draws a random Dimension Organization UID: derive it from the seed instead.
    organisation_uid = study.uid("dimension-organisation", flavour)
    for item in seg.get("DimensionOrganizationSequence", []):
        item.DimensionOrganizationUID = organisation_uid
    for item in seg.get("DimensionIndexSequence", []):
        item.DimensionOrganizationUID = organisation_uid
    return seg


def _segmentation(
    ct: list[Dataset],
    mask: np.ndarray,
    segment: hd.seg.SegmentDescription,
    flavour: str,
    study: StudyInfo,
    content_time: dt.time,
) -> hd.seg.Segmentation:
    description, series_number, omit_empty = SEG_FLAVOURS[flavour]
    return hd.seg.Segmentation(
        source_images=ct,
        pixel_array=mask.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment],
        series_instance_uid=study.uid("seg-series", flavour),
        series_number=series_number,
        sop_instance_uid=study.uid("seg", flavour),
        instance_number=1,
        manufacturer="rgsynth twin" if flavour == "slicer" else "ePAD",
        manufacturer_model_name="3D Slicer" if flavour == "slicer" else "ePAD",
        software_versions=__version__,
        device_serial_number="0",
        omit_empty_frames=omit_empty,
        series_description=description,
        content_description="Nodule segmentation",
        content_creator_name="Twin^Reader",
        content_label="NODULE",
        content_date=study.study_date,
        content_time=content_time,
        series_date=study.study_date,
        series_time=content_time,
    )


def _ct_template(
    grid: Grid, acquisition: Acquisition, study: StudyInfo, series_number: int
) -> Dataset:
    """The shared CT template with the acquisition, equipment and patient attributes of
    the collection's scans."""
    _, rows, columns = grid.shape
    column_spacing = grid.spacing_mm[2]
    date = f"{study.study_date:%Y%m%d}"
    identity = CtSeriesIdentity(
        study.subject_id,
        study.study_uid,
        study.uid("ct-series"),
        study.frame_of_reference_uid,
        date,
    )
    ds = ct_template(identity, rows, columns, grid.spacing_mm)
    ds.file_meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.AcquisitionDate, ds.AcquisitionTime = date, "120000"
    ds.Manufacturer = acquisition.manufacturer
    ds.StudyDescription = study.study_description
    ds.SeriesDescription = ct_series_description(acquisition)
    ds.ManufacturerModelName = acquisition.model
    ds.PatientSex = study.patient_sex
    ds.PatientAge = f"{study.patient_age_years:03d}Y"
    ds.KVP = decimal_string(acquisition.kvp)
    ds.DataCollectionDiameter = decimal_string(500.0)
    ds.ReconstructionDiameter = decimal_string(column_spacing * columns)
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = decimal_string(150.0)
    ds.RotationDirection = "CW"
    ds.XRayTubeCurrent = acquisition.tube_current_ma
    ds.ConvolutionKernel = acquisition.kernel_name
    ds.SeriesNumber = series_number
    window = LUNG_WINDOW if acquisition.kernel == "sharp" else SOFT_TISSUE_WINDOW
    ds.WindowCenter, ds.WindowWidth = window.dicom()
    return ds


def ct_series_description(acquisition: Acquisition) -> str:
    thickness = f"{acquisition.slice_thickness_mm:g}"
    if acquisition.kernel == "sharp":
        return f"THIN LUNG WINDOW {thickness}mm"
    return f"CHEST {thickness}mm {acquisition.kernel_name}"


def extra_series_datasets(
    series: ExtraSeries, grid: Grid, acquisition: Acquisition, study: StudyInfo
) -> list[Dataset]:
    """The datasets of a localizer, reformat, MIP, CTAC or earlier-study series."""
    template = _ct_template(grid, acquisition, study, series.series_number)
    template.SeriesInstanceUID = study.uid("extra-series", series.series_number)
    template.SeriesDescription = series.description
    template.ImageType = list(series.image_type)
    if series.second_study:
        template.StudyInstanceUID = second_study_uid(study)
        template.FrameOfReferenceUID = study.uid("frame-of-reference", "second study")
        template.StudyDate = template.SeriesDate = template.ContentDate = (
            f"{second_study_date(study):%Y%m%d}"
        )
    datasets = []
    for k, plane in enumerate(series.planes):
        ds = copy.deepcopy(template)
        uid = study.uid("extra", series.series_number, k)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.InstanceNumber = k + 1
        ds.Rows, ds.Columns = plane.hu.shape
        ds.ImageOrientationPatient = [decimal_string(v) for v in plane.orientation]
        ds.ImagePositionPatient = [decimal_string(v) for v in plane.position_mm]
        ds.PixelSpacing = [decimal_string(v) for v in plane.pixel_spacing_mm]
        stored = np.clip(np.rint(plane.hu.astype(np.float64)) + 1024, -32768, 32767)
        ds.PixelData = stored.astype(np.int16).tobytes()
        for name in ("SmallestImagePixelValue", "LargestImagePixelValue", "SliceLocation"):
            if name in ds:
                del ds[name]
        datasets.append(ds)
    return datasets


def second_study_uid(study: StudyInfo) -> str:
    return study.uid("study", "second study")


def second_study_date(study: StudyInfo) -> dt.date:
    return study.study_date - dt.timedelta(days=400)


def second_study_folder(study: StudyInfo) -> str:
    uid = second_study_uid(study)
    return f"{second_study_date(study):%m-%d-%Y}-NA-CT CHEST LOW DOSE-{uid[-5:]}"
