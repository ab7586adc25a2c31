"""Is the product recipe ``focus-outline`` the bench arm ``focus-star-rough`` it was
measured as? Builds both at one seed on the demo's widths, fits both gene projections on
the same donors, and runs a few training steps of both on the same synthetic batches:
their weights (less the bench generator's two unused heads) must start equal, and their
D and G losses (``rough_gap`` included) and outputs must stay equal step by step.

    PYTHONPATH=src:benchmarks python benchmarks/check_outline_port.py [--steps 3]

Prints one line per step and a verdict; exits 1 on any difference above 1e-5.

Since bench_map takes its generator from the product module (the arm's is
``OutlineGenerator`` with the unused heads kept), the generator is compared with itself
and only the discriminators and the loss are independent code here. The generator was
compared as separate code at commit 774f64d, before that move: the same weights and losses
(largest difference 0).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys

import torch

import bench_map
from rgsynth.config import TrainConfig
from rgsynth.models import registry
from rgsynth.models.config import ModelConfig

TOLERANCE = 1e-5


def _networks(name: str, config: ModelConfig, genes: torch.Tensor, seed: int):
    spec = registry.get_spec(name)
    torch.manual_seed(seed)
    networks = spec.build(dataclasses.replace(config, architecture=name))
    spec.fit_to_genes(networks, genes.numpy())
    model = dataclasses.replace(config, architecture=name)
    loss = spec.loss(spec.resolve(TrainConfig(model=model)))
    optimisers = [
        torch.optim.Adam(n.parameters(), lr=1e-4, betas=(0.5, 0.999))
        for n in (networks.generator, networks.discriminators)
    ]
    return networks, loss, optimisers


def _state(networks) -> dict[str, torch.Tensor]:
    """Both networks' tensors, G's keys prefixed "G.", D's "D."."""
    parts = {"G": networks.generator, "D": networks.discriminators}
    return {f"{n}.{k}": v for n, m in parts.items() for k, v in m.state_dict().items()}


def _batch(config: ModelConfig, step: int, donors: torch.Tensor) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)
    size, batch = config.image_size, 8
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    radius = torch.randint(3, 10, (batch, 1, 1), generator=g)
    mask = (((yy - size // 2) ** 2 + (xx - size // 2) ** 2) < radius**2).float()[:, None]
    background = torch.rand(batch, 1, size, size, generator=g) * 0.4 - 0.9
    pick = torch.randint(0, len(donors), (batch,), generator=g)
    return {
        "background": background,
        "image": background * (1 - mask) + 0.6 * mask,
        "mask": mask,
        "wrong_mask": torch.roll(mask, 1, dims=0),
        "genes": donors[pick],
        "wrong_genes": donors[torch.roll(pick, 1)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    bench_map.register_ablations()
    config = ModelConfig(architecture="focus", image_size=64, n_genes=500)
    donors = torch.randn(38, config.n_genes, generator=torch.Generator().manual_seed(7))
    product = _networks("focus-outline", config, donors, args.seed)
    bench = _networks("focus-star-rough", config, donors, args.seed)

    worst = 0.0
    p_state, b_state = (_state(networks) for networks, _, _ in (product, bench))
    dropped = sorted(set(b_state) - set(p_state))
    if set(p_state) - set(b_state) or any(not k.startswith("G.synthesis.to_") for k in dropped):
        print(f"state keys differ: product only {sorted(set(p_state) - set(b_state))}, "
              f"bench only {dropped}")  # fmt: skip
        return 1
    start = max((p_state[k].double() - b_state[k].double()).abs().max().item() for k in p_state)
    print(f"initial weights: {len(p_state)} tensors, max |difference| {start:.2e} "
          f"(bench only, unused: {', '.join(dropped)})")  # fmt: skip
    worst = max(worst, start)
    no_autocast = contextlib.nullcontext
    for step in range(args.steps):
        batch = _batch(config, step, donors)
        line = []
        for networks, loss, (g_opt, d_opt) in (product, bench):
            torch.manual_seed(step)
            noise = torch.randn(8, config.noise_dim)
            d_opt.zero_grad()
            fake, d_total, _ = loss.accumulate_discriminator(
                networks.generator, networks.discriminators, batch, noise, no_autocast
            )
            d_opt.step()
            g_opt.zero_grad()
            g_total, g_terms = loss.accumulate_generator(
                networks.discriminators, fake, batch, no_autocast
            )
            g_opt.step()
            if "G/rough_gap" not in g_terms:
                print(f"step {step}: no G/rough_gap term")
                return 1
            rough = g_terms["G/rough_gap"].item()
            line.append((d_total.item(), g_total.item(), rough, fake.mask.sum().item()))
        (pd, pg, pr, pm), (bd, bg, br, bm) = line
        diff = max(abs(pd - bd), abs(pg - bg), abs(pm - bm), abs(pr - br))
        worst = max(worst, diff)
        print(
            f"step {step}: D {pd:.6f} / {bd:.6f}, G {pg:.6f} / {bg:.6f}, rough_gap "
            f"{pr:.6f} / {br:.6f}, mask pixels {pm:.0f} / {bm:.0f} (product / bench)"
        )
    verdict = "same" if worst <= TOLERANCE else "DIFFERENT"
    print(f"{verdict}: largest difference {worst:.2e} (tolerance {TOLERANCE:.0e})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
