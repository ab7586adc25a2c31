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
from collections import defaultdict
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from rgsynth.io.dicom_read import (
    SEG_SOP_CLASS,
    Header,
    read_ct_image,
    read_header,
    read_seg,
    seg_mask_image,
    segment_numbers,
    to_axial_lps,
)
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


def _folders_from_metadata(root: Path) -> dict[str, set[Path]]:
    folders: dict[str, set[Path]] = defaultdict(set)
    with open(root / METADATA_FILENAME, newline="") as handle:
        for row in csv.DictReader(handle):
            subject_id = row.get("Subject ID", "").strip()
            location = row.get("File Location", "").strip()
            if not subject_id or not location:
                raise InputError(
                    "", root / METADATA_FILENAME, "a row without Subject ID or File Location"
                )
            # Downloads made on Windows write ".\\NSCLC Radiogenomics\\R01-001\\...".
            folders[subject_id].add(root / location.replace("\\", "/"))
    return folders


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
    seg = read_seg(seg_header.path, sid)
    ct_headers = _referenced_ct(seg, seg_header, cts, sid)
    if ct_headers[0].frame_of_reference_uid != seg_header.frame_of_reference_uid:
        raise InputError(
            sid,
            seg_header.path,
            f"SEG is on frame of reference {seg_header.frame_of_reference_uid} but its CT "
            f"series {ct_headers[0].path.parent.name} is on "
            f"{ct_headers[0].frame_of_reference_uid}",
        )
    ct_image, ct_uids = read_ct_image(ct_headers, sid)
    mask_image, segment_note = _largest_segment(seg, seg_header.path, ct_image, ct_uids, sid)
    notes += segment_note
    ct_folder = ct_headers[0].path.parent
    ct_lps, orient_notes = to_axial_lps(ct_image, sid, ct_folder, max_slice_mm)
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


def _referenced_ct(
    seg, seg_header: Header, cts: dict[str, list[Header]], subject_id: str
) -> list[Header]:
    """The CT series the SEG was drawn on (module docstring: three ways, in order)."""
    referenced_series = [
        str(item.SeriesInstanceUID) for item in seg.get("ReferencedSeriesSequence", [])
    ]
    if referenced_series:
        for uid in referenced_series:
            if uid in cts:
                return cts[uid]
        raise InputError(
            subject_id,
            seg_header.path,
            f"SEG references CT series {referenced_series[0]}, which is not among this "
            f"subject's files",
        )
    instances = {uid for _, _, uid in seg.get_source_image_uids()}
    if instances:
        for headers in cts.values():
            if instances & {h.sop_instance_uid for h in headers}:
                return headers
        raise InputError(
            subject_id, seg_header.path, "none of the CT instances the SEG frames reference is here"
        )
    same_frame = [
        hs
        for hs in cts.values()
        if hs[0].frame_of_reference_uid == seg_header.frame_of_reference_uid
    ]
    if not same_frame:
        raise InputError(
            subject_id,
            seg_header.path,
            f"SEG has no references and no CT series shares its frame of reference "
            f"{seg_header.frame_of_reference_uid}",
        )
    return max(same_frame, key=lambda hs: (len(hs), -hs[0].series_number))


def _largest_segment(seg, seg_path: Path, ct_image, ct_uids, subject_id):
    numbers = segment_numbers(seg)
    masks = [seg_mask_image(seg, seg_path, ct_image, ct_uids, n, subject_id) for n in numbers]
    voxels = [int(sitk.GetArrayViewFromImage(m).sum()) for m, _ in masks]
    best = int(np.argmax(voxels))
    notes = [masks[best][1]]
    if len(numbers) > 1:
        notes.append(f"{len(numbers)} segments; used segment {numbers[best]} (the largest)")
    return masks[best][0], notes
