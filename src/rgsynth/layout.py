"""Every file name of a cohort, a cache, a run and a synthesis folder, once.

Stages find each other's outputs only through these names, so a folder written by one
stage is read by the next without either importing the other. Paths are relative to the
folder they belong to.
"""

from __future__ import annotations

from pathlib import Path

# A cohort (the twin writes these; the TCIA retriever writes metadata.csv too).
METADATA_FILENAME = "metadata.csv"
GROUND_TRUTH_FILENAME = "ground_truth.json"
HOLDOUT_FILENAME = "holdout.csv"  # subject_id per line: donors prepare keeps out of training
HOLDOUT_SPLIT = "holdout"  # their split in the cache: neither train nor val
COHORT_MONTAGE_FILENAME = "qc_montage.png"

# A training cache (``rgsynth prepare``).
STATE_FILENAME = "state.json"  # settings and input fingerprints, written first
MANIFEST_FILENAME = "manifest.json"  # written last: its presence means the cache is complete
SUBJECTS_DIRNAME = "subjects"  # one shard (.npz) and one record (.json) per subject
GENES_FILENAME = "genes.npz"
GENE_STATS_FILENAME = "gene_stats.csv"
CLINICAL_FILENAME = "clinical.csv"
MONTAGE_FILENAME = "qc_montage.png"

# A run (``rgsynth train``, then map, evaluate and report write into it).
CONFIG_FILENAME = "config.yaml"
CHECKPOINT_PATH = Path("checkpoints") / "last.pt"
# the EMA generator at TrainConfig.map_snapshot of the budget: read by the perturbation map
MAP_SNAPSHOT_PATH = Path("checkpoints") / "map-snapshot.pt"
STATS_FILENAME = "stats.jsonl"
TENSORBOARD_DIRNAME = "tensorboard"
SAMPLES_DIRNAME = "samples"
LATEST_SAMPLE_PATH = Path(SAMPLES_DIRNAME) / "latest.png"
LOSSES_FILENAME = "losses.png"
RANKS_FILENAME = "ranks.json"
DIAGNOSTICS_FILENAME = "diagnostics.jsonl"  # D_ISG shortcut and D_I on unseen reals, per checkpoint
DEMO_TRAINING_FILENAME = "demo_training.json"  # what a demo training was started with
EVALUATION_FILENAME = "evaluation.json"  # built from the records below
SCORES_FILENAME = "evaluation_scores.jsonl"  # every score, one flat record a line
EVALUATION_METRICS_FILENAME = "evaluation_metrics.csv"
EVALUATION_FIGURE_FILENAME = "evaluation.png"
EXAMPLES_NPZ = "examples.npz"
EXAMPLES_CSV = "examples.csv"
MAP_PAIRS_CSV = "map_pairs.csv"
TRUTH_SUBJECTS_CSV = "truth_subjects.csv"
REPORT_DIRNAME = "report"
REPORT_PAGE = "index.html"  # RUN/report/: the page, its numbers and what it was built from
REPORT_SUMMARY_CSV = "summary.csv"
REPORT_RECORD = "report.json"

# RUN/maps/ (``rgsynth map``).
MAPS_DIRNAME = "maps"
MAPS_SUMMARY_FILENAME = "maps.json"
EMBEDDING_CSV = "embedding.csv"
CONVENTIONAL_MAP_CSV = "conventional_map.csv"
PERTURBATION_PROGRAMS_CSV = "perturbation_programs.csv"
PERTURBATION_GENES_CSV = "perturbation_genes.csv"
PERTURBATION_EMPTY_CSV = "perturbation_empty.csv"
REFERENCE_DIRNAME = "reference"  # RUN/reference/: the reference generator's maps


def perturbation_filename(name: str) -> str:
    """``programs`` → perturbation_programs.csv (the headline rule), ``programs:genes`` →
    perturbation_programs_genes_rule.csv, ``genes`` → perturbation_genes.csv."""
    stem, _, rule = name.partition(":")
    return f"perturbation_{stem}_{rule}_rule.csv" if rule else f"perturbation_{stem}.csv"


PROGRAM_SWEEP_PNG = "program_sweep.png"
METAGENES_CSV = "metagenes.csv"
REAL_FEATURES_CSV = "real_features.csv"
CLUSTER_FEATURES_CSV = "cluster_features.csv"
CLUSTER_GENES_CSV = "cluster_genes.csv"

# A synthesis folder (``rgsynth synthesize``).
SYNTHESIS_SUMMARY_FILENAME = "synthesis.json"
SYNTHESIS_MANIFEST_FILENAME = "manifest.csv"
SYNTHESIS_PROFILES_FILENAME = "profiles.csv"
