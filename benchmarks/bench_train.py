"""Training-step speed at 64² and 128², fp32 and bf16, beside the machine's matmul peak.

Run: .venv/bin/python benchmarks/bench_train.py [--batch-size 16] [--steps 5] [--threads N]
     [--base-channels 32] [--max-channels 256]

Builds a three-subject twin and two caches (64² and 128²) through the real ``prepare``,
then times full training steps (one D update, one G update, the EMA) of the real
``Trainer`` with the prototype's widths. FLOPs of one step (forward and backward) are
counted with ``torch.utils.flop_counter``; the peak is a timed 2048² matmul in each
precision on the same threads. Prints one table. The twin's cache has 120 genes, not
5172: the gene mapping is under 1 % of a step's FLOPs at either size.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from rgsynth.config import ModelConfig, PrepareConfig, TrainConfig, twin_preset
from rgsynth.prepare.run import find_inputs, prepare_cache
from rgsynth.train.loop import Trainer
from rgsynth.twin.cohort import generate_cohort


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 20, trials: int = 3) -> float:
    """Best achieved FLOP/s of an n×n matmul in ``dtype`` over a few timed trials."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        torch.matmul(a, b)
    best = 0.0
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(repeats):
            torch.matmul(a, b)
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start))
    return best


def conv_rate(dtype: torch.dtype, repeats: int = 20) -> float:
    """Counted FLOP/s of one 3×3 conv (16×128×32×32, 128 filters) forward: the kind of
    layer the networks are made of, as a second yardstick beside the matmul."""
    x = torch.randn(16, 128, 32, 32, dtype=dtype)
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(dtype)
    with torch.no_grad():
        for _ in range(3):
            conv(x)
        start = time.perf_counter()
        for _ in range(repeats):
            conv(x)
        seconds = (time.perf_counter() - start) / repeats
    return 2 * 16 * 128 * 128 * 9 * 32 * 32 / seconds


def make_caches(work: Path, sizes: list[int]) -> dict[int, Path]:
    cohort = work / "cohort"
    twin = twin_preset("tiny", seed=1, n_subjects=3, seg_fraction=1.0, rnaseq_fraction=1.0)
    generate_cohort(cohort, twin, workers=2)
    caches = {}
    for size in sizes:
        caches[size] = work / f"cache-{size}"
        settings = PrepareConfig(
            size=size, background_centres=2, background_slices=5, val_fraction=0
        )
        prepare_cache(find_inputs(cohort), caches[size], settings, workers=2, echo=lambda _: None)
    return caches


def time_steps(cache: Path, run: Path, config: TrainConfig, steps: int) -> tuple[float, float]:
    """(seconds per step, FLOPs per step) of the real trainer on ``cache``."""
    trainer = Trainer(cache, run, config)
    batches = trainer.batches()
    for _ in range(2):  # warm-up: allocator, autocast caches
        trainer.train_step(next(batches))
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(next(batches))
    flops = float(counter.get_total_flops())
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(next(batches))
    return (time.perf_counter() - start) / steps, flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--base-channels", type=int, default=32)
    parser.add_argument("--max-channels", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    convs = {"fp32": conv_rate(torch.float32), "bf16": conv_rate(torch.bfloat16)}
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        caches = make_caches(work, [64, 128])
        rows = []
        for size, cache in caches.items():
            for precision in ("fp32", "bf16"):
                config = TrainConfig(
                    model=ModelConfig(
                        base_channels=args.base_channels, max_channels=args.max_channels
                    ),
                    batch_size=args.batch_size,
                    precision=precision,
                    log_every=10**9,
                    sample_every=10**9,
                    checkpoint_every=10**9,
                )
                seconds, flops = time_steps(
                    cache, work / f"run-{size}-{precision}", config, args.steps
                )
                rows.append((size, precision, seconds, flops, peaks[precision]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"training step (D update + G update + EMA), batch {args.batch_size}, "
        f"{args.threads} threads, widths {args.base_channels}/{args.max_channels}\n"
        f"matmul peak (2048²): fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, "
        f"bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s; one 3×3 conv layer: fp32 "
        f"{convs['fp32'] / 1e9:.0f}, bf16 {convs['bf16'] / 1e9:.0f} GFLOP/s\n"
        "(FLOPs are counted as direct convolution; oneDNN's convolutions can beat the matmul,\n"
        "so '% of peak' is of the matmul figure and may pass 100 %)\n"
    )
    header = (
        f"{'size':>5} {'precision':>9} {'s/step':>8} {'images/s':>9} {'GFLOP/step':>11} "
        f"{'GFLOP/s':>8} {'% of peak':>9} {'vs fp32':>8}"
    )
    print(header)
    print("-" * len(header))
    fp32_time = {size: s for size, p, s, _, _ in rows if p == "fp32"}
    for size, precision, seconds, flops, peak in rows:
        achieved = flops / seconds
        print(
            f"{size:>4}² {precision:>9} {seconds:8.3f} {args.batch_size / seconds:9.1f} "
            f"{flops / 1e9:11.1f} {achieved / 1e9:8.1f} {100 * achieved / peak:8.0f}% "
            f"{fp32_time[size] / seconds:7.2f}×"
        )


if __name__ == "__main__":
    main()
