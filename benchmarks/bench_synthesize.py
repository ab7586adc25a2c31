"""Synthesis speed: nodules/s of the generator alone (64² and 128², fp32 and bf16), and of
the whole ``synthesize`` path into a CT for each output format.

Run: .venv/bin/python benchmarks/bench_synthesize.py [--nodules 128] [--batch-size 32]
     [--threads N] [--genes 5172]

Part 1 times ``Synthesizer`` (the EMA generator in eval mode, noise drawn per nodule) on
random backgrounds and gene profiles, with the prototype's widths (32/256) and the demo's
CPU widths (16/128); weights are random, which does not change the arithmetic. Part 2
writes a tiny twin, picks lung locations in one subject's DICOM CT and runs the real
batch writer (paste at the CT's resolution, then PNG / NIfTI / DICOM CT + SEG) at 64².
Prints two tables.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rgsynth.config import ModelConfig, PrepareConfig, TrainConfig, twin_preset
from rgsynth.inference import Synthesizer, TrainedRun
from rgsynth.models.registry import build_networks
from rgsynth.synthesize.backgrounds import load_volume, random_locations
from rgsynth.synthesize.batch import BatchSettings, Job, synthesize_batch, volume_targets
from rgsynth.synthesize.profiles import GeneProfile
from rgsynth.twin.cohort import generate_cohort


def generator(size: int, genes: int, base: int, top: int) -> torch.nn.Module:
    torch.manual_seed(0)
    config = ModelConfig(image_size=size, n_genes=genes, base_channels=base, max_channels=top)
    return build_networks(config).generator.eval().requires_grad_(False)


def nodules_per_second(
    net: torch.nn.Module, precision: str, nodules: int, batch_size: int, repeats: int = 2
) -> float:
    size, genes = net.config.image_size, net.config.n_genes
    rng = np.random.default_rng(0)
    backgrounds = rng.uniform(-1, 1, (nodules, size, size)).astype(np.float32)
    profiles = rng.normal(size=(nodules, genes)).astype(np.float32)
    synthesizer = Synthesizer(net, precision, "cpu", batch_size)
    synthesizer(backgrounds[:batch_size], profiles[:batch_size], list(range(batch_size)))  # warm
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        synthesizer(backgrounds, profiles, list(range(nodules)))
        best = max(best, nodules / (time.perf_counter() - start))
    return best


def generator_table(args: argparse.Namespace) -> None:
    print(f"\nGenerator only: {args.nodules} nodules, batch {args.batch_size}, {args.genes} genes")
    print("| size | widths | parameters (M) | fp32 nodules/s | bf16 nodules/s | bf16 / fp32 |")
    print("|---|---|---|---|---|---|")
    for size, (base, top) in ((64, (16, 128)), (64, (32, 256)), (128, (32, 256))):
        net = generator(size, args.genes, base, top)
        params = sum(p.numel() for p in net.parameters()) / 1e6
        fp32 = nodules_per_second(net, "fp32", args.nodules, args.batch_size)
        bf16 = nodules_per_second(net, "bf16", args.nodules, args.batch_size)
        print(
            f"| {size}² | {base}/{top} | {params:.1f} | {fp32:.1f} | {bf16:.1f} | "
            f"{bf16 / fp32:.2f}× |"
        )


def pipeline_table(args: argparse.Namespace, work: Path) -> None:
    cohort = work / "cohort"
    generate_cohort(cohort, twin_preset("demo", seed=2, n_subjects=1, seg_fraction=1.0), workers=1)
    volume = load_volume(_ct_series(cohort))
    prepare = PrepareConfig(size=64)
    net = generator(64, 500, 16, 128)
    run = TrainedRun(work, work, TrainConfig(model=net.config), net, 0, "bench")
    n = args.pipeline_nodules
    locations = random_locations(volume, prepare, n, np.random.default_rng(0))
    targets = volume_targets(volume, locations, prepare)
    profile = GeneProfile("bench", np.zeros(500, np.float32), "zeros")
    jobs = [Job(i + 1, t, profile, i) for i, t in enumerate(targets)]
    print(
        f"\nWhole path into one {volume.hu.shape[0]}×{volume.hu.shape[1]}×{volume.hu.shape[2]} "
        f"DICOM CT, 64², demo widths, fp32, {len(jobs)} nodules"
    )
    print("| outputs | nodules/s | s/nodule |")
    print("|---|---|---|")
    for formats in (("png",), ("png", "nifti"), ("png", "nifti", "dicom")):
        settings = BatchSettings(formats=formats, batch_size=args.batch_size)
        start = time.perf_counter()
        synthesize_batch(jobs, run, prepare, work / "-".join(formats), settings)
        seconds = time.perf_counter() - start
        print(f"| {' + '.join(formats)} | {len(jobs) / seconds:.2f} | {seconds / len(jobs):.3f} |")


def _ct_series(cohort: Path) -> Path:
    """The CT series folder of the twin's only subject (the SEG sits in another)."""
    import pydicom

    for path in sorted(cohort.rglob("*.dcm")):
        if pydicom.dcmread(path, stop_before_pixels=True).Modality == "CT":
            return path.parent
    raise RuntimeError("no CT in the twin")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodules", type=int, default=128)
    parser.add_argument("--pipeline-nodules", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--genes", type=int, default=5172)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    generator_table(args)
    with tempfile.TemporaryDirectory() as work:
        pipeline_table(args, Path(work))


if __name__ == "__main__":
    main()
