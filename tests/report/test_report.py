"""The HTML report: self-contained (no broken image, nothing fetched), built from the run
folder alone, rebuilt atomically, and its numbers are the evaluation's."""

from __future__ import annotations

import base64
import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from rgsynth.cli import app
from rgsynth.metrics.records import Score, ScoreTable, read_scores
from rgsynth.report.inputs import RunFiles
from rgsynth.report.tables import CLASSIC_MAPS, verdict

runner = CliRunner()
SMALL_MAPS = ["--clusters", "2", "--metagene-min-genes", "2", "--top-genes", "1"]
SMALL_MAPS += ["--replicates", "3", "--backgrounds", "3", "--force"]


@pytest.fixture(scope="module")
def evaluated_runs(
    trained_run: Path, trained_mcgan_run: Path, small_cohort: Path, tmp_path_factory
) -> tuple[Path, Path]:
    """Private copies of both tiny runs, mapped and evaluated against the twin's truth."""
    root = tmp_path_factory.mktemp("report")
    run, mcgan = root / "run", root / "mcgan"
    shutil.copytree(trained_run, run)
    shutil.copytree(trained_mcgan_run, mcgan)
    truth = str(small_cohort / "ground_truth.json")
    for target, extra in ((mcgan, []), (run, ["--mcgan", str(mcgan)])):
        result = runner.invoke(app, ["map", str(target), *SMALL_MAPS, "--gene-sets", truth, *extra])
        assert result.exit_code == 0, result.output
    args = ["evaluate", str(run), "--against", str(mcgan), "--truth", truth]
    result = runner.invoke(app, [*args, "--per-donor", "2", "--resamples", "20"])
    assert result.exit_code == 0, result.output
    return run, mcgan


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag == "a" and values.get("href") and not values["href"].startswith("#"):
            self.links.append(values["href"])


def _parse(page: Path) -> _Page:
    parser = _Page()
    parser.feed(page.read_text())
    return parser


def test_report_is_self_contained_and_complete(evaluated_runs: tuple[Path, Path]) -> None:
    run, _ = evaluated_runs
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    folder = run / "report"
    page = _parse(folder / "index.html")
    assert len(page.images) >= 10
    for source in page.images:
        assert source.startswith("data:image/png;base64,"), source[:60]
        image = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
        image.verify()  # a broken image raises
    assert not page.tags & {"script", "link", "iframe"}  # nothing fetched, nothing run
    for href in page.links:
        assert "://" not in href and (folder / href).exists(), href
    shown = set(json.loads((folder / "report.json").read_text())["figures"])
    assert shown >= {
        "fig3",
        "fig2",
        "embedding",
        "subtypes",
        "maps",
        "perturbation",
        "conventional",
        "scores",
        "losses",
        "samples",
        "mcgan_losses",
    }
    text = (folder / "index.html").read_text()
    for heading in ("Real vs synthetic nodules", "Gene codes", "beside the truth", "Training"):
        assert heading in text
    for figure in ("fig2.png", "fig3.png", "maps_vs_truth.png", "codes_by_subtype.png"):
        assert (folder / "figures" / figure).read_bytes()[:4] == b"\x89PNG"


def test_report_numbers_are_the_evaluations(evaluated_runs: tuple[Path, Path]) -> None:
    run, _ = evaluated_runs
    assert runner.invoke(app, ["report", str(run)]).exit_code == 0
    summary = pd.read_csv(run / "report" / "summary.csv")
    scores = json.loads((run / "evaluation.json").read_text())
    frd = summary[summary["metric"].str.startswith("FRD to real")].set_index("column")
    for name, column in (("xu", "ours"), ("mcgan", "MC-GAN")):
        expected = scores["models"][name]["matched"].get("frd")
        if expected is not None:
            assert frd.loc[column, "value"] == pytest.approx(expected["value"])
    maps = summary[summary["section"] == "map"]
    headline = {
        "ours",
        "MC-GAN",
        "reference (the twin's painter)",
        "conventional",
        "conventional, true programs",
        "conventional, true programs and traits",
    }
    old_rule = {f"{m}, genes rule" for m in ("ours", "MC-GAN", "reference (the twin's painter)")}
    assert set(maps["column"]) == headline | old_rule
    pairs = pd.read_csv(run / "map_pairs.csv")
    assert set(pairs["map"]) == headline  # the figure beside the truth: headline maps
    assert {"true_effect", "null_program"} <= set(pairs.columns)


def test_report_needs_only_the_run_folder(
    evaluated_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """No checkpoint, no cache, no comparison run: the report still builds."""
    run, _ = evaluated_runs
    alone = tmp_path / "moved"
    shutil.copytree(run, alone, ignore=shutil.ignore_patterns("checkpoints", "report"))
    evaluation = json.loads((alone / "evaluation.json").read_text())
    evaluation["against"] = str(tmp_path / "gone")  # the MC-GAN run is not there any more
    (alone / "evaluation.json").write_text(json.dumps(evaluation))
    result = runner.invoke(app, ["report", str(alone), "--out", str(tmp_path / "page")])
    assert result.exit_code == 0, result.output
    shown = json.loads((tmp_path / "page" / "report.json").read_text())["figures"]
    assert "fig3" in shown and "mcgan_losses" not in shown


def test_bad_runs_are_refused_and_an_old_report_is_kept(
    evaluated_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    from rgsynth.report.build import report_is_current

    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {tmp_path / 'evaluation.json'}: missing; run `rgsynth evaluate {tmp_path}` first"
    )
    run, _ = evaluated_runs
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoints"))
    assert runner.invoke(app, ["report", str(copy)]).exit_code == 0
    assert report_is_current(copy)
    before = (copy / "report" / "index.html").read_bytes()
    (copy / "examples.npz").write_bytes(b"not an npz")
    result = runner.invoke(app, ["report", str(copy)])
    assert result.exit_code == 2 and "examples.npz: unreadable" in result.output
    assert (copy / "report" / "index.html").read_bytes() == before
    assert not list(copy.glob(".report.partial-*"))
    scores = json.loads((copy / "evaluation.json").read_text())
    (copy / "evaluation.json").write_text(json.dumps(scores | {"seconds": -1}))
    assert not report_is_current(copy)  # evaluate ran again: the demo rebuilds the page
    (copy / "evaluation_scores.jsonl").unlink()  # as a run evaluated before the records
    result = runner.invoke(app, ["report", str(copy)])
    missing = f"{copy / 'evaluation_scores.jsonl'}: missing; run `rgsynth evaluate {copy}` again"
    assert result.exit_code == 2 and result.output.strip().startswith(f"error: {missing}")


def test_report_of_a_cohort_without_truth(
    evaluated_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """A real cohort has no ground truth: the page still builds, without truth panels."""
    run, mcgan = evaluated_runs
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("report", "map_pairs.csv"))
    (copy / "truth_subjects.csv").unlink()
    args = ["evaluate", str(copy), "--against", str(mcgan), "--per-donor", "2"]
    assert runner.invoke(app, [*args, "--resamples", "20"]).exit_code == 0
    result = runner.invoke(app, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    shown = set(json.loads((copy / "report" / "report.json").read_text())["figures"])
    assert {"fig3", "fig2", "embedding", "perturbation"} <= shown
    assert not shown & {"maps", "subtypes"}
    page = (copy / "report" / "index.html").read_text()
    assert "No ground truth was given" in page
    assert 'class="verdict"' not in page and "found the map best" not in page


def _score(model: str, condition: str, value: float, low: float, high: float) -> Score:
    return Score(model, condition, "auroc", value, low, high)


def _files(*scores: Score, truth: str | None = "ground_truth.json") -> RunFiles:
    """A run's files as far as the verdict reads them: evaluation.json and the records."""
    models = {"xu": {"checkpoint_step": 10}, "mcgan": {"checkpoint_step": 10}, "reference": {}}
    evaluation = {"models": models, "truth": truth}
    table = ScoreTable(scores)
    return RunFiles(Path("run"), evaluation, {}, table, {}, None, None, None, None)  # type: ignore[arg-type]


HAND_BUILT = (
    _score("xu", "perturbation map", 0.71, 0.52, 0.88),
    _score("mcgan", "perturbation map", 0.54, 0.27, 0.79),
    _score("reference", "perturbation map", 0.99, 0.95, 1.0),
    _score("conventional", "as_discovered", 0.62, 0.41, 0.80),
    _score("conventional", "with_true_programs", 1.0, 1.0, 1.0),
    _score("conventional", "sampling_bound", 1.0, 1.0, 1.0),
)


def test_verdict_names_the_best_map_and_the_unresolved_differences() -> None:
    assert verdict(_files(*HAND_BUILT)) == (
        "Against the twin's truth, the classic pipeline (true programs as metagenes) found "
        "the map best: AUROC 1.00 [1.00, 1.00]; ours 0.71 [0.52, 0.88], MC-GAN 0.54 "
        "[0.27, 0.79], the classic pipeline (metagenes as discovered) 0.62 [0.41, 0.80], "
        "the reference generator (the twin's own painter: an upper bound) 0.99 [0.95, 1.00]. "
        "Its interval overlaps no other's: the lead is resolved. "
        "Ours and MC-GAN are not told apart: their intervals overlap."
    )


def test_the_reference_is_quoted_never_the_winner() -> None:
    text = verdict(
        _files(
            _score("xu", "perturbation map", 0.81, 0.70, 0.90),
            _score("mcgan", "perturbation map", 0.40, 0.20, 0.55),
            _score("reference", "perturbation map", 0.99, 0.95, 1.0),
            _score("conventional", "with_true_programs", 0.76, 0.62, 0.86),
        )
    )
    assert text is not None
    assert text.startswith(
        "Against the twin's truth, ours found the map best: AUROC 0.81 [0.70, 0.90];"
    )
    assert "upper bound) 0.99 [0.95, 1.00]" in text
    assert "Ours is not told apart from the classic pipeline (true programs as metagenes)" in text
    assert "MC-GAN are not told apart" not in text  # ours vs MC-GAN: resolved, said above


def test_no_truth_no_verdict() -> None:
    assert verdict(_files(*HAND_BUILT, truth=None)) is None
    assert verdict(_files()) is None  # a truth but no map scored


def test_report_leads_with_the_verdict_maps_and_sweeps(evaluated_runs: tuple[Path, Path]) -> None:
    """The headline shows which map won, then the maps beside the truth and the sweeps,
    before any table; each of those figures is on the page once."""
    run, _ = evaluated_runs
    assert runner.invoke(app, ["report", str(run)]).exit_code == 0
    text = (run / "report" / "index.html").read_text()
    headline = text[text.index('id="headline"') : text.index('id="nodules"')]
    scores = ScoreTable(read_scores(run / "evaluation_scores.jsonl"))
    maps = {
        "ours": scores.get("xu", "perturbation map", "auroc"),
        "MC-GAN": scores.get("mcgan", "perturbation map", "auroc"),
        CLASSIC_MAPS["discovered"]: scores.get("conventional", "as_discovered", "auroc"),
        CLASSIC_MAPS["true programs"]: scores.get("conventional", "with_true_programs", "auroc"),
    }
    best = max(maps, key=lambda name: maps[name].value)  # ties: the verdict's order
    start = headline.index('<p class="verdict">')
    sentence = headline[start : headline.index("</p>", start)].replace("&#39;", "'")
    lead = f"Against the twin's truth, {best} "
    assert sentence.removeprefix('<p class="verdict">').startswith(lead), sentence
    assert f"AUROC {maps[best].value:.2f} [{maps[best].ci_low:.2f}, " in sentence
    first_table = headline.index("<table")
    maps_image = 'alt="Radiogenomic maps beside the ground truth"'
    assert start < headline.index(maps_image) < first_table
    assert headline.index(maps_image) < headline.index("Realism (validation split")
    for sweep in ("The map as a picture: our program sweep", "MC-GAN&#39;s program sweep"):
        assert start < headline.index(f'alt="{sweep}"') < first_table
        assert text.count(f'alt="{sweep}"') == 1
    assert text.count(maps_image) == 1  # moved up, not shown twice
