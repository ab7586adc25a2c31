"""``prepare`` on a cohort written with the real download's quirks vs the clean twin.

    python benchmarks/bench_quirks_prepare.py [--subjects 64] [--seed 0] [--repeats 2] [--work DIR]

Both cohorts come from the same seed and preset (demo), so they hold the same images:
the quirk one adds localizers, reformats, CTAC and earlier-study series, rewrites the SEGs
as ePAD and 3D Slicer did, varies rescale and pixel storage and spaces some series
unevenly, and drops the SEGs and genes the real collection lacks (AMC subjects). Each
``prepare`` runs in a fresh process into a fresh cache, alternating clean and quirk runs so
drift on a shared machine hits both alike. Prints seconds per run, the medians and their
ratio (target: quirk / clean ≤ 1.5), and writes ``benchmarks/results/quirks_prepare.csv``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from rgsynth.fsutil import atomic_write_text

RESULTS = Path(__file__).parent / "results"


def cohort(work: Path, name: str, seed: int, subjects: int, quirks: str) -> Path:
    out = work / name
    if not (out / "ground_truth.json").is_file():
        subprocess.run(
            [sys.executable, "-m", "rgsynth.cli", "synth-cohort", str(out), "--seed", str(seed),
             "--subjects", str(subjects), "--quirks", quirks, "--force"],
            check=True,
        )  # fmt: skip
    return out


def timed_prepare(source: Path, cache: Path) -> tuple[float, dict]:
    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "rgsynth.cli", "prepare", str(source), "--out", str(cache)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    manifest = json.loads((cache / "manifest.json").read_text())
    return seconds, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="rgsynth-quirks-"))
    sources = {
        "clean": cohort(work, f"clean-{args.seed}", args.seed, args.subjects, "none"),
        "collection": cohort(
            work, f"collection-{args.seed}", args.seed, args.subjects, "collection"
        ),
    }
    files = {k: sum(1 for p in v.rglob("*.dcm")) for k, v in sources.items()}
    rows = []
    for repeat in range(args.repeats):
        for kind, source in sources.items():
            seconds, manifest = timed_prepare(source, work / f"cache-{kind}")
            totals = manifest["totals"]
            rows.append(
                {
                    "seed": args.seed,
                    "subjects": args.subjects,
                    "cohort": kind,
                    "repeat": repeat,
                    "dicom_files": files[kind],
                    "prepared_subjects": len(manifest["subjects"]),
                    "nodule_slices": totals["nodule_slices"],
                    "seconds": round(seconds, 2),
                }
            )
            print(f"{kind:10s} repeat {repeat}: {seconds:6.1f} s, {files[kind]} DICOM files")
    table = pd.DataFrame(rows)
    medians = table.groupby("cohort")["seconds"].median()
    per_subject = table.groupby("cohort").apply(
        lambda t: (t["seconds"] / t["prepared_subjects"]).median(), include_groups=False
    )
    print(table.to_string(index=False))
    print(
        f"median seconds: clean {medians['clean']:.1f}, collection {medians['collection']:.1f}; "
        f"ratio {medians['collection'] / medians['clean']:.2f} (target <= 1.5); per prepared "
        f"subject {per_subject['clean']:.2f} s vs {per_subject['collection']:.2f} s "
        f"(ratio {per_subject['collection'] / per_subject['clean']:.2f})"
    )
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "quirks_prepare.csv", table.to_csv(index=False))


if __name__ == "__main__":
    main()
