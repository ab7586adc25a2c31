"""Prepare cost against its floor: reading the same DICOM files, on one twin cohort.

Run: .venv/bin/python benchmarks/bench_prepare.py [--preset demo] [--subjects 16] [--workers 2]
     [--seed 0] [--cohort DIR] [--breakdown 3] [--keep]
Generates one twin cohort (or reads --cohort), then times on it: the raw bytes of every file,
``tcia.load`` of every subject (the DICOM-read floor), a per-subject breakdown of load versus
``make_examples`` (and ``segment_lungs`` inside it), a whole ``prepare`` in one process, one
with --workers processes, and a resume of the finished cache. Prints one table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from rgsynth.config import PrepareConfig, twin_preset
from rgsynth.io import tcia
from rgsynth.io.source import MissingInput, SubjectSource
from rgsynth.prepare.examples import make_examples
from rgsynth.prepare.lungs import segment_lungs
from rgsynth.prepare.run import find_inputs, prepare_cache
from rgsynth.twin.cohort import generate_cohort


def _cohort_size_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6


def _raw_read(sources: list[SubjectSource]) -> float:
    start = time.perf_counter()
    for source in sources:
        for path in source.files():
            path.read_bytes()
    return time.perf_counter() - start


def _load_all(sources: list[SubjectSource]) -> tuple[list[SubjectSource], float, int, float]:
    """tcia.load of every subject: (those with a SEG, their seconds, count and seconds of
    the rest, which raise MissingInput)."""
    with_seg: list[SubjectSource] = []
    seg_s = missing_s = 0.0
    missing = 0
    for source in sources:
        start = time.perf_counter()
        try:
            tcia.load(source)
        except MissingInput:
            missing += 1
            missing_s += time.perf_counter() - start
        else:
            with_seg.append(source)
            seg_s += time.perf_counter() - start
    return with_seg, seg_s, missing, missing_s


def _breakdown(sources: list[SubjectSource], config: PrepareConfig) -> dict[str, float]:
    totals = {"load": 0.0, "examples": 0.0, "lungs": 0.0}
    for source in sources:
        start = time.perf_counter()
        images = tcia.load(source, config.max_slice_mm)
        totals["load"] += time.perf_counter() - start
        start = time.perf_counter()
        make_examples(images, config)
        totals["examples"] += time.perf_counter() - start
        start = time.perf_counter()
        segment_lungs(images.hu, images.spacing_mm, config.lung_threshold_hu)
        totals["lungs"] += time.perf_counter() - start
    return totals


def _prepare(cohort: Path, cache: Path, workers: int) -> tuple[float, dict]:
    start = time.perf_counter()
    inputs = find_inputs(cohort)
    manifest = prepare_cache(inputs, cache, PrepareConfig(), workers=workers, echo=lambda s: None)
    return time.perf_counter() - start, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--subjects", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cohort", type=Path, help="an existing cohort to read instead")
    parser.add_argument("--breakdown", type=int, default=3, help="subjects timed stage by stage")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-prepare-"))
    try:
        _run(args, scratch)
    finally:
        if args.keep:
            print(f"\nkept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _run(args: argparse.Namespace, scratch: Path) -> None:
    config = PrepareConfig()
    if args.cohort is None:
        cohort = scratch / "cohort"
        twin = twin_preset(args.preset, seed=args.seed, n_subjects=args.subjects)
        start = time.perf_counter()
        generate_cohort(cohort, twin, workers=args.workers)
        made = f"generated ({args.preset} preset, seed {args.seed}) in "
        made += f"{time.perf_counter() - start:.1f} s with {args.workers} workers"
    else:
        cohort, made = args.cohort, "given"
    sources, problems = tcia.discover(cohort)

    for source in sources[:1]:  # untimed: the first load pays ~0.3 s of lazy imports
        try:
            tcia.load(source)
        except MissingInput:
            pass
    raw_all = _raw_read(sources)
    with_seg, floor, n_missing, missing_s = _load_all(sources)
    raw_seg = _raw_read(with_seg)
    n = len(with_seg)
    if n == 0:
        raise SystemExit(f"no subject with a SEG under {cohort}")
    parts = _breakdown(with_seg[: args.breakdown], config)
    n_parts = min(args.breakdown, n)
    one_s, manifest = _prepare(cohort, scratch / "cache-1", 1)
    many_s, _ = _prepare(cohort, scratch / f"cache-{args.workers}", args.workers)
    resume_s, _ = _prepare(cohort, scratch / f"cache-{args.workers}", args.workers)
    work_s = sum(record["seconds"] for record in manifest["subjects"])

    print(
        f"prepare on {len(sources)} subjects ({n} with a SEG, {n_missing} without"
        f"{f', {len(problems)} problems' if problems else ''}), "
        f"{_cohort_size_mb(cohort):.1f} MB on disk, {os.cpu_count()} CPUs"
    )
    print(f"cohort {made}: {cohort}\n")
    header = f"{'stage':44} {'s total':>8} {'s/subj':>7} {'subj/min':>9} {'x floor':>8}"
    print(header)
    print("-" * len(header))
    floor_per = floor / n

    def row(stage: str, seconds: float, subjects: int) -> None:
        per = seconds / subjects
        print(
            f"{stage:44} {seconds:>8.2f} {per:>7.3f} {60 / per if per else float('inf'):>9.1f} "
            f"{per / floor_per:>8.2f}"
        )

    row(f"raw bytes, all {len(sources)} subjects", raw_all, len(sources))
    row(f"raw bytes, {n} with SEG", raw_seg, n)
    row("tcia.load, 1 proc (FLOOR)", floor, n)
    if n_missing:
        row(f"tcia.load, {n_missing} without SEG (MissingInput)", missing_s, n_missing)
    row(f"breakdown ({n_parts} subj): tcia.load", parts["load"], n_parts)
    row(f"breakdown ({n_parts} subj): make_examples", parts["examples"], n_parts)
    row("breakdown: segment_lungs (inside make_ex.)", parts["lungs"], n_parts)
    row("prepare, 1 proc", one_s, n)
    row("  of which subject work (records' seconds)", work_s, n)
    row("  of which the rest (tables, seal, montage)", one_s - work_s, n)
    row(f"prepare, {args.workers} procs", many_s, n)
    row(f"resume of the {args.workers}-proc cache (up to date)", resume_s, n)
    print(
        f"\ns/subj and subj/min count the {n} subjects with a SEG (prepare also reads the "
        f"{n_missing} without);\n'x floor' = s/subj over the s/subj of tcia.load (one "
        "process, after one untimed warm-up load).\nFiles come from the page cache (the "
        "cohort was just written):\nthe raw-bytes rows are a memory floor, not a cold disk."
    )
    print("segment_lungs is timed again on its own, after make_examples (which runs it).")


if __name__ == "__main__":
    main()
