"""Scores as flat records: the JSON-lines file, evaluation.json built from it, and a new
metric as one registered function."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rgsynth.cli import app
from rgsynth.metrics.records import (
    Estimate,
    Score,
    ScoreTable,
    json_path,
    nest,
    read_scores,
    write_scores,
)
from rgsynth.metrics.registry import register_metric, registered, unregister_metric


def test_records_round_trip_and_nest(tmp_path: Path) -> None:
    scores = [
        Score.of("xu", "matched", "frd", Estimate(12.5, 10.0, 15.0)),
        Score("xu", "matched", "empty_or_tiny_mask_rate", 0.25),
        Score.of("xu", "trait fidelity", "diameter", Estimate(0.8, 0.5, 0.9, n=9)),
        Score("conventional", "as_discovered", "auroc", float("nan")),
        Score("raw genes", "embedding", "subtype_adjusted_rand", 0.1),
    ]
    path = tmp_path / "scores.jsonl"
    write_scores(path, scores)
    again = read_scores(path)
    assert again[:3] == scores[:3] and math.isnan(again[3].value)
    tree = nest(again)
    assert tree["models"]["xu"]["matched"] == {
        "frd": {"value": 12.5, "ci_low": 10.0, "ci_high": 15.0},
        "empty_or_tiny_mask_rate": 0.25,
    }
    assert tree["models"]["xu"]["trait_fidelity"]["diameter"]["n"] == 9
    assert tree["embedding_vs_subtypes"] == {"raw genes": 0.1}
    assert ScoreTable(again).value("xu", "matched", "frd") == 12.5
    assert math.isnan(ScoreTable(again).value("xu", "zeroed genes", "frd"))
    with pytest.raises(ValueError, match="no place"):
        json_path(Score("xu", "somewhere", "x", 1.0))
    (tmp_path / "bad.jsonl").write_text('{"model": "xu"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: not a score record"):
        read_scores(tmp_path / "bad.jsonl")


def test_registry_refuses_a_second_metric_of_one_name() -> None:
    names = [m.name for m in registered("condition")]
    assert names[:3] == ["realism", "donor_auroc", "background_fidelity"]  # the run order
    with pytest.raises(ValueError, match="already registered"):
        register_metric("realism", scope="condition")(lambda *args: [])
    with pytest.raises(ValueError, match="scope must be"):
        register_metric("x", scope="everywhere")


def _mean_mask_area(context, sample, rng) -> list[Score]:
    area = sample.masks.reshape(len(sample.masks), -1).mean(axis=1)
    return [Score(context.model, sample.condition, "mean_mask_area", float(np.mean(area)))]


def test_a_new_metric_is_one_registered_function(
    trained_run: Path, small_cohort: Path, tmp_path: Path
) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)  # never write into the session's fixture
    register_metric("mean_mask_area", scope="condition")(_mean_mask_area)
    try:
        args = ["evaluate", str(run), "--per-donor", "2", "--resamples", "10"]
        result = CliRunner().invoke(app, args)
    finally:
        unregister_metric("mean_mask_area")
    assert result.exit_code == 0, result.output
    records = read_scores(run / "evaluation_scores.jsonl")
    areas = [s for s in records if s.metric == "mean_mask_area"]
    assert [s.condition for s in areas] == ["matched", "shuffled genes", "zeroed genes"]
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["models"]["xu"]["zeroed genes"]["mean_mask_area"] == areas[-1].value
    # evaluation.json is the records nested, beside the facts
    rebuilt = nest(records)
    for condition in ("matched", "shuffled genes", "zeroed genes"):
        assert _same(rebuilt["models"]["xu"][condition], evaluation["models"]["xu"][condition])
    assert evaluation["models"]["xu"]["checkpoint_step"] == 2


def _same(a, b) -> bool:
    """Equal, NaN equal to NaN (JSON round trips keep NaN)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def test_donor_closeness_counts_other_donors_and_marks_failed_syntheses() -> None:
    from rgsynth.analysis.features import FEATURES
    from rgsynth.metrics.builtin import donor_closeness

    # three donors on a line in every feature: 0, 1, 5
    real = np.repeat(np.array([[0.0], [1.0], [5.0]]), len(FEATURES), axis=1)
    owners = ["a", "b", "c"]
    synthetic = real.copy()
    synthetic[1] = 4.6  # b's synthesis lands next to c's nodule: a is farther, c nearer
    per = donor_closeness(real, synthetic, owners)
    assert per.to_dict() == {"a": 1.0, "b": 0.5, "c": 1.0}
    synthetic[2] = np.nan  # c has no usable synthesis: the metric compares b with a only
    assert donor_closeness(real, synthetic, owners).to_dict() == {"a": 1.0, "b": 1.0}
    against_all = donor_closeness(real, synthetic, owners, against_all=True)
    assert against_all.index.tolist() == ["a", "b", "c"] and math.isnan(against_all["c"])
    assert against_all["b"] == 0.5  # against every real nodule, c's is still nearer
