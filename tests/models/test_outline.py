"""``focus-outline``: G's mask drawn as a star-shaped binary outline, and a term asking
its roughness to follow the genes as the real slices' does."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from conftest import TINY_TRAIN, chain_commands, train_two_processes
from rgsynth.config import ModelConfig, TrainConfig
from rgsynth.models import outline
from rgsynth.models.outline import (
    AREA_ANGLES,
    STAR_HARMONICS,
    OutlineDiscriminators,
    OutlineGenerator,
    polar_roughness,
    star_mask,
    wave_area_factor,
)
from rgsynth.models.registry import get_spec
from rgsynth.train.loop import Trainer

SMALL = ModelConfig(architecture="focus-outline", image_size=32, n_genes=30, base_channels=8,
                    max_channels=32, gene_hidden=16)  # fmt: skip
DISC = math.log(2 * math.sqrt(math.pi))  # a disc's log P - 1/2 log A


def _params(batch: int = 1, radius: float = 0.0, wave: float = 0.0, k: int = 5) -> torch.Tensor:
    p = torch.zeros(batch, 3 + 2 * STAR_HARMONICS)
    p[:, 2] = radius
    p[:, 3 + k - 1] = wave  # cosine coefficient of harmonic k
    return p


def test_the_drawn_mask_is_binary_and_its_gradient_moves_the_outline():
    params = _params(radius=0.0).requires_grad_(True)
    mask, logits = star_mask(params, 32)
    assert sorted(torch.unique(mask).tolist()) == [0.0, 1.0]
    assert torch.equal(mask, (logits > 0).float())
    mask.sum().backward()  # more area: the radius grows, almost no wave is asked for
    assert params.grad[0, 2] > 0  # (the square grid's fourfold symmetry: harmonics 4 and 8)
    assert params.grad[0, 3:].abs().max() < 1e-2 * params.grad[0, 2]
    # A shifted centre moves the disc, it does not resize it.
    moved, _ = star_mask(torch.cat([torch.tensor([[2.0, 0.0]]), _params()[:, 2:]], dim=1), 32)
    rows = torch.arange(32.0)
    centre = (moved[0, 0].sum(dim=1) * rows).sum() / moved.sum()
    assert abs(centre - (15.5 + math.tanh(2.0) * outline.STAR_SHIFT * 32)) < 0.5
    assert abs(moved.sum() - mask.sum()) < 8


def test_an_equal_area_outline_keeps_its_area_whatever_its_waves():
    """Published, waves grow the area; with ``equal_area`` only r0 sets it (½∮r² dθ = π r0²),
    and the gradient of the area no longer reaches the waves (r(θ) is divided by its root
    mean square exp of the waves, so the waves are shifted in log r)."""
    areas, equal = [], []
    for w in (0.0, 0.2, 0.4):
        areas.append(star_mask(_params(radius=4.0, wave=w), 64)[0].sum().item())
        equal.append(star_mask(_params(radius=4.0, wave=w), 64, equal_area=True)[0].sum().item())
    assert areas[0] == equal[0]  # no waves: the same disc
    assert areas[2] > 1.05 * areas[0]  # as published, the waves add area
    assert max(equal) - min(equal) < 0.03 * equal[0]  # the pixel grid's rounding
    grads = {}
    for equal_area in (False, True):  # the soft area's gradient
        params = _params(radius=4.0, wave=0.3).requires_grad_(True)
        _, logits = star_mask(params, 64, equal_area=equal_area)
        torch.sigmoid(logits).sum().backward()
        grads[equal_area] = params.grad[0, 2].item(), params.grad[0, 3 + 4].item()
    assert grads[False][1] > grads[False][0] > 0  # published: the wave grows the area most
    assert grads[True][0] > 0 and abs(grads[True][1]) < 0.05 * grads[True][0]  # now r0 alone


def test_polar_roughness_reads_a_disc_as_smooth_and_waves_as_rough_with_gradients():
    disc, _ = star_mask(_params(radius=2.0), 48)
    assert abs(polar_roughness(disc).item() - DISC) < 0.02
    rough = [polar_roughness(star_mask(_params(radius=2.0, wave=w), 48)[0]).item()
             for w in (0.05, 0.15, 0.3)]  # fmt: skip
    assert DISC < rough[0] < rough[1] < rough[2]
    wave = _params(radius=2.0, wave=0.15).requires_grad_(True)
    polar_roughness(star_mask(wave, 48)[0]).sum().backward()
    assert wave.grad[0, 3 + 4] > 0  # more of the wave: rougher


def test_generator_paints_where_its_drawn_mask_is_and_has_no_unused_heads():
    torch.manual_seed(0)
    networks = get_spec("focus-outline").build(SMALL)
    generator = networks.generator
    assert isinstance(generator, OutlineGenerator)
    assert not any(k.startswith("synthesis.to_") for k in generator.state_dict())
    genes = torch.randn(3, 30)
    out = generator(torch.zeros(3, 1, 32, 32), genes, torch.randn(3, SMALL.noise_dim))
    assert sorted(torch.unique(out.mask).tolist()) == [0.0, 1.0]
    # The run starts from a centred disc of STAR_RADIUS_PX (its last layer starts small).
    area = out.mask.sum(dim=(1, 2, 3))
    assert torch.all((area - math.pi * outline.STAR_RADIUS_PX**2).abs() < 40)
    (out.image.sum() + out.mask.sum()).backward()
    assert generator.star_head[-1].weight.grad.abs().sum() > 0
    assert generator.star_image[0].weight.grad.abs().sum() > 0


def _reals(scores: torch.Tensor, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Discs whose radius grows with ``scores`` (B,), images bright inside them."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    radius = (6 + 2 * scores).clamp(2, 12)[:, None, None]
    mask = (((yy - 16) ** 2 + (xx - 16) ** 2) < radius**2).float()[:, None]
    return mask * 0.5 - (1 - mask) * 0.8, mask


def test_the_ridge_fit_learns_the_reals_descriptors_from_the_genes_and_g_gets_a_term():
    torch.manual_seed(1)
    d = OutlineDiscriminators(SMALL)
    donors = torch.randn(40, 30) * 2
    d.mapping.fit(donors)
    fake_image, fake_mask = torch.zeros(40, 1, 32, 32), _reals(torch.zeros(40))[1]
    # Before any real slice is seen, G's phase has no roughness term.
    assert "rough_gap" not in d(fake_image, fake_mask, donors)
    first = d.mapping.project(donors)[:, 0]
    image, mask = _reals(first)
    wrong = torch.roll(mask, 1, dims=0)
    with torch.no_grad():
        d(fake_image, fake_mask, donors, image, mask, wrong, torch.roll(donors, 1, dims=0))
    assert d.ridge_xtx[0, 0] == 40
    slopes = d.coefficients()[1:, 0]  # log area on the 10 components
    assert slopes[0] > 5 * slopes[1:].abs().max()  # the area follows the first one only
    scores = d(fake_image, fake_mask, donors)
    # Every fake the same disc: the centred gap is the fit's own spread over the reals',
    # its in-sample R² (the reals' roughness here is the pixel grid's noise), below 1.
    assert 0 < scores["rough_gap"].item() < 1.0
    loss = get_spec("focus-outline").loss(get_spec("focus-outline").resolve(TrainConfig()))
    total, terms = loss.generator(scores, fake_image, fake_mask, fake_image)
    assert "G/rough_gap" in terms
    assert torch.isclose(total, terms["G/I"] * loss.weight_i + terms["G/IS"] * loss.weight_is
                         + terms["G/ISG"] * loss.weight_isg
                         + terms["G/background_l1"] * loss.weight_background
                         + outline.WEIGHT_ROUGH * terms["G/rough_gap"])  # fmt: skip


def test_a_run_trains_in_fp32_logs_the_term_and_resumes_with_its_fit(
    train_cache: Path, tmp_path: Path
) -> None:
    assert get_spec("focus-outline").training_defaults["precision"] == "fp32"
    config = TrainConfig(**{**TINY_TRAIN.__dict__, "model": dataclasses.replace(
        TINY_TRAIN.model, architecture="focus-outline")})  # fmt: skip
    trainer = Trainer(train_cache, tmp_path / "run", config)
    assert trainer.config.precision == "fp32"
    trainer.run(max_steps=2, max_minutes=None)
    stats = [json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().split("\n")
             if line.strip()]  # fmt: skip
    assert all("G/rough_gap" in row for row in stats)
    seen = trainer.discriminators.ridge_xtx.clone()
    assert seen[0, 0] == 2 * config.batch_size
    resumed = Trainer(train_cache, tmp_path / "run", config, resume=True)
    torch.testing.assert_close(resumed.discriminators.ridge_xtx, seen)


def test_the_chain_runs_on_a_focus_outline_run(
    train_cache: Path, small_cohort: Path, tmp_path: Path
) -> None:
    """map, evaluate, synthesize and report read a focus-outline run as any other."""
    from typer.testing import CliRunner

    from rgsynth.cli import app

    model = dataclasses.replace(TINY_TRAIN.model, architecture="focus-outline")
    run = tmp_path / "run"
    Trainer(train_cache, run, dataclasses.replace(TINY_TRAIN, model=model)).run(2, None)
    runner = CliRunner()
    steps = chain_commands(run, small_cohort / "ground_truth.json", tmp_path / "synthesis")
    for args in steps:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"{args[0]}: {result.output}"
    scores = json.loads((run / "evaluation.json").read_text())["models"]["focus-outline"]
    assert scores["training"]["precision"] == "fp32"
    assert (run / "report" / "index.html").is_file()
    assert sorted((tmp_path / "synthesis").rglob("*.nii.gz"))


@pytest.mark.slow
def test_under_ddp_the_fit_counts_every_ranks_slices(train_cache: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    result = train_two_processes(train_cache, run, "--steps", "2", "--model", "focus-outline")
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = json.loads((run / "ranks.json").read_text())
    assert ranks["weight_checksums"][0] == ranks["weight_checksums"][1]
    state = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    # 2 steps × 4 slices × 2 ranks: each rank's D phase added both ranks' slices
    assert state["discriminators"]["ridge_xtx"][0, 0].item() == 16


def test_the_wave_area_factor_is_the_mean_of_exp_two_waves_and_stays_finite_for_huge_waves():
    """``wave_area_factor`` is log mean_θ exp(2 · waves) (checked in float64), taken with
    logsumexp: a wave of 60 in log r overflows exp(2 · wave) in fp32, where the equal-area
    outline would have been divided by infinity (an empty mask)."""
    torch.manual_seed(0)
    params = torch.randn(4, 3 + 2 * STAR_HARMONICS) * 0.3
    params[3, 3] = 60.0
    theta = torch.arange(AREA_ANGLES, dtype=torch.float64) * (2 * math.pi / AREA_ANGLES)
    k = torch.arange(1, STAR_HARMONICS + 1, dtype=torch.float64)
    p = params.double()
    waves = (
        torch.cos(theta[:, None] * k) @ p[:, 3 : 3 + STAR_HARMONICS].T
        + torch.sin(theta[:, None] * k) @ p[:, 3 + STAR_HARMONICS :].T
    )
    expected = torch.log(torch.exp(2 * waves).mean(dim=0))
    factor = wave_area_factor(params)
    assert torch.isfinite(factor).all()
    assert torch.allclose(factor.double(), expected, rtol=1e-5, atol=1e-4)
    mask, _ = star_mask(params[3:], 64, equal_area=True)
    assert mask.sum() > 0  # a spike, not an empty mask


def test_the_equal_area_outline_is_drawn_in_fp32_under_bf16_autocast():
    """The equal-area factor's matmul is autocast-eligible: called under bf16 autocast, the
    factor came back in bf16 (off by up to 0.03) and moved mask pixels. It is fp32 now,
    so the outline is the same with autocast on or off."""
    torch.manual_seed(0)
    params = torch.randn(8, 3 + 2 * STAR_HARMONICS) * 0.5
    plain = wave_area_factor(params)
    mask, logits = star_mask(params, 64, equal_area=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        factor = wave_area_factor(params)
        mask_cast, logits_cast = star_mask(params, 64, equal_area=True)
    assert factor.dtype == torch.float32
    assert torch.equal(factor, plain)
    assert torch.equal(mask_cast, mask)
    assert torch.equal(logits_cast, logits)
