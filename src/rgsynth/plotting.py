"""Matplotlib without a display, and figures written atomically as PNG files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rgsynth.fsutil import atomic_write_bytes


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (imported here, lazily: it is slow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: Path, dpi: int) -> Path:
    """Render ``fig`` to ``path`` atomically, then close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(fig)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)
