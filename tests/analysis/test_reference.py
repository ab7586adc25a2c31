"""The reference generator paints what the twin paints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rgsynth.analysis.reference import ReferenceGenerator
from rgsynth.layout import GROUND_TRUTH_FILENAME
from rgsynth.prepare.cache import Cache
from rgsynth.synthesize.profiles import CacheGenes
from rgsynth.twin.scanner import Acquisition


@pytest.fixture(scope="module")
def reference(small_cohort: Path, train_cache: Path) -> ReferenceGenerator:
    return ReferenceGenerator(small_cohort / GROUND_TRUTH_FILENAME, train_cache)


def test_it_reproduces_each_subjects_cache_slice(
    reference: ReferenceGenerator, small_cohort: Path, train_cache: Path
) -> None:
    """From a subject's true traits, nuisance seed and acquisition, the mask of its widest
    cache slice (the VOI centred where prepare centred it)."""
    truth = json.loads((small_cohort / GROUND_TRUTH_FILENAME).read_text())
    cache = Cache(train_cache)
    dice = {}
    for subject in truth["subjects"]:
        shard = cache.load_shard(subject["subject_id"])
        n = int(np.argmax(shard["nodule_mask"].reshape(len(shard["nodule_mask"]), -1).sum(1)))
        traits = subject["traits"] | {"diameter_mm": subject["nodule"]["diameter_mm"]}
        offset = np.array(subject["nodule"]["centre_mm"]) - shard["nodule_centre_mm"]
        painted = reference.render(
            np.full((reference.size,) * 2, -850.0),
            traits,
            subject["nuisance_seed"],
            height_mm=float(shard["nodule_slice_mm"][n]),
            acquisition=Acquisition(**subject["acquisition"]),
            offset_mm=tuple(offset),
        )
        real = shard["nodule_mask"][n].astype(bool)
        dice[subject["subject_id"]] = (
            2 * (real & painted.mask).sum() / (real.sum() + painted.mask.sum())
        )
        if subject["nodule"]["location"] != "juxta-pleural":  # the pleura cuts the real mask
            assert dice[subject["subject_id"]] >= 0.9, dice


def test_profiles_become_the_truths_activities(
    reference: ReferenceGenerator, small_cohort: Path, train_cache: Path
) -> None:
    truth = json.loads((small_cohort / GROUND_TRUTH_FILENAME).read_text())
    # a noiseless profile of known activities, in the cache's z units, comes back exactly
    activities = np.random.default_rng(0).normal(size=(4, reference.loadings.shape[1]))
    profiles = activities @ reference.loadings.T
    np.testing.assert_allclose(reference.activities(profiles), activities, atol=1e-9)
    # and the real (noisy, 3-subject-normalised) profiles still order the subjects
    genes = CacheGenes.load(train_cache)
    estimated = reference.activities(genes.values)
    by_id = {s["subject_id"]: s["activities"] for s in truth["subjects"]}
    true = np.array([by_id[sid] for sid in genes.subject_ids])
    agree = [np.corrcoef(estimated[:, k], true[:, k])[0, 1] for k in range(true.shape[1])]
    assert np.mean(agree) > 0.7, agree


def test_a_synthesis_is_a_nodule_in_the_given_background(reference: ReferenceGenerator) -> None:
    background = np.full((2, reference.size, reference.size), -0.8, np.float32)  # -850 HU
    profiles = np.zeros((2, reference.loadings.shape[0]), np.float32)
    result = reference(background, profiles, [1, 2])
    assert result.image.shape == result.mask.shape == background.shape
    assert result.mask.sum(axis=(1, 2)).min() > 10
    centre = reference.size // 2
    assert result.mask[:, centre, centre].all()
    outside = result.mask == 0
    far = np.abs(result.image - background)[outside]
    assert np.median(far) < 1e-6  # away from the nodule the background is untouched
    again = reference(background, profiles, [1, 2])
    np.testing.assert_array_equal(again.image, result.image)  # a function of the seed
