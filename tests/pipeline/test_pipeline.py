"""The one rule for "is this stage current?": its inputs' fingerprint and its outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from rgsynth.pipeline.stage import Pipeline, Stage


def _stage(folder: Path, facts: dict, runs: list[str], fail: bool = False) -> Stage:
    output = folder / "made.txt"

    def make() -> None:
        runs.append("ran")
        if fail:
            raise RuntimeError("stopped halfway")
        output.write_text(str(facts))

    return Stage("make", "made.txt", [output], lambda: dict(facts), make)


def test_a_stage_runs_once_then_when_its_inputs_or_outputs_change(tmp_path: Path) -> None:
    runs: list[str] = []
    facts = {"setting": 1}
    lines: list[str] = []
    pipeline = Pipeline(tmp_path / "stages", [_stage(tmp_path, facts, runs)], lines.append)
    assert pipeline.run() == ["ran"] and pipeline.run() == ["skipped"]
    assert lines[0].startswith("[1/1] made.txt") and "up to date, skipped" in lines[-1]
    facts["setting"] = 2  # another input
    assert pipeline.run() == ["ran"]
    (tmp_path / "made.txt").unlink()  # its output removed
    assert pipeline.run() == ["ran"] and len(runs) == 3


def test_an_interrupted_stage_is_not_current(tmp_path: Path) -> None:
    runs: list[str] = []
    facts = {"setting": 1}
    Pipeline(tmp_path / "stages", [_stage(tmp_path, facts, runs)], print).run()
    facts["setting"] = 2
    failing = Pipeline(tmp_path / "stages", [_stage(tmp_path, facts, runs, fail=True)], print)
    with pytest.raises(RuntimeError):
        failing.run()
    assert not (tmp_path / "stages" / "make.json").exists()  # the old record is gone too
    facts["setting"] = 1  # back to what the old outputs were made from: still rerun
    assert Pipeline(tmp_path / "stages", [_stage(tmp_path, facts, runs)], print).run() == ["ran"]
