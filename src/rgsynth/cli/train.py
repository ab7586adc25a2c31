"""``rgsynth train``: a GAN on a cache (``torchrun --nproc_per_node=K`` for DDP)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rgsynth.cli.common import (
    AT_LEAST_ONE,
    SEED,
    arg,
    errors,
    opt,
    output_folder,
    positive,
    progress,
    settings,
)
from rgsynth.config import PRECISIONS, ModelConfig, PrepareConfig, TrainConfig
from rgsynth.errors import CacheError, UsageError
from rgsynth.layout import LATEST_SAMPLE_PATH
from rgsynth.models.config import DEFAULT_RECIPE

_M, _T = ModelConfig, TrainConfig  # their defaults are the options' defaults
DEVICES = ("auto", "cpu", "cuda")


def train(
    cache: Annotated[Path, arg("A cache written by `rgsynth prepare`.")],
    run: Annotated[Path, arg("Run folder (checkpoints, stats, samples).")],
    steps: Annotated[int | None, opt("Stop at this total step count", None, **AT_LEAST_ONE)] = None,
    minutes: Annotated[float | None, opt("Stop after this much time", None, callback=positive)] = (
        None
    ),
    resume: Annotated[bool, opt("Continue RUN's checkpoint exactly")] = False,
    model: Annotated[
        str | None,
        opt(
            "Recipe: focus (the default: D_ISG on the nodule region, genes through 10 "
            "principal components, bf16 where native), focus-height (focus told each "
            "slice's height above the nodule's centroid), focus-daug (focus with every "
            "discriminator input shifted at random), focus-outline (focus with G's mask "
            "drawn as a star-shaped outline whose roughness follows the genes; fp32), "
            "xu2019 (the paper as published) "
            "or mcgan (the baseline)",
            DEFAULT_RECIPE,
        ),
    ] = None,
    precision: Annotated[
        str | None, opt("fp32, bf16 autocast, or auto (bf16 where native)", "the recipe's")
    ] = None,
    gene_noise: Annotated[
        float | None,
        opt("SD of noise on the training genes along the gene components (focus)", "the recipe's"),
    ] = None,
    d_translate: Annotated[
        float | None,
        opt(
            "Shift every discriminator input (reals and fakes) by a random offset of up to "
            "this share of the edge, DiffAugment's translation (0: off)",
            "the recipe's: 1/8 for focus-daug, 0 for the others",
        ),
    ] = None,
    map_snapshot: Annotated[
        float | None,
        opt(
            "Keep the EMA generator at this fraction of the budget: `rgsynth map` reads the "
            "perturbation map over it and the final weights unless --map-weights says "
            "otherwise (0: none)",
            "the recipe's: 1/3 for the focus recipes, 0 for xu2019 and mcgan",
        ),
    ] = None,
    batch_size: Annotated[
        int | None, opt("Examples per step per process", "the model's: 16 / 32")
    ] = None,
    lr: Annotated[float | None, opt("Adam lr of G and D", "the model's: 1e-4 / 2e-4")] = None,
    base_channels: Annotated[
        int | None, opt("Channels at full resolution", _M.base_channels)
    ] = None,
    max_channels: Annotated[
        int | None, opt("Cap on channels at coarse levels", _M.max_channels)
    ] = None,
    gene_hidden: Annotated[
        int | None, opt("Hidden width of the gene mapping", _M.gene_hidden)
    ] = None,
    seed: Annotated[
        int | None, opt("Seed of weights, data order and noise", _T.seed, **SEED)
    ] = None,
    log_every: Annotated[int | None, opt("Steps between stats lines", _T.log_every)] = None,
    sample_every: Annotated[int | None, opt("Steps between sample grids", _T.sample_every)] = None,
    checkpoint_every: Annotated[
        int | None, opt("Steps between checkpoints", _T.checkpoint_every)
    ] = None,
    device: Annotated[str, opt("auto, cpu or cuda")] = "auto",
) -> None:
    """Train the paper's GAN on a cache; `torchrun --nproc_per_node=K` runs it with DDP."""
    with errors():
        if steps is None and minutes is None:
            raise UsageError("give --steps N or --minutes M (or both)")
        if device not in DEVICES:
            raise UsageError(f"--device must be auto, cpu or cuda, got {device!r}")
        output_folder(run, "RUN")
        from rgsynth.models.registry import canonical_name

        if precision is not None and precision not in PRECISIONS:
            raise UsageError(f"--precision must be fp32, bf16 or auto, got {precision!r}")
        sizes = settings(
            ModelConfig,
            architecture=canonical_name(model or DEFAULT_RECIPE),
            base_channels=base_channels,
            max_channels=max_channels,
            gene_hidden=gene_hidden,
        )
        config = settings(  # batch size, lr and loss weights left None are the model's own
            lambda **given: TrainConfig(**given).resolved(),
            model=sizes,
            seed=seed,
            precision=precision,
            gene_noise=gene_noise,
            d_translate=d_translate,
            map_snapshot=map_snapshot,
            log_every=log_every,
            sample_every=sample_every,
            checkpoint_every=checkpoint_every,
            batch_size=batch_size,
            lr=lr,
        )
        run_train(cache, run, config, steps, minutes, resume, device)


def run_train(
    cache: Path,
    run: Path,
    config: TrainConfig,
    steps: int | None,
    minutes: float | None,
    resume: bool = False,
    device: str = "auto",
    minutes_done: float = 0.0,
) -> None:
    """Train ``run`` for ``steps`` (total) or ``minutes`` (this call's), whichever ends
    first; ``minutes_done``: what earlier legs spent of the same minutes budget."""
    from rgsynth.train.distributed import setup, teardown
    from rgsynth.train.loop import Trainer

    _check_cache_settings(cache)
    info = setup(device)
    finished, trainer = False, None
    try:
        trainer = Trainer(cache, run, config, info, resume=resume)
        if info.is_main:
            model, resolved = trainer.config.model, trainer.config
            genes = (
                (f", gene noise {resolved.gene_noise:g}" if resolved.gene_noise else "")
                + (", cross-fitted genes" if resolved.cross_fit_genes else "")
                + (", shrunk genes" if resolved.shrink_genes else "")
                + (
                    f", D inputs shifted by up to {resolved.d_translate:.3g} of the edge"
                    if resolved.d_translate
                    else ""
                )
                + (
                    f", map snapshot at {resolved.map_snapshot:.2g} of the budget"
                    if resolved.map_snapshot
                    else ""
                )
            )
            typer.echo(
                f"training {model.architecture} {model.image_size}² on {len(trainer.dataset)} "
                f"nodule slices of "
                f"{len(trainer.data.subject_ids)} subjects, {model.n_genes} genes, "
                f"{info.world_size} process(es) on {info.device} in "
                f"{trainer.config.precision}{genes}, from step "
                f"{trainer.position.step}" + (" (settings from the checkpoint)" if resume else "")
            )
        total = steps if steps is not None else trainer.position.step + 10**6
        with progress("training", total) as advance:
            on_step = (lambda step, terms: advance(f"step {step}")) if info.is_main else None
            summary = trainer.run(steps, minutes, on_step=on_step, minutes_done=minutes_done)
        if info.is_main:
            _echo_training_summary(summary, run)
        finished = True
    finally:
        # The DDP wrappers hold the process group: drop them first so that its gloo threads
        # end inside destroy_process_group, not at interpreter exit.
        del trainer
        teardown(info, finished=finished)


def _check_cache_settings(cache: Path) -> None:
    """A cache made before ``prepare`` refused what the networks cannot be built for (an
    edge such as --size 50) would fail deep in the trainer: refuse it here, in one line."""
    from rgsynth.prepare.cache import Cache

    stored = Cache(cache)
    if not stored.is_complete:
        return  # the trainer says so in its own words
    settings = stored.manifest()["settings"]
    try:
        PrepareConfig.from_dict(settings)
    except ValueError as error:
        raise CacheError(
            f"{cache}: cannot be trained on ({error}); run `rgsynth prepare` again"
        ) from None


def _echo_training_summary(summary: dict, run: Path) -> None:
    last = summary["history"][-1] if summary["history"] else {}
    losses = (
        f"D {last['D/total']:.3f}, G {last['G/total']:.3f}, background L1 "
        f"{last['G/background_l1']:.4f}; "
        if last
        else ""
    )
    typer.echo(
        f"stopped at step {summary['steps']} after {summary['seconds']:.0f} s; {losses}"
        f"samples: {run / LATEST_SAMPLE_PATH}"
    )
