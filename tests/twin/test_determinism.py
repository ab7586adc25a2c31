"""Same config, same bytes; another seed, another cohort and another gene-to-trait map."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from rgsynth.config import twin_preset
from rgsynth.twin.cohort import generate_cohort


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files(tmp_path: Path, tiny_cohort: Path, tiny_config) -> None:
    again = generate_cohort(tmp_path / "again", tiny_config, workers=1)
    assert _digest(again) == _digest(tiny_cohort)


def test_collection_quirks_are_deterministic_too(
    tmp_path: Path, collection_cohort: Path, tiny_config
) -> None:
    config = dataclasses.replace(tiny_config, quirks="collection")
    again = generate_cohort(tmp_path / "again", config, workers=2)
    assert _digest(again) == _digest(collection_cohort)


def test_other_seed_gives_another_map(tmp_path: Path, tiny_truth: dict) -> None:
    other = generate_cohort(
        tmp_path / "other", twin_preset("tiny", seed=4, n_subjects=3), workers=1
    )
    truth = json.loads((other / "ground_truth.json").read_text())
    assert truth["effects"]["matrix"] != tiny_truth["effects"]["matrix"]
