"""The one CT Image Storage template that every CT series we write starts from, and the
nodule segment every SEG we write describes.

The twin (``twin/dicom_write.py``) and a synthesis without a DICOM source
(``synthesize/dicom_out.py``) both write axial, int16, intercept −1024 CT series; this
module holds what they share: the image-pixel and geometry modules, the study and series
identity, and the per-slice loop. Each caller then adds its own equipment and
acquisition attributes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from rgsynth import __version__

HU_INTERCEPT = -1024  # stored = HU + 1024, in int16


def decimal_string(value: float) -> str:
    """A DICOM decimal string (DS) of at most 16 characters.

    Example:
        >>> decimal_string(0.703125), decimal_string(-0.0), decimal_string(2.5)
        ('0.703125', '0', '2.5')
    """
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


@dataclass(frozen=True)
class CtSeriesIdentity:
    """Who and where a series is: patient, study, series and frame of reference."""

    patient_id: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    date: str  # YYYYMMDD: study, series and content date alike


def ct_template(
    identity: CtSeriesIdentity,
    rows: int,
    columns: int,
    spacing_mm: tuple[float, float, float],
) -> Dataset:
    """An axial CT dataset without pixels or slice position.

    Args:
        identity: the patient, study, series and frame of reference.
        rows, columns: the slice matrix.
        spacing_mm: (slice thickness, row spacing, column spacing) in mm.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = identity.date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = ds.ReferringPhysicianName = ds.StudyID = ""
    ds.Modality = "CT"
    ds.BodyPartExamined = "CHEST"
    ds.PatientPosition = "HFS"
    ds.SoftwareVersions = f"rgsynth {__version__}"
    ds.PatientName = ds.PatientID = identity.patient_id[:64]
    ds.PatientBirthDate = ""
    ds.StudyInstanceUID = identity.study_uid
    ds.SeriesInstanceUID = identity.series_uid
    ds.FrameOfReferenceUID = identity.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.AcquisitionNumber = 1
    ds.SliceThickness = decimal_string(spacing_mm[0])
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [decimal_string(spacing_mm[1]), decimal_string(spacing_mm[2])]
    ds.Rows, ds.Columns = int(rows), int(columns)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = str(HU_INTERCEPT), "1", "HU"
    return ds


def ct_slices(
    template: Dataset,
    hu: np.ndarray,
    corner_mm: tuple[float, float],
    z_mm: Sequence[float],
    sop_uid: Callable[[int], str],
    instance_number: Callable[[int], int],
    pixel_value_range: bool = False,
) -> list[Dataset]:
    """One dataset per slice of a (z, y, x) HU volume, z ascending.

    Args:
        template: from :func:`ct_template` (and the caller's own attributes).
        hu: HU values; rounded and clipped to int16 after the −1024 intercept.
        corner_mm: patient (x, y) of the first pixel of every slice.
        z_mm: patient z of each slice.
        sop_uid, instance_number: of slice k.
        pixel_value_range: also write Smallest/LargestImagePixelValue.
    """
    datasets = []
    for k in range(hu.shape[0]):
        ds = copy.deepcopy(template)  # the template holds no pixels: cheap
        uid = sop_uid(k)
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.InstanceNumber = instance_number(k)
        position = (corner_mm[0], corner_mm[1], z_mm[k])
        ds.ImagePositionPatient = [decimal_string(v) for v in position]
        ds.SliceLocation = decimal_string(z_mm[k])
        values = np.rint(hu[k].astype(np.float64)) - HU_INTERCEPT  # float64: exact for int16
        stored = np.clip(values, -32768, 32767).astype(np.int16)
        ds.PixelData = stored.tobytes()
        if pixel_value_range:
            ds.SmallestImagePixelValue = int(stored.min())
            ds.LargestImagePixelValue = int(stored.max())
        datasets.append(ds)
    return datasets


def nodule_segment(
    label: str,
    tracking_uid: str,
    tracking_id: str,
    algorithm: hd.AlgorithmIdentificationSequence | None = None,
) -> hd.seg.SegmentDescription:
    """Segment 1 of a nodule SEG: a manual one (a reader drew it), or, with
    ``algorithm``, an automatic one (a generator painted it)."""
    kind = hd.seg.SegmentAlgorithmTypeValues
    return hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Nodule,
        algorithm_type=kind.MANUAL if algorithm is None else kind.AUTOMATIC,
        algorithm_identification=algorithm,
        tracking_uid=tracking_uid,
        tracking_id=tracking_id,
    )
