"""Training statistics: ``stats.jsonl`` (one JSON object per logged step, the file the
report is built from) and the same scalars in TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class StatsWriter:
    """Appends to RUN/stats.jsonl and RUN/tensorboard. On resume, lines past the
    checkpoint's step (written after the last checkpoint, then lost) are dropped first."""

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = Path(run_dir) / "stats.jsonl"
        if resume_step is not None and self.path.exists():
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= resume_step
            ]
            self.path.write_text("".join(line + "\n" for line in kept))
        self.handle = open(self.path, "a")  # closed in close()
        self.board = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=resume_step)

    def write(self, step: int, values: dict[str, Any]) -> None:
        self.handle.write(json.dumps({"step": step, **values}) + "\n")
        self.handle.flush()
        for key, value in values.items():
            if isinstance(value, (int, float)):
                self.board.add_scalar(key, value, step)

    def close(self) -> None:
        self.handle.close()
        self.board.close()


def read_stats(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "stats.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
