"""Evaluation: realism metrics on known distributions, truth scoring, and the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from rgsynth.analysis.ground_truth import Truth, load_truth, score_against_truth
from rgsynth.analysis.realism import (
    background_fidelity,
    frechet_radiomics_distance,
    mask_consistency,
    two_sample_accuracy,
)
from rgsynth.cli import app


def test_frd_and_two_sample_test_separate_shifted_sets() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 5))
    same = rng.normal(size=(300, 5))
    shifted = rng.normal(size=(300, 5)) + np.array([2.0, 0, 0, 0, 0])
    near, far = (frechet_radiomics_distance(real, s, rng, 50) for s in (same, shifted))
    assert near.value < 0.3 < 3.0 < far.value and far.ci_low < far.value < far.ci_high
    chance = two_sample_accuracy(real, same, rng)
    easy = two_sample_accuracy(real, shifted, rng)
    assert 0.4 < chance.value < 0.6 and easy.value > 0.8
    with_nan = np.vstack([same, np.full((1, 5), np.nan)])  # an empty mask's row is dropped
    assert np.isfinite(frechet_radiomics_distance(real, with_nan, rng, 10).value)


def test_background_fidelity_and_mask_consistency() -> None:
    rng = np.random.default_rng(1)
    background = rng.uniform(-1, 1, (32, 32))
    mask = np.zeros((32, 32))
    mask[12:20, 12:20] = 1.0
    synthesis = background.copy()
    synthesis[12:20, 12:20] = 0.8  # only under the mask
    psnr, ssim = background_fidelity(synthesis, background, mask, erosion_px=2)
    assert psnr == np.inf and ssim > 0.9  # SSIM windows near the square see it
    noisy = synthesis + rng.normal(scale=0.1, size=synthesis.shape)
    assert background_fidelity(noisy, background, mask, 2)[0] < 30
    background_hu = np.full((32, 32), -850.0)
    synthesis_hu = np.where(mask > 0, 30.0, -850.0)
    assert mask_consistency(synthesis_hu, background_hu, mask, 150.0) == 1.0
    assert mask_consistency(synthesis_hu, background_hu, np.roll(mask, 8, axis=1), 150.0) == 0.0


def _truth() -> Truth:
    effects = pd.DataFrame(
        [[0.8, 0, 0, 0, 0], [0, -0.6, 0, 0, 0], [0, 0, 0, 0, 0]],
        index=["P1", "P2", "P3"],
        columns=["diameter", "solidity", "spiculation", "lobulation", "heterogeneity"],
    )
    return Truth(effects, ["P3"], pd.DataFrame(), {})


def test_truth_scores_rank_the_true_pairs() -> None:
    truth = _truth()
    pairs = [(p, t) for p in truth.effects.index for t in truth.effects.columns]
    exact = pd.DataFrame(
        [
            {
                "program": p,
                "trait": t,
                "effect": truth.effects.at[p, t],
                "q": 0.001 if truth.effects.at[p, t] else 0.9,
            }
            for p, t in pairs
        ]
    )
    perfect = score_against_truth(exact, truth)
    assert perfect["auroc"] == 1.0 and perfect["true_pairs_found"] == 1.0
    assert perfect["null_program_false_positives"] == 0 and perfect["n_true_pairs"] == 2
    flipped = exact.assign(effect=-exact["effect"])  # right pairs, wrong direction
    assert score_against_truth(flipped, truth)["true_pairs_found"] == 0.0
    noise = exact.assign(effect=np.random.default_rng(0).normal(size=len(exact)), q=0.01)
    scores = score_against_truth(noise, truth)
    assert scores["null_program_false_positives"] == 5 and scores["auroc"] < 1.0


def test_load_truth_reads_a_twin(small_cohort: Path) -> None:
    truth = load_truth(small_cohort / "ground_truth.json")
    assert list(truth.effects.columns) == [
        "diameter",
        "solidity",
        "spiculation",
        "lobulation",
        "heterogeneity",
    ]
    assert set(truth.null_programs) < set(truth.effects.index)
    assert (truth.effects.loc[truth.null_programs] == 0).all().all()
    assert truth.traits.loc["R01-001", "diameter"] > 0


def test_evaluate_command_scores_a_run(trained_run: Path, small_cohort: Path) -> None:
    truth = small_cohort / "ground_truth.json"
    runner = CliRunner()
    mapped = runner.invoke(
        app,
        [
            "map",
            str(trained_run),
            "--gene-sets",
            str(truth),
            "--clusters",
            "2",
            "--metagenes",
            "3",
            "--top-genes",
            "1",
            "--replicates",
            "3",
            "--backgrounds",
            "3",
            "--force",
        ],
    )
    assert mapped.exit_code == 0, mapped.output
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(trained_run),
            "--truth",
            str(truth),
            "--per-donor",
            "2",
            "--resamples",
            "20",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((trained_run / "evaluation.json").read_text())
    scores = report["models"]["xu"]
    assert set(scores) >= {
        "matched",
        "shuffled genes",
        "zeroed genes",
        "trait_fidelity",
        "perturbation_map",
    }
    assert "donor_auroc" in scores["matched"] and "background_ssim" in scores["matched"]
    # Three subjects are too few for a Spearman test: the pairs are dropped, not faked.
    assert report["conventional"]["with_true_programs"]["n_pairs"] == 0
    metrics = pd.read_csv(trained_run / "evaluation_metrics.csv")
    assert {"model", "condition", "metric", "value", "ci_low", "ci_high"} <= set(metrics.columns)
    assert (trained_run / "evaluation.png").read_bytes()[:4] == b"\x89PNG"
