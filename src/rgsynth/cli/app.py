"""The typer app every command module adds its command to."""

from __future__ import annotations

import io
import logging
import sys
from typing import Annotated

import typer

from rgsynth.cli.common import OneLineUsageErrors

app = typer.Typer(
    name="rgsynth",
    cls=OneLineUsageErrors,
    help="Radiogenomic synthesis: gene-conditioned lung-nodule GAN and radiogenomic maps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts say "[default: …]" in brackets: not markup
)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Per-subject logging.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("highdicom").setLevel(logging.WARNING)  # its INFO is per attribute
    # Line-buffered even into a file or pipe: progress shows as it happens, and a forked
    # worker (data loading, prepare) cannot flush a copy of unwritten lines at its exit.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
