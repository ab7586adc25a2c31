"""Every score as one flat record, written as JSON lines; ``evaluation.json`` is built
from them.

A :class:`Score` is ``(model, condition, metric, value, ci_low, ci_high, n)``. ``model`` is
an architecture name, ``conventional``, ``real nodules``, or a gene-code space; the
condition says under what the metric was measured. The CLI and the report read these
records unchanged; ``evaluation.json`` (which the report, users' scripts and the README
read too) places each record where :func:`json_path` says.

Example:
    >>> s = Score.of("xu", "matched", "frd", Estimate(12.5, 10.0, 15.0))
    >>> json_path(s), s.json_value()
    (('models', 'xu', 'matched', 'frd'), {'value': 12.5, 'ci_low': 10.0, 'ci_high': 15.0})
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rgsynth.fsutil import atomic_write_text

# A model's conditions and the key of their section in evaluation.json's "models" entry.
MODEL_SECTIONS = {
    "matched": "matched",
    "shuffled genes": "shuffled genes",
    "zeroed genes": "zeroed genes",
    "trait fidelity": "trait_fidelity",
    "perturbation map": "perturbation_map",
    "perturbation map (genes rule)": "perturbation_map_genes_rule",
    "perturbation map (axis rule)": "perturbation_map_axis_rule",
}
CONVENTIONAL = "conventional"  # the classic three-step pipeline's "model"
REAL_NODULES = "real nodules"
FEATURE_VALIDITY = "feature reads trait"  # condition: a readout against its true trait
SINGLE_FEATURE_VALIDITY = "feature reads trait (single feature)"  # the pre-readout features
EMBEDDING = "embedding"  # condition: a code space's clusters against the true subtypes


@dataclass(frozen=True)
class Estimate:
    """A value with its bootstrap 95 % interval (and, where it says something, the number
    of units it was computed over)."""

    value: float
    ci_low: float
    ci_high: float
    n: int | None = None

    def to_dict(self) -> dict[str, float]:
        values: dict[str, Any] = {"value": self.value, "ci_low": self.ci_low}
        values["ci_high"] = self.ci_high
        return values | ({"n": self.n} if self.n is not None else {})


@dataclass(frozen=True)
class Score:
    """One number the evaluation produced (see the module docstring)."""

    model: str
    condition: str
    metric: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None

    @classmethod
    def of(cls, model: str, condition: str, metric: str, value: float | Estimate) -> Score:
        if isinstance(value, Estimate):
            return cls(model, condition, metric, value.value, value.ci_low, value.ci_high, value.n)
        return cls(model, condition, metric, value)

    @property
    def has_interval(self) -> bool:
        return self.ci_low is not None or self.ci_high is not None

    def json_value(self) -> Any:
        """What evaluation.json holds for it: a number, or value, interval (and n)."""
        if not self.has_interval and self.n is None:
            return self.value
        return Estimate(self.value, self.ci_low, self.ci_high, self.n).to_dict()  # type: ignore[arg-type]


def json_path(score: Score) -> tuple[str, ...]:
    """Where ``score`` sits in evaluation.json."""
    if score.condition in MODEL_SECTIONS:
        return ("models", score.model, MODEL_SECTIONS[score.condition], score.metric)
    if score.model == CONVENTIONAL:
        return (CONVENTIONAL, score.condition, score.metric)
    if score.condition == EMBEDDING:
        return ("embedding_vs_subtypes", score.model)
    if score.condition == FEATURE_VALIDITY:
        return ("feature_validity", score.metric)
    if score.condition == SINGLE_FEATURE_VALIDITY:
        return ("feature_validity_single_feature", score.metric)
    raise ValueError(f"no place in evaluation.json for {score}")


def nest(scores: Iterable[Score], into: dict[str, Any] | None = None) -> dict[str, Any]:
    """The records as evaluation.json's nested sections, added to ``into``."""
    tree: dict[str, Any] = into if into is not None else {}
    for score in scores:
        *parents, leaf = json_path(score)
        node = tree
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = score.json_value()
    return tree


def write_scores(path: Path, scores: Iterable[Score]) -> None:
    """JSON lines, one record a line, written atomically (NaN as JSON's NaN token)."""
    lines = [json.dumps(dataclasses.asdict(s), allow_nan=True) for s in scores]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def read_scores(path: Path) -> list[Score]:
    """The records of :func:`write_scores`.

    Raises:
        ValueError: a line that is not a score record.
    """
    scores = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        try:
            scores.append(Score(**json.loads(line)))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}:{number}: not a score record ({error})") from None
    return scores


class ScoreTable:
    """The records by (model, condition, metric), for readers that look numbers up."""

    def __init__(self, scores: Iterable[Score]) -> None:
        self.scores = list(scores)
        self._by_key = {(s.model, s.condition, s.metric): s for s in self.scores}

    def get(self, model: str, condition: str, metric: str) -> Score | None:
        return self._by_key.get((model, condition, metric))

    def value(self, model: str, condition: str, metric: str) -> float:
        """The value, NaN when there is no such score."""
        score = self.get(model, condition, metric)
        return float(score.value) if score is not None else math.nan

    def where(self, **fields: str) -> list[Score]:
        return [s for s in self.scores if all(getattr(s, k) == v for k, v in fields.items())]
