"""``rgsynth demo``: the whole chain on the twin, as a list of stages.

Each stage names the facts its outputs are made from (settings, the cache fingerprint, the
checkpoint steps, the digest of the files it reads) and is skipped while they are
unchanged (:mod:`rgsynth.pipeline.stage`); its record is in ``OUT/stages/``. A training
stopped before its budget was spent resumes from its checkpoint with the minutes left.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import asdict, dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Annotated

import typer

from rgsynth.cli.cohort import run_synth_cohort, run_view, twin_config
from rgsynth.cli.common import (
    AT_LEAST_ONE,
    SEED,
    Workers,
    errors,
    indented,
    opt,
    output_folder,
    positive,
    read_json,
)
from rgsynth.cli.prepare import run_prepare
from rgsynth.cli.synthesize import run_synthesize
from rgsynth.cli.train import run_train
from rgsynth.config import (
    BatchSettings,
    EvaluationSettings,
    MapSettings,
    PerturbationSettings,
    PrepareConfig,
    TrainConfig,
    TwinConfig,
)
from rgsynth.layout import (
    CHECKPOINT_PATH,
    COHORT_MONTAGE_FILENAME,
    DEMO_TRAINING_FILENAME,
    EVALUATION_FILENAME,
    EXAMPLES_CSV,
    GROUND_TRUTH_FILENAME,
    MANIFEST_FILENAME,
    MAPS_DIRNAME,
    MAPS_SUMMARY_FILENAME,
    REPORT_DIRNAME,
    REPORT_PAGE,
    SYNTHESIS_SUMMARY_FILENAME,
)

DEMO_MINUTES = 4.5  # per model: with the other stages and the install, about 15 minutes on 2 cores
STAGE_RECORDS = "stages"


def demo(
    out: Annotated[Path, opt("Folder for every stage's outputs")] = Path("rgsynth-demo"),
    minutes: Annotated[
        float, opt("Training budget per model (ours, then MC-GAN)", None, callback=positive)
    ] = DEMO_MINUTES,
    steps: Annotated[
        int | None, opt("Also stop each model's training at this step", None, **AT_LEAST_ONE)
    ] = None,
    subjects: Annotated[int | None, opt("Twin subjects [the demo preset's]")] = None,
    seed: Annotated[
        int | None, opt("Seed of the twin and of every stage", TwinConfig.seed, **SEED)
    ] = None,
    workers: Workers = None,
) -> None:
    """The whole pipeline on the synthetic twin: cohort → prepare → train ours and MC-GAN
    under the same budget → maps → evaluation → synthesis → HTML report.

    Stages whose outputs exist and are current are skipped, so a second run, or a run
    after an interruption, picks up where the last one stopped (an interrupted training
    resumes from its checkpoint with what is left of its budget).
    """
    with errors():
        from rgsynth.pipeline.stage import Pipeline

        output_folder(out, "--out")
        twin = twin_config("demo", seed, subjects)
        demo = Demo(out, twin, minutes, steps, workers)
        Pipeline(out / STAGE_RECORDS, demo.stages(), typer.echo).run()
        page = demo.runs[demo.proposed] / REPORT_DIRNAME / REPORT_PAGE
        typer.echo(f"done: open {page} (augmentation examples: {demo.synthesis / 'previews'})")


def map_settings(seed: int) -> MapSettings:
    """`rgsynth map`'s defaults, seeded (a test shrinks them)."""
    return MapSettings(perturbation=PerturbationSettings(seed=seed), seed=seed)


def evaluation_settings(seed: int) -> EvaluationSettings:
    """`rgsynth evaluate`'s defaults, seeded (a test shrinks them)."""
    return EvaluationSettings(seed=seed)


@dataclass
class Demo:
    """The demo's folders and settings, and its stages."""

    out: Path
    twin: TwinConfig
    minutes: float
    steps: int | None
    workers: int | None

    def __post_init__(self) -> None:
        from rgsynth.models.registry import BASELINE, PROPOSED

        self.proposed, self.baseline = PROPOSED, BASELINE
        self.cohort, self.cache = self.out / "cohort", self.out / "cache"
        self.synthesis = self.out / "synthesis"
        self.runs = {PROPOSED: self.out / "run", BASELINE: self.out / f"run-{BASELINE}"}
        self.truth = self.cohort / GROUND_TRUTH_FILENAME
        self.seed = self.twin.seed

    def stages(self):
        """Twin, montage, cache, each model's training, each model's maps (the compared
        run's first, so ours can show its codes), evaluation, synthesis, report."""
        from rgsynth.models.registry import get_spec
        from rgsynth.pipeline.stage import Stage

        montage, proposed = self.out / COHORT_MONTAGE_FILENAME, self.runs[self.proposed]
        page = proposed / REPORT_DIRNAME / REPORT_PAGE
        stages = [
            Stage("twin", f"twin cohort → {self.cohort}", [self.truth], self._twin_facts,
                  self._make_twin),
            Stage("qc", f"QC montage → {montage}", [montage], self._twin_facts,
                  self._make_montage),
            Stage("cache", f"training cache → {self.cache}", [self.cache / MANIFEST_FILENAME],
                  self._cache_inputs, self._make_cache),
        ]  # fmt: skip
        for name, run in self.runs.items():
            display = get_spec(name).display_name
            title = f"training {display} for {self.minutes:g} min → {run}"
            inputs, train = partial(self._train_inputs, name), partial(self._train, name)
            stages.append(Stage(f"train-{name}", title, [run / CHECKPOINT_PATH], inputs, train))
        # the compared run's maps first, then ours with its codes beside them
        baseline = self.runs[self.baseline]
        for name, compared in ((self.baseline, None), (self.proposed, baseline)):
            run = self.runs[name]
            title = f"{get_spec(name).display_name} maps → {run / MAPS_DIRNAME}"
            outputs = [run / MAPS_DIRNAME / MAPS_SUMMARY_FILENAME]
            make = partial(self._make_maps, run, compared)
            inputs = partial(self._maps_inputs, name, compared is not None)
            stages.append(Stage(f"maps-{name}", title, outputs, inputs, make))
        stages += [
            Stage("evaluation", f"evaluation → {proposed / EVALUATION_FILENAME}",
                  [proposed / EVALUATION_FILENAME], self._evaluation_inputs,
                  self._make_evaluation),
            Stage("synthesis", f"synthesis → {self.synthesis}",
                  [self.synthesis / SYNTHESIS_SUMMARY_FILENAME], self._synthesis_inputs,
                  self._make_synthesis),
            Stage("report", f"report → {page}", [page], self._report_inputs, self._make_report),
        ]  # fmt: skip
        return stages

    # --- the twin, its montage, the cache ---------------------------------------------

    def _twin_facts(self) -> dict:
        return {"twin": self.twin.fingerprint()}

    def _make_twin(self) -> None:
        run_synth_cohort(self.cohort, self.twin, self.workers, force=self.cohort.exists())

    def _make_montage(self) -> None:
        run_view(self.cohort, self.out / COHORT_MONTAGE_FILENAME, max_subjects=16, columns=4)

    def _cache_inputs(self) -> dict:
        # A regenerated twin has new file times, which the cache's input fingerprint reads.
        written = self.truth.stat().st_mtime_ns if self.truth.is_file() else None
        settings = PrepareConfig(seed=self.seed).fingerprint()
        return self._twin_facts() | {"cohort_written_ns": written, "prepare": settings}

    def _make_cache(self) -> None:
        config = PrepareConfig(seed=self.seed)
        run_prepare(self.cohort, self.cache, config, "tcia", workers=self.workers, force=True)

    def _cache_fingerprint(self) -> str | None:
        from rgsynth.data import cache_fingerprint
        from rgsynth.prepare.cache import Cache

        cache = Cache(self.cache)
        return cache_fingerprint(cache.manifest()) if cache.is_complete else None

    # --- training -----------------------------------------------------------------------

    def _budget(self) -> dict:
        return {"minutes": self.minutes, "steps": self.steps}

    def _train_inputs(self, name: str) -> dict:
        config = train_config(self.seed, name, self.cache)
        return {"cache": self._cache_fingerprint(), "budget": self._budget()} | {
            "config": config.fingerprint()
        }

    def _train(self, name: str) -> None:
        """Train within the budget. A run started with these very inputs (cache, budget,
        settings: ``RUN/demo_training.json``) and stopped before its stage was recorded
        resumes with the minutes left; a run started with other inputs is replaced."""
        from rgsynth.fsutil import atomic_write_json
        from rgsynth.models.registry import get_spec
        from rgsynth.train.stats import training_summary

        run, budget, inputs = self.runs[name], self._budget(), self._train_inputs(name)
        config = train_config(self.seed, name, self.cache)
        own_batch = get_spec(name).training_defaults["batch_size"]
        if config.batch_size < own_batch:
            typer.echo(f"      batch {own_batch} cut to the {config.batch_size} training slices")
        step, _ = checkpoint_facts(run)
        if step is not None and read_json(run / DEMO_TRAINING_FILENAME) == inputs:
            done_minutes = training_summary(run).get("train_seconds", 0.0) / 60
            left = budget["minutes"] - done_minutes
            if left > 0.05:
                typer.echo(f"      interrupted after {done_minutes:.1f} min: resuming")
                run_train(
                    self.cache,
                    run,
                    config,
                    budget["steps"],
                    left,
                    resume=True,
                    minutes_done=done_minutes,
                )
            else:
                typer.echo(f"      stopped after its budget ({done_minutes:.1f} min): kept")
            return
        if run.exists():  # the demo's own output, from another cache or budget: replaced
            why = "another cache, budget or settings" if step is not None else "no checkpoint"
            typer.echo(f"      {run}: {why}; training from the start")
            shutil.rmtree(run)
        run.mkdir(parents=True)
        atomic_write_json(run / DEMO_TRAINING_FILENAME, inputs)
        run_train(self.cache, run, config, budget["steps"], budget["minutes"])

    # --- maps, evaluation, synthesis, report --------------------------------------------

    def _steps(self) -> dict:
        return {name: checkpoint_facts(run)[0] for name, run in self.runs.items()}

    def _maps_inputs(self, name: str, with_baseline: bool) -> dict:
        """A model's maps depend on its own checkpoint, and on the compared run's when its
        codes are shown beside them."""
        read = {name, self.baseline} if with_baseline else {name}
        used = {k: v for k, v in self._steps().items() if k in read}
        settings = asdict(map_settings(self.seed))
        return {"cache": self._cache_fingerprint(), "steps": used, "settings": settings}

    def _make_maps(self, run: Path, compared: Path | None) -> None:
        from rgsynth.analysis.maps import build_maps

        settings = map_settings(self.seed)
        summary = build_maps(run, settings, self.cache, compared, self.truth, True, indented)
        typer.echo(f"      maps in {summary['seconds']:.0f} s")

    def _evaluation_inputs(self) -> dict:
        maps = [run / MAPS_DIRNAME / MAPS_SUMMARY_FILENAME for run in self.runs.values()]
        return {
            "cache": self._cache_fingerprint(),
            "steps": self._steps(),
            "maps": _digest(maps),
            "settings": asdict(evaluation_settings(self.seed)),
        }

    def _make_evaluation(self) -> None:
        from rgsynth.analysis.evaluate import evaluate

        proposed, baseline = self.runs[self.proposed], self.runs[self.baseline]
        settings = evaluation_settings(self.seed)
        report = evaluate(proposed, settings, None, baseline, self.truth, indented)
        typer.echo(f"      scores in {report['seconds']:.0f} s")

    def _synthesis_inputs(self) -> dict:
        step = self._steps()[self.proposed]
        settings = asdict(BatchSettings(seed=self.seed))  # a new default paints anew
        return {"cache": self._cache_fingerprint(), "step": step, "settings": settings}

    def _make_synthesis(self) -> None:
        request = demo_request(self.cohort, self.cache, self.seed)
        batch = BatchSettings(seed=self.seed)
        run_synthesize(self.runs[self.proposed], self.synthesis, self.cache, request, batch, True)

    def _report_inputs(self) -> dict:
        run = self.runs[self.proposed]
        read = [run / EVALUATION_FILENAME, run / MAPS_DIRNAME / MAPS_SUMMARY_FILENAME]
        return {"run": _digest([*read, run / EXAMPLES_CSV])}

    def _make_report(self) -> None:
        from rgsynth.report.build import build_report

        build_report(self.runs[self.proposed], echo=typer.echo)


def train_config(seed: int, architecture: str, cache: Path) -> TrainConfig:
    """A CPU-sized model (16 to 128 channels; the paper's widths are 32 to 256), about 4×
    faster per step; each architecture keeps its own batch size and learning rate, the
    batch cut to the training slices of a very small twin (``--subjects``)."""
    import dataclasses

    from rgsynth.config import ModelConfig
    from rgsynth.prepare.cache import Cache

    model = ModelConfig(
        architecture=architecture, base_channels=16, max_channels=128, gene_hidden=256
    )
    config = TrainConfig(
        model=model, seed=seed, log_every=20, sample_every=300, checkpoint_every=300
    ).resolved()
    stored = Cache(cache)
    manifest = stored.manifest() if stored.is_complete else {"subjects": []}
    slices = sum(
        s["n_nodule_slices"]
        for s in manifest["subjects"]
        if s["split"] == "train" and s["has_genes"]
    )
    if 0 < slices < config.batch_size:
        config = dataclasses.replace(config, batch_size=slices)
    return config


def checkpoint_facts(run: Path) -> tuple[int | None, str | None]:
    """The run's checkpoint step and the fingerprint of the cache it was trained on
    (None, None without a readable checkpoint)."""
    path = run / CHECKPOINT_PATH
    try:
        stat = path.stat()
    except OSError:
        return None, None
    return _checkpoint_facts(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _checkpoint_facts(path: Path, mtime_ns: int, size: int) -> tuple[int | None, str | None]:
    """Each checkpoint file is loaded once while it stays the same file (several stages'
    inputs read its step; a checkpoint holds every weight and optimiser state)."""
    from rgsynth.errors import CheckpointError
    from rgsynth.train.checkpoint import load_checkpoint

    try:
        state = load_checkpoint(path)
    except CheckpointError:
        return None, None
    return int(state["step"]), state["cache_fingerprint"]


def demo_request(cohort: Path, cache: Path, seed: int):
    """Up to eight validation backgrounds with random donors' genes, and four nodules
    painted into the first validation subject's CT (the training split's, if there is
    no validation split)."""
    from rgsynth.prepare.cache import Cache
    from rgsynth.synthesize.request import SynthesisRequest

    subjects = Cache(cache).manifest()["subjects"]
    validation = [s for s in subjects if s["split"] == "val"]
    available = sum(s["n_background_slices"] for s in validation)
    return SynthesisRequest(
        cts=[cohort / (validation or subjects)[0]["ct_file"]],
        random_locations=4,
        cache_backgrounds=min(8, available) if available else 8,
        split="val" if available else "train",
        seed=seed,
    )


def _digest(paths: list[Path]) -> str | None:
    """A hash of the files' bytes (None if one is missing): what a stage read."""
    digest = hashlib.sha256()
    for path in paths:
        if not path.is_file():
            return None
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
