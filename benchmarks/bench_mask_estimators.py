"""Issue 16's thirty-fifth round, a toy reading (nothing on the twin trained or chosen):
which way of showing a soft mask to a discriminator leaves it no freedom to stay soft?

Rounds 29-35 found that when a term on G's mask can be met with soft values (a floor, a
fuzz, a mask hovering at 0.5), G meets it that way, whether the discriminators see the
soft mask (FRD 36-41), its binarisation with a straight-through gradient (318-322), its
steepened form (241) or a binary mask drawn from it pixel by pixel with a straight-through
gradient (round 35: 235; alone, 30 % empty masks and a 0.01-0.1 floor over 15 % of the
patch). The last was meant to make every soft value visible as noise; a suspected reason it
did not is the estimator: the straight-through gradient of a Bernoulli draw is the judge's
slope at the drawn mask, in which the draw's variance, the noise the judge objects to,
never appears. A relaxed draw (Concrete / Gumbel-sigmoid: Maddison, Mnih and Teh 2017;
Jang, Gu and Poole 2017), sigmoid((logit m + logistic noise) / τ), is nearly binary at
small τ and reparameterised: its gradient does see that a value near 0.5 makes the drawn
mask flicker.

The toy: binary discs on a 32² grid (radius 3-8 px, anywhere at least 2 px from the
border) are the real masks; G maps noise to mask logits; D judges a mask; G's loss adds a
pull that soft values can meet: the soft mask's mean must equal ``PULL_AREA`` times the
real discs' mean area (a stand-in for the roughness term, which read the soft mask too).
Per judge (``JUDGES``; the first, a control, without the pull), ``SEEDS`` runs of
``STEPS`` steps; read on 512 masks of the last G as the twin's masks are
(``bench_mask_values.bands``): the share of pixels at 0.01-0.5 beyond 2 px of the
binarised outline (a floor; a soft outline is not counted), the pixels at 0.1-0.9 per
pixel above 0.5 (fuzz) and the share of them beyond the outline's band, the share with
no pixel above 0.5 (empty), and the binarised area and the soft mass against the real
discs' area (ratios of means). Rows in ``round35_estimators.csv``:

    python benchmarks/bench_mask_estimators.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from bench_map import RESULTS, coin_flipped, steepened, straight_through
from bench_mask_values import bands

CSV = RESULTS / "round35_estimators.csv"
SIZE = 32
NOISE = 16
STEPS = 1200
BATCH = 32
SEEDS = (0, 1, 2)
PULL_AREA = 2.0  # the pull asks for twice the real mean area, in soft-mask mass
PULL_WEIGHT = 10.0  # as the twin's roughness term (bench_map.WEIGHT_DESC)
TAU = 0.3  # the relaxed draw's temperature
READ = ("floor_beyond_edge", "fuzzy_per_pixel_above_half", "fuzzy_beyond_edge", "empty")


def relaxed_draw(mask, tau: float = TAU):
    """sigmoid((logit m + L) / τ), L ~ Logistic(0, 1): a reparameterised, nearly binary
    draw that is 1 with probability m as τ → 0 (the binary Concrete distribution)."""
    u = torch.rand_like(mask).clamp(1e-6, 1 - 1e-6)
    logit = torch.logit(mask.clamp(1e-6, 1 - 1e-6))
    return torch.sigmoid((logit + torch.log(u) - torch.log1p(-u)) / tau)


JUDGES = {
    "soft, no pull": lambda m: m,  # the control: the toy GAN without the pull
    "soft": lambda m: m,
    "binarised (straight-through)": straight_through,
    "steepened": steepened,
    "Bernoulli (straight-through)": coin_flipped,
    "relaxed Bernoulli": relaxed_draw,
}


def real_discs(rng: np.random.Generator, n: int) -> torch.Tensor:
    """(n, 1, SIZE, SIZE) binary discs of radius 3-8 px."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    radius = rng.uniform(3, 8, n)
    cy = rng.uniform(radius + 2, SIZE - radius - 2)
    cx = rng.uniform(radius + 2, SIZE - radius - 2)
    distance = (yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2
    discs = distance < radius[:, None, None] ** 2
    return torch.tensor(discs[:, None].astype(np.float32))


def generator() -> nn.Module:
    return nn.Sequential(
        nn.Linear(NOISE, 32 * 8 * 8), nn.Unflatten(1, (32, 8, 8)), nn.LeakyReLU(0.2),
        nn.Upsample(scale_factor=2), nn.Conv2d(32, 16, 3, padding=1), nn.LeakyReLU(0.2),
        nn.Upsample(scale_factor=2), nn.Conv2d(16, 8, 3, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(8, 1, 3, padding=1),
    )  # fmt: skip


def discriminator() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(16, 32, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(32, 32, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 1),
    )  # fmt: skip


def run(judge: str, seed: int, steps: int = STEPS) -> dict:
    """One toy GAN under ``judge``; its reading (see the module's doc)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    g, d = generator(), discriminator()
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    show = JUDGES[judge]
    real_area = float(real_discs(np.random.default_rng(99), 4096).mean())
    start = time.perf_counter()
    for _ in range(steps):
        real = real_discs(rng, BATCH)
        mask = torch.sigmoid(g(torch.randn(BATCH, NOISE)))
        loss_d = F.softplus(-d(real)).mean() + F.softplus(d(show(mask.detach()))).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        mask = torch.sigmoid(g(torch.randn(BATCH, NOISE)))
        pull = (mask.mean() - PULL_AREA * real_area) ** 2 / real_area**2
        weight = 0.0 if judge.endswith("no pull") else PULL_WEIGHT
        loss_g = F.softplus(-d(show(mask))).mean() + weight * pull
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    with torch.no_grad():
        m = torch.sigmoid(g(torch.randn(512, NOISE))).numpy()[:, 0]
    return (
        {"judge": judge, "seed": seed, "steps": steps}
        | {k: v for k, v in bands(m).items() if k in READ}
        | {"area_ratio": float((m > 0.5).mean() / real_area),
           "soft_mass_ratio": float(m.mean() / real_area),
           "seconds": round(time.perf_counter() - start)}
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args()
    rows = []
    for judge in JUDGES:
        for seed in SEEDS:
            rows.append(run(judge, seed, args.steps))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    from rgsynth.fsutil import atomic_write_text

    atomic_write_text(CSV, table.to_csv(index=False))
    numeric = table.drop(columns=["seed", "steps", "seconds"])
    summary = numeric.groupby("judge", sort=False).agg(["mean", "min", "max"]).round(3)
    print(summary.to_string())


if __name__ == "__main__":
    main()
