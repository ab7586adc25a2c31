"""Issue 16's bench arms from the twenty-second round on, each against `focus` (and its
parent arm), paired per reading.

The twenty-second round's `focus-ridge` (bench_map.py) asks G's nodule for the descriptors
a ridge fit on the real slices' 10 whitened gene components predicts for its genes; every
later arm here is built on it or on `focus`. Each round N has its rule, fixed before any
run, in `benchmarks/results/roundN_decision_rule.txt`, its rows in the CSV that ``FILES``
lists last for it (each run read by ``bench_partial_unshrink.py --power 0.5 --csv ...``,
the product's default reading, with focus's same weights re-read into the first file),
its comparisons in ``COMPARISONS`` (the first is the rule's; later ones pair the arm with
its parent) and its printed table in ``TABLES``. Rounds in ``LEAD_BY_MAP`` name a lead by
the map's mean difference, not the gain. This prints the readings with the 15-minute
targets, the paired differences and the rule's verdict, and writes the table:

    python benchmarks/bench_ridge.py [--round 23 | 25 | ... | 39 | 40]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench_map import CURVES_CSV, RESULTS, t_interval
from bench_partial_unshrink import with_targets

RIDGE_CSV = RESULTS / "round22_ridge.csv"
MIX_CSV = RESULTS / "round23_mix.csv"
HARDNEG_CSV = RESULTS / "round25_hardneg.csv"
ROUGH_CSV = RESULTS / "round26_rough.csv"
SHARP_CSV = RESULTS / "round27_sharp.csv"
POLAR_CSV = RESULTS / "round28_polar.csv"
LEVEL_CSV = RESULTS / "round29_level.csv"
CRISP_CSV = RESULTS / "round31_crisp.csv"
HARD_CSV = RESULTS / "round32_hard.csv"
HARD_CRISP_CSV = RESULTS / "round33_hard_crisp.csv"
JUDGED_CSV = RESULTS / "round34_judged.csv"
COIN_CSV = RESULTS / "round35_coin.csv"
RAY_CSV = RESULTS / "round36_ray.csv"
STAR_CSV = RESULTS / "round37_star.csv"
AREA_CSV = RESULTS / "round38_area.csv"
SIZE_CSV = RESULTS / "round39_size.csv"
DENSE_CSV = RESULTS / "round40_dense.csv"
FILES = {
    22: [RIDGE_CSV],
    23: [RIDGE_CSV, MIX_CSV],
    25: [RIDGE_CSV, HARDNEG_CSV],
    26: [RIDGE_CSV, ROUGH_CSV],
    27: [RIDGE_CSV, ROUGH_CSV, SHARP_CSV],
    28: [RIDGE_CSV, ROUGH_CSV, POLAR_CSV],
    29: [RIDGE_CSV, ROUGH_CSV, LEVEL_CSV],
    31: [RIDGE_CSV, ROUGH_CSV, LEVEL_CSV, CRISP_CSV],
    32: [RIDGE_CSV, ROUGH_CSV, LEVEL_CSV, HARD_CSV],
    33: [RIDGE_CSV, ROUGH_CSV, HARD_CSV, HARD_CRISP_CSV],
    34: [RIDGE_CSV, ROUGH_CSV, LEVEL_CSV, JUDGED_CSV],
    35: [RIDGE_CSV, ROUGH_CSV, LEVEL_CSV, COIN_CSV],
    36: [RIDGE_CSV, ROUGH_CSV, LEVEL_CSV, RAY_CSV],
    37: [RIDGE_CSV, ROUGH_CSV, POLAR_CSV, STAR_CSV],
    38: [RIDGE_CSV, STAR_CSV, AREA_CSV],
    39: [RIDGE_CSV, STAR_CSV, AREA_CSV, SIZE_CSV],
    40: [RIDGE_CSV, STAR_CSV, SIZE_CSV, DENSE_CSV],
}
TABLES = {
    22: RESULTS / "round22_ridge_table.txt",
    23: RESULTS / "round23_mix_table.txt",
    25: RESULTS / "round25_hardneg_table.txt",
    26: RESULTS / "round26_rough_table.txt",
    27: RESULTS / "round27_sharp_table.txt",
    28: RESULTS / "round28_polar_table.txt",
    29: RESULTS / "round29_level_table.txt",
    31: RESULTS / "round31_crisp_table.txt",
    32: RESULTS / "round32_hard_table.txt",
    33: RESULTS / "round33_hard_crisp_table.txt",
    34: RESULTS / "round34_judged_table.txt",
    35: RESULTS / "round35_coin_table.txt",
    36: RESULTS / "round36_ray_table.txt",
    37: RESULTS / "round37_star_table.txt",
    38: RESULTS / "round38_area_table.txt",
    39: RESULTS / "round39_size_table.txt",
    40: RESULTS / "round40_dense_table.txt",
}


def _pair(arm: str, base: str) -> tuple[str, dict[str, str]]:
    """A comparison of ``arm`` with ``base`` at training seeds 0 and 1 (``-seed1``)."""
    return f"{arm} - {base}", {arm: base, f"{arm}-seed1": f"{base}-seed1"}


# per round: the arm's comparisons; the first is the rule's
COMPARISONS = {
    22: [_pair("focus-ridge", "focus")],
    23: [_pair("focus-ridge-mix", "focus"), _pair("focus-ridge-mix", "focus-ridge")],
    25: [_pair("focus-hardneg", "focus")],
    26: [_pair("focus-rough", "focus")],
    27: [_pair("focus-rough-sharp", "focus"), _pair("focus-rough-sharp", "focus-rough")],
    28: [_pair("focus-rough-polar", "focus"), _pair("focus-rough-polar", "focus-rough")],
    29: [_pair("focus-rough-level", "focus"), _pair("focus-rough-level", "focus-rough")],
    31: [_pair("focus-rough-crisp", "focus"), _pair("focus-rough-crisp", "focus-rough-level")],
    32: [_pair("focus-rough-hard", "focus"), _pair("focus-rough-hard", "focus-rough-level")],
    33: [
        _pair("focus-rough-hard-crisp", "focus"),
        _pair("focus-rough-hard-crisp", "focus-rough-hard"),
    ],
    34: [_pair("focus-rough-judged", "focus"), _pair("focus-rough-judged", "focus-rough-level")],
    35: [
        _pair("focus-rough-coin", "focus"),
        _pair("focus-rough-coin", "focus-rough-level"),
        _pair("focus-coin", "focus"),
    ],
    36: [
        _pair("focus-rough-ray", "focus"),
        _pair("focus-rough-ray", "focus-rough-level"),
        _pair("focus-rough-ray-bg", "focus"),
        _pair("focus-rough-ray-bg", "focus-rough-ray"),
    ],
    37: [
        # the arm its rule sends to the report seeds first
        _pair("focus-star-rough", "focus"),
        _pair("focus-star", "focus"),
        _pair("focus-star-rough", "focus-rough-polar"),
        # the precision control (fp32, as both arms trained; development seed 0 only)
        _pair("focus-star", "focus-fp32"),
        _pair("focus-star-rough", "focus-fp32"),
    ],
    38: [
        # the adoption rule's comparison
        _pair("focus-star-area", "focus"),
        # the question the round asks: the one change, against the round-37 lead (its rule's
        # "adopted" reads "better than the lead" here; the size-and-density half of that is
        # bench_map_traits' table)
        _pair("focus-star-area", "focus-star-rough"),
    ],
    39: [
        # the adoption rule's comparison
        _pair("focus-star-size", "focus"),
        # the question the round asks: the one change, against round 38's arm
        _pair("focus-star-size", "focus-star-area"),
        # against the standing lead (round 37's focus-star-rough)
        _pair("focus-star-size", "focus-star-rough"),
    ],
    40: [
        # the adoption rule's comparison
        _pair("focus-star-dense", "focus"),
        # the question the round asks: the one change, against round 39's arm
        _pair("focus-star-dense", "focus-star-size"),
        # against the standing lead (round 37's focus-star-rough)
        _pair("focus-star-dense", "focus-star-rough"),
    ],
}
# (round, comparison): an arm against the previous round's lead, whose rule asks whether
# it is better than that lead (map higher in 5 of 6 and size and density not lower, the
# latter from bench_map_traits' table), a lead over it (4 of 6, mean map difference above
# 0) or neither; no gain or empty-mask condition; the name the rule gives that arm
AGAINST_LEAD = {
    (38, 1): "the lead",
    (39, 1): "round 38's arm",
    (39, 2): "the lead",
    (40, 1): "round 39's arm",
    (40, 2): "the lead",
}
# rounds whose rule names a lead by the mean map difference above 0
LEAD_BY_MAP = {28, 29, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40}
REPORT_SEEDS = (1, 2, 3)
VALUES = ["donor_auroc", "donor_auroc_shuffled", "donor_gain", "donor_gain_lo",
          "donor_gain_hi", "frd", "empty_rate", "map_auroc", "map_auroc_lo", "map_auroc_hi",
          "false_positive_rate", "map_empty_rate", "true_mean_effect",
          "null_mean_effect"]  # fmt: skip


def readings(round_: int = 22) -> pd.DataFrame:
    """Every reading of the round (and the twenty-second's, with `focus`'s, it is paired
    with) with its seed's targets and which of them it meets."""
    files = [f for f in FILES[round_] if f.is_file()]
    table = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    table = table.drop_duplicates(["seed", "model", "power"], keep="last")
    every = pd.read_csv(CURVES_CSV)
    reference = every[every["model"] == "reference"].set_index("seed")["donor_auroc"]
    table = with_targets(table, reference, map_empty_too=True)
    table["ratio"] = table["true_mean_effect"] / table["null_mean_effect"]
    return table


def _interval(diff: np.ndarray) -> str:
    mean, low, high = t_interval(diff)
    if len(diff) < 2:
        return f"{mean:+.3f} (one reading)"
    return (
        f"{mean:+.3f} [{low:+.3f}, {high:+.3f}], above 0 in {int((diff > 0).sum())} of {len(diff)}"
    )


def summary(table: pd.DataFrame, round_: int = 22) -> str:
    comparisons = COMPARISONS[round_]
    shown = {m for _, pairs in comparisons for pair in pairs.items() for m in pair}
    lines = ["readings (p = 1/2, 2025 steps, final weights; held-out donors):"]
    for _, r in table[table["model"].isin(shown)].sort_values(["seed", "model"]).iterrows():
        targets = ", ".join(k for k in ("gain", "halfway", "map", "empty") if r[f"{k}_ok"])
        lines.append(
            f"  seed {r.seed} {r.model} (t{1 if r.model.endswith('-seed1') else 0}): donor "
            f"{r.donor_auroc:.3f} (shuffled {r.donor_auroc_shuffled:.3f}, halfway "
            f"{r.halfway:.3f}), gain {r.donor_gain:+.3f} [{r.donor_gain_lo:+.3f}, "
            f"{r.donor_gain_hi:+.3f}], FRD {r.frd:.1f}, empty {100 * r.empty_rate:.1f} % "
            f"(map's {100 * r.map_empty_rate:.1f} %), map {r.map_auroc:.3f} "
            f"[{r.map_auroc_lo:.2f}, {r.map_auroc_hi:.2f}] (target {r.map_target:.3f}), "
            f"null pairs called {100 * r.false_positive_rate:.0f} %, true / null |effect| "
            f"{r.true_mean_effect:.3f} / {r.null_mean_effect:.3f}; targets met: "
            f"{targets or 'none'}{' (all four)' if r.all_ok else ''}"
        )
    for number, (title, pairs) in enumerate(comparisons):
        lines += _paired(
            table,
            title,
            pairs,
            rule=number == 0 or (round_, number) in AGAINST_LEAD,
            lead_by_map=round_ in LEAD_BY_MAP,
            against_lead=AGAINST_LEAD.get((round_, number), ""),
        )
    return "\n".join(lines)


def _paired(
    table: pd.DataFrame,
    name: str,
    pairs: dict[str, str],
    rule: bool,
    lead_by_map: bool = False,
    against_lead: str = "",
) -> list[str]:
    """The arm's readings against their partners' (development seed, then report seeds),
    and for the rule's comparison its verdict (a lead: map higher in 4 or more of 6 with the gain
    and empty masks of an adoption, or with ``lead_by_map`` the mean map difference above
    0)."""
    rows = []
    for arm, base in pairs.items():
        for seed in sorted(table["seed"].unique()):
            a = table[(table["seed"] == seed) & (table["model"] == arm)]
            b = table[(table["seed"] == seed) & (table["model"] == base)]
            if len(a) and len(b):
                rows.append((seed, a.iloc[0], b.iloc[0]))
    lines = []
    for title, keep in (("development seed 0", lambda s: s == 0),
                        ("report seeds", lambda s: s in REPORT_SEEDS)):  # fmt: skip
        matched = [(a, b) for seed, a, b in rows if keep(seed)]
        if not matched:
            continue
        lines.append(f"paired, {name}, {title} ({len(matched)} readings):")
        for value in ("map_auroc", "donor_gain", "donor_auroc", "frd", "empty_rate",
                      "map_empty_rate", "false_positive_rate", "true_mean_effect",
                      "null_mean_effect", "ratio"):  # fmt: skip
            diff = np.array([a[value] - b[value] for a, b in matched], float)
            lines.append(f"  {value}: {_interval(diff)}")
        first, second = name.split(" - ")
        for label, side in ((first, 0), (second, 1)):
            part = pd.DataFrame([m[side] for m in matched])
            lines.append(
                f"  targets met, {label}: gain CI above 0 {int(part.gain_ok.sum())}, halfway "
                f"{int(part.halfway_ok.sum())}, map {int(part.map_ok.sum())}, empty <= 5 % "
                f"{int(part.empty_ok.sum())}, all four {int(part.all_ok.sum())}"
            )
    if not rule:
        return lines
    report = [(a, b) for seed, a, b in rows if seed in REPORT_SEEDS]
    higher = sum(a.map_auroc > b.map_auroc for a, b in report)
    if against_lead:
        return [*lines, _against_lead(report, higher, against_lead)]
    if len(report) == 6:
        gain = np.mean([a.donor_gain - b.donor_gain for a, b in report])
        empty = all(a.empty_ok for a, _ in report)
        lead = (
            np.mean([a.map_auroc - b.map_auroc for a, b in report]) > 0 if lead_by_map
            else gain >= -0.01 and empty
        )  # fmt: skip
        verdict = (
            "adopted" if higher >= 5 and gain >= -0.01 and empty
            else "a lead, not adopted" if higher >= 4 and lead
            else "not adopted"
        )  # fmt: skip
        lines.append(
            f"rule: map higher in {higher} of 6 (5 asked), mean gain difference "
            f"{gain:+.3f} (>= -0.01 asked), every reading's empty masks <= 5 %: "
            f"{'yes' if empty else 'no'} -> {verdict}"
        )
    else:
        # what the missing readings cannot change (round 37's addendum): every round's
        # adoption asks for the map higher in 5 of 6 and its lead for 4 of 6
        below = len(report) - higher
        settled = (
            "neither adoption nor a lead is possible" if below >= 3
            else "adoption is no longer possible, a lead still is" if below >= 2
            else "no decision"
        )  # fmt: skip
        lines.append(
            f"rule: {len(report)} of the 6 report readings paired, map higher in {higher}, "
            f"at or below in {below}; {settled}"
        )
    return lines


def _against_lead(report: list, higher: int, lead: str = "the lead") -> str:
    """The rule's line for an arm against the previous round's lead, or another earlier
    arm (``AGAINST_LEAD``; ``lead`` is what the rule calls it)."""
    below = len(report) - higher
    if len(report) < 6:
        settled = (
            f"neither better than {lead} nor a lead over it is possible" if below >= 3
            else f"better than {lead} is no longer possible, a lead over it still is"
            if below >= 2 else "no decision"
        )  # fmt: skip
        return (
            f"rule (against {lead}): {len(report)} of the 6 report readings paired, map "
            f"higher in {higher}, at or below in {below}; {settled}"
        )
    mean = np.mean([a.map_auroc - b.map_auroc for a, b in report])
    verdict = (
        f"better than {lead} if size and density are not lower (bench_map_traits' table)"
        if higher >= 5
        else "a lead over it" if higher >= 4 and mean > 0
        else "not better"
    )  # fmt: skip
    return (
        f"rule (against {lead}): map higher in {higher} of 6 (5 asked), mean map "
        f"difference {mean:+.3f} -> {verdict}"
    )


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--round", type=int, choices=sorted(TABLES), default=22)
    round_ = parser.parse_args().round
    text = summary(readings(round_), round_)
    TABLES[round_].write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
