"""The paper's model (Xu et al. 2019): fusion-block generator, D_I, D_IS and D_ISG.

The networks are in ``generator.py`` and ``discriminator.py``; this file is its spec.
"""

from __future__ import annotations

from rgsynth.losses import GanLoss
from rgsynth.models.config import ModelConfig
from rgsynth.models.discriminator import Discriminators
from rgsynth.models.generator import Generator
from rgsynth.models.spec import GanNetworks, ModelSpec


def build(config: ModelConfig) -> GanNetworks:
    return GanNetworks(Generator(config), Discriminators(config))


# The authors' prototype (DESIGN.md §2): D_I 8, D_IS 1, D_ISG 10, λ 100, 5 px erosion.
# fmt: off
PROTOTYPE_SETTINGS = dict(
    batch_size=16, lr=1e-4,
    weight_i=8.0, weight_is=1.0, weight_isg=10.0,
    weight_background=100.0, weight_kl=0.0, erosion_px=5, precision="fp32",
)
# fmt: on

SPEC = ModelSpec(
    name="xu",
    display_name="ours",
    code_name="ours: φ(g)",
    description="the paper's GAN (fusion blocks; D_I, D_IS, D_ISG)",
    build=build,
    loss=GanLoss.from_config,
    training_defaults=PROTOTYPE_SETTINGS,
    own_code_file_stem="gene_codes",
)
