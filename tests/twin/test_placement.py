"""Where the twin puts a nodule when the lung has little room for the wanted placement."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from rgsynth.twin.anatomy import Grid
from rgsynth.twin.nodule import place_nodule


def _box_lung() -> tuple[SimpleNamespace, Grid]:
    grid = Grid((12, 64, 64), (2.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    lung = np.zeros(grid.shape, dtype=bool)
    lung[:, 8:56, 8:56] = True
    return SimpleNamespace(lung=lung), grid


def test_a_juxta_pleural_nodule_touches_the_pleura_when_there_is_room():
    phantom, grid = _box_lung()
    centre, radius, location = place_nodule(
        np.random.default_rng(0), phantom, grid, "juxta-pleural", 5.0, 11.0
    )
    assert (location, radius) == ("juxta-pleural", 5.0)
    wall = min(centre[0] - 8, 55 - centre[0], centre[1] - 8, 55 - centre[1])
    assert wall <= 0.75 * 5.0 + 2.0  # near a lung edge (on the half-resolution grid)


def test_a_tiny_juxta_pleural_nodule_falls_back_to_a_free_one_instead_of_failing():
    # The pleural band (1.5 mm to 0.75 radii in) is empty below a 2 mm radius: seed 3's
    # cohort with 64 held-out donors stopped on one ("no room in the lung for a 1.4 mm
    # nodule") before the fallback.
    phantom, grid = _box_lung()
    _, radius, location = place_nodule(
        np.random.default_rng(0), phantom, grid, "juxta-pleural", 0.7, 11.0
    )
    assert (location, radius) == ("free", 0.7)
