"""Held-out donors (``synth-cohort --holdout N``): the same biology, new subjects, and the
rest of the cohort exactly as without them; ``prepare`` keeps them out of both splits."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rgsynth.config import PrepareConfig
from rgsynth.layout import HOLDOUT_FILENAME, HOLDOUT_SPLIT
from rgsynth.prepare.run import find_inputs, prepare_cache
from rgsynth.twin.cohort import generate_cohort, holdout_ids
from rgsynth.twin.tables import CLINICAL_FILENAME, RNASEQ_FILENAME

N_HELD = 3


@pytest.fixture(scope="module")
def held_cohort(tmp_path_factory: pytest.TempPathFactory, tiny_config) -> Path:
    out = tmp_path_factory.mktemp("held") / "cohort"
    generate_cohort(out, dataclasses.replace(tiny_config, n_holdout=N_HELD), workers=2)
    return out


def _dicom_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.dcm"))
    }


def test_holdout_donors_leave_the_other_subjects_as_they_were(
    held_cohort: Path, tiny_cohort: Path, tiny_truth: dict
) -> None:
    clean, held = _dicom_digests(tiny_cohort), _dicom_digests(held_cohort)
    assert {k: held[k] for k in clean} == clean
    new_subjects = {Path(k).parts[1] for k in set(held) - set(clean)}
    assert new_subjects == set(holdout_ids(N_HELD))

    table = pd.read_csv(held_cohort / RNASEQ_FILENAME, sep="\t", index_col=0)
    original = pd.read_csv(tiny_cohort / RNASEQ_FILENAME, sep="\t", index_col=0)
    pd.testing.assert_frame_equal(table[original.columns], original)
    assert table[holdout_ids(N_HELD)].notna().all().all()  # complete genes stay complete
    clinical = pd.read_csv(held_cohort / CLINICAL_FILENAME)
    original_clinical = pd.read_csv(tiny_cohort / CLINICAL_FILENAME)
    pd.testing.assert_frame_equal(clinical.iloc[: len(original_clinical)], original_clinical)

    truth = json.loads((held_cohort / "ground_truth.json").read_text())
    assert truth["effects"] == tiny_truth["effects"] and truth["genes"] == tiny_truth["genes"]
    flagged = [s["subject_id"] for s in truth["subjects"] if s.get("holdout")]
    assert flagged == holdout_ids(N_HELD)
    for subject in truth["subjects"][-N_HELD:]:
        assert subject["has_rnaseq"] and subject["has_seg"]
    listed = (held_cohort / HOLDOUT_FILENAME).read_text().split()
    assert listed == ["subject_id", *holdout_ids(N_HELD)]


def test_prepare_keeps_holdout_donors_out_of_training(
    held_cohort: Path, tiny_cohort: Path, tmp_path: Path
) -> None:
    config = PrepareConfig(background_centres=1, background_slices=2)
    held = prepare_cache(find_inputs(held_cohort), tmp_path / "held", config, workers=2)
    clean = prepare_cache(find_inputs(tiny_cohort), tmp_path / "clean", config, workers=2)
    assert held["split"][HOLDOUT_SPLIT] == holdout_ids(N_HELD)
    assert (held["split"]["train"], held["split"]["val"]) == (
        clean["split"]["train"],
        clean["split"]["val"],
    )
    splits = {s["subject_id"]: s["split"] for s in held["subjects"]}
    assert [splits[s] for s in holdout_ids(N_HELD)] == [HOLDOUT_SPLIT] * N_HELD
    # the genes are normalised on the same training subjects: same statistics
    with (
        np.load(tmp_path / "held" / "genes.npz") as a,
        np.load(tmp_path / "clean" / "genes.npz") as b,
    ):
        np.testing.assert_array_equal(a["mean"], b["mean"])
        np.testing.assert_array_equal(a["sd"], b["sd"])
        assert set(holdout_ids(N_HELD)) <= set(a["subject_ids"].tolist())

    from rgsynth.data import load_split

    assert not set(holdout_ids(N_HELD)) & set(load_split(tmp_path / "held", "train").subject_ids)

    from rgsynth.analysis.cohort import load_cohort

    cohort = load_cohort(tmp_path / "held")
    assert cohort.scoring_split() == HOLDOUT_SPLIT  # evaluate and the maps score on them
    assert load_cohort(tmp_path / "clean").scoring_split() == "all"  # 1 val donor: too few
