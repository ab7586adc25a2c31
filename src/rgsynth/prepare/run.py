"""``prepare``: find subjects, check the tables, make every subject's examples (in
parallel, resumably), then split, select and normalise genes, and seal the cache."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rgsynth import __version__
from rgsynth.config import PrepareConfig, fingerprint
from rgsynth.fsutil import atomic_write_bytes, atomic_write_text
from rgsynth.io import folder, genes, tcia
from rgsynth.io.source import InputError, MissingInput, SubjectSource
from rgsynth.layout import (
    CLINICAL_FILENAME,
    GENE_STATS_FILENAME,
    GENES_FILENAME,
    HOLDOUT_FILENAME,
    HOLDOUT_SPLIT,
    MONTAGE_FILENAME,
    STATE_FILENAME,
)
from rgsynth.prepare.cache import Cache
from rgsynth.prepare.examples import make_examples

log = logging.getLogger(__name__)

EXPRESSION_PATTERNS = (
    "GSE103584*RNAseq*.txt*",
    "expression.*",
    "genes.csv*",
    "genes.tsv*",
    "genes.txt*",
)
CLINICAL_PATTERNS = ("NSCLCR01Radiogenomic_DATA_LABELS*.csv", "clinical.csv")  # inputs


@dataclass
class PrepareInputs:
    """Where a cohort's files are, as found or as given."""

    cohort: Path
    kind: str
    expression: Path
    clinical: Path | None
    sources: list[SubjectSource] = field(default_factory=list)
    problems: list[InputError] = field(default_factory=list)
    holdout: Path | None = None  # a CSV of subject IDs kept out of training and validation


def find_inputs(
    cohort: Path,
    kind: str = "auto",
    expression: Path | None = None,
    clinical: Path | None = None,
    holdout: Path | None = None,
) -> PrepareInputs:
    """Detect the layout (folder cohort when ``images/`` and ``masks/`` exist, else TCIA),
    list its subjects and locate the tables.

    Raises:
        InputError: no cohort folder, or no expression table.
    """
    cohort = Path(cohort)
    if not cohort.is_dir():
        raise InputError("", cohort, "cohort folder does not exist")
    if kind == "auto":
        kind = "folder" if folder.is_folder_cohort(cohort) else "tcia"
    reader = folder if kind == "folder" else tcia
    sources, problems = reader.discover(cohort)
    if not sources and not problems:
        raise InputError("", cohort, f"no subjects found (read as a {kind} cohort)")
    expression = expression or _find_one(cohort, EXPRESSION_PATTERNS)
    if expression is None:
        raise InputError("", cohort, "no expression table found; pass --genes FILE")
    clinical = clinical or _find_one(cohort, CLINICAL_PATTERNS)
    if holdout is None and (cohort / HOLDOUT_FILENAME).is_file():
        holdout = cohort / HOLDOUT_FILENAME
    read_holdout(holdout)  # a bad list stops here, before any subject is read
    return PrepareInputs(cohort, kind, Path(expression), clinical, sources, problems, holdout)


def read_holdout(path: Path | None) -> list[str]:
    """The subject IDs of a holdout CSV (a ``subject_id`` column), in file order.

    Raises:
        InputError: unreadable, no ``subject_id`` column, or an ID listed twice.
    """
    if path is None:
        return []
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError, EOFError) as error:
        raise InputError("", path, f"unreadable holdout list ({error})") from None
    if "subject_id" not in table.columns:
        raise InputError("", path, "the holdout list has no 'subject_id' column")
    ids = [s.strip() for s in table["subject_id"] if s.strip()]
    twice = sorted({s for s in ids if ids.count(s) > 1})
    if twice:
        raise InputError(twice[0], path, "listed twice in the holdout list")
    return ids


def _find_one(root: Path, patterns: tuple[str, ...]) -> Path | None:
    for pattern in patterns:
        found = sorted(p for p in root.glob(pattern) if p.is_file())
        if found:
            return found[0]
    return None


def prepare_cache(
    inputs: PrepareInputs,
    out: Path,
    config: PrepareConfig,
    *,
    workers: int | None = None,
    on_error: str = "fail",
    force: bool = False,
    on_subject: Callable[[str], None] | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Build (or resume, or confirm) the cache at ``out``; return its manifest.

    Raises:
        InputError: the first bad input, when ``on_error`` is ``fail``.
        CacheMismatchError: ``out`` holds a cache of other settings or inputs.
    """
    table = genes.read_expression_table(inputs.expression, [s.subject_id for s in inputs.sources])
    echo(f"expression table: {table.path.name}, {table.orientation}")
    problems = _table_problems(inputs, table, config)
    if problems and on_error == "fail":
        raise _with_hint(problems[0])
    bad = {p.subject_id for p in problems}
    sources = [s for s in inputs.sources if s.subject_id not in bad]
    fingerprints = {s.subject_id: s.fingerprint() for s in sources}
    state = {"settings": config.to_dict(), "inputs": _inputs_state(inputs, fingerprints)}
    cache = Cache(out)
    if cache.start(state, force):
        echo(f"cache {out} is up to date with these settings and inputs; nothing to do")
        return cache.manifest()
    records = _subject_records(
        sources, cache, config, fingerprints, workers, on_error, on_subject, echo
    )
    cache.remove_other_subjects(set(fingerprints))
    manifest = _seal(inputs, table, cache, config, records, problems, echo)
    return manifest


def _table_problems(
    inputs: PrepareInputs, table: genes.ExpressionTable, config: PrepareConfig
) -> list[InputError]:
    problems = list(inputs.problems)
    imaged = {s.subject_id for s in inputs.sources} | {p.subject_id for p in inputs.problems}
    for subject_id in table.subject_ids:
        if subject_id not in imaged:
            problems.append(
                InputError(
                    subject_id,
                    table.path,
                    f"has genes but no images under {inputs.cohort} (an ID spelt differently?)",
                )
            )
    problems.extend(genes.bad_values(table, config.gene_transform).values())
    return problems


def _with_hint(problem: InputError) -> InputError:
    hinted = InputError(problem.subject_id, problem.path, problem.problem)
    hinted.args = (f"{problem} (--on-error skip goes on without this subject)",)
    return hinted


def _inputs_state(inputs: PrepareInputs, fingerprints: dict[str, str]) -> dict[str, Any]:
    tables = {"expression": _file_digest(inputs.expression)}
    if inputs.clinical is not None:
        tables["clinical"] = _file_digest(inputs.clinical)
    if inputs.holdout is not None:
        tables["holdout"] = _file_digest(inputs.holdout)
    return {"kind": inputs.kind, "tables": tables, "subjects": fingerprints}


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{path.name}:{digest.hexdigest()[:16]}"


def _subject_records(
    sources: list[SubjectSource],
    cache: Cache,
    config: PrepareConfig,
    fingerprints: dict[str, str],
    workers: int | None,
    on_error: str,
    on_subject: Callable[[str], None] | None,
    echo: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for source in sources:
        record = cache.reusable_record(
            source.subject_id, fingerprints[source.subject_id], config.fingerprint()
        )
        if record is None:
            todo.append(source)
        else:
            records[source.subject_id] = record
            _check(record, on_error)
            if on_subject:
                on_subject(source.subject_id)
    if records:
        echo(f"resuming: {len(records)} subjects already in the cache, {len(todo)} to do")
    for record in _run_parallel(todo, cache, config, fingerprints, workers, on_error):
        records[record["subject_id"]] = record
        if on_subject:
            on_subject(record["subject_id"])
    return records


def _check(record: dict[str, Any], on_error: str) -> None:
    if record["status"] == "failed" and on_error == "fail":
        problem = record["problem"]
        raise _with_hint(InputError(problem["subject_id"], problem["file"], problem["problem"]))


def _run_parallel(todo, cache, config, fingerprints, workers, on_error):
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    arguments = [(s, config, cache.root, fingerprints[s.subject_id]) for s in todo]
    if workers == 1:
        for args in arguments:
            record = prepare_subject(*args)
            _check(record, on_error)
            yield record
        return
    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        futures = [pool.submit(prepare_subject, *args) for args in arguments]
        for future in as_completed(futures):
            record = future.result()
            _check(record, on_error)
            yield record
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # running subjects finish and are kept


def prepare_subject(
    source: SubjectSource, config: PrepareConfig, cache_root: Path, input_fingerprint: str
) -> dict[str, Any]:
    """Load one subject, make its examples, write its shard and record; return the record.

    Bad input gives a ``failed`` record (kept, so a resumed run does not retry unchanged
    files), an expected gap an ``excluded`` one. Runs in a worker process.
    """
    start = time.perf_counter()
    record: dict[str, Any] = {
        "subject_id": source.subject_id,
        "input_fingerprint": input_fingerprint,
        "settings_fingerprint": config.fingerprint(),
    }
    reader = folder if source.kind == "folder" else tcia
    arrays = None
    try:
        images = reader.load(source, config.max_slice_mm)
        examples = make_examples(images, config)
    except MissingInput as gap:
        record.update(status="excluded", problem=gap.to_dict())
    except InputError as error:
        record.update(status="failed", problem=error.to_dict())
    else:
        arrays = examples.arrays()
        record.update(
            status="ok",
            ct_file=os.path.relpath(images.ct_file, source.root),
            mask_file=os.path.relpath(images.mask_file, source.root),
            ct_shape=list(images.hu.shape),
            spacing_mm=[round(float(s), 4) for s in images.spacing_mm],
            nodule_centre_mm=[round(float(c), 2) for c in examples.nodule_centre_mm],
            nodule_volume_ml=round(examples.nodule_volume_ml, 4),
            n_nodule_slices=len(examples.nodule_image),
            n_background_slices=len(examples.background_image),
            notes=images.notes + examples.notes,
        )
    record["seconds"] = round(time.perf_counter() - start, 3)
    Cache(cache_root).write_subject(record, arrays)
    log.info("%s: %s in %.1f s", source.subject_id, record["status"], record["seconds"])
    return record


def _split(ids: list[str], config: PrepareConfig, salt: int) -> tuple[list[str], list[str]]:
    """Seeded subject-level split; at least one training subject whenever there is one."""
    ids = sorted(ids)
    rng = np.random.default_rng([config.seed, salt])
    order = rng.permutation(len(ids))
    n_val = min(round(config.val_fraction * len(ids)), max(len(ids) - 1, 0))
    val = sorted(ids[i] for i in order[:n_val])
    return sorted(set(ids) - set(val)), val


def _seal(inputs, table, cache, config, records, problems, echo) -> dict[str, Any]:
    ok = sorted(s for s, r in records.items() if r["status"] == "ok")
    usable_genes = set(table.subject_ids) - {p.subject_id for p in problems}
    with_genes = [s for s in ok if s in usable_genes]
    # Held-out donors: prepared like the others but in neither split, and the split of the
    # others is what it would be without them.
    held = sorted(set(read_holdout(inputs.holdout)) & set(ok))
    main, main_with_genes = (
        [s for s in ok if s not in held],
        [s for s in with_genes if s not in held],
    )
    train, val = _split(main_with_genes, config, salt=1)
    image_only_train, image_only_val = _split(
        sorted(set(main) - set(main_with_genes)), config, salt=2
    )
    split = (
        {s: "train" for s in train + image_only_train}
        | {s: "val" for s in val + image_only_val}
        | {s: HOLDOUT_SPLIT for s in held}
    )
    gene_section = _write_genes(table, with_genes, train, cache, config, echo)
    clinical_section = _write_clinical(inputs.clinical, ok, cache)
    skipped = [p.to_dict() | {"status": "failed"} for p in problems] + [
        records[s]["problem"] | {"status": records[s]["status"]}
        for s in sorted(records)
        if records[s]["status"] != "ok"
    ]
    subjects = [
        records[s]
        | {
            "split": split[s],
            "has_genes": s in with_genes,
            "shard": f"subjects/{cache.shard_path(s).name}",
        }
        for s in ok
    ]
    from rgsynth.prepare.qc import save_montage

    save_montage(cache, ok, cache.root / MONTAGE_FILENAME, config.hu_window)
    manifest = {
        "rgsynth_version": __version__,
        "settings": config.to_dict(),
        "settings_fingerprint": config.fingerprint(),
        "inputs": {
            "cohort": str(inputs.cohort.resolve()),
            "kind": inputs.kind,
            "expression": str(inputs.expression),
            "clinical": None if inputs.clinical is None else str(inputs.clinical),
        },
        "inputs_fingerprint": _state_fingerprint(cache),
        "genes": gene_section,
        "clinical": clinical_section,
        "split": {
            "seed": config.seed,
            "val_fraction": config.val_fraction,
            "train": sorted(split_ids(split, "train")),
            "val": sorted(split_ids(split, "val")),
            **({HOLDOUT_SPLIT: held} if held else {}),
        },
        "totals": {
            "subjects": len(ok),
            "subjects_with_genes": len(with_genes),
            "nodule_slices": int(sum(records[s]["n_nodule_slices"] for s in ok)),
            "background_slices": int(sum(records[s]["n_background_slices"] for s in ok)),
        },
        "unmatched": {
            "images_without_genes": sorted(set(ok) - set(with_genes)),
            "genes_without_images": sorted(
                p.subject_id for p in problems if "has genes but no images" in p.problem
            ),
        },
        "subjects": subjects,
        "skipped": skipped,
        "qc_montage": MONTAGE_FILENAME,
    }
    sealed = cache.finish(manifest)
    _echo_summary(sealed, echo)
    return sealed


def split_ids(split: dict[str, str], name: str) -> list[str]:
    return [s for s, part in split.items() if part == name]


def _state_fingerprint(cache: Cache) -> str:
    return fingerprint(json.loads((cache.root / STATE_FILENAME).read_text())["inputs"])


def _write_genes(table, with_genes, train, cache, config, echo) -> dict[str, Any]:
    kept = genes.complete_genes(table, with_genes) if with_genes else []
    echo(genes.gene_count_line(table, len(kept), len(with_genes)))
    if not train or not kept:
        raise InputError("", table.path, "no training subject with both images and genes")
    normaliser = genes.GeneNormaliser.fit(table, kept, train, config.gene_transform)
    values = normaliser.apply(table, with_genes)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        subject_ids=np.array(with_genes),
        gene_names=np.array(kept),
        values=values,
        mean=normaliser.mean.astype(np.float32),
        sd=normaliser.sd.astype(np.float32),
    )
    atomic_write_bytes(cache.root / GENES_FILENAME, buffer.getvalue())
    atomic_write_text(cache.root / GENE_STATS_FILENAME, normaliser.to_frame().to_csv(index=False))
    return {
        "file": GENES_FILENAME,
        "statistics": GENE_STATS_FILENAME,
        "n_in_table": int(table.values.shape[0]),
        "n_kept": len(kept),
        "rule": "genes with no missing value among the subjects used",
        "transform": "log2(x + 1)" if config.gene_transform == "log2p1" else "none",
        "standardised_on": "train subjects",
        "n_constant_on_train": normaliser.n_constant,
        "orientation_in_file": table.orientation,
        "names": kept,
        "mean": [round(float(m), 6) for m in normaliser.mean],
        "sd": [round(float(d), 6) for d in normaliser.sd],
    }


def _write_clinical(path: Path | None, ok: list[str], cache: Cache) -> dict[str, Any]:
    if path is None:
        return {"file": None, "note": "no clinical table found"}
    clinical = genes.read_clinical(path)
    rows = clinical.reindex([s for s in ok if s in clinical.index])
    atomic_write_text(
        cache.root / CLINICAL_FILENAME, rows.to_csv(index_label=genes.CLINICAL_ID_COLUMN)
    )
    return {
        "file": CLINICAL_FILENAME,
        "source": path.name,
        "subjects_with_row": len(rows),
        "subjects_without_row": sorted(set(ok) - set(clinical.index)),
    }


def _echo_summary(manifest: dict[str, Any], echo: Callable[[str], None]) -> None:
    totals, unmatched = manifest["totals"], manifest["unmatched"]
    echo(
        f"subjects: {totals['subjects']} prepared ({totals['subjects_with_genes']} with genes), "
        f"{len(manifest['split']['train'])} train / {len(manifest['split']['val'])} val"
        + (
            f" / {len(manifest['split'][HOLDOUT_SPLIT])} held out"
            if HOLDOUT_SPLIT in manifest["split"]
            else ""
        )
        + "; "
        f"{totals['nodule_slices']} nodule slices, {totals['background_slices']} background slices"
    )
    if unmatched["images_without_genes"]:
        echo(
            f"images but no genes ({len(unmatched['images_without_genes'])}, backgrounds only): "
            + ", ".join(unmatched["images_without_genes"])
        )
    for entry in manifest["skipped"]:
        what = "excluded" if entry.get("status") == "excluded" else "skipped"
        echo(f"{what} {entry['subject_id']}: {entry['problem']} ({entry['file']})")
