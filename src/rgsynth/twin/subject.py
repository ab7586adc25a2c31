"""One twin subject: scan geometry, anatomy, the gene-driven nodule and the acquisition."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rgsynth.twin.anatomy import Grid, build_phantom, draw_body_shape, relative_height
from rgsynth.twin.nodule import draw_nodule_shape, place_nodule, render_nodule
from rgsynth.twin.scanner import Acquisition, acquire, draw_acquisition


@dataclass(frozen=True)
class SubjectPlan:
    """What the cohort decided for a subject before its images are made."""

    subject_id: str
    index: int
    seed: int
    traits: dict
    has_seg: bool
    seg_flavour: str | None  # "slicer" (one frame per slice) or "epad" (empty omitted)
    has_rnaseq: bool
    matrix: int
    slab_mm: float
    pixel_spacing_mm: tuple[float, float]
    slice_thickness_mm: tuple[float, ...]
    extra: dict = field(default_factory=dict)


@dataclass
class SubjectScan:
    """The rendered subject: stored HU, nodule mask, geometry and what was realised."""

    hu: np.ndarray  # (z, y, x) int16 HU, slices in ascending z
    nodule_mask: np.ndarray  # (z, y, x) bool
    grid: Grid
    acquisition: Acquisition
    nodule: dict  # realised centre, diameter, location, lobe


def render_subject(plan: SubjectPlan) -> SubjectScan:
    """Deterministic for ``plan`` (its seed)."""
    rng = np.random.default_rng(plan.seed)
    acquisition = draw_acquisition(rng, plan.pixel_spacing_mm, plan.slice_thickness_mm)
    spacing, thickness = acquisition.pixel_spacing_mm, acquisition.slice_thickness_mm
    fov_mm = spacing * plan.matrix
    body = draw_body_shape(rng, fov_mm, acquisition.contrast)
    # Adenocarcinomas favour the upper lobes: relative height skewed toward the apex.
    t_nodule = 0.25 + 0.55 * rng.beta(2.2, 1.6)
    z_nodule = body.z_base_mm + t_nodule * body.lung_height_mm
    n_slices = round(plan.slab_mm / thickness)
    z_first = z_nodule - 0.5 * plan.slab_mm + rng.uniform(-0.15, 0.15) * plan.slab_mm
    # Table position is reported in whole 0.5 mm steps, like a scanner's couch.
    z_first = round(z_first * 2.0) / 2.0
    origin = (-0.5 * fov_mm + 0.5 * spacing, -0.5 * fov_mm + 0.5 * spacing, z_first)
    grid = Grid((n_slices, plan.matrix, plan.matrix), (thickness, spacing, spacing), origin)
    phantom = build_phantom(rng, grid, body)

    radius_mm = 0.5 * float(plan.traits["diameter_mm"])
    centre, radius_mm, location = place_nodule(
        rng, phantom, grid, str(plan.traits["location"]), radius_mm, z_nodule
    )
    # The nodule's own stream, so the reference generator can replay its shape and texture
    # from (seed, traits) alone, whatever the anatomy consumed before it.
    nodule_rng = nodule_stream(plan.seed)
    shape = draw_nodule_shape(nodule_rng, plan.traits, centre, radius_mm)
    mask = render_nodule(nodule_rng, phantom.hu, phantom.lung, grid, shape)
    stored = acquire(rng, phantom.hu, acquisition)
    t_centre = relative_height(float(centre[2]), body)
    nodule = {
        "centre_mm": [round(float(c), 3) for c in centre],
        "diameter_mm": round(2.0 * radius_mm, 3),
        "location": location,
        "lobe": _lobe(float(centre[0]), float(centre[1] - body.body_centre_y_mm), t_centre),
        "mask_voxels": int(mask.sum()),
        "mask_volume_mm3": round(float(mask.sum()) * float(np.prod(grid.spacing_mm)), 2),
    }
    return SubjectScan(
        hu=stored, nodule_mask=mask, grid=grid, acquisition=acquisition, nodule=nodule
    )


def nodule_stream(seed: int) -> np.random.Generator:
    """The random stream a subject's nodule shape and texture are drawn from."""
    return np.random.default_rng([seed, 1])


def _lobe(x_mm: float, y_rel_mm: float, t: float) -> str:
    """Lobe by side (patient left is +x) and height; the middle lobe and lingula sit
    anteriorly between about 40 % and 60 % of lung height."""
    left = x_mm > 0
    anterior_mid = 0.4 <= t <= 0.6 and y_rel_mm < 0
    if left:
        return "L Lingula" if anterior_mid else ("LUL" if t > 0.5 else "LLL")
    return "RML" if anterior_mid else ("RUL" if t > 0.6 else "RLL")
