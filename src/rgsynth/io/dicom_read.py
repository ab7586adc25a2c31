"""Reading DICOM CT series and nodule SEGs into aligned, axial, LPS arrays.

Headers are read with pydicom, CT pixels with SimpleITK (which applies each slice's
rescale slope and intercept), SEGs with highdicom. SEG frames are matched to CT slices by
referenced SOP Instance UID when the SEG has them, else by patient position through the
SEG's own geometry, and never by frame index, so both SEG flavours (one frame per slice,
empty frames omitted) land on the right slices whatever the instance order.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from rgsynth.io.source import AXIAL_TOLERANCE_DEG, InputError

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
_NOT_DICOM_SUFFIXES = {".txt", ".csv", ".json", ".xml", ".png", ".jpg", ".gz", ".md", ".html"}
_SPACING_TOLERANCE = 0.1  # relative: a larger jump between slices means a missing slice


@dataclass(frozen=True)
class Header:
    """What the readers need from one DICOM file's header."""

    path: Path
    modality: str
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    series_number: int
    series_description: str
    frame_of_reference_uid: str
    patient_id: str
    position: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    image_type: tuple[str, ...] = ()

    @property
    def is_localizer(self) -> bool:
        """A scout image: it shares the CT series on some scanners but is no slice of it."""
        return "LOCALIZER" in self.image_type


@dataclass
class CtVolume:
    """A CT series as an axial array with its geometry.

    Attributes:
        hu: (z, y, x) float32 Hounsfield units, slices ordered by ascending position.
        spacing_mm: (slice, row, column) spacing in mm.
        origin_mm: patient (x, y, z) of voxel [0, 0, 0].
        direction: 3×3 direction cosines (SimpleITK order, columns = i, j, k axes).
        sop_instance_uids: SOP Instance UID of each slice, in array order.
        files: the DICOM file of each slice, in array order.
    """

    hu: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: np.ndarray
    sop_instance_uids: list[str]
    files: list[Path]


def read_header(path: Path, subject_id: str = "") -> Header | None:
    """The header of ``path``; None for a file that is plainly not DICOM (a README, a CSV).

    Raises:
        InputError: a ``.dcm`` file (or one without suffix) that is not readable DICOM.
    """
    path = Path(path)
    if path.suffix.lower() in _NOT_DICOM_SUFFIXES or path.name.startswith("."):
        return None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return Header(
            path=path,
            modality=str(ds.get("Modality", "")),
            sop_class_uid=str(ds.SOPClassUID),
            sop_instance_uid=str(ds.SOPInstanceUID),
            series_instance_uid=str(ds.SeriesInstanceUID),
            series_number=int(ds.get("SeriesNumber") or 0),
            series_description=str(ds.get("SeriesDescription", "")),
            frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
            patient_id=str(ds.get("PatientID", "")),
            position=_floats(ds.get("ImagePositionPatient")),
            orientation=_floats(ds.get("ImageOrientationPatient")),
            image_type=tuple(str(v).upper() for v in ds.get("ImageType", ())),
        )
    except (InvalidDicomError, EOFError, OSError) as error:
        raise InputError(subject_id, path, f"not a readable DICOM file ({error})") from None
    except (AttributeError, KeyError, ValueError, TypeError) as error:
        raise InputError(subject_id, path, f"DICOM header is incomplete ({error})") from None


def _floats(value: object) -> tuple[float, ...] | None:
    return None if value is None else tuple(float(v) for v in value)  # type: ignore[attr-defined]


def read_ct_image(headers: list[Header], subject_id: str = "") -> tuple[sitk.Image, list[str]]:
    """One CT series as a SimpleITK image in HU, and each slice's SOP Instance UID.

    Slices are ordered along the slice normal (as GDCM would), so the image geometry is
    right whatever the instance numbering; the array's first axis follows that order.

    Raises:
        InputError: missing geometry, uneven slice positions (a missing slice), or a file
            whose pixels cannot be read (truncated), naming that file.
    """
    folder = headers[0].path.parent
    if any(h.position is None or h.orientation is None for h in headers):
        raise InputError(subject_id, folder, "CT slices without ImagePositionPatient/Orientation")
    row, col = np.array(headers[0].orientation[:3]), np.array(headers[0].orientation[3:])
    normal = np.cross(row, col)
    ordered = sorted(headers, key=lambda h: float(np.dot(h.position, normal)))
    _check_even_spacing(ordered, normal, subject_id)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(h.path) for h in ordered])
    try:
        image = reader.Execute()
    except RuntimeError:
        raise _locate_bad_slice(ordered, subject_id) from None
    if image.GetPixelID() != sitk.sitkFloat32:
        image = sitk.Cast(image, sitk.sitkFloat32)
    return image, [h.sop_instance_uid for h in ordered]


def _check_even_spacing(ordered: list[Header], normal: np.ndarray, subject_id: str) -> None:
    if len(ordered) < 2:
        raise InputError(subject_id, ordered[0].path.parent, "CT series has a single slice")
    along = np.array([np.dot(h.position, normal) for h in ordered])
    gaps = np.diff(along)
    typical = float(np.median(gaps))
    if typical <= 0 or np.any(gaps <= 1e-3):
        raise InputError(
            subject_id, ordered[0].path.parent, "CT slices share a position (duplicated slices?)"
        )
    worst = int(np.argmax(np.abs(gaps - typical)))
    if abs(gaps[worst] - typical) > _SPACING_TOLERANCE * typical:
        raise InputError(
            subject_id,
            ordered[worst + 1].path,
            f"uneven slice spacing: {gaps[worst]:.2f} mm before this slice where the series "
            f"has {typical:.2f} mm (a missing slice?)",
        )


def _locate_bad_slice(ordered: list[Header], subject_id: str) -> InputError:
    """Find the file that SimpleITK could not read; pydicom says which and why."""
    for header in ordered:
        try:
            pydicom.dcmread(header.path).pixel_array  # noqa: B018 - decoding is the test
        except Exception as error:  # any decoder failure names this file
            return InputError(subject_id, header.path, f"CT pixel data unreadable ({error})")
    return InputError(subject_id, ordered[0].path.parent, "SimpleITK could not read the series")


def to_axial_lps(
    image: sitk.Image, subject_id: str, path: Path | str, max_slice_mm: float | None = None
) -> tuple[sitk.Image, list[str]]:
    """Reorient an axial image to identity direction (x→L, y→P, z→S).

    In-plane flips and a reversed slice order are undone; a gantry tilt up to
    ``AXIAL_TOLERANCE_DEG`` is ignored (noted); anything else is refused.

    Raises:
        InputError: non-axial orientation, or slices thicker than ``max_slice_mm``.
    """
    direction = np.array(image.GetDirection()).reshape(3, 3)
    normal = direction[:, 2]
    tilt = math.degrees(math.acos(min(1.0, abs(float(normal[2])))))
    if tilt > AXIAL_TOLERANCE_DEG:
        raise InputError(
            subject_id,
            path,
            f"non-axial orientation: the slice normal {np.round(normal, 3).tolist()} is "
            f"{tilt:.0f}° from the patient z axis; rgsynth reads axial series",
        )
    oriented = sitk.DICOMOrient(image, "LPS")
    notes = []
    if tilt > 0.5:
        notes.append(f"gantry tilt of {tilt:.1f}° treated as axial")
        oriented.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    slice_mm = oriented.GetSpacing()[2]
    if max_slice_mm is not None and slice_mm > max_slice_mm:
        raise InputError(
            subject_id,
            path,
            f"slice spacing {slice_mm:.2f} mm is above the {max_slice_mm:g} mm limit "
            "(--max-slice-mm); thick slices smear small nodules",
        )
    return oriented, notes


def hu_voxels(image: sitk.Image, subject_id: str, path: Path | str) -> np.ndarray:
    """(z, y, x) float32 HU of an image, refused if any voxel is NaN or infinite.

    Raises:
        InputError: a non-finite voxel, naming the subject and the file.
    """
    hu = sitk.GetArrayFromImage(image).astype(np.float32)
    if not np.isfinite(hu).all():
        raise InputError(subject_id, path, "image has NaN or infinite voxels")
    return hu


def read_ct_series(series_dir: Path) -> CtVolume:
    """Every DICOM file in ``series_dir`` as one axial CT volume (ascending z)."""
    series_dir = Path(series_dir)
    headers = [h for p in sorted(series_dir.iterdir()) if (h := read_header(p)) is not None]
    if not headers:
        raise InputError("", series_dir, "no DICOM series found")
    image, uids = read_ct_image(headers)
    oriented, _ = to_axial_lps(image, "", series_dir)
    by_uid = {h.sop_instance_uid: h.path for h in headers}
    if _slices_reversed(image):
        uids = uids[::-1]
    return CtVolume(
        hu=sitk.GetArrayFromImage(oriented),
        spacing_mm=tuple(oriented.GetSpacing()[::-1]),
        origin_mm=tuple(oriented.GetOrigin()),
        direction=np.array(oriented.GetDirection()).reshape(3, 3),
        sop_instance_uids=uids,
        files=[by_uid[u] for u in uids],
    )


def _slices_reversed(image: sitk.Image) -> bool:
    return image.GetDirection()[8] < 0


def read_seg(seg_path: Path, subject_id: str = "") -> hd.seg.Segmentation:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            return hd.seg.segread(seg_path)
        except Exception as error:  # highdicom raises many types for malformed SEGs
            raise InputError(subject_id, seg_path, f"not a readable DICOM SEG ({error})") from None


def seg_mask_image(
    seg: hd.seg.Segmentation,
    seg_path: Path,
    ct_image: sitk.Image,
    ct_uids: list[str],
    segment_number: int,
    subject_id: str = "",
) -> tuple[sitk.Image, str]:
    """The segment as a uint8 image on ``ct_image``'s grid, and how frames were matched.

    By referenced SOP Instance UID when every SEG frame references a slice of this CT;
    otherwise by position: the SEG's own volume geometry resampled (nearest neighbour)
    onto the CT grid.
    """
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    if referenced and referenced <= set(ct_uids):
        mask = sitk.GetImageFromArray(_mask_by_uid(seg, ct_uids, segment_number).astype(np.uint8))
        mask.CopyInformation(ct_image)
        return mask, "frames matched by referenced SOP Instance UID"
    try:
        volume = seg.get_volume(segment_numbers=[segment_number], combine_segments=True)
    except Exception as error:
        raise InputError(
            subject_id, seg_path, f"SEG frames carry no usable position ({error})"
        ) from None
    seg_image = sitk.Cast(volume.to_simpleitk(), sitk.sitkUInt8)
    mask = sitk.Resample(seg_image, ct_image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return mask, (
        "frames matched by patient position (the SEG does not reference slices of this CT "
        "by instance UID)"
    )


def segment_numbers(seg: hd.seg.Segmentation) -> list[int]:
    return [int(item.SegmentNumber) for item in seg.SegmentSequence]


def read_seg_mask(seg_path: Path, ct: CtVolume, segment_number: int = 1) -> np.ndarray:
    """The SEG's segment as a (z, y, x) bool mask aligned to ``ct`` (ascending z).

    CT slices that the SEG has no frame for (empty frames omitted) come back empty.
    """
    seg = read_seg(seg_path)
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    unknown = referenced - set(ct.sop_instance_uids)
    if unknown:
        raise InputError(
            "",
            seg_path,
            f"{len(unknown)} referenced CT instances are not in the series {ct.files[0].parent}",
        )
    return _mask_by_uid(seg, ct.sop_instance_uids, segment_number)


def _mask_by_uid(seg: hd.seg.Segmentation, ct_uids: list[str], segment_number: int) -> np.ndarray:
    """(len(ct_uids), rows, cols) bool: the segment on each CT slice, matched by the SEG
    frames' referenced SOP Instance UIDs; slices without a frame come back empty."""
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=ct_uids,
        segment_numbers=[segment_number],
        assert_missing_frames_are_empty=True,
    )
    return pixels[..., 0] > 0
