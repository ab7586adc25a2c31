"""The radiogenomic maps: statistics on planted structure, and `rgsynth map` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rgsynth.analysis.embedding import embed
from rgsynth.analysis.perturbation import COLUMNS, program_matrix
from rgsynth.analysis.statistics import cluster_tests, fdr, metagenes, spearman_map
from rgsynth.cli import app
from rgsynth.synthesize.profiles import CacheGenes, GeneSet


def _planted(seed: int = 0, subjects: int = 60) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Two co-expressed blocks (one with a flipped gene) and noise genes; returns genes,
    the block activities and gene names."""
    rng = np.random.default_rng(seed)
    activity = rng.normal(size=(subjects, 2))
    genes = rng.normal(scale=0.3, size=(subjects, 12))
    genes[:, 0:4] += activity[:, [0]]
    genes[:, 3] *= -1  # anti-correlated member of block A
    genes[:, 4:8] += activity[:, [1]]
    genes[:, 8:] = rng.normal(size=(subjects, 4))
    return genes, activity, [f"G{n}" for n in range(12)]


def test_metagenes_recover_planted_blocks_with_signs() -> None:
    genes, activity, names = _planted()
    found = metagenes(genes, names, [f"S{n}" for n in range(len(genes))], min_genes=3)
    assert set(found.scores.columns) == {"M1", "M2"}  # the noise genes join no module
    by_gene = found.membership.set_index("gene")
    assert by_gene.loc[["G0", "G1", "G2", "G3"], "metagene"].nunique() == 1
    assert by_gene.loc[["G4", "G5", "G6", "G7"], "metagene"].nunique() == 1
    assert by_gene.loc["G0", "metagene"] != by_gene.loc["G4", "metagene"]
    assert by_gene.loc["G3", "sign"] == -by_gene.loc["G0", "sign"]
    block_a = found.scores[by_gene.loc["G0", "metagene"]]
    assert abs(np.corrcoef(block_a, activity[:, 0])[0, 1]) > 0.95


def test_spearman_map_and_fdr_find_the_planted_pair_only() -> None:
    rng = np.random.default_rng(1)
    scores = pd.DataFrame(rng.normal(size=(80, 3)), columns=["M1", "M2", "M3"])
    features = pd.DataFrame(
        {"size": scores["M2"] * 2 + rng.normal(scale=0.5, size=80), "noise": rng.normal(size=80)}
    )
    result = spearman_map(scores, features).set_index(["program", "feature"])
    assert result.loc[("M2", "size"), "q"] < 1e-6 and result.loc[("M2", "size"), "rho"] > 0.8
    assert (result.drop(index=("M2", "size"))["q"] > 0.05).all()
    q = fdr(np.array([0.01, np.nan, 0.04]))
    assert np.isnan(q[1]) and q[0] == pytest.approx(0.02)


def test_cluster_tests_and_embedding_see_separated_groups() -> None:
    rng = np.random.default_rng(2)
    clusters = np.repeat([0, 1, 2], 20)
    codes = rng.normal(size=(60, 8)) + np.eye(3, 8)[clusters] * 6
    embedding = embed("codes", codes, n_clusters=3, seed=0)
    assert embedding.silhouette > 0.5 and embedding.tsne.shape == (60, 2)
    noise = embed("noise", rng.normal(size=(60, 8)), n_clusters=3, seed=0)
    assert noise.silhouette < 0.2
    table = pd.DataFrame(
        {"moves": clusters + rng.normal(scale=0.2, size=60), "flat": rng.normal(size=60)}
    )
    tests = cluster_tests(clusters, table).set_index("name")
    assert tests.loc["moves", "q"] < 1e-6 and tests.loc["flat", "q"] > 0.05


def test_program_matrix_signs_and_drops_foreign_programs() -> None:
    sets = {
        "A": GeneSet("A", ("G1", "G2", "X"), (1.0, -1.0, 1.0)),
        "B": GeneSet("B", ("Y",), (1.0,)),
    }
    matrix = program_matrix(sets, ["G1", "G2", "G3"])
    assert list(matrix.index) == ["A"] and matrix.loc["A"].tolist() == [1.0, -1.0, 0.0]


def test_map_command_writes_every_map(
    run_copy: Path, train_cache: Path, small_cohort: Path
) -> None:
    args = ["map", str(run_copy), "--gene-sets", str(small_cohort / "ground_truth.json")]
    args += [
        "--clusters",
        "2",
        "--metagene-min-genes",
        "2",
        "--top-genes",
        "2",
        "--replicates",
        "4",
    ]
    args += ["--backgrounds", "4", "--force"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    maps = run_copy / "maps"
    summary = json.loads((maps / "maps.json").read_text())
    assert set(summary["embeddings"]) == {"raw genes", "ours: φ(g)"}
    assert summary["perturbation_programs_from"] == "gene-set file"
    assert summary["perturbation_generators"] == [{"weights": "final", "step": 2}]  # xu: none
    for name in ("embedding.png", "conventional_map.png", "perturbation_programs.png"):
        assert (maps / name).read_bytes()[:4] == b"\x89PNG"
    embedding = pd.read_csv(maps / "embedding.csv")
    assert len(embedding) == 3 and "ours: φ(g) cluster" in embedding.columns
    codes = pd.read_csv(maps / "gene_codes.csv", index_col="subject_id")
    assert codes.shape[0] == 3 and codes.shape[1] == 128  # φ(g), the tiny model's code
    perturbation = pd.read_csv(maps / "perturbation_programs.csv")
    assert {"program", "feature", "effect", "ci_low", "ci_high", "p", "q"} <= set(
        perturbation.columns
    )
    assert len(pd.read_csv(maps / "perturbation_genes.csv")["program"].unique()) == 2
    membership = pd.read_csv(maps / "metagenes.csv")
    assert set(membership["gene"]) <= set(CacheGenes.load(train_cache).names)
    assert summary["genes_in_metagenes"] == len(membership)
    assert pd.read_csv(maps / "real_features.csv", index_col=0).shape == (3, len(COLUMNS))
    assert (maps / "program_sweep.png").read_bytes()[:4] == b"\x89PNG"
    old_rule = pd.read_csv(maps / "perturbation_programs_genes_rule.csv")
    assert set(old_rule["program"]) == set(perturbation["program"])
    empty = pd.read_csv(maps / "perturbation_empty.csv")
    assert set(empty["arm"]) == {-2.0, -1.0, 1.0, 2.0, -1.0}
    assert set(empty["map"]) == {"programs", "programs:genes", "genes"}
    assert {"diameter readout", "spiculation readout"} <= set(perturbation["feature"])
