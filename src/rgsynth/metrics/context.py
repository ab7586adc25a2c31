"""What a metric is computed from: one model's run and syntheses, or the whole study."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rgsynth.analysis.cohort import CohortView
from rgsynth.analysis.features import ALL_FEATURES, FeatureExtractor
from rgsynth.analysis.ground_truth import Truth
from rgsynth.analysis.perturbation import COLUMNS
from rgsynth.analysis.readout import load_readout
from rgsynth.config import (
    EvaluationSettings,
    PrepareConfig,
)
from rgsynth.inference import Synthesis, Synthesizer, TrainedRun
from rgsynth.intensity import unit_to_hu
from rgsynth.layout import MAPS_DIRNAME
from rgsynth.synthesize.paste import nodule_component


@dataclass
class RealSlices:
    """Validation nodule slices: (n, S, S) HU and masks, their owners, and features; and
    each slice's height above its nodule's centroid in mm (None: not known), at which a
    model told slice heights paints the syntheses compared with it."""

    hu: np.ndarray
    mask: np.ndarray
    owner: list[str]
    features: np.ndarray
    height_mm: np.ndarray | None = None


@dataclass
class ConditionSample:
    """One synthesis per real slice under one gene condition, and what was measured.

    Attributes:
        condition: ``matched``, ``shuffled genes`` or ``zeroed genes``.
        synthesis: the generator's outputs, (n, S, S) each.
        backgrounds: (n, S, S) the backgrounds they were painted into, [-1, 1].
        features: (n, len(COLUMNS)) features and readouts of each synthesis's central
            nodule (NaN when empty); the realism set FEATURES comes first.
        masks: (n, S, S) bool, that nodule.
    """

    condition: str
    synthesis: Synthesis
    backgrounds: np.ndarray
    features: np.ndarray
    masks: np.ndarray


class ModelContext:
    """Everything one model's scores need.

    ``run`` is the trained run, or None for the reference generator (then ``name`` and
    ``synthesizer`` say what paints, ``maps_dir`` where its perturbation maps are, and
    ``conditions`` may keep it to some gene conditions).
    """

    def __init__(
        self,
        run: TrainedRun | None,
        cohort: CohortView,
        real: RealSlices,
        backgrounds: np.ndarray,
        extractor: FeatureExtractor,
        config: PrepareConfig,
        settings: EvaluationSettings,
        synthesizer: Callable | None = None,
        name: str | None = None,
        maps_dir: Path | None = None,
        conditions: tuple[str, ...] | None = None,
    ) -> None:
        self.run, self.cohort, self.real = run, cohort, real
        self.backgrounds, self.extractor = backgrounds, extractor
        self.config, self.settings = config, settings
        self.synthesizer = synthesizer or Synthesizer(run.generator)
        self.name = name or run.config.model.architecture
        self.maps_dir = maps_dir or (run.run_dir / MAPS_DIRNAME)
        self.readout = load_readout()
        self.conditions = conditions  # None: every gene condition of the registry
        self.row_of = {s: n for n, s in enumerate(cohort.subject_ids)}
        self.facts: dict[str, Any] = {}  # what a metric notes beside its scores

    @property
    def model(self) -> str:
        return self.name

    def genes(self, subjects: list[str]) -> np.ndarray:
        """(len(subjects), G) standardised expression of cache subjects."""
        return self.cohort.genes[[self.row_of[s] for s in subjects]]

    def measure(self, synthesis: Synthesis) -> tuple[np.ndarray, np.ndarray]:
        """(n, len(COLUMNS)) features and trait readouts of each synthesis's nodule
        nearest the centre (the realism set :data:`FEATURES` first), and its mask."""
        rows, masks = [], []
        for image, soft in zip(synthesis.image, synthesis.mask, strict=True):
            mask, _ = nodule_component(soft > 0.5)
            rows.append(self.extractor(unit_to_hu(image, self.config.hu_window), mask))
            masks.append(mask)
        table = self.readout.apply(pd.DataFrame(rows, columns=list(ALL_FEATURES)))
        return table[list(COLUMNS)].to_numpy(float), np.stack(masks)


@dataclass
class StudyContext:
    """What the study-wide scores need: the run folder (its maps), the real nodules'
    features, the truth, and the classic pipeline's tables in the truth's terms."""

    run_dir: Path
    cohort: CohortView
    features: pd.DataFrame
    truth: Truth | None
    settings: EvaluationSettings
    conventional: dict[str, pd.DataFrame] = field(default_factory=dict)
