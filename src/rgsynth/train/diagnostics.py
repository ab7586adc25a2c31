"""What the discriminators have learned, measured on real slices (issue 16's diagnostics).

- **D_ISG's shortcut**: how well D_ISG tells a real slice's own genes from another donor's
  (AUROC of its score, matched vs mismatched), on training and on unseen donors, with the
  image as is and with the nodule (mask grown by 3 px) filled with lung. High on training
  donors with the nodule filled means D_ISG matches genes to the donor's anatomy, which a
  generator cannot win by painting a nodule; at chance on unseen donors, it gives the
  generator no signal that generalises. (Location is gene-driven in the twin, so some
  anatomy signal is legitimate.)
- **D_I's overfitting**: its mean output on training reals minus on unseen reals (least
  squares: 1 is "real"); ADA's r_t asks the same question of the sign.

The trainer writes them to ``RUN/diagnostics.jsonl`` at every checkpoint.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from rgsynth.data import CacheSplit
from rgsynth.models.focus import FOCUS_GROW_PX, grown_mask, lung_value


def _fill_nodule(
    image: torch.Tensor, mask: torch.Tensor, grow_px: int = FOCUS_GROW_PX
) -> torch.Tensor:
    """The inverse of D_ISG's view: the nodule region (focus's growth) filled with lung,
    the rest kept."""
    grown = grown_mask(mask, grow_px)
    return image * (1 - grown) + lung_value() * grown


@torch.no_grad()
def _scores(
    discriminators: nn.Module, image, mask, genes, heights: dict
) -> tuple[np.ndarray, np.ndarray]:
    features = discriminators.image_features(image)
    pair = discriminators.pair_features(image, features, mask)
    gene_pair = discriminators.gene_pair_features(image, mask, pair)
    isg = discriminators.score_isg(gene_pair, genes, **heights).float().cpu().numpy()
    return isg, discriminators.score_i(features).float().cpu().numpy()


def _sample(data: CacheSplit, n: int, seed: int, device: torch.device):
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(data.nodule_image), size=min(n, len(data.nodule_image)), replace=False)
    owners = data.nodule_subject[picks]
    others = (owners + rng.integers(1, len(data.subject_ids), size=len(owners))) % len(
        data.subject_ids
    )  # any donor but the owner
    image = torch.from_numpy(data.nodule_image[picks][:, None]).to(device)
    mask = torch.from_numpy(data.nodule_mask[picks][:, None]).to(device)
    genes = torch.from_numpy(data.genes[owners]).to(device)
    wrong = torch.from_numpy(data.genes[others]).to(device)
    heights = torch.from_numpy(data.nodule_height_mm[picks]).to(device)
    return image, mask, genes, wrong, heights


def discriminator_diagnostics(
    discriminators: nn.Module,
    splits: dict[str, CacheSplit],
    n: int = 256,
    seed: int = 0,
    batch: int = 64,
) -> dict[str, float]:
    """``isg_auroc/<split>`` and ``isg_auroc_filled/<split>`` for each split, and
    ``d_i_real/<split>`` (D_I's mean score on its real slices); eval mode (running batch
    statistics), the module's mode is restored. A D_ISG whose gene mapping takes slice
    heights (``focus-height``) is told each slice's (the mismatched genes keep it), as in
    training."""
    slice_height = getattr(getattr(discriminators, "mapping", None), "takes_height", False)
    was_training = discriminators.training
    discriminators.eval()
    device = next(discriminators.parameters()).device
    out: dict[str, float] = {}
    try:
        for name, data in splits.items():
            image, mask, genes, wrong, heights = _sample(data, n, seed, device)
            for label, shown in (("isg_auroc", image), ("isg_auroc_filled", None)):
                shown = _fill_nodule(image, mask) if shown is None else shown
                matched, mismatched, d_i = [], [], []
                for k in range(0, len(image), batch):
                    part = slice(k, k + batch)
                    told = {"height_mm": heights[part]} if slice_height else {}
                    args = (discriminators, shown[part], mask[part])
                    good, realness = _scores(*args, genes[part], told)
                    bad, _ = _scores(*args, wrong[part], told)
                    matched.append(good), mismatched.append(bad), d_i.append(realness)
                labels = np.r_[np.ones(len(image)), np.zeros(len(image))]
                values = np.concatenate(matched + mismatched)
                out[f"{label}/{name}"] = float(roc_auc_score(labels, values))
                if label == "isg_auroc":
                    out[f"d_i_real/{name}"] = float(np.concatenate(d_i).mean())
    finally:
        discriminators.train(was_training)
    return out
