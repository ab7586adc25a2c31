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


SNAPSHOT_KEYS = ("step", "generator_ema", "cache_fingerprint")


def _save(path: Path, format_tag: str, state: dict[str, Any]) -> None:
    """``state`` under its format tag, written atomically (a reader never sees half)."""
    buffer = io.BytesIO()
    torch.save({"format": format_tag, **state}, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def _load(path: Path, format_tag: str, required: tuple[str, ...], what: str) -> dict[str, Any]:
    """Load with ``weights_only=True``: tensors and plain containers only, no code.

    Raises:
        CheckpointError: missing, not a torch file, holding objects other than tensors and
            plain values (a tampered or foreign pickle), not of ``format_tag``, or lacking
            a ``required`` key; the message names ``path`` and ``what`` it should be.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no {what} there")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch raises this for a pickle naming code ("Unsupported global: ...",
        # "unsupported GLOBAL posix.system ...") and for anything else its safe unpickler
        # cannot read (bytes that are no pickle, opcodes it does not take: "Unsupported
        # operand ..."); only the first is known to name code, the rest keep torch's reason
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        named = [line for line in lines if "global" in line.lower()]
        if named:
            raise CheckpointError(
                f"{path}: refused, it holds more than tensors and plain values ({named[0]})"
            ) from None
        reason = next((line for line in lines if "unsupported" in line.lower()), None)
        raise CheckpointError(
            f"{path}: not a readable torch {what} ({reason or _first_line(error)})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{path}: not a readable torch {what} ({_first_line(error)})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != format_tag:
        raise CheckpointError(f"{path}: not an rgsynth {what} (format {format_tag})")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"{path}: {what} lacks {', '.join(missing)}")
    return state


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    _save(path, CHECKPOINT_FORMAT, state)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A training checkpoint (see :func:`_load` for what is refused).

    Raises:
        CheckpointError: missing, unreadable, foreign or incomplete.
    """
    return _load(path, CHECKPOINT_FORMAT, REQUIRED_KEYS, "checkpoint")


def save_map_snapshot(
    path: Path, step: int, generator_ema: dict[str, Any], fingerprint: str
) -> None:
    """The EMA generator's weights at ``step``, for the perturbation map (atomic)."""
    state = {"step": step, "generator_ema": generator_ema, "cache_fingerprint": fingerprint}
    _save(path, MAP_SNAPSHOT_FORMAT, state)


def load_map_snapshot(path: Path) -> dict[str, Any]:
    """A map snapshot, loaded and checked as :func:`load_checkpoint` loads.

    Raises:
        CheckpointError: missing, unreadable, foreign or incomplete.
    """
    return _load(path, MAP_SNAPSHOT_FORMAT, SNAPSHOT_KEYS, "map snapshot")
