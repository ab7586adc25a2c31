"""The trait readout: each nodule trait read from at most three features of a 2-D slice.

A map can only find what its ruler sees. One feature per trait saw three of the five twin
traits barely (Spearman 0.17–0.31 on real nodules), so every map, the classic one
included, was scored against a truth it could not see. Here each trait is a linear
combination of at most three standardised features (:data:`ALL_FEATURES`), chosen by
forward selection and fitted by least squares on **calibration cohorts**: twin cohorts of
other seeds whose traits are drawn independently of the genes (``--preset calibration``),
so the readout cannot read one trait through another that shares a program, and it is
never fitted on a cohort it scores. The coefficients are a committed file
(``readout.json`` beside this module), fitted once per twin version by
``benchmarks/calibrate_readout.py``.

Size is read from size features only, so a synthesis with an empty mask reads as size 0
(its other traits are missing) rather than vanishing from the map.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from rgsynth.analysis.features import ALL_FEATURES

READOUT_PATH = Path(__file__).with_name("readout.json")
READOUT_FORMAT = "rgsynth-readout/1"
SIZE_FEATURES = ("area_mm2", "max_diameter_mm")
# trait → the subject's true value it predicts (ground_truth.json's traits)
TRAIT_TARGETS = {
    "diameter": "diameter_mm",
    "solidity": "solid_fraction",
    "spiculation": "spiculation",
    "lobulation": "lobulation",
    "heterogeneity": "heterogeneity",
}
READOUT_TRAITS = tuple(TRAIT_TARGETS)


def readout_column(trait: str) -> str:
    """The name of a trait's readout beside the features in a table."""
    return f"{trait} readout"


READOUT_COLUMNS = tuple(readout_column(t) for t in READOUT_TRAITS)


@dataclass(frozen=True)
class TraitReadout:
    """``sum(weights * (features - centre) / scale) + intercept``, in units of the trait's
    SD over the calibration cohorts (so effects of different traits compare)."""

    trait: str
    features: tuple[str, ...]
    centre: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float
    calibration_spearman: float  # cross-validated, over calibration slices

    def __call__(self, table: pd.DataFrame) -> np.ndarray:
        values = table[list(self.features)].to_numpy(np.float64)
        standard = (values - np.array(self.centre)) / np.array(self.scale)
        return standard @ np.array(self.weights) + self.intercept


@dataclass(frozen=True)
class Readout:
    twin_version: int
    traits: dict[str, TraitReadout]
    calibration: dict

    def apply(self, table: pd.DataFrame) -> pd.DataFrame:
        """``table`` (rows of :data:`ALL_FEATURES`) with a readout column per trait added;
        NaN where a feature it needs is missing."""
        out = table.copy()
        for trait, readout in self.traits.items():
            out[readout_column(trait)] = readout(table)
        return out

    def to_dict(self) -> dict:
        return {
            "format": READOUT_FORMAT,
            "twin_version": self.twin_version,
            "traits": {t: asdict(r) for t, r in self.traits.items()},
            "calibration": self.calibration,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Readout:
        if data.get("format") != READOUT_FORMAT:
            raise ValueError(f"not a {READOUT_FORMAT} file")
        traits = {
            t: TraitReadout(**{k: tuple(v) if isinstance(v, list) else v for k, v in r.items()})
            for t, r in data["traits"].items()
        }
        return cls(int(data["twin_version"]), traits, data.get("calibration", {}))


def load_readout(path: Path | None = None) -> Readout:
    """The committed readout (or one written by ``benchmarks/calibrate_readout.py``)."""
    return Readout.from_dict(json.loads(Path(path or READOUT_PATH).read_text()))


def fit_readout(
    table: pd.DataFrame,
    twin_version: int,
    calibration: dict,
    max_features: int = 3,
    folds: int = 5,
) -> Readout:
    """Fit every trait's readout on calibration slices.

    Args:
        table: one row per nodule slice: :data:`ALL_FEATURES`, the true trait values
            (:data:`TRAIT_TARGETS` columns) and ``subject_id`` (folds keep a subject's
            slices together).
    """
    subjects = table["subject_id"].astype(str).to_numpy()
    unique = np.unique(subjects)
    fold_of = dict(zip(unique, np.arange(len(unique)) % folds, strict=True))
    fold = np.array([fold_of[s] for s in subjects])
    traits = {}
    for trait, target in TRAIT_TARGETS.items():
        candidates = SIZE_FEATURES if trait == "diameter" else ALL_FEATURES
        chosen: list[str] = []
        best = -np.inf
        while len(chosen) < max_features:
            scores = {
                f: _cv_spearman(table, [*chosen, f], target, fold)
                for f in candidates
                if f not in chosen
            }
            feature, score = max(scores.items(), key=lambda kv: kv[1])
            if score <= best + 0.01:  # a feature must earn its place
                break
            chosen.append(feature)
            best = score
        traits[trait] = _fit_one(table, trait, chosen, target, best)
    return Readout(twin_version, traits, calibration)


def _usable(table: pd.DataFrame, features: list[str], target: str) -> pd.DataFrame:
    return table[[*features, target]].replace([np.inf, -np.inf], np.nan).dropna()


def _least_squares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    design = np.column_stack([x, np.ones(len(x))])
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    return solution[:-1], float(solution[-1])


def _cv_spearman(table: pd.DataFrame, features: list[str], target: str, fold: np.ndarray) -> float:
    usable = _usable(table, features, target)
    if len(usable) < 50:
        return -np.inf
    folds = fold[table.index.get_indexer(usable.index)]
    x = usable[features].to_numpy(np.float64)
    y = usable[target].to_numpy(np.float64)
    predicted = np.empty(len(y))
    for k in np.unique(folds):
        train, test = folds != k, folds == k
        weights, intercept = _least_squares(x[train], y[train])
        predicted[test] = x[test] @ weights + intercept
    return float(stats.spearmanr(predicted, y)[0])


def _fit_one(
    table: pd.DataFrame, trait: str, features: list[str], target: str, cv_score: float
) -> TraitReadout:
    usable = _usable(table, features, target)
    x = usable[features].to_numpy(np.float64)
    centre, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    y = usable[target].to_numpy(np.float64)
    y_mean, y_sd = y.mean(), y.std() or 1.0
    weights, intercept = _least_squares((x - centre) / scale, (y - y_mean) / y_sd)
    return TraitReadout(
        trait=trait,
        features=tuple(features),
        centre=tuple(float(v) for v in centre),
        scale=tuple(float(v) for v in scale),
        weights=tuple(float(v) for v in weights),
        intercept=float(intercept),
        calibration_spearman=round(float(cv_score), 4),
    )


def calibration_slices(cohort: Path, cache_root: Path) -> pd.DataFrame:
    """Every nodule slice of a prepared twin cohort (mask of at least ``MIN_PIXELS``):
    subject, slice height, whether it is the subject's widest, :data:`ALL_FEATURES` and
    the subject's true traits (:data:`TRAIT_TARGETS`, the realised diameter)."""
    from rgsynth.analysis.features import MIN_PIXELS, FeatureExtractor
    from rgsynth.intensity import unit_to_hu
    from rgsynth.layout import GROUND_TRUTH_FILENAME
    from rgsynth.prepare.cache import Cache, cache_prepare_config

    truth = json.loads((Path(cohort) / GROUND_TRUTH_FILENAME).read_text())
    traits = {}
    for subject in truth["subjects"]:
        values = {t: subject["traits"][t] for t in TRAIT_TARGETS.values()}
        values["diameter_mm"] = subject["nodule"]["diameter_mm"]
        traits[subject["subject_id"]] = values
    config = cache_prepare_config(cache_root)
    extractor = FeatureExtractor(config.voxel_mm)
    cache = Cache(cache_root)
    rows = []
    for subject in cache.manifest()["subjects"]:
        sid = subject["subject_id"]
        if not subject.get("n_nodule_slices") or sid not in traits:
            continue
        shard = cache.load_shard(sid)
        areas = shard["nodule_mask"].reshape(len(shard["nodule_mask"]), -1).sum(axis=1)
        for n, (image, mask) in enumerate(
            zip(shard["nodule_image"], shard["nodule_mask"], strict=True)
        ):
            if mask.sum() < MIN_PIXELS:
                continue
            features = extractor(unit_to_hu(image, config.hu_window), mask.astype(bool))
            rows.append(
                {
                    "seed": truth["config"]["seed"],
                    "subject_id": sid,
                    "height_mm": float(shard["nodule_slice_mm"][n]),
                    "widest": bool(n == int(np.argmax(areas))),
                    **features,
                    **traits[sid],
                }
            )
    return pd.DataFrame(rows)
