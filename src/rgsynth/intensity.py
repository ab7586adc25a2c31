"""CT intensities: Hounsfield units ↔ the model's [-1, 1] range, and display windows.

The cache stores every image as HU clipped to its ``hu_window`` (``PrepareConfig``,
(−1000, 500) HU by default) and mapped linearly onto [-1, 1]; generators paint in that
range. Display windows are given in HU (level, width) and converted to whatever range a
picture is drawn in, so no plot hard-codes a value that is right for one HU window only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def to_unit_range(hu: np.ndarray, hu_window: tuple[float, float]) -> np.ndarray:
    """HU clipped to ``hu_window`` and mapped linearly onto [-1, 1] (float32).

    Example:
        >>> to_unit_range(np.array([-1200.0, -1000.0, -250.0, 500.0]), (-1000.0, 500.0))
        array([-1., -1.,  0.,  1.], dtype=float32)
    """
    low, high = hu_window
    clipped = np.clip(hu, low, high)
    return (2.0 * (clipped - low) / (high - low) - 1.0).astype(np.float32)


def unit_to_hu(values: np.ndarray, hu_window: tuple[float, float]) -> np.ndarray:
    """Inverse of :func:`to_unit_range`: [-1, 1] → HU in ``hu_window`` (float32).

    Example:
        >>> unit_to_hu(np.array([-1.0, 0.0, 1.0]), (-1000.0, 500.0))
        array([-1000.,  -250.,   500.], dtype=float32)
    """
    low, high = hu_window
    return (low + (np.asarray(values, dtype=np.float32) + 1.0) * (high - low) / 2.0).astype(
        np.float32
    )


@dataclass(frozen=True)
class DisplayWindow:
    """A grey-level window in HU: ``level`` ± ``width`` / 2 spans black to white.

    Example:
        >>> LUNG_WINDOW.hu, LUNG_WINDOW.through((-1000.0, 500.0))
        ((-1350.0, 150.0), (-1000.0, 150.0))
        >>> [round(v, 3) for v in LUNG_WINDOW.in_unit_range((-1000.0, 500.0))]
        [-1.0, 0.533]
    """

    level_hu: float
    width_hu: float

    @property
    def hu(self) -> tuple[float, float]:
        """(black, white) in HU."""
        return (self.level_hu - self.width_hu / 2, self.level_hu + self.width_hu / 2)

    def through(self, hu_window: tuple[float, float]) -> tuple[float, float]:
        """The window in HU as it shows on images clipped to ``hu_window``."""
        low, high = self.hu
        return (max(low, hu_window[0]), min(high, hu_window[1]))

    def in_unit_range(self, hu_window: tuple[float, float]) -> tuple[float, float]:
        """The window in the [-1, 1] units of a cache made with ``hu_window``."""
        low, high = to_unit_range(np.array(self.hu), hu_window)
        return (float(low), float(high))

    def dicom(self) -> tuple[str, str]:
        """(WindowCenter, WindowWidth) as DICOM decimal strings."""
        return (f"{self.level_hu:g}", f"{self.width_hu:g}")


LUNG_WINDOW = DisplayWindow(level_hu=-600.0, width_hu=1500.0)  # (−1350, 150) HU
# Narrower than the lung window: ground glass (−700 … −300 HU) and solid tissue apart.
NODULE_WINDOW = DisplayWindow(level_hu=-400.0, width_hu=1200.0)  # (−1000, 200) HU
SOFT_TISSUE_WINDOW = DisplayWindow(level_hu=40.0, width_hu=400.0)  # mediastinum
