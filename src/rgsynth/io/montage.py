"""QC montage of a cohort on disk: an axial slice through each nodule, lung window.

Reads only the cohort's files (metadata.csv, the DICOM CT and SEG series, and
ground_truth.json when present), so it shows what a reader of the files will get.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rgsynth.intensity import LUNG_WINDOW
from rgsynth.io.dicom_read import read_ct_series, read_header, read_seg_mask
from rgsynth.io.seg_read import read_seg_frames
from rgsynth.io.source import InputError
from rgsynth.io.tcia import metadata_location, referenced_ct
from rgsynth.layout import GROUND_TRUTH_FILENAME, METADATA_FILENAME
from rgsynth.plotting import pyplot, save_png

log = logging.getLogger(__name__)

ZOOM_MM = 60.0  # the paper's VOI edge


@dataclass
class NoduleView:
    subject_id: str
    slice_hu: np.ndarray  # (y, x)
    slice_mask: np.ndarray | None  # (y, x) bool, None without a SEG
    centre_px: tuple[float, float]  # (row, column)
    pixel_mm: float
    caption: str


def cohort_series(cohort: Path) -> dict[str, dict[str, Path]]:
    """Subject → {"CT": series folder, "SEG": file} from the cohort's metadata.csv.

    Of a subject's CT series the one ``prepare`` would read with its SEG is shown; without
    a SEG (or when none fits) the one with the most images (a download also holds
    localizers, reformats, CTAC and earlier studies).
    """
    rows: dict[str, list[dict[str, str]]] = {}
    with open(cohort / METADATA_FILENAME, newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(row["Subject ID"].strip(), []).append(row)
    series: dict[str, dict[str, Path]] = {}
    for subject_id, subject_rows in rows.items():
        entry = series.setdefault(subject_id, {})
        segs = [r for r in subject_rows if r["Modality"] == "SEG"]
        if segs:
            folder = metadata_location(cohort, segs[0]["File Location"])
            entry["SEG"] = next(iter(sorted(folder.glob("*.dcm"))))
        cts = sorted(
            (r for r in subject_rows if r["Modality"] == "CT"),
            key=lambda r: -int(r.get("Number of Images") or 0),
        )
        if not cts:
            continue
        folders = [metadata_location(cohort, r["File Location"]) for r in cts]
        entry["CT"] = _seg_series(entry["SEG"], folders) if segs else folders[0]
    return series


def _seg_series(seg_path: Path, folders: list[Path]) -> Path:
    """The CT series folder the SEG was drawn on, chosen as ``prepare`` chooses it
    (:func:`rgsynth.io.tcia.referenced_ct`); the largest when that finds none."""
    series = {}
    for folder in folders:
        headers = [h for p in sorted(folder.iterdir()) if (h := read_header(p))]
        if headers and not all(h.is_localizer for h in headers):
            series[headers[0].series_instance_uid] = [h for h in headers if not h.is_localizer]
    seg_header = read_header(seg_path)
    try:
        chosen, _ = referenced_ct(read_seg_frames(seg_path), seg_header, series, "")
    except InputError:
        return folders[0]
    return chosen[0].path.parent


def load_views(
    cohort: Path, max_subjects: int, on_subject: Callable[[str], None] | None = None
) -> list[NoduleView]:
    cohort = Path(cohort)
    truth_path = cohort / GROUND_TRUTH_FILENAME
    truth = {}
    if truth_path.exists():
        truth = {s["subject_id"]: s for s in json.loads(truth_path.read_text())["subjects"]}
    views = []
    for subject_id, entry in list(cohort_series(cohort).items())[:max_subjects]:
        view = _view(subject_id, entry, truth.get(subject_id))
        if view is not None:
            views.append(view)
        if on_subject:
            on_subject(subject_id)
    return views


def _view(subject_id: str, entry: dict[str, Path], truth: dict | None) -> NoduleView | None:
    if "CT" not in entry:
        return None
    ct = read_ct_series(entry["CT"])
    mask = read_seg_mask(entry["SEG"], ct) if "SEG" in entry else None
    if mask is not None and mask.any():
        k = int(np.argmax(mask.sum(axis=(1, 2))))
        rows, cols = np.nonzero(mask[k])
        centre = (float(rows.mean()), float(cols.mean()))
    elif truth is not None:
        x, y, z = truth["nodule"]["centre_mm"]
        x0, y0, z0 = ct.origin_mm
        dz, dy, dx = ct.spacing_mm
        k = int(np.clip(round((z - z0) / dz), 0, ct.hu.shape[0] - 1))
        centre = ((y - y0) / dy, (x - x0) / dx)
    else:
        return None
    caption = subject_id + ("" if mask is not None else " (no SEG)")
    if truth is not None:
        nodule, traits = truth["nodule"], truth["traits"]
        caption += (
            f"\n{traits['nodule_type']}, {nodule['diameter_mm']:.0f} mm, {nodule['location']}"
        )
    return NoduleView(
        subject_id=subject_id,
        slice_hu=ct.hu[k],
        slice_mask=None if mask is None else mask[k],
        centre_px=centre,
        pixel_mm=float(ct.spacing_mm[2]),
        caption=caption,
    )


def save_montage(views: list[NoduleView], path: Path, columns: int = 4) -> Path:
    """Each subject as a pair: the whole slice, and a 60 mm zoom with the SEG contour."""
    plt = pyplot()

    if not views:
        raise ValueError("no subject with a CT series and a nodule to show")
    n_rows = int(np.ceil(len(views) / columns))
    fig, axes = plt.subplots(
        n_rows, 2 * columns, figsize=(4.2 * columns, 2.4 * n_rows), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    vmin, vmax = LUNG_WINDOW.hu
    for n, view in enumerate(views):
        full, zoom = (
            axes[n // columns, 2 * (n % columns)],
            axes[n // columns, 2 * (n % columns) + 1],
        )
        full.imshow(view.slice_hu, cmap="gray", vmin=vmin, vmax=vmax, interpolation="lanczos")
        row, col = view.centre_px
        half = 0.5 * ZOOM_MM / view.pixel_mm
        full.add_patch(
            plt.Rectangle(
                (col - half, row - half),
                2 * half,
                2 * half,
                fill=False,
                edgecolor="yellow",
                linewidth=0.6,
            )
        )
        full.set_title(view.caption, fontsize=6.5, loc="left")
        r0, c0 = int(max(0, row - half)), int(max(0, col - half))
        r1, c1 = int(row + half), int(col + half)
        zoom.imshow(
            view.slice_hu[r0:r1, c0:c1], cmap="gray", vmin=vmin, vmax=vmax, interpolation="lanczos"
        )
        if view.slice_mask is not None and view.slice_mask[r0:r1, c0:c1].any():
            zoom.contour(view.slice_mask[r0:r1, c0:c1], levels=[0.5], colors="red", linewidths=0.6)
    fig.suptitle(
        "rgsynth QC: axial slice through each nodule, lung window (L -600 / W 1500); "
        "right: 60 mm zoom with the SEG contour",
        fontsize=8,
    )
    fig.tight_layout()
    return save_png(fig, path, dpi=110)
