"""The ``rgsynth`` command line: one small module per command, each parsing its options,
building its settings and making one call. Options left out are None, so every default
lives in the settings dataclasses (``rgsynth.config``); heavy imports happen inside the
commands, so ``rgsynth --help`` loads no stage."""

from rgsynth.cli import analysis, cohort, demo, prepare, synthesize, train
from rgsynth.cli.app import app

# The command table, in the order --help lists it.
app.command("synth-cohort")(cohort.synth_cohort)
app.command()(cohort.view)
app.command()(prepare.prepare)
app.command()(train.train)
app.command()(synthesize.synthesize)
app.command("map")(analysis.map_command)
app.command()(analysis.evaluate)
app.command()(analysis.report)
app.command()(demo.demo)

__all__ = ["app"]
