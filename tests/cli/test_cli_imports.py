"""A thin CLI: help and the QC montage load no stage they do not run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "sklearn", "highdicom", "SimpleITK")

_PROBE = """
import json, sys
from typer.testing import CliRunner
from rgsynth.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"exit_code": result.exit_code, "heavy": heavy, "output": result.output}}))
"""


def _imports(*args: str) -> dict:
    probe = _PROBE.format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_help_imports_no_stage() -> None:
    for args in ([], ["--help"], ["train", "--help"], ["view", "--help"], ["demo", "--help"]):
        seen = _imports(*args)
        assert seen["heavy"] == [], (args, seen)
        assert "Usage" in seen["output"], seen


def test_view_reads_dicom_without_torch_or_sklearn(small_cohort: Path, tmp_path: Path) -> None:
    """The montage shows what the readers give (SimpleITK CT, highdicom SEG), so those two
    load; nothing of training or analysis does."""
    seen = _imports("view", str(small_cohort), "--out", str(tmp_path / "montage.png"))
    assert seen["exit_code"] == 0, seen["output"]
    assert not {"torch", "sklearn"} & set(seen["heavy"]), seen["heavy"]
    assert (tmp_path / "montage.png").read_bytes()[:4] == b"\x89PNG"


def test_a_missing_cohort_is_one_line_without_loading_stages(tmp_path: Path) -> None:
    seen = _imports("view", str(tmp_path / "nowhere"))
    assert seen["exit_code"] == 2 and seen["heavy"] == []
    assert seen["output"].strip().count("\n") == 0 and "metadata.csv" in seen["output"]
