"""Evaluation: realism metrics on known distributions, truth scoring, and the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from rgsynth.analysis.ground_truth import (
    EFFECT_FLOOR,
    Truth,
    _auroc_interval,
    load_truth,
    score_against_truth,
)
from rgsynth.analysis.realism import (
    background_fidelity,
    frechet_radiomics_distance,
    mask_consistency,
    two_sample_accuracy,
)
from rgsynth.cli import app
from rgsynth.models.generator import GeneratorOutput


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
    scores = score_against_truth(noise, truth, resamples=200)
    null = noise["program"] == "P3"
    above = (noise["effect"].abs() > EFFECT_FLOOR).to_numpy()
    assert scores["null_program_false_positives"] == int((null & above).sum()) > 0
    negative = (noise["effect"] != 0) & (exact["effect"] == 0)
    assert scores["false_positive_rate"] == (negative & above).sum() / (exact["effect"] == 0).sum()
    assert scores["auroc"] < 1.0
    assert scores["auroc_ci_low"] <= scores["auroc"] <= scores["auroc_ci_high"]
    # a significant negative pair below the floor is not a false positive
    tiny = noise.assign(effect=np.where(exact["effect"] == 0, 0.05, exact["effect"]))
    assert score_against_truth(tiny, truth)["false_positive_rate"] == 0.0


def test_the_auroc_interval_is_sklearns_auroc_over_the_same_resamples() -> None:
    """The vectorised interval equals one roc_auc_score per stratified resample, ties too."""
    rng = np.random.default_rng(3)
    for case in range(5):
        positive = rng.random(30) < 0.3
        positive[:2] = [True, False]
        strength = np.round(rng.normal(size=30) + positive, case % 2)  # rounded: ties
        draws = np.random.default_rng([case, 6])
        pos, neg = np.flatnonzero(positive), np.flatnonzero(~positive)
        aurocs = []
        for _ in range(300):
            pick = np.concatenate([draws.choice(pos, len(pos)), draws.choice(neg, len(neg))])
            aurocs.append(roc_auc_score(positive[pick], strength[pick]))
        expected = np.percentile(aurocs, [2.5, 97.5])
        assert np.allclose(_auroc_interval(positive, strength, 300, case), expected, atol=1e-12)


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


def test_evaluate_command_scores_a_run(run_copy: Path, small_cohort: Path) -> None:
    truth = small_cohort / "ground_truth.json"
    runner = CliRunner()
    mapped = runner.invoke(
        app,
        [
            "map",
            str(run_copy),
            "--gene-sets",
            str(truth),
            "--clusters",
            "2",
            "--metagene-min-genes",
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
    small = ["--per-donor", "2", "--resamples", "20"]
    result = runner.invoke(app, ["evaluate", str(run_copy), "--truth", str(truth), *small])
    assert result.exit_code == 0, result.output
    report = json.loads((run_copy / "evaluation.json").read_text())
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
    assert set(report["embedding_vs_subtypes"]) == {"raw genes", "ours: φ(g)"}
    assert set(report["feature_validity"]) == {
        "diameter",
        "solidity",
        "spiculation",
        "lobulation",
        "heterogeneity",
    }
    metrics = pd.read_csv(run_copy / "evaluation_metrics.csv")
    assert {"model", "condition", "metric", "value", "ci_low", "ci_high"} <= set(metrics.columns)
    assert (run_copy / "evaluation.png").read_bytes()[:4] == b"\x89PNG"


class _OracleGenerator(torch.nn.Module):
    """Paints a real nodule slice of the subject whose genes it is given (a random one,
    chosen by the noise): perfect conditioning, for checking the donor AUROC sees it."""

    def __init__(
        self, genes: np.ndarray, slices: list[np.ndarray], masks: list[np.ndarray], config
    ) -> None:
        super().__init__()
        self.config = config
        self.genes, self.slices, self.masks = torch.as_tensor(genes), slices, masks

    def forward(self, background, genes, noise) -> GeneratorOutput:
        owner = torch.cdist(genes.float(), self.genes.float()).argmin(dim=1)
        images, masks = [], []
        for subject, n in zip(owner.tolist(), noise[:, 0].tolist(), strict=True):
            pick = int(abs(n) * 1000) % len(self.slices[subject])
            images.append(torch.as_tensor(self.slices[subject][pick]))
            masks.append(torch.as_tensor(self.masks[subject][pick]))
        image = torch.stack(images)[:, None].float()
        mask = torch.stack(masks)[:, None].float()
        return GeneratorOutput(image, mask, mask, mask, genes)


def test_donor_auroc_sees_perfect_conditioning(train_cache: Path, trained_run: Path) -> None:
    from rgsynth.analysis.cohort import load_cohort
    from rgsynth.analysis.evaluate import EvaluationSettings, _backgrounds, _real_slices
    from rgsynth.analysis.features import FeatureExtractor
    from rgsynth.config import PrepareConfig
    from rgsynth.inference import load_run
    from rgsynth.metrics.context import ModelContext
    from rgsynth.metrics.records import ScoreTable
    from rgsynth.metrics.registry import score_model
    from rgsynth.prepare.cache import Cache

    run = load_run(trained_run)
    cohort = load_cohort(train_cache)
    cache = Cache(train_cache)
    shards = [cache.load_shard(s) for s in cohort.subject_ids]
    run.generator = _OracleGenerator(
        cohort.genes,
        [s["nodule_image"].astype(np.float32) for s in shards],
        [s["nodule_mask"].astype(np.float32) for s in shards],
        run.config.model,
    )
    config = PrepareConfig.from_dict(cache.manifest()["settings"])
    extractor = FeatureExtractor(cohort.pixel_mm)
    real, split = _real_slices(train_cache, cohort, config, extractor)
    settings = EvaluationSettings(resamples=20)
    backgrounds = _backgrounds(train_cache, split, settings)
    context = ModelContext(run, cohort, real, backgrounds, extractor, config, settings)
    scores = ScoreTable(score_model(context, None))
    assert scores.value("xu", "matched", "donor_auroc") == 1.0
    assert scores.value("xu", "shuffled genes", "donor_auroc") < 0.5
    assert scores.value("xu", "matched", "two_sample_accuracy") < 0.75  # real slices, re-drawn


def test_both_models_side_by_side(
    run_copy: Path, mcgan_run_copy: Path, small_cohort: Path, tmp_path: Path
) -> None:
    """--mcgan adds MC-GAN's codes to the embedding; --against scores both models."""
    truth = small_cohort / "ground_truth.json"
    runner = CliRunner()
    small = [
        "--clusters",
        "2",
        "--metagene-min-genes",
        "2",
        "--top-genes",
        "1",
        "--replicates",
        "3",
    ]
    small += ["--backgrounds", "3", "--gene-sets", str(truth), "--force"]
    for run, extra in ((mcgan_run_copy, []), (run_copy, ["--mcgan", str(mcgan_run_copy)])):
        result = runner.invoke(app, ["map", str(run), *small, *extra])
        assert result.exit_code == 0, result.output
    embedding = pd.read_csv(run_copy / "maps" / "embedding.csv")
    assert "MC-GAN: μ cluster" in embedding.columns
    assert (run_copy / "maps" / "gene_codes_mcgan.csv").is_file()
    args = [
        "evaluate",
        str(run_copy),
        "--against",
        str(mcgan_run_copy),
        "--truth",
        str(truth),
    ]
    result = runner.invoke(app, [*args, "--per-donor", "2", "--resamples", "20"])
    assert result.exit_code == 0, result.output
    report = json.loads((run_copy / "evaluation.json").read_text())
    assert set(report["models"]) == {"xu", "mcgan", "reference"}
    assert "auroc" in report["models"]["mcgan"]["perturbation_map"]
    # the reference went through the same maps, with the run's own map settings
    reference = report["models"]["reference"]
    assert {"auroc", "true_pairs_found"} <= set(reference["perturbation_map"])
    assert "auroc" in reference["perturbation_map_genes_rule"]
    empty = reference["perturbation_empty_rate"]
    assert set(empty["programs"]) == {"-2", "-1", "+1", "+2"}
    assert set(empty["programs:genes"]) == {"-1", "+1"}
    assert (run_copy / "reference" / "perturbation_programs.csv").is_file()
    assert (run_copy / "reference" / "program_sweep.png").read_bytes()[:4] == b"\x89PNG"
    reps = pd.read_csv(run_copy / "reference" / "perturbation_programs.csv")["n"].max()
    assert reps == 3  # --replicates 3, as the run's maps
    assert "sampling_bound" in report["conventional"]
    assert report["conventional"]["n_donors"] >= 1
    assert "xu:" in result.output and "mcgan:" in result.output
