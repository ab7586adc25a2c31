"""The real download's quirks, written on purpose (``synth-cohort --quirks collection``).

Each function below is one fact about the files of TCIA's NSCLC Radiogenomics collection
(from its metadata.csv and the DICOM dumps attached to highdicom issues #344 and #370), done
to a clean dataset with pydicom the way the collection's writers did it, so a reader can be
tested against each alone and against them all together. The images and the nodule drawn
stay those of the clean twin of the same seed: a quirk changes how they are stored.

SEG writers:

- ePAD ("Stanford University"): frames cropped to the nodule in z (full-size), in reverse z
  order, one *shared* DerivationImageSequence naming every CT instance (each with
  ReferencedFrameNumber 1), no per-frame references, no ReferencedSeriesSequence, segment
  identification shared, a meaningless segment label ("Heart", "Physical Object"), an
  invalid shared ImageOrientationPatient (integers, all-zero row), SeriesNumber 1000,
  StudyID 1, a timestamped description and its own dates.
- 3D Slicer ("3D Slicer Community"): far fewer frames than CT slices (empty ones omitted),
  per-frame references kept, and now and then a CT instance named twice.

CT: localizer series, second studies, coronal reformats, an axial MIP series holding one
sagittal image, CTAC series, per-file rescale slope and intercept, unsigned 12-bit pixels,
Manufacturer "NA", double spaces in series descriptions (and so in folder names), and
slices at uneven spacing.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import pack_bits
from pydicom.sequence import Sequence
from pydicom.uid import RLELossless, generate_uid

from rgsynth.io.dicom_write import decimal_string

COLLECTION = "collection"
EPAD_SERIES_NUMBER = 1000
# Subjects of the real collection without a SEG: every AMC subject and R01-147 … R01-163.
_NO_SEG_R01 = range(147, 164)


def collection_has_seg(subject_id: str, has_seg: bool) -> bool:
    """Whether a subject keeps its SEG in the collection's pattern (none for AMC, none for
    R01-147 … R01-163)."""
    if subject_id.startswith("AMC"):
        return False
    if subject_id.startswith("R01-") and subject_id[4:].isdigit():
        return has_seg and int(subject_id[4:]) not in _NO_SEG_R01
    return has_seg


# --------------------------------------------------------------------------- SEG quirks


def _frames(seg: Dataset) -> np.ndarray:
    return seg.pixel_array.reshape(int(seg.NumberOfFrames), int(seg.Rows), int(seg.Columns))


def _keep_frames(seg: Dataset, keep: list[int]) -> None:
    """Keep only frames ``keep`` (in that order), repacking the 1-bit pixels."""
    pixels = _frames(seg)[keep]
    seg.PerFrameFunctionalGroupsSequence = Sequence(
        [seg.PerFrameFunctionalGroupsSequence[i] for i in keep]
    )
    seg.NumberOfFrames = len(keep)
    seg.PixelData = pack_bits(pixels.astype(np.uint8), pad=True)


def omit_empty_frames(seg: Dataset) -> None:
    """3D Slicer: only frames with the nodule on them (19 frames over 199 slices)."""
    pixels = _frames(seg)
    _keep_frames(seg, [i for i in range(pixels.shape[0]) if pixels[i].any()])


def crop_frames_to_nodule(seg: Dataset) -> None:
    """ePAD: full-size frames, but only the slices from the nodule's first to its last."""
    occupied = np.flatnonzero(_frames(seg).reshape(int(seg.NumberOfFrames), -1).any(axis=1))
    if occupied.size == 0:
        raise ValueError("an empty SEG has no nodule to crop to")
    _keep_frames(seg, list(range(int(occupied[0]), int(occupied[-1]) + 1)))


def reverse_frames(seg: Dataset) -> None:
    """Frames stored top-down, InStackPositionNumber counting down."""
    n = int(seg.NumberOfFrames)
    _keep_frames(seg, list(range(n - 1, -1, -1)))
    for k, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        content = item.FrameContentSequence[0]
        content.InStackPositionNumber = n - k
        content.StackID = "1"


def shared_references_only(seg: Dataset, ct: list[Dataset]) -> None:
    """ePAD: one shared DerivationImageSequence naming every CT instance (frame number 1
    each); frames keep only their content and plane position."""
    purpose = None
    for item in seg.PerFrameFunctionalGroupsSequence:
        for derivation in _take(item, "DerivationImageSequence"):
            purpose = purpose or derivation.SourceImageSequence[0].get(
                "PurposeOfReferenceCodeSequence"
            )
    sources = []
    for ds in ct:
        source = Dataset()
        source.ReferencedSOPClassUID = ds.SOPClassUID
        source.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        source.ReferencedFrameNumber = 1
        if purpose is not None:
            source.PurposeOfReferenceCodeSequence = copy.deepcopy(purpose)
        sources.append(source)
    derivation = Dataset()
    code = Dataset()  # "Segmentation", as every SEG's derivation says
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "113076", "DCM", "Segmentation"
    derivation.DerivationCodeSequence = Sequence([code])
    derivation.SourceImageSequence = Sequence(sources)
    seg.SharedFunctionalGroupsSequence[0].DerivationImageSequence = Sequence([derivation])


def _take(item: Dataset, keyword: str) -> list[Dataset]:
    """Remove a sequence from ``item`` and return its items (none if absent)."""
    if keyword not in item:
        return []
    items = list(item[keyword].value)
    delattr(item, keyword)
    return items


def drop_referenced_series(seg: Dataset) -> None:
    """No ReferencedSeriesSequence: the CT is the series holding the instances named."""
    if "ReferencedSeriesSequence" in seg:
        del seg.ReferencedSeriesSequence


def shared_segment_identification(seg: Dataset) -> None:
    """Segment identification in the shared functional groups only (one segment)."""
    number = None
    for item in seg.PerFrameFunctionalGroupsSequence:
        for identification in _take(item, "SegmentIdentificationSequence"):
            number = int(identification.ReferencedSegmentNumber)
    identification = Dataset()
    identification.ReferencedSegmentNumber = number or 1
    seg.SharedFunctionalGroupsSequence[0].SegmentIdentificationSequence = Sequence([identification])


def meaningless_label(seg: Dataset) -> None:
    """The one tumour segment labelled "Heart", category "Physical Object"."""
    segment = seg.SegmentSequence[0]
    segment.SegmentLabel = "Heart"
    category, kind = Dataset(), Dataset()
    category.CodeValue, category.CodingSchemeDesignator = "260787004", "SCT"
    category.CodeMeaning = "Physical Object"
    kind.CodeValue, kind.CodingSchemeDesignator, kind.CodeMeaning = "80891009", "SCT", "Heart"
    segment.SegmentedPropertyCategoryCodeSequence = Sequence([category])
    segment.SegmentedPropertyTypeCodeSequence = Sequence([kind])


def invalid_orientation(seg: Dataset) -> None:
    """The SEG's own orientation stored as integers with an all-zero row vector."""
    seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient = [
        "0",
        "0",
        "0",
        "0",
        "1",
        "0",
    ]


def duplicate_reference(seg: Dataset) -> None:
    """One CT instance named twice: the SEG lists it again under a second referenced
    series (highdicom 0.26+ raises an SQLite IntegrityError on such a file; it drops only
    exact repeats). Without a ReferencedSeriesSequence, the shared list repeats it."""
    if "ReferencedSeriesSequence" in seg:
        first = seg.ReferencedSeriesSequence[0]
        instances = first.ReferencedInstanceSequence
        again = Dataset()
        again.SeriesInstanceUID = generate_uid(entropy_srcs=[str(first.SeriesInstanceUID), "2"])
        again.ReferencedInstanceSequence = Sequence([copy.deepcopy(instances[len(instances) // 2])])
        seg.ReferencedSeriesSequence.append(again)
        return
    sources = seg.SharedFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence
    sources.append(copy.deepcopy(sources[len(sources) // 2]))


@dataclass(frozen=True)
class SegWriter:
    """Who wrote a SEG: the identity fields the collection's files carry."""

    manufacturer: str
    model: str
    series_number: int
    description: Callable[[dt.datetime], str]
    study_id: str | None  # None: keep the CT's


EPAD = SegWriter(
    "Stanford University",
    "ePAD",
    EPAD_SERIES_NUMBER,
    lambda when: f"ePAD Generated DSO {when:%b-%d-%H%M}",
    "1",
)
SLICER = SegWriter(
    "3D Slicer Community", "3D Slicer", 1000, lambda when: "3D Slicer segmentation result", None
)


def writer_identity(seg: Dataset, writer: SegWriter, written: dt.datetime) -> None:
    """The writer's manufacturer, numbers and description, and its own dates (later than
    the CT's)."""
    seg.Manufacturer, seg.ManufacturerModelName = writer.manufacturer, writer.model
    seg.SeriesNumber = writer.series_number
    seg.SeriesDescription = writer.description(written)
    if writer.study_id is not None:
        seg.StudyID = writer.study_id
    date, time = f"{written:%Y%m%d}", f"{written:%H%M%S}"
    seg.SeriesDate = seg.ContentDate = seg.InstanceCreationDate = date
    seg.SeriesTime = seg.ContentTime = seg.InstanceCreationTime = time


def epad_seg(seg: Dataset, ct: list[Dataset], written: dt.datetime, duplicate: bool) -> None:
    """Every ePAD quirk, in place, on a clean one-frame-per-slice SEG."""
    crop_frames_to_nodule(seg)
    reverse_frames(seg)
    shared_references_only(seg, ct)
    drop_referenced_series(seg)
    shared_segment_identification(seg)
    meaningless_label(seg)
    invalid_orientation(seg)
    if duplicate:
        duplicate_reference(seg)
    writer_identity(seg, EPAD, written)


def slicer_seg(seg: Dataset, written: dt.datetime, duplicate: bool) -> None:
    """The 3D Slicer quirks, in place, on a clean one-frame-per-slice SEG."""
    omit_empty_frames(seg)
    if duplicate:
        duplicate_reference(seg)
    writer_identity(seg, SLICER, written)


# --------------------------------------------------------------------------- CT quirks


def per_file_rescale(ct: list[Dataset]) -> None:
    """Rescale slope and intercept that change from file to file (HU unchanged)."""
    for k, ds in enumerate(ct):
        hu = _stored(ds) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        slope, intercept = ((1.0, -1024.0), (0.5, -1024.0), (1.0, -2048.0))[k % 3]
        stored = np.rint((hu - intercept) / slope)
        ds.PixelData = stored.astype(np.int16).tobytes()
        ds.RescaleSlope, ds.RescaleIntercept = decimal_string(slope), decimal_string(intercept)
        ds.SmallestImagePixelValue = int(stored.min())
        ds.LargestImagePixelValue = int(stored.max())


def unsigned_12_bit(ct: list[Dataset]) -> None:
    """Unsigned 12-bit stored values (0 … 4095) with intercept −1024."""
    for ds in ct:
        hu = _stored(ds) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        stored = np.rint(hu + 1024.0)
        if stored.min() < 0 or stored.max() > 4095:
            raise ValueError("HU outside −1024 … 3071 cannot be stored in 12 unsigned bits")
        ds.PixelData = stored.astype(np.uint16).tobytes()
        ds.PixelRepresentation, ds.BitsStored, ds.HighBit = 0, 12, 11
        ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
        # their VR follows PixelRepresentation: unsigned now
        ds.add_new("SmallestImagePixelValue", "US", int(stored.min()))
        ds.add_new("LargestImagePixelValue", "US", int(stored.max()))


def manufacturer_na(ct: list[Dataset]) -> None:
    for ds in ct:
        ds.Manufacturer = "NA"


def double_spaced_description(ct: list[Dataset]) -> None:
    """A Siemens-style description with double spaces, kept in the folder name."""
    thickness = decimal_string(float(ct[0].SliceThickness))
    for ds in ct:
        ds.SeriesDescription = f"Chest  {thickness}  B45f"


def rle_lossless(ct: list[Dataset]) -> None:
    """RLE Lossless pixels (pydicom encodes it itself). Not in this collection, but in
    users' own data."""
    for ds in ct:
        ds.compress(RLELossless, _stored(ds), generate_instance_uid=False)


def _stored(ds: Dataset) -> np.ndarray:
    dtype = np.int16 if int(ds.PixelRepresentation) == 1 else np.uint16
    return np.frombuffer(ds.PixelData, dtype=dtype).reshape(int(ds.Rows), int(ds.Columns))


def uneven_positions(rng: np.random.Generator, z_mm: np.ndarray, spread: float = 0.2) -> np.ndarray:
    """Slice positions whose gaps vary by up to ±``spread`` of the nominal spacing, over
    the same extent (first and last position kept)."""
    nominal = float(np.median(np.diff(z_mm)))
    n = z_mm.size
    gaps = nominal * (1.0 + rng.uniform(-spread, spread, n - 1))
    gaps *= (z_mm[-1] - z_mm[0]) / gaps.sum()
    return np.round(np.concatenate([[z_mm[0]], z_mm[0] + np.cumsum(gaps)]), 3)


def resample_on_positions(
    hu: np.ndarray, mask: np.ndarray, z_mm: np.ndarray, new_z_mm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The volume as a scanner would have sampled it at ``new_z_mm``: HU linearly between
    the rendered slices, the mask by nearest slice."""
    upper = np.clip(np.searchsorted(z_mm, new_z_mm, side="right"), 1, z_mm.size - 1)
    lower = upper - 1
    weight = ((new_z_mm - z_mm[lower]) / (z_mm[upper] - z_mm[lower]))[:, None, None]
    values = (1.0 - weight) * hu[lower] + weight * hu[upper]
    nearest = np.where(weight[:, 0, 0] < 0.5, lower, upper)
    return np.rint(values).astype(np.int16), mask[nearest]


# The CT variant of subject i (index in the cohort) is CT_VARIANTS[i % len(CT_VARIANTS)].
CT_VARIANTS = (
    "plain",
    "per-file rescale",
    "unsigned 12-bit, Manufacturer NA",
    "double-spaced description, second study",
    "uneven slice spacing",
    "reformats: coronal, axial MIP with a sagittal image, CTAC",
)


def ct_variant(index: int) -> str:
    return CT_VARIANTS[index % len(CT_VARIANTS)]


def encode_ct(ct: list[Dataset], variant: str) -> None:
    """The per-file quirks of a CT series variant (geometry and extra series aside)."""
    if variant == "per-file rescale":
        per_file_rescale(ct)
    elif variant.startswith("unsigned 12-bit"):
        unsigned_12_bit(ct)
        manufacturer_na(ct)
    elif variant.startswith("double-spaced"):
        double_spaced_description(ct)


# --------------------------------------------------------------------------- extra series


@dataclass(frozen=True)
class Plane:
    """One image of a derived series: pixels (rows, cols) in HU and where it lies."""

    hu: np.ndarray
    position_mm: tuple[float, float, float]
    orientation: tuple[float, ...]
    pixel_spacing_mm: tuple[float, float]


@dataclass(frozen=True)
class ExtraSeries:
    """A series written beside the subject's CT (never the one the SEG is on)."""

    description: str
    series_number: int
    image_type: tuple[str, ...]
    planes: list[Plane]
    second_study: bool = False  # filed under the subject's earlier study


_AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
_CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
_SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
LOCALIZER_DESCRIPTIONS = ("SCOUT", "Topogram  0.6  T20s", "CT Scout")


def extra_series(hu: np.ndarray, grid, variant: str, index: int) -> list[ExtraSeries]:
    """The series a subject's study holds besides its CT: always a localizer (1–3
    images), and per ``variant`` a second study's CT, reformats, a MIP series with one
    sagittal image, or a CTAC series.

    Args:
        hu: the subject's (z, y, x) HU volume, z ascending, on ``grid``.
        grid: :class:`rgsynth.twin.anatomy.Grid`.
    """
    z_mm, y_mm, x_mm = grid.axis_mm()
    dz, dy, dx = grid.spacing_mm
    top = float(z_mm[-1])
    series = []
    coronal = hu.mean(axis=1)[::-1]  # (z top-down, x): a projection, as a scout looks
    planes = [Plane(coronal, (float(x_mm[0]), float(y_mm[0]), top), _CORONAL, (dz, dx))]
    if index % 3 == 1:
        lateral = hu.mean(axis=2)[::-1]
        planes.append(Plane(lateral, (float(x_mm[0]), float(y_mm[0]), top), _SAGITTAL, (dz, dy)))
    series.append(
        ExtraSeries(
            LOCALIZER_DESCRIPTIONS[index % 3], 1, ("ORIGINAL", "PRIMARY", "LOCALIZER"), planes
        )
    )
    every = 3
    if variant.startswith("double-spaced"):  # an earlier study: a short low-dose series
        planes = [
            Plane(hu[k], (float(x_mm[0]), float(y_mm[0]), float(z_mm[k])), _AXIAL, (dy, dx))
            for k in range(0, hu.shape[0], every)
        ]
        series.append(
            ExtraSeries("LOW DOSE CHEST", 2, ("ORIGINAL", "PRIMARY", "AXIAL"), planes, True)
        )
    if variant.startswith("reformats"):
        rows = hu.shape[1]
        coronal_planes = [
            Plane(
                hu[::-1, r, :],
                (float(x_mm[0]), float(y_mm[r]), top),
                _CORONAL,
                (dz, dx),
            )
            for r in range(rows // 4, 3 * rows // 4, max(rows // 8, 1))
        ]
        series.append(
            ExtraSeries("COR 3mm", 601, ("DERIVED", "SECONDARY", "REFORMATTED"), coronal_planes)
        )
        mip = [
            Plane(
                hu[k : k + every].max(axis=0),
                (float(x_mm[0]), float(y_mm[0]), float(z_mm[k])),
                _AXIAL,
                (dy, dx),
            )
            for k in range(0, hu.shape[0] - every, every)
        ]
        column = hu.shape[2] // 2
        mip.append(
            Plane(
                hu[::-1, :, column], (float(x_mm[column]), float(y_mm[0]), top), _SAGITTAL, (dz, dy)
            )
        )
        series.append(ExtraSeries("MIP AXIAL", 602, ("DERIVED", "SECONDARY", "MIP"), mip))
        ctac = [
            Plane(hu[k], (float(x_mm[0]), float(y_mm[0]), float(z_mm[k])), _AXIAL, (dy, dx))
            for k in range(0, hu.shape[0], 2)
        ]
        series.append(ExtraSeries("CTAC 3.75 Thick", 4, ("ORIGINAL", "PRIMARY", "AXIAL"), ctac))
    return series
