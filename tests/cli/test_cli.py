"""The command line: happy paths write files, bad input gives one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rgsynth.cli import app

runner = CliRunner()


def test_synth_cohort_and_view(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    tiny = ["--preset", "tiny", "--subjects", "3", "--seed", "5", "--workers", "1"]
    result = runner.invoke(app, ["synth-cohort", str(out), *tiny])
    assert result.exit_code == 0, result.output
    truth = json.loads((out / "ground_truth.json").read_text())
    assert len(truth["subjects"]) == 3 and truth["config"]["seed"] == 5
    result = runner.invoke(app, ["view", str(out), "--out", str(tmp_path / "qc.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "qc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_existing_output_is_refused_and_kept(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    out.mkdir()
    (out / "mine.txt").write_text("precious")
    result = runner.invoke(app, ["synth-cohort", str(out), "--preset", "tiny"])
    assert result.exit_code == 2
    assert "already exists" in result.output and len(result.output.strip().splitlines()) == 1
    assert (out / "mine.txt").read_text() == "precious"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--preset", "huge"], "unknown preset"),
        (["--subjects", "0"], "n_subjects must be >= 1"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["synth-cohort", str(tmp_path / "c"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "c").exists()


def test_view_of_a_non_cohort(tmp_path: Path) -> None:
    result = runner.invoke(app, ["view", str(tmp_path)])
    assert result.exit_code == 2 and "no metadata.csv" in result.output


@pytest.mark.slow
def test_demo_runs_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every stage runs once; a second run skips them all; a training interrupted before
    its stage was recorded resumes from its checkpoint instead of starting again, and the
    stages after it stay current when it ends at the same step."""
    from rgsynth.cli import demo
    from rgsynth.config import EvaluationSettings, MapSettings, PerturbationSettings

    small_maps = MapSettings(
        n_clusters=2,
        metagene_min_genes=3,
        top_genes=1,
        n_backgrounds=3,
        perturbation=PerturbationSettings(replicates=3),
    )
    monkeypatch.setattr(demo, "map_settings", lambda seed: small_maps)
    small_scores = EvaluationSettings(per_donor=2, resamples=20)
    monkeypatch.setattr(demo, "evaluation_settings", lambda seed: small_scores)
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--subjects", "8", "--workers", "2", "--steps", "2"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert [f"[{n}/10]" in first.output for n in range(1, 11)] == [True] * 10
    assert (out / "qc_montage.png").exists() and (out / "cohort" / "ground_truth.json").exists()
    manifest = json.loads((out / "cache" / "manifest.json").read_text())
    assert manifest["totals"]["nodule_slices"] > 0 and (out / "cache" / "qc_montage.png").exists()
    for run, architecture in (("run", "focus"), ("run-mcgan", "mcgan")):
        config = (out / run / "config.yaml").read_text()
        assert f"architecture: {architecture}" in config
        assert (out / run / "samples" / "latest.png").exists()
        assert (out / run / "maps" / "maps.json").exists()
        record = json.loads((out / "stages" / f"train-{architecture}.json").read_text())
        assert record["inputs"]["budget"] == {"minutes": demo.DEMO_MINUTES, "steps": 2}
    scores = json.loads((out / "run" / "evaluation.json").read_text())
    assert set(scores["models"]) == {"focus", "mcgan", "reference"}
    assert "conventional" in scores
    page = out / "run" / "report" / "index.html"
    assert page.is_file() and "data:image/png;base64," in page.read_text()

    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert second.output.count("up to date, skipped") == 10, second.output
    synthesis = out / "synthesis"
    rows = (synthesis / "manifest.csv").read_text().splitlines()[1:]
    kinds = [row.split(",")[1] for row in rows]
    assert kinds.count("dicom") == 4 and 1 <= kinds.count("cache") <= 8, kinds
    assert len(list((synthesis / "previews").glob("*.png"))) == len(rows)

    (out / "stages" / "train-mcgan.json").unlink()  # as if stopped before the end
    third = runner.invoke(app, args)
    assert third.exit_code == 0 and "resuming" in third.output, third.output
    assert third.output.count("up to date, skipped") == 9  # all but MC-GAN: same step

    fourth = runner.invoke(app, [*args[:-1], "3"])  # another budget: trained again
    assert fourth.exit_code == 0, fourth.output
    assert fourth.output.count("training from the start") == 2, fourth.output
    assert "resuming" not in fourth.output
    assert [demo.checkpoint_facts(out / run)[0] for run in ("run", "run-mcgan")] == [3, 3]


def test_train_errors_are_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(tmp_path / "cache"), str(tmp_path / "run")])
    assert result.exit_code == 2 and "give --steps N or --minutes M" in result.stderr
    result = runner.invoke(app, ["train", str(tmp_path), str(tmp_path / "run"), "--steps", "1"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {tmp_path}: not a complete rgsynth cache; run `rgsynth prepare` first"
    )
