"""What every command shares: one-line errors, progress bars, dropping unset options."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from rgsynth.errors import RgsynthError, UsageError

log = logging.getLogger("rgsynth")


def given(**options: Any) -> dict[str, Any]:
    """The options the user set (typer gives None for the others), so a dataclass built
    from them keeps its own defaults."""
    return {name: value for name, value in options.items() if value is not None}


def settings(factory: Callable[..., Any], **options: Any) -> Any:
    """``factory(**given(options))``, its ValueError a one-line usage error."""
    try:
        return factory(**given(**options))
    except ValueError as error:
        raise UsageError(str(error)) from None


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def indented(line: str) -> None:
    typer.echo(f"      {line}")


@contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[str], None]]:
    """A rich progress bar on a terminal (none into a file); ``advance(subject_id)``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(description, total=total)

        def advance(subject_id: str) -> None:
            bar.update(task, advance=1, description=f"{description}: {subject_id}")
            log.info("done %s", subject_id)

        yield advance


@contextmanager
def errors() -> Iterator[None]:
    """Expected failures (:class:`RgsynthError`) become one line on stderr and their exit
    code (2, or 130 for an interrupted training); so does a path that does not exist."""
    try:
        yield
    except RgsynthError as error:
        typer.echo(f"{error.label}: {error}", err=True)
        raise typer.Exit(error.exit_code) from None
    except FileNotFoundError as error:  # a path the user gave: Python's message names it
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def opt(text: str, default: Any = None, *names: str) -> Any:
    """A typer option whose help ends with ``[default]`` (a settings dataclass's value,
    so the help cannot disagree with what runs); ``names`` as typer's param_decls."""
    shown = "" if default is None else f" [{default}]"
    return typer.Option(*names, help=f"{text}{shown}.")


def arg(text: str) -> Any:
    return typer.Argument(help=text)


# Options several commands share.
RunFolder = Annotated[Path, typer.Argument(help="A run folder written by `rgsynth train`.")]
RunCache = Annotated[Path | None, opt("The run's cache [the one recorded in the run]")]
Workers = Annotated[int | None, opt("Parallel processes [CPU count]")]
