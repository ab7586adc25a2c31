"""Behaviour is unchanged: the chain's outputs equal those recorded at 57e26a6.

Run ``python tests/golden/outputs.py`` to re-record them, only for a change that is meant to
alter what the commands write (and say so in its commit).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "golden"))
from outputs import GOLDEN_FILE, compute, cpu_features


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN_FILE.read_text())


@pytest.fixture(scope="module")
def now(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return compute(tmp_path_factory.mktemp("golden"))


def _same_kernels(golden: dict[str, Any]) -> None:
    """Float results are bit-equal only where torch picks the same CPU kernels: the same
    torch, capability and kernel-relevant extensions (a recording without the list was made
    on a CPU without any of them)."""
    capability = torch.backends.cpu.get_cpu_capability()
    recorded = (golden["torch"], golden["cpu_capability"], golden.get("cpu_features", []))
    here = (torch.__version__, capability, cpu_features())
    if recorded != here:
        pytest.skip(
            f"recorded with torch {recorded[0]} on {recorded[1]} {recorded[2]}, "
            f"this is {here[0]} on {here[1]} {here[2]}"
        )


def test_twin_and_cache_are_byte_equal(golden: dict, now: dict) -> None:
    assert now["twin"] == golden["twin"]
    assert now["cache_fingerprint"] == golden["cache_fingerprint"]
    assert now["cache_arrays"] == golden["cache_arrays"]


@pytest.mark.parametrize("model", ["xu", "mcgan"])
def test_twenty_training_steps_are_bit_equal(golden: dict, now: dict, model: str) -> None:
    _same_kernels(golden)
    assert now[f"stats_{model}"] == golden[f"stats_{model}"]


def test_evaluation_numbers_are_equal(golden: dict, now: dict) -> None:
    _same_kernels(golden)
    expected, found = golden["evaluation"], now["evaluation"]
    assert sorted(found) == sorted(expected)
    differ = {
        key: (found[key], value)
        for key, value in expected.items()
        if not (
            (math.isnan(value) and math.isnan(found[key]))
            or math.isclose(found[key], value, rel_tol=1e-9, abs_tol=1e-12)
        )
    }
    assert not differ, differ
