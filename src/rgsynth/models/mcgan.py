"""The MC-GAN baseline (Park, Yoo and Kwak, BMVC 2018), with genes in place of text.

Generator: the same background encoder; the gene vector goes through conditioning
augmentation (two FC layers → μ, log σ²; c = μ + σ ⊙ ε, with a KL term to N(0, I)),
concatenated with noise. Each synthesis block concatenates the condition (tiled) to the
synthesis features, makes object features with conv + BN + LeakyReLU, and adds the
background features gated by a sigmoid of (synthesis, background): output = object +
background ⊙ σ(gate). No AdaIN, no gate on the object path.

Discriminator: one network with three heads on a shared image encoder: image;
image + mask (a mask encoder joins); image + mask + condition (a linear compression of the
genes, tiled on the 8×8 grid). Least squares, as in the paper being reproduced.

The exported gene code is the CA mean μ, the counterpart of the proposed model's φ(g).
"""

from __future__ import annotations

import torch
from torch import nn

from rgsynth.losses import GanLoss
from rgsynth.models.blocks import LEAK, assert_shape, conv_bn_act, orthogonal_init
from rgsynth.models.config import ModelConfig
from rgsynth.models.discriminator import PatchEncoder, ScoreDiscriminator
from rgsynth.models.generator import GeneratorOutput, SynthesisPath
from rgsynth.models.spec import GanNetworks, ModelSpec


class ConditioningAugmentation(nn.Module):
    """genes (B, G) → (c, μ, log σ²), each (B, code); c is sampled in training and in
    evaluation alike (as StackGAN and MC-GAN do), so noise and ε both vary samples."""

    def __init__(self, n_genes: int, hidden: int, code: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_genes, hidden), nn.LeakyReLU(LEAK), nn.Linear(hidden, 2 * code)
        )
        self.n_genes = n_genes

    def forward(
        self, genes: torch.Tensor, epsilon: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``epsilon`` (B, code), standard normal, fixes the sample (drawn here if None)."""
        assert_shape(genes, (None, self.n_genes), "genes")
        mean, log_var = self.layers(genes).chunk(2, dim=1)
        epsilon = torch.randn_like(mean) if epsilon is None else epsilon.to(mean.dtype)
        code = mean + torch.exp(0.5 * log_var) * epsilon
        return code, mean, log_var


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(N(μ, σ²) ‖ N(0, I)), summed over code dimensions."""
    return 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1).sum(dim=1).mean()


class SynthesisBlock(nn.Module):
    """MC-GAN's block: object(h ⊕ c) + background ⊙ σ(gate(h ⊕ background)).

    Shapes: synthesis and background (B, C, H, W), condition (B, S) → (B, C, H, W) and
    the background gate (B, C, H, W)."""

    def __init__(self, channels: int, condition_dim: int) -> None:
        super().__init__()
        self.object = conv_bn_act(channels + condition_dim, channels)
        self.gate = nn.Conv2d(2 * channels, channels, 3, padding=1)

    def forward(
        self, synthesis: torch.Tensor, background: torch.Tensor, condition: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        assert_shape(background, tuple(synthesis.shape), "synthesis-block background features")
        tiled = condition[:, :, None, None].expand(-1, -1, *synthesis.shape[2:])
        objects = self.object(torch.cat([synthesis, tiled], dim=1))
        gate = torch.sigmoid(self.gate(torch.cat([synthesis, background], dim=1)))
        return objects + background * gate, gate


class McGanGenerator(nn.Module):
    """G(background, genes, noise) → GeneratorOutput (with ``kl`` set)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.augment = ConditioningAugmentation(
            config.n_genes, config.gene_hidden, config.gene_code
        )
        self.synthesis = SynthesisPath(
            config, lambda channels: SynthesisBlock(channels, config.style_dim)
        )
        orthogonal_init(self)

    def encode_genes(self, genes: torch.Tensor) -> torch.Tensor:
        """The conditioning-augmentation mean μ, (B, gene_code): exported like φ(g)."""
        return self.augment(genes)[1]

    def gene_input_weight(self) -> torch.Tensor:
        """(gene_hidden, n_genes): the first layer of the conditioning augmentation."""
        return self.augment.layers[0].weight

    def forward(
        self,
        background: torch.Tensor,
        genes: torch.Tensor,
        noise: torch.Tensor,
        epsilon: torch.Tensor | None = None,
    ) -> GeneratorOutput:
        code, mean, log_var = self.augment(genes, epsilon)
        image, mask, logits, gate = self.synthesis(background, code, noise)
        return GeneratorOutput(
            image=image,
            mask=mask,
            mask_logits=logits,
            weight_map=1.0 - gate.mean(dim=1, keepdim=True),  # where background is suppressed
            gene_code=mean,
            kl=kl_to_standard_normal(mean, log_var),
        )


class McGanDiscriminator(ScoreDiscriminator):
    """One discriminator, three heads; returns the same scores as :class:`Discriminators`."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        width = config.channels(config.bottleneck_size)
        self.encode_image = PatchEncoder(1, config)
        self.encode_mask = PatchEncoder(1, config)
        self.head_i = nn.Conv2d(width, 1, 3, padding=1)
        self.head_is = nn.Sequential(
            conv_bn_act(2 * width, width), nn.Conv2d(width, 1, 3, padding=1)
        )
        self.compress = nn.Sequential(
            nn.Linear(config.n_genes, config.gene_code), nn.LeakyReLU(LEAK)
        )
        self.head_isg = nn.Sequential(
            conv_bn_act(2 * width + config.gene_code, width), nn.Conv2d(width, 1, 3, padding=1)
        )
        orthogonal_init(self)

    def image_features(self, image: torch.Tensor) -> torch.Tensor:
        return self.encode_image(image)

    def pair_features(
        self, image: torch.Tensor, image_features: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        return torch.cat([image_features, self.encode_mask(mask)], dim=1)  # shared encoder

    def score_i(self, image_features: torch.Tensor) -> torch.Tensor:
        return self.head_i(image_features).mean(dim=(1, 2, 3))

    def score_is(self, pair_features: torch.Tensor) -> torch.Tensor:
        return self.head_is(pair_features).mean(dim=(1, 2, 3))

    def score_isg(self, pair_features: torch.Tensor, genes: torch.Tensor) -> torch.Tensor:
        condition = self.compress(genes)[:, :, None, None].expand(-1, -1, *pair_features.shape[2:])
        return self.head_isg(torch.cat([pair_features, condition], dim=1)).mean(dim=(1, 2, 3))


def build(config: ModelConfig) -> GanNetworks:
    return GanNetworks(McGanGenerator(config), McGanDiscriminator(config))


def _condition_sample_dim(config: ModelConfig) -> int:
    """Width of the conditioning-augmentation draw ε: synthesis passes it seeded, so a
    nodule is a function of (background, genes, seed) as with the proposed model."""
    return config.gene_code


# MC-GAN's equal least-squares heads, reconstruction 15, KL 2, lr 2e-4, batch 32
# (DESIGN.md §2); its background loss is not eroded.
# fmt: off
PUBLISHED_SETTINGS = dict(
    batch_size=32, lr=2e-4,
    weight_i=1.0, weight_is=1.0, weight_isg=1.0,
    weight_background=15.0, weight_kl=2.0, erosion_px=1, precision="fp32",
)
# fmt: on

SPEC = ModelSpec(
    name="mcgan",
    display_name="MC-GAN",
    code_name="MC-GAN: μ",
    description="the MC-GAN baseline (Park et al., BMVC 2018), genes in place of text",
    build=build,
    loss=GanLoss.from_config,
    training_defaults=PUBLISHED_SETTINGS,
    condition_sample_dim=_condition_sample_dim,
)
