"""Assemble ``RUN/report/``: ``index.html`` (every image embedded as a data URI, so the
page opens offline and alone), the figures it drew as PNG files, ``summary.csv`` (every
number of its tables) and ``report.json`` (what it was built from).

The page links the run folder's own tables (evaluation_metrics.csv, map_pairs.csv,
maps/*.csv) by relative path; they stay beside it in the run folder.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from rgsynth.analysis.evaluate import map_label
from rgsynth.fsutil import atomic_write_json, atomic_write_text, staged_directory
from rgsynth.layout import (
    CLUSTER_FEATURES_CSV,
    CONVENTIONAL_MAP_CSV,
    EMBEDDING_CSV,
    EVALUATION_FIGURE_FILENAME,
    EVALUATION_FILENAME,
    EVALUATION_METRICS_FILENAME,
    EXAMPLES_CSV,
    LATEST_SAMPLE_PATH,
    LOSSES_FILENAME,
    MAP_PAIRS_CSV,
    MAPS_DIRNAME,
    METAGENES_CSV,
    PERTURBATION_GENES_CSV,
    PERTURBATION_PROGRAMS_CSV,
    PROGRAM_SWEEP_PNG,
    REFERENCE_DIRNAME,
    REPORT_DIRNAME,
    REPORT_PAGE,
    REPORT_RECORD,
    REPORT_SUMMARY_CSV,
    STATS_FILENAME,
    TRUTH_SUBJECTS_CSV,
)
from rgsynth.report import figures
from rgsynth.report.inputs import RunFiles, input_digest, read_run
from rgsynth.report.tables import sections, summary_rows, verdict


@dataclass
class Figure:
    """An image of the page: its title, caption and PNG bytes (embedded as a data URI)."""

    key: str
    title: str
    caption: str
    png: bytes
    training: bool = False  # shown with the training curves and samples

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def build_report(
    run_dir: Path, out: Path | None = None, echo: Callable[[str], None] = print
) -> dict[str, Any]:
    """Write the report of ``run_dir`` to ``out`` (default ``RUN/report``), replacing an
    older one only once the new one is complete. Returns what report.json holds."""
    start = time.perf_counter()
    files = read_run(run_dir)
    out = Path(out) if out else Path(run_dir) / REPORT_DIRNAME
    summary = summary_rows(files)
    with staged_directory(out, replace=True) as staging:
        drawn = _draw(files, staging / "figures")
        shown = _figures(files, drawn)
        atomic_write_text(staging / REPORT_SUMMARY_CSV, summary.to_csv(index=False))
        page = _render(files, shown, summary, out)
        atomic_write_text(staging / REPORT_PAGE, page)
        record = {
            "format": "rgsynth-report/1",
            "run": str(Path(run_dir).resolve()),
            "input_digest": input_digest(files.run_dir),
            "figures": [f.key for f in shown],
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - start, 1),
        }
        atomic_write_json(staging / REPORT_RECORD, record)
    echo(f"report: {out / REPORT_PAGE} ({len(shown)} figures, {len(summary)} numbers)")
    return record


def report_is_current(run_dir: Path, out: Path | None = None) -> bool:
    """True if the report exists and was built from the run's current map and scores."""
    out = Path(out) if out else Path(run_dir) / REPORT_DIRNAME
    try:
        record = json.loads((out / REPORT_RECORD).read_text())
        return (out / REPORT_PAGE).is_file() and record["input_digest"] == input_digest(run_dir)
    except (OSError, ValueError, KeyError):
        return False


def _draw(files: RunFiles, folder: Path) -> dict[str, Path]:
    """The figures the report draws itself, as PNG files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    model = next(iter(files.evaluation["models"]))
    drawn = {
        "fig3": figures.example_grid(files.examples, files.example_table, folder / "fig3.png"),
        "fig2": figures.fusion_examples(
            files.examples, files.example_table, model, folder / "fig2.png"
        ),
    }
    if files.map_pairs is not None and not files.map_pairs.empty:
        drawn["maps"] = figures.maps_beside_truth(files.map_pairs, folder / "maps_vs_truth.png")
    if files.truth_subjects is not None and "subtype" in files.truth_subjects:
        drawn["subtypes"] = figures.codes_by_subtype(
            files.embedding,
            files.truth_subjects,
            files.evaluation.get("embedding_vs_subtypes", {}),
            folder / "codes_by_subtype.png",
        )
    return drawn


# (key, where, title, caption); where is a drawn figure's key or a path in the run folder
FIGURES = (
    (
        "fig3",
        "drawn:fig3",
        "Real vs synthetic nodules (paper Fig. 3)",
        "Top row: real validation nodules (unseen in training), spread over size; their "
        "genes drive each column. Second row: the background each synthesis is painted "
        "into. Then MC-GAN and ours, with the same background and noise.",
    ),
    (
        "fig2",
        "drawn:fig2",
        "Fusion of nodule and background (paper Fig. 2)",
        "Background, synthesis, background weight map (bright = nodule features replace "
        "the background's) and the generated mask, for the grid's most solid and most "
        "ground-glass donors.",
    ),
    (
        "embedding",
        f"{MAPS_DIRNAME}/embedding.png",
        "Gene codes in t-SNE (paper Fig. 4)",
        "Raw genes, MC-GAN's condition mean μ and our φ(g), each with k-means clusters; "
        "below, the real nodules nearest each cluster centre of φ(g).",
    ),
    (
        "subtypes",
        "drawn:subtypes",
        "The same planes against the truth",
        "Coloured by the twin's expression subtype. A code that clusters (Fig. 4's "
        "claim) is only a map if its clusters are the biology's.",
    ),
    (
        "maps",
        "drawn:maps",
        "Radiogenomic maps beside the ground truth",
        "Each trait is read by its calibrated readout of the nodule slice. Ours, MC-GAN "
        "and the reference: perturbation effect per SD of a program along its training "
        "axis (±1, ±2 SD on validation donors), in real-nodule SDs. Conventional: Spearman "
        "ρ of metagene scores (matched to the true programs by gene overlap) with the "
        "readouts on the training donors; 'true programs' uses the truth's programs as "
        "metagenes, the sampling bound also the true traits.",
    ),
    (
        "perturbation",
        f"{MAPS_DIRNAME}/perturbation_programs.png",
        "Our perturbation map, every feature",
        "Effect per SD of each program along its training axis, on fixed backgrounds and "
        "noise, in real-nodule SDs (* q < 0.05).",
    ),
    (
        "sweep",
        f"{MAPS_DIRNAME}/{PROGRAM_SWEEP_PNG}",
        "The map as a picture: our program sweep",
        "Per program, our nodules at −2 … +2 SD along its training axis from the mean "
        "profile, on one fixed background and noise.",
    ),
    (
        "sweep_reference",
        f"{REFERENCE_DIRNAME}/{PROGRAM_SWEEP_PNG}",
        "The reference's program sweep",
        "The same sweep painted by the twin itself: what a generator that learned the "
        "twin's map would show.",
    ),
    (
        "conventional",
        f"{MAPS_DIRNAME}/conventional_map.png",
        "The classic three-step pipeline, every feature",
        "Co-expression metagenes → image features → Spearman ρ with BH q (* q < 0.05).",
    ),
    (
        "scores",
        EVALUATION_FIGURE_FILENAME,
        "Realism and conditioning at a glance",
        "FRD, two-sample accuracy and donor AUROC with bootstrap 95 % intervals; dashed: chance.",
    ),
    ("losses", LOSSES_FILENAME, "Our training losses", "Every loss term against the step."),
    (
        "samples",
        "samples/latest.png",
        "Our last training samples",
        "Fixed training examples at the last checkpoint.",
    ),
)


# the figures the page leads with under its verdict (with the compared run's "*_sweep")
LEAD_FIGURES = ("maps", "sweep", "sweep_reference")


def _lead(shown: list[Figure], has_truth: bool) -> list[Figure]:
    """The maps beside the truth and every program sweep, in page order: the result the
    headline shows before any table. Without a truth the page keeps its old order."""
    if not has_truth:
        return []
    return [f for f in shown if f.key in LEAD_FIGURES or f.key.endswith("_sweep")]


def _figures(files: RunFiles, drawn: dict[str, Path]) -> list[Figure]:
    shown = []
    for key, where, title, caption in FIGURES:
        if where.startswith("drawn:"):
            path = drawn.get(where.removeprefix("drawn:"))
        else:
            path = files.path(where)
        if path is not None and path.is_file():
            training = key in ("losses", "samples")
            shown.append(Figure(key, title, caption, path.read_bytes(), training))
    compared = files.compared_run()
    if compared is not None:
        model = files.compared_model()
        sweep = compared / MAPS_DIRNAME / PROGRAM_SWEEP_PNG
        if sweep.is_file():
            at = next((n for n, f in enumerate(shown) if f.key == "sweep"), len(shown) - 1) + 1
            shown.insert(
                at,
                Figure(
                    f"{model}_sweep",
                    f"{map_label(model)}'s program sweep",
                    "The same sweep by the compared model.",
                    sweep.read_bytes(),
                ),
            )
        for name, title in ((LOSSES_FILENAME, "losses"), (LATEST_SAMPLE_PATH, "last samples")):
            if (compared / name).is_file():
                shown.append(
                    Figure(
                        f"{model}_{title.replace(' ', '_')}",
                        f"{map_label(model)} training: {title}",
                        f"From the comparison run {compared}.",
                        (compared / name).read_bytes(),
                        training=True,
                    )
                )
    return shown


def _render(files: RunFiles, shown: list[Figure], summary: pd.DataFrame, out: Path) -> str:
    import jinja2

    template = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
        resources.files("rgsynth.report").joinpath("page.html.j2").read_text()
    )
    has_truth = files.evaluation.get("truth") is not None
    lead = _lead(shown, has_truth)
    led = {f.key for f in lead}
    by_key = {f.key: f for f in shown if f.key not in led}  # each figure shown once
    return template.render(
        title=f"rgsynth report: {files.run_dir.resolve().name}",
        run=str(files.run_dir.resolve()),
        created=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        facts=_facts(files),
        verdict=verdict(files),
        lead_figures=lead,
        figures=by_key,
        training_figures=[f for f in shown if f.training],
        sections={s.key: s for s in sections(summary)},
        table_html=_table_html,
        extra_tables=_extra_tables(files),
        links=_links(files, out),
        has_truth=has_truth,
    )


def _facts(files: RunFiles) -> list[tuple[str, str]]:
    evaluation, maps = files.evaluation, files.maps
    models = ", ".join(
        f"{name} (step {scores['checkpoint_step']})" if "checkpoint_step" in scores else name
        for name, scores in evaluation["models"].items()
    )
    return [
        ("run", str(files.run_dir.resolve())),
        ("models", models),
        ("compared run", str(evaluation.get("against") or "none")),
        ("ground truth", str(evaluation.get("truth") or "none (a real cohort: no truth scores)")),
        (
            "cache fingerprint",
            str(evaluation.get("cache_fingerprint", maps.get("cache_fingerprint"))),
        ),
        (
            "validation",
            f"{evaluation['n_real_slices']} real nodule slices "
            f"({evaluation['validation_split']} split)",
        ),
        ("map programs", str(maps.get("perturbation_programs_from"))),
        (
            "perturbation map read from",
            ", ".join(
                f"{g['weights']} weights (step {g['step']})"
                for g in maps.get("perturbation_generators", [])
            )
            or "the final weights",
        ),
        ("held-out donors' gene scores", _unseen_reading(evaluation, maps)),
    ]


def _unseen_reading(evaluation: dict, maps: dict) -> str:
    """Whether the map and the scores read held-out donors' whitened gene scores unshrunk
    (``--unshrink-unseen``, on by default) or as they are, and by what."""
    # files written before the power was recorded divided by the shrinkage itself
    map_by = _divided(
        maps.get("perturbation_unseen_divisor"),
        maps.get("perturbation_unseen_shrinkage"),
        maps.get("perturbation_unseen_strength"),
    )
    # maps written before the bases alone were divided (no "perturbation_unseen_divides")
    what = "map bases" if maps.get("perturbation_unseen_divides") else "map bases and moves"
    parts = [f"{what} unshrunk ({map_by})" if map_by else "map: as they are"]
    scores = {
        name: _divided(
            facts.get("unseen_divisor"), facts.get("unseen_shrinkage"), facts.get("unseen_strength")
        )
        for name, facts in evaluation["models"].items()
    }
    parts += [f"scores of {map_label(name)} unshrunk ({by})" for name, by in scores.items() if by]
    return "; ".join(parts if any(scores.values()) else [*parts, "scores: as they are"])


def _divided(divisor: float | None, shrinkage: float | None, strength: float | None) -> str:
    """'÷ divisor = shrinkage ^ strength', '÷ shrinkage' for a file written before the
    power (which divided by the shrinkage itself), or '' where nothing was divided."""
    if divisor and shrinkage and strength:
        return f"÷ {divisor:.2f} = {shrinkage:.2f} ^ {strength:g}"
    return f"÷ {divisor or shrinkage:.2f}" if divisor or shrinkage else ""


def _extra_tables(files: RunFiles) -> list[tuple[str, str, pd.DataFrame]]:
    """Smaller tables the page shows in full: (title, note, table)."""
    tables = []
    examples = files.example_table.drop(columns=["background_index", "noise_seed"])
    tables.append(
        (
            "The grid's columns: donor and synthesis features",
            "Features of each donor's real nodule and of each model's synthesis in Fig. 3.",
            examples.round(3),
        )
    )
    matches = files.evaluation.get("conventional", {}).get("metagene_match")
    if matches:
        tables.append(
            (
                "Discovered metagenes vs true programs",
                "Best gene-overlap (Jaccard) match of each true program.",
                pd.DataFrame(matches).round(3),
            )
        )
    clusters = files.table(MAPS_DIRNAME, CLUSTER_FEATURES_CSV)
    if clusters is not None:
        tables.append(
            (
                "Features across our code's clusters",
                "Kruskal–Wallis over k-means clusters of φ(g), BH q.",
                clusters.sort_values("p").round(4),
            )
        )
    genes = files.table(MAPS_DIRNAME, PERTURBATION_GENES_CSV)
    if genes is not None:
        strongest = genes.reindex(genes["effect_sd"].abs().sort_values(ascending=False).index)
        tables.append(
            (
                "Single genes: the 15 strongest perturbation effects",
                "The genes the network's first gene layer weighs most, moved ±2 z alone.",
                strongest.head(15).round(4),
            )
        )
    return tables


def _table_html(table: pd.DataFrame, index: bool = True) -> str:
    return table.to_html(index=index, border=0, classes="numbers", na_rep="", escape=True)


def _links(files: RunFiles, out: Path) -> list[tuple[str, str, str]]:
    """(label, relative href, what it is) for the run's tables that exist."""
    candidates = (
        (REPORT_SUMMARY_CSV, None, "every number of this page's tables"),
        (EVALUATION_FILENAME, EVALUATION_FILENAME, "every score with its interval"),
        (EVALUATION_METRICS_FILENAME, EVALUATION_METRICS_FILENAME, "the same, one row per score"),
        (MAP_PAIRS_CSV, MAP_PAIRS_CSV, "every map's (program, trait) effect beside the truth"),
        (TRUTH_SUBJECTS_CSV, TRUTH_SUBJECTS_CSV, "the twin's subtypes and traits"),
        (EXAMPLES_CSV, EXAMPLES_CSV, "the example grid's columns"),
        ("maps/", f"{MAPS_DIRNAME}/maps.json", "maps: settings and counts"),
        (CONVENTIONAL_MAP_CSV, f"{MAPS_DIRNAME}/conventional_map.csv", "the classic map"),
        (
            PERTURBATION_PROGRAMS_CSV,
            f"{MAPS_DIRNAME}/perturbation_programs.csv",
            "our perturbation map",
        ),
        (EMBEDDING_CSV, f"{MAPS_DIRNAME}/embedding.csv", "t-SNE and clusters of every code"),
        (METAGENES_CSV, f"{MAPS_DIRNAME}/metagenes.csv", "the discovered metagenes"),
        (STATS_FILENAME, STATS_FILENAME, "our training statistics"),
    )
    links = []
    for label, relative, what in candidates:
        if relative is None:
            links.append((label, label, what))
        elif files.path(relative).is_file():
            target = files.path(relative).resolve()
            links.append((label, _relative(target, out), what))
    return links


def _relative(target: Path, out: Path) -> str:
    return Path(os.path.relpath(target, out.resolve())).as_posix()
