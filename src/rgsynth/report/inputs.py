"""What a report reads: the files `train`, `map` and `evaluate` wrote into a run folder.

Nothing else is opened (not the cache, not the cohort, not a checkpoint), so a run
folder copied to another machine still makes its report. The comparison run's own
training plots are shown when its folder is still where ``evaluate`` found it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rgsynth.errors import ReportInputError
from rgsynth.layout import (
    EMBEDDING_CSV,
    EVALUATION_FILENAME,
    EXAMPLES_CSV,
    EXAMPLES_NPZ,
    MAP_PAIRS_CSV,
    MAPS_DIRNAME,
    MAPS_SUMMARY_FILENAME,
    SCORES_FILENAME,
    TRUTH_SUBJECTS_CSV,
)
from rgsynth.metrics.records import ScoreTable, read_scores


@dataclass
class RunFiles:
    """Attributes:
    run_dir: the run folder.
    evaluation: evaluation.json; maps: maps/maps.json.
    scores: evaluation_scores.jsonl, every score record (evaluate writes
        evaluation.json and evaluation_metrics.csv from the same records).
    examples: the example grid's arrays; example_table: what each column is.
    map_pairs: every map's (program, trait) effect beside the truth (None without one).
    truth_subjects: the twin's subtypes and traits (None without a truth).
    embedding: maps/embedding.csv (t-SNE coordinates and clusters of each code).
    """

    run_dir: Path
    evaluation: dict[str, Any]
    maps: dict[str, Any]
    scores: ScoreTable
    examples: dict[str, np.ndarray]
    example_table: pd.DataFrame
    map_pairs: pd.DataFrame | None
    truth_subjects: pd.DataFrame | None
    embedding: pd.DataFrame

    def path(self, *parts: str) -> Path:
        return self.run_dir.joinpath(*parts)

    def table(self, *parts: str) -> pd.DataFrame | None:
        """A CSV of the run folder, or None if it is not there."""
        path = self.path(*parts)
        return pd.read_csv(path) if path.is_file() else None

    def compared_run(self) -> Path | None:
        """The comparison (MC-GAN) run's folder, if evaluate had one and it still exists."""
        against = self.evaluation.get("against")
        return Path(against) if against and Path(against).is_dir() else None

    def compared_model(self) -> str:
        """The compared run's architecture: the model evaluate scored after the run's own
        (the reference generator, scored last, has no run)."""
        trained = [
            m for m, facts in self.evaluation["models"].items() if "checkpoint_step" in facts
        ]
        return trained[-1]


def input_digest(run_dir: Path) -> str:
    """A hash of the run files that change when map or evaluate run again: the demo
    rebuilds the report only when it moves (read without loading the run)."""
    digest = hashlib.sha256()
    for name in (EVALUATION_FILENAME, f"{MAPS_DIRNAME}/maps.json", EXAMPLES_CSV):
        digest.update((Path(run_dir) / name).read_bytes())
    return digest.hexdigest()[:16]


def read_run(run_dir: Path) -> RunFiles:
    """Read a run folder for the report.

    Raises:
        ReportInputError: a file is missing or not what its writer writes.
    """
    run_dir = Path(run_dir)
    evaluation = _json(run_dir / EVALUATION_FILENAME, "rgsynth-evaluation/1", f"evaluate {run_dir}")
    maps = _json(run_dir / MAPS_DIRNAME / MAPS_SUMMARY_FILENAME, "rgsynth-maps/1", f"map {run_dir}")
    for name in (EXAMPLES_NPZ, EXAMPLES_CSV, SCORES_FILENAME):
        if not (run_dir / name).is_file():
            raise ReportInputError(
                f"{run_dir / name}: missing; run `rgsynth evaluate {run_dir}` again "
                "(this version writes it)"
            )
    try:
        with np.load(run_dir / EXAMPLES_NPZ) as arrays:
            examples = {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError, EOFError) as error:
        raise ReportInputError(
            f"{run_dir / EXAMPLES_NPZ}: unreadable ({error}); run `rgsynth evaluate` again"
        ) from None
    map_pairs = run_dir / MAP_PAIRS_CSV
    truth_subjects = run_dir / TRUTH_SUBJECTS_CSV
    return RunFiles(
        run_dir=run_dir,
        evaluation=evaluation,
        maps=maps,
        scores=_scores(run_dir / SCORES_FILENAME),
        examples=examples,
        example_table=pd.read_csv(run_dir / EXAMPLES_CSV),
        map_pairs=pd.read_csv(map_pairs) if map_pairs.is_file() else None,
        truth_subjects=(
            pd.read_csv(truth_subjects, index_col="subject_id")
            if truth_subjects.is_file()
            else None
        ),
        embedding=pd.read_csv(run_dir / MAPS_DIRNAME / EMBEDDING_CSV),
    )


def _scores(path: Path) -> ScoreTable:
    try:
        return ScoreTable(read_scores(path))
    except ValueError as error:
        raise ReportInputError(f"{error}; run `rgsynth evaluate` again") from None


def _json(path: Path, expected_format: str, command: str) -> dict[str, Any]:
    if not path.is_file():
        raise ReportInputError(f"{path}: missing; run `rgsynth {command}` first")
    try:
        content = json.loads(path.read_text())
    except ValueError as error:
        raise ReportInputError(f"{path}: not valid JSON ({error})") from None
    if content.get("format") != expected_format:
        raise ReportInputError(f"{path}: not an {expected_format} file")
    return content
