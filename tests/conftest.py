"""Shared fixtures: one tiny twin cohort per test session, written through the real CLI path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rgsynth.cohort.twin import generate_cohort
from rgsynth.config import TwinConfig, twin_preset

TINY_SEED = 3


@pytest.fixture(scope="session")
def tiny_config() -> TwinConfig:
    # Eight subjects: both SEG flavours, subjects without SEG and without genes.
    return twin_preset("tiny", seed=TINY_SEED, n_subjects=8)


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory, tiny_config: TwinConfig) -> Path:
    out = tmp_path_factory.mktemp("twin") / "cohort"
    generate_cohort(out, tiny_config, workers=2)
    return out


@pytest.fixture(scope="session")
def tiny_truth(tiny_cohort: Path) -> dict:
    return json.loads((tiny_cohort / "ground_truth.json").read_text())
