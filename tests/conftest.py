"""Shared fixtures: one tiny twin cohort per test session, written through the real CLI path."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset

from rgsynth.config import ModelConfig, PrepareConfig, TrainConfig, TwinConfig, twin_preset
from rgsynth.prepare.run import find_inputs, prepare_cache
from rgsynth.twin.anatomy import Grid
from rgsynth.twin.cohort import generate_cohort
from rgsynth.twin.dicom_write import StudyInfo, ct_datasets, seg_dataset, write_ct_series
from rgsynth.twin.scanner import Acquisition

TINY_MODEL = ModelConfig(base_channels=8, max_channels=32, gene_hidden=16)
TINY_TRAIN = TrainConfig(
    model=TINY_MODEL,
    batch_size=4,
    log_every=1,
    sample_every=100,
    checkpoint_every=100,
    n_samples=3,
)

TINY_SEED = 3


def train_two_processes(cache: Path, run: Path, *options: str) -> subprocess.CompletedProcess:
    """``rgsynth train`` at the tiny widths in two CPU processes (torch.distributed.run,
    one thread each): the DDP path, as a user starts it."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "rgsynth.cli", "train", str(cache), str(run), "--batch-size", "4",
        "--base-channels", "8", "--max-channels", "32", "--gene-hidden", "16",
        "--device", "cpu", *options,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def chain_commands(run: Path, truth: Path, synthesis: Path) -> list[list[str]]:
    """The CLI stages after training, at test sizes: map, evaluate, synthesize (into
    ``synthesis``), report. A recipe's chain test runs them on its run."""
    return [
        ["map", str(run), "--clusters", "2", "--metagene-min-genes", "2", "--top-genes", "1",
         "--replicates", "3", "--backgrounds", "3", "--gene-sets", str(truth)],
        ["evaluate", str(run), "--truth", str(truth), "--per-donor", "2", "--resamples", "20"],
        ["synthesize", str(run), str(synthesis), "--split", "train", "--backgrounds", "1"],
        ["report", str(run)],
    ]  # fmt: skip


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
def collection_cohort(tmp_path_factory: pytest.TempPathFactory, tiny_config: TwinConfig) -> Path:
    """``tiny_cohort``'s twin written with the real download's quirks (same images)."""
    out = tmp_path_factory.mktemp("collection") / "cohort"
    generate_cohort(out, dataclasses.replace(tiny_config, quirks="collection"), workers=2)
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


@pytest.fixture(scope="session")
def train_cache(small_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32² cache of ``small_cohort``; every subject in the training split."""
    out = tmp_path_factory.mktemp("train") / "cache"
    config = PrepareConfig(size=32, background_centres=2, background_slices=5, val_fraction=0.0)
    prepare_cache(find_inputs(small_cohort), out, config, workers=2, echo=lambda _: None)
    return out


@pytest.fixture(scope="session")
def trained_run(train_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of the tiny model on ``train_cache``, two steps: weights, not quality."""
    from rgsynth.train.loop import Trainer

    run = tmp_path_factory.mktemp("run") / "run"
    Trainer(train_cache, run, TINY_TRAIN).run(max_steps=2, max_minutes=None)
    return run


@pytest.fixture(scope="session")
def trained_mcgan_run(train_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MC-GAN baseline on ``train_cache``, two steps (with MC-GAN's own loss weights:
    the config leaves them to the model)."""
    import dataclasses

    from rgsynth.train.loop import Trainer

    run = tmp_path_factory.mktemp("run") / "mcgan"
    model = dataclasses.replace(TINY_MODEL, architecture="mcgan")
    Trainer(train_cache, run, dataclasses.replace(TINY_TRAIN, model=model)).run(2, None)
    return run


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    """A private copy of ``trained_run`` that a test may write maps and scores into."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


@pytest.fixture
def mcgan_run_copy(trained_mcgan_run: Path, tmp_path: Path) -> Path:
    """A private copy of ``trained_mcgan_run``."""
    return Path(shutil.copytree(trained_mcgan_run, tmp_path / "mcgan"))


@pytest.fixture(scope="session")
def dicom_errors() -> Callable[[Path], list[str]]:
    """An independent DICOM validator (dciodvfy): the error lines it reports for a file,
    after checking it recognised the object (CT image or SEG)."""
    validator = shutil.which("dciodvfy")
    if validator is None and os.environ.get("CI"):
        pytest.fail("dciodvfy (Debian's dicom3tools) must be installed in CI")
    if validator is None:
        pytest.skip("dciodvfy not installed (apt-get install dicom3tools)")

    def errors(path: Path) -> list[str]:
        result = subprocess.run([validator, str(path)], capture_output=True, text=True)
        report = result.stdout + result.stderr
        assert ("CTImage" in report) or ("Segmentation" in report), report
        return [line for line in report.splitlines() if line.startswith("Error")]

    return errors


# The asymmetric CT + SEG case the reader tests write: slice-order flips are the classic
# SEG bug, so the mask is asymmetric along z and in-plane.
READER_STUDY = StudyInfo("R01-999", 0, dt.date(1995, 3, 1), "CHEST", "F", 70)


@pytest.fixture
def acquisition() -> Callable[[bool], Acquisition]:
    def make(descending: bool) -> Acquisition:
        return Acquisition(
            pixel_spacing_mm=0.7,
            slice_thickness_mm=2.0,
            kernel="sharp",
            kernel_name="LUNG",
            manufacturer="GE MEDICAL SYSTEMS",
            model="LightSpeed VCT",
            noise_sd_hu=50.0,
            kvp=120.0,
            tube_current_ma=200,
            contrast=False,
            descending_instances=descending,
        )

    return make


@pytest.fixture
def asymmetric_case() -> tuple[np.ndarray, np.ndarray, Grid]:
    """A 9-slice CT with an L-shaped mask present on slices 2-4 only, growing with z."""
    grid = Grid((9, 32, 40), (2.0, 0.7, 0.7), (-14.0, -11.0, 100.0))
    hu = np.full(grid.shape, -800, dtype=np.int16)
    hu += np.arange(9, dtype=np.int16)[:, None, None] * 10  # each slice distinguishable
    mask = np.zeros(grid.shape, dtype=bool)
    mask[2, 5:8, 6:9] = True
    mask[3, 5:15, 6:9] = True
    mask[4, 5:15, 6:20] = True
    hu[mask] = 40
    return hu, mask, grid


@pytest.fixture
def write_asymmetric_case(asymmetric_case, acquisition) -> Callable:
    """Write the L-shaped case as a CT series and a SEG; returns (hu, mask, grid, SEG)."""

    def write(
        ct_folder: Path, seg_path: Path, descending: bool, flavour: str
    ) -> tuple[np.ndarray, np.ndarray, Grid, Dataset]:
        hu, mask, grid = asymmetric_case
        datasets = ct_datasets(hu, grid, acquisition(descending), READER_STUDY, series_number=3)
        write_ct_series(datasets, ct_folder)
        seg = seg_dataset(datasets, mask, flavour, READER_STUDY)
        seg_path.parent.mkdir(parents=True, exist_ok=True)
        seg.save_as(seg_path)
        return hu, mask, grid, seg

    return write
