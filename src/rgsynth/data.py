"""Training data from a sealed ``prepare`` cache, and nothing else.

Each example is one nodule slice of a subject with genes, with everything the paper's
losses need: the real image x and mask m, the subject's genes g, a background slice b
for the generator, a mismatched mask m̄ and mismatched genes ḡ from other subjects.
The random choices of an example depend only on (seed, epoch, index), so data order and
content survive a resume and do not depend on the number of processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rgsynth.errors import CacheError
from rgsynth.layout import GENES_FILENAME
from rgsynth.prepare.cache import Cache


@dataclass
class CacheSplit:
    """One split of a cache in memory.

    Attributes:
        nodule_image, nodule_mask: (N, H, W) float32 in [-1, 1] and {0, 1}.
        nodule_subject: (N,) index into ``subject_ids`` of each nodule slice.
        nodule_height_mm: (N,) float32 height of each nodule slice above its nodule's
            centroid (the VOI centre), in mm.
        background_image: (M, H, W) float32, from every subject of the split.
        genes: (S, G) float32 standardised expression, row per entry of ``subject_ids``.
        subject_ids: subjects with genes and nodule slices in this split.
        gene_names: the G gene names.
        fingerprint: identity of the cache (settings and inputs).
        hu_window: the HU range its [-1, 1] images map onto.
    """

    nodule_image: np.ndarray
    nodule_mask: np.ndarray
    nodule_subject: np.ndarray
    nodule_height_mm: np.ndarray
    background_image: np.ndarray
    genes: np.ndarray
    subject_ids: list[str]
    gene_names: list[str]
    fingerprint: str
    hu_window: tuple[float, float]

    @property
    def image_size(self) -> int:
        return int(self.nodule_image.shape[-1])


def cache_fingerprint(manifest: dict) -> str:
    return f"{manifest['settings_fingerprint']}-{manifest['inputs_fingerprint']}"


def _complete_cache(cache_root: Path) -> Cache:
    cache = Cache(cache_root)
    if not cache.is_complete:
        raise CacheError(f"{cache_root}: not a complete rgsynth cache; run `rgsynth prepare` first")
    return cache


def _paired_genes(
    cache_root: Path, manifest: dict, split: str
) -> tuple[list[str], np.ndarray, list[str]]:
    """The split's subjects with genes (manifest order), their (S, G) float32 expression,
    and the gene names: ``genes.npz`` opened once."""
    with np.load(Path(cache_root) / GENES_FILENAME) as stored:
        row_of = {str(s): n for n, s in enumerate(stored["subject_ids"])}
        values = stored["values"]
        gene_names = [str(g) for g in stored["gene_names"]]
    paired = [
        s["subject_id"]
        for s in manifest["subjects"]
        if s["split"] == split and s["subject_id"] in row_of
    ]
    return paired, values[[row_of[s] for s in paired]].astype(np.float32), gene_names


def split_genes(cache_root: Path, split: str = "train") -> tuple[list[str], np.ndarray]:
    """The subjects of one split that have genes and their (S, G) float32 standardised
    expression, in :func:`load_split`'s order, without reading a single image.

    Raises:
        CacheError: no complete cache there.
    """
    paired, genes, _ = _paired_genes(cache_root, _complete_cache(cache_root).manifest(), split)
    return paired, genes


def load_split(cache_root: Path, split: str = "train") -> CacheSplit:
    """Read one split of the cache at ``cache_root`` into memory.

    Raises:
        CacheError: no complete cache there, or fewer than two subjects with genes.
    """
    cache = _complete_cache(cache_root)
    manifest = cache.manifest()
    members = [s for s in manifest["subjects"] if s["split"] == split]
    paired, genes, gene_names = _paired_genes(cache_root, manifest, split)
    owner_of = {s: n for n, s in enumerate(paired)}
    images, masks, owners, heights, backgrounds = [], [], [], [], []
    for subject in members:
        shard = cache.load_shard(subject["subject_id"])
        backgrounds.append(shard["background_image"])
        if subject["subject_id"] in owner_of:
            images.append(shard["nodule_image"])
            masks.append(shard["nodule_mask"])
            heights.append(shard["nodule_slice_mm"])
            owners.append(np.full(len(shard["nodule_image"]), owner_of[subject["subject_id"]]))
    if len(paired) < 2:
        raise CacheError(
            f"{cache_root}: the {split} split has {len(paired)} subjects with genes and nodule "
            "slices; at least 2 are needed (mismatched genes come from another subject)"
        )
    return CacheSplit(
        nodule_image=np.concatenate(images).astype(np.float32),
        nodule_mask=np.concatenate(masks).astype(np.float32),
        nodule_subject=np.concatenate(owners),
        nodule_height_mm=np.concatenate(heights).astype(np.float32),
        background_image=np.concatenate(backgrounds).astype(np.float32),
        genes=genes,
        subject_ids=paired,
        gene_names=gene_names,
        fingerprint=cache_fingerprint(manifest),
        hu_window=tuple(manifest["settings"]["hu_window"]),
    )


class NoduleDataset(torch.utils.data.Dataset):
    """Examples over a :class:`CacheSplit`; call :meth:`set_epoch` each epoch. With
    ``slice_height`` each example also carries ``height_mm``, its slice's height above
    the nodule's centroid (for a model told it; the mismatched genes keep that height)."""

    def __init__(self, data: CacheSplit, seed: int = 0, slice_height: bool = False) -> None:
        self.data, self.seed, self.epoch = data, seed, 0
        self.slice_height = slice_height
        self._slices_of = [
            np.flatnonzero(data.nodule_subject == s) for s in range(len(data.subject_ids))
        ]

    def __len__(self) -> int:
        return len(self.data.nodule_image)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        data = self.data
        rng = np.random.default_rng([self.seed, self.epoch, index])
        subject = int(data.nodule_subject[index])
        other = int(rng.integers(len(data.subject_ids) - 1))
        other += other >= subject  # any subject but this one
        wrong_slice = int(rng.choice(self._slices_of[other]))
        other_genes = int(rng.integers(len(data.subject_ids) - 1))
        other_genes += other_genes >= subject
        background = int(rng.integers(len(data.background_image)))
        example = {
            "image": torch.from_numpy(data.nodule_image[index][None]),
            "mask": torch.from_numpy(data.nodule_mask[index][None]),
            "genes": torch.from_numpy(data.genes[subject]),
            "background": torch.from_numpy(data.background_image[background][None]),
            "wrong_mask": torch.from_numpy(data.nodule_mask[wrong_slice][None]),
            "wrong_genes": torch.from_numpy(data.genes[other_genes]),
        }
        if self.slice_height:
            example["height_mm"] = torch.tensor(float(data.nodule_height_mm[index]))
        return example


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}
