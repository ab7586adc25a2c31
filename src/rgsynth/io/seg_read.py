"""Reading nodule DICOM SEGs as they are, not only as the standard says they should be.

highdicom's reader (``hd.seg.segread``) is the library of the field, and the twin's clean
SEGs are written with highdicom; but the SEGs of the real NSCLC Radiogenomics download
break its reader in several ways (highdicom issues #344 and #370):

- ePAD SEGs list every CT instance in one *shared* DerivationImageSequence and give each
  frame only its position, so indexing by source frame raises ``RuntimeError``;
- some 3D Slicer SEGs name a CT instance twice, so highdicom's SQLite index raises
  ``IntegrityError``;
- segment identification sits in the shared functional groups, ReferencedSeriesSequence
  may be absent, frames may run in reverse z order, and the SEG's own
  ImageOrientationPatient may be invalid (integers, an all-zero row vector).

So frames are read here with pydicom (which unpacks 1-bit pixels), and each frame keeps
what it says about itself: its segment (per frame, else shared), its source instance (per
frame only: a shared list says nothing about which frame is which slice) and its plane
position. :func:`place_segment` then puts a segment's frames on the CT's slices, by
per-frame source instance when every frame has one on that CT, else by position along the
CT's slice normal within half a slice, never by frame index. Geometry always comes from
the CT.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from rgsynth.io.source import InputError

_IN_PLANE_TOLERANCE_PX = 0.05  # a frame's corner off the CT pixel grid by more is refused


@dataclass
class SegFrames:
    """The frames of one SEG and what each says about itself.

    Attributes:
        path: the SEG file.
        segments: segment numbers declared in SegmentSequence, in order.
        pixels: (frames, rows, cols) bool, as stored (any order).
        segment: (frames,) segment number of each frame.
        source_uids: per-frame referenced CT SOP Instance UID, None where the frame has none.
        positions_mm: (frames, 3) ImagePositionPatient of each frame, NaN where absent.
        referenced_instances: every CT SOP Instance UID the SEG names anywhere
            (ReferencedSeriesSequence, shared or per-frame DerivationImageSequence).
        referenced_series: SeriesInstanceUIDs of ReferencedSeriesSequence (may be empty).
        frame_of_reference_uid: the SEG's FrameOfReferenceUID ('' if absent).
        notes: what was odd and how it was read, for the manifest.
        orientation: the frames' own direction cosines, None where invalid or absent.
        pixel_spacing_mm: the frames' own pixel spacing, None where absent.
    """

    path: Path
    segments: list[int]
    pixels: np.ndarray
    segment: np.ndarray
    source_uids: list[str | None]
    positions_mm: np.ndarray
    referenced_instances: set[str]
    referenced_series: list[str]
    frame_of_reference_uid: str
    notes: list[str] = field(default_factory=list)
    orientation: np.ndarray | None = None  # (2, 3) row, column cosines; None if invalid
    pixel_spacing_mm: tuple[float, float] | None = None


def read_seg_frames(path: Path, subject_id: str = "") -> SegFrames:
    """Every frame of a SEG with its segment, source instance and position.

    Raises:
        InputError: not a readable SEG, pixels that do not match the frame count, or a
            frame whose segment cannot be told.
    """
    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except Exception as error:  # pydicom raises many types for a broken file
        raise InputError(subject_id, path, f"not a readable DICOM SEG ({error})") from None
    if "PixelData" not in ds or "SegmentSequence" not in ds:
        raise InputError(subject_id, path, "not a DICOM SEG (no SegmentSequence or pixels)")
    pixels = _frame_pixels(ds, path, subject_id)
    if not ds.SegmentSequence:
        raise InputError(subject_id, path, "the SEG declares no segment")
    try:
        return _frames_of(ds, pixels, path, subject_id)
    except (AttributeError, KeyError, IndexError, ValueError, TypeError) as error:
        raise InputError(subject_id, path, f"SEG header is incomplete ({error})") from None


def _frames_of(ds: Dataset, pixels: np.ndarray, path: Path, subject_id: str) -> SegFrames:
    n_frames = pixels.shape[0]
    shared = _first(ds.get("SharedFunctionalGroupsSequence"))
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence", []))
    if per_frame and len(per_frame) != n_frames:
        raise InputError(
            subject_id,
            path,
            f"{n_frames} frames but {len(per_frame)} PerFrameFunctionalGroupsSequence items",
        )
    per_frame = per_frame or [Dataset() for _ in range(n_frames)]
    segments = [int(item.SegmentNumber) for item in ds.SegmentSequence]
    notes: list[str] = []
    segment = np.array(
        [_frame_segment(item, shared, segments, path, subject_id) for item in per_frame]
    )
    positions = np.array([_frame_position(item, shared) for item in per_frame], dtype=float)
    source_uids = [_frame_source_uid(item) for item in per_frame]
    listed, named = _named_instances(ds, shared, per_frame)
    duplicated = [uid for uid, count in Counter(listed).items() if count > 1]
    if duplicated:
        notes.append(
            f"the SEG names {len(duplicated)} CT instance(s) more than once; de-duplicated"
        )
    series = [
        str(item.SeriesInstanceUID)
        for item in ds.get("ReferencedSeriesSequence", [])
        if "SeriesInstanceUID" in item
    ]
    orientation = _orientation(shared, per_frame)
    if orientation is None:
        notes.append("the SEG's own ImageOrientationPatient is invalid or absent; the CT's used")
    return SegFrames(
        path=path,
        segments=segments,
        pixels=pixels,
        segment=segment,
        source_uids=source_uids,
        positions_mm=positions,
        referenced_instances=named,
        referenced_series=series,
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        notes=notes,
        orientation=orientation,
        pixel_spacing_mm=_pixel_spacing(shared, per_frame),
    )


def _orientation(shared: Dataset | None, per_frame: list[Dataset]) -> np.ndarray | None:
    """The frames' (row, column) direction cosines, (2, 3); None when absent or invalid
    (ePAD stores integers with an all-zero row vector)."""
    for group in ([shared] if shared is not None else []) + per_frame[:1]:
        if "PlaneOrientationSequence" in group:
            values = group.PlaneOrientationSequence[0].get("ImageOrientationPatient")
            if values is None or len(values) != 6:
                return None
            cosines = np.array([float(v) for v in values]).reshape(2, 3)
            norms = np.linalg.norm(cosines, axis=1)
            if np.allclose(norms, 1.0, atol=1e-3) and abs(cosines[0] @ cosines[1]) < 1e-3:
                return cosines
            return None
    return None


def _pixel_spacing(shared: Dataset | None, per_frame: list[Dataset]) -> tuple[float, float] | None:
    for group in ([shared] if shared is not None else []) + per_frame[:1]:
        if "PixelMeasuresSequence" in group:
            spacing = group.PixelMeasuresSequence[0].get("PixelSpacing")
            if spacing is not None and len(spacing) == 2:
                return float(spacing[0]), float(spacing[1])
    return None


def _first(sequence) -> Dataset | None:
    return sequence[0] if sequence else None


def _frame_pixels(ds: Dataset, path: Path, subject_id: str) -> np.ndarray:
    """(frames, rows, cols) bool: any non-zero value is segment."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            array = ds.pixel_array
    except Exception as error:  # a truncated or undecodable pixel stream
        raise InputError(subject_id, path, f"SEG pixel data unreadable ({error})") from None
    array = array.reshape(-1, int(ds.Rows), int(ds.Columns))
    return array > 0  # binary, or any fractional occupancy (as highdicom's reader kept)


def _frame_segment(
    item: Dataset, shared: Dataset | None, segments: list[int], path: Path, subject_id: str
) -> int:
    for group in (item, shared):
        if group is not None and "SegmentIdentificationSequence" in group:
            return int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
    if len(segments) == 1:
        return segments[0]
    raise InputError(subject_id, path, "a SEG frame names no segment and the SEG declares several")


def _frame_position(item: Dataset, shared: Dataset | None) -> tuple[float, float, float]:
    for group in (item, shared):
        if group is not None and "PlanePositionSequence" in group:
            position = group.PlanePositionSequence[0].get("ImagePositionPatient")
            if position is not None and len(position) == 3:
                return tuple(float(v) for v in position)  # type: ignore[return-value]
    return (np.nan, np.nan, np.nan)


def _frame_source_uid(item: Dataset) -> str | None:
    """The CT instance this frame says it was drawn on: per-frame references only, and
    only when the frame names exactly one (a frame listing the whole series says nothing
    about which slice it is)."""
    named = {
        str(source.ReferencedSOPInstanceUID)
        for derivation in item.get("DerivationImageSequence", [])
        for source in derivation.get("SourceImageSequence", [])
        if "ReferencedSOPInstanceUID" in source
    }
    return named.pop() if len(named) == 1 else None


def _named_instances(
    ds: Dataset, shared: Dataset | None, per_frame: list[Dataset]
) -> tuple[list[str], set[str]]:
    """CT instance UIDs named by the SEG's instance lists (ReferencedSeriesSequence, the
    shared DerivationImageSequence), with repeats, to spot duplicates; and every UID named
    anywhere, per-frame references included (frames of several segments may share one)."""
    listed = []
    for series in ds.get("ReferencedSeriesSequence", []):
        listed += [
            str(i.ReferencedSOPInstanceUID) for i in series.get("ReferencedInstanceSequence", [])
        ]
    groups = [shared] if shared is not None else []
    everything = set(listed)
    for k, group in enumerate(groups + per_frame):
        for derivation in group.get("DerivationImageSequence", []):
            uids = [
                str(s.ReferencedSOPInstanceUID)
                for s in derivation.get("SourceImageSequence", [])
                if "ReferencedSOPInstanceUID" in s
            ]
            everything.update(uids)
            if k < len(groups):
                listed += uids
    return listed, everything


@dataclass(frozen=True)
class SliceGeometry:
    """Where each slice of a CT series lies, in the order of the CT's array.

    Attributes:
        uids: SOP Instance UID of each slice.
        positions_mm: (slices, 3) ImagePositionPatient of each slice.
        row, col: unit direction cosines of the image rows and columns (from the CT).
        pixel_spacing_mm: (between rows, between columns).
        shape: (rows, columns) of a slice.
    """

    uids: list[str]
    positions_mm: np.ndarray
    row: np.ndarray
    col: np.ndarray
    pixel_spacing_mm: tuple[float, float]
    shape: tuple[int, int]

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row, self.col)

    def along_normal(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=float) @ self.normal


def place_segment(
    seg: SegFrames, segment_number: int, ct: SliceGeometry, subject_id: str = ""
) -> tuple[np.ndarray, str]:
    """(slices, rows, cols) bool: the segment's frames on the CT's slices; and how.

    Frames are matched by per-frame source instance when every frame of the segment has
    one and all are slices of this CT; otherwise by position. Slices without a frame are
    empty (writers omit empty frames, or crop the SEG to the nodule).

    Raises:
        InputError: a frame with neither a usable reference nor a position, a frame that
            lies between the CT's slices, or frames off the CT's pixel grid. Frames beyond
            the series (a SEG drawn on a longer scan) are left out, and said so.
    """
    _check_grid(seg, ct, subject_id)
    # Empty frames place nothing: whatever they say (or do not) cannot refuse a SEG.
    chosen = np.flatnonzero((seg.segment == segment_number) & seg.pixels.any(axis=(1, 2)))
    mask = np.zeros((len(ct.uids), *ct.shape), dtype=bool)
    slices = _by_reference(seg, chosen, ct)
    if slices is not None:
        how = "frames matched by referenced SOP Instance UID"
        offsets = [(0, 0)] * chosen.size
    else:
        slices, offsets = _by_position(seg, chosen, ct, subject_id)
        how = (
            "frames matched by patient position (the SEG frames do not each reference a "
            "slice of this CT)"
        )
    rows, cols = seg.pixels.shape[1:]
    beyond = 0
    for frame, k, (dr, dc) in zip(chosen, slices, offsets, strict=True):
        if k is None:
            beyond += int(seg.pixels[frame].any())
            continue
        _paste(mask[k], seg.pixels[frame], dr, dc, rows, cols)
    if beyond:
        how += f"; {beyond} SEG frame(s) with the nodule lie beyond the CT series, left out"
    return mask, how


def _check_grid(seg: SegFrames, ct: SliceGeometry, subject_id: str) -> None:
    """Refuse frames drawn on another pixel grid than the CT's: another orientation (when
    the SEG's own is valid) or another pixel spacing. rgsynth does not resample SEGs."""
    if seg.orientation is not None:
        row, col = seg.orientation
        if row @ ct.row < 0.999 or col @ ct.col < 0.999:
            raise InputError(
                subject_id,
                seg.path,
                f"SEG frames lie in another orientation ({np.round(seg.orientation, 3).ravel()}) "
                "than their CT; rgsynth reads SEGs drawn on the CT's own pixels",
            )
    if seg.pixel_spacing_mm is not None and not np.allclose(
        seg.pixel_spacing_mm, ct.pixel_spacing_mm, rtol=1e-3, atol=1e-4
    ):
        raise InputError(
            subject_id,
            seg.path,
            f"SEG pixel spacing {seg.pixel_spacing_mm} mm differs from its CT's "
            f"{ct.pixel_spacing_mm} mm; rgsynth reads SEGs drawn on the CT's own pixels",
        )


def _by_reference(seg: SegFrames, chosen: np.ndarray, ct: SliceGeometry) -> list[int] | None:
    """The CT slice of each frame by its own reference, when every frame names one slice
    of this CT, frames are full-size and, where a frame has a position, it agrees (within
    half a slice); else None (place by position)."""
    index_of = {uid: k for k, uid in enumerate(ct.uids)}
    sources = [seg.source_uids[i] for i in chosen]
    if not chosen.size or seg.pixels.shape[1:] != ct.shape:
        return None
    if not all(uid is not None and uid in index_of for uid in sources):
        return None
    slices = [index_of[uid] for uid in sources]  # type: ignore[index]
    along_ct = ct.along_normal(ct.positions_mm)
    half = 0.5 * (float(np.median(np.abs(np.diff(along_ct)))) if along_ct.size > 1 else 1.0)
    for frame, k in zip(chosen, slices, strict=True):
        position = seg.positions_mm[frame]
        if not np.isnan(position).any() and abs(ct.along_normal(position) - along_ct[k]) > half:
            return None
    return slices


def _by_position(
    seg: SegFrames, chosen: np.ndarray, ct: SliceGeometry, subject_id: str
) -> tuple[list[int | None], list[tuple[int, int]]]:
    """The CT slice (None: beyond the series) and in-plane pixel offset of each frame."""
    positions = seg.positions_mm[chosen]
    if np.isnan(positions).any():
        raise InputError(
            subject_id,
            seg.path,
            "SEG frames reference no slice of this CT and carry no PlanePositionSequence",
        )
    along_ct = ct.along_normal(ct.positions_mm)
    order = np.argsort(along_ct)
    gaps = np.diff(along_ct[order])
    half = 0.5 * (float(np.median(gaps)) if gaps.size else 1.0)
    slices: list[int | None] = []
    offsets = []
    low, high = along_ct.min() - half, along_ct.max() + half
    for position in positions:
        along = ct.along_normal(position)
        if not low - 1e-3 <= along <= high + 1e-3:  # the SEG covers more than this CT
            slices.append(None)
            offsets.append((0, 0))
            continue
        distance = np.abs(along_ct - along)
        k = int(np.argmin(distance))
        if distance[k] > half + 1e-3:
            raise InputError(
                subject_id,
                seg.path,
                f"a SEG frame at {along:.2f} mm along the slice normal is "
                f"{distance[k]:.2f} mm from the nearest CT slice (more than half a slice)",
            )
        offset = (np.asarray(position) - ct.positions_mm[k]) @ np.stack([ct.col, ct.row], axis=1)
        # offset[0] is along the columns' direction (rows of the array), offset[1] along rows
        dr, dc = offset[0] / ct.pixel_spacing_mm[0], offset[1] / ct.pixel_spacing_mm[1]
        if max(abs(dr - round(dr)), abs(dc - round(dc))) > _IN_PLANE_TOLERANCE_PX:
            raise InputError(
                subject_id,
                seg.path,
                f"SEG frames are off the CT's pixel grid by ({dr:.2f}, {dc:.2f}) pixels; "
                "rgsynth reads SEGs drawn on the CT's own pixels",
            )
        slices.append(k)
        offsets.append((round(dr), round(dc)))
    return slices, offsets


def _paste(target: np.ndarray, frame: np.ndarray, dr: int, dc: int, rows: int, cols: int) -> None:
    """OR a frame into a slice at a pixel offset, clipping what falls outside."""
    r0, c0 = max(dr, 0), max(dc, 0)
    r1, c1 = min(dr + rows, target.shape[0]), min(dc + cols, target.shape[1])
    if r0 < r1 and c0 < c1:
        target[r0:r1, c0:c1] |= frame[r0 - dr : r1 - dr, c0 - dc : c1 - dc]
