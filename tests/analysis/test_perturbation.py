"""The perturbation map and the fidelity score must agree: planted generators.

A planted generator paints a solid disc into the background; its diameter follows one
program's activity (the mean of that program's signed member genes), or nothing. The map
must rank the planted (program, diameter) pair first and fidelity must see it; a
generator that ignores the genes must get neither.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rgsynth.analysis.features import FeatureExtractor
from rgsynth.analysis.ground_truth import (
    Truth,
    program_trait_table,
    score_against_truth,
    trait_spearman,
)
from rgsynth.analysis.perturbation import (
    AXIS_ARMS,
    GENES_ARMS,
    _member_mean,
    _slopes,
    perturbation_map,
    program_axes,
)
from rgsynth.analysis.readout import READOUT_TRAITS, load_readout
from rgsynth.config import PerturbationSettings
from rgsynth.inference import Synthesis
from rgsynth.synthesize.profiles import GeneSet

SIZE = 64
N_GENES = 30
PROGRAMS = {f"P{k + 1}": list(range(5 * k, 5 * k + 5)) for k in range(3)}
SIGNS = np.array([1, -1, 1, 1, -1], np.float32)


def _programs() -> pd.DataFrame:
    matrix = np.zeros((len(PROGRAMS), N_GENES), np.float32)
    for row, genes in enumerate(PROGRAMS.values()):
        matrix[row, genes] = SIGNS
    return pd.DataFrame(matrix, index=list(PROGRAMS), columns=[f"G{g}" for g in range(N_GENES)])


def _cohort(n: int = 60, seed: int = 0) -> np.ndarray:
    """Profiles whose programs are real co-expression blocks (so principal axes exist)."""
    rng = np.random.default_rng(seed)
    genes = rng.normal(size=(n, N_GENES)).astype(np.float32) * 0.5
    for genes_of, activity in zip(PROGRAMS.values(), rng.normal(size=(3, n)), strict=True):
        genes[:, genes_of] += activity[:, None] * SIGNS
    return (genes - genes.mean(axis=0)) / genes.std(axis=0)


def _activity(profiles: np.ndarray, program: str) -> np.ndarray:
    return (profiles[:, PROGRAMS[program]] * SIGNS).mean(axis=1)


class PlantedGenerator:
    """A disc of 8 + 3·activity mm (``program``) or a fixed 8 mm (None), 40 HU."""

    def __init__(self, program: str | None) -> None:
        self.program = program

    def __call__(self, backgrounds: np.ndarray, genes: np.ndarray, seeds: list[int]) -> Synthesis:
        yy, xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
        radius = np.full(len(genes), 8.0)
        if self.program is not None:
            radius = np.clip(8.0 + 3.0 * _activity(genes, self.program), 2.0, 20.0)
        masks = (np.hypot(yy, xx)[None] <= radius[:, None, None]).astype(np.float32)
        images = np.where(masks > 0, 40.0 / 750.0 + 1 / 3, backgrounds)  # 40 HU
        return Synthesis(images.astype(np.float32), masks, np.zeros_like(masks))


def _truth(profiles: np.ndarray, program: str) -> Truth:
    effects = pd.DataFrame(0.0, index=list(PROGRAMS), columns=list(READOUT_TRAITS))
    effects.loc[program, "diameter"] = 0.8
    ids = [f"S{n}" for n in range(len(profiles))]
    traits = pd.DataFrame(0.0, index=ids, columns=list(READOUT_TRAITS))
    traits["diameter"] = 2 * (8.0 + 3.0 * _activity(profiles, program))
    gene_sets = {
        name: GeneSet(name, tuple(f"G{g}" for g in genes), tuple(SIGNS))
        for name, genes in PROGRAMS.items()
    }
    return Truth(effects=effects, null_programs=["P3"], traits=traits, gene_sets=gene_sets)


def _map(generator, profiles: np.ndarray, rule: str) -> pd.DataFrame:
    background = np.full((2, SIZE, SIZE), (-850.0 + 250.0) / 750.0, np.float32)  # -850 HU
    programs = _programs()
    if rule == "axis":
        directions, arms = program_axes(programs, profiles[:40]), AXIS_ARMS
    else:
        directions, arms = programs * 2.0, GENES_ARMS
    settings = PerturbationSettings(replicates=12, bootstrap=100, seed=1)
    result = perturbation_map(
        generator,
        FeatureExtractor(pixel_mm=1.0),
        load_readout(),
        directions,
        arms,
        background,
        profiles[40:],
        (-1000.0, 500.0),
        settings,
        empty_as_size_zero=rule == "axis",
    )
    return result.table


def _fidelity(generator, profiles: np.ndarray, truth: Truth) -> dict:
    """One synthesis per donor; each trait's readout against the donor's truth."""
    backgrounds = np.full((len(profiles), SIZE, SIZE), -0.8, np.float32)
    synthesis = generator(backgrounds, profiles, [0] * len(profiles))
    extractor = FeatureExtractor(pixel_mm=1.0)
    rows = [
        extractor(image * 750.0 - 250.0, mask > 0.5)
        for image, mask in zip(synthesis.image, synthesis.mask, strict=True)
    ]
    table = load_readout().apply(pd.DataFrame(rows, index=truth.traits.index))
    return trait_spearman(table, truth, np.random.default_rng(0), 50)


@pytest.mark.parametrize("rule", ["axis", "genes"])
def test_a_planted_size_program_is_found_and_seen_by_fidelity(rule: str) -> None:
    profiles = _cohort()
    generator = PlantedGenerator("P1")
    truth = _truth(profiles, "P1")
    pairs = program_trait_table(_map(generator, profiles, rule), "effect_sd")
    scores = score_against_truth(pairs, truth)
    assert scores["auroc"] == 1.0
    assert scores["auroc_diameter"] == 1.0
    assert scores["true_pairs_found"] == 1.0
    top = pairs.loc[pairs["effect"].abs().idxmax()]
    assert (top["program"], top["trait"]) == ("P1", "diameter")
    # fidelity: one synthesis per donor, its diameter readout against the donor's truth
    fidelity = _fidelity(generator, profiles, truth)
    assert fidelity["diameter"].value > 0.95


def test_a_generator_that_ignores_genes_gets_neither() -> None:
    profiles = _cohort()
    generator = PlantedGenerator(None)
    truth = _truth(profiles, "P1")
    pairs = program_trait_table(_map(generator, profiles, "axis"), "effect_sd")
    scores = score_against_truth(pairs, truth)
    assert scores["true_pairs_found"] == 0.0
    assert scores["false_positive_rate"] == 0.0
    assert not scores["auroc"] > 0.5  # every effect is exactly 0: ties at best
    fidelity = _fidelity(generator, profiles, truth)
    assert not fidelity["diameter"].value > 0.2  # NaN: a constant readout has no ρ


def test_program_axes_follow_the_data_in_sd_units() -> None:
    profiles = _cohort(n=400)
    axes = program_axes(_programs(), profiles)
    for name, genes in PROGRAMS.items():
        axis = axes.loc[name].to_numpy()
        assert np.all(axis[[g for g in range(N_GENES) if g not in genes]] == 0)
        assert np.all(np.sign(axis[genes]) == SIGNS)  # signed like the gene set
        # one unit along it is one SD of the data's projection on that direction
        unit = axis / np.linalg.norm(axis)
        assert np.std(profiles @ unit, ddof=1) == pytest.approx(np.linalg.norm(axis), rel=1e-6)


def test_slopes_use_the_arms_that_exist() -> None:
    t = np.array(AXIS_ARMS)
    values = np.stack([2.0 * t + 1.0, -t, np.where(t > 0, np.nan, t)], axis=1)[:, None, :]
    slopes = _slopes(t, values)[0]
    assert slopes[0] == pytest.approx(2.0)
    assert slopes[1] == pytest.approx(-1.0)
    assert np.isnan(slopes[2])  # one side only: no slope


def test_empty_masks_read_as_size_zero_only_on_the_axis_rule() -> None:
    profiles = _cohort()

    class Vanishing(PlantedGenerator):
        def __call__(self, backgrounds, genes, seeds):
            out = super().__call__(backgrounds, genes, seeds)
            shrink = _activity(genes, "P1") < 0
            out.mask[shrink] = 0.0
            out.image[shrink] = backgrounds[shrink]
            return out

    axis = _map(Vanishing("P1"), profiles, "axis")
    diameter = axis[(axis["program"] == "P1") & (axis["feature"] == "diameter readout")]
    assert diameter["n"].item() == 12  # the empty arms still count
    assert diameter["effect"].item() > 0


def test_several_members_average_their_slopes_per_replicate() -> None:
    """Two runs, one painting P1 into the diameter and one ignoring the genes: the map of
    both is the mean of their slopes (half the planted effect), paired replicate by
    replicate; one member alone is that member's map exactly."""
    profiles = _cohort()
    planted, blind = PlantedGenerator("P1"), PlantedGenerator(None)
    alone = _map(planted, profiles, "axis").set_index(["program", "feature"])
    assert _map([planted], profiles, "axis").set_index(["program", "feature"]).equals(alone)
    both = _map([planted, blind], profiles, "axis").set_index(["program", "feature"])
    key = ("P1", "diameter readout")
    assert both.at[key, "effect"] == pytest.approx(alone.at[key, "effect"] / 2)
    assert both.at[key, "n"] == alone.at[key, "n"]  # replicates, not replicates × members
    assert both.at[key, "p"] == pytest.approx(alone.at[key, "p"])  # halved slopes, same ranks
    assert both.loc[("P2", "diameter readout"), "effect"] == 0.0


def test_member_mean_skips_a_member_without_a_slope() -> None:
    slopes = np.array([[[1.0, np.nan]], [[3.0, np.nan]], [[np.nan, np.nan]]])
    mean = _member_mean(slopes)
    assert mean[0, 0] == pytest.approx(2.0)
    assert np.isnan(mean[0, 1])


def test_perturbation_map_refuses_no_members() -> None:
    with pytest.raises(ValueError, match="at least one synthesizer"):
        _map([], _cohort(), "axis")
