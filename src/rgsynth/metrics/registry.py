"""The metrics ``rgsynth evaluate`` runs, registered by name, in the order they run.

A metric is one function returning :class:`~rgsynth.metrics.records.Score` records, of
one of three scopes:

- ``condition``: called with ``(ModelContext, ConditionSample, rng)`` once per gene
  condition (matched, shuffled, zeroed genes) on that condition's syntheses;
- ``model``: called with ``(ModelContext, Truth, rng)`` once per model, with a truth;
- ``study``: called with ``(StudyContext,)`` once per evaluation.

Adding a metric is one decorated function (see ``builtin.py``)::

    @register_metric("mean_mask_area", scope="condition")
    def mean_mask_area(context, sample, rng):
        return [Score(context.model, sample.condition, "mean_mask_area", ...)]

Metrics of a scope run in registration order and share one random generator per model,
so a model's scores are a function of the seed alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rgsynth.analysis.ground_truth import Truth
from rgsynth.metrics.context import ConditionSample, ModelContext, StudyContext
from rgsynth.metrics.records import Score

CONDITIONS = ("matched", "shuffled genes", "zeroed genes")
SCOPES = ("condition", "model", "study")


@dataclass(frozen=True)
class Metric:
    """Attributes:
    name: unique; the records' ``metric`` may differ (one function, several scores).
    scope: ``condition``, ``model`` or ``study`` (see the module docstring).
    compute: the function.
    conditions: for a ``condition`` metric, the conditions it is measured under.
    needs_truth: a ``study`` metric that is skipped without a truth.
    """

    name: str
    scope: str
    compute: Callable[..., list[Score]]
    conditions: tuple[str, ...] = CONDITIONS
    needs_truth: bool = False


_METRICS: dict[str, Metric] = {}


def register_metric(
    name: str,
    scope: str,
    conditions: tuple[str, ...] = CONDITIONS,
    needs_truth: bool = False,
) -> Callable[[Callable[..., list[Score]]], Callable[..., list[Score]]]:
    """Decorator: run this function as the metric ``name`` (see the module docstring)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")

    def add(compute: Callable[..., list[Score]]) -> Callable[..., list[Score]]:
        if name in _METRICS and _METRICS[name].compute is not compute:
            raise ValueError(f"a metric named {name!r} is already registered")
        _METRICS[name] = Metric(name, scope, compute, conditions, needs_truth)
        return compute

    return add


def unregister_metric(name: str) -> None:
    _METRICS.pop(name, None)


def registered(scope: str) -> list[Metric]:
    import rgsynth.metrics.builtin  # noqa: F401  (registers the built-in metrics)

    return [m for m in _METRICS.values() if m.scope == scope]


def score_model(context: ModelContext, truth: Truth | None) -> list[Score]:
    """Every ``condition`` and (with a truth) ``model`` metric of one model.

    Each real validation slice gets one synthesis per condition on one random background
    with one noise seed, the same across conditions: its owner's genes (matched),
    another validation donor's (shuffled) or the training mean (zeroed); a model told
    slice heights paints each at its real slice's height, whatever the genes.
    """
    rng = np.random.default_rng(context.settings.seed)
    owners = context.real.owner
    n = len(owners)
    picks = rng.integers(len(context.backgrounds), size=n)
    seeds = [int(s) for s in rng.integers(2**31, size=n)]
    donors = sorted(set(owners))
    shuffled = [_other(owner, donors, rng) for owner in owners]
    profiles = {
        "matched": context.genes(owners),
        "shuffled genes": context.genes(shuffled),
        "zeroed genes": np.zeros((n, len(context.cohort.gene_names)), np.float32),
    }
    scores: list[Score] = []
    backgrounds = context.backgrounds[picks]
    for condition in context.conditions or CONDITIONS:
        synthesis = context.synthesizer(
            backgrounds, profiles[condition], seeds, heights_mm=context.real.height_mm
        )
        features, masks = context.measure(synthesis)
        sample = ConditionSample(condition, synthesis, backgrounds, features, masks)
        for metric in registered("condition"):
            if condition in metric.conditions:
                scores += metric.compute(context, sample, rng)
    if truth is not None:
        for metric in registered("model"):
            scores += metric.compute(context, truth, rng)
    return scores


def score_study(study: StudyContext) -> list[Score]:
    """Every ``study`` metric (those needing a truth only when there is one)."""
    scores: list[Score] = []
    for metric in registered("study"):
        if study.truth is not None or not metric.needs_truth:
            scores += metric.compute(study)
    return scores


def _other(owner: str, donors: list[str], rng: np.random.Generator) -> str:
    others = [d for d in donors if d != owner]
    return others[int(rng.integers(len(others)))] if others else owner
