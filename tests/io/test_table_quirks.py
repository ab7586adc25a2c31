"""The collection's table quirks: the twin writes each, the naive reading of each goes wrong,
and our readers get every subject's values equal to the clean twin's.

Each test builds its small tables in ``tmp_path`` with the twin's own writers; the last ones
compare a whole ``quirks="collection"`` twin with the clean twin of the same seed.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rgsynth.io import genes
from rgsynth.io.tcia import _folders_from_metadata, discover
from rgsynth.twin import tables
from rgsynth.twin.cohort import METADATA_COLUMNS, _windows_locations

R01 = [f"R01-{i:03d}" for i in range(1, 7)]
AMC = ["AMC-001", "AMC-002"]


# --- GEO table ------------------------------------------------------------------------------


def _geo_pair(tmp_path: Path, n_genes: int = 40, seed: int = 0):
    """The clean twin's GEO table (R01 and AMC columns) and the collection's, same values."""
    rng = np.random.default_rng(seed)
    ids = R01 + AMC
    log2 = rng.normal(4.0, 2.0, (n_genes, len(ids)))
    values, missing = tables.rnaseq_values(rng, log2, 12)
    names = [f"TG{i + 1:05d}" for i in range(n_genes)]
    clean = tmp_path / "clean.txt.gz"
    tables.write_rnaseq(clean, names, ids, values, missing)
    keep = [n for n, sid in enumerate(ids) if tables.collection_has_rnaseq(sid, True)]
    geo = tables.collection_rnaseq(
        tables.collection_table_rngs(seed)["rnaseq"],
        names,
        [ids[n] for n in keep],
        values[:, keep],
        missing[:, keep],
    )
    quirky = tmp_path / tables.RNASEQ_FILENAME
    tables.write_rnaseq(quirky, geo.gene_names, geo.subject_ids, geo.values, geo.missing)
    return clean, quirky, geo, names


def _geo_lines(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt") as handle:
        return [line.split("\t") for line in handle.read().splitlines()]


def test_geo_columns_are_not_sorted(tmp_path: Path) -> None:
    clean_path, quirky_path, geo, names = _geo_pair(tmp_path)
    lines = _geo_lines(quirky_path)
    assert lines[0][0] == "", "the header still starts with a tab"
    header = lines[0][1:]
    assert sorted(header) == R01 and header != R01
    clean = genes.read_expression_table(clean_path, R01 + AMC)
    # naive: positional columns, taken to be in sorted subject order
    body = pd.DataFrame([row[1:] for row in lines[1:]], index=[row[0] for row in lines[1:]])
    naive = body.replace("NA", np.nan).astype(float)
    naive.columns = sorted(header)
    naive = naive.loc[geo.model_gene_names()].set_axis(names)
    wrong = [s for s in R01 if not naive[s].equals(clean.values[s])]
    assert wrong, "positional columns would give other subjects' values"
    # ours: by name
    table = genes.read_expression_table(quirky_path, R01)
    for subject in R01:
        ours = table.values.loc[geo.model_gene_names(), subject].to_numpy()
        np.testing.assert_array_equal(ours, clean.values.loc[names, subject].to_numpy())


def test_geo_table_has_no_amc_columns(tmp_path: Path) -> None:
    assert tables.collection_has_rnaseq("R01-004", True)
    assert not tables.collection_has_rnaseq("R01-004", False)
    assert not tables.collection_has_rnaseq("AMC-001", True)
    clean_path, quirky_path, _, _ = _geo_pair(tmp_path)
    assert set(genes.read_expression_table(clean_path).subject_ids) == set(R01 + AMC)
    table = genes.read_expression_table(quirky_path, R01 + AMC)
    assert table.orientation == "genes × subjects" and set(table.subject_ids) == set(R01)
    # naive: the clean twin's has_rnaseq says AMC subjects have genes; this table has none
    with pytest.raises(KeyError):
        table.values[AMC]
    with_genes = [s for s in R01 + AMC if tables.collection_has_rnaseq(s, True)]
    assert genes.complete_genes(table, with_genes)  # ours: asks only for subjects it has


def test_gene_symbols_with_slash_and_lower_case(tmp_path: Path) -> None:
    clean_path, quirky_path, geo, names = _geo_pair(tmp_path)
    table = genes.read_expression_table(quirky_path, R01)
    clean = genes.read_expression_table(clean_path, R01 + AMC)
    renamed = {
        written: original
        for written, original in zip(geo.model_gene_names(), names, strict=True)
        if written != original
    }
    assert set(renamed) == set(tables.COLLECTION_GENE_SYMBOLS)
    assert {"1/2-SBSRNA4", "tAKR"} <= set(table.gene_names)
    # naive: symbols upper-cased, or used as file names
    with pytest.raises(KeyError):
        table.values.loc["tAKR".upper()]
    with pytest.raises(FileNotFoundError):
        (tmp_path / "1/2-SBSRNA4.tsv").write_text("x")  # the slash makes it a folder "1"
    # ours: the symbol is a plain row label, its values the clean gene's
    for written, original in renamed.items():
        np.testing.assert_array_equal(
            table.values.loc[written, R01].to_numpy(), clean.values.loc[original, R01].to_numpy()
        )
        assert written not in genes.complete_genes(table, R01), "only incomplete genes renamed"


def test_all_na_gene_rows(tmp_path: Path) -> None:
    clean_path, quirky_path, geo, _ = _geo_pair(tmp_path)
    table = genes.read_expression_table(quirky_path, R01)
    assert geo.all_na_rows == list(tables.ALL_NA_GENE_SYMBOLS)
    assert [g for g in table.gene_names if g not in set(geo.model_gene_names())] == geo.all_na_rows
    assert table.values.loc[geo.all_na_rows].isna().all().all()
    assert table.values.shape[0] == len(geo.model_rows) + len(geo.all_na_rows)
    # naive: every row taken as a gene
    naive = genes.GeneNormaliser.fit(table, table.gene_names, R01, "log2p1")
    assert np.isnan(naive.mean).any()
    # ours: only complete genes, normalised exactly as the clean table's
    clean = genes.read_expression_table(clean_path, R01 + AMC)
    kept = genes.complete_genes(table, R01)
    assert kept == genes.complete_genes(clean, R01)
    ours = genes.GeneNormaliser.fit(table, kept, R01, "log2p1").apply(table, R01)
    expected = genes.GeneNormaliser.fit(clean, kept, R01, "log2p1").apply(clean, R01)
    np.testing.assert_array_equal(ours, expected)
    assert np.isfinite(ours).all()


# --- clinical CSV ---------------------------------------------------------------------------

LOBES = ("RUL", "RML", "RLL", "LUL", "LLL", "L Lingula")


def _clinical_pair(tmp_path: Path, n_r01: int = 40, n_amc: int = 12):
    """The clean twin's clinical CSV and the collection's, from the same drawn rows."""
    ids = [f"R01-{i:03d}" for i in range(1, n_r01 + 1)] + [
        f"AMC-{i:03d}" for i in range(1, n_amc + 1)
    ]
    subjects = [
        {
            "subject_id": sid,
            "subtype": i % 3,
            "age": 50 + i % 30,
            "sex": "MF"[i % 2],
            "traits": {"ground_glass_volume_fraction": (i % 5) / 4},
            "nodule": {"diameter_mm": 6.0 + i % 35, "lobe": LOBES[i % 6]},
        }
        for i, sid in enumerate(ids)
    ]
    rows = tables.clinical_rows(np.random.default_rng(0), subjects)
    ct_dates = [dt.date(1993, 4, 7) + dt.timedelta(days=97 * i) for i in range(len(ids))]
    clean = tmp_path / "clean.csv"
    tables.write_clinical(clean, rows)
    quirky = tmp_path / tables.CLINICAL_FILENAME
    collection = tables.collection_clinical_rows(
        tables.collection_table_rngs(0)["clinical"], rows, ct_dates
    )
    tables.write_collection_clinical(quirky, collection)
    return clean, quirky, dict(zip(ids, ct_dates, strict=True))


def _same_values(quirky: pd.DataFrame, clean: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(quirky.loc[clean.index, clean.columns], clean)


def test_clinical_crlf_line_ends(tmp_path: Path) -> None:
    clean_path, quirky_path, _ = _clinical_pair(tmp_path)
    data = quirky_path.read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n") > 0
    naive_header = data.decode().split("\n")[0].split(",")
    assert naive_header[-1] == "PET Date\r"  # naive: split on \n
    table = genes.read_clinical(quirky_path)
    assert table.columns[-1] == "PET Date"
    assert not table.stack().str.contains("\r").any()
    _same_values(table, genes.read_clinical(clean_path))


def test_clinical_headers_with_stray_spaces(tmp_path: Path) -> None:
    clean_path, quirky_path, _ = _clinical_pair(tmp_path)
    naive = pd.read_csv(quirky_path, dtype=str)
    for spelled in ("Histology ", "Survival Status ", " Pathological N stage", "Date of Death  "):
        assert spelled in naive.columns
    with pytest.raises(KeyError):
        naive["Histology"]
    table = genes.read_clinical(quirky_path)
    for name in ("Histology", "Survival Status", "Pathological N stage", "Date of Death"):
        assert name in table.columns
    assert not [c for c in table.columns if c != c.strip()]
    _same_values(table, genes.read_clinical(clean_path))


def test_clinical_quoted_header_with_commas(tmp_path: Path) -> None:
    _, quirky_path, _ = _clinical_pair(tmp_path)
    lines = quirky_path.read_text().splitlines()
    column = "Pleural invasion (elastic, visceral, or parietal)"
    assert f'"{column}"' in lines[0]
    naive = lines[0].split(",")  # naive: split the header on commas
    assert len(naive) == len(lines[1].split(",")) + 2 and "Pleural invasion (elastic" in naive[23]
    table = genes.read_clinical(quirky_path)
    assert list(table.columns).count(column) == 1
    assert table.shape[1] == len(tables.COLLECTION_CLINICAL_COLUMNS) - 1
    assert set(table[column].dropna()) == {"No", "Yes"}


def test_clinical_missing_tokens(tmp_path: Path) -> None:
    clean_path, quirky_path, _ = _clinical_pair(tmp_path)
    raw = pd.read_csv(quirky_path, dtype=str, keep_default_na=False)
    for token in tables.COLLECTION_MISSING_TOKENS:
        assert raw.isin([token]).any().any(), token
    # naive: the tokens this reader knew before (no "Not Assessed", "Not Recorded In Database")
    before = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]
    old = pd.read_csv(
        quirky_path,
        dtype=str,
        keep_default_na=False,
        na_values=[*before, "Not Collected", "Not collected", "Unknown"],
    )
    assert old.isin(["Not Assessed"]).any().any()
    assert old.isin(["Not Recorded In Database"]).any().any()
    table = genes.read_clinical(quirky_path)
    assert not table.isin(list(tables.COLLECTION_MISSING_TOKENS)).any().any()
    _same_values(table, genes.read_clinical(clean_path))


def test_clinical_amc_rows_first(tmp_path: Path) -> None:
    clean_path, quirky_path, ct_dates = _clinical_pair(tmp_path)
    ids = list(ct_dates)
    raw = pd.read_csv(quirky_path, dtype=str, keep_default_na=False)
    order = list(raw["Case ID"])
    assert order == [s for s in ids if s.startswith("AMC-")] + [
        s for s in ids if s.startswith("R01-")
    ]
    clean = genes.read_clinical(clean_path)
    # naive: rows taken in the subjects' order
    naive = raw.set_axis(ids)["Age at Histological Diagnosis"]
    assert not naive.equals(clean["Age at Histological Diagnosis"].loc[ids])
    table = genes.read_clinical(quirky_path)
    assert list(table.index) == order
    _same_values(table, clean)


def test_clinical_dates_are_unpadded_month_first(tmp_path: Path) -> None:
    _, quirky_path, ct_dates = _clinical_pair(tmp_path)
    table = genes.read_clinical(quirky_path)
    ct = table["CT Date"]
    assert ct["R01-001"] == "4/7/1993"  # 7 April 1993, no zero padding
    assert ct.str.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}").all()
    # naive: ISO dates, or day first
    assert pd.to_datetime(ct, format="%Y-%m-%d", errors="coerce").isna().all()
    with pytest.raises(ValueError):
        dt.date.fromisoformat(ct["R01-001"])
    day_first = pd.to_datetime(ct, format="%d/%m/%Y", errors="coerce")
    assert day_first["R01-001"] == pd.Timestamp(1993, 7, 4)
    # ours
    dates = genes.clinical_dates(table)
    assert set(dates.columns) == set(genes.CLINICAL_DATE_COLUMNS)
    assert [d.date() for d in dates["CT Date"]] == [ct_dates[s] for s in table.index]
    dead = table["Survival Status"] == "Dead"
    assert dead.any() and dates.loc[dead, "Date of Death"].notna().all()
    days = (dates.loc[dead, "Date of Death"] - dates.loc[dead, "CT Date"]).dt.days
    known = table.loc[dead, "Time to Death (days)"].notna()
    assert (days[known] == table.loc[dead, "Time to Death (days)"][known].astype(int)).all()
    assert dates.loc[~dead, "Date of Death"].isna().all()
    relapsed = table["Recurrence"] == "yes"
    assert (dates.loc[relapsed, "Date of Recurrence"] > dates.loc[relapsed, "CT Date"]).all()


def test_clean_clinical_header_unchanged(tmp_path: Path) -> None:
    """Clean twins keep their header (the golden outputs hash the whole file)."""
    clean_path, _, _ = _clinical_pair(tmp_path)
    with open(clean_path, newline="") as handle:
        header = next(csv.reader(handle))
    assert header == list(tables.CLINICAL_COLUMNS)


# --- metadata.csv ---------------------------------------------------------------------------

SERIES = "3.000000-Chest  1.0  B45f-12345"  # double spaces, as the real folder names have


def _tree(tmp_path: Path) -> tuple[Path, list[dict[str, str]]]:
    root = tmp_path / "download"
    rows = []
    for subject in ("R01-001", "R01-002", "AMC-001"):
        folder = Path("NSCLC Radiogenomics", subject, "01-02-1995-NA-CHEST-00001", SERIES)
        (root / folder).mkdir(parents=True)
        (root / folder / "1-001.dcm").write_bytes(b"")
        row = dict.fromkeys(METADATA_COLUMNS, "")
        row.update({"Subject ID": subject, "File Location": f"./{folder.as_posix()}"})
        rows.append(row)
    return root, rows


def _write_metadata(root: Path, rows: list[dict[str, str]]) -> None:
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(METADATA_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


def test_metadata_windows_paths_and_double_spaces(tmp_path: Path) -> None:
    root, rows = _tree(tmp_path)
    rows = _windows_locations(np.random.default_rng(1), rows)
    windows = [r for r in rows if r["File Location"].startswith(".\\")]
    posix = [r for r in rows if r["File Location"].startswith("./")]
    assert windows and posix and len(windows) + len(posix) == len(rows)
    assert all("/" not in r["File Location"] for r in windows)
    _write_metadata(root, rows)
    with open(root / "metadata.csv", newline="") as handle:
        locations = {r["Subject ID"]: r["File Location"] for r in csv.DictReader(handle)}
    assert all(SERIES in location for location in locations.values())  # written as is
    # naive: a backslash path is one odd file name on POSIX; collapsing spaces loses the folder
    for row in windows:
        assert not (root / row["File Location"]).exists()
    for row in posix:
        assert (root / row["File Location"]).is_dir()
        assert not (root / " ".join(row["File Location"].split())).exists()
    # ours
    folders = _folders_from_metadata(root)
    assert sorted(folders) == sorted(locations)
    for subject, found in folders.items():
        (folder,) = found
        assert folder.is_dir() and folder.name == SERIES
        assert folder.relative_to(root).parts[:2] == ("NSCLC Radiogenomics", subject)
    sources, problems = discover(root)
    assert not problems and [s.subject_id for s in sources] == sorted(locations)
    assert all(p.is_dir() and p.name == SERIES for s in sources for p in s.paths)


# --- a whole collection twin against the clean twin of the same seed ------------------------


def _truth(cohort: Path) -> dict:
    return json.loads((cohort / "ground_truth.json").read_text())


@pytest.mark.slow
def test_collection_twin_genes_equal_the_clean_twin(
    collection_cohort: Path, tiny_cohort: Path
) -> None:
    clean_truth, truth = _truth(tiny_cohort), _truth(collection_cohort)
    clean = genes.read_expression_table(tiny_cohort / tables.RNASEQ_FILENAME)
    table = genes.read_expression_table(collection_cohort / tables.RNASEQ_FILENAME)
    with_genes = [s["subject_id"] for s in truth["subjects"] if s["has_rnaseq"]]
    r01 = [s for s in clean.subject_ids if s.startswith("R01-")]
    assert len(r01) < len(clean.subject_ids), "the clean twin has AMC subjects with genes"
    assert sorted(table.subject_ids) == sorted(with_genes) == sorted(r01)
    assert table.subject_ids != sorted(table.subject_ids)
    # the truth names the genes as written; its extra rows are all NA
    names, all_na = truth["genes"]["names"], truth["genes"]["all_na_rows"]
    assert [g for g in table.gene_names if g not in set(all_na)] == names
    assert table.values.loc[all_na].isna().all().all()
    assert {"1/2-SBSRNA4", "tAKR"} <= set(names)
    complete = table.values.loc[names, r01].notna().all(axis=1)
    assert list(complete) == truth["genes"]["complete"]
    assert truth["genes"]["program"] == clean_truth["genes"]["program"]
    # every R01 value is the clean twin's; so is the normalised expression
    np.testing.assert_array_equal(
        table.values.loc[names, r01].to_numpy(),
        clean.values.loc[clean_truth["genes"]["names"], r01].to_numpy(),
    )
    kept = genes.complete_genes(table, r01)
    assert kept == genes.complete_genes(clean, r01)
    ours = genes.GeneNormaliser.fit(table, kept, r01, "log2p1").apply(table, r01)
    expected = genes.GeneNormaliser.fit(clean, kept, r01, "log2p1").apply(clean, r01)
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.slow
def test_collection_twin_clinical_and_metadata(collection_cohort: Path, tiny_cohort: Path) -> None:
    clean = genes.read_clinical(tiny_cohort / tables.CLINICAL_FILENAME)
    table = genes.read_clinical(collection_cohort / tables.CLINICAL_FILENAME)
    _same_values(table, clean)
    assert [s for s in table.index if s.startswith("AMC-")] == list(table.index[:2])
    raw = (collection_cohort / tables.CLINICAL_FILENAME).read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n")
    with open(collection_cohort / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # the clinical CT date is the DICOM study's date
    study_dates = {r["Subject ID"]: dt.datetime.strptime(r["Study Date"], "%m-%d-%Y") for r in rows}
    ct_dates = genes.clinical_dates(table)["CT Date"]
    assert all(ct_dates[s] == study_dates[s] for s in table.index)
    assert any(re.fullmatch(r"\d/\d{1,2}/\d{4}|\d{1,2}/\d/\d{4}", v) for v in table["CT Date"])
    # some File Locations as Windows writes them; every series folder is still found
    windows = {r["Subject ID"] for r in rows if r["File Location"].startswith(".\\")}
    assert windows and windows != {r["Subject ID"] for r in rows}
    sources, problems = discover(collection_cohort)
    assert not problems
    found = {s.subject_id: set(s.paths) for s in sources}
    for row in rows:
        parts = [p for p in re.split(r"[\\/]", row["File Location"]) if p not in ("", ".")]
        assert collection_cohort.joinpath(*parts) in found[row["Subject ID"]]
    assert all(p.is_dir() for paths in found.values() for p in paths)


def test_table_quirks_draw_from_their_own_streams() -> None:
    """Same seed, same choices; and none of the clean twin's table stream is consumed."""
    a, b = tables.collection_table_rngs(5), tables.collection_table_rngs(5)
    assert {k: g.random() for k, g in a.items()} == {k: g.random() for k, g in b.items()}
    clean_stream = np.random.default_rng(np.random.SeedSequence([5, 7])).random()
    assert clean_stream not in {g.random() for g in tables.collection_table_rngs(5).values()}
