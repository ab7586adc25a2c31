"""What every cohort reader hands to ``prepare``: subjects found, and their images loaded.

A reader first *discovers* subjects cheaply (paths only, no pixels) so they can be loaded
in parallel, then *loads* one subject into a :class:`SubjectImages`: the CT in HU on an
axial grid with ascending z, and the nodule mask on the same grid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rgsynth.config import fingerprint
from rgsynth.errors import InputError

AXIAL_TOLERANCE_DEG = 5.0  # gantry tilt beyond this is not "axial"


@dataclass(frozen=True)
class SubjectSource:
    """One subject as discovered: where its files are, before anything is read.

    Attributes:
        subject_id: the cohort's ID (TCIA "Subject ID", or a folder cohort's file stem).
        kind: ``tcia`` or ``folder``.
        paths: the files (folder cohort: image then mask) or series folders (TCIA) to read.
        root: the folder everything is relative to, for messages and fingerprints.
    """

    subject_id: str
    kind: str
    paths: tuple[Path, ...]
    root: Path

    def files(self) -> list[Path]:
        found: list[Path] = []
        for path in self.paths:
            if path.is_dir():
                found.extend(sorted(p for p in path.rglob("*") if p.is_file()))
            elif path.exists():
                found.append(path)
        return found

    def fingerprint(self) -> str:
        """Cheap identity of the inputs: relative path, size and mtime of every file."""
        entries = []
        for path in self.files():
            stat = path.stat()
            entries.append((os.path.relpath(path, self.root), stat.st_size, stat.st_mtime_ns))
        return fingerprint([self.subject_id, self.kind, entries])


@dataclass
class SubjectImages:
    """One subject's CT and nodule mask on the same axial grid.

    Attributes:
        subject_id: the cohort's ID.
        hu: (z, y, x) float32 Hounsfield units, slices by ascending patient z.
        nodule_mask: (z, y, x) bool, the chosen nodule only.
        spacing_mm: (dz, dy, dx) voxel spacing in mm.
        origin_mm: patient (x, y, z) of voxel [0, 0, 0] in mm (LPS).
        ct_file: the CT series folder or image file read.
        mask_file: the SEG or mask file read.
        notes: choices made on the way (which SEG, which nodule, padding), for the manifest.
    """

    subject_id: str
    hu: np.ndarray
    nodule_mask: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    ct_file: str
    mask_file: str
    notes: list[str] = field(default_factory=list)

    def index_to_mm(self, index_zyx: np.ndarray) -> np.ndarray:
        """Voxel indices (..., 3) in (z, y, x) order → patient (x, y, z) in mm."""
        index = np.asarray(index_zyx, dtype=float)
        dz, dy, dx = self.spacing_mm
        scaled = index[..., ::-1] * np.array([dx, dy, dz])
        return scaled + np.asarray(self.origin_mm)


class MissingInput(InputError):
    """An expected gap, not a fault: a subject with no nodule segmentation, or no genes.

    The real collection has them (144 of 211 subjects have a SEG, 130 have RNA-seq), so
    they are recorded as exclusions and never stop a run.
    """


def keep_largest_nodule(
    mask: np.ndarray, spacing_mm: tuple[float, float, float], subject_id: str, path: Path | str
) -> tuple[np.ndarray, list[str]]:
    """The largest 3-D connected component of ``mask`` (26-connectivity), with a note when
    there were several: one nodule per subject, the biggest, as the primary tumour.

    Raises:
        InputError: the mask is empty.
    """
    from scipy import ndimage

    if not mask.any():
        raise InputError(subject_id, path, "the nodule mask is empty")
    labels, count = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 1:
        return mask.astype(bool), []
    voxel_ml = float(np.prod(spacing_mm)) / 1000.0
    sizes = np.bincount(labels.ravel())[1:]
    keep = int(np.argmax(sizes)) + 1
    volumes = ", ".join(f"{v * voxel_ml:.2f}" for v in sorted(sizes, reverse=True))
    note = f"{count} separate regions in the mask ({volumes} mL); kept the largest"
    return labels == keep, [note]
