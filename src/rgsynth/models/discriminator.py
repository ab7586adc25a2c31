"""The three least-squares discriminators of Xu et al. (§2.2), as one module.

D_I(x) scores an image; D_IS(x, m) an image with a mask; D_ISG(x, m, g) combines the
D_IS features with a gene code φ_D(g) tiled over the encoder's output grid (as the paper
does: tiling over the full image cost 3× more here for no stated gain), then conv + BN +
LeakyReLU. D_ISG has its own gene mapping: sharing G's would let the discriminator's loss
train the generator's embedding.

One ``forward`` computes every score a step needs, so DistributedDataParallel sees a
single forward per backward; real and fake batches still pass the encoders separately
(batch-norm statistics are never mixed across them).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from rgsynth.config import ModelConfig
from rgsynth.models.blocks import GeneMapping, assert_shape, conv_bn_act, orthogonal_init


class PatchEncoder(nn.Sequential):
    """(B, in, H, W) → (B, C, bottleneck, bottleneck) with stride-2 conv_bn_act layers."""

    def __init__(self, in_channels: int, config: ModelConfig) -> None:
        levels = config.resolutions[::-1]
        layers = [
            nn.Conv2d(in_channels, config.channels(levels[0]), 3, padding=1),
            nn.LeakyReLU(0.2),
        ]
        for hi, lo in itertools.pairwise(levels):
            layers.append(conv_bn_act(config.channels(hi), config.channels(lo), stride=2))
        super().__init__(*layers)


class Discriminators(nn.Module):
    """D_I, D_IS and D_ISG. Scores are (B,) means over an 8×8 grid of patch scores."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        width = config.channels(config.bottleneck_size)
        self.encode_i = PatchEncoder(1, config)
        self.encode_is = PatchEncoder(2, config)
        self.head_i = nn.Conv2d(width, 1, 3, padding=1)
        self.head_is = nn.Conv2d(width, 1, 3, padding=1)
        self.mapping = GeneMapping(config.n_genes, config.gene_hidden, config.gene_code)
        self.head_isg = nn.Sequential(
            conv_bn_act(width + config.gene_code, width), nn.Conv2d(width, 1, 3, padding=1)
        )
        orthogonal_init(self)

    def score_i(self, image: torch.Tensor) -> torch.Tensor:
        return self.head_i(self.encode_i(image)).mean(dim=(1, 2, 3))

    def features_is(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.encode_is(torch.cat([image, mask], dim=1))

    def score_isg(self, features: torch.Tensor, genes: torch.Tensor) -> torch.Tensor:
        code = self.mapping(genes)[:, :, None, None].expand(-1, -1, *features.shape[2:])
        return self.head_isg(torch.cat([features, code], dim=1)).mean(dim=(1, 2, 3))

    def forward(
        self,
        fake_image: torch.Tensor,
        fake_mask: torch.Tensor,
        genes: torch.Tensor,
        real_image: torch.Tensor | None = None,
        real_mask: torch.Tensor | None = None,
        wrong_mask: torch.Tensor | None = None,
        wrong_genes: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Scores for the fakes, and (when the real tuple is given) for the reals and the
        mismatched negatives. Images and masks (B, 1, H, W), genes (B, n_genes)."""
        size = self.config.image_size
        assert_shape(fake_image, (None, 1, size, size), "fake image")
        assert_shape(fake_mask, tuple(fake_image.shape), "fake mask")
        fake_features = self.features_is(fake_image, fake_mask)
        scores = {
            "i_fake": self.score_i(fake_image),
            "is_fake": self.head_is(fake_features).mean(dim=(1, 2, 3)),
            "isg_fake": self.score_isg(fake_features, genes),
        }
        if real_image is None:
            return scores
        assert real_mask is not None and wrong_mask is not None and wrong_genes is not None
        real_features = self.features_is(real_image, real_mask)
        wrong_features = self.features_is(real_image, wrong_mask)
        scores |= {
            "i_real": self.score_i(real_image),
            "is_real": self.head_is(real_features).mean(dim=(1, 2, 3)),
            "is_wrong_mask": self.head_is(wrong_features).mean(dim=(1, 2, 3)),
            "isg_real": self.score_isg(real_features, genes),
            "isg_wrong_mask": self.score_isg(wrong_features, genes),
            "isg_wrong_genes": self.score_isg(real_features, wrong_genes),
        }
        return scores
