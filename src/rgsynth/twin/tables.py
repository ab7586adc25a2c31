"""The twin's tables: the GEO RNA-seq matrix and the clinical CSV, with the real files' quirks.

RNA-seq (GSE103584_R01_NSCLC_RNAseq.txt.gz): tab-separated, genes as rows, subject IDs as
columns, an empty first header field, ``NA`` for missing values, non-negative values with
heavy-tailed outliers. Clinical (NSCLCR01Radiogenomic_DATA_LABELS_...csv): the real column
names, including ``Histology `` with its trailing space, and mixed missing tokens.

With ``quirks="collection"`` the tables are written as the real files are (the values drawn
are the clean twin's; only the writing differs, and every choice it makes comes from its own
random stream): the GEO table holds R01 subjects only, in shuffled column order, a few gene
symbols with slashes or lower case and a few rows entirely ``NA``
(:func:`collection_rnaseq`); the clinical CSV has the real file's whole column set (dates as
``M/D/YYYY``), AMC rows first, stray spaces in headers, a quoted header with commas and the
real file's full set of missing tokens (:func:`collection_clinical_rows`,
:func:`write_collection_clinical`). The clinical CSV ends its lines with CRLF either way.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from dataclasses import dataclass
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


# --- quirks="collection": the tables as the real collection's files are -------------------

# Gene symbols of the real GEO table that trip naive code: a slash, a lower-case initial.
COLLECTION_GENE_SYMBOLS = ("1/2-SBSRNA4", "tAKR", "snoU13", "Y_RNA")
# Extra rows with no value at all, named like the withdrawn / unmapped symbols of old tables.
ALL_NA_GENE_SYMBOLS = ("FLJ45340", "KIAA1804", "LOC100128288", "C10orf131")

# The real clinical file's columns, in its order (keys as in the clean twin's rows).
COLLECTION_CLINICAL_COLUMNS = (
    "Case ID",
    "Patient affiliation",
    "Age at Histological Diagnosis",
    "Weight (lbs)",
    "Gender",
    "Ethnicity",
    "Smoking status",
    "Pack Years",
    "Quit Smoking Year",
    "%GG",
    "Tumor Location (choice=RUL)",
    "Tumor Location (choice=RML)",
    "Tumor Location (choice=RLL)",
    "Tumor Location (choice=LUL)",
    "Tumor Location (choice=LLL)",
    "Tumor Location (choice=L Lingula)",
    "Tumor Location (choice=Unknown)",
    "Histology ",
    "Pathological T stage",
    "Pathological N stage",
    "Pathological M stage",
    "Histopathological Grade",
    "Lymphovascular invasion",
    "Pleural invasion (elastic, visceral, or parietal)",
    "EGFR mutation status",
    "KRAS mutation status",
    "ALK translocation status",
    "Adjuvant Treatment",
    "Chemotherapy",
    "Radiation",
    "Recurrence",
    "Recurrence Location",
    "Date of Recurrence",
    "Date of Last Known Alive",
    "Survival Status",
    "Date of Death",
    "Time to Death (days)",
    "CT Date",
    "Days between CT and surgery",
    "PET Date",
)
# Headers written with stray spaces (besides ``Histology ``, which is so in every twin).
COLLECTION_HEADER_SPELLING = {
    "Survival Status": "Survival Status ",
    "Pathological N stage": " Pathological N stage",
    "Date of Death": "Date of Death  ",
}
COLLECTION_MISSING_TOKENS = (
    "Not Collected",
    "Not collected",
    "N/A",
    "Not Assessed",
    "Not Recorded In Database",
    "Unknown",
)
_REMIX_TOKENS = ("Not Assessed", "Not Recorded In Database", "Not collected", "Not Collected")


def collection_has_rnaseq(subject_id: str, has_rnaseq: bool) -> bool:
    """Whether a subject is in the collection's GEO table: GSE103584 holds R01 subjects only,
    so no AMC subject has RNA-seq, whatever the clean twin drew."""
    return bool(has_rnaseq) and subject_id.startswith("R01-")


def collection_table_rngs(seed: int) -> dict[str, np.random.Generator]:
    """The table quirks' own random streams, one per file, apart from every stream the clean
    twin draws from (so the images and genes drawn do not move)."""
    metadata, rnaseq, clinical = np.random.SeedSequence([seed, 23, 7]).spawn(3)
    return {
        "metadata": np.random.default_rng(metadata),
        "rnaseq": np.random.default_rng(rnaseq),
        "clinical": np.random.default_rng(clinical),
    }


@dataclass(frozen=True)
class GeoTable:
    """The GEO table as written.

    Attributes:
        gene_names: row names, in file order (model genes, some renamed, and all-NA rows).
        subject_ids: column names, in file order.
        values, missing: (rows, columns), in file order.
        model_rows: for each model gene (model order), its row in the file.
        all_na_rows: the names of the rows that are no model gene (every value ``NA``).
    """

    gene_names: list[str]
    subject_ids: list[str]
    values: np.ndarray
    missing: np.ndarray
    model_rows: np.ndarray
    all_na_rows: list[str]

    def model_gene_names(self) -> list[str]:
        """The model genes' names as written, in model order."""
        return [self.gene_names[r] for r in self.model_rows]

    def model_complete(self) -> np.ndarray:
        """Per model gene (model order): no missing value in the written table."""
        return ~self.missing[self.model_rows].any(axis=1)


def collection_rnaseq(
    rng: np.random.Generator,
    gene_names: list[str],
    subject_ids: list[str],
    values: np.ndarray,
    missing: np.ndarray,
) -> GeoTable:
    """The collection's layout of a GEO table whose values are already drawn: columns in
    shuffled order, a few incomplete genes renamed to symbols with a slash or a lower-case
    initial, and all-``NA`` rows inserted at random places. No value changes."""
    n_genes, n_subjects = values.shape
    order = rng.permutation(n_subjects)
    values, missing = values[:, order], missing[:, order]
    ids = [subject_ids[i] for i in order]
    names = list(gene_names)
    incomplete = np.flatnonzero(missing.any(axis=1))
    n_renamed = min(len(COLLECTION_GENE_SYMBOLS), incomplete.size)
    for gene, symbol in zip(
        sorted(rng.choice(incomplete, n_renamed, replace=False)),
        COLLECTION_GENE_SYMBOLS[:n_renamed],
        strict=True,
    ):
        names[int(gene)] = symbol
    extra = [s for s in ALL_NA_GENE_SYMBOLS if s not in set(names)]
    n_rows = n_genes + len(extra)
    extra_rows = np.sort(rng.choice(n_rows, len(extra), replace=False))
    is_extra = np.zeros(n_rows, dtype=bool)
    is_extra[extra_rows] = True
    model_rows = np.flatnonzero(~is_extra)
    out_values = np.zeros((n_rows, n_subjects))
    out_missing = np.ones((n_rows, n_subjects), dtype=bool)
    out_values[model_rows], out_missing[model_rows] = values, missing
    out_names = [""] * n_rows
    for row, name in zip(model_rows, names, strict=True):
        out_names[row] = name
    for row, name in zip(extra_rows, extra, strict=True):
        out_names[row] = name
    return GeoTable(out_names, ids, out_values, out_missing, model_rows, extra)


def collection_clinical_rows(
    rng: np.random.Generator, rows: list[dict[str, str]], ct_dates: list[dt.date]
) -> list[dict[str, str]]:
    """The clean twin's clinical rows with the real file's other columns added (drawn so
    they agree with the row: a recurrence date only after a recurrence, a death date only
    for the dead, the CT date that of the subject's DICOM study) and missing cells given
    the real file's other tokens. Every value present in the clean row is kept as it is."""
    out = []
    for row, ct_date in zip(rows, ct_dates, strict=True):
        new = dict(row)
        for column, value in row.items():
            if value in MISSING_TOKENS and column != "Case ID" and rng.random() < 0.5:
                new[column] = str(rng.choice(_REMIX_TOKENS))
        new.update(_collection_extras(rng, row, ct_date))
        out.append({column: new[column] for column in COLLECTION_CLINICAL_COLUMNS})
    return out


def _collection_extras(rng: np.random.Generator, row: dict[str, str], ct: dt.date) -> dict:
    def after(low: int, high: int, start: dt.date = ct) -> dt.date:
        return start + dt.timedelta(days=int(rng.integers(low, high)))

    def sometimes_missing(value: str, p: float = 0.08) -> str:
        return str(rng.choice(COLLECTION_MISSING_TOKENS[:5])) if rng.random() < p else value

    smoker = row["Smoking status"]
    quit_year = str(ct.year - int(rng.integers(1, 30))) if smoker == "Former" else "N/A"
    adjuvant = rng.random() < 0.3
    extras = {
        "Quit Smoking Year": sometimes_missing(quit_year),
        "Tumor Location (choice=Unknown)": "Unchecked",
        "Pleural invasion (elastic, visceral, or parietal)": sometimes_missing(
            str(rng.choice(["No", "Yes"], p=[0.8, 0.2])), 0.15
        ),
        "Adjuvant Treatment": "Yes" if adjuvant else "No",
        "Chemotherapy": "Yes" if adjuvant and rng.random() < 0.85 else "No",
        "Radiation": "Yes" if adjuvant and rng.random() < 0.3 else "No",
        "CT Date": _us_date(ct),
        "Days between CT and surgery": sometimes_missing(str(int(rng.integers(1, 120)))),
        "PET Date": sometimes_missing(_us_date(after(-30, 30)), 0.25),
    }
    recurrence, last_event = row["Recurrence"], ct
    if recurrence == "yes":
        last_event = after(90, 1500)
        extras["Recurrence Location"] = str(rng.choice(["local", "regional", "distant"]))
        extras["Date of Recurrence"] = _us_date(last_event)
    else:
        extras["Recurrence Location"] = "N/A" if recurrence == "no" else "Not Recorded In Database"
        extras["Date of Recurrence"] = ""
    if row["Survival Status"] == "Dead":
        death = after(30, 1500, last_event)
        extras["Date of Death"] = _us_date(death)
        extras["Time to Death (days)"] = str((death - ct).days)
        extras["Date of Last Known Alive"] = _us_date(death)
    else:
        extras["Date of Death"] = "N/A"
        extras["Time to Death (days)"] = "N/A"
        extras["Date of Last Known Alive"] = _us_date(after(30, 2500, last_event))
    return extras


def write_collection_clinical(path: Path, rows: list[dict[str, str]]) -> None:
    """Write rows of :data:`COLLECTION_CLINICAL_COLUMNS` as the real file is: AMC rows first,
    headers with stray spaces, CRLF line ends (the comma header comes out quoted)."""
    header = [COLLECTION_HEADER_SPELLING.get(c, c) for c in COLLECTION_CLINICAL_COLUMNS]
    ordered = sorted(rows, key=lambda r: not r["Case ID"].startswith("AMC-"))  # stable
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(header)
        for row in ordered:
            writer.writerow([row[c] for c in COLLECTION_CLINICAL_COLUMNS])


def _us_date(date: dt.date) -> str:
    """M/D/YYYY without zero padding, as the real clinical file writes dates."""
    return f"{date.month}/{date.day}/{date.year}"
