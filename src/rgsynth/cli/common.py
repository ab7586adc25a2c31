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
from typer._click.exceptions import NoArgsIsHelpError  # typer (pinned) vendors click
from typer._click.exceptions import UsageError as TyperUsageError
from typer.core import TyperGroup

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


class OneLineUsageErrors(TyperGroup):
    """The app's command group: typer's own usage errors (text where a number goes, a
    number out of an option's range, an unknown option, a missing argument) print a usage
    box of four lines; like every other expected failure they become one line instead,
    ``error: <typer's message naming the option>``, and exit 2."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        with _one_line_usage_errors():  # the app's own options
            return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        with _one_line_usage_errors():  # the command's name, options and arguments
            return super().invoke(ctx)


@contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    try:
        yield
    except NoArgsIsHelpError:  # `rgsynth` alone: the help, as asked
        raise
    except TyperUsageError as error:
        typer.echo(f"error: {error.format_message()}", err=True)
        raise typer.Exit(error.exit_code) from None


def opt(text: str, default: Any = None, *names: str, **checks: Any) -> Any:
    """A typer option whose help ends with ``[default]`` (a settings dataclass's value,
    so the help cannot disagree with what runs); ``names`` as typer's param_decls;
    ``checks`` typer's own validation (``min=``, ``exists=``, ``dir_okay=``, a callback),
    whose one-line message names the option."""
    shown = "" if default is None else f" [{default}]"
    return typer.Option(*names, help=f"{text}{shown}.", **checks)


def arg(text: str, **checks: Any) -> Any:
    return typer.Argument(help=text, **checks)


def positive(value: float | None) -> float | None:
    """A callback for a budget that must be above zero (typer's ``min=`` includes it)."""
    if value is not None and value <= 0:
        raise typer.BadParameter(f"Input should be greater than 0, got {value:g}")
    return value


# Checks several options share: a count of at least one, a seed, a table read as a file.
AT_LEAST_ONE: dict[str, Any] = {"min": 1}
SEED: dict[str, Any] = {"min": 0}  # numpy's seeds are non-negative
FILE: dict[str, Any] = {"exists": True, "dir_okay": False}
STRENGTH: dict[str, Any] = {"max": 1.0, "callback": positive}  # a power in (0, 1]


def unseen_option(text: str, default: bool) -> Any:
    """``--unshrink-unseen/--plain-unseen`` of map, evaluate and synthesize (``text``:
    what each divides)."""
    return opt(text, default, "--unshrink-unseen/--plain-unseen")


def strength_option(default: float) -> Any:
    """``--unshrink-strength P``, the power of that correction (with :func:`check_strength`)."""
    return opt(
        "That power: 1 the full correction, 1/2 most of its gain without its empty masks",
        default,
        **STRENGTH,
    )


def check_strength(unshrink: bool | None, strength: float | None) -> None:
    """A strength is the power of a correction ``--plain-unseen`` turns off: refuse both."""
    if unshrink is False and strength is not None:
        raise UsageError(
            "--unshrink-strength: held-out donors are read plain (--plain-unseen), so there "
            "is no correction to weaken; give one or the other"
        )


def output_folder(path: Path | None, what: str) -> None:
    """An output folder that is a file cannot be written into (nor replaced: a file
    given by mistake is not ours to delete); refused before anything is read."""
    if path is not None and path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path}: is a file, not a folder; choose a folder")


# Options several commands share.
RunFolder = Annotated[Path, typer.Argument(help="A run folder written by `rgsynth train`.")]
RunCache = Annotated[Path | None, opt("The run's cache [the one recorded in the run]")]
Workers = Annotated[int | None, opt("Parallel processes [CPU count]", None, **AT_LEAST_ONE)]
