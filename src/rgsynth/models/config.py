"""Widths and sizes of a GAN (imports nothing heavy: configs are read before torch is)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ARCHITECTURE = "xu"  # the paper's model: ModelConfig's default
DEFAULT_RECIPE = "focus"  # what `rgsynth train` and the demo train unless told


@dataclass(frozen=True)
class ModelConfig:
    """Widths and sizes of the paper's generator and discriminators (DESIGN.md §2).

    Attributes:
        architecture: the name of a registered :class:`rgsynth.models.spec.ModelSpec`:
            ``xu`` (the paper's fusion-block GAN, this class's default so that a config
            built in Python is the published model), ``focus`` (the improved recipe:
            ``DEFAULT_RECIPE``, what ``rgsynth train`` and the demo train unless told),
            ``focus-height`` (``focus`` told each slice's height), ``focus-daug``
            (``focus`` with its discriminators shown randomly shifted inputs),
            ``focus-outline`` (``focus`` with G's mask drawn as a star-shaped outline), or
            ``mcgan`` (the MC-GAN baseline of Park et al., BMVC 2018, with genes in place
            of text).
        image_size: edge of the square slices in pixels (the cache's ``size``: 64 or 128).
        n_genes: length of the gene vector (the cache's kept genes; 5172 on the real data).
        base_channels: channels at full resolution; each halving of the resolution doubles
            them, up to ``max_channels``.
        max_channels: cap on channels at the coarse levels.
        bottleneck_size: edge of the coarsest feature map (8 in the prototype).
        gene_hidden: width of the gene mapping network's hidden layer (prototype: 512).
        gene_code: length of φ(g) (paper: 128).
        noise_dim: length of the noise vector n (prototype: 10).
    """

    architecture: str = DEFAULT_ARCHITECTURE
    image_size: int = 64
    n_genes: int = 500
    base_channels: int = 32
    max_channels: int = 256
    bottleneck_size: int = 8
    gene_hidden: int = 512
    gene_code: int = 128
    noise_dim: int = 10

    def __post_init__(self) -> None:
        from rgsynth.models.registry import architecture_names  # the registry builds nets

        if self.architecture not in architecture_names():
            raise ValueError(
                f"architecture must be one of {', '.join(architecture_names())}, "
                f"got {self.architecture!r}"
            )
        size, bottom = self.image_size, self.bottleneck_size
        if not self.takes_image_size(size, bottom):
            raise ValueError(
                f"image_size ({size}) must be bottleneck_size ({bottom}) times a power of two"
            )
        widths = ("n_genes", "base_channels", "max_channels", "gene_hidden", "gene_code")
        if bad := [f"{name} {getattr(self, name)}" for name in widths if getattr(self, name) < 1]:
            raise ValueError(f"model sizes must be positive, got {', '.join(bad)}")

    @classmethod
    def takes_image_size(cls, size: int, bottleneck_size: int | None = None) -> bool:
        """Whether the networks can be built for ``size``: each level doubles the
        bottleneck's edge, so the image edge is the bottleneck's times a power of two."""
        bottom = cls.bottleneck_size if bottleneck_size is None else bottleneck_size
        if bottom < 1 or size < bottom or size % bottom:
            return False
        ratio = size // bottom
        return ratio & (ratio - 1) == 0

    @classmethod
    def image_sizes(cls, low: int, high: int) -> list[int]:
        """The edges in ``low..high`` the default bottleneck takes, e.g. 16, 32, …, 512."""
        return [size for size in range(low, high + 1) if cls.takes_image_size(size)]

    @property
    def resolutions(self) -> list[int]:
        """Feature-map edges from the bottleneck up to the image, e.g. [8, 16, 32, 64]."""
        sizes = [self.bottleneck_size]
        while sizes[-1] < self.image_size:
            sizes.append(sizes[-1] * 2)
        return sizes

    def channels(self, resolution: int) -> int:
        return min(self.base_channels * self.image_size // resolution, self.max_channels)

    @property
    def style_dim(self) -> int:
        return self.gene_code + self.noise_dim
