"""The ground truth is what it claims: driven traits follow their programs, null ones don't."""

import numpy as np
import pytest
from scipy import stats

from rgsynth.config import twin_preset
from rgsynth.twin import biology
from rgsynth.twin.cohort import plan_cohort


@pytest.fixture(scope="module")
def big_plan():
    # No images: the biology alone, for enough subjects to measure correlations.
    return plan_cohort(twin_preset("demo", seed=11, n_subjects=3000))


def test_trait_map_shape_and_null_programs() -> None:
    for seed in range(20):
        rng = np.random.default_rng(seed)
        effects = biology.draw_trait_map(rng, n_programs=8, n_null=3)
        driving = np.flatnonzero(np.abs(effects).sum(axis=0))
        assert len(driving) == 5, "every non-null program drives at least one trait"
        assert np.all(np.abs(effects).sum(axis=1) > 0), "every trait has a driver"
        assert np.all((effects**2).sum(axis=1) <= 0.85 + 1e-9)


def test_trait_map_is_drawn_from_the_seed() -> None:
    maps = {biology.draw_trait_map(np.random.default_rng(s), 8, 3).tobytes() for s in range(10)}
    assert len(maps) == 10


def test_trait_latents_correlate_with_their_programs(big_plan) -> None:
    effects = big_plan.model.effects
    activities, latents = big_plan.biology.activities, big_plan.biology.trait_latents
    for t in range(effects.shape[0]):
        for k in range(effects.shape[1]):
            r = np.corrcoef(activities[:, k], latents[:, t])[0, 1]
            if effects[t, k]:
                assert abs(r - effects[t, k]) < 0.12, (t, k, r, effects[t, k])
            elif not effects[:, k].any():  # a null program moves nothing
                assert abs(r) < 0.1, (t, k, r)


def test_physical_traits_follow_the_driving_program(big_plan) -> None:
    effects = big_plan.model.effects
    activities = big_plan.biology.activities
    traits = big_plan.biology.traits
    diameter = np.array([t["diameter_mm"] for t in traits])
    assert 5.0 <= diameter.min() and diameter.max() <= 40.0
    row = biology.TRAITS.index("diameter")
    driver = int(np.argmax(np.abs(effects[row])))
    rho = stats.spearmanr(activities[:, driver], diameter).statistic
    assert np.sign(rho) == np.sign(effects[row, driver]) and abs(rho) > 0.3
    for null in big_plan.model.null_programs:
        assert abs(stats.spearmanr(activities[:, null], diameter).statistic) < 0.1


def test_every_category_occurs(big_plan) -> None:
    traits = big_plan.biology.traits
    assert {t["nodule_type"] for t in traits} == set(biology.NODULE_TYPES)
    assert {t["location"] for t in traits} == set(biology.LOCATIONS)


def test_subtypes_form_clusters_in_program_space(big_plan) -> None:
    activities, subtype = big_plan.biology.activities, big_plan.biology.subtype
    f_stat = [
        stats.f_oneway(*(activities[subtype == s, k] for s in np.unique(subtype))).statistic
        for k in range(activities.shape[1])
    ]
    assert np.median(f_stat) > 50


def test_program_genes_carry_their_program(big_plan) -> None:
    model = big_plan.model
    rng = np.random.default_rng(0)
    log2 = biology.log2_expression(rng, model, big_plan.biology.activities[:500])
    for k in range(model.n_programs):
        genes = np.flatnonzero(model.gene_program == k)[:5]
        for g in genes:
            r = np.corrcoef(log2[g], big_plan.biology.activities[:500, k])[0, 1]
            assert np.sign(r) == np.sign(model.gene_loading[g]) and abs(r) > 0.4
    background = np.flatnonzero(model.gene_program < 0)[:50]
    r = [abs(np.corrcoef(log2[g], big_plan.biology.activities[:500, 0])[0, 1]) for g in background]
    assert np.max(r) < 0.2
