"""Training statistics: ``stats.jsonl`` (one JSON object per logged step, the file the
report is built from) and the same scalars in TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rgsynth.layout import LOSSES_FILENAME, STATS_FILENAME, TENSORBOARD_DIRNAME
from rgsynth.plotting import pyplot, save_png


class StatsWriter:
    """Appends to RUN/stats.jsonl and RUN/tensorboard. On resume, lines past the
    checkpoint's step (written after the last checkpoint, then lost) are dropped first."""

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = Path(run_dir) / STATS_FILENAME
        if resume_step is not None and self.path.exists():
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= resume_step
            ]
            self.path.write_text("".join(line + "\n" for line in kept))
        self.handle = open(self.path, "a")  # closed in close()
        self.board = SummaryWriter(str(Path(run_dir) / TENSORBOARD_DIRNAME), purge_step=resume_step)

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
    path = Path(run_dir) / STATS_FILENAME
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


LOSS_PANELS = (
    ("discriminator", ("D/I", "D/IS", "D/ISG")),
    ("generator (adversarial)", ("G/I", "G/IS", "G/ISG")),
    ("eroded-background L1", ("G/background_l1",)),
    ("D outputs", ("D_out/i_real", "D_out/i_fake", "D_out/isg_real", "D_out/isg_wrong_genes")),
)


def save_loss_plot(run_dir: Path) -> Path | None:
    """RUN/losses.png: every loss term and a few D outputs against the step. A short run
    (the demo on a busy machine can stop after one or two logging intervals) is drawn with
    a marker at each logged step, so that its figure is there and shows how little it saw;
    None only when no step was logged."""
    plt = pyplot()
    rows = read_stats(run_dir)
    if not rows:
        return None
    steps = [row["step"] for row in rows]
    marker = "o" if len(rows) < 10 else None
    fig, axes = plt.subplots(1, len(LOSS_PANELS), figsize=(4.2 * len(LOSS_PANELS), 3.2))
    for ax, (title, keys) in zip(axes, LOSS_PANELS, strict=True):
        for key in keys:
            ax.plot(steps, [row[key] for row in rows], label=key, linewidth=1, marker=marker)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return save_png(fig, Path(run_dir) / LOSSES_FILENAME, dpi=100)


def training_summary(run_dir: Path) -> dict[str, Any]:
    """Steps logged and the compute they took (the sum of logged step times, so time
    spent checkpointing, sampling or stopped between resumes is not counted)."""
    try:
        rows = read_stats(run_dir)
    except OSError:
        return {}
    if not rows:
        return {}
    seconds, previous = 0.0, 0
    for row in rows:
        seconds += row.get("time/step_s", 0.0) * (row["step"] - previous)
        previous = row["step"]
    return {
        "logged_steps": previous,
        "train_seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / previous, 4) if previous else None,
    }
