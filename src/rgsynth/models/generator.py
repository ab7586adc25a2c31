"""The generator G(b, g, n) → (image, mask) of Xu et al. (§2.1).

A background encoder keeps features at every resolution; the synthesis path starts from
its bottleneck and, at each resolution, a fusion block mixes gated object features
(AdaIN-styled by φ(g) ⊕ n) with the background features there. Nothing of the background
is erased: how much of it survives is the learned weight map.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from rgsynth.models.blocks import (
    FusionBlock,
    GeneMapping,
    Upsample,
    assert_shape,
    conv_bn_act,
    gene_code,
    orthogonal_init,
)
from rgsynth.models.config import ModelConfig


@dataclass
class GeneratorOutput:
    """Shapes: image and mask (B, 1, H, W); weight map (B, 1, H, W), the last fusion
    block's object weight averaged over channels; gene_code (B, code); kl a scalar for
    models with a variational gene code (MC-GAN's conditioning augmentation), else None."""

    image: torch.Tensor
    mask: torch.Tensor
    mask_logits: torch.Tensor
    weight_map: torch.Tensor
    gene_code: torch.Tensor
    kl: torch.Tensor | None = None


class BackgroundEncoder(nn.Module):
    """(B, 1, H, W) → features at each resolution, full size first."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        levels = config.resolutions[::-1]  # e.g. 64, 32, 16, 8
        self.stem = conv_bn_act(1, config.channels(levels[0]))
        self.down = nn.ModuleList(
            conv_bn_act(config.channels(hi), config.channels(lo), stride=2)
            for hi, lo in itertools.pairwise(levels)
        )

    def forward(self, background: torch.Tensor) -> list[torch.Tensor]:
        features = [self.stem(background)]
        for down in self.down:
            features.append(down(features[-1]))
        return features


class SynthesisPath(nn.Module):
    """What both generators share: the background encoder, one conditioning block per
    resolution (coarse → fine) with an upsampling between (:meth:`trunk`), and the image
    and mask heads (:meth:`heads`; a generator with its own heads, ``focus-outline``'s,
    overrides :meth:`Generator.heads` and keeps only the trunk).

    ``make_block(channels)`` builds a block taking (synthesis, background features,
    condition) and returning (features, weight); the condition is the gene code ⊕ noise.
    """

    def __init__(self, config: ModelConfig, make_block: Callable[[int], nn.Module]) -> None:
        super().__init__()
        self.config = config
        self.encoder = BackgroundEncoder(config)
        levels = config.resolutions  # coarse → fine
        self.blocks = nn.ModuleList(make_block(config.channels(r)) for r in levels)
        self.ups = nn.ModuleList(
            Upsample(config.channels(lo), config.channels(hi))
            for lo, hi in itertools.pairwise(levels)
        )
        top = config.channels(levels[-1])
        self.to_image = nn.Conv2d(top, 1, 3, padding=1)
        self.to_mask = nn.Conv2d(top, 1, 3, padding=1)

    def trunk(
        self, background: torch.Tensor, code: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Everything before the heads: (full-resolution features (B, C, H, W), the last
        block's weight (B, C, H, W), the condition gene code ⊕ noise (B, style_dim))."""
        size = self.config.image_size
        assert_shape(background, (None, 1, size, size), "background")
        assert_shape(noise, (background.shape[0], self.config.noise_dim), "noise")
        condition = torch.cat([code, noise], dim=1)  # (B, style_dim)
        features = self.encoder(background)[::-1]  # coarse → fine
        synthesis = weight = features[0]
        for level, block in enumerate(self.blocks):
            synthesis, weight = block(synthesis, features[level], condition)
            if level < len(self.ups):
                synthesis = self.ups[level](synthesis)
        return synthesis, weight, condition

    def heads(self, synthesis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image, mask, mask logits), each (B, 1, H, W), from the trunk's features."""
        logits = self.to_mask(synthesis)
        return torch.tanh(self.to_image(synthesis)), torch.sigmoid(logits), logits

    def forward(
        self, background: torch.Tensor, code: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image, mask, mask logits, the last block's weight): (B, 1, H, W) ×3, (B, C, H, W)."""
        synthesis, weight, _ = self.trunk(background, code, noise)
        return *self.heads(synthesis), weight


class Generator(nn.Module):
    """G(background, genes, noise) → GeneratorOutput.

    Example:
        >>> g = Generator(ModelConfig(image_size=32, n_genes=20, base_channels=8))
        >>> out = g(torch.zeros(2, 1, 32, 32), torch.zeros(2, 20), torch.zeros(2, 10))
        >>> tuple(out.image.shape), tuple(out.mask.shape)
        ((2, 1, 32, 32), (2, 1, 32, 32))
    """

    def __init__(self, config: ModelConfig, mapping: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.mapping = mapping or GeneMapping(config.n_genes, config.gene_hidden, config.gene_code)
        self.synthesis = SynthesisPath(
            config, lambda channels: FusionBlock(channels, config.style_dim)
        )
        orthogonal_init(self)

    def encode_genes(
        self, genes: torch.Tensor, height_mm: torch.Tensor | None = None
    ) -> torch.Tensor:
        """φ(g), (B, gene_code): the gene code the analysis exports. ``height_mm`` (B,):
        each slice's height above the nodule's centroid, for a mapping that takes it
        (``focus-height``; None: the centroid's slice)."""
        return gene_code(self.mapping, genes, height_mm)

    def gene_input_weight(self) -> torch.Tensor:
        """(gene_hidden, n_genes): the gene mapping's first layer (seen from the genes)."""
        if hasattr(self.mapping, "input_weight"):
            return self.mapping.input_weight()
        return self.mapping.layers[0].weight

    def heads(
        self, synthesis: torch.Tensor, condition: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image, mask, mask logits), each (B, 1, H, W), from the trunk's full-resolution
        features and the condition (gene code ⊕ noise). A recipe that draws its mask its own
        way (``focus-outline``) overrides this and nothing else."""
        return self.synthesis.heads(synthesis)

    def forward(
        self,
        background: torch.Tensor,
        genes: torch.Tensor,
        noise: torch.Tensor,
        height_mm: torch.Tensor | None = None,
    ) -> GeneratorOutput:
        code = self.encode_genes(genes, height_mm)  # (B, gene_code)
        synthesis, weight, condition = self.synthesis.trunk(background, code, noise)
        image, mask, logits = self.heads(synthesis, condition)
        return GeneratorOutput(
            image=image,
            mask=mask,
            mask_logits=logits,
            weight_map=weight.mean(dim=1, keepdim=True),
            gene_code=code,
        )
