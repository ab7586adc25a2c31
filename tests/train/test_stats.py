"""The loss figure of a short run: drawn from a single logged step, absent with none."""

from __future__ import annotations

import json
from pathlib import Path

from rgsynth.layout import STATS_FILENAME
from rgsynth.train.stats import LOSS_PANELS, save_loss_plot


def _log(run: Path, steps: list[int]) -> None:
    keys = [key for _, panel in LOSS_PANELS for key in panel]
    rows = [{"step": step, **{key: 0.1 * step for key in keys}} for step in steps]
    (run / STATS_FILENAME).write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_a_run_that_logged_one_step_still_gets_its_loss_figure(tmp_path: Path) -> None:
    """The demo on a busy machine can stop after one logging interval (20 steps): the
    report's loss figure must not vanish without a word."""
    _log(tmp_path, [20])
    path = save_loss_plot(tmp_path)
    assert path is not None and path.read_bytes()[:4] == b"\x89PNG"


def test_a_run_that_logged_nothing_has_no_loss_figure(tmp_path: Path) -> None:
    _log(tmp_path, [])
    assert save_loss_plot(tmp_path) is None
    assert not (tmp_path / "losses.png").exists()
