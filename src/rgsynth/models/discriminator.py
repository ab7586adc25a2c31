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

from rgsynth.models.blocks import (
    GeneMapping,
    assert_shape,
    conv_bn_act,
    gene_code,
    orthogonal_init,
)
from rgsynth.models.config import ModelConfig


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


class ScoreDiscriminator(nn.Module):
    """The scores a training step needs, computed once for every discriminator design.

    A design supplies ``image_features`` (what D_I scores), ``pair_features`` (image with
    a mask, what D_IS and D_ISG score) and the three heads. Scores are (B,) means over the
    bottleneck grid of patch scores.
    """

    config: ModelConfig

    def image_features(self, image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pair_features(
        self, image: torch.Tensor, image_features: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError

    def gene_pair_features(
        self, image: torch.Tensor, mask: torch.Tensor, pair_features: torch.Tensor
    ) -> torch.Tensor:
        """What D_ISG scores with the genes: the D_IS features unless a design says else."""
        return pair_features

    def score_i(self, image_features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score_is(self, pair_features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score_isg(
        self,
        pair_features: torch.Tensor,
        genes: torch.Tensor,
        height_mm: torch.Tensor | None = None,
    ) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self,
        fake_image: torch.Tensor,
        fake_mask: torch.Tensor,
        genes: torch.Tensor,
        real_image: torch.Tensor | None = None,
        real_mask: torch.Tensor | None = None,
        wrong_mask: torch.Tensor | None = None,
        wrong_genes: torch.Tensor | None = None,
        height_mm: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Scores for the fakes, and (when the real tuple is given) for the reals and the
        mismatched negatives. Images and masks (B, 1, H, W), genes (B, n_genes);
        ``height_mm`` (B,) the real slices' heights, for a D_ISG told them (the
        mismatched genes keep their slice's height; None: not given)."""
        heights = {} if height_mm is None else {"height_mm": height_mm}
        size = self.config.image_size
        assert_shape(fake_image, (None, 1, size, size), "fake image")
        assert_shape(fake_mask, tuple(fake_image.shape), "fake mask")
        fake_image_features = self.image_features(fake_image)
        fake_pair = self.pair_features(fake_image, fake_image_features, fake_mask)
        fake_gene_pair = self.gene_pair_features(fake_image, fake_mask, fake_pair)
        scores = {
            "i_fake": self.score_i(fake_image_features),
            "is_fake": self.score_is(fake_pair),
            "isg_fake": self.score_isg(fake_gene_pair, genes, **heights),
        }
        if real_image is None:
            return scores
        assert real_mask is not None and wrong_mask is not None and wrong_genes is not None
        return scores | self.real_scores(
            real_image, real_mask, wrong_mask, genes, wrong_genes, height_mm
        )

    def real_scores(
        self,
        real_image: torch.Tensor,
        real_mask: torch.Tensor,
        wrong_mask: torch.Tensor,
        genes: torch.Tensor,
        wrong_genes: torch.Tensor,
        height_mm: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The real tuple's scores: the reals and the mismatched (mask, genes) negatives."""
        heights = {} if height_mm is None else {"height_mm": height_mm}
        real_image_features = self.image_features(real_image)
        real_pair = self.pair_features(real_image, real_image_features, real_mask)
        wrong_pair = self.pair_features(real_image, real_image_features, wrong_mask)
        real_gene_pair = self.gene_pair_features(real_image, real_mask, real_pair)
        wrong_gene_pair = self.gene_pair_features(real_image, wrong_mask, wrong_pair)
        return {
            "i_real": self.score_i(real_image_features),
            "is_real": self.score_is(real_pair),
            "is_wrong_mask": self.score_is(wrong_pair),
            "isg_real": self.score_isg(real_gene_pair, genes, **heights),
            "isg_wrong_mask": self.score_isg(wrong_gene_pair, genes, **heights),
            "isg_wrong_genes": self.score_isg(real_gene_pair, wrong_genes, **heights),
        }


class Discriminators(ScoreDiscriminator):
    """D_I, D_IS and D_ISG of the paper."""

    def __init__(self, config: ModelConfig, mapping: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        width = config.channels(config.bottleneck_size)
        self.encode_i = PatchEncoder(1, config)
        self.encode_is = PatchEncoder(2, config)
        self.head_i = nn.Conv2d(width, 1, 3, padding=1)
        self.head_is = nn.Conv2d(width, 1, 3, padding=1)
        self.mapping = mapping or GeneMapping(config.n_genes, config.gene_hidden, config.gene_code)
        self.head_isg = nn.Sequential(
            conv_bn_act(width + config.gene_code, width), nn.Conv2d(width, 1, 3, padding=1)
        )
        orthogonal_init(self)

    def image_features(self, image: torch.Tensor) -> torch.Tensor:
        return self.encode_i(image)

    def pair_features(
        self, image: torch.Tensor, image_features: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        return self.encode_is(torch.cat([image, mask], dim=1))  # D_IS has its own encoder

    def score_i(self, image_features: torch.Tensor) -> torch.Tensor:
        return self.head_i(image_features).mean(dim=(1, 2, 3))

    def score_is(self, pair_features: torch.Tensor) -> torch.Tensor:
        return self.head_is(pair_features).mean(dim=(1, 2, 3))

    def score_isg(
        self,
        pair_features: torch.Tensor,
        genes: torch.Tensor,
        height_mm: torch.Tensor | None = None,
    ) -> torch.Tensor:
        code = gene_code(self.mapping, genes, height_mm)
        code = code[:, :, None, None].expand(-1, -1, *pair_features.shape[2:])
        return self.head_isg(torch.cat([pair_features, code], dim=1)).mean(dim=(1, 2, 3))
