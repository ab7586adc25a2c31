"""A chest CT phantom on a subject's voxel grid, in Hounsfield units (noise-free).

Coordinates are DICOM patient coordinates (LPS, mm): x to the patient's left, y posterior,
z superior. The volume is indexed ``[slice, row, column]`` with slices in ascending z, rows
along +y (anterior at the top of the image) and columns along +x (patient's right on the
image's left), i.e. ImageOrientationPatient = [1, 0, 0, 0, 1, 0].

The body is built slice by slice from elliptical layers (skin/fat, chest-wall muscle, ribs,
pleural cavity), a spine, a mediastinum (trachea, aorta, heart) and two lungs; then a
parenchymal texture and a branching vessel tree are added in 3-D. Tissue values follow
the reference table in DESIGN.md §4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

HU_AIR = -1000.0
HU_FAT = -100.0
HU_MUSCLE = 45.0
HU_LUNG = -860.0
HU_MARROW = 260.0
HU_CORTEX = 850.0
HU_CARTILAGE = 110.0
HU_CSF = 15.0
HU_TABLE = 150.0


@dataclass(frozen=True)
class Grid:
    """The voxel grid of one CT series.

    Attributes:
        shape: (slices, rows, columns).
        spacing_mm: (slice spacing = thickness, row spacing, column spacing) in mm.
        origin_mm: patient (x, y, z) of voxel [0, 0, 0]: the centre of the first pixel of
            the lowest slice.
    """

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]

    def axis_mm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Patient z of each slice, y of each row, x of each column (mm)."""
        nz, ny, nx = self.shape
        dz, dy, dx = self.spacing_mm
        x0, y0, z0 = self.origin_mm
        return (
            z0 + dz * np.arange(nz),
            y0 + dy * np.arange(ny),
            x0 + dx * np.arange(nx),
        )

    def to_index(self, point_xyz_mm: np.ndarray) -> np.ndarray:
        """Fractional (slice, row, column) index of patient points (..., 3) in mm."""
        point = np.asarray(point_xyz_mm, dtype=float)
        x0, y0, z0 = self.origin_mm
        dz, dy, dx = self.spacing_mm
        return np.stack(
            [(point[..., 2] - z0) / dz, (point[..., 1] - y0) / dy, (point[..., 0] - x0) / dx],
            axis=-1,
        )


@dataclass(frozen=True)
class BodyShape:
    """Per-subject body habitus, all lengths in mm.

    ``lung_height_mm`` is the apex-to-base height of the lungs; ``z_base_mm`` the patient z of
    the lung bases, so a slice at z sits at relative height ``t = (z - z_base) / height``.
    """

    body_half_width_mm: float
    body_half_depth_mm: float
    body_centre_y_mm: float
    fat_mm: float
    muscle_mm: float
    rib_spacing_mm: float
    rib_phase_mm: float
    lung_height_mm: float
    z_base_mm: float
    blood_hu: float
    heart_hu: float


@dataclass
class Phantom:
    """Noise-free anatomy: HU volume, lung mask and the vessel centrelines that were drawn."""

    hu: np.ndarray  # (nz, ny, nx) float32
    lung: np.ndarray  # (nz, ny, nx) bool, parenchyma + vessels inside the pleura
    vessel_start_mm: np.ndarray  # (n, 3) patient xyz
    vessel_end_mm: np.ndarray  # (n, 3)
    vessel_radius_mm: np.ndarray  # (n,)


def draw_body_shape(rng: np.random.Generator, fov_mm: float, contrast: bool) -> BodyShape:
    half_width = fov_mm * rng.uniform(0.40, 0.45)
    return BodyShape(
        body_half_width_mm=half_width,
        body_half_depth_mm=half_width * rng.uniform(0.62, 0.72),
        body_centre_y_mm=-fov_mm * rng.uniform(0.02, 0.06),
        fat_mm=rng.uniform(6.0, 22.0) * fov_mm / 350.0,
        muscle_mm=rng.uniform(7.0, 13.0) * fov_mm / 350.0,
        rib_spacing_mm=rng.uniform(24.0, 30.0),
        rib_phase_mm=rng.uniform(0.0, 30.0),
        lung_height_mm=rng.uniform(220.0, 270.0),
        z_base_mm=rng.uniform(-250.0, -150.0),
        blood_hu=rng.uniform(160.0, 230.0) if contrast else rng.uniform(35.0, 50.0),
        heart_hu=rng.uniform(130.0, 200.0) if contrast else rng.uniform(35.0, 45.0),
    )


def build_phantom(rng: np.random.Generator, grid: Grid, body: BodyShape) -> Phantom:
    """Anatomy on ``grid``; ``rng`` drives texture and vessel branching."""
    z_mm, y_mm, x_mm = grid.axis_mm()
    plane = _PlaneFields(x_mm, y_mm, body)
    hu = np.empty(grid.shape, dtype=np.float32)
    lung = np.zeros(grid.shape, dtype=bool)
    for k, z in enumerate(z_mm):
        hu[k], lung[k] = plane.axial_slice(float(z))
    _add_parenchyma_texture(rng, hu, lung, grid, body)
    starts, ends, radii = _vessel_tree(rng, body)
    _draw_vessels(hu, lung, grid, starts, ends, radii, body.blood_hu)
    return Phantom(
        hu=hu, lung=lung, vessel_start_mm=starts, vessel_end_mm=ends, vessel_radius_mm=radii
    )


def relative_height(z_mm: float, body: BodyShape) -> float:
    return (z_mm - body.z_base_mm) / body.lung_height_mm


def lung_scale(t: float) -> float:
    """Lung cross-section scale at relative height t (0 = bases, 1 = apices)."""
    return float(np.sqrt(np.clip(1.0 - ((t - 0.4) / 0.62) ** 2, 0.0, 1.0)))


def heart_scale(t: float) -> float:
    """Heart cross-section scale: absent above t = 0.55, full size below t = 0.3."""
    return float(np.clip((0.55 - t) / 0.25, 0.0, 1.0) ** 0.5)


class _PlaneFields:
    """In-plane distance fields that do not change along z, computed once per subject.

    Within a slab of a few centimetres the body outline, the spine's and great vessels'
    positions are constant; only the lungs' and heart's size, the rib phase and the
    airway level change with z, and those are cheap thresholds on these fields.
    """

    def __init__(self, x_mm: np.ndarray, y_mm: np.ndarray, body: BodyShape) -> None:
        self.body = body
        yy, xx = np.meshgrid(y_mm, x_mm, indexing="ij")
        cy = body.body_centre_y_mm
        a, b = body.body_half_width_mm, body.body_half_depth_mm
        wall_a, wall_b = a - body.fat_mm, b - body.fat_mm
        cav_a, cav_b = wall_a - body.muscle_mm, wall_b - body.muscle_mm
        self.cav_a, self.cav_b, self.cy = cav_a, cav_b, cy
        dy = yy - cy
        self.inside_body = np.hypot(xx / a, dy / b) <= 1.0
        self.fat = self.inside_body & (np.hypot(xx / wall_a, dy / wall_b) > 1.0)
        rho_cav = np.hypot(xx / cav_a, dy / cav_b)
        self.cavity = rho_cav < 1.0
        curve = cy + b + 8.0 - 12.0 * (1.0 - (xx / (1.1 * a)) ** 2).clip(0.0)
        self.table = (np.abs(yy - curve - 4.0) < 2.0) & (np.abs(xx) < 1.05 * a)
        # Ribs: outward depth from the pleura and angle around the body (0 = spine side).
        self.theta = np.abs(np.arctan2(xx, dy)) / np.pi
        self.depth_mm = (rho_cav - 1.0) * 0.5 * (cav_a + cav_b)
        self.rib_band = (
            (self.depth_mm > 2.0) & (self.depth_mm < 9.0) & (self.theta > 0.1) & (self.theta < 0.86)
        )
        self.rib_drop_mm = 70.0 * self.theta**1.4  # ribs descend toward the sternum
        self.sternum = (
            (np.abs(xx) < 14.0) & (np.abs(self.depth_mm - 7.0) < 5.0) & (self.theta > 0.9)
        )
        # Spine: the vertebral body indents the back of the cavity, its arch stays inside
        # the back muscles.
        spine_y = cy + cav_b - 22.0
        self.d_vertebra = np.hypot(xx, yy - spine_y)
        canal_y = spine_y + 26.0
        d_canal = np.hypot(xx, yy - canal_y)
        self.canal = d_canal < 8.0
        arch = (d_canal < 14.0) & (d_canal >= 8.0) & (yy > spine_y + 15.0)
        spinous = (np.abs(xx) < 4.0) & (yy > canal_y) & (yy < min(canal_y + 35.0, cy + wall_b - 4))
        self.arch = arch | spinous
        # Lungs: superellipses (flatter medially and laterally than an ellipse).
        self.lung_x_terms = [np.abs(xx - side * 0.5 * cav_a) ** 2.4 for side in (-1.0, 1.0)]
        self.lung_y_term = np.abs(dy - 0.04 * cav_b) ** 2.4
        # Mediastinum: narrow behind the sternum and before the spine, widest at the great
        # vessels; plus the paravertebral gutter and (low down) the heart.
        rel_y = np.clip(dy / cav_b, -1.0, 1.0)
        half_width = cav_a * (0.05 + 0.11 * np.exp(-(((rel_y + 0.1) / 0.4) ** 2)))
        self.mediastinal_column = (np.abs(xx) < half_width) | (self.d_vertebra < 30.0)
        self.heart_rho = np.hypot(
            (xx - 0.18 * cav_a) / (0.42 * cav_a), (yy - (cy - 0.2 * cav_b)) / (0.5 * cav_b)
        )
        self.aorta = np.hypot(xx - 24.0, yy - (spine_y - 14.0)) < 12.0
        self.great_vessels = (np.hypot(xx + 10.0, yy - (cy - 0.2 * cav_b)) < 15.0) | (
            np.hypot(xx - 18.0, yy - (cy - 0.35 * cav_b)) < 13.0
        )
        self.oesophagus = np.hypot(xx - 6.0, yy - (spine_y - 24.0)) < 7.0
        self.trachea = np.hypot(xx, yy - (spine_y - 38.0))
        self.bronchi = np.minimum(
            np.hypot(xx - 14.0, yy - (spine_y - 36.0)), np.hypot(xx + 14.0, yy - (spine_y - 36.0))
        )

    def axial_slice(self, z: float) -> tuple[np.ndarray, np.ndarray]:
        """(HU image, lung mask) of the slice at patient z (mm)."""
        body = self.body
        t = relative_height(z, body)
        hu = np.full(self.inside_body.shape, HU_AIR, dtype=np.float32)
        hu[self.inside_body] = HU_MUSCLE
        hu[self.fat] = HU_FAT
        hu[self.table] = HU_TABLE
        self._draw_ribs(hu, z)
        self._draw_spine(hu, z)
        heart_size = heart_scale(t)
        heart = self.heart_rho < heart_size
        mediastinum = (self.mediastinal_column | heart) & self.cavity
        hu[mediastinum & (self.d_vertebra > 18.0)] = HU_FAT
        if heart_size > 0:
            hu[heart] = HU_MUSCLE
            hu[self.heart_rho < 0.8 * heart_size] = body.heart_hu
        hu[self.aorta] = body.blood_hu
        if 0.45 < t < 0.72:
            hu[self.great_vessels] = body.blood_hu
        hu[self.oesophagus] = HU_MUSCLE
        airway = self.trachea if t > 0.62 else self.bronchi if t > 0.52 else None
        if airway is not None:
            inner = 9.0 if t > 0.62 else 6.0
            hu[airway < inner + 2.0] = HU_MUSCLE
            hu[airway < inner] = HU_AIR
        lung = self._lungs(t) & ~mediastinum
        hu[lung] = HU_LUNG
        return hu, lung

    def _lungs(self, t: float) -> np.ndarray:
        scale = lung_scale(t)
        if scale <= 0.05:
            return np.zeros(self.cavity.shape, dtype=bool)
        ax = (0.5 * self.cav_a * scale) ** 2.4
        by = (0.95 * self.cav_b * (0.6 + 0.4 * scale)) ** 2.4
        y_term = self.lung_y_term / by
        lungs = (self.lung_x_terms[0] / ax + y_term < 1.0) | (
            self.lung_x_terms[1] / ax + y_term < 1.0
        )
        return lungs & self.cavity

    def _draw_ribs(self, hu: np.ndarray, z: float) -> None:
        """Ribs as oblique bands just outside the pleura, descending from spine to sternum.

        In an axial slice a rib shows where the plane cuts its band, giving the familiar
        arcs; the modulo over the rib spacing draws all ribs at once.
        """
        body = self.body
        phase = np.mod(z + self.rib_drop_mm - body.rib_phase_mm, body.rib_spacing_mm)
        rib = self.rib_band & (phase < 8.0)
        edge_mm = np.minimum(
            np.minimum(self.depth_mm - 2.0, 9.0 - self.depth_mm),
            np.minimum(phase, 8.0 - phase) * 0.7,
        )
        hu[rib] = np.where(edge_mm[rib] < 1.6, HU_CORTEX, HU_MARROW)
        hu[rib & (self.theta > 0.72)] = HU_CARTILAGE
        hu[self.sternum] = HU_MARROW
        hu[self.sternum & (np.abs(self.depth_mm - 7.0) > 3.5)] = HU_CORTEX

    def _draw_spine(self, hu: np.ndarray, z: float) -> None:
        body = self.body
        disc = np.mod(z - body.rib_phase_mm, body.rib_spacing_mm) < 6.0
        vertebra = self.d_vertebra < 17.0
        hu[vertebra] = 80.0 if disc else HU_MARROW
        if not disc:
            hu[vertebra & (self.d_vertebra > 15.0)] = HU_CORTEX
        hu[self.arch] = HU_CORTEX
        hu[self.canal] = HU_CSF


def _add_parenchyma_texture(
    rng: np.random.Generator, hu: np.ndarray, lung: np.ndarray, grid: Grid, body: BodyShape
) -> None:
    """Faint alveolar texture and a dependent (posterior) density gradient inside the lungs."""
    coarse_shape = tuple(
        max(2, int(np.ceil(n * s / 3.0))) for n, s in zip(grid.shape, grid.spacing_mm, strict=True)
    )
    field = ndimage.gaussian_filter(rng.standard_normal(coarse_shape), 0.7)
    field /= field.std() + 1e-9
    factors = [n / c for n, c in zip(grid.shape, coarse_shape, strict=True)]
    texture = ndimage.zoom(field.astype(np.float32), factors, order=1)[
        : grid.shape[0], : grid.shape[1], : grid.shape[2]
    ]
    _, y_mm, _ = grid.axis_mm()
    gradient = 45.0 * np.clip((y_mm - body.body_centre_y_mm) / body.body_half_depth_mm, -1, 1)
    lung_hu = HU_LUNG + 18.0 * texture + gradient[None, :, None].astype(np.float32)
    hu[lung] = lung_hu[lung]


def _vessel_tree(
    rng: np.random.Generator, body: BodyShape
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pulmonary vessel centrelines: random binary trees from each hilum.

    Eight trunks per lung leave the hilum (radius 4.5 mm, about 9 mm calibre); calibre falls
    by about 0.78 per generation (Murray-like) to under 1 mm, and children bend away from
    the hilum so each tree fans out toward the pleura. Grown a generation at a time.
    """
    hilum_z = body.z_base_mm + 0.55 * body.lung_height_mm
    cav_a = body.body_half_width_mm - body.fat_mm - body.muscle_mm
    origins, directions = [], []
    for side in (-1.0, 1.0):
        hilum = np.array([side * 0.22 * cav_a, body.body_centre_y_mm, hilum_z])
        for _ in range(8):  # trunks spread laterally, up and down
            trunk = rng.normal(0.0, 1.0, 3) * np.array([0.6, 0.8, 1.4])
            trunk[0] = side * (abs(trunk[0]) + 0.4)
            origins.append(hilum)
            directions.append(trunk)
    origin = np.array(origins)
    root = origin.copy()
    direction = np.array(directions)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    radius = np.full(len(origin), 4.5)
    length = np.full(len(origin), 22.0)
    starts, ends, radii = [], [], []
    while len(origin):
        end = origin + direction * length[:, None]
        starts.append(origin)
        ends.append(end)
        radii.append(radius)
        keep = radius >= 0.4
        origin, direction, radius, length, root, end = (
            a[keep] for a in (origin, direction, radius, length, root, end)
        )
        outward = end - root
        outward /= np.linalg.norm(outward, axis=1, keepdims=True) + 1e-9
        n = len(origin)
        children = np.repeat(direction + 0.3 * outward, 2, axis=0) + rng.normal(
            0.0, 0.5, (2 * n, 3)
        )
        direction = children / np.linalg.norm(children, axis=1, keepdims=True)
        origin, root = np.repeat(end, 2, axis=0), np.repeat(root, 2, axis=0)
        radius = np.repeat(radius, 2) * rng.uniform(0.72, 0.84, 2 * n)
        length = np.repeat(length, 2) * rng.uniform(0.72, 0.9, 2 * n)
    return np.concatenate(starts), np.concatenate(ends), np.concatenate(radii)


def _draw_vessels(
    hu: np.ndarray,
    lung: np.ndarray,
    grid: Grid,
    starts: np.ndarray,
    ends: np.ndarray,
    radii: np.ndarray,
    blood_hu: float,
) -> None:
    """Blend vessel cylinders into the lungs with soft (partial-volume) edges."""
    occupancy = np.zeros(grid.shape, dtype=np.float32)
    z_mm, y_mm, x_mm = grid.axis_mm()
    edge_mm = 0.5 * float(np.mean(grid.spacing_mm))
    i0 = grid.to_index(np.minimum(starts, ends) - radii[:, None] - edge_mm)
    i1 = grid.to_index(np.maximum(starts, ends) + radii[:, None] + edge_mm)
    shape = np.array(grid.shape)
    lo = np.clip(np.floor(i0).astype(int), 0, shape)
    hi = np.clip(np.ceil(i1).astype(int) + 1, 0, shape)
    visible = np.all(hi > lo, axis=1)
    for n in np.flatnonzero(visible):
        (z0, y0, x0), (z1, y1, x1) = lo[n], hi[n]
        if not lung[z0:z1, y0:y1, x0:x1].any():
            continue
        dist = _segment_distance_mm(z_mm[z0:z1], y_mm[y0:y1], x_mm[x0:x1], starts[n], ends[n])
        occ = np.clip((radii[n] - dist) / edge_mm + 0.5, 0.0, 1.0).astype(np.float32)
        box = occupancy[z0:z1, y0:y1, x0:x1]
        np.maximum(box, occ, out=box)
    occupancy *= lung
    hu += occupancy * (blood_hu - hu)


def _segment_distance_mm(
    z_mm: np.ndarray, y_mm: np.ndarray, x_mm: np.ndarray, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """Distance (mm) from every voxel centre of a box to the segment start→end (xyz)."""
    seg = end - start
    length2 = float(seg @ seg) + 1e-12
    px = x_mm[None, None, :] - start[0]
    py = y_mm[None, :, None] - start[1]
    pz = z_mm[:, None, None] - start[2]
    along = np.clip((px * seg[0] + py * seg[1] + pz * seg[2]) / length2, 0.0, 1.0)
    return np.sqrt(
        (px - along * seg[0]) ** 2 + (py - along * seg[1]) ** 2 + (pz - along * seg[2]) ** 2
    )
