"""A trained run as a synthesis tool: its EMA generator, checked against its cache.

The generator is the EMA copy (what the paper saves and uses). It runs in eval mode, so
batch normalisation uses its running statistics and every nodule depends on its own
background, genes and noise only, never on what else shares its batch.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rgsynth.config import MAP_WEIGHTS, TrainConfig
from rgsynth.data import CacheError, cache_fingerprint, split_genes
from rgsynth.layout import CHECKPOINT_PATH, MAP_SNAPSHOT_PATH
from rgsynth.models.blocks import check_shrinkage, is_shrinkage
from rgsynth.models.registry import get_spec
from rgsynth.prepare.cache import Cache
from rgsynth.train.checkpoint import CheckpointError, load_checkpoint, load_map_snapshot


@dataclass
class TrainedRun:
    """Attributes:
    run_dir: the run folder.
    cache_root: the cache it was trained on (checked by fingerprint).
    config: the training config stored in the checkpoint.
    generator: the EMA generator, eval mode, on CPU.
    step: the training step of the checkpoint.
    cache_fingerprint: identity of that cache (settings and inputs).
    snapshot: the EMA generator the run kept at ``config.map_snapshot`` of its budget
        (eval mode, on CPU), which the perturbation map is read from (see
        :meth:`map_generators`); None when the run kept none.
    snapshot_step: the training step of ``snapshot``.
    """

    run_dir: Path
    cache_root: Path
    config: TrainConfig
    generator: nn.Module
    step: int
    cache_fingerprint: str
    snapshot: nn.Module | None = None
    snapshot_step: int | None = None
    _training: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _shrinkage: tuple[float | None] | None = field(
        default=None, init=False, repr=False, compare=False
    )  # (the estimate,) once made: None is an estimate too (no component kept)

    def map_generators(self, weights: str = "both") -> list[tuple[str, int, nn.Module]]:
        """(which weights, step, generator) the perturbation map is read from, for
        ``MapSettings.map_weights``: the final EMA weights and the map snapshot (``both``),
        the snapshot alone (``snapshot``), or the final weights (``final``, and any run
        that kept no snapshot). Anything else is a ValueError (a typo would read both)."""
        if weights not in MAP_WEIGHTS:
            raise ValueError(
                f"map weights must be one of {', '.join(MAP_WEIGHTS)}, got {weights!r}"
            )
        final = ("final", self.step, self.generator)
        if weights == "final" or self.snapshot is None or self.snapshot_step is None:
            return [final]
        kept = ("snapshot", self.snapshot_step, self.snapshot)
        return [kept] if weights == "snapshot" else [final, kept]

    def unseen_shrinkage(self, training: np.ndarray | None = None) -> float | None:
        """How much smaller an unseen donor's whitened gene scores come out than a training
        donor's, estimated by leave-one-out on the training donors of the run's cache
        (:meth:`ProjectedGeneMapping.shrinkage`); None for a generator whose genes pass
        through no fitted components (``xu2019``, MC-GAN), which has nothing to correct,
        and where no component was kept. ``training``: the training donors' profiles, by
        default :meth:`training_profiles` (that estimate is computed once per run)."""
        if not self.has_fitted_components:
            return None
        if training is None and self._shrinkage is not None:
            return self._shrinkage[0]
        given = self.training_profiles() if training is None else training
        factor = self.generator.mapping.shrinkage(torch.as_tensor(given, dtype=torch.float32))
        factor = factor if is_shrinkage(factor) else None
        if training is None:
            self._shrinkage = (factor,)
        return factor

    @property
    def has_fitted_components(self) -> bool:
        """Whether the generator's genes pass through components fitted on the training
        donors (whose unseen donors' scores :meth:`unseen_shrinkage` can correct)."""
        return hasattr(getattr(self.generator, "mapping", None), "unseen")

    def unseen_synthesizers(
        self, generators: Sequence[nn.Module], strength: float
    ) -> list[Synthesizer] | None:
        """One :class:`Synthesizer` per generator (the run's own: its EMA weights, its map
        snapshot) that paints unseen donors' profiles with their whitened scores divided
        by :meth:`unseen_shrinkage` to the power ``strength`` (1: the full correction;
        the product's 1/2, ``config.UNSHRINK_STRENGTH``) and the training donors' own
        profiles as they are. None where there is nothing to correct (no fitted
        components: the training split is then not read; or no component kept)."""
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"an unshrink strength must be in (0, 1], got {strength}")
        if not self.has_fitted_components:
            return None
        shrinkage, training = self.unseen_shrinkage(), self.training_profiles()
        if shrinkage is None:
            return None
        return [
            Synthesizer(generator, unseen_shrinkage=shrinkage**strength, seen_profiles=training)
            for generator in generators
        ]

    def training_profiles(self) -> np.ndarray:
        """(donors, G): the gene profiles the run trained on (its cache's training split,
        in the trainer's order), read once (the genes alone, no image)."""
        if self._training is None:
            self._training = split_genes(self.cache_root, "train")[1]
        return self._training


def load_run(run_dir: Path, cache_root: Path | None = None) -> TrainedRun:
    """The run's EMA generator, and the cache it belongs to.

    Args:
        run_dir: a folder written by ``rgsynth train``.
        cache_root: its cache; by default the one recorded in the checkpoint.

    Raises:
        CheckpointError: no usable checkpoint, or one made from another cache.
        CacheError: no complete cache at ``cache_root``.
    """
    path = Path(run_dir) / CHECKPOINT_PATH
    state = load_checkpoint(path)
    if cache_root is None:
        if "cache_root" not in state:
            raise CheckpointError(f"{path}: records no cache; pass --cache CACHE")
        cache_root = Path(state["cache_root"])
    cache = Cache(Path(cache_root))
    if not cache.is_complete:
        raise CacheError(f"{cache_root}: not a complete rgsynth cache (the run's cache is needed)")
    fingerprint = cache_fingerprint(cache.manifest())
    if state["cache_fingerprint"] != fingerprint:
        raise CheckpointError(
            f"{path}: made from another cache ({state['cache_fingerprint']}; {cache_root} is "
            f"{fingerprint}); give the cache it was trained on with --cache"
        )
    try:
        config = TrainConfig.from_dict(state["config"])
    except ValueError as error:  # an architecture this installation does not know, say
        raise CheckpointError(f"{path}: {error}") from None
    spec = get_spec(config.model.architecture)
    generator = spec.build(config.model).generator
    generator.load_state_dict(state["generator_ema"])
    generator.eval().requires_grad_(False)
    snapshot, snapshot_step = None, None
    snapshot_path = Path(run_dir) / MAP_SNAPSHOT_PATH
    if snapshot_path.is_file():
        kept = load_map_snapshot(snapshot_path)
        if kept["cache_fingerprint"] != fingerprint:
            raise CheckpointError(f"{snapshot_path}: made from another cache than {path}")
        snapshot = copy.deepcopy(generator)  # (no new build: draws nothing from torch's RNG)
        snapshot.load_state_dict(kept["generator_ema"])
        snapshot.eval().requires_grad_(False)
        snapshot_step = int(kept["step"])
    return TrainedRun(
        run_dir=Path(run_dir),
        cache_root=Path(cache_root),
        config=config,
        generator=generator,
        step=int(state["step"]),
        cache_fingerprint=fingerprint,
        snapshot=snapshot,
        snapshot_step=snapshot_step,
    )


def load_run_pair(
    run_dir: Path, other_dir: Path | None, cache_root: Path | None = None
) -> tuple[TrainedRun, TrainedRun | None]:
    """A run and, optionally, a second run to compare with on the same cache.

    Raises:
        CheckpointError: as :func:`load_run`, or the second run was trained on another cache.
    """
    run = load_run(run_dir, cache_root)
    if other_dir is None:
        return run, None
    other = load_run(other_dir, run.cache_root)
    if other.cache_fingerprint != run.cache_fingerprint:
        raise CheckpointError(f"{other_dir}: trained on another cache than {run_dir}")
    return run, other


@dataclass
class Synthesis:
    """A batch of syntheses, NumPy float32, each (N, S, S): image in [-1, 1], mask and
    weight map in [0, 1]."""

    image: np.ndarray
    mask: np.ndarray
    weight_map: np.ndarray


def assemble(count: int, parts: Iterable[tuple[np.ndarray, Synthesis]]) -> Synthesis:
    """One :class:`Synthesis` of ``count`` nodules from parts painted apart, each (its
    rows among the ``count``, as indices or a boolean mask; the syntheses of those rows,
    in that order). A nodule does not depend on what shares its batch (its noise comes
    from its own seed, and eval mode has no batch statistics), so subsets painted apart
    and put back in order are what one batch would have painted.

    Example:
        >>> part = lambda v: Synthesis(*(np.full((1, 2, 2), v, np.float32),) * 3)
        >>> assemble(2, [([1], part(1.0)), ([0], part(0.0))]).image[:, 0, 0].tolist()
        [0.0, 1.0]
    """
    whole: dict[str, np.ndarray] = {}
    for rows, part in parts:
        for name, values in vars(part).items():
            if name not in whole:
                whole[name] = np.empty((count, *values.shape[1:]), values.dtype)
            whole[name][rows] = values
    if not whole:
        raise ValueError(f"no part painted any of the {count} nodules")
    return Synthesis(**whole)


class SeenProfiles:
    """The training donors' profiles, to tell one of them (painted as it is) from any
    other profile (an unseen donor's, or one moved or edited): equal bit for bit as
    float32. None: no profile is seen."""

    def __init__(self, profiles: np.ndarray | None = None) -> None:
        self._keys = frozenset(
            () if profiles is None else (row.tobytes() for row in np.asarray(profiles, np.float32))
        )

    def __contains__(self, profile: np.ndarray) -> bool:
        return np.asarray(profile, np.float32).tobytes() in self._keys

    def rows(self, profiles: np.ndarray) -> np.ndarray:
        """(N,) whether each row of ``profiles`` (N, G) is a training donor's."""
        return np.array([row in self for row in np.asarray(profiles, np.float32)], bool)


def nodule_noise(seed: int, noise_dim: int, condition_sample_dim: int = 0) -> torch.Tensor:
    """(noise_dim + condition_sample_dim,) standard normal noise that depends on ``seed``
    alone: the generator's noise, then the draw of a sampled condition (MC-GAN's ε)."""
    return torch.randn(
        noise_dim + condition_sample_dim, generator=torch.Generator().manual_seed(seed)
    )


class Synthesizer:
    """Runs a generator on batches of (background patch, genes, noise seed).

    Args:
        generator: an eval-mode generator (see :func:`load_run`).
        precision: ``fp32`` or ``bf16`` (autocast; outputs are returned as float32).
        device: a torch device string.
        batch_size: nodules per forward pass.
        unseen_shrinkage: divide an unseen profile's whitened gene scores by this
            (:meth:`TrainedRun.unseen_shrinkage`, or a power of it:
            :meth:`TrainedRun.unseen_synthesizers`); None: paint every profile as it is.
            Only for a generator with fitted gene components.
        seen_profiles: (donors, G) the training donors' profiles
            (:meth:`TrainedRun.training_profiles`): a profile equal to one of them bit for
            bit is painted as it is; any other (a held-out donor's, a moved profile) is
            unseen. None: every profile is unseen.
    """

    def __init__(
        self,
        generator: nn.Module,
        precision: str = "fp32",
        device: str = "cpu",
        batch_size: int = 32,
        unseen_shrinkage: float | None = None,
        seen_profiles: np.ndarray | None = None,
    ) -> None:
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, not {precision!r}")
        if unseen_shrinkage is not None:
            if not hasattr(generator.mapping, "unseen"):
                raise ValueError(
                    f"{generator.config.architecture}: its genes pass through no fitted "
                    "components, so it has no unseen donors' scores to unshrink"
                )
            check_shrinkage(unseen_shrinkage)  # refused here, not at the first painting
        self.unseen_shrinkage = unseen_shrinkage
        self.seen = SeenProfiles(seen_profiles)
        self.device = torch.device(device)
        self.generator = generator.to(self.device)
        self.precision, self.batch_size = precision, batch_size
        spec = get_spec(generator.config.architecture)
        self.noise_dim = spec.noise_dim(generator.config)
        # A sampled condition (MC-GAN's) is drawn from the seed: a nodule stays independent
        # of what else shares its batch.
        self.condition_sample_dim = spec.condition_sample_dim(generator.config)
        self.slice_height = spec.slice_height

    @torch.no_grad()
    def __call__(
        self,
        backgrounds: np.ndarray,
        genes: np.ndarray,
        seeds: list[int],
        heights_mm: np.ndarray | None = None,
    ) -> Synthesis:
        """Args:
        backgrounds: (N, S, S) patches in [-1, 1].
        genes: (N, G) standardised expression.
        seeds: N noise seeds.
        heights_mm: (N,) the slice height above the nodule's centroid to paint at, for a
            model told slice heights (``focus-height``); None: the centroid's slice (the
            equator). Models without slice heights paint whole-nodule slices as they
            learnt them and take none: heights given to them are not used.
        """
        if heights_mm is not None and len(heights_mm) != len(seeds):
            raise ValueError(f"{len(heights_mm)} slice heights for {len(seeds)} nodules")
        if self.unseen_shrinkage is None:
            return self._paint(backgrounds, genes, seeds, heights_mm)
        # Seen and unseen profiles painted apart and put back in order (see assemble).
        profiles = np.asarray(genes, np.float32)
        seen = self.seen.rows(profiles)

        def paint(rows: np.ndarray, unseen: bool) -> Synthesis:
            heights = None if heights_mm is None else np.asarray(heights_mm)[rows]
            with self.generator.mapping.unseen(self.unseen_shrinkage) if unseen else nullcontext():
                return self._paint(
                    backgrounds[rows], profiles[rows], [seeds[i] for i in rows], heights
                )

        groups = ((np.flatnonzero(seen), False), (np.flatnonzero(~seen), True))
        return assemble(len(seeds), ((rows, paint(rows, u)) for rows, u in groups if len(rows)))

    def _paint(
        self,
        backgrounds: np.ndarray,
        genes: np.ndarray,
        seeds: list[int],
        heights_mm: np.ndarray | None,
    ) -> Synthesis:
        parts = []
        for start in range(0, len(seeds), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            heights = None if heights_mm is None else heights_mm[chunk]
            parts.append(self._batch(backgrounds[chunk], genes[chunk], seeds[chunk], heights))
        return Synthesis(*(np.concatenate([p[k] for p in parts]) for k in range(3)))

    def _batch(
        self,
        backgrounds: np.ndarray,
        genes: np.ndarray,
        seeds: list[int],
        heights_mm: np.ndarray | None = None,
    ) -> tuple[np.ndarray, ...]:
        background = torch.as_tensor(backgrounds, dtype=torch.float32)[:, None]  # (B, 1, S, S)
        draws = [nodule_noise(s, self.noise_dim, self.condition_sample_dim) for s in seeds]
        stacked = torch.stack(draws)
        noise, sample = stacked[:, : self.noise_dim], stacked[:, self.noise_dim :]  # (B, ·)
        inputs = [
            background.to(self.device),
            torch.as_tensor(genes, dtype=torch.float32).to(self.device),
            noise.to(self.device),
        ]
        if self.condition_sample_dim:
            inputs.append(sample.to(self.device))
        told = {}
        if self.slice_height and heights_mm is not None:
            told["height_mm"] = torch.as_tensor(heights_mm, dtype=torch.float32).to(self.device)
        with torch.autocast(
            device_type=self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        ):
            out = self.generator(*inputs, **told)
        return tuple(t[:, 0].float().cpu().numpy() for t in (out.image, out.mask, out.weight_map))
