"""The training cache on disk: one shard and one record per subject, then a manifest.

Layout::

    cache/
      state.json            settings + inputs this cache is being built from (written first)
      subjects/<id>.npz     a subject's examples (see SubjectExamples), written atomically
      subjects/<id>.json    its record: status, counts, notes, input fingerprint
      genes.npz             standardised expression of the subjects with genes
      gene_stats.csv        per-gene mean and sd (fitted on training subjects only)
      clinical.csv          the clinical table, cleaned, for the subjects kept
      qc_montage.png        nodule slices with mask contours, backgrounds with lung contours
      manifest.json         written last: its presence means the cache is complete

A run with the same settings and inputs resumes: subjects whose record and shard are
intact are not redone (a corrupt shard is recomputed). A cache started with other
settings or inputs is refused, saying what differs, unless the caller forces a rebuild.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from rgsynth.config import PrepareConfig
from rgsynth.errors import CacheError, CacheMismatchError
from rgsynth.fsutil import atomic_write_bytes, atomic_write_json
from rgsynth.layout import MANIFEST_FILENAME, STATE_FILENAME, SUBJECTS_DIRNAME

CACHE_FORMAT = "rgsynth-cache/1"
SHARD_KEYS = (
    "nodule_image",
    "nodule_mask",
    "nodule_slice_mm",
    "nodule_centre_mm",
    "background_image",
    "background_lung",
    "background_centre_mm",
)


def subject_stem(subject_id: str) -> str:
    """A file name for ``subject_id``: itself when safe, else a sanitised name plus a hash."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", subject_id)
    if safe == subject_id and not safe.startswith("."):
        return safe
    return f"{safe.lstrip('.')}-{zlib.crc32(subject_id.encode()):08x}"


class Cache:
    """A cache folder. ``start`` before writing subjects, ``finish`` to seal it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.subjects_dir = self.root / SUBJECTS_DIRNAME

    @property
    def is_complete(self) -> bool:
        return (self.root / MANIFEST_FILENAME).is_file()

    def manifest(self) -> dict[str, Any]:
        """Raises CacheError: a manifest cut short or damaged (every reader of a cache
        starts here, so each says so in one line)."""
        path = self.root / MANIFEST_FILENAME
        try:
            return json.loads(path.read_text())
        except ValueError as error:
            raise CacheError(
                f"{path}: damaged cache manifest ({error}); delete it and run "
                "`rgsynth prepare` again to seal the cache anew"
            ) from None

    def start(self, state: dict[str, Any], force: bool) -> bool:
        """Claim the folder for ``state``; True when a complete cache of it is already here.

        Raises:
            CacheMismatchError: the folder holds another cache (or other files) and
                ``force`` is off.
        """
        state = json.loads(json.dumps({"format": CACHE_FORMAT, **state}))  # tuples as JSON has them
        old = self._read_state()
        if old is None and self.root.exists() and any(self.root.iterdir()) and not force:
            raise CacheMismatchError(
                f"{self.root}: exists and is not an rgsynth cache; choose another folder or "
                "pass --force"
            )
        if old is not None and old != state:
            if not force:
                raise CacheMismatchError(
                    f"{self.root}: cache was made with other "
                    + "; ".join(describe_differences(old, state))
                    + " (pass --force to rebuild it, or choose another folder)"
                )
        elif old is not None and self.is_complete:
            return True
        with contextlib.suppress(FileNotFoundError):
            (self.root / MANIFEST_FILENAME).unlink()  # no longer describes what is here
        self.subjects_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.root / STATE_FILENAME, state)
        return False

    def _read_state(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / STATE_FILENAME).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def record_path(self, subject_id: str) -> Path:
        return self.subjects_dir / f"{subject_stem(subject_id)}.json"

    def shard_path(self, subject_id: str) -> Path:
        return self.subjects_dir / f"{subject_stem(subject_id)}.npz"

    def reusable_record(
        self, subject_id: str, input_fingerprint: str, settings_fingerprint: str
    ) -> dict[str, Any] | None:
        """The stored record when it was made from these inputs and settings and its shard
        (if any) loads; None means the subject must be (re)done."""
        try:
            record = json.loads(self.record_path(subject_id).read_text())
        except (FileNotFoundError, ValueError):
            return None
        if (
            record.get("input_fingerprint") != input_fingerprint
            or record.get("settings_fingerprint") != settings_fingerprint
        ):
            return None
        if record["status"] == "ok" and not self._shard_loads(subject_id):
            return None
        return record

    def _shard_loads(self, subject_id: str) -> bool:
        try:
            with np.load(self.shard_path(subject_id)) as shard:
                return all(shard[key].shape is not None for key in SHARD_KEYS)
        except (OSError, ValueError, KeyError, EOFError, zlib.error, zipfile.BadZipFile):
            return False

    def write_subject(self, record: dict[str, Any], arrays: dict[str, np.ndarray] | None) -> None:
        """Shard first, record second: a record never points at a missing shard."""
        subject_id = record["subject_id"]
        if arrays is not None:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **arrays)
            atomic_write_bytes(self.shard_path(subject_id), buffer.getvalue())
        atomic_write_json(self.record_path(subject_id), record)

    def load_shard(self, subject_id: str) -> dict[str, np.ndarray]:
        with np.load(self.shard_path(subject_id)) as shard:
            return {key: shard[key] for key in SHARD_KEYS}

    def remove_other_subjects(self, keep: set[str]) -> list[str]:
        """Delete records and shards of subjects no longer in the inputs."""
        wanted = {subject_stem(s) for s in keep}
        removed = []
        for path in sorted(self.subjects_dir.iterdir()):
            if path.suffix in (".json", ".npz") and path.stem not in wanted:
                path.unlink()
                removed.append(path.name)
        return removed

    def finish(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Write the manifest (sealing the cache) and return it as a reader will see it."""
        sealed = json.loads(json.dumps({"format": CACHE_FORMAT, **manifest}))
        atomic_write_json(self.root / MANIFEST_FILENAME, sealed)
        return sealed


def cache_prepare_config(root: Path) -> PrepareConfig:
    """The settings a complete cache was prepared with: whatever cuts patches from it
    later (synthesis, maps, evaluation) must cut them the same way."""
    return PrepareConfig.from_dict(Cache(Path(root)).manifest()["settings"])


def describe_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Human lines for what differs between two nested dicts (settings, inputs)."""
    lines = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        if key not in old or key not in new:
            continue_with = "added" if key not in old else "removed"
            lines.append(f"{name} {continue_with}")
        elif isinstance(old[key], dict) and isinstance(new[key], dict):
            if key == "subjects":
                lines.extend(_subject_differences(old[key], new[key]))
            else:
                lines.extend(describe_differences(old[key], new[key], prefix=f"{name}."))
        elif old[key] != new[key]:
            lines.append(f"{name} ({_short(old[key])} in the cache, {_short(new[key])} now)")
    return lines


def _subject_differences(old: dict[str, str], new: dict[str, str]) -> list[str]:
    lines = []
    for label, ids in (
        ("subjects added", sorted(set(new) - set(old))),
        ("subjects removed", sorted(set(old) - set(new))),
        ("files changed for", sorted(s for s in set(old) & set(new) if old[s] != new[s])),
    ):
        if ids:
            shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
            lines.append(f"inputs: {label} {shown}")
    return lines


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
