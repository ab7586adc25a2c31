"""Realism and consistency metrics of synthetic nodules, each with bootstrap intervals.

* Fréchet Radiomics Distance: the Fréchet distance between Gaussian fits of real and
  synthetic feature vectors (our eleven features, standardised by the real set), as FID
  does with Inception features, which cannot be downloaded here.
* Classifier two-sample test: held-out accuracy of a logistic regression telling real
  from synthetic by those features (0.5 = indistinguishable).
* Background PSNR/SSIM outside the eroded generated mask (what the generator was asked
  to leave alone).
* Mask consistency: Dice between the generated mask and the pixels the synthesis changed
  by more than ``change_hu``.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg, ndimage
from skimage.metrics import structural_similarity
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rgsynth.metrics.records import Estimate


def bootstrap_mean(values: np.ndarray, rng: np.random.Generator, resamples: int = 1000) -> Estimate:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    means = rng.choice(values, size=(resamples, len(values))).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Estimate(float(values.mean()), float(low), float(high))


def frechet_distance(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Fréchet distance of Gaussian fits; both (n, d), already standardised."""
    mu_r, mu_s = real.mean(axis=0), synthetic.mean(axis=0)
    cov_r, cov_s = np.cov(real, rowvar=False), np.cov(synthetic, rowvar=False)
    root = linalg.sqrtm(cov_r @ cov_s)
    root = root.real if np.iscomplexobj(root) else root
    return float(np.sum((mu_r - mu_s) ** 2) + np.trace(cov_r + cov_s - 2 * root))


def frechet_radiomics_distance(
    real: np.ndarray, synthetic: np.ndarray, rng: np.random.Generator, resamples: int = 200
) -> Estimate:
    """FRD of (n, d) feature sets (rows with NaN dropped), standardised by the real set,
    with a bootstrap over both sets."""
    real, synthetic = _finite(real), _finite(synthetic)
    mean, sd = real.mean(axis=0), real.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    real, synthetic = (real - mean) / sd, (synthetic - mean) / sd
    point = frechet_distance(real, synthetic)
    draws = [
        frechet_distance(
            real[rng.integers(len(real), size=len(real))],
            synthetic[rng.integers(len(synthetic), size=len(synthetic))],
        )
        for _ in range(resamples)
    ]
    low, high = np.percentile(draws, [2.5, 97.5])
    return Estimate(point, float(low), float(high))


def two_sample_accuracy(
    real: np.ndarray, synthetic: np.ndarray, rng: np.random.Generator, folds: int = 5
) -> Estimate:
    """Held-out accuracy (stratified k-fold) of a logistic regression on standardised
    features, with a bootstrap over the held-out predictions."""
    real, synthetic = _finite(real), _finite(synthetic)
    features = np.vstack([real, synthetic])
    labels = np.r_[np.zeros(len(real)), np.ones(len(synthetic))]
    folds = max(2, min(folds, len(real), len(synthetic)))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    split = StratifiedKFold(folds, shuffle=True, random_state=int(rng.integers(2**31)))
    correct = cross_val_predict(model, features, labels, cv=split) == labels
    return bootstrap_mean(correct.astype(float), rng)


def background_fidelity(
    synthesis: np.ndarray, background: np.ndarray, mask: np.ndarray, erosion_px: int
) -> tuple[float, float]:
    """(PSNR dB, SSIM) of one (S, S) synthesis against its background in [-1, 1], over
    the pixels outside the generated mask eroded inward by ``erosion_px`` (the loss's
    region)."""
    outside = (
        ndimage.binary_erosion(mask < 0.5, iterations=erosion_px) if erosion_px else mask < 0.5
    )
    if not outside.any():
        return float("nan"), float("nan")
    error = np.mean((synthesis[outside] - background[outside]) ** 2)
    psnr = float(10 * np.log10(4.0 / error)) if error > 0 else float("inf")
    _, ssim_map = structural_similarity(synthesis, background, data_range=2.0, full=True)
    return psnr, float(ssim_map[outside].mean())


def mask_consistency(
    synthesis_hu: np.ndarray, background_hu: np.ndarray, mask: np.ndarray, change_hu: float
) -> float:
    """Dice of the generated mask (> 0.5) and the pixels changed by more than ``change_hu``."""
    predicted = mask > 0.5
    changed = np.abs(synthesis_hu - background_hu) > change_hu
    total = predicted.sum() + changed.sum()
    return float(2 * (predicted & changed).sum() / total) if total else float("nan")


def _finite(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=float)
    return rows[np.isfinite(rows).all(axis=1)]
