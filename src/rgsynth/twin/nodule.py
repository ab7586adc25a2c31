"""Gene-driven lung nodules: placement in the lung and rendering into the HU volume.

A nodule is a star-shaped body: its radius along unit direction u is
``R · (1 + lobulation bumps(u))`` after a random anisotropic stretch, so every nodule is
asymmetric. A part-solid nodule has a solid core (a scaled copy of the body) inside a
ground-glass halo; spiculation adds thin strands radiating 2–10 mm from the margin;
heterogeneity adds smooth internal texture and air lucencies, more the stronger it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from rgsynth.twin.anatomy import HU_LUNG, Grid, Phantom

N_LOBES = 24
LOBE_WIDTH = 0.08  # angular width of a lobe, in 1 - cos(angle) units
SPICULE_RADIUS_MM = (1.4, 0.5)  # a strand's radius at the margin and at its tip
TEXTURE_GRAIN_MM = 1.8
TEXTURE_HU = {"ground_glass": 250.0, "solid": 250.0}  # internal texture at heterogeneity 1


@dataclass(frozen=True)
class NoduleShape:
    """Geometry and densities of one nodule; lengths in mm, patient (x, y, z) order."""

    centre_mm: np.ndarray  # (3,)
    radius_mm: float
    core_ratio: float
    rotation: np.ndarray  # (3, 3) orthonormal
    stretch: np.ndarray  # (3,) axis scales, product 1
    lobe_directions: np.ndarray  # (J, 3) unit vectors
    lobe_amplitudes: np.ndarray  # (J,) fractions of R
    spicule_directions: np.ndarray  # (n, 3)
    spicule_lengths_mm: np.ndarray  # (n,)
    ground_glass_hu: float
    solid_hu: float
    heterogeneity: float


def draw_nodule_shape(
    rng: np.random.Generator, traits: dict, centre_mm: np.ndarray, radius_mm: float
) -> NoduleShape:
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    stretch = rng.uniform(0.85, 1.15, 3)
    stretch /= np.prod(stretch) ** (1.0 / 3.0)
    lobe_directions = _unit(rng.normal(size=(N_LOBES, 3)))
    # Bumps and dents of 0.45 R at full lobulation, every one: a slice through the nodule
    # shows the waviness its lobulation sets, not a random draw of it (twin version 2).
    lobe_amplitudes = 0.45 * float(traits["lobulation"]) * rng.choice([-1.0, 1.0], N_LOBES)
    spiculation = float(traits["spiculation"])
    # Strands in 3-D: a slice through the nodule shows the ~1 in 10 that lie near it,
    # so a fully spiculated nodule shows about a dozen, as a "sunburst" margin does.
    n_spicules = round(max(0.0, spiculation - 0.1) * 150)
    spicule_lengths = 2.0 + 8.0 * spiculation * rng.uniform(0.5, 1.0, n_spicules)
    return NoduleShape(
        centre_mm=np.asarray(centre_mm, dtype=float),
        radius_mm=float(radius_mm),
        core_ratio=float(traits["solid_fraction"]),
        rotation=rotation,
        stretch=stretch,
        lobe_directions=lobe_directions,
        lobe_amplitudes=lobe_amplitudes,
        spicule_directions=_unit(rng.normal(size=(n_spicules, 3))),
        spicule_lengths_mm=spicule_lengths,
        ground_glass_hu=float(rng.uniform(-650.0, -450.0)),
        solid_hu=float(rng.uniform(15.0, 50.0)),
        heterogeneity=float(traits["heterogeneity"]),
    )


def max_extent_mm(shape: NoduleShape) -> float:
    """Radius of a sphere that holds the body and every spicule."""
    lobes = 1.0 + np.abs(shape.lobe_amplitudes).sum()
    spicules = shape.spicule_lengths_mm.max(initial=0.0)
    return shape.radius_mm * lobes * shape.stretch.max() + spicules + 2.0


def place_nodule(
    rng: np.random.Generator,
    phantom: Phantom,
    grid: Grid,
    location: str,
    radius_mm: float,
    z_target_mm: float,
) -> tuple[np.ndarray, float, str]:
    """Choose a nodule centre for the wanted location type near slice height ``z_target_mm``.

    Returns (centre xyz mm, radius mm, realised location). When the lung has no room for
    the wanted placement the radius shrinks (10 % a step); ``juxta-vascular`` falls back to
    ``free`` at each step, ``juxta-pleural`` after the last (its band, 1.5 mm to 0.75 radii
    from the pleura, is empty below a 2 mm radius). The realised values go into the ground
    truth.
    """
    # Distance to the pleura on a half-resolution grid: plenty for choosing a centre.
    step = 2
    lung_lowres = phantom.lung[:, ::step, ::step]
    dz, dy, dx = grid.spacing_mm
    pleura_mm = ndimage.distance_transform_edt(lung_lowres, sampling=(dz, dy * step, dx * step))
    z_mm, y_mm, x_mm = grid.axis_mm()
    near_z = np.abs(z_mm - z_target_mm) <= max(2.0, dz)
    wanted_radius_mm = radius_mm
    for attempt in range(24 if location == "juxta-pleural" else 12):
        if attempt == 12:  # only reached when the pleural band never had room
            location, radius_mm = "free", wanted_radius_mm
        if location == "juxta-vascular":
            centre = _juxta_vascular_centre(
                rng, phantom, pleura_mm, grid, step, radius_mm, z_target_mm
            )
            if centre is not None:
                return centre, radius_mm, location
        if location == "juxta-pleural":
            band = (pleura_mm >= max(1.5, 0.35 * radius_mm)) & (pleura_mm <= 0.75 * radius_mm)
        else:
            band = pleura_mm >= radius_mm + 3.0
        band &= near_z[:, None, None]
        candidates = np.argwhere(band)
        if len(candidates):
            k, j, i = candidates[rng.integers(len(candidates))]
            centre = np.array([x_mm[i * step], y_mm[j * step], z_mm[k]])
            realised = "juxta-pleural" if location == "juxta-pleural" else "free"
            return centre, radius_mm, realised
        radius_mm *= 0.9
    raise RuntimeError(f"no room in the lung for a {2 * radius_mm:.1f} mm nodule")


def _juxta_vascular_centre(
    rng: np.random.Generator,
    phantom: Phantom,
    pleura_mm: np.ndarray,
    grid: Grid,
    step: int,
    radius_mm: float,
    z_target_mm: float,
) -> np.ndarray | None:
    """A centre touching a 2–8 mm vessel, well inside the lung."""
    mid = 0.5 * (phantom.vessel_start_mm + phantom.vessel_end_mm)
    ok = (
        (phantom.vessel_radius_mm >= 1.0)
        & (phantom.vessel_radius_mm <= 4.0)
        & (np.abs(mid[:, 2] - z_target_mm) < 6.0)
    )
    for n in rng.permutation(np.flatnonzero(ok))[:60]:
        start, end = phantom.vessel_start_mm[n], phantom.vessel_end_mm[n]
        axis = _unit(end - start)
        side = _unit(np.cross(axis, rng.normal(size=3)))
        centre = (
            start
            + rng.uniform(0.2, 0.8) * (end - start)
            + side * (radius_mm + 0.5 * phantom.vessel_radius_mm[n])
        )
        k, j, i = np.round(grid.to_index(centre)).astype(int)
        k, j, i = k, j // step, i // step
        if not (
            0 <= k < pleura_mm.shape[0]
            and 0 <= j < pleura_mm.shape[1]
            and 0 <= i < pleura_mm.shape[2]
        ):
            continue
        if pleura_mm[k, j, i] >= radius_mm + 2.0:
            return centre
    return None


def render_nodule(
    rng: np.random.Generator, hu: np.ndarray, lung: np.ndarray, grid: Grid, shape: NoduleShape
) -> np.ndarray:
    """Blend the nodule into ``hu`` in place; return its mask (bool, same shape as ``hu``).

    The mask is the body (core and ground-glass halo, not the spicules) at occupancy
    >= 0.5, restricted to the lung, as a reader would outline it.
    """
    box, (pz, py, px) = _box_mm(grid, shape)
    offset = np.stack(np.broadcast_arrays(px, py, pz), axis=-1)  # (z, y, x, 3) mm
    local = offset @ shape.rotation / shape.stretch
    rho = np.linalg.norm(local, axis=-1) + 1e-6
    unit = local / rho[..., None]
    edge_mm = 0.5 * (grid.spacing_mm[1] + grid.spacing_mm[0])
    surface = _surface_where_it_counts(shape, unit, rho, edge_mm)
    body = np.clip(0.5 - (rho - surface) / edge_mm, 0.0, 1.0)
    core = np.clip(0.5 - (rho - shape.core_ratio * surface) / edge_mm, 0.0, 1.0)
    if shape.core_ratio <= 0.0:
        core[:] = 0.0
    spicules = _spicule_occupancy(offset, shape, surface_scale=shape.radius_mm, edge_mm=edge_mm)

    region = hu[box]
    field = _texture(rng, region.shape, grid.spacing_mm)
    texture = field * shape.heterogeneity
    # Ground glass raises lung density but leaves denser tissue (vessels, wall) as it was,
    # so vessels stay visible through the halo.
    lift = np.clip((-200.0 - region) / (-200.0 - HU_LUNG), 0.0, 1.0)
    ground_glass = region + lift * (
        shape.ground_glass_hu - HU_LUNG + TEXTURE_HU["ground_glass"] * texture
    )
    blended = region + body * (ground_glass - region)
    solid = shape.solid_hu + TEXTURE_HU["solid"] * texture
    blended += core * (solid - blended)
    # Pseudo-cavitation: air lucencies where the texture peaks, more of them the more
    # heterogeneous the nodule (none below 0.2), in the solid core and the ground glass.
    lucent = (field > 2.6 - 2.0 * shape.heterogeneity) & (shape.heterogeneity > 0.2)
    blended = np.where(lucent & (body >= 0.5), -850.0, blended)
    blended += spicules * np.clip(shape.solid_hu - blended, 0.0, None)
    hu[box] = blended.astype(hu.dtype)
    mask = np.zeros(hu.shape, dtype=bool)
    mask[box] = (body >= 0.5) & lung[box]
    return mask


def surface_radius_mm(shape: NoduleShape, unit: np.ndarray) -> np.ndarray:
    """The body's radius along unit directions (..., 3) of its own (unstretched) frame."""
    bumps = np.exp((unit @ shape.lobe_directions.T - 1.0) / LOBE_WIDTH) @ shape.lobe_amplitudes
    return shape.radius_mm * np.clip(1.0 + bumps, 0.3, None)


def _surface_where_it_counts(
    shape: NoduleShape, unit: np.ndarray, rho: np.ndarray, edge_mm: float
) -> np.ndarray:
    """``surface_radius_mm`` at the voxels whose body or core occupancy it decides, 0
    elsewhere. One edge beyond the largest radius the lobes allow (times the core's ratio,
    were it above 1) both occupancies are exactly 0 whatever the surface, so they are
    unchanged (the lobe sum over fewer voxels can differ by an ulp, through BLAS, but only
    far outside the margin, where it does not count); the nodule's box is sized for its
    spicules, and evaluating 24 lobes at every voxel of it took about a third of a twin
    subject's rendering time."""
    largest = shape.radius_mm * (1.0 + np.clip(shape.lobe_amplitudes, 0.0, None).sum())
    near = rho < max(1.0, shape.core_ratio) * largest + edge_mm
    surface = np.zeros(rho.shape)
    surface[near] = surface_radius_mm(shape, unit[near])
    return surface


def _box_mm(grid: Grid, shape: NoduleShape) -> tuple[tuple[slice, ...], tuple[np.ndarray, ...]]:
    """Index box around the nodule and per-axis offsets (mm) from its centre, broadcastable."""
    extent = max_extent_mm(shape)
    lo = np.floor(grid.to_index(shape.centre_mm - extent)).astype(int)
    hi = np.ceil(grid.to_index(shape.centre_mm + extent)).astype(int) + 1
    lo = np.clip(lo, 0, grid.shape)
    hi = np.clip(hi, 0, grid.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    z_mm, y_mm, x_mm = grid.axis_mm()
    cx, cy, cz = shape.centre_mm
    return box, (
        (z_mm[box[0]] - cz)[:, None, None],
        (y_mm[box[1]] - cy)[None, :, None],
        (x_mm[box[2]] - cx)[None, None, :],
    )


def _spicule_occupancy(
    offset: np.ndarray, shape: NoduleShape, surface_scale: float, edge_mm: float
) -> np.ndarray:
    """Occupancy of the tapering strands. Each strand is evaluated only in the index box
    around its segment (outside it the occupancy is exactly 0), which keeps 90 strands
    cheap."""
    occupancy = np.zeros(offset.shape[:-1])
    axes = (offset[:, 0, 0, 2], offset[0, :, 0, 1], offset[0, 0, :, 0])  # z, y, x in mm
    thick, tip = SPICULE_RADIUS_MM
    margin = thick + edge_mm
    for direction, length in zip(shape.spicule_directions, shape.spicule_lengths_mm, strict=True):
        start = direction * 0.8 * surface_scale
        seg = direction * (0.2 * surface_scale + length)
        ends = np.stack([start, start + seg])  # (2, xyz)
        box = []
        for axis_mm, k in zip(axes, (2, 1, 0), strict=True):
            lo, hi = ends[:, k].min() - margin, ends[:, k].max() + margin
            inside = np.flatnonzero((axis_mm >= lo) & (axis_mm <= hi))
            box.append(slice(inside[0], inside[-1] + 1) if inside.size else slice(0, 0))
        part = offset[tuple(box)]
        if part.size == 0:
            continue
        along = np.clip(((part - start) @ seg) / (seg @ seg), 0.0, 1.0)
        dist = np.linalg.norm(part - start - along[..., None] * seg, axis=-1)
        radius = thick - (thick - tip) * along  # tapering strand, mm
        region = occupancy[tuple(box)]
        np.maximum(region, np.clip(0.5 + (radius - dist) / edge_mm, 0.0, 1.0), out=region)
    return occupancy


def _texture(rng: np.random.Generator, shape: tuple[int, ...], spacing_mm: tuple) -> np.ndarray:
    """Unit-variance smooth random field with a grain of about 1.8 mm (coarser than any
    kernel's noise grain, as necrosis and air bronchograms are)."""
    sigma = [max(0.5, TEXTURE_GRAIN_MM / s) for s in spacing_mm]
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return (field / (field.std() + 1e-9)).astype(np.float32)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / (np.linalg.norm(vectors, axis=-1, keepdims=True) + 1e-12)
