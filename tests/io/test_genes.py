"""Expression and clinical tables: quirks read right, genes selected and normalised."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rgsynth.io import genes
from rgsynth.io.source import InputError
from rgsynth.twin.tables import CLINICAL_FILENAME, RNASEQ_FILENAME


def test_geo_table_as_published(tiny_cohort: Path, tiny_truth: dict, tiny_config) -> None:
    with_genes = [s["subject_id"] for s in tiny_truth["subjects"] if s["has_rnaseq"]]
    table = genes.read_expression_table(tiny_cohort / RNASEQ_FILENAME, with_genes)
    assert table.orientation == "genes × subjects"
    assert table.subject_ids == with_genes
    assert table.values.shape == (tiny_config.n_genes, len(with_genes))
    assert table.values.isna().any().any()  # NA tokens became NaN
    kept = genes.complete_genes(table, with_genes)
    assert len(kept) == tiny_config.n_genes_complete
    assert kept == [
        g
        for g, c in zip(tiny_truth["genes"]["names"], tiny_truth["genes"]["complete"], strict=True)
        if c
    ]
    assert genes.bad_values(table, "log2p1") == {}


def test_subjects_by_genes_csv_is_detected(tiny_cohort: Path, tmp_path: Path) -> None:
    geo = genes.read_expression_table(tiny_cohort / RNASEQ_FILENAME)
    path = tmp_path / "expression.csv"
    geo.values.T.to_csv(path, na_rep="NA")
    table = genes.read_expression_table(path, geo.subject_ids)
    assert table.orientation == "subjects × genes"
    pd.testing.assert_frame_equal(table.values, geo.values, check_names=False)


def test_normalisation_is_fitted_on_training_subjects_only(tiny_cohort: Path) -> None:
    table = genes.read_expression_table(tiny_cohort / RNASEQ_FILENAME)
    ids = table.subject_ids
    kept = genes.complete_genes(table, ids)
    train, val = ids[:4], ids[4:]
    normaliser = genes.GeneNormaliser.fit(table, kept, train, "log2p1")
    on_train = normaliser.apply(table, train)
    varying = normaliser.sd != 1.0
    np.testing.assert_allclose(on_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(on_train.std(axis=0)[varying], 1.0, atol=1e-4)
    table.values.loc[kept, val] *= 1000.0  # validation values must not move the statistics
    again = genes.GeneNormaliser.fit(table, kept, train, "log2p1")
    np.testing.assert_array_equal(again.mean, normaliser.mean)
    np.testing.assert_array_equal(again.sd, normaliser.sd)
    expected = (np.log2(table.values.loc[kept, val[0]] + 1) - normaliser.mean) / normaliser.sd
    np.testing.assert_allclose(again.apply(table, val)[0], expected, rtol=1e-5)


def test_duplicated_subject_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "expression.tsv"
    path.write_text("\tR01-001\tR01-002\tR01-001\nTG1\t1\t2\t3\nTG2\t4\t5\t6\n")
    with pytest.raises(InputError, match="duplicated subject ID 'R01-001'") as caught:
        genes.read_expression_table(path, ["R01-001", "R01-002"])
    assert caught.value.subject_id == "R01-001"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="cut in half"),  # gzip: EOFError
        pytest.param(lambda data: data[:10] + b"x" * 200, id="corrupt stream"),  # zlib.error
        pytest.param(lambda data: b"not gzip at all\n", id="not gzip"),  # BadGzipFile
    ],
)
def test_a_damaged_gzipped_table_is_an_input_error(tmp_path: Path, damage) -> None:
    """A cut download used to escape as EOFError (which the CLI prints as "Aborted!")."""
    rows = "".join(f"TG{n}\t{n}\t{n + 1}\n" for n in range(2000))
    data = gzip.compress(f"\tR01-001\tR01-002\n{rows}".encode())
    path = tmp_path / "expression.txt.gz"
    path.write_bytes(damage(data))
    with pytest.raises(InputError, match="truncated or damaged") as caught:
        genes.read_expression_table(path, ["R01-001", "R01-002"])
    assert caught.value.path == str(path)


def test_negative_values_need_the_none_transform(tmp_path: Path) -> None:
    path = tmp_path / "expression.tsv"
    path.write_text("\tR01-001\tR01-002\nTG1\t-2.5\t2\nTG2\t4\t5\n")
    table = genes.read_expression_table(path, ["R01-001", "R01-002"])
    problems = genes.bad_values(table, "log2p1")
    assert list(problems) == ["R01-001"] and "gene-transform none" in str(problems["R01-001"])
    assert genes.bad_values(table, "none") == {}


def test_clinical_quirks(tiny_cohort: Path, tiny_truth: dict) -> None:
    clinical = genes.read_clinical(tiny_cohort / CLINICAL_FILENAME)
    assert "Histology" in clinical.columns and "Histology " not in clinical.columns
    assert list(clinical.index) == [s["subject_id"] for s in tiny_truth["subjects"]]
    raw = pd.read_csv(tiny_cohort / CLINICAL_FILENAME, dtype=str, keep_default_na=False)
    tokens = raw.isin(genes.CLINICAL_MISSING_TOKENS).to_numpy()[:, 1:]
    assert clinical.isna().to_numpy()[tokens].all()


@pytest.mark.slow
def test_paper_sized_table_keeps_5172_genes(tmp_path: Path) -> None:
    from rgsynth.config import twin_preset
    from rgsynth.twin import biology, tables
    from rgsynth.twin.cohort import plan_cohort

    plan = plan_cohort(twin_preset("paper"))
    subjects = [s for s in plan.subjects if s.has_rnaseq]
    ids = [s.subject_id for s in subjects]
    rng = np.random.default_rng(0)
    log2 = biology.log2_expression(
        rng, plan.model, plan.biology.activities[[s.index for s in subjects]]
    )
    values, missing = tables.rnaseq_values(rng, log2, 5172)
    path = tmp_path / RNASEQ_FILENAME
    tables.write_rnaseq(path, list(plan.model.gene_names), ids, values, missing)
    with gzip.open(path, "rt") as handle:
        assert handle.readline().startswith("\t")  # the empty first header field

    table = genes.read_expression_table(path, ids)
    kept = genes.complete_genes(table, ids)
    line = genes.gene_count_line(table, len(kept), len(ids))
    assert line == (
        f"genes: 22126 in {RNASEQ_FILENAME}, 5172 with no missing value among the 130 subjects used"
    )
