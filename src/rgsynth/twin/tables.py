"""The twin's tables: the GEO RNA-seq matrix and the clinical CSV, with the real files' quirks.

RNA-seq (GSE103584_R01_NSCLC_RNAseq.txt.gz): tab-separated, genes as rows, subject IDs as
columns, an empty first header field, ``NA`` for missing values, non-negative values with
heavy-tailed outliers. Clinical (NSCLCR01Radiogenomic_DATA_LABELS_...csv): the real column
names, including ``Histology `` with its trailing space, and mixed missing tokens.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np

RNASEQ_FILENAME = "GSE103584_R01_NSCLC_RNAseq.txt.gz"
CLINICAL_FILENAME = "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
MISSING_TOKENS = ("N/A", "Not Collected", "Not collected", "Unknown", "")

CLINICAL_COLUMNS = (
    "Case ID",
    "Patient affiliation",
    "Age at Histological Diagnosis",
    "Weight (lbs)",
    "Gender",
    "Ethnicity",
    "Smoking status",
    "Pack Years",
    "%GG",
    "Tumor Location (choice=RUL)",
    "Tumor Location (choice=RML)",
    "Tumor Location (choice=RLL)",
    "Tumor Location (choice=LUL)",
    "Tumor Location (choice=LLL)",
    "Tumor Location (choice=L Lingula)",
    "Histology ",
    "Pathological T stage",
    "Pathological N stage",
    "Pathological M stage",
    "Histopathological Grade",
    "Lymphovascular invasion",
    "EGFR mutation status",
    "KRAS mutation status",
    "ALK translocation status",
    "Recurrence",
    "Survival Status",
)


def rnaseq_values(
    rng: np.random.Generator, log2_expression: np.ndarray, n_complete: int
) -> tuple[np.ndarray, np.ndarray]:
    """RNA-seq-like values and a missing mask from log2 expression (genes × subjects).

    Exactly ``n_complete`` genes have no missing value; every other gene misses at least one
    subject (most a few, some many), as in the real table where 22126 genes shrink to 5172.
    Values are ``2**log2 - 1`` clipped at 0 (many low genes are exact zeros) with about
    0.3 % of entries inflated 16- to 500-fold.
    """
    n_genes, n_subjects = log2_expression.shape
    values = np.clip(np.exp2(log2_expression) - 1.0, 0.0, None)
    outliers = rng.random(values.shape) < 0.003
    values[outliers] *= np.exp2(rng.uniform(4.0, 9.0, int(outliers.sum())))
    missing = np.zeros(values.shape, dtype=bool)
    incomplete = rng.permutation(n_genes)[n_complete:]
    counts = np.minimum(1 + rng.geometric(0.12, incomplete.size), n_subjects)
    for gene, count in zip(incomplete, counts, strict=True):
        missing[gene, rng.choice(n_subjects, size=count, replace=False)] = True
    return values, missing


def write_rnaseq(
    path: Path,
    gene_names: list[str],
    subject_ids: list[str],
    values: np.ndarray,
    missing: np.ndarray,
) -> None:
    """Write the GEO-style table (gzip with a zero mtime, so the bytes are deterministic)."""
    buffer = io.StringIO()
    buffer.write("\t" + "\t".join(subject_ids) + "\n")
    for g, name in enumerate(gene_names):
        cells = ["NA" if missing[g, s] else f"{values[g, s]:.6g}" for s in range(len(subject_ids))]
        buffer.write(name + "\t" + "\t".join(cells) + "\n")
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(buffer.getvalue().encode())


def clinical_rows(rng: np.random.Generator, subjects: list[dict]) -> list[dict[str, str]]:
    """One clinical row per subject; ``subjects`` carry id, subtype, traits and nodule.

    Histology and EGFR status depend on the molecular subtype, %GG and the tumour location
    on the rendered nodule, so the clinical table agrees with the images and the genes.
    """
    rows = []
    for subject in subjects:
        rows.append(_clinical_row(rng, subject))
    return rows


def _clinical_row(rng: np.random.Generator, subject: dict) -> dict[str, str]:
    sid, subtype = subject["subject_id"], int(subject["subtype"])
    traits, nodule = subject["traits"], subject["nodule"]
    histology = (
        "Adenocarcinoma"
        if subtype != 4 and rng.random() < 0.82
        else rng.choice(["Squamous cell carcinoma", "NSCLC NOS (not otherwise specified)"])
    )
    egfr_mutant = rng.random() < (0.45 if subtype == 0 else 0.12)
    kras_mutant = not egfr_mutant and rng.random() < 0.28
    smoker = rng.choice(["Current", "Former", "Nonsmoker"], p=[0.2, 0.6, 0.2])
    diameter = float(nodule["diameter_mm"])
    row = {
        "Case ID": sid,
        "Patient affiliation": "VA" if sid.startswith("R01") and rng.random() < 0.4 else "Stanford",
        "Age at Histological Diagnosis": str(subject["age"]),
        "Weight (lbs)": f"{rng.normal(170, 35):.0f}",
        "Gender": "Male" if subject["sex"] == "M" else "Female",
        "Ethnicity": str(
            rng.choice(
                ["Caucasian", "Asian", "African-American", "Hispanic/Latino"],
                p=[0.7, 0.15, 0.08, 0.07],
            )
        ),
        "Smoking status": str(smoker),
        "Pack Years": "N/A" if smoker == "Nonsmoker" else f"{rng.integers(5, 80)}",
        "%GG": _percent_ground_glass(float(traits["ground_glass_volume_fraction"])),
        "Histology ": str(histology),
        "Pathological T stage": _t_stage(diameter),
        "Pathological N stage": str(rng.choice(["N0", "N1", "N2"], p=[0.75, 0.15, 0.1])),
        "Pathological M stage": str(rng.choice(["M0", "M1b"], p=[0.97, 0.03])),
        "Histopathological Grade": str(
            rng.choice(
                [
                    "G1 Well differentiated",
                    "G2 Moderately differentiated",
                    "G3 Poorly differentiated",
                ]
            )
        ),
        "Lymphovascular invasion": str(rng.choice(["Absent", "Present"], p=[0.8, 0.2])),
        "EGFR mutation status": "Mutant" if egfr_mutant else "Wildtype",
        "KRAS mutation status": "Mutant" if kras_mutant else "Wildtype",
        "ALK translocation status": "Wildtype",
        "Recurrence": str(rng.choice(["no", "yes"], p=[0.72, 0.28])),
        "Survival Status": str(rng.choice(["Alive", "Dead"], p=[0.7, 0.3])),
    }
    for lobe in ("RUL", "RML", "RLL", "LUL", "LLL", "L Lingula"):
        row[f"Tumor Location (choice={lobe})"] = (
            "Checked" if nodule["lobe"] == lobe else "Unchecked"
        )
    # The real table's gaps: each field is missing now and then, with a mix of tokens.
    for column in (
        "%GG",
        "EGFR mutation status",
        "KRAS mutation status",
        "ALK translocation status",
        "Histopathological Grade",
        "Lymphovascular invasion",
        "Weight (lbs)",
        "Pack Years",
        "Recurrence",
    ):
        if rng.random() < 0.12:
            row[column] = str(rng.choice(MISSING_TOKENS))
    return row


def write_clinical(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CLINICAL_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


def _percent_ground_glass(fraction: float) -> str:
    if fraction <= 0.0:
        return "0%"
    if fraction >= 1.0:
        return "100%"
    for upper, label in ((0.25, ">0 - 25%"), (0.5, "25 - 50%"), (0.75, "50 - 75%")):
        if fraction <= upper:
            return label
    return "75 - < 100%"


def _t_stage(diameter_mm: float) -> str:
    for limit, stage in ((10, "T1a"), (20, "T1b"), (30, "T1c"), (40, "T2a")):
        if diameter_mm <= limit:
            return stage
    return "T2b"
