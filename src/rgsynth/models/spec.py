"""The written model interface: one :class:`ModelSpec` per architecture.

Every stage that needs a fact about a model asks its spec, found by the architecture name
stored in the run's config (:func:`rgsynth.models.registry.get_spec`); no stage outside
``models/`` names an architecture. A spec says how to build the generator and the
discriminator module, which loss trains them, the model's own training defaults, how it
is named in tables and figures, and how wide its noise inputs are.

A generator built by a spec implements::

    forward(background (B, 1, S, S), genes (B, G), noise (B, noise_dim)
            [, condition_sample (B, condition_sample_dim)]
            [, height_mm=(B,) when the spec has ``slice_height``]) → GeneratorOutput
    encode_genes(genes (B, G)[, height_mm]) → (B, code)   the gene code the analysis exports
    gene_input_weight() → (hidden, G)        its first layer on the genes (which genes it weighs)

and its discriminator module returns the named least-squares scores of
:class:`rgsynth.models.discriminator.Discriminators` (see ``losses.py``).

Example:
    >>> from rgsynth.models.registry import get_spec
    >>> spec = get_spec("mcgan")
    >>> spec.display_name, spec.training_defaults["weight_kl"]
    ('MC-GAN', 2.0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from rgsynth.config import TrainConfig
    from rgsynth.losses import GanLoss
    from rgsynth.models.config import ModelConfig


@dataclass
class GanNetworks:
    generator: nn.Module
    discriminators: nn.Module


# The training settings a spec must give a value for; TrainConfig leaves them None
# ("the model's own") unless the user sets them.
MODEL_DEFAULTED_SETTINGS = (
    "batch_size",
    "lr",
    "weight_i",
    "weight_is",
    "weight_isg",
    "weight_background",
    "weight_kl",
    "erosion_px",
)
# Settings a spec may give; without one, the value here.
OPTIONAL_DEFAULTS = {
    "precision": "fp32",
    "gene_noise": 0.0,
    "cross_fit_genes": False,
    "shrink_genes": False,
    "d_translate": 0.0,
    "map_snapshot": 0.0,
}


def _no_condition_sample(config: ModelConfig) -> int:
    return 0


def _config_noise(config: ModelConfig) -> int:
    return config.noise_dim


@dataclass(frozen=True)
class ModelSpec:
    """Everything the pipeline knows about one architecture.

    Attributes:
        name: the architecture's key in configs, checkpoints and ``evaluation.json``.
        display_name: its name in tables, figures and progress lines ("ours", "MC-GAN").
        code_name: the name of its gene code in embeddings ("ours: φ(g)").
        build: ModelConfig → the generator and the discriminator module.
        loss: the resolved TrainConfig → the loss object that trains them.
        training_defaults: a value for each of ``MODEL_DEFAULTED_SETTINGS``: the
            model's own published settings, used where the user set none (and optionally
            ``precision``: ``fp32`` unless it says).
        noise_dim: ModelConfig → width of the noise input n (0: no noise).
        condition_sample_dim: ModelConfig → width of a seeded draw of a sampled
            condition (MC-GAN's conditioning augmentation), 0 for none.
        description: one line for ``--help`` and the report.
        own_code_file_stem: the file of its gene codes in ``RUN/maps`` when the run is
            mapped with another run's codes beside it [``gene_codes_<name>``].
        fit_to_genes: (networks, training donors' genes (donors, G)) → None, run once
            before the first step of a new run: for parts fitted on the data rather than
            trained (a fixed gene projection). None: nothing to fit.
        jitter_genes: (generator, genes (B, G), sd) → genes moved by Gaussian noise of
            that standard deviation along the generator's whitened gene components: what
            ``TrainConfig.gene_noise`` does to every training batch. None: the model takes
            no gene noise.
        gene_views: (fitted networks, training donors' genes, ``"cross-fit"`` or
            ``"shrink"``) → the genes to train on instead, one row per donor: what
            ``TrainConfig.cross_fit_genes`` and ``shrink_genes`` do. None: the model cannot.
        slice_height: the generator and D_ISG are told each nodule slice's height above
            the nodule's centroid (``height_mm=`` of their forward and ``score_isg``, the
            cache's ``nodule_slice_mm``); without it they assume the centroid's slice.
            Training batches then carry ``height_mm``, and scores of syntheses against
            real slices give each synthesis its real slice's height.
    """

    name: str
    display_name: str
    code_name: str
    build: Callable[[ModelConfig], GanNetworks]
    loss: Callable[[TrainConfig], GanLoss]
    training_defaults: Mapping[str, Any]
    noise_dim: Callable[[ModelConfig], int] = _config_noise
    condition_sample_dim: Callable[[ModelConfig], int] = _no_condition_sample
    description: str = ""
    own_code_file_stem: str | None = None
    fit_to_genes: Callable[[GanNetworks, Any], None] | None = None
    jitter_genes: Callable[[Any, Any, float], Any] | None = None
    gene_views: Callable[[GanNetworks, Any, str], Any] | None = None
    slice_height: bool = False

    def __post_init__(self) -> None:
        missing = [k for k in MODEL_DEFAULTED_SETTINGS if k not in self.training_defaults]
        if missing:
            raise ValueError(f"model {self.name!r} gives no default for {', '.join(missing)}")
        object.__setattr__(
            self, "training_defaults", MappingProxyType(dict(self.training_defaults))
        )

    @property
    def code_file_stem(self) -> str:
        """``RUN/maps/<stem>.csv``: every subject's gene code from this model."""
        return self.own_code_file_stem or f"gene_codes_{self.name}"

    def resolve(self, config: TrainConfig) -> TrainConfig:
        """``config`` with every setting left to the model (None) given this model's own
        value: what is trained, stored in the checkpoint and reported."""
        defaults = {**OPTIONAL_DEFAULTS, **self.training_defaults}
        own = {
            key: defaults[key]
            for key in (*MODEL_DEFAULTED_SETTINGS, *OPTIONAL_DEFAULTS)
            if getattr(config, key) is None
        }
        resolved = dataclasses.replace(config, **own) if own else config
        if resolved.gene_noise and self.jitter_genes is None:
            raise ValueError(
                f"model {self.name!r} takes no gene_noise (it has no fitted gene "
                f"projection to add the noise along), got {resolved.gene_noise}"
            )
        if resolved.cross_fit_genes and resolved.shrink_genes:
            raise ValueError("cross_fit_genes and shrink_genes are two alternatives: set one")
        for view in ("cross_fit_genes", "shrink_genes"):
            if getattr(resolved, view) and self.gene_views is None:
                raise ValueError(
                    f"model {self.name!r} cannot take {view} (it has no fitted gene projection)"
                )
        return resolved

    def training_genes(self, config: TrainConfig, networks: GanNetworks, genes: Any) -> Any:
        """The training donors' genes (donors, G) the resolved ``config`` trains on: the
        cache's, or the view its ``cross_fit_genes`` / ``shrink_genes`` asks for (a
        function of the fitted networks and those genes only, so the same on resume)."""
        if config.cross_fit_genes:
            return self.gene_views(networks, genes, "cross-fit")
        if config.shrink_genes:
            return self.gene_views(networks, genes, "shrink")
        return genes
