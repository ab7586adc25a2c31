"""Shape tables for every block, the weight map's range, and the fusion's promise that
background features pass unchanged where the map says so."""

from __future__ import annotations

import pytest
import torch

from rgsynth.config import ModelConfig
from rgsynth.models.blocks import AdaIN, FusionBlock, GeneMapping, Upsample, conv_bn_act
from rgsynth.models.discriminator import Discriminators, PatchEncoder
from rgsynth.models.generator import BackgroundEncoder, Generator

SMALL = dict(n_genes=30, base_channels=8, max_channels=32, gene_hidden=16, gene_code=12)


@pytest.mark.parametrize(
    ("make", "inputs", "expected"),
    [
        (lambda: conv_bn_act(4, 8), [(2, 4, 16, 16)], (2, 8, 16, 16)),
        (lambda: conv_bn_act(4, 8, stride=2), [(2, 4, 16, 16)], (2, 8, 8, 8)),
        (lambda: AdaIN(8, 5), [(2, 8, 16, 16), (2, 5)], (2, 8, 16, 16)),
        (lambda: Upsample(16, 8), [(2, 16, 8, 8)], (2, 8, 16, 16)),
        (lambda: GeneMapping(30, 16, 12), [(3, 30)], (3, 12)),
        (
            lambda: PatchEncoder(2, ModelConfig(image_size=32, **SMALL)),
            [(2, 2, 32, 32)],
            (2, 32, 8, 8),
        ),
    ],
)
def test_block_shapes(make, inputs, expected) -> None:
    torch.manual_seed(0)
    out = make()(*[torch.randn(*shape) for shape in inputs])
    assert tuple(out.shape) == expected


def test_fusion_block_shapes_and_weight_range() -> None:
    torch.manual_seed(0)
    block = FusionBlock(8, 5)
    fused, weight = block(
        torch.randn(2, 8, 16, 16) * 10, torch.randn(2, 8, 16, 16), torch.randn(2, 5)
    )
    assert tuple(fused.shape) == tuple(weight.shape) == (2, 8, 16, 16)
    assert float(weight.min()) >= 0.0 and float(weight.max()) <= 1.0


def test_fusion_passes_background_where_the_map_is_zero() -> None:
    torch.manual_seed(0)
    block = FusionBlock(4, 3).eval()
    # Force the gate to -inf-like values: w = (tanh(-big) + 1) / 2 = 0 everywhere.
    with torch.no_grad():
        block.encode[-1].bias.fill_(0.0)
        block.encode[-1].running_mean.zero_()
        block.encode[-1].running_var.fill_(1.0)
        block.encode[-1].weight[:4] = 0.0
        block.encode[-1].bias[:4] = -50.0
    # AdaIN of zeros is the style's shift: set it to zero too.
    with torch.no_grad():
        block.adain.affine.weight.zero_()
        block.adain.affine.bias.zero_()
    background = torch.randn(2, 4, 8, 8)
    fused, weight = block(torch.randn(2, 4, 8, 8), background, torch.randn(2, 3))
    assert torch.count_nonzero(weight) == 0
    torch.testing.assert_close(fused, background)


def test_adain_takes_scale_and_shift_from_the_style() -> None:
    adain = AdaIN(2, 1)
    with torch.no_grad():
        adain.affine.weight.zero_()
        adain.affine.bias.copy_(torch.tensor([1.0, -0.5, 3.0, 2.0]))  # scales 1, -0.5; shifts 3, 2
    features = torch.randn(1, 2, 6, 6)
    out = adain(features, torch.zeros(1, 1))
    normalised = (features - features.mean(dim=(2, 3), keepdim=True)) / torch.sqrt(
        features.var(dim=(2, 3), unbiased=False, keepdim=True) + 1e-5
    )
    torch.testing.assert_close(out[0, 0], 2.0 * normalised[0, 0] + 3.0)
    torch.testing.assert_close(out[0, 1], 0.5 * normalised[0, 1] + 2.0)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_generator_and_discriminator_shapes(size: int) -> None:
    torch.manual_seed(0)
    config = ModelConfig(image_size=size, **SMALL)
    features = BackgroundEncoder(config)(torch.randn(2, 1, size, size))
    assert [tuple(f.shape[1:]) for f in features] == [
        (config.channels(r), r, r) for r in config.resolutions[::-1]
    ]
    out = Generator(config)(torch.randn(2, 1, size, size), torch.randn(2, 30), torch.randn(2, 10))
    for tensor in (out.image, out.mask, out.weight_map):
        assert tuple(tensor.shape) == (2, 1, size, size)
    assert float(out.image.abs().max()) <= 1.0
    assert 0.0 <= float(out.mask.min()) and float(out.mask.max()) <= 1.0
    assert 0.0 <= float(out.weight_map.min()) and float(out.weight_map.max()) <= 1.0
    assert tuple(out.gene_code.shape) == (2, 12)
    image = torch.randn(2, 1, size, size)
    scores = Discriminators(config)(
        image, image, torch.randn(2, 30), image, image, image, torch.randn(2, 30)
    )
    assert sorted(scores) == sorted(
        [
            "i_fake",
            "is_fake",
            "isg_fake",
            "i_real",
            "is_real",
            "is_wrong_mask",
            "isg_real",
            "isg_wrong_mask",
            "isg_wrong_genes",
        ]
    )
    assert all(tuple(v.shape) == (2,) for v in scores.values())


def test_wrong_shapes_are_named() -> None:
    config = ModelConfig(image_size=32, **SMALL)
    with pytest.raises(ValueError, match=r"background: expected shape \(None, 1, 32, 32\)"):
        Generator(config)(torch.randn(2, 1, 64, 64), torch.randn(2, 30), torch.randn(2, 10))
    with pytest.raises(ValueError, match="genes: expected shape"):
        Generator(config)(torch.randn(2, 1, 32, 32), torch.randn(2, 29), torch.randn(2, 10))


def test_paper_sized_generator_has_the_prototype_parameter_count() -> None:
    """The authors' 64² prototype had 8.1 M parameters with 5172 genes."""
    n = sum(p.numel() for p in Generator(ModelConfig(image_size=64, n_genes=5172)).parameters())
    assert 7.5e6 < n < 9.0e6
