"""The MC-GAN baseline: shapes, conditioning augmentation, its block's gating, its loss."""

from __future__ import annotations

import pytest
import torch

from rgsynth.config import ModelConfig, TrainConfig
from rgsynth.losses import GanLoss
from rgsynth.models.mcgan import (
    ConditioningAugmentation,
    McGanDiscriminator,
    McGanGenerator,
    SynthesisBlock,
    kl_to_standard_normal,
)
from rgsynth.models.registry import build_networks

SMALL = dict(n_genes=30, base_channels=8, max_channels=32, gene_hidden=16, gene_code=12)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_shapes(size: int) -> None:
    torch.manual_seed(0)
    config = ModelConfig(architecture="mcgan", image_size=size, **SMALL)
    networks = build_networks(config)
    assert isinstance(networks.generator, McGanGenerator)
    assert isinstance(networks.discriminators, McGanDiscriminator)
    out = networks.generator(torch.randn(2, 1, size, size), torch.randn(2, 30), torch.randn(2, 10))
    for tensor in (out.image, out.mask, out.weight_map):
        assert tuple(tensor.shape) == (2, 1, size, size)
    assert tuple(out.gene_code.shape) == (2, 12) and out.kl is not None and out.kl.ndim == 0
    image = torch.randn(2, 1, size, size)
    scores = networks.discriminators(
        image, image, torch.randn(2, 30), image, image, image, torch.randn(2, 30)
    )
    assert len(scores) == 9 and all(tuple(v.shape) == (2,) for v in scores.values())
    assert set(networks.discriminators(image, image, torch.randn(2, 30))) == {
        "i_fake",
        "is_fake",
        "isg_fake",
    }


def test_conditioning_augmentation_and_its_kl() -> None:
    torch.manual_seed(0)
    augment = ConditioningAugmentation(30, 16, 12)
    genes = torch.randn(5, 30)
    code_a, mean_a, log_var = augment(genes)
    code_b, mean_b, _ = augment(genes)
    torch.testing.assert_close(mean_a, mean_b)  # the exported gene code is deterministic
    assert not torch.equal(code_a, code_b)  # the sampled condition is not
    mean, log_var = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, torch.log(torch.tensor(4.0))]])
    # KL = 0.5 * [(1 + 1 - 0 - 1) + (0 + 4 - ln 4 - 1)]
    expected = 0.5 * (1.0 + 3.0 - torch.log(torch.tensor(4.0)))
    torch.testing.assert_close(kl_to_standard_normal(mean, log_var), expected)
    assert float(kl_to_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4))) == 0.0


def test_block_passes_gated_background() -> None:
    torch.manual_seed(0)
    block = SynthesisBlock(4, 3).eval()
    with torch.no_grad():
        for parameter in block.object.parameters():
            parameter.zero_()  # object path → LeakyReLU(BN(0)) = 0
        block.object[1].running_var.fill_(1.0)
        block.object[1].running_mean.zero_()
        block.gate.weight.zero_()
        block.gate.bias.fill_(50.0)  # σ(50) = 1: the background passes whole
    background = torch.randn(2, 4, 8, 8)
    out, gate = block(torch.randn(2, 4, 8, 8), background, torch.randn(2, 3))
    torch.testing.assert_close(gate, torch.ones_like(gate))
    torch.testing.assert_close(out, background)


def test_mcgan_defaults_and_kl_in_the_generator_loss() -> None:
    config = TrainConfig(model=ModelConfig(architecture="mcgan")).resolved()
    assert (config.lr, config.batch_size, config.weight_background, config.weight_kl) == (
        2e-4,
        32,
        15.0,
        2.0,
    )
    loss = GanLoss.from_config(config)
    scores = {k: torch.ones(4) for k in ("i_fake", "is_fake", "isg_fake")}
    image = torch.zeros(4, 1, 8, 8)
    total, terms = loss.generator(scores, image, image, image, kl=torch.tensor(0.75))
    assert float(terms["G/kl"]) == 0.75 and float(total) == pytest.approx(2.0 * 0.75)
    with pytest.raises(
        ValueError,
        match="architecture must be one of xu, focus, focus-height, focus-daug, focus-outline, "
        "mcgan",
    ):
        ModelConfig(architecture="stylegan")


@pytest.mark.parametrize("architecture", ["xu", "mcgan"])
def test_gene_codes_are_exported_alike(architecture: str) -> None:
    from rgsynth.models.registry import gene_codes

    torch.manual_seed(0)
    generator = build_networks(
        ModelConfig(architecture=architecture, image_size=32, **SMALL)
    ).generator
    genes = torch.randn(7, 30)
    codes = gene_codes(generator, genes, batch_size=3)
    assert tuple(codes.shape) == (7, 12)
    torch.testing.assert_close(codes, gene_codes(generator, genes))  # deterministic
    with torch.no_grad():
        out = generator(torch.zeros(7, 1, 32, 32), genes, torch.zeros(7, 10))
    torch.testing.assert_close(out.gene_code, codes)
