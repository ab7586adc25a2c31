"""Issue 16's thirty-fifth round (a reading; nothing trained or chosen): which of G's loss
terms pushes its mask up away from the nodule?

In rounds 29 and 31-35 G's soft mask rose over the whole patch (a floor of 0.1-0.3, or
0.5-0.9), and the images then stopped looking like CT (FRD 36-322). This reads, at a
run's final weights (the training G and D, as the next step would use them), the
gradient of each of G's loss terms, weighted as in its loss, with respect to G's mask,
on the pixels beyond the binarised mask grown by ``GROW`` px (where no nodule is), over
``BATCHES`` training batches: the mean gradient per pixel (times the batch's number of
mask pixels, as if each term were a sum; negative: the term lowers as the mask rises
there, so a step of G raises it), the share of those pixels where it is negative, and
the mean mask value there. D_I sees no mask and the background L1 term reads the mask detached (no
gradient); the paper's loss weights that term by 1 − maxpool(mask), so a floor of m
frees the background by m, which the reading also reports (the mean of that weight
there). NaN: no pixel lies beyond the grown binarised mask (it covers the patch). For the
roughness arms, also the roughness term on those batches (unweighted, as logged) beside
what it would be if G painted one roughness for every slice (the batch's predicted
roughness, centred, over the real slices' SD, squared, averaged: the term's constant
exit). Rows in ``round35_mask_forces.csv``:

    python benchmarks/bench_mask_forces.py --seed 0 focus focus-rough-level
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench_map import RESULTS, WEIGHT_DESC, paths, reading_parser, register_ablations, seed_dir
from bench_map_score import replace_rows
from rgsynth.config import TrainConfig
from rgsynth.losses import erode_background
from rgsynth.train.checkpoint import load_checkpoint
from rgsynth.train.loop import Trainer

CSV = RESULTS / "round35_mask_forces.csv"
GROW = 3  # px beyond the binarised mask before a pixel counts as away from the nodule
BATCHES = 8
ROUGH = 3  # the roughness column of the ridge arms' descriptors
KEYS = ["seed", "model", "step", "term"]


def forces(work: Path, seed: int, recipe: str, step: int = 2025) -> list[dict]:
    """One row per G loss term that sees the mask (see the module's doc)."""
    register_ablations()
    _, cache = paths(work, seed)
    snapshot = seed_dir(work, seed) / recipe / f"at-{step:06d}"
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(scratch) / "run"  # the trainer writes its config: keep the snapshot
        shutil.copytree(snapshot, run_dir)
        state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
        trainer = Trainer(cache, run_dir, TrainConfig.from_dict(state["config"]), resume=True)
        torch.manual_seed(seed)
        loss, d = trainer.loss, trainer.discriminators.requires_grad_(False)
        sums: dict[str, list[float]] = {}
        keep_weight, mask_there, term_now, constant = [], [], [], []
        for batch in itertools.islice(trainer.batches(), BATCHES):
            noise = torch.randn(len(batch["genes"]), trainer.noise_dim)
            with trainer._autocast():
                fake = trainer.generator(batch["background"], batch["genes"], noise)
                mask = fake.mask
                scores = d(fake.image, mask, batch["genes"])
            s = {k: v.float() for k, v in scores.items()}
            terms = {
                "G/IS": loss.weight_is * ((s["is_fake"] - 1) ** 2).mean(),
                "G/ISG": loss.weight_isg * ((s["isg_fake"] - 1) ** 2).mean(),
            }
            for key in ("rough_gap", "desc_gap"):
                if key in s:
                    terms[f"G/{key}"] = WEIGHT_DESC * s[key]
            if "rough_gap" in s:  # the term now, and what painting one roughness would cost
                with torch.no_grad():
                    target, scale = d.ridge_target(batch["genes"])
                wanted = (target[:, ROUGH] - target[:, ROUGH].mean()) / scale[ROUGH]
                term_now.append(float(s["rough_gap"]))
                constant.append(float((wanted**2).mean()))
            m = mask.detach().float()
            away = F.max_pool2d((m > 0.5).float(), 2 * GROW + 1, stride=1, padding=GROW) < 0.5
            keep_weight.append(float(erode_background(m, loss.erosion_px)[away].mean()))
            mask_there.append(float(m[away].mean()))
            for name, term in terms.items():
                (grad,) = torch.autograd.grad(term, mask, retain_graph=True)
                g = grad.float()[away] * m.numel()  # × the batch's mask pixels: per pixel
                sums.setdefault(name, []).extend([float(g.mean()), float((g < 0).float().mean())])
    rows = []
    for name, values in sums.items():
        pairs = np.asarray(values).reshape(-1, 2)
        rows.append({"seed": seed, "model": recipe, "step": step, "term": name,
                     "mean_gradient": pairs[:, 0].mean(), "share_negative": pairs[:, 1].mean(),
                     "mask_there": float(np.mean(mask_there)),
                     "background_weight": float(np.mean(keep_weight)),
                     "rough_term": np.mean(term_now) if term_now else np.nan,
                     "rough_term_if_constant": np.mean(constant) if constant else np.nan,
                     })  # fmt: skip
    return rows


def main() -> None:
    args = reading_parser(__doc__).parse_args()
    for recipe in args.recipes:
        rows = forces(args.work, args.seed, recipe, args.step)
        for row in rows:
            print(row, flush=True)
        replace_rows(CSV, rows, KEYS)


if __name__ == "__main__":
    main()
