"""The map snapshot: the EMA generator a focus run keeps at a third of its budget, which
``rgsynth map`` reads the perturbation map over beside the final weights (issue 16's
ninth round; ``--map-weights snapshot`` or ``final`` reads one of them)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import TINY_TRAIN
from rgsynth.cli import app
from rgsynth.inference import load_run
from rgsynth.layout import MAP_SNAPSHOT_PATH
from rgsynth.train.checkpoint import CheckpointError
from rgsynth.train.loop import Trainer


def _config(architecture: str = "focus", **settings):
    model = dataclasses.replace(TINY_TRAIN.model, architecture=architecture)
    return dataclasses.replace(TINY_TRAIN, model=model, precision="fp32", **settings)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


@pytest.fixture(scope="module")
def focus_runs(train_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 6-step focus run (its snapshot at step 2), the same run told to keep none, and
    the same run stopped at step 2."""
    root = tmp_path_factory.mktemp("snapshot")
    runs = {"kept": root / "kept", "none": root / "none", "two": root / "two"}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # focus's steps are bit-reproducible on one thread only
    try:
        Trainer(train_cache, runs["kept"], _config()).run(max_steps=6, max_minutes=None)
        Trainer(train_cache, runs["none"], _config(map_snapshot=0.0)).run(6, None)
        Trainer(train_cache, runs["two"], _config(map_snapshot=0.0)).run(2, None)
    finally:
        torch.set_num_threads(threads)
    return runs


def test_a_focus_run_keeps_the_ema_generator_at_a_third_and_trains_the_same(
    focus_runs: dict[str, Path],
) -> None:
    kept, none, two = (load_run(focus_runs[k]) for k in ("kept", "none", "two"))
    assert kept.config.map_snapshot == pytest.approx(1 / 3)
    assert kept.snapshot_step == 2 and kept.step == 6
    assert _same_weights(kept.snapshot, two.generator)  # the EMA generator at step 2
    assert _same_weights(kept.generator, none.generator)  # keeping it changed nothing
    assert not _same_weights(kept.snapshot, kept.generator)
    assert none.snapshot is None and not (focus_runs["none"] / MAP_SNAPSHOT_PATH).exists()
    assert [(w, s) for w, s, _ in kept.map_generators()] == [("final", 6), ("snapshot", 2)]
    assert [(w, s) for w, s, _ in kept.map_generators("snapshot")] == [("snapshot", 2)]
    assert [(w, s) for w, s, _ in kept.map_generators("final")] == [("final", 6)]
    for weights in ("snapshot", "both", "final"):  # none kept: the final weights
        assert [(w, s) for w, s, _ in none.map_generators(weights)] == [("final", 6)]


def test_the_papers_recipe_keeps_none_and_a_resumed_run_past_the_point_keeps_none(
    train_cache: Path, tmp_path: Path
) -> None:
    paper = Trainer(train_cache, tmp_path / "xu", _config("xu"))
    assert paper.config.map_snapshot == 0.0
    paper.run(3, None)
    assert load_run(tmp_path / "xu").snapshot is None
    Trainer(train_cache, tmp_path / "late", _config(map_snapshot=0.0)).run(3, None)
    resumed = Trainer(train_cache, tmp_path / "late", _config(), resume=True)
    assert resumed.config.map_snapshot == 0.0  # the run's own settings win on resume
    on = dataclasses.replace(resumed.config, map_snapshot=0.5)
    resumed.config = on
    assert resumed._map_snapshot_due(6, None, time.perf_counter()) is None  # at 3 of 6 already


def test_a_minutes_budget_takes_the_snapshot_a_third_of_the_way_through(
    train_cache: Path, tmp_path: Path
) -> None:
    trainer = Trainer(train_cache, tmp_path / "run", _config())
    now = time.perf_counter()
    assert not trainer._map_snapshot_due(None, 1.0, now)()  # 20 s of 60 not yet gone
    assert trainer._map_snapshot_due(None, 1.0, now - 21)()
    assert trainer._map_snapshot_due(30, 1.0, now)() is False  # step 10 of 30 not reached


def test_a_resumed_minutes_budget_takes_the_snapshot_where_the_whole_budgets_third_falls(
    train_cache: Path, tmp_path: Path
) -> None:
    # The demo resumes an interrupted run with the minutes left: 1 minute done of 3, so
    # the snapshot (at 1 of 3 minutes) is due at once, not 40 s into the 2 minutes left.
    trainer = Trainer(train_cache, tmp_path / "run", _config())
    now = time.perf_counter()
    assert trainer._map_snapshot_due(None, 2.0, now, minutes_done=1.0)()
    assert not trainer._map_snapshot_due(None, 2.5, now, minutes_done=0.5)()  # 30 s to go
    assert trainer._map_snapshot_due(None, 2.5, now - 31, minutes_done=0.5)()
    assert trainer._map_snapshot_due(None, 1.0, now, minutes_done=2.0) is None  # past it


def test_a_broken_snapshot_is_a_clear_error(focus_runs: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    run = Path(shutil.copytree(focus_runs["kept"], tmp_path / "run"))
    (run / MAP_SNAPSHOT_PATH).write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match=r"map-snapshot\.pt: not a readable torch map"):
        load_run(run)


def test_the_map_is_read_over_both_and_map_weights_chooses(
    focus_runs: dict[str, Path], small_cohort: Path, tmp_path: Path
) -> None:
    import shutil

    run = Path(shutil.copytree(focus_runs["kept"], tmp_path / "run"))
    args = ["map", str(run), "--gene-sets", str(small_cohort / "ground_truth.json"),
            "--clusters", "2", "--metagene-min-genes", "2", "--top-genes", "2",
            "--replicates", "3", "--backgrounds", "4"]  # fmt: skip
    tables = {}
    for weights, said, read in (
        (None, "final weights (step 6), snapshot weights (step 2)",
         [("final", 6), ("snapshot", 2)]),
        ("snapshot", "snapshot weights (step 2)", [("snapshot", 2)]),
        ("final", "final weights (step 6)", [("final", 6)]),
    ):  # fmt: skip
        chosen = ["--map-weights", weights, "--force"] if weights else []
        result = CliRunner().invoke(app, [*args, *chosen])
        assert result.exit_code == 0, result.output
        assert f"read from the {said}\n" in result.output
        summary = json.loads((run / "maps" / "maps.json").read_text())
        assert summary["perturbation_generators"] == [{"weights": w, "step": s} for w, s in read]
        assert summary["settings"]["map_weights"] == (weights or "both")
        tables[weights] = (run / "maps" / "perturbation_programs.csv").read_text()
    assert len(set(tables.values())) == 3  # three readings, three tables


def test_map_generators_refuses_an_unknown_reading(focus_runs: dict[str, Path]) -> None:
    run = load_run(focus_runs["kept"])
    assert [w for w, _, _ in run.map_generators("final")] == ["final"]
    with pytest.raises(ValueError, match="one of both, snapshot, final, got 'last'"):
        run.map_generators("last")  # a typo must not read both


def test_a_new_run_removes_a_snapshot_left_without_a_checkpoint(
    train_cache: Path, tmp_path: Path
) -> None:
    stale = tmp_path / "run" / MAP_SNAPSHOT_PATH
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a killed run's snapshot")
    Trainer(train_cache, tmp_path / "run", _config())
    assert not stale.exists()


def test_a_resume_drops_a_snapshot_newer_than_its_checkpoint_and_keeps_an_older_one(
    focus_runs: dict[str, Path], train_cache: Path, tmp_path: Path
) -> None:
    import shutil

    from rgsynth.train.checkpoint import load_map_snapshot, save_map_snapshot

    run = tmp_path / "killed"
    shutil.copytree(focus_runs["kept"], run)  # checkpoint at step 6, snapshot at step 2
    Trainer(train_cache, run, _config(), resume=True)
    snapshot = load_map_snapshot(run / MAP_SNAPSHOT_PATH)
    assert snapshot["step"] == 2  # older than the checkpoint: the run's own, kept
    # a hard kill after a snapshot at step 7 and before a checkpoint past step 6
    save_map_snapshot(
        run / MAP_SNAPSHOT_PATH, 7, snapshot["generator_ema"], snapshot["cache_fingerprint"]
    )
    Trainer(train_cache, run, _config(), resume=True)
    assert not (run / MAP_SNAPSHOT_PATH).exists()
