"""The training loop: optimisers, EMA, DDP, checkpoints, statistics and samples.

The loop knows no model by name: the run's :class:`~rgsynth.models.spec.ModelSpec` builds
the networks and the loss, which owns the GAN maths; this module only runs them.
Run folder::

    RUN/config.yaml            the training settings (the checkpoint's copy wins on resume)
    RUN/checkpoints/last.pt    one dict, written atomically (see train/checkpoint.py)
    RUN/stats.jsonl            every loss term, D outputs on real/fake, step time, images/s
    RUN/diagnostics.jsonl      at each checkpoint: D_ISG's shortcut, D_I on unseen reals
    RUN/tensorboard/           the same scalars for TensorBoard
    RUN/samples/step-NNNNNN.png and latest.png   background, synthesis, weight map, mask
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from rgsynth.config import TrainConfig
from rgsynth.data import CacheError, CacheSplit, NoduleDataset, collate, load_split
from rgsynth.errors import RunExistsError, TrainingDiverged, TrainingInterrupted
from rgsynth.fsutil import atomic_write_text
from rgsynth.layout import (
    CHECKPOINT_PATH,
    CONFIG_FILENAME,
    DIAGNOSTICS_FILENAME,
    LATEST_SAMPLE_PATH,
    MAP_SNAPSHOT_PATH,
    RANKS_FILENAME,
    SAMPLES_DIRNAME,
)
from rgsynth.models.registry import get_spec
from rgsynth.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_map_snapshot,
    save_checkpoint,
    save_map_snapshot,
)
from rgsynth.train.diagnostics import discriminator_diagnostics
from rgsynth.train.distributed import DistInfo, native_bf16
from rgsynth.train.samples import save_sample_grid
from rgsynth.train.stats import StatsWriter, save_loss_plot

log = logging.getLogger(__name__)


@dataclass
class Position:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


class StopRequest:
    """While active, the first SIGINT or SIGTERM only asks training to stop after the
    current step (so the checkpoint is exact and the run resumes); a second SIGINT stops
    at once. Handlers are only installed from the main thread (Python's rule)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, number: int, frame: Any) -> None:
        if self.requested and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stopping after this step (again to stop at once)")


class Trainer:
    """Builds everything from a cache and a config (or a checkpoint), then :meth:`run`."""

    def __init__(
        self,
        cache_root: Path,
        run_dir: Path,
        config: TrainConfig,
        dist_info: DistInfo | None = None,
        resume: bool = False,
    ) -> None:
        self.run_dir, self.dist = Path(run_dir), dist_info or DistInfo()
        self.cache_root = Path(cache_root).resolve()
        self.data = load_split(cache_root, "train")
        state = self._checkpoint_state(resume)
        if state is not None:
            config = TrainConfig.from_dict(state["config"])  # the checkpoint's config wins
            if state["cache_fingerprint"] != self.data.fingerprint:
                raise CheckpointError(
                    f"{self.run_dir / CHECKPOINT_PATH}: made from another cache "
                    f"({state['cache_fingerprint']}, this one is {self.data.fingerprint})"
                )
        self.device = self.dist.device
        self.config = self._fit_to_data(config.resolved())  # the model's own defaults
        self.spec = get_spec(self.config.model.architecture)
        self.noise_dim = self.spec.noise_dim(self.config.model)
        self._build(state)
        self.sample_batch = self._sample_batch(cache_root)
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(
                self.run_dir / CONFIG_FILENAME,
                yaml.safe_dump(self.config.to_dict(), sort_keys=False),
            )

    def _checkpoint_state(self, resume: bool) -> dict[str, Any] | None:
        path = self.run_dir / CHECKPOINT_PATH
        if not resume:
            if path.exists():
                raise RunExistsError(
                    f"{self.run_dir}: already holds a checkpoint; pass --resume to continue it, "
                    "or choose another folder"
                )
            stale = self.run_dir / MAP_SNAPSHOT_PATH
            if stale.exists() and self.dist.is_main:
                # a map snapshot without a checkpoint: a run killed before its first
                # checkpoint kept it; it belongs to no run, and this one keeps its own
                log.warning("%s: a map snapshot without a checkpoint, removed", stale)
                stale.unlink()
            return None
        state = load_checkpoint(path)
        self._drop_snapshot_from_after(state["step"])
        return state

    def _drop_snapshot_from_after(self, step: int) -> None:
        """A run hard-killed after its map snapshot but before the next checkpoint left a
        snapshot from steps the resumed run will train again: removed, so the resumed run
        takes its own when it gets there (a snapshot that cannot be read is left for
        ``load_run`` to name)."""
        path = self.run_dir / MAP_SNAPSHOT_PATH
        if not path.exists() or not self.dist.is_main:
            return
        try:
            snapshot_step = int(load_map_snapshot(path)["step"])
        except CheckpointError:
            return
        if snapshot_step > step:
            log.warning("%s: a map snapshot at step %d, after the checkpoint's step %d, "
                        "removed; the resumed run takes it again", path, snapshot_step,
                        step)  # fmt: skip
            path.unlink()

    def _fit_to_data(self, config: TrainConfig) -> TrainConfig:
        """The model's image size and gene count come from the cache; ``auto`` precision
        becomes this device's choice (stored, so a resumed run keeps it)."""
        model = dataclasses.replace(
            config.model, image_size=self.data.image_size, n_genes=self.data.genes.shape[1]
        )
        precision = config.precision
        if precision == "auto":
            precision = "bf16" if native_bf16(self.device) else "fp32"
            log.info("precision auto: %s on %s", precision, self.device)
        return dataclasses.replace(config, model=model, precision=precision)

    def _build(self, state: dict[str, Any] | None) -> None:
        config = self.config
        torch.manual_seed(config.seed)  # identical initial weights on every rank
        networks = self.spec.build(config.model)
        if state is None and self.spec.fit_to_genes is not None:
            self.spec.fit_to_genes(networks, self.data.genes)  # training donors only
        self.generator = networks.generator.to(self.device)
        self.discriminators = networks.discriminators.to(self.device)
        self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        adam = dict(lr=config.lr, betas=config.betas)
        self.optimizer_g = torch.optim.Adam(self.generator.parameters(), **adam)
        self.optimizer_d = torch.optim.Adam(self.discriminators.parameters(), **adam)
        self.loss = self.spec.loss(config)
        self.position = Position()
        torch.manual_seed(config.seed * 1000 + self.dist.rank + 1)  # noise differs per rank
        if state is not None:
            self._restore(state)
        self.g_train: torch.nn.Module = self.generator
        self.d_train: torch.nn.Module = self.discriminators
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_train = DistributedDataParallel(self.generator, device_ids=ids)
            self.d_train = DistributedDataParallel(self.discriminators, device_ids=ids)
        trained_on = self.data
        if config.cross_fit_genes or config.shrink_genes:
            views = self.spec.training_genes(config, networks, self.data.genes)
            trained_on = dataclasses.replace(self.data, genes=views.astype(np.float32))
        self.dataset = NoduleDataset(
            trained_on, seed=config.seed, slice_height=self.spec.slice_height
        )
        self.sampler = DistributedSampler(
            self.dataset,
            num_replicas=self.dist.world_size,
            rank=self.dist.rank,
            shuffle=True,
            seed=config.seed,
            drop_last=True,
        )
        self.batches_per_epoch = len(self.sampler) // config.batch_size
        if self.batches_per_epoch == 0:
            raise CacheError(
                f"{len(self.dataset)} training slices are fewer than batch_size "
                f"{config.batch_size} × {self.dist.world_size} processes"
            )

    def _restore(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.generator_ema.load_state_dict(state["generator_ema"])
        self.discriminators.load_state_dict(state["discriminators"])
        self.optimizer_g.load_state_dict(state["optimizer_g"])
        self.optimizer_d.load_state_dict(state["optimizer_d"])
        self.position = Position(state["step"], state["epoch"], state["batch_in_epoch"])
        if self.dist.is_main:
            torch.set_rng_state(state["rng"]["torch"])
        else:  # only rank 0's state is saved; the others restart from a fresh, distinct seed
            torch.manual_seed(self.config.seed * 1000 + state["step"] * 97 + self.dist.rank + 1)

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "cache_fingerprint": self.data.fingerprint,
            "cache_root": str(self.cache_root),  # where synthesize/map look by default
            "step": self.position.step,
            "epoch": self.position.epoch,
            "batch_in_epoch": self.position.batch_in_epoch,
            "generator": self.generator.state_dict(),
            "generator_ema": self.generator_ema.state_dict(),
            "discriminators": self.discriminators.state_dict(),
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
        }

    def batches(self):
        """Yield batches from the saved position on, epoch after epoch."""
        while True:
            epoch = self.position.epoch
            self.sampler.set_epoch(epoch)
            self.dataset.set_epoch(epoch)
            indices = list(self.sampler)
            size = self.config.batch_size
            for k in range(self.position.batch_in_epoch, self.batches_per_epoch):
                items = [self.dataset[i] for i in indices[k * size : (k + 1) * size]]
                self.position.batch_in_epoch = k + 1
                yield {key: value.to(self.device) for key, value in collate(items).items()}
            self.position.epoch, self.position.batch_in_epoch = epoch + 1, 0

    def _autocast(self):
        return torch.autocast(
            device_type=self.device.type,
            dtype=torch.bfloat16,
            enabled=self.config.precision == "bf16",
        )

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One D update then one G update (the loss runs both phases), then the EMA of G.
        Returns the loss terms as detached tensors on the device."""
        if self.config.gene_noise:
            # the same moved genes for the real pair, G's input and the fake pair; the
            # mismatched negatives move too, or D could tell them by sitting on a donor
            batch = batch | {
                key: self.spec.jitter_genes(self.generator, batch[key], self.config.gene_noise)
                for key in ("genes", "wrong_genes")
            }
        noise = torch.randn(len(batch["genes"]), self.noise_dim).to(self.device)
        self.optimizer_d.zero_grad(set_to_none=True)
        fake, _, d_terms = self.loss.accumulate_discriminator(
            self.g_train,
            self.d_train,
            batch,
            noise,
            self._autocast,
            check=lambda loss: self._check_finite(loss, "discriminator"),
        )
        self.optimizer_d.step()
        self.optimizer_g.zero_grad(set_to_none=True)
        # D's own module, not its DDP wrapper: G's phase needs no gradient sync of D
        _, g_terms = self.loss.accumulate_generator(
            self.discriminators,
            fake,
            batch,
            self._autocast,
            check=lambda loss: self._check_finite(loss, "generator"),
        )
        self.optimizer_g.step()
        self._update_ema()
        self.position.step += 1
        return d_terms | g_terms

    def _check_finite(self, loss: torch.Tensor, which: str) -> None:
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"step {self.position.step + 1}: the {which} loss is {value}; training stopped, "
                f"the last good checkpoint ({self.run_dir / CHECKPOINT_PATH}) is kept"
            )

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Warm-up (as TensorFlow's EMA with num_updates): early on the average follows G
        # closely instead of staying mostly the random initialisation for ~1/(1 - decay) steps.
        step = self.position.step
        decay = min(self.config.ema_decay, (1 + step) / (10 + step))
        for ema, live in zip(
            self.generator_ema.parameters(), self.generator.parameters(), strict=True
        ):
            ema.lerp_(live, 1.0 - decay)
        for ema, live in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            ema.copy_(live)

    def _sample_batch(self, cache_root: Path) -> dict[str, torch.Tensor]:
        """A fixed batch for sample grids: validation subjects when there are two or more."""
        try:
            self.val_data: CacheSplit | None = load_split(cache_root, "val")
        except CacheError:
            self.val_data = None
        data = self.val_data or self.data
        return _fixed_examples(data, self.config.n_samples, self.config.seed)

    def write_diagnostics(self) -> dict[str, float]:
        """D_ISG's matched-vs-mismatched AUROC (as is, nodule filled) and D_I's mean real
        score, on training and validation slices, appended to RUN/diagnostics.jsonl."""
        splits = {"train": self.data} | ({"val": self.val_data} if self.val_data else {})
        values = discriminator_diagnostics(self.discriminators, splits, seed=self.config.seed)
        with (self.run_dir / DIAGNOSTICS_FILENAME).open("a") as out:
            out.write(json.dumps({"step": self.position.step, **values}) + "\n")
        return values

    @torch.no_grad()
    def save_samples(self) -> Path:
        batch = self.sample_batch
        noise = torch.randn(
            len(batch["genes"]), self.noise_dim, generator=torch.Generator().manual_seed(7)
        )
        heights = (
            {"height_mm": batch["height_mm"].to(self.device)} if self.spec.slice_height else {}
        )
        out = self.generator_ema(
            batch["background"].to(self.device),
            batch["genes"].to(self.device),
            noise.to(self.device),
            **heights,
        )
        folder = self.run_dir / SAMPLES_DIRNAME
        path = save_sample_grid(
            folder / f"step-{self.position.step:06d}.png",
            batch["background"][:, 0].numpy(),
            out.image[:, 0].float().cpu().numpy(),
            out.weight_map[:, 0].float().cpu().numpy(),
            out.mask[:, 0].float().cpu().numpy(),
            batch["image"][:, 0].numpy(),
            f"G_ema, step {self.position.step}: one subject's genes per column",
            self.data.hu_window,
        )
        (self.run_dir / LATEST_SAMPLE_PATH).write_bytes(path.read_bytes())
        return path

    def save_map_snapshot(self) -> None:
        """Keep the EMA generator as it is now beside the final weights: by default the
        perturbation map is read over both (``TrainConfig.map_snapshot``;
        ``MapSettings.map_weights`` chooses). Touches no training state."""
        if self.dist.is_main:
            path = self.run_dir / MAP_SNAPSHOT_PATH
            save_map_snapshot(
                path, self.position.step, self.generator_ema.state_dict(), self.data.fingerprint
            )
            log.info("map snapshot: the EMA generator at step %d → %s", self.position.step, path)

    def _map_snapshot_due(
        self,
        max_steps: int | None,
        max_minutes: float | None,
        start: float,
        minutes_done: float = 0.0,
    ) -> Callable[[], bool] | None:
        """This leg's trigger for the map snapshot: true once ``map_snapshot`` of the step
        budget (total steps) or of the minutes budget is reached, whichever comes first.
        The minutes budget is this call's minutes plus ``minutes_done`` (spent on the same
        budget by earlier legs: the demo's resume), so a resumed leg takes the snapshot
        where the whole budget's fraction falls, not a fraction of the way through itself.
        None when the run keeps none, has one already, or resumed past its point."""
        fraction = self.config.map_snapshot
        if not fraction or not self.dist.is_main or (self.run_dir / MAP_SNAPSHOT_PATH).exists():
            return None
        at_step = max(1, round(fraction * max_steps)) if max_steps is not None else None
        if at_step is not None and self.position.step >= at_step:
            log.info("no map snapshot: the run resumed at step %d, past step %d",
                     self.position.step, at_step)  # fmt: skip
            return None
        at_seconds = None
        if max_minutes is not None:
            at_seconds = 60 * (fraction * (minutes_done + max_minutes) - minutes_done)
            if at_seconds < -1e-6:  # past it (a resume exactly at the point may round below 0)
                log.info("no map snapshot: the run resumed after %.1f of its %.1f minutes, "
                         "past %.2g of them", minutes_done, minutes_done + max_minutes,
                         fraction)  # fmt: skip
                return None

        def due() -> bool:
            if at_step is not None and self.position.step >= at_step:
                return True
            return at_seconds is not None and time.perf_counter() - start >= at_seconds

        return due

    def save_checkpoint(self) -> None:
        if self.dist.is_main:
            save_checkpoint(self.run_dir / CHECKPOINT_PATH, self.checkpoint_state())
            self.write_diagnostics()

    def run(
        self,
        max_steps: int | None,
        max_minutes: float | None,
        on_step: Callable[[int, dict[str, torch.Tensor]], None] | None = None,
        minutes_done: float = 0.0,
    ) -> dict[str, Any]:
        """Train until ``max_steps`` (total, counting resumed ones) or ``max_minutes`` of
        this call, whichever comes first; checkpoint and sample at the end.
        ``minutes_done``: minutes earlier legs spent on the same budget (only where the
        map snapshot falls depends on it)."""
        config, start = self.config, time.perf_counter()
        writer = (
            StatsWriter(self.run_dir, self.position.step or None) if self.dist.is_main else None
        )
        window: dict[str, list[torch.Tensor]] = defaultdict(list)  # terms kept on the device
        last_log, history = time.perf_counter(), []
        batches = self.batches()
        stop = StopRequest()
        snapshot_due = self._map_snapshot_due(max_steps, max_minutes, start, minutes_done)
        try:
            with stop:
                # Stop before drawing a batch: the saved position must be the next one to use.
                while not self._should_stop(max_steps, max_minutes, start, stop.requested):
                    terms = self.train_step(next(batches))
                    if snapshot_due is not None and snapshot_due():
                        self.save_map_snapshot()
                        snapshot_due = None
                    for key, value in terms.items():
                        window[key].append(value)
                    step = self.position.step
                    if step % config.log_every == 0:
                        row = self._log_row(window, time.perf_counter() - last_log)
                        history.append({"step": step, **row})
                        if writer:
                            writer.write(step, row)
                        window, last_log = defaultdict(list), time.perf_counter()
                    if on_step:
                        on_step(step, terms)
                    if step % config.checkpoint_every == 0:
                        self.save_checkpoint()
                    if step % config.sample_every == 0 and self.dist.is_main:
                        self.save_samples()
        finally:
            if writer:
                writer.close()
        self.save_checkpoint()
        if self.dist.is_main:
            self.save_samples()
            save_loss_plot(self.run_dir)
        if stop.requested:
            raise TrainingInterrupted(
                f"{self.run_dir}: interrupted; step {self.position.step} is checkpointed, "
                "--resume (or the demo, run again) goes on from there"
            )
        summary = {
            "steps": self.position.step,
            "seconds": time.perf_counter() - start,
            "history": history,
        }
        if self.dist.enabled:
            summary["rank_checksums"] = self._check_ranks_agree()
        return summary

    def _check_ranks_agree(self) -> list[float]:
        """Every rank's weight checksum; DDP must keep them equal. Written to ranks.json."""
        total = sum(float(p.detach().double().abs().sum()) for p in self.generator.parameters())
        total += sum(
            float(p.detach().double().abs().sum()) for p in self.discriminators.parameters()
        )
        checksums: list[Any] = [None] * self.dist.world_size
        dist.all_gather_object(checksums, total)
        if self.dist.is_main:
            atomic_write_text(
                self.run_dir / RANKS_FILENAME,
                json.dumps({"step": self.position.step, "weight_checksums": checksums}) + "\n",
            )
            if len(set(checksums)) > 1:
                log.warning("DDP ranks disagree on the weights: %s", checksums)
        return checksums

    def _should_stop(
        self, max_steps: int | None, max_minutes: float | None, start: float, requested: bool
    ) -> bool:
        stop = requested or (max_steps is not None and self.position.step >= max_steps)
        if max_minutes is not None and time.perf_counter() - start >= 60 * max_minutes:
            stop = True
        if self.dist.enabled:  # every rank stops at the same step
            flag = torch.tensor([1.0 if stop else 0.0], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    def _log_row(self, window: dict[str, list[torch.Tensor]], seconds: float) -> dict[str, float]:
        """The window's mean of every term: one host transfer per logged row. (float64
        means of the float32 terms, as NumPy takes them, so rows do not depend on where
        the terms were kept.)"""
        n_steps = len(next(iter(window.values())))
        step_time = seconds / n_steps
        stacked = torch.stack([torch.stack(v) for v in window.values()]).double().cpu().numpy()
        row = {key: float(np.mean(values)) for key, values in zip(window, stacked, strict=True)}
        row["time/step_s"] = step_time
        row["time/images_per_s"] = self.config.batch_size * self.dist.world_size / step_time
        row["epoch"] = self.position.epoch
        return row


def _fixed_examples(data: CacheSplit, n: int, seed: int) -> dict[str, torch.Tensor]:
    """One nodule slice per subject (its middle one) for up to ``n`` subjects, each with a
    background drawn once; the same every time the run is sampled."""
    rng = np.random.default_rng([seed, 2024])
    rows = []
    for subject in range(min(n, len(data.subject_ids))):
        slices = np.flatnonzero(data.nodule_subject == subject)
        rows.append(int(slices[np.argmax(data.nodule_mask[slices].sum(axis=(1, 2)))]))
    backgrounds = rng.choice(len(data.background_image), size=len(rows), replace=False)
    return {
        "image": torch.from_numpy(data.nodule_image[rows][:, None]),
        "genes": torch.from_numpy(data.genes[data.nodule_subject[rows]]),
        "background": torch.from_numpy(data.background_image[backgrounds][:, None]),
        "height_mm": torch.from_numpy(data.nodule_height_mm[rows]),
    }
