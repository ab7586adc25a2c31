"""Reader for a TCIA download: ``<Subject>/<study>/<series>/<file>.dcm`` with or without
``metadata.csv``, in the descriptive or the UID-named folder layout.

A subject's nodule comes from its DICOM SEG. The CT it was drawn on is the series named in
the SEG's ReferencedSeriesSequence; failing that, the series holding the SEG frames'
referenced instances; failing that, a CT series on the SEG's frame of reference that
covers its frames. Several SEGs: the one with the lowest series number (then UID) is used.
Several segments: the largest. Several nodules in it: the largest (see
:func:`keep_largest_nodule`). Every such choice is noted in the manifest.
"""

from __future__ import annotations

import csv
import os
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from rgsynth.io.dicom_read import (
    SEG_SOP_CLASS,
    CtStack,
    Header,
    read_ct_image,
    read_header,
    to_axial_lps,
)
from rgsynth.io.seg_read import SegFrames, place_segment, read_seg_frames
from rgsynth.io.source import (
    InputError,
    MissingInput,
    SubjectImages,
    SubjectSource,
    keep_largest_nodule,
)
from rgsynth.layout import METADATA_FILENAME

_LAYOUT_DEPTH = 3  # <subject>/<study>/<series>/<file>


def discover(root: Path) -> tuple[list[SubjectSource], list[InputError]]:
    """Subjects under ``root``, sorted by ID, and the problems found while listing them."""
    root = Path(root)
    if (root / METADATA_FILENAME).is_file():
        folders = _folders_from_metadata(root)
    else:
        folders = _folders_from_tree(root)
    sources, problems = [], []
    for subject_id in sorted(folders):
        subject_dirs = sorted({series.parents[1] for series in folders[subject_id]})
        if len(subject_dirs) > 1:
            problems.append(
                InputError(
                    subject_id,
                    subject_dirs[1],
                    f"duplicated subject ID: also in {subject_dirs[0]}",
                )
            )
            continue
        paths = tuple(sorted(folders[subject_id]))
        sources.append(SubjectSource(subject_id, "tcia", paths, root))
    return sources, problems


def load_all(root: Path) -> dict[str, SubjectImages | None]:
    """Every subject of a download read (None: no SEG), in one process; for checks and
    tests of whole cohorts (``prepare`` loads subjects in parallel itself).

    Raises:
        InputError: a problem found while listing the subjects, or in a subject's files.
    """
    sources, problems = discover(root)
    if problems:
        raise problems[0]
    loaded: dict[str, SubjectImages | None] = {}
    for source in sources:
        try:
            loaded[source.subject_id] = load(source)
        except MissingInput:
            loaded[source.subject_id] = None
    return loaded


def _folders_from_metadata(root: Path) -> dict[str, set[Path]]:
    """Series folders by subject from ``metadata.csv``'s ``File Location`` column.

    A location starts ``./`` or, in a download made on Windows, ``.\\`` with backslashes
    throughout (``.\\NSCLC Radiogenomics\\R01-001\\...``): either separator is split on,
    ``.`` parts dropped, and each folder name kept exactly as written (the real names hold
    double spaces, ``Chest  1.0  B45f``: nothing is collapsed).
    """
    folders: dict[str, set[Path]] = defaultdict(set)
    with open(root / METADATA_FILENAME, newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            subject_id = (row.get("Subject ID") or "").strip()
            location = (row.get("File Location") or "").strip()
            if not subject_id or not location:
                raise InputError(
                    "", root / METADATA_FILENAME, "a row without Subject ID or File Location"
                )
            folders[subject_id].add(metadata_location(root, location))
    return folders


def metadata_location(root: Path, location: str) -> Path:
    """A ``File Location`` of metadata.csv (``./…`` or ``.\\…``) as a path under ``root``,
    every folder name kept exactly as written."""
    parts = [part for part in re.split(r"[\\/]", location.strip()) if part not in ("", ".")]
    return Path(root).joinpath(*parts)


def _folders_from_tree(root: Path) -> dict[str, set[Path]]:
    """Series folders grouped by subject; the subject ID is the PatientID of its first file."""
    by_subject_dir: dict[Path, set[Path]] = defaultdict(set)
    for folder, _, names in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        if names and depth >= _LAYOUT_DEPTH:
            series = Path(folder)
            by_subject_dir[series.parents[1]].add(series)
    folders: dict[str, set[Path]] = defaultdict(set)
    for subject_dir, series_dirs in sorted(by_subject_dir.items()):
        subject_id = _patient_id(sorted(series_dirs)) or subject_dir.name
        folders[subject_id] |= series_dirs
    return folders


def _patient_id(series_dirs: list[Path]) -> str:
    for series in series_dirs:
        for path in sorted(series.iterdir()):
            try:
                header = read_header(path)
            except InputError:
                continue  # reported when the subject is loaded
            if header is not None:
                return header.patient_id
    return ""


def load(source: SubjectSource, max_slice_mm: float | None = None) -> SubjectImages:
    """Read one subject's CT and nodule mask (see the module docstring for the choices).

    Raises:
        MissingInput: the subject has no SEG.
        InputError: anything wrong with the files, naming the file.
    """
    sid = source.subject_id
    for folder in source.paths:
        if not folder.is_dir():
            raise InputError(sid, folder, "series folder listed in metadata.csv does not exist")
    headers = [h for f in source.files() if (h := read_header(f, sid)) is not None]
    series: dict[str, list[Header]] = defaultdict(list)
    for header in headers:
        series[header.series_instance_uid].append(header)
    segs = sorted(
        (h for h in headers if h.sop_class_uid == SEG_SOP_CLASS),
        key=lambda h: (h.series_number, h.series_instance_uid, h.sop_instance_uid),
    )
    cts = {
        uid: slices
        for uid, hs in series.items()
        if hs[0].modality == "CT" and (slices := [h for h in hs if not h.is_localizer])
    }
    if not segs:
        raise MissingInput(sid, source.paths[0].parents[1], "no nodule SEG for this subject")
    notes = (
        [f"{len(segs)} SEGs found; used {segs[0].path.name} (lowest series number)"]
        if len(segs) > 1
        else []
    )
    seg_header = segs[0]
    seg = read_seg_frames(seg_header.path, sid)
    notes += seg.notes
    ct_headers, choice = referenced_ct(seg, seg_header, cts, sid)
    notes += choice
    if ct_headers[0].frame_of_reference_uid != seg_header.frame_of_reference_uid:
        raise InputError(
            sid,
            seg_header.path,
            f"SEG is on frame of reference {seg_header.frame_of_reference_uid} but its CT "
            f"series {ct_headers[0].path.parent.name} is on "
            f"{ct_headers[0].frame_of_reference_uid}",
        )
    stack = read_ct_image(ct_headers, sid)
    ct_folder = ct_headers[0].path.parent
    ct_lps, orient_notes = to_axial_lps(stack.image, sid, ct_folder, max_slice_mm)  # first
    mask_image, segment_note = _largest_segment(seg, stack, sid)
    notes += stack.notes + segment_note
    mask_lps, _ = to_axial_lps(mask_image, sid, seg_header.path)
    spacing = tuple(ct_lps.GetSpacing()[::-1])
    mask, nodule_notes = keep_largest_nodule(
        sitk.GetArrayFromImage(mask_lps) > 0, spacing, sid, seg_header.path
    )
    return SubjectImages(
        subject_id=sid,
        hu=sitk.GetArrayFromImage(ct_lps).astype(np.float32),
        nodule_mask=mask,
        spacing_mm=spacing,
        origin_mm=tuple(ct_lps.GetOrigin()),
        ct_file=str(ct_folder),
        mask_file=str(seg_header.path),
        notes=notes + orient_notes + nodule_notes,
    )


def referenced_ct(
    seg: SegFrames, seg_header: Header, cts: dict[str, list[Header]], subject_id: str
) -> tuple[list[Header], list[str]]:
    """The CT series the SEG was drawn on (module docstring: three ways, in order), and a
    note when it had to be chosen without a reference."""
    if seg.referenced_series:
        for uid in seg.referenced_series:
            if uid in cts:
                return cts[uid], []
        raise InputError(
            subject_id,
            seg_header.path,
            f"SEG references CT series {seg.referenced_series[0]}, which is not among this "
            f"subject's files",
        )
    if seg.referenced_instances:
        for headers in cts.values():
            if seg.referenced_instances & {h.sop_instance_uid for h in headers}:
                return headers, []
        raise InputError(
            subject_id, seg_header.path, "none of the CT instances the SEG references is here"
        )
    same_frame = [
        hs
        for hs in cts.values()
        if hs[0].frame_of_reference_uid == seg_header.frame_of_reference_uid and _axial(hs)
    ]
    if not same_frame:
        raise InputError(
            subject_id,
            seg_header.path,
            f"SEG has no references and no axial CT series shares its frame of reference "
            f"{seg_header.frame_of_reference_uid}",
        )
    chosen = max(same_frame, key=lambda hs: (len(hs), -hs[0].series_number))
    note = (
        f"the SEG names no CT series or instance: used {chosen[0].path.parent.name} "
        f"({len(chosen)} slices), the largest axial series of {len(same_frame)} on its "
        "frame of reference"
    )
    return chosen, [note]


def _axial(headers: list[Header]) -> bool:
    """Most of the series' images are axial (a reformat or a scout is not)."""
    normals = [
        abs(float(np.cross(h.orientation[:3], h.orientation[3:])[2]))
        for h in headers
        if h.orientation is not None and len(h.orientation) == 6
    ]
    return bool(normals) and float(np.median(normals)) > 0.99


def _largest_segment(
    seg: SegFrames, stack: CtStack, subject_id: str
) -> tuple[sitk.Image, list[str]]:
    placed = [place_segment(seg, n, stack.geometry, subject_id) for n in seg.segments]
    voxels = [int(mask.sum()) for mask, _ in placed]
    best = int(np.argmax(voxels))
    notes = [placed[best][1]]
    if len(seg.segments) > 1:
        notes.append(
            f"{len(seg.segments)} segments; used segment {seg.segments[best]} (the largest)"
        )
    return stack.mask_image(placed[best][0]), notes
