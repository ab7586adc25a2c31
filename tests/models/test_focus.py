"""The default recipe (``focus``): D_ISG blind outside the nodule region, a fixed gene
projection fitted on the training donors, precision chosen for the device."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY_TRAIN
from rgsynth.config import ModelConfig, TrainConfig
from rgsynth.models.blocks import ProjectedGeneMapping
from rgsynth.models.discriminator import Discriminators
from rgsynth.models.focus import FocusDiscriminators, nodule_region
from rgsynth.models.registry import canonical_name, get_spec
from rgsynth.train.loop import Trainer

SMALL = ModelConfig(architecture="focus", image_size=32, n_genes=30, base_channels=8,
                    max_channels=32, gene_hidden=16)  # fmt: skip


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(4, 1, 32, 32, generator=generator) * 2 - 1
    mask = torch.zeros(4, 1, 32, 32)
    mask[:, :, 12:20, 12:20] = 1.0
    return image, mask


def test_projection_whitens_the_training_donors_and_leaves_unsupported_components_zero():
    donors = torch.randn(6, 30, generator=torch.Generator().manual_seed(1)) * 3 + 1
    mapping = ProjectedGeneMapping(30, components=10, hidden=16, code=8)
    mapping.fit(donors)
    scores = mapping.project(donors)
    kept = scores[:, :5]  # 6 donors span 5 dimensions around their mean
    torch.testing.assert_close(kept.T @ kept / 5, torch.eye(5), atol=1e-4, rtol=0)
    assert mapping.components[5:].abs().sum() == 0
    assert mapping.input_weight().shape == (16, 30)
    # The buffers travel with the weights.
    restored = ProjectedGeneMapping(30, 10, 16, 8)
    restored.load_state_dict(mapping.state_dict())
    torch.testing.assert_close(restored.project(donors), scores)


def test_focus_isg_ignores_the_image_outside_the_grown_mask_and_the_paper_isg_does_not():
    torch.manual_seed(0)
    image, mask = _pair()
    elsewhere = image.clone()
    elsewhere[:, :, :4, :] = -1.0  # far outside the mask grown by 3 px
    genes = torch.randn(4, 30)
    focus = FocusDiscriminators(SMALL).eval()
    paper = Discriminators(dataclasses.replace(SMALL, architecture="xu")).eval()
    with torch.no_grad():
        seen = [focus(img, mask, genes) for img in (image, elsewhere)]
        published = [paper(img, mask, genes) for img in (image, elsewhere)]
    torch.testing.assert_close(seen[0]["isg_fake"], seen[1]["isg_fake"])
    assert not torch.allclose(seen[0]["is_fake"], seen[1]["is_fake"])  # D_IS still sees it
    assert not torch.allclose(published[0]["isg_fake"], published[1]["isg_fake"])


def test_nodule_region_keeps_the_nodule_and_fills_the_rest_with_lung():
    image, mask = _pair()
    region = nodule_region(image, mask)
    torch.testing.assert_close(region[:, :, 12:20, 12:20], image[:, :, 12:20, 12:20])
    torch.testing.assert_close(region[:, :, 9:23, 9:23][:, :, 0, 0], image[:, :, 9, 9])
    assert torch.allclose(region[:, :, 0, 0], torch.full((4, 1), -0.8))
    # A generated (soft) mask still gets gradients through the region.
    soft = mask.clone().requires_grad_(True)
    nodule_region(image, soft).sum().backward()
    assert soft.grad is not None and soft.grad.abs().sum() > 0


def test_trainer_fits_the_projection_on_training_donors_and_a_resumed_run_keeps_it(
    train_cache: Path, tmp_path: Path
) -> None:
    config = TrainConfig(**{**TINY_TRAIN.__dict__, "model": dataclasses.replace(
        TINY_TRAIN.model, architecture="focus")})  # fmt: skip
    trainer = Trainer(train_cache, tmp_path / "run", config)
    assert trainer.config.precision in ("fp32", "bf16")  # auto became this machine's choice
    projected = trainer.generator.mapping.project(torch.as_tensor(trainer.data.genes))
    donors = len(trainer.data.genes)
    kept = min(10, donors - 1)
    torch.testing.assert_close(
        projected[:, :kept].T @ projected[:, :kept] / (donors - 1), torch.eye(kept),
        atol=1e-3, rtol=0,
    )  # fmt: skip
    torch.testing.assert_close(
        trainer.discriminators.mapping.components, trainer.generator.mapping.components
    )
    trainer.run(max_steps=2, max_minutes=None)
    components = trainer.generator_ema.mapping.components.clone()
    resumed = Trainer(train_cache, tmp_path / "run", config, resume=True)
    torch.testing.assert_close(resumed.generator_ema.mapping.components, components)
    assert resumed.config.precision == trainer.config.precision


def test_recipe_names() -> None:
    assert canonical_name("xu2019") == "xu" and canonical_name("focus") == "focus"
    assert get_spec("focus").training_defaults["precision"] == "auto"
    assert get_spec("xu").resolve(TrainConfig()).precision == "fp32"
    with pytest.raises(ValueError, match="precision must be"):
        TrainConfig(precision="fp16")


def test_gene_noise_moves_the_projection_by_the_noise_and_nothing_outside_it():
    donors = torch.randn(12, 30, generator=torch.Generator().manual_seed(2)) * 2
    mapping = ProjectedGeneMapping(30, components=5, hidden=16, code=8)
    mapping.fit(donors)
    torch.manual_seed(3)
    moved = mapping.jitter(donors, 0.5)
    torch.manual_seed(3)
    noise = 0.5 * torch.randn(12, 5)
    torch.testing.assert_close(mapping.project(moved) - mapping.project(donors), noise,
                               atol=1e-4, rtol=0)  # fmt: skip
    # The move lies in the components' span: a direction orthogonal to it is untouched.
    _, _, vectors = torch.linalg.svd(donors - donors.mean(0), full_matrices=True)
    outside = vectors[5:]
    torch.testing.assert_close((moved - donors) @ outside.T, torch.zeros(12, 25),
                               atol=1e-4, rtol=0)  # fmt: skip
    assert torch.equal(mapping.jitter(donors, 0.0), donors)


def test_gene_noise_is_the_focus_recipes_option_and_a_clear_error_elsewhere(
    train_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert get_spec("focus").resolve(TrainConfig()).gene_noise == 0.0
    with pytest.raises(ValueError, match="'xu' takes no gene_noise"):
        TrainConfig(gene_noise=0.5).resolved()
    with pytest.raises(ValueError, match="gene_noise must be >= 0"):
        TrainConfig(gene_noise=-1.0)
    config = TrainConfig(**{**TINY_TRAIN.__dict__, "gene_noise": 0.5, "model": dataclasses.replace(
        TINY_TRAIN.model, architecture="focus")})  # fmt: skip
    trainer = Trainer(train_cache, tmp_path / "run", config)
    seen = []
    loss_type = type(trainer.loss)
    monkeypatch.setattr(loss_type, "accumulate_discriminator",
                        _spy(loss_type.accumulate_discriminator, seen))  # fmt: skip
    batch = next(trainer.batches())
    trainer.train_step(batch)
    (moved,) = seen
    mapping = trainer.generator.mapping
    fitted = mapping.components.abs().sum(dim=1) > 0  # the tiny cache's donors span few
    for key in ("genes", "wrong_genes"):  # both sides of D_ISG's question move
        shift = mapping.project(moved[key]) - mapping.project(batch[key])
        assert 0.2 < float(shift[:, fitted].std()) < 1.0
        assert float(shift[:, ~fitted].abs().max()) == 0.0
    assert torch.equal(moved["background"], batch["background"])


def _spy(method, seen):
    def wrapped(self, generator, discriminators, batch, *args, **kwargs):
        seen.append(batch)
        return method(self, generator, discriminators, batch, *args, **kwargs)

    return wrapped


def _program_donors(seed: int, n_genes: int) -> torch.Tensor:
    """20 donors' profiles: three programs under gene noise, as in the twin."""
    generator = torch.Generator().manual_seed(seed)
    programs = torch.randn(3, n_genes, generator=generator)
    loadings = torch.randn(20, 3, generator=generator)
    return loadings @ programs + torch.randn(20, n_genes, generator=generator)


def test_cross_fitted_genes_are_each_donor_seen_by_the_others_components():
    donors = _program_donors(seed=4, n_genes=40)
    mapping = ProjectedGeneMapping(40, components=3, hidden=16, code=8)
    mapping.fit(donors)
    views = mapping.cross_fitted(donors)
    # Donor 0's view is its projection onto the other 19 donors' mean and top 3 directions.
    others = donors[1:]
    _, _, vectors = torch.linalg.svd(others - others.mean(0), full_matrices=False)
    basis = vectors[:3]
    expected = others.mean(0) + ((donors[0] - others.mean(0)) @ basis.T) @ basis
    torch.testing.assert_close(views[0], expected, atol=1e-4, rtol=0)
    # In-sample scores have SD 1 by construction; the leave-one-out views' are smaller,
    # as an unseen donor's are.
    in_sample, cross = mapping.project(donors).std(0), mapping.project(views).std(0)
    torch.testing.assert_close(in_sample, torch.ones(3), atol=1e-4, rtol=0)
    assert bool((cross < 0.999).all()) and bool((cross > 0.3).all())


def test_shrunk_genes_keep_each_donors_direction_at_the_leave_one_out_spread():
    donors = _program_donors(seed=5, n_genes=200)  # many more genes than donors
    mapping = ProjectedGeneMapping(200, components=4, hidden=16, code=8)
    mapping.fit(donors)
    factor = mapping.shrinkage(donors)
    # By hand: each donor's whitened scores among the other 19, RMS over donors and the
    # four components.
    squares = []
    for donor in range(20):
        others = torch.cat([donors[:donor], donors[donor + 1 :]])
        _, singular, vectors = torch.linalg.svd(others - others.mean(0), full_matrices=False)
        scores = ((donors[donor] - others.mean(0)) @ vectors[:4].T) / (singular[:4] / 18**0.5)
        squares.append(float((scores**2).mean()))
    assert abs(factor - float(np.sqrt(np.mean(squares)))) < 1e-4
    # Three programs and one noise component: an unseen donor's scores are smaller.
    assert 0.3 < factor < 0.95
    shrunk = mapping.shrunk(donors)
    torch.testing.assert_close(
        mapping.project(shrunk), mapping.project(donors) * factor, atol=1e-4, rtol=0
    )
    # Nothing moves outside the fitted components.
    basis = mapping.components / mapping.components.norm(dim=1, keepdim=True)
    outside = lambda g: (g - mapping.mean) - ((g - mapping.mean) @ basis.T) @ basis  # noqa: E731
    torch.testing.assert_close(outside(shrunk), outside(donors), atol=1e-4, rtol=0)
    # Any float dtype in, the same dtype out.
    shrunk64 = mapping.shrunk(donors.double())
    assert shrunk64.dtype == torch.float64
    torch.testing.assert_close(shrunk64.float(), shrunk, atol=1e-4, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gene_views_of_networks_on_the_gpu_come_back_as_numpy() -> None:
    from rgsynth.models import focus as focus_model

    networks = focus_model.build(dataclasses.replace(TINY_TRAIN.model, architecture="focus"))
    donors = np.random.default_rng(0).normal(size=(12, TINY_TRAIN.model.n_genes))
    focus_model.fit_to_genes(networks, donors)
    on_cpu = {v: focus_model.gene_views(networks, donors, v) for v in ("cross-fit", "shrink")}
    networks.generator.cuda()
    for view, expected in on_cpu.items():
        got = focus_model.gene_views(networks, donors, view)
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_trainer_trains_on_shrunk_genes_and_refuses_both_views(
    train_cache: Path, tmp_path: Path
) -> None:
    focus = dataclasses.replace(TINY_TRAIN.model, architecture="focus")
    with pytest.raises(ValueError, match="two alternatives"):
        TrainConfig(model=focus, cross_fit_genes=True, shrink_genes=True).resolved()
    with pytest.raises(ValueError, match="'xu' cannot take shrink_genes"):
        TrainConfig(shrink_genes=True).resolved()
    config = TrainConfig(**{**TINY_TRAIN.__dict__, "shrink_genes": True, "model": focus})
    trainer = Trainer(train_cache, tmp_path / "run", config)
    expected = trainer.generator.mapping.shrunk(torch.as_tensor(trainer.data.genes))
    np.testing.assert_allclose(trainer.dataset.data.genes, expected.numpy(), atol=1e-5)
    assert not np.allclose(trainer.dataset.data.genes, trainer.data.genes)


def test_trainer_trains_on_cross_fitted_genes_and_keeps_the_cache_genes(
    train_cache: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="'xu' cannot take cross_fit_genes"):
        TrainConfig(cross_fit_genes=True).resolved()
    focus = dataclasses.replace(TINY_TRAIN.model, architecture="focus")
    config = TrainConfig(**{**TINY_TRAIN.__dict__, "cross_fit_genes": True, "model": focus})
    trainer = Trainer(train_cache, tmp_path / "run", config)
    trained = trainer.dataset.data.genes
    assert trained.shape == trainer.data.genes.shape and trained.dtype == np.float32
    assert not np.allclose(trained, trainer.data.genes)  # the diagnostics keep the real ones
    expected = trainer.generator.mapping.cross_fitted(torch.as_tensor(trainer.data.genes))
    np.testing.assert_allclose(trained, expected.numpy(), atol=1e-5)
    trainer.run(max_steps=2, max_minutes=None)
    resumed = Trainer(train_cache, tmp_path / "run", config, resume=True)
    np.testing.assert_array_equal(resumed.dataset.data.genes, trained)


def test_focus_daug_is_focus_with_its_discriminators_inputs_shifted(
    train_cache: Path, tmp_path: Path
) -> None:
    daug, focus = get_spec("focus-daug"), get_spec("focus")
    assert daug.resolve(TrainConfig()).d_translate == 1 / 8
    assert focus.resolve(TrainConfig()).d_translate == 0.0
    assert get_spec("xu").resolve(TrainConfig(d_translate=0.25)).d_translate == 0.25  # any model
    # the same networks as focus: only the loss's shift differs
    assert {k: v for k, v in daug.training_defaults.items() if k != "d_translate"} == dict(
        focus.training_defaults
    )
    config = TrainConfig(**{**TINY_TRAIN.__dict__, "model": dataclasses.replace(
        TINY_TRAIN.model, architecture="focus-daug")})  # fmt: skip
    trainer = Trainer(train_cache, tmp_path / "run", config)
    assert trainer.config.d_translate == 1 / 8 and trainer.loss.d_translate == 1 / 8
    terms = trainer.train_step(next(trainer.batches()))
    assert all(np.isfinite(float(v)) for v in terms.values())
