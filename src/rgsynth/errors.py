"""Every expected failure of rgsynth, under one root.

The command line catches :class:`RgsynthError` alone (and ``FileNotFoundError`` for a
path the user gave): it prints ``label: message`` as one line on stderr and exits with
``exit_code``; typer's own usage errors (text for a number, a number out of an option's
range) are one ``error:`` line too, exit 2. Anything else is a bug and keeps its
traceback. This module imports nothing, so the CLI can name the errors without loading
any stage.
"""

from __future__ import annotations


class RgsynthError(Exception):
    """An expected failure: reported as one line, exit code 2."""

    exit_code = 2
    label = "error"


class UsageError(RgsynthError):
    """A bad option or an inconsistent set of settings on the command line."""


class OutputExistsError(RgsynthError, FileExistsError):
    """The output already exists and ``--force`` was not given."""


class InputError(RgsynthError, ValueError):
    """A problem with one subject's input files, reported as one line.

    Attributes:
        subject_id: the subject concerned ("" when it is not known).
        path: the file or folder at fault.
        problem: what is wrong, in words.
    """

    def __init__(self, subject_id: str, path: object, problem: str) -> None:
        self.subject_id, self.path, self.problem = subject_id, str(path), problem
        who = f"subject {subject_id}: " if subject_id else ""
        super().__init__(f"{who}{self.path}: {problem}")

    def to_dict(self) -> dict[str, str]:
        return {"subject_id": self.subject_id, "file": self.path, "problem": self.problem}


class CacheError(RgsynthError, ValueError):
    """A cache that is missing, incomplete or unusable for training."""


class CacheMismatchError(RgsynthError):
    """A cache made with other settings or inputs, rebuilt only with ``--force``."""


class CheckpointError(RgsynthError, ValueError):
    """A missing, unreadable or incompatible checkpoint."""


class RunExistsError(RgsynthError, FileExistsError):
    """The run folder already holds a checkpoint and --resume was not given."""


class TrainingDiverged(RgsynthError, RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(RgsynthError):
    """Ctrl-C or SIGTERM stopped training at a step boundary, after a checkpoint."""

    exit_code = 130  # the shell's code for Ctrl-C
    label = "stopped"


class ReportInputError(RgsynthError, ValueError):
    """A run folder that lacks, or has a damaged copy of, a file the report reads."""
