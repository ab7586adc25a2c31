"""A stage of a pipeline: what it is made from, what it makes, and how.

One rule says whether a stage is current: its record (``RECORDS/<key>.json``) holds the
fingerprint of the inputs it was last made from, that fingerprint equals the one of its
inputs now, and every output it names exists. A stage that is current is skipped; any
other runs, and its record is written once it has finished (so an interrupted stage is
never current). Inputs are read when the stage is reached, after the stages before it
ran, so a stage sees what they made.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> made = []
    >>> stage = Stage("hello", "hello.txt", [folder / "hello.txt"],
    ...               inputs=lambda: {"greeting": "hi"},
    ...               run=lambda: (folder / "hello.txt").write_text("hi") and made.append(1))
    >>> Pipeline(folder / "stages", [stage], echo=lambda line: None).run()
    ['ran']
    >>> Pipeline(folder / "stages", [stage], echo=lambda line: None).run()
    ['skipped']
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rgsynth.config import fingerprint
from rgsynth.fsutil import atomic_write_json


@dataclass
class Stage:
    """Attributes:
    key: the stage's name in its record file and in messages.
    title: what the progress line says it makes ("training cache → demo/cache").
    outputs: files that must exist for the stage to count as made.
    inputs: → the JSON-able facts the outputs are a function of (settings, the
        fingerprints and steps of what earlier stages made).
    run: makes the outputs.
    """

    key: str
    title: str
    outputs: Sequence[Path]
    inputs: Callable[[], dict[str, Any]]
    run: Callable[[], None]
    skipped_note: str = "up to date, skipped"


@dataclass
class Pipeline:
    """Stages run in order; each prints ``[n/N] title  (x min in)``."""

    records: Path
    stages: list[Stage]
    echo: Callable[[str], None] = print
    _start: float = field(default_factory=time.perf_counter)

    def record_path(self, stage: Stage) -> Path:
        return self.records / f"{stage.key}.json"

    def is_current(self, stage: Stage, inputs_fingerprint: str) -> bool:
        try:
            record = json.loads(self.record_path(stage).read_text())
        except (OSError, ValueError):
            return False
        made_from = record.get("inputs_fingerprint") if isinstance(record, dict) else None
        return made_from == inputs_fingerprint and all(Path(p).exists() for p in stage.outputs)

    def forget(self, stage: Stage) -> None:
        """Make ``stage`` run next time (its outputs are kept)."""
        self.record_path(stage).unlink(missing_ok=True)

    def run(self) -> list[str]:
        """Run or skip every stage; returns what happened to each ('ran' or 'skipped')."""
        happened = []
        for number, stage in enumerate(self.stages, start=1):
            minutes = (time.perf_counter() - self._start) / 60
            self.echo(f"[{number}/{len(self.stages)}] {stage.title}  ({minutes:.1f} min in)")
            inputs = stage.inputs()
            made_from = fingerprint(inputs)
            if self.is_current(stage, made_from):
                self.echo(f"      {stage.skipped_note}")
                happened.append("skipped")
                continue
            self.forget(stage)  # an interrupted run must not leave it looking current
            stage.run()
            record = {"stage": stage.key, "inputs_fingerprint": made_from, "inputs": inputs}
            self.records.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.record_path(stage), record)
            happened.append("ran")
        return happened
