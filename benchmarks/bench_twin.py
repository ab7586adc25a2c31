"""Twin generation cost: seconds and disk per subject, by stage, for each preset.

Run: .venv/bin/python benchmarks/bench_twin.py [--subjects 6] [--presets tiny demo paper]
Prints one table; its last column times a whole parallel cohort run (all workers).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from rgsynth.config import twin_preset
from rgsynth.twin.cohort import generate_cohort, plan_cohort
from rgsynth.twin.dicom_write import ct_datasets, seg_dataset, write_ct_series
from rgsynth.twin.subject import render_subject


def _stage_times(preset: str, n_subjects: int, scratch: Path) -> dict[str, float]:
    plan = plan_cohort(twin_preset(preset, seed=0, n_subjects=n_subjects))
    totals = {"render": 0.0, "ct_write": 0.0, "seg_write": 0.0, "bytes": 0.0, "slices": 0.0}
    for subject, study in zip(plan.subjects, plan.studies, strict=True):
        start = time.perf_counter()
        scan = render_subject(subject)
        totals["render"] += time.perf_counter() - start
        start = time.perf_counter()
        datasets = ct_datasets(scan.hu, scan.grid, scan.acquisition, study, 3)
        paths = write_ct_series(datasets, scratch / subject.subject_id)
        totals["ct_write"] += time.perf_counter() - start
        start = time.perf_counter()
        seg_path = scratch / f"{subject.subject_id}-seg.dcm"
        seg_dataset(datasets, scan.nodule_mask, "slicer", study).save_as(seg_path)
        totals["seg_write"] += time.perf_counter() - start
        totals["bytes"] += sum(p.stat().st_size for p in paths) + seg_path.stat().st_size
        totals["slices"] += len(paths)
    return {k: v / n_subjects for k, v in totals.items()}


def _cohort_time(preset: str, n_subjects: int, scratch: Path, workers: int) -> float:
    start = time.perf_counter()
    generate_cohort(
        scratch / f"cohort-{preset}", twin_preset(preset, n_subjects=n_subjects), workers=workers
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--presets", nargs="+", default=["tiny", "demo"])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    print(f"twin generation, {args.subjects} subjects per preset, {os.cpu_count()} CPUs\n")
    header = (
        f"{'preset':8} {'matrix':>6} {'slices':>6} {'render s':>9} {'CT write s':>10} "
        f"{'SEG s':>6} {'total s':>8} {'MB/subj':>8} {'cohort s/subj':>14}"
    )
    print(header)
    print("-" * len(header))
    for preset in args.presets:
        with tempfile.TemporaryDirectory() as scratch:
            stages = _stage_times(preset, args.subjects, Path(scratch))
            wall = _cohort_time(preset, args.subjects, Path(scratch), args.workers)
        total = stages["render"] + stages["ct_write"] + stages["seg_write"]
        matrix = twin_preset(preset).matrix
        print(
            f"{preset:8} {matrix:>6} {stages['slices']:>6.0f} {stages['render']:>9.2f} "
            f"{stages['ct_write']:>10.2f} {stages['seg_write']:>6.2f} {total:>8.2f} "
            f"{stages['bytes'] / 1e6:>8.1f} {wall / args.subjects:>14.2f}"
        )
    print(
        f"\nstage columns: one process, per subject (mean); 'cohort s/subj': whole "
        f"generate_cohort with {args.workers} workers, including the tables, per subject."
    )
    print("demo preset target: its default 64 subjects in under a minute on 2 cores.")


if __name__ == "__main__":
    main()
