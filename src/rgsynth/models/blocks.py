"""Building blocks: conv layers, AdaIN, and the paper's fusion block (§2.1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

LEAK = 0.2  # LeakyReLU slope of the prototype
MAX_SHRINKAGE = 1.5  # a leave-one-out score shrinkage above this is no shrinkage: refused


def assert_shape(tensor: torch.Tensor, shape: tuple[int | None, ...], name: str) -> None:
    """Fail early with the name and both shapes when a tensor is not ``shape`` (None = any)."""
    if tensor.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(tensor.shape, shape, strict=True)
    ):
        raise ValueError(f"{name}: expected shape {shape}, got {tuple(tensor.shape)}")


def conv_bn_act(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3×3 conv (stride 1 or 2) + BatchNorm + LeakyReLU(0.2)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(LEAK),
    )


class AdaIN(nn.Module):
    """Adaptive instance normalisation: instance-normalise, then scale and shift per channel
    from the style code.

    Shapes: features (B, C, H, W), style (B, S) → (B, C, H, W).
    """

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.affine = nn.Linear(style_dim, 2 * channels)
        self.channels = channels

    def forward(self, features: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        scale, shift = self.affine(style).chunk(2, dim=1)  # (B, C) each
        # 1 + scale: the block starts close to plain instance normalisation.
        return self.norm(features) * (1 + scale[:, :, None, None]) + shift[:, :, None, None]


class FusionBlock(nn.Module):
    """The paper's fusion block at one resolution.

    synthesis → conv3×3 (C→2C) + BN + LeakyReLU → conv3×3 (2C→2C) + BN → split into a
    weight map w = (tanh + 1) / 2 ∈ [0, 1] and object features o; output =
    AdaIN(o ⊙ w, style) + background ⊙ (1 − w). Where w is 0 the background features
    pass unchanged.

    Shapes: synthesis and background (B, C, H, W), style (B, S) → output (B, C, H, W) and
    the weight map (B, C, H, W).
    """

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.encode = nn.Sequential(
            nn.Conv2d(channels, 2 * channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * channels),
            nn.LeakyReLU(LEAK),
            nn.Conv2d(2 * channels, 2 * channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * channels),
        )
        self.adain = AdaIN(channels, style_dim)
        self.channels = channels

    def forward(
        self, synthesis: torch.Tensor, background: torch.Tensor, style: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        assert_shape(background, tuple(synthesis.shape), "fusion background features")
        gate, objects = self.encode(synthesis).chunk(2, dim=1)  # (B, C, H, W) each
        weight = (torch.tanh(gate) + 1) / 2
        fused = self.adain(objects * weight, style) + background * (1 - weight)
        return fused, weight


class Upsample(nn.Sequential):
    """×2 nearest-neighbour upsampling + conv_bn_act to the next level's channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"), conv_bn_act(in_channels, out_channels)
        )


def gene_code(
    mapping: nn.Module, genes: torch.Tensor, height_mm: torch.Tensor | None
) -> torch.Tensor:
    """``mapping``'s code of ``genes``, told the slice heights when it takes them.

    Raises:
        ValueError: heights given to a mapping that takes none (a model without
            ``slice_height`` would silently ignore them).
    """
    if getattr(mapping, "takes_height", False):
        return mapping(genes, height_mm)
    if height_mm is not None:
        raise ValueError("this model takes no slice height (its spec has no slice_height)")
    return mapping(genes)


class GeneMapping(nn.Module):
    """Two fully connected layers: genes (B, G) → φ(g) (B, code)."""

    def __init__(self, n_genes: int, hidden: int, code: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_genes, hidden), nn.LeakyReLU(LEAK), nn.Linear(hidden, code)
        )
        self.n_genes = n_genes

    def forward(self, genes: torch.Tensor) -> torch.Tensor:
        assert_shape(genes, (None, self.n_genes), "genes")
        return self.layers(genes)


def is_shrinkage(value: float) -> bool:
    """Whether ``value`` is a score shrinkage :meth:`ProjectedGeneMapping.unseen` takes:
    in (0, MAX_SHRINKAGE] (0 is what :meth:`ProjectedGeneMapping.shrinkage` gives when no
    component was kept)."""
    return 0.0 < value <= MAX_SHRINKAGE


def check_shrinkage(shrinkage: float) -> float:
    """``shrinkage`` as a float, if it is one :meth:`ProjectedGeneMapping.unseen` takes."""
    if not is_shrinkage(shrinkage):
        raise ValueError(f"a score shrinkage must lie in (0, {MAX_SHRINKAGE}], got {shrinkage}")
    return float(shrinkage)


class ProjectedGeneMapping(nn.Module):
    """genes (B, G) → fixed whitened principal components (B, k) → two FC layers → (B, code).

    The projection is a buffer (saved with the weights, never trained), fitted once on the
    training donors' profiles by :meth:`fit`: with a few dozen donors a G → hidden layer
    can memorise each donor's profile, while k ≪ donors components make every code a
    smooth function of where a donor sits among the others. Components beyond the number
    the donors can support (donors − 1) stay zero.
    """

    def __init__(self, n_genes: int, components: int, hidden: int, code: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_genes))
        self.register_buffer("components", torch.zeros(components, n_genes))
        self.layers = nn.Sequential(
            nn.Linear(components, hidden), nn.LeakyReLU(LEAK), nn.Linear(hidden, code)
        )
        self.n_genes = n_genes
        self.score_divisor = 1.0  # set only inside :meth:`unseen`; never saved

    @torch.no_grad()
    def fit(self, genes: torch.Tensor) -> None:
        """Fit mean and whitened components on (donors, G) profiles, one row per donor
        (``torch.pca_lowrank`` would add randomness for no gain at this size: exact SVD)."""
        genes = genes.to(self.mean.device, torch.float32)
        mean, singular, vectors = _principal_axes(genes)
        kept = min(len(self.components), int((singular > 1e-6 * singular[0]).sum()))
        scale = singular[:kept] / max(len(genes) - 1, 1) ** 0.5  # each component's SD
        self.mean.copy_(mean)
        self.components.zero_()
        self.components[:kept] = vectors[:kept] / scale[:, None]

    def project(self, genes: torch.Tensor) -> torch.Tensor:
        assert_shape(genes, (None, self.n_genes), "genes")
        scores = (genes - self.mean.to(genes.dtype)) @ self.components.to(genes.dtype).T
        return scores if self.score_divisor == 1.0 else scores / self.score_divisor

    @contextmanager
    def unseen(self, shrinkage: float) -> Iterator[None]:
        """Within the block, every profile's whitened scores are divided by ``shrinkage``
        (:meth:`shrinkage` of the training donors): the profiles are unseen donors', whose
        scores in the training donors' components come out shrunk toward 0, and this puts
        them back on the training donors' scale (the bias-adjusted scores of Lee, Zou &
        Wright 2010; issue 16's eighteenth round). Not for a training donor's own profile,
        whose scores are not shrunk."""
        saved, self.score_divisor = self.score_divisor, check_shrinkage(shrinkage)
        try:
            yield
        finally:
            self.score_divisor = saved

    def forward(self, genes: torch.Tensor) -> torch.Tensor:
        return self.layers(self.project(genes))

    @torch.no_grad()
    def cross_fitted(self, genes: torch.Tensor) -> torch.Tensor:
        """Each donor's profile (rows of ``genes``, the donors :meth:`fit` saw) as the
        other donors' components see it: its projection onto their mean and first k
        principal directions, back in gene space.

        With a few dozen donors and hundreds of genes the components fit each donor's own
        noise: an unseen donor's whitened scores come out about half as large as a
        training donor's (held-out SD 0.4–0.65 per component on the twin, training 1 by
        construction; the shrinkage of new samples' PC scores in high dimensions, Lee, Zou
        & Wright 2010). Training on these leave-one-out views puts the training codes where
        unseen donors' codes fall (cross-fitting)."""
        genes = genes.to(torch.float64)
        kept = self._kept()
        views = torch.empty_like(genes)
        for donor, (mean, _, vectors) in enumerate(_leave_one_out_axes(genes)):
            basis = vectors[: min(kept, len(genes) - 2)]
            views[donor] = mean + ((genes[donor] - mean) @ basis.T) @ basis
        return views.to(self.mean.dtype)

    @torch.no_grad()
    def shrinkage(self, genes: torch.Tensor) -> float:
        """How much smaller an unseen donor's whitened scores are than a training donor's,
        estimated by leave-one-out on ``genes`` (the donors :meth:`fit` saw): the RMS over
        donors and fitted components of each donor's scores in the whitened components of
        the other donors (in-sample it is √((n − 1)/n) ≈ 1 by construction).

        One factor for all components: per component the leave-one-out components rotate
        among near-equal variances, so their factors are noise (twin seed 3: 0.22 for the
        first component where held-out donors' SD is 0.57), while the total is stable
        (median norm 1.35 shrunk against 1.37 held out, training 3.03)."""
        genes = genes.to(torch.float64)
        kept = self._kept()
        squares, count = 0.0, 0
        for donor, (mean, singular, vectors) in enumerate(_leave_one_out_axes(genes)):
            k = min(kept, int((singular > 1e-6 * singular[0]).sum()))  # as fit keeps them
            scale = singular[:k] / max(len(genes) - 2, 1) ** 0.5
            squares += float(((((genes[donor] - mean) @ vectors[:k].T) / scale) ** 2).sum())
            count += k
        return (squares / max(count, 1)) ** 0.5

    @torch.no_grad()
    def shrunk(self, genes: torch.Tensor) -> torch.Tensor:
        """The training donors' profiles (rows of ``genes``, the donors :meth:`fit` saw)
        moved along the fitted components so that their whitened scores are multiplied
        by :meth:`shrinkage`, and unchanged outside them: the training codes keep each
        donor's direction but get the spread unseen donors' codes have. Unlike
        :meth:`cross_fitted` no part of a donor's own profile is thrown away."""
        factor = self.shrinkage(genes)
        scores = self.project(genes)
        return genes - ((1 - factor) * scores) @ self._unit_directions(genes.dtype)

    def _kept(self) -> int:
        """How many components :meth:`fit` filled (the rest stay zero)."""
        return int((self.components.abs().sum(dim=1) > 0).sum())

    def _unit_directions(self, dtype: torch.dtype) -> torch.Tensor:
        """(k, G): row k moves a profile by one unit of component k and by none of the
        others (row k of the buffer is v_k / s_k, so row k / |row k|² = s_k v_k)."""
        components = self.components.to(dtype)
        squared = (components**2).sum(dim=1, keepdim=True)
        return torch.where(squared > 0, components / squared.clamp_min(1e-30), 0.0)

    def jitter(self, genes: torch.Tensor, sd: float) -> torch.Tensor:
        """``genes`` moved so that their projection moves by N(0, sd²) in every fitted
        component, and not at all outside them: noise in units of the training donors'
        spread, along the directions they span (vicinal training, as for continuous
        labels in CcGAN, Ding et al. 2021). Uses the global torch generator."""
        directions = self._unit_directions(genes.dtype)
        noise = torch.randn(len(genes), len(directions), device=genes.device, dtype=genes.dtype)
        return genes + (sd * noise) @ directions

    def input_weight(self) -> torch.Tensor:
        """(hidden, G): the first layer seen from the genes (its weights times the
        projection), the counterpart of :class:`GeneMapping`'s first layer."""
        return self.layers[0].weight @ self.components


def _principal_axes(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean, singular values, principal directions as rows) of ``rows`` (n, G)."""
    mean = rows.mean(dim=0)
    _, singular, vectors = torch.linalg.svd(rows - mean, full_matrices=False)
    return mean, singular, vectors


def _leave_one_out_axes(rows: torch.Tensor):
    """For each row of ``rows`` (n, G): :func:`_principal_axes` of the other n − 1 rows."""
    for row in range(len(rows)):
        yield _principal_axes(torch.cat([rows[:row], rows[row + 1 :]]))


def orthogonal_init(module: nn.Module) -> None:
    """Orthogonal weights for every conv and linear layer (the prototype's choice)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.orthogonal_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
