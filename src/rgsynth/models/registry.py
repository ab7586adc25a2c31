"""The registered architectures, by the name a config stores.

Adding an architecture is one new module that defines a :class:`ModelSpec` and one line in
``_BUILT_IN`` (or, from a plugin or a test, one :func:`register` call).
"""

from __future__ import annotations

import torch
from torch import nn

from rgsynth.models import focus, mcgan, outline, xu
from rgsynth.models.config import DEFAULT_RECIPE, ModelConfig
from rgsynth.models.spec import GanNetworks, ModelSpec

_BUILT_IN = (xu.SPEC, focus.SPEC, focus.HEIGHT_SPEC, focus.DAUG_SPEC, outline.SPEC, mcgan.SPEC)
_SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in _BUILT_IN}

PROPOSED = focus.SPEC.name  # the default recipe: what `train` and the demo train first
assert PROPOSED == DEFAULT_RECIPE
PAPER = xu.SPEC.name  # the paper's model as published
BASELINE = mcgan.SPEC.name  # what the demo compares it with
# Names a user may give for a registered architecture (`train --model xu2019`).
ALIASES = {"xu2019": xu.SPEC.name}


def canonical_name(name: str) -> str:
    """The registered name of ``name`` (an alias such as ``xu2019`` → ``xu``)."""
    return ALIASES.get(name, name)


def register(spec: ModelSpec) -> ModelSpec:
    """Make ``spec`` available by name to configs, training, synthesis and analysis."""
    if spec.name in _SPECS and _SPECS[spec.name] is not spec:
        raise ValueError(f"an architecture named {spec.name!r} is already registered")
    _SPECS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a registered architecture (tests); the built-in ones stay."""
    if name in {spec.name for spec in _BUILT_IN}:
        raise ValueError(f"{name!r} is built in")
    _SPECS.pop(name, None)


def architecture_names() -> list[str]:
    return list(_SPECS)


def get_spec(name: str) -> ModelSpec:
    """The spec of architecture ``name``.

    Raises:
        ValueError: no architecture of that name is registered.
    """
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(f"architecture must be one of {', '.join(_SPECS)}, got {name!r}") from None


def build_networks(config: ModelConfig) -> GanNetworks:
    return get_spec(config.architecture).build(config)


@torch.no_grad()
def gene_codes(generator: nn.Module, genes: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """(N, gene_code) codes of (N, n_genes) standardised expression, in batches, on CPU."""
    generator.eval()
    parts = [generator.encode_genes(chunk) for chunk in genes.split(batch_size)]
    return torch.cat(parts).float().cpu()
