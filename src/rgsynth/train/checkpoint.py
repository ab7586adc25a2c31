"""One checkpoint dict, written atomically, read without executing anything from the file.

The dict holds G, G_ema, the discriminators, both optimisers, the step and epoch position,
RNG states, the training config and the cache fingerprint (nanoGPT's habit: the config
inside, and the config wins on resume). Modules are saved unwrapped (no DDP prefix).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from rgsynth.errors import CheckpointError
from rgsynth.fsutil import atomic_write_bytes

CHECKPOINT_FORMAT = "rgsynth-checkpoint/1"
MAP_SNAPSHOT_FORMAT = "rgsynth-map-snapshot/1"
REQUIRED_KEYS = (
    "format",
    "config",
    "cache_fingerprint",
    "step",
    "epoch",
    "batch_in_epoch",
    "generator",
    "generator_ema",
    "discriminators",
    "optimizer_g",
    "optimizer_d",
    "rng",
)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load with ``weights_only=True``: tensors and plain containers only, no code.

    Raises:
        CheckpointError: missing, not a torch file, holding objects other than tensors and
            plain values (a tampered or foreign pickle), or not an rgsynth checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: refused, it holds more than tensors and plain values ({first})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({error})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an rgsynth checkpoint (format {CHECKPOINT_FORMAT})")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return state


def save_map_snapshot(
    path: Path, step: int, generator_ema: dict[str, Any], fingerprint: str
) -> None:
    """The EMA generator's weights at ``step``, for the perturbation map (atomic)."""
    buffer = io.BytesIO()
    state = {"format": MAP_SNAPSHOT_FORMAT, "step": step, "generator_ema": generator_ema,
             "cache_fingerprint": fingerprint}  # fmt: skip
    torch.save(state, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_map_snapshot(path: Path) -> dict[str, Any]:
    """A map snapshot, loaded as :func:`load_checkpoint` loads (tensors and plain values).

    Raises:
        CheckpointError: unreadable, or not a map snapshot.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: not a readable map snapshot ({first})") from None
    if not isinstance(state, dict) or state.get("format") != MAP_SNAPSHOT_FORMAT:
        raise CheckpointError(f"{path}: not an rgsynth map snapshot ({MAP_SNAPSHOT_FORMAT})")
    missing = [k for k in ("step", "generator_ema", "cache_fingerprint") if k not in state]
    if missing:
        raise CheckpointError(f"{path}: map snapshot lacks {', '.join(missing)}")
    return state
