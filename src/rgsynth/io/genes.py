"""Gene-expression and clinical tables: reading with their quirks, checking, normalising.

The GEO table GSE103584 is genes × subjects, tab-separated, with an empty first header
field and ``NA`` for missing values. A folder cohort's table may be either way round (CSV
or TSV); the orientation is detected from which axis carries the imaging subject IDs.
Genes with any missing value among the subjects used are dropped (the real table: 22126 →
5172), values are log-transformed and standardised with statistics fitted on the training
subjects only, and those statistics are stored with the cache.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rgsynth.io.source import InputError

MISSING_VALUE_TOKENS = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")
# The real clinical file's missing tokens (matched case-insensitively, after stripping).
CLINICAL_MISSING_TOKENS = (
    *MISSING_VALUE_TOKENS,
    "Not Collected",
    "Not collected",
    "Not Assessed",
    "Not Recorded In Database",
    "Unknown",
)
CLINICAL_DATE_COLUMNS = (
    "CT Date",
    "PET Date",
    "Date of Recurrence",
    "Date of Last Known Alive",
    "Date of Death",
)
CLINICAL_ID_COLUMN = "Case ID"
_SD_FLOOR = 1e-8
# A cut or damaged .gz: gzip's EOFError escapes pandas (and the CLI would print a bare
# "Aborted!"); zlib.error is a corrupt stream; BadGzipFile is not gzip at all.
_DAMAGED_GZIP = (EOFError, zlib.error, gzip.BadGzipFile)


@dataclass
class ExpressionTable:
    """A parsed expression table.

    Attributes:
        values: genes × subjects, float64, NaN where missing (as published, not transformed).
        path: the file read.
        orientation: how the file was laid out, e.g. ``genes × subjects``.
        raw_text: the original cell text (genes × subjects), for naming bad values.
    """

    values: pd.DataFrame
    path: Path
    orientation: str
    raw_text: pd.DataFrame

    @property
    def subject_ids(self) -> list[str]:
        return [str(c) for c in self.values.columns]

    @property
    def gene_names(self) -> list[str]:
        return [str(g) for g in self.values.index]


def read_expression_table(path: Path, image_subject_ids: Iterable[str] = ()) -> ExpressionTable:
    """Read a CSV/TSV (optionally gzipped) expression table, either orientation.

    Raises:
        InputError: unreadable, truncated or damaged file, duplicated gene names or
            subject IDs.
    """
    path = Path(path)
    separator = "," if ".csv" in path.suffixes else "\t"
    try:
        text = pd.read_csv(
            path, sep=separator, header=None, dtype=str, keep_default_na=False, compression="infer"
        )
    except _DAMAGED_GZIP as error:
        raise InputError(
            "", path, f"unreadable expression table: truncated or damaged ({error})"
        ) from None
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise InputError("", path, f"unreadable expression table ({error})") from None
    if text.shape[0] < 2 or text.shape[1] < 2:
        raise InputError("", path, "expression table has no data rows or columns")
    column_ids = [c.strip() for c in text.iloc[0, 1:]]
    row_ids = [r.strip() for r in text.iloc[1:, 0]]
    body = text.iloc[1:, 1:].map(str.strip)
    body.index, body.columns = row_ids, column_ids
    known = set(image_subject_ids)
    by_columns, by_rows = len(known & set(column_ids)), len(known & set(row_ids))
    if by_rows > by_columns or (not known and len(row_ids) < len(column_ids)):
        body = body.T
        orientation = "subjects × genes"
    else:
        orientation = "genes × subjects"
    _refuse_duplicates(path, list(body.columns), "subject ID")
    _refuse_duplicates(path, list(body.index), "gene name")
    missing = body.isin(MISSING_VALUE_TOKENS)
    values = body.apply(pd.to_numeric, errors="coerce").astype(float)
    values[missing] = np.nan
    return ExpressionTable(values=values, path=path, orientation=orientation, raw_text=body)


def _refuse_duplicates(path: Path, names: list[str], what: str) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(names):
        if name in seen:
            subject = name if what == "subject ID" else ""
            raise InputError(
                subject,
                path,
                f"duplicated {what} {name!r} (entries {seen[name] + 1} and {position + 1})",
            )
        seen[name] = position


def bad_values(table: ExpressionTable, transform: str) -> dict[str, InputError]:
    """Subjects whose column holds a non-numeric, infinite or (for log2p1) ≤ −1 value.

    One problem per subject, naming the gene and the value, so a run can stop on the first
    or skip exactly those subjects.
    """
    problems: dict[str, InputError] = {}
    values, text = table.values, table.raw_text
    non_numeric = values.isna() & ~text.isin(MISSING_VALUE_TOKENS)
    infinite = np.isinf(values)
    too_low = (
        values <= -1.0
        if transform == "log2p1"
        else pd.DataFrame(False, values.index, values.columns)
    )
    for subject in values.columns:
        for flags, problem in (
            (non_numeric, "non-numeric value"),
            (infinite, "infinite value"),
            (
                too_low,
                "value <= -1, cannot take log2(x + 1) (is the table already logged? "
                "use --gene-transform none)",
            ),
        ):
            column = flags[subject].to_numpy()
            if column.any():
                gene = values.index[int(np.argmax(column))]
                problems[str(subject)] = InputError(
                    str(subject), table.path, f"gene {gene}: {problem} {text.at[gene, subject]!r}"
                )
                break
    return problems


def complete_genes(table: ExpressionTable, subject_ids: list[str]) -> list[str]:
    """Genes with no missing value among ``subject_ids`` (in table order)."""
    present = table.values[subject_ids].notna().all(axis=1)
    return [str(g) for g in table.values.index[present.to_numpy()]]


def gene_count_line(table: ExpressionTable, n_complete: int, n_subjects: int) -> str:
    """The line ``prepare`` prints: on the real table it reads 22126 → 5172."""
    return (
        f"genes: {table.values.shape[0]} in {table.path.name}, {n_complete} with no missing "
        f"value among the {n_subjects} subjects used"
    )


@dataclass
class GeneNormaliser:
    """Per-gene transform and standardisation fitted on the training subjects.

    Attributes:
        genes: gene names, in the order of the vectors produced.
        transform: ``log2p1`` or ``none``, applied before standardising.
        mean, sd: per-gene statistics of the transformed values on the training subjects.
        n_constant: genes with zero spread on the training subjects (sd set to 1).
    """

    genes: list[str]
    transform: str
    mean: np.ndarray
    sd: np.ndarray
    n_constant: int

    @classmethod
    def fit(
        cls, table: ExpressionTable, genes: list[str], train_ids: list[str], transform: str
    ) -> GeneNormaliser:
        if not train_ids:
            raise ValueError("no training subject with genes to fit the normalisation on")
        logged = _transform(table.values.loc[genes, train_ids].to_numpy(), transform)
        mean, sd = logged.mean(axis=1), logged.std(axis=1)
        constant = sd < _SD_FLOOR
        sd = np.where(constant, 1.0, sd)
        return cls(genes, transform, mean, sd, int(constant.sum()))

    def apply(self, table: ExpressionTable, subject_ids: list[str]) -> np.ndarray:
        """(subjects, genes) float32 standardised expression."""
        logged = _transform(table.values.loc[self.genes, subject_ids].to_numpy(), self.transform)
        return ((logged - self.mean[:, None]) / self.sd[:, None]).T.astype(np.float32)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"gene": self.genes, "mean": self.mean, "sd": self.sd})


def _transform(values: np.ndarray, transform: str) -> np.ndarray:
    return np.log2(values + 1.0) if transform == "log2p1" else values


def read_clinical(path: Path) -> pd.DataFrame:
    """The clinical CSV indexed by ``Case ID``, every cell a string or NaN.

    Survives the real file's quirks: CRLF line ends (and a BOM), column names with stray
    spaces (``Histology ``) stripped but never collapsed inside, quoted names holding
    commas (``"Pleural invasion (elastic, visceral, or parietal)"``), cells stripped, and
    every missing token (``Not Collected``, ``Not collected``, ``N/A``, ``Not Assessed``,
    ``Not Recorded In Database``, ``Unknown``, an empty cell, ...; any case) made NaN. Rows
    keep the file's order (the real file lists AMC before R01). Dates stay text; see
    :func:`clinical_dates`.

    Raises:
        InputError: unreadable, no ``Case ID`` column, or a duplicated Case ID.
    """
    path = Path(path)
    try:
        table = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig"
        )
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise InputError("", path, f"unreadable clinical table ({error})") from None
    table.columns = [str(c).strip() for c in table.columns]
    if CLINICAL_ID_COLUMN not in table.columns:
        raise InputError("", path, f"no {CLINICAL_ID_COLUMN!r} column in the clinical table")
    table = table.map(str.strip)
    missing = {token.casefold() for token in CLINICAL_MISSING_TOKENS}
    fields = table.columns != CLINICAL_ID_COLUMN
    table.loc[:, fields] = table.loc[:, fields].mask(
        table.loc[:, fields].map(lambda cell: cell.casefold() in missing)
    )
    _refuse_duplicates(path, list(table[CLINICAL_ID_COLUMN]), "subject ID")
    return table.set_index(CLINICAL_ID_COLUMN)


def clinical_dates(clinical: pd.DataFrame) -> pd.DataFrame:
    """The date columns of a :func:`read_clinical` table (those present) as datetimes.

    The real file writes ``M/D/YYYY`` without zero padding (``4/7/1993`` is 7 April);
    a cell that is no such date becomes NaT.
    """
    columns = [c for c in CLINICAL_DATE_COLUMNS if c in clinical.columns]
    return pd.DataFrame(
        {c: pd.to_datetime(clinical[c], format="%m/%d/%Y", errors="coerce") for c in columns},
        index=clinical.index,
    )
