"""Shared fixtures: one tiny twin cohort per test session, written through the real CLI path."""

from __future__ import annotations

import json
import shutil
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


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three subjects, every one with a SEG and genes: the base that bad-input tests spoil."""
    config = twin_preset("tiny", seed=11, n_subjects=3, seg_fraction=1.0, rnaseq_fraction=1.0)
    out = tmp_path_factory.mktemp("small") / "cohort"
    generate_cohort(out, config, workers=2)
    return out


@pytest.fixture
def cohort_copy(small_cohort: Path, tmp_path: Path) -> Path:
    """A private copy of ``small_cohort`` that a test may damage."""
    copy = tmp_path / "cohort"
    shutil.copytree(small_cohort, copy)
    return copy
