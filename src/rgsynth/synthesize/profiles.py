"""Gene profiles to condition a synthesis on, in the cache's gene space.

A profile is a vector of standardised expression over the model's genes (the cache's gene
list, transformed and z-scored with the cache's training statistics). It comes from a
subject of the cache, from a row of a user's expression table (normalised exactly as the
cache was), or from either with edits: named genes, or every gene of a program (a gene
set), set to a z-score.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rgsynth.io import genes as gene_tables
from rgsynth.io.source import InputError
from rgsynth.layout import GENES_FILENAME
from rgsynth.prepare.cache import Cache

DEFAULT_MAX_MISSING_FRACTION = 0.1


@dataclass(frozen=True)
class GeneProfile:
    """Attributes:
    name: a short label (``R01-012``, ``R01-012+P2=2``).
    values: (G,) float32 standardised expression over the cache's genes.
    source: where it came from, for the manifest.
    notes: what was filled in or changed.
    base: the profile before genes or programs were set by hand (``--set``,
        ``--set-program``), None if none was: an unseen donor's base is unshrunk and the
        edit (``values - base``, values on the training donors' scale) is not.
    measured: a donor's measured profile (or one edited from it), not the training mean.
    """

    name: str
    values: np.ndarray
    source: str
    notes: tuple[str, ...] = field(default=())
    base: np.ndarray | None = None
    measured: bool = True

    @property
    def unedited(self) -> np.ndarray:
        """The values before any edit."""
        return self.values if self.base is None else self.base


@dataclass
class CacheGenes:
    """The cache's gene space: names, normalisation and every subject's profile."""

    names: list[str]
    subject_ids: list[str]
    values: np.ndarray  # (S, G) standardised
    normaliser: gene_tables.GeneNormaliser

    @classmethod
    def load(cls, cache_root: Path) -> CacheGenes:
        manifest = Cache(Path(cache_root)).manifest()
        with np.load(Path(cache_root) / GENES_FILENAME) as stored:
            names = [str(g) for g in stored["gene_names"]]
            normaliser = gene_tables.GeneNormaliser(
                genes=names,
                transform=manifest["settings"]["gene_transform"],
                mean=stored["mean"].astype(np.float64),
                sd=stored["sd"].astype(np.float64),
                n_constant=int(manifest["genes"].get("n_constant_on_train", 0)),
            )
            return cls(names, [str(s) for s in stored["subject_ids"]], stored["values"], normaliser)

    def subject(self, subject_id: str) -> GeneProfile:
        """The cache's own profile of ``subject_id``.

        Raises:
            InputError: the cache has no genes for that subject.
        """
        if subject_id not in self.subject_ids:
            shown = ", ".join(self.subject_ids[:5])
            raise InputError(
                subject_id,
                GENES_FILENAME,
                f"no gene profile for this subject in the cache ({len(self.subject_ids)} "
                f"subjects have one: {shown}, ...)",
            )
        row = self.subject_ids.index(subject_id)
        return GeneProfile(subject_id, self.values[row].astype(np.float32), f"cache:{subject_id}")


def profiles_from_table(
    path: Path,
    cache_genes: CacheGenes,
    subject_ids: list[str] | None = None,
    max_missing_fraction: float = DEFAULT_MAX_MISSING_FRACTION,
) -> list[GeneProfile]:
    """Profiles of ``subject_ids`` (default: every subject) in a user's expression table.

    Values are transformed and standardised with the cache's statistics. Genes of the
    model absent from the table, or missing for a subject, are set to the training mean
    (z = 0) and reported in the profile's notes.

    Raises:
        InputError: unreadable table, bad values, an unknown subject, or more than
            ``max_missing_fraction`` of the model's genes absent (the wrong gene list).
    """
    table = gene_tables.read_expression_table(path, subject_ids or ())
    wanted = subject_ids or table.subject_ids
    for subject in wanted:
        if subject not in table.subject_ids:
            raise InputError(subject, path, f"no such subject in the table ({table.orientation})")
    problems = gene_tables.bad_values(table, cache_genes.normaliser.transform)
    for subject in wanted:
        if subject in problems:
            raise problems[subject]
    present = [g for g in cache_genes.names if g in set(table.gene_names)]
    absent = len(cache_genes.names) - len(present)
    if absent > max_missing_fraction * len(cache_genes.names):
        example = next(g for g in cache_genes.names if g not in set(table.gene_names))
        raise InputError(
            "",
            path,
            f"{absent} of the model's {len(cache_genes.names)} genes are not in this table "
            f"(e.g. {example}); it must use the cache's gene names "
            f"(at most {100 * max_missing_fraction:g}% may be missing)",
        )
    return [_table_profile(table, subject, cache_genes) for subject in wanted]


def _table_profile(
    table: gene_tables.ExpressionTable, subject: str, cache_genes: CacheGenes
) -> GeneProfile:
    normaliser = cache_genes.normaliser
    raw = table.values[subject].reindex(cache_genes.names).to_numpy(dtype=np.float64)
    missing = ~np.isfinite(raw)
    logged = np.log2(raw + 1.0) if normaliser.transform == "log2p1" else raw
    values = np.where(missing, 0.0, (logged - normaliser.mean) / normaliser.sd)
    notes: tuple[str, ...] = ()
    if missing.any():
        first = cache_genes.names[int(np.argmax(missing))]
        notes = (
            f"{int(missing.sum())} of {len(missing)} genes missing in {table.path.name} "
            f"(e.g. {first}); set to the training mean (z = 0)",
        )
    return GeneProfile(subject, values.astype(np.float32), f"table:{table.path.name}", notes)


@dataclass(frozen=True)
class GeneSet:
    """A program or metagene: member genes with a sign (+1 up with the program, -1 down)."""

    name: str
    genes: tuple[str, ...]
    signs: tuple[float, ...]


def read_gene_sets(path: Path) -> dict[str, GeneSet]:
    """Gene sets from a GMT file (MSigDB's format, all members +1), a CSV with columns
    ``set,gene,weight`` (the sign of the weight is kept), or a twin's ``ground_truth.json``
    (its programs, signed by their loadings).

    Raises:
        InputError: unreadable or empty file, or a format not recognised.
    """
    path = Path(path)
    try:
        if path.suffix == ".gmt":
            sets = _read_gmt(path)
        elif path.suffix == ".json":
            sets = _read_twin_programs(json.loads(path.read_text()))
        else:
            sets = _read_weighted_csv(pd.read_csv(path))
    except (OSError, ValueError, KeyError, TypeError) as error:  # TypeError: JSON, not a truth
        raise InputError("", path, f"unreadable gene-set file ({error})") from None
    if not sets:
        raise InputError("", path, "no gene sets in this file")
    return sets


def _read_gmt(path: Path) -> dict[str, GeneSet]:
    sets = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.split("\t")]
        if len(cells) >= 3 and cells[0]:
            members = tuple(g for g in cells[2:] if g)
            sets[cells[0]] = GeneSet(cells[0], members, (1.0,) * len(members))
    return sets


def _read_twin_programs(truth: dict) -> dict[str, GeneSet]:
    names, programs = truth["genes"]["names"], truth["genes"]["program"]
    loadings = truth["genes"]["loading"]
    sets = {}
    for index, program in enumerate(truth["programs"]):
        members = [n for n, p in enumerate(programs) if p == index]
        sets[program["name"]] = GeneSet(
            program["name"],
            tuple(names[n] for n in members),
            tuple(float(np.sign(loadings[n]) or 1.0) for n in members),
        )
    return sets


def _read_weighted_csv(frame: pd.DataFrame) -> dict[str, GeneSet]:
    frame = frame.rename(columns=str.strip)
    if not {"set", "gene"} <= set(frame.columns):
        raise ValueError("a gene-set CSV needs columns set, gene and optionally weight")
    weights = frame["weight"] if "weight" in frame else pd.Series(1.0, index=frame.index)
    sets = {}
    for name, rows in frame.assign(weight=weights).groupby("set", sort=False):
        signs = tuple(float(np.sign(w) or 1.0) for w in rows["weight"])
        sets[str(name)] = GeneSet(str(name), tuple(map(str, rows["gene"])), signs)
    return sets


_EDIT = re.compile(r"^\s*([^=\s]+)\s*=\s*([-+]?\d+(\.\d*)?([eE][-+]?\d+)?)\s*$")


def parse_edit(text: str) -> tuple[str, float]:
    """``NAME=Z`` → (NAME, Z).

    Example:
        >>> parse_edit("EGFR=2.5")
        ('EGFR', 2.5)
    """
    match = _EDIT.match(text)
    if match is None:
        raise ValueError(f"{text!r}: expected NAME=Z, e.g. EGFR=2 or P3=-1.5")
    return match.group(1), float(match.group(2))


def edit_profile(
    profile: GeneProfile,
    cache_genes: CacheGenes,
    gene_edits: Sequence[tuple[str, float]] = (),
    program_edits: Sequence[tuple[str, float]] = (),
    gene_sets: dict[str, GeneSet] | None = None,
) -> GeneProfile:
    """``profile`` with named genes set to a z-score, and every member of named programs
    set to ``z × sign`` (members the cache does not have are reported, not fatal).

    Raises:
        ValueError: an unknown gene or program, or a program with no gene in the cache.
    """
    values = profile.values.copy()
    column = {g: n for n, g in enumerate(cache_genes.names)}
    notes = list(profile.notes)
    for gene, z in gene_edits:
        if gene not in column:
            raise ValueError(f"gene {gene!r} is not among the model's {len(column)} genes")
        values[column[gene]] = z
    for name, z in program_edits:
        if not gene_sets or name not in gene_sets:
            known = ", ".join(sorted(gene_sets or {})[:8]) or "none; give --gene-sets FILE"
            raise ValueError(f"program {name!r} is not a known gene set (known: {known})")
        gene_set = gene_sets[name]
        members = [
            (g, s) for g, s in zip(gene_set.genes, gene_set.signs, strict=True) if g in column
        ]
        if not members:
            raise ValueError(f"program {name!r}: none of its genes is among the model's genes")
        for gene, sign in members:
            values[column[gene]] = z * sign
        notes.append(f"program {name}: {len(members)} of {len(gene_sets[name].genes)} genes set")
    edits = [f"{g}={z:g}" for g, z in [*gene_edits, *program_edits]]
    name = profile.name + ("+" + "+".join(edits) if edits else "")
    base = profile.unedited if edits else profile.base
    return GeneProfile(name, values, profile.source, tuple(notes), base, profile.measured)
