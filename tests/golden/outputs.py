"""Golden outputs of the whole chain, produced through the command line only.

The layout of the package may change under these commands; what they write may not. This
module runs twin → prepare → train (both models, 20 steps) → map → evaluate on a tiny
cohort and reduces each stage's output to comparable facts:

- the twin: the sha256 of every file;
- the cache: its fingerprint (cohort file times pinned first, since the input fingerprint
  reads them) and a sha256 of every stored array (npz containers carry zip times);
- training: every ``stats.jsonl`` row without its wall-clock fields;
- evaluation: every number of ``evaluation.json`` but times and paths.

``python tests/golden/outputs.py`` records them into ``tests/golden/outputs.json``; the test
``tests/test_golden.py`` recomputes and compares them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from typer.testing import CliRunner

GOLDEN_FILE = Path(__file__).with_name("outputs.json")
PINNED_MTIME_NS = 1_700_000_000 * 10**9  # cohort file times, so the cache fingerprint is fixed
TINY_WIDTHS = ["--base-channels", "8", "--max-channels", "32", "--gene-hidden", "16"]
TRAIN_STEPS = 20
_VOLATILE_KEYS = {"seconds", "time", "created", "run", "cache", "mcgan_run", "path"}


def _invoke(args: list[str]) -> str:
    from rgsynth.cli import app

    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        raise RuntimeError(f"rgsynth {' '.join(args)} failed:\n{result.output}")
    return result.output


def file_digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def array_digests(cache: Path) -> dict[str, str]:
    digests = {}
    for path in sorted(cache.rglob("*.npz")):
        with np.load(path) as stored:
            for name in sorted(stored.files):
                array = np.ascontiguousarray(stored[name])
                text = f"{array.dtype}{array.shape}".encode() + array.tobytes()
                digests[f"{path.relative_to(cache)}:{name}"] = hashlib.sha256(text).hexdigest()
    return digests


def _stats_rows(run: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]


def _numbers(value: Any, prefix: str = "") -> dict[str, float]:
    """Every number in a JSON tree, keyed by its path; times and paths left out."""
    found: dict[str, float] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in _VOLATILE_KEYS and "seconds" not in key:
                found |= _numbers(item, f"{prefix}/{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found |= _numbers(item, f"{prefix}/{n}")
    elif isinstance(value, bool):
        found[prefix] = float(value)
    elif isinstance(value, int | float):
        found[prefix] = float(value)
    return found


# CPU extensions that make oneDNN/MKL pick other float kernels than the same torch
# capability string ("AVX512") gets without them: a Sapphire Rapids core with AMX and
# AVX512-FP16 trained the 20 golden steps to other bits than the machine that recorded them.
KERNEL_FEATURES = ("amx_bf16", "amx_int8", "amx_tile", "avx512_fp16")


def cpu_features() -> list[str]:
    """The ``KERNEL_FEATURES`` this CPU has (from /proc/cpuinfo; none where it is absent)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    return sorted(feature for feature in KERNEL_FEATURES if feature in flags)


def compute(work: Path) -> dict[str, Any]:
    """Run the chain in ``work`` (an empty folder) and return the golden facts."""
    cohort, cache = work / "cohort", work / "cache"
    _invoke(["synth-cohort", str(cohort), "--preset", "tiny", "--subjects", "5", "--seed", "11"])
    twin = file_digests(cohort)
    for path in cohort.rglob("*"):
        os.utime(path, ns=(PINNED_MTIME_NS, PINNED_MTIME_NS))
    _invoke(
        [
            "prepare",
            str(cohort),
            "--out",
            str(cache),
            "--size",
            "32",
            "--backgrounds",
            "2",
            "--background-slices",
            "5",
            "--val-fraction",
            "0.2",
            "--workers",
            "1",
        ]
    )
    manifest = json.loads((cache / "manifest.json").read_text())
    facts: dict[str, Any] = {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_features": cpu_features(),
        "twin": twin,
        "cache_fingerprint": f"{manifest['settings_fingerprint']}-{manifest['inputs_fingerprint']}",
        "cache_arrays": array_digests(cache),
    }
    runs = {"xu": work / "run", "mcgan": work / "run-mcgan"}
    for model, run in runs.items():
        _invoke(
            [
                "train",
                str(cache),
                str(run),
                "--steps",
                str(TRAIN_STEPS),
                "--model",
                model,
                *TINY_WIDTHS,
                "--batch-size",
                "4",
                "--log-every",
                "1",
                "--sample-every",
                "10",
            ]
        )
        facts[f"stats_{model}"] = _stats_rows(run)
    truth = cohort / "ground_truth.json"
    small_maps = ["--clusters", "2", "--metagene-min-genes", "2", "--top-genes", "1"]
    small_maps += ["--replicates", "3", "--backgrounds", "3", "--gene-sets", str(truth)]
    _invoke(["map", str(runs["mcgan"]), *small_maps])
    _invoke(["map", str(runs["xu"]), *small_maps, "--mcgan", str(runs["mcgan"])])
    against = ["--against", str(runs["mcgan"]), "--truth", str(truth)]
    _invoke(["evaluate", str(runs["xu"]), *against, "--per-donor", "2", "--resamples", "20"])
    evaluation = json.loads((runs["xu"] / "evaluation.json").read_text())
    facts["evaluation"] = _numbers(evaluation)
    return facts


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        golden = compute(Path(folder))
    GOLDEN_FILE.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN_FILE}: {len(golden['evaluation'])} evaluation numbers", file=sys.stderr)
