"""What the maps read from a cache: every subject with genes and a nodule, in one place.

Each subject is represented by its widest nodule slice (the largest mask area among its
nodule slices) and its standardised gene profile. All splits are used: the maps describe
the cohort; the evaluation keeps to the validation split where it matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rgsynth.analysis.features import FeatureExtractor, largest_slice
from rgsynth.analysis.readout import load_readout
from rgsynth.config import PrepareConfig
from rgsynth.intensity import unit_to_hu
from rgsynth.layout import HOLDOUT_SPLIT
from rgsynth.prepare.cache import Cache
from rgsynth.synthesize.profiles import CacheGenes


@dataclass
class CohortView:
    """Attributes:
    subject_ids: subjects with genes and at least one nodule slice.
    split: each subject's split (train, val, or holdout: donors kept out of both).
    genes: (S, G) standardised expression; gene_names: the G names.
    nodule_hu: (S, size, size) widest nodule slice in HU; nodule_mask: its mask.
    pixel_mm: the slices' pixel size.
    """

    subject_ids: list[str]
    split: list[str]
    genes: np.ndarray
    gene_names: list[str]
    nodule_hu: np.ndarray
    nodule_mask: np.ndarray
    pixel_mm: float

    def scoring_split(self, minimum: int = 3) -> str:
        """Where donors are scored: the held-out donors when the cache has at least
        ``minimum`` (``synth-cohort --holdout``), else the validation split, else all."""
        for split in (HOLDOUT_SPLIT, "val"):
            if self.split.count(split) >= minimum:
                return split
        return "all"

    def split_genes(self, split: str, minimum: int = 3) -> np.ndarray:
        """The profiles of one split's subjects; every subject's when the split has fewer
        than ``minimum`` (a tiny cohort)."""
        chosen = np.array(self.split) == split
        return self.genes[chosen] if chosen.sum() >= minimum else self.genes

    def features(self) -> pd.DataFrame:
        """Image features and trait readouts of each subject's widest nodule slice (rows:
        subject IDs)."""
        table = FeatureExtractor(self.pixel_mm).table(
            self.nodule_hu, self.nodule_mask, self.subject_ids
        )
        return load_readout().apply(table)


def load_cohort(cache_root: Path) -> CohortView:
    cache = Cache(Path(cache_root))
    manifest = cache.manifest()
    config = PrepareConfig.from_dict(manifest["settings"])
    genes = CacheGenes.load(cache_root)
    ids, splits, images, masks = [], [], [], []
    for subject in manifest["subjects"]:
        sid = subject["subject_id"]
        if sid not in genes.subject_ids or not subject.get("n_nodule_slices"):
            continue
        shard = cache.load_shard(sid)
        widest = largest_slice(shard["nodule_mask"])
        ids.append(sid)
        splits.append(subject["split"])
        images.append(unit_to_hu(shard["nodule_image"][widest], config.hu_window))
        masks.append(shard["nodule_mask"][widest].astype(bool))
    rows = [genes.subject_ids.index(s) for s in ids]
    return CohortView(
        subject_ids=ids,
        split=splits,
        genes=genes.values[rows].astype(np.float32),
        gene_names=genes.names,
        nodule_hu=np.stack(images),
        nodule_mask=np.stack(masks),
        pixel_mm=config.voxel_mm,
    )
