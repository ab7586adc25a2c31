"""The nodule renderer evaluates the lobed surface only where it decides an occupancy."""

from __future__ import annotations

import numpy as np
import pytest

from rgsynth.twin import nodule
from rgsynth.twin.anatomy import HU_LUNG, Grid


@pytest.mark.parametrize(
    ("lobulation", "solid_fraction", "spiculation", "radius_mm"),
    [(1.0, 1.0, 0.9, 9.0), (0.0, 0.0, 0.0, 3.0), (0.6, 0.4, 0.5, 6.0)],
)
def test_the_nodule_renders_as_if_the_surface_were_evaluated_everywhere(
    monkeypatch, lobulation, solid_fraction, spiculation, radius_mm
):
    grid = Grid((30, 64, 64), (1.25, 0.7, 0.7), (-22.4, -22.4, -18.75))
    lung = np.ones(grid.shape, dtype=bool)
    traits = {"lobulation": lobulation, "solid_fraction": solid_fraction,
              "spiculation": spiculation, "heterogeneity": 0.5}  # fmt: skip
    shape = nodule.draw_nodule_shape(np.random.default_rng(1), traits, np.zeros(3), radius_mm)

    def render() -> tuple[np.ndarray, np.ndarray]:
        hu = np.full(grid.shape, HU_LUNG, dtype=np.float32)
        mask = nodule.render_nodule(np.random.default_rng(2), hu, lung, grid, shape)
        return hu, mask

    hu, mask = render()
    assert mask.any()
    monkeypatch.setattr(
        nodule, "_surface_where_it_counts",
        lambda shape, unit, rho, edge_mm: nodule.surface_radius_mm(shape, unit),
    )  # fmt: skip
    everywhere_hu, everywhere_mask = render()
    np.testing.assert_array_equal(hu, everywhere_hu)
    np.testing.assert_array_equal(mask, everywhere_mask)
