"""The default recipe (``focus``): D_ISG blind outside the nodule region, a fixed gene
projection fitted on the training donors, precision chosen for the device."""

from __future__ import annotations

import dataclasses
from pathlib import Path

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
