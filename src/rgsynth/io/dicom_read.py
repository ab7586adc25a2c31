"""Reading DICOM CT series and nodule SEGs into aligned, axial, LPS arrays.

Headers are read with pydicom, CT pixels with SimpleITK (GDCM: each file's own rescale
slope and intercept, RLE and JPEG Lossless decoded), SEG frames with
:mod:`rgsynth.io.seg_read`. SEG frames are matched to CT slices by per-frame referenced
SOP Instance UID when every frame has one, else by position along the CT's slice normal,
and never by frame index, so every SEG variant (one frame per slice, empty frames
omitted, cropped to the nodule, reversed) lands on the right slices whatever the order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from rgsynth.io.seg_read import SliceGeometry, place_segment, read_seg_frames
from rgsynth.io.source import AXIAL_TOLERANCE_DEG, InputError

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
_NOT_DICOM_SUFFIXES = {".txt", ".csv", ".json", ".xml", ".png", ".jpg", ".gz", ".md", ".html"}
_SPACING_TOLERANCE = 0.1  # relative: gaps within it count as even
_MISSING_SLICE_GAP = 1.5  # a gap this many times the median: a slice is missing


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
    pixel_spacing: tuple[float, ...] | None = None

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
        stack: the series as read (stored slices' geometry), for placing SEG frames.
    """

    hu: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: np.ndarray
    sop_instance_uids: list[str]
    files: list[Path]
    stack: CtStack


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
            pixel_spacing=_floats(ds.get("PixelSpacing")),
        )
    except (InvalidDicomError, EOFError, OSError) as error:
        raise InputError(subject_id, path, f"not a readable DICOM file ({error})") from None
    except (AttributeError, KeyError, ValueError, TypeError) as error:
        raise InputError(subject_id, path, f"DICOM header is incomplete ({error})") from None


def _floats(value: object) -> tuple[float, ...] | None:
    return None if value is None else tuple(float(v) for v in value)  # type: ignore[attr-defined]


@dataclass
class CtStack:
    """One CT series read: the image on an even grid, and where its stored slices were.

    Attributes:
        image: the series in HU (float32) with even slice spacing, slices along the normal.
            Where the stored slices were unevenly spaced it is resampled onto the mean
            spacing (linearly in z), and :meth:`mask_image` does the same to a mask.
        geometry: the stored slices (UIDs, positions, in-plane grid) in normal order: what
            SEG frames are placed on.
        notes: what was done on the way (dropped images, resampling), for the manifest.
    """

    image: sitk.Image
    geometry: SliceGeometry
    notes: list[str]
    _resampling: tuple[np.ndarray, np.ndarray] | None = None  # (stored, even) positions

    @property
    def uids(self) -> list[str]:
        return self.geometry.uids

    @property
    def resampled(self) -> bool:
        return self._resampling is not None

    def mask_image(self, mask: np.ndarray) -> sitk.Image:
        """A (stored slices, rows, cols) mask as a uint8 image on :attr:`image`'s grid."""
        if self._resampling is not None:
            stored, even = self._resampling
            mask = _resample_z(mask.astype(np.float32), stored, even) >= 0.5
        image = sitk.GetImageFromArray(mask.astype(np.uint8))
        image.CopyInformation(self.image)
        return image


def read_ct_image(headers: list[Header], subject_id: str = "") -> CtStack:
    """One CT series as a SimpleITK image in HU, with its stored slices' geometry.

    Slices are ordered along the slice normal (as GDCM would), so the geometry is right
    whatever the instance numbering. Images whose orientation differs from most of the
    series (a sagittal image filed in an axial MIP series) are left out, and said so. Each
    file's own rescale slope and intercept are applied (float32 output). A series whose
    slice spacing varies by more than 10 % is resampled onto its mean spacing from the
    stored positions (never stacked by index); a gap over 1.5 times the median is refused
    as a missing slice.

    Raises:
        InputError: missing geometry, a missing slice, or a file whose pixels cannot be
            read (truncated), naming that file.
    """
    folder = headers[0].path.parent
    if any(h.position is None or h.orientation is None for h in headers):
        raise InputError(subject_id, folder, "CT slices without ImagePositionPatient/Orientation")
    headers, notes = _one_orientation(headers)
    row, col = np.array(headers[0].orientation[:3]), np.array(headers[0].orientation[3:])
    normal = np.cross(row, col)
    ordered = sorted(headers, key=lambda h: float(np.dot(h.position, normal)))
    along = np.array([np.dot(h.position, normal) for h in ordered])
    even = _check_spacing(ordered, along, subject_id)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(h.path) for h in ordered])
    reader.SetOutputPixelType(sitk.sitkFloat32)  # each file's own slope and intercept, exact
    try:
        with _quiet_itk():
            image = reader.Execute()
    except RuntimeError:
        raise _locate_bad_slice(ordered, subject_id) from None
    pixel_spacing = ordered[0].pixel_spacing or image.GetSpacing()[1::-1]
    geometry = SliceGeometry(
        uids=[h.sop_instance_uid for h in ordered],
        positions_mm=np.array([h.position for h in ordered], dtype=float),
        row=row,
        col=col,
        pixel_spacing_mm=(float(pixel_spacing[0]), float(pixel_spacing[1])),
        shape=(image.GetSize()[1], image.GetSize()[0]),
    )
    if even is None:
        return CtStack(image, geometry, notes)
    hu = _resample_z(sitk.GetArrayFromImage(image), along, even)
    resampled = sitk.GetImageFromArray(hu.astype(np.float32))
    resampled.SetOrigin(image.GetOrigin())
    resampled.SetDirection(image.GetDirection())
    resampled.SetSpacing((*image.GetSpacing()[:2], float(even[1] - even[0])))
    gaps = np.diff(along)
    notes.append(
        f"slice spacing varies from {gaps.min():.2f} to {gaps.max():.2f} mm; resampled on "
        f"the stored positions to {even[1] - even[0]:.2f} mm"
    )
    return CtStack(resampled, geometry, notes, (along, even))


def _one_orientation(headers: list[Header]) -> tuple[list[Header], list[str]]:
    """The images sharing the series' most common orientation (within 0.01 of each
    direction cosine, so rounding jitter never splits a series); a note for the others."""
    groups: list[list[Header]] = []
    for header in headers:
        cosines = np.array(header.orientation)
        for group in groups:
            if np.abs(np.array(group[0].orientation) - cosines).max() < 0.01:
                group.append(header)
                break
        else:
            groups.append([header])
    if len(groups) == 1:
        return headers, []
    kept = max(groups, key=len)
    return kept, [
        f"{len(headers) - len(kept)} image(s) of the CT series {headers[0].path.parent.name} "
        f"lie in another orientation than its other {len(kept)}; left out"
    ]


def _check_spacing(ordered: list[Header], along: np.ndarray, subject_id: str) -> np.ndarray | None:
    """None for an evenly spaced series; else the even positions to resample onto."""
    if len(ordered) < 2:
        raise InputError(subject_id, ordered[0].path.parent, "CT series has a single slice")
    gaps = np.diff(along)
    typical = float(np.median(gaps))
    if typical <= 0 or np.any(gaps <= 1e-3):
        raise InputError(
            subject_id, ordered[0].path.parent, "CT slices share a position (duplicated slices?)"
        )
    worst = int(np.argmax(gaps))
    if gaps[worst] > _MISSING_SLICE_GAP * typical:
        raise InputError(
            subject_id,
            ordered[worst + 1].path,
            f"uneven slice spacing: {gaps[worst]:.2f} mm before this slice where the series "
            f"has {typical:.2f} mm (a missing slice?)",
        )
    if np.abs(gaps - typical).max() <= _SPACING_TOLERANCE * typical:
        return None
    # The mean gap over the same extent: as many slices as stored, first and last kept.
    return np.linspace(along[0], along[-1], along.size)


def _resample_z(volume: np.ndarray, along: np.ndarray, even: np.ndarray) -> np.ndarray:
    """(len(even), ...) linear interpolation along axis 0 from positions ``along``."""
    upper = np.clip(np.searchsorted(along, even, side="right"), 1, along.size - 1)
    lower = upper - 1
    weight = np.clip((even - along[lower]) / (along[upper] - along[lower]), 0.0, 1.0)
    weight = weight.reshape(-1, *([1] * (volume.ndim - 1)))
    return (1.0 - weight) * volume[lower] + weight * volume[upper]


@contextmanager
def _quiet_itk() -> Iterator[None]:
    """ITK prints warnings (non-uniform sampling) straight to stderr: we say it ourselves."""
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


def _locate_bad_slice(ordered: list[Header], subject_id: str) -> InputError:
    """Find the file that SimpleITK could not read, reading the files one by one (GDCM
    decodes what pydicom alone cannot, JPEG Lossless for one)."""
    for header in ordered:
        try:
            with _quiet_itk():
                sitk.ReadImage(str(header.path))
        except RuntimeError as error:
            first = str(error).strip().splitlines()[-1] if str(error).strip() else "unknown"
            return InputError(subject_id, header.path, f"CT pixel data unreadable ({first})")
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
    stack = read_ct_image(headers)
    oriented, _ = to_axial_lps(stack.image, "", series_dir)
    by_uid = {h.sop_instance_uid: h.path for h in headers}
    uids = stack.uids[::-1] if _slices_reversed(stack.image) else list(stack.uids)
    return CtVolume(
        hu=sitk.GetArrayFromImage(oriented),
        spacing_mm=tuple(oriented.GetSpacing()[::-1]),
        origin_mm=tuple(oriented.GetOrigin()),
        direction=np.array(oriented.GetDirection()).reshape(3, 3),
        sop_instance_uids=uids,
        files=[by_uid[u] for u in uids],
        stack=stack,
    )


def _slices_reversed(image: sitk.Image) -> bool:
    return image.GetDirection()[8] < 0


def read_seg_mask(seg_path: Path, ct: CtVolume, segment_number: int = 1) -> np.ndarray:
    """The SEG's segment as a (z, y, x) bool mask aligned to ``ct`` (ascending z).

    CT slices that the SEG has no frame for (empty frames omitted) come back empty.

    Raises:
        InputError: the SEG names CT instances that are not in ``ct``'s series.
    """
    frames = read_seg_frames(seg_path)
    unknown = frames.referenced_instances - set(ct.stack.uids)
    if unknown:
        raise InputError(
            "",
            seg_path,
            f"{len(unknown)} referenced CT instances are not in the series {ct.files[0].parent}",
        )
    mask, _ = place_segment(frames, segment_number, ct.stack.geometry)
    oriented, _ = to_axial_lps(ct.stack.mask_image(mask), "", seg_path)
    return sitk.GetArrayFromImage(oriented) > 0
