"""The one small interface both models implement, and the choice between them.

A model is a generator ``G(background, genes, noise) → GeneratorOutput`` with an
``encode_genes(genes)`` method, and a discriminator module returning the named
least-squares scores; the loss object and the training loop are shared. The gene code is
what the analysis exports: φ(g) for the proposed model, the conditioning-augmentation
mean μ for MC-GAN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rgsynth.config import ModelConfig
from rgsynth.models.discriminator import Discriminators
from rgsynth.models.generator import Generator
from rgsynth.models.mcgan import McGanDiscriminator, McGanGenerator


@dataclass
class GanNetworks:
    generator: nn.Module
    discriminators: nn.Module


def build_networks(config: ModelConfig) -> GanNetworks:
    if config.architecture == "mcgan":
        return GanNetworks(McGanGenerator(config), McGanDiscriminator(config))
    return GanNetworks(Generator(config), Discriminators(config))


@torch.no_grad()
def gene_codes(generator: nn.Module, genes: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """(N, gene_code) codes of (N, n_genes) standardised expression, in batches, on CPU."""
    generator.eval()
    parts = [generator.encode_genes(chunk) for chunk in genes.split(batch_size)]
    return torch.cat(parts).float().cpu()
