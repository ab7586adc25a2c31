"""The reference generator: for a gene profile, the nodule the twin itself would paint.

It is the map's yardstick from the other side: it knows the twin's gene → trait map
exactly, so whatever the perturbation map, the readout and the scoring make of it is what
a generator that learned the twin perfectly would get. It is a reference, not a ceiling (a
generator that exaggerates effects can beat it).

A profile (z-scored log2, the cache's kept genes) becomes program activities by least
squares on the truth's loadings rescaled to z units (each gene loads on one program, so
the fit is one weighted mean per program); the activities give the noiseless expected
trait latents (``effects @ activities``) and the twin's physical traits. The nodule is
then drawn exactly as the twin draws it (:mod:`rgsynth.twin.nodule`, from its own random
stream), on the subject's native grid for a drawn acquisition, passed through the twin's
reconstruction kernel and noise, and resampled onto the cache's VOI plane at a slice
height drawn the way the cache holds them: uniform over the heights the nodule occupies.
The background patch stands for the lung around it (the same patch, extruded along z).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from rgsynth.inference import Synthesis
from rgsynth.intensity import to_unit_range, unit_to_hu
from rgsynth.io.itk_threads import one_itk_thread
from rgsynth.prepare.cache import cache_prepare_config
from rgsynth.prepare.examples import resample_box
from rgsynth.synthesize.profiles import CacheGenes
from rgsynth.twin.anatomy import Grid
from rgsynth.twin.biology import traits_from_latents
from rgsynth.twin.nodule import (
    NoduleShape,
    draw_nodule_shape,
    render_nodule,
    surface_radius_mm,
)
from rgsynth.twin.scanner import Acquisition, ct_noise, draw_acquisition, reconstruct
from rgsynth.twin.subject import nodule_stream

REFERENCE = "reference"
_NATIVE_SLICES = 9  # native slices rendered around the wanted plane


@dataclass(frozen=True)
class ReferenceNodule:
    image_hu: np.ndarray  # (S, S)
    mask: np.ndarray  # (S, S) bool
    height_mm: float
    traits: dict


class ReferenceGenerator:
    """Synthesizer-compatible (``(backgrounds, profiles, seeds) → Synthesis``) twin painter.

    Args:
        truth_path: the twin's ground_truth.json.
        cache_root: the cache whose gene space and VOI geometry the profiles and
            backgrounds come from.
    """

    name = REFERENCE

    def __init__(self, truth_path: Path, cache_root: Path) -> None:
        truth = json.loads(Path(truth_path).read_text())
        config = cache_prepare_config(cache_root)
        self.size, self.voxel_mm, self.hu_window = config.size, config.voxel_mm, config.hu_window
        genes = CacheGenes.load(cache_root)
        row = {g: n for n, g in enumerate(truth["genes"]["names"])}
        known = [row.get(g, -1) for g in genes.names]
        program = np.array([truth["genes"]["program"][n] if n >= 0 else -1 for n in known])
        loading = np.array([truth["genes"]["loading"][n] if n >= 0 else 0.0 for n in known])
        # z = (log2 - mean) / sd, so a gene's loading in z units is its log2 loading / sd
        sd = np.where(genes.normaliser.sd > 0, genes.normaliser.sd, np.inf)
        self.effects = np.array(truth["effects"]["matrix"], dtype=np.float64)  # traits × K
        n_programs = self.effects.shape[1]
        self.loadings = np.zeros((len(genes.names), n_programs))
        for k in range(n_programs):
            members = program == k
            self.loadings[members, k] = loading[members] / sd[members]
        self.twin = truth["config"]

    def activities(self, profiles: np.ndarray) -> np.ndarray:
        """(N, K) least-squares program activities of (N, G) z-scored profiles."""
        norms = (self.loadings**2).sum(axis=0)
        return np.asarray(profiles, np.float64) @ self.loadings / np.where(norms > 0, norms, 1.0)

    def traits(self, profiles: np.ndarray) -> list[dict]:
        """The twin's physical traits at the noiseless expected latents of each profile."""
        latents = self.activities(profiles) @ self.effects.T
        return [traits_from_latents(row) for row in latents]

    def __call__(
        self,
        backgrounds: np.ndarray,
        genes: np.ndarray,
        seeds: list[int],
        heights_mm: np.ndarray | None = None,
    ) -> Synthesis:
        """A :class:`rgsynth.inference.Synthesizer` call. ``heights_mm`` is not used: each
        nodule's slice height is drawn within its own extent (a real slice's height may
        miss a nodule of another size), as the cache holds them."""
        images, masks = [], []
        for background, traits, seed in zip(backgrounds, self.traits(genes), seeds, strict=True):
            nodule = self.render(unit_to_hu(background, self.hu_window), traits, seed)
            images.append(to_unit_range(nodule.image_hu, self.hu_window))
            masks.append(nodule.mask.astype(np.float32))
        image, mask = np.stack(images), np.stack(masks)
        return Synthesis(image, mask, np.zeros_like(mask))

    def render(
        self,
        background_hu: np.ndarray,
        traits: dict,
        seed: int,
        height_mm: float | None = None,
        acquisition: Acquisition | None = None,
        offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> ReferenceNodule:
        """One nodule with ``traits`` painted into a (S, S) HU background.

        ``seed`` is the nuisance: the nodule's own stream (shape and texture, as
        :func:`rgsynth.twin.subject.nodule_stream` of a twin subject's seed), and the
        acquisition and slice height drawn from it unless given. Heights and
        ``offset_mm`` (the nodule centre, x y z) are relative to the VOI centre.
        """
        rng = np.random.default_rng([int(seed), 2])
        if acquisition is None:
            acquisition = draw_acquisition(
                rng,
                tuple(self.twin["pixel_spacing_mm"]),
                tuple(self.twin["slice_thickness_mm"]),
            )
        nodule_rng = nodule_stream(int(seed))
        shape = draw_nodule_shape(
            nodule_rng, traits, np.asarray(offset_mm, float), 0.5 * float(traits["diameter_mm"])
        )
        if height_mm is None:
            low, high = _z_extent(shape)
            height_mm = float(low + rng.random() * (high - low))
        grid = self._native_grid(acquisition, height_mm)
        scene = self._extrude(background_hu, grid)
        painted = scene.copy()
        mask3d = render_nodule(nodule_rng, painted, np.ones(scene.shape, bool), grid, shape)
        # The kernel acts on the nodule alone (the background already went through one);
        # pixels the solid core took over get fresh noise of the same kernel.
        increment = reconstruct(painted - scene, acquisition)
        dense = np.clip((painted + 200.0) / 200.0, 0.0, 1.0) * mask3d
        hu = scene + increment + dense * ct_noise(rng, scene.shape, acquisition)
        plane = (0.0, 0.0, height_mm)
        image = self._resample(hu, grid, plane, default=float(background_hu.min()))
        mask = self._resample(mask3d.astype(np.float32), grid, plane, default=0.0) > 0.5
        return ReferenceNodule(image, mask, height_mm, traits)

    def _native_grid(self, acquisition: Acquisition, height_mm: float) -> Grid:
        spacing, thickness = acquisition.pixel_spacing_mm, acquisition.slice_thickness_mm
        half = 0.5 * self.size * self.voxel_mm + spacing
        n_xy = int(np.ceil(2 * half / spacing)) + 1
        z0 = height_mm - thickness * (_NATIVE_SLICES // 2)
        return Grid((_NATIVE_SLICES, n_xy, n_xy), (thickness, spacing, spacing), (-half, -half, z0))

    def _extrude(self, background_hu: np.ndarray, grid: Grid) -> np.ndarray:
        """The background patch on the native in-plane grid, the same in every slice."""
        _, y_mm, x_mm = grid.axis_mm()
        to_pixel = lambda mm: (mm + 0.5 * self.size * self.voxel_mm) / self.voxel_mm - 0.5  # noqa: E731
        rows, cols = np.meshgrid(to_pixel(y_mm), to_pixel(x_mm), indexing="ij")
        plane = ndimage.map_coordinates(
            np.asarray(background_hu, np.float64), [rows, cols], order=1, mode="nearest"
        )
        return np.repeat(plane[None].astype(np.float32), grid.shape[0], axis=0)

    def _resample(
        self, volume: np.ndarray, grid: Grid, plane_xyz: tuple, default: float
    ) -> np.ndarray:
        image = sitk.GetImageFromArray(np.asarray(volume, np.float32))
        image.SetSpacing(tuple(float(s) for s in grid.spacing_mm[::-1]))
        image.SetOrigin(tuple(float(o) for o in grid.origin_mm))
        size = (self.size, self.size, 1)
        with one_itk_thread():  # a few native slices to one 64² plane
            return resample_box(image, np.asarray(plane_xyz), size, self.voxel_mm, default)[0]


def _z_extent(shape: NoduleShape, n_directions: int = 2000) -> tuple[float, float]:
    """Lowest and highest patient z of the nodule body (relative to the VOI centre)."""
    rng = np.random.default_rng(0)
    unit = rng.normal(size=(n_directions, 3))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    radius = surface_radius_mm(shape, unit)
    offset = (radius[:, None] * unit * shape.stretch) @ shape.rotation.T
    z = offset[:, 2] + shape.centre_mm[2]
    return float(z.min()), float(z.max())
