"""The proposed GAN beside the MC-GAN baseline: training images/s at equal size and batch.

Run: .venv/bin/python benchmarks/bench_models.py [--sizes 64 128] [--batch-size 16]
     [--steps 5] [--precision fp32]

Both models train on the same three-subject twin cache through the same ``Trainer`` (the
MC-GAN's own batch of 32 is overridden so the comparison is per image at equal batch).
Prints one table with parameter counts, seconds per step, images/s and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bench_train import make_caches, time_steps
from rgsynth.config import ModelConfig, TrainConfig
from rgsynth.models.registry import architecture_names, build_networks


def _count(module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-models-"))
    rows = []
    try:
        caches = make_caches(work, args.sizes)
        for size, cache in caches.items():
            for architecture in architecture_names():
                config = TrainConfig(
                    model=ModelConfig(architecture=architecture),
                    precision=args.precision,
                    log_every=10**9,
                    sample_every=10**9,
                    checkpoint_every=10**9,
                    batch_size=args.batch_size,
                )
                run = work / f"run-{size}-{architecture}"
                seconds, flops = time_steps(cache, run, config, args.steps)
                networks = build_networks(
                    ModelConfig(architecture=architecture, image_size=size, n_genes=5172)
                )
                rows.append(
                    (
                        size,
                        architecture,
                        _count(networks.generator),
                        _count(networks.discriminators),
                        seconds,
                        flops,
                    )
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"training step (D + G update + EMA), batch {args.batch_size}, {args.precision}; "
        "parameters (millions) counted with 5172 genes\n"
    )
    header = (
        f"{'size':>5} {'model':>6} {'G M':>6} {'D M':>6} {'s/step':>8} {'images/s':>9} "
        f"{'GFLOP/step':>11} {'vs xu':>6}"
    )
    print(header)
    print("-" * len(header))
    xu_speed = {size: args.batch_size / s for size, arch, _, _, s, _ in rows if arch == "xu"}
    for size, architecture, g_params, d_params, seconds, flops in rows:
        speed = args.batch_size / seconds
        print(
            f"{size:>4}² {architecture:>6} {g_params:6.2f} {d_params:6.2f} {seconds:8.3f} "
            f"{speed:9.1f} {flops / 1e9:11.1f} {speed / xu_speed[size]:5.2f}×"
        )


if __name__ == "__main__":
    main()
