"""DICOM output of a synthesis: a derived CT series and a SEG of the synthetic nodule.

From a DICOM source the new series keeps every attribute and the exact geometry of the
source series (same study, same frame of reference, pixels untouched outside the pasted
region), with new Series and SOP Instance UIDs, ``ImageType`` DERIVED\\SECONDARY, a
derivation description and a reference to each source image. A NIfTI/NRRD source or a
cache patch has no DICOM header to keep: a new study is written on the axial LPS grid of
the source. The SEG (highdicom, binary, empty frames omitted) references the new series.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from rgsynth import __version__
from rgsynth.intensity import LUNG_WINDOW
from rgsynth.io.dicom_write import CtSeriesIdentity, ct_slices, ct_template, nodule_segment

SERIES_NUMBER = 9001  # high, so viewers list the synthetic series after the source's
SEG_SERIES_NUMBER = 9002
_DESCRIPTION_LIMIT = 64  # LO


def make_uid(*parts: object) -> str:
    """A UID that depends on ``parts`` only, so a batch rerun with one seed repeats them."""
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def derived_series(
    source_files: list[Path],
    source_hu: np.ndarray,
    changed: np.ndarray,
    uid_parts: tuple[object, ...],
    derivation: str,
) -> list[Dataset]:
    """A copy of a DICOM CT series with the pixels of ``changed`` replaced.

    Args:
        source_files: the series' files in slice order (the first axis of the arrays).
        source_hu: (k, rows, columns) HU on the source grid.
        changed: (k, rows, columns) bool, where ``source_hu`` differs from the source.
        uid_parts: what the new UIDs derive from.
        derivation: the DerivationDescription (what was done, by which run).
    """
    series_uid = make_uid(*uid_parts, "ct-series")
    datasets = []
    for k, path in enumerate(source_files):
        ds = pydicom.dcmread(path)
        if changed[k].any():
            _replace_pixels(ds, source_hu[k], changed[k])
        source_ref = Dataset()
        source_ref.ReferencedSOPClassUID = ds.SOPClassUID
        source_ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        ds.SourceImageSequence = [source_ref]
        ds.ImageType = ["DERIVED", "SECONDARY", *list(ds.get("ImageType", ["", ""]))[2:]]
        ds.DerivationDescription = derivation[:1024]
        _set_series(ds, series_uid, make_uid(*uid_parts, "ct", k))
        datasets.append(ds)
    return datasets


def _replace_pixels(ds: Dataset, hu: np.ndarray, changed: np.ndarray) -> None:
    """Write HU back as stored values with the slice's own rescale, decompressing it."""
    stored = ds.pixel_array.copy()
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    bits = int(ds.BitsStored)
    low, high = (
        (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if ds.PixelRepresentation else (0, 2**bits - 1)
    )
    values = np.clip(np.rint((hu - intercept) / slope), low, high)
    stored[changed] = values[changed].astype(stored.dtype)
    ds.PixelData = stored.tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for attribute in ("SmallestImagePixelValue", "LargestImagePixelValue"):
        if attribute in ds:
            del ds[attribute]


def _set_series(ds: Dataset, series_uid: str, sop_uid: str) -> None:
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = SERIES_NUMBER
    ds.SeriesDescription = "rgsynth synthetic nodule"
    ds.SOPInstanceUID = sop_uid
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid


def new_series(
    hu: np.ndarray,
    spacing_mm: tuple[float, float, float],
    origin_mm: tuple[float, float, float],
    patient_id: str,
    uid_parts: tuple[object, ...],
    derivation: str,
) -> list[Dataset]:
    """A new CT study and series for a (z, y, x) HU volume on an axial LPS grid
    (z ascending), for sources that have no DICOM header to keep."""
    identity = CtSeriesIdentity(
        patient_id,
        make_uid(*uid_parts, "study"),
        make_uid(*uid_parts, "ct-series"),
        make_uid(*uid_parts, "frame-of-reference"),
        f"{dt.date.today():%Y%m%d}",
    )
    template = ct_template(identity, hu.shape[1], hu.shape[2], spacing_mm)
    template.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    template.DerivationDescription = derivation[:1024]
    template.Manufacturer = "rgsynth"
    template.PatientSex = template.KVP = ""
    template.WindowCenter, template.WindowWidth = LUNG_WINDOW.dicom()
    _set_series(template, identity.series_uid, "")
    z_mm = [origin_mm[2] + k * spacing_mm[0] for k in range(hu.shape[0])]
    return ct_slices(
        template,
        hu,
        origin_mm[:2],
        z_mm,
        sop_uid=lambda k: make_uid(*uid_parts, "ct", k),
        instance_number=lambda k: k + 1,
    )


def nodule_seg(
    ct: list[Dataset], mask: np.ndarray, uid_parts: tuple[object, ...], label: str
) -> hd.seg.Segmentation:
    """A binary SEG of the synthetic nodule on ``ct``; ``mask`` is (n, rows, columns) in
    the order of ``ct``."""
    algorithm = hd.AlgorithmIdentificationSequence(
        name="rgsynth", family=codes.cid7162.ArtificialIntelligence, version=__version__
    )
    tracking_uid = make_uid(*uid_parts, "tracking")
    segment = nodule_segment("Synthetic nodule", tracking_uid, label[:64], algorithm)
    with warnings.catch_warnings():
        # Subject IDs used as one-component PatientNames make highdicom warn.
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person")
        return hd.seg.Segmentation(
            source_images=ct,
            pixel_array=mask.astype(np.uint8),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[segment],
            series_instance_uid=make_uid(*uid_parts, "seg-series"),
            series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=make_uid(*uid_parts, "seg"),
            instance_number=1,
            manufacturer="rgsynth",
            manufacturer_model_name="rgsynth synthesize",
            software_versions=__version__,
            device_serial_number="0",
            # An empty generated mask is kept (and noted in the manifest) with every frame.
            omit_empty_frames=bool(mask.any()),
            series_description="rgsynth synthetic nodule mask",
            content_label="SYNTHETIC",
            content_description=label[:_DESCRIPTION_LIMIT],
        )


def write_dicom(folder: Path, ct: list[Dataset], seg: hd.seg.Segmentation) -> tuple[Path, Path]:
    """``folder/CT/NNNN.dcm`` (one file per slice) and ``folder/SEG.dcm``."""
    series_dir = folder / "CT"
    series_dir.mkdir(parents=True, exist_ok=True)
    for k, ds in enumerate(ct):
        ds.save_as(series_dir / f"{k + 1:04d}.dcm", enforce_file_format=True)
    seg_path = folder / "SEG.dcm"
    seg.save_as(seg_path)
    return series_dir, seg_path
