"""The headline scores of several ``rgsynth demo --seed N`` runs, side by side with the mean.

    python benchmarks/collect_demo_seeds.py SEED=DEMO_OUT [SEED=DEMO_OUT ...]

Reads each demo's ``run/evaluation.json`` and writes ``benchmarks/results/demo_seeds.csv``
(one row per seed × map × metric), then prints the wide table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from rgsynth.fsutil import atomic_write_text

RESULTS = Path(__file__).parent / "results"
MAP_METRICS = ("auroc", "true_pairs_found", "false_positive_rate", "auroc_diameter")
LABELS = {"xu": "ours", "mcgan": "MC-GAN", "reference": "reference"}


def _value(entry):
    return entry["value"] if isinstance(entry, dict) else entry


def rows_of(seed: int, demo: Path) -> list[dict]:
    evaluation = json.loads((demo / "run" / "evaluation.json").read_text())
    rows = []

    def add(group: str, metric: str, entry) -> None:
        if entry is None:
            return
        low = entry.get("ci_low") if isinstance(entry, dict) else None
        high = entry.get("ci_high") if isinstance(entry, dict) else None
        rows.append(
            {
                "seed": seed,
                "map": group,
                "metric": metric,
                "value": _value(entry),
                "ci_low": low,
                "ci_high": high,
            }
        )

    for model, facts in evaluation["models"].items():
        label = LABELS.get(model, model)
        add(label, "checkpoint step", facts.get("checkpoint_step"))
        for section, suffix in (
            ("perturbation_map", ""),
            ("perturbation_map_genes_rule", ", genes rule"),
        ):
            for metric in MAP_METRICS:
                add(label + suffix, metric, facts.get(section, {}).get(metric))
        for metric in ("frd", "empty_or_tiny_mask_rate", "donor_auroc"):
            add(label, metric, facts["matched"].get(metric))
        add(label, "donor_auroc shuffled", facts.get("shuffled genes", {}).get("donor_auroc"))
        for trait, entry in facts.get("trait_fidelity", {}).items():
            add(label, f"fidelity {trait}", entry)
    for variant, scores in evaluation["conventional"].items():
        if isinstance(scores, dict) and "auroc" in scores:
            for metric in MAP_METRICS:
                add(f"classic, {variant}", metric, scores.get(metric))
    for key, label in (
        ("feature_validity", "readout"),
        ("feature_validity_single_feature", "single feature"),
    ):
        for trait, entry in evaluation.get(key, {}).items():
            add(f"validity: {label}", trait, entry)
    return rows


def main() -> None:
    rows = []
    for argument in sys.argv[1:]:
        seed, _, folder = argument.partition("=")
        rows += rows_of(int(seed), Path(folder))
    table = pd.DataFrame(rows)
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "demo_seeds.csv", table.to_csv(index=False, float_format="%.4f"))
    wide = table.pivot_table(index=["map", "metric"], columns="seed", values="value", sort=False)
    wide["mean"] = wide.mean(axis=1)
    with pd.option_context("display.width", 200, "display.max_rows", 300):
        print(wide.round(3))


if __name__ == "__main__":
    main()
