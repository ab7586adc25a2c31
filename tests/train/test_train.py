"""The trainer: exact resume, NaN stop, checkpoint safety, bf16, and DDP with 2 processes."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY_MODEL, train_two_processes
from conftest import TINY_TRAIN as TINY
from rgsynth.config import ModelConfig, TrainConfig
from rgsynth.layout import CHECKPOINT_PATH
from rgsynth.losses import GanLoss
from rgsynth.train.checkpoint import CheckpointError, load_checkpoint
from rgsynth.train.loop import RunExistsError, Trainer, TrainingDiverged, TrainingInterrupted
from rgsynth.train.stats import read_stats


@pytest.mark.parametrize("architecture", ["xu", "mcgan"])
def test_resume_continues_exactly(train_cache: Path, tmp_path: Path, architecture: str) -> None:
    model = ModelConfig(**{**TINY_MODEL.__dict__, "architecture": architecture})
    config = TrainConfig(**{**TINY.__dict__, "model": model})
    straight = Trainer(train_cache, tmp_path / "straight", config)
    steps = straight.batches_per_epoch + 2  # the run crosses an epoch boundary
    straight.run(max_steps=steps, max_minutes=None)
    Trainer(train_cache, tmp_path / "split", config).run(max_steps=3, max_minutes=None)
    resumed = Trainer(train_cache, tmp_path / "split", TINY, resume=True)  # config from file
    assert resumed.config.model.architecture == architecture
    assert resumed.position.step == 3
    resumed.run(max_steps=steps, max_minutes=None)
    a, b = read_stats(tmp_path / "straight"), read_stats(tmp_path / "split")
    assert [row["step"] for row in b] == list(range(1, steps + 1))
    for row_a, row_b in zip(a, b, strict=True):
        for key in ("D/total", "G/total", "G/background_l1", "D_out/isg_wrong_genes"):
            assert row_a[key] == row_b[key], (row_a["step"], key)
    for p, q in zip(
        straight.generator_ema.parameters(), resumed.generator_ema.parameters(), strict=True
    ):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_ctrl_c_stops_at_a_step_and_resumes_exactly(train_cache: Path, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) during step 2 ends training after it, with an exact checkpoint."""
    import signal

    straight = Trainer(train_cache, tmp_path / "straight", TINY)
    straight.run(max_steps=4, max_minutes=None)
    stopped = Trainer(train_cache, tmp_path / "stopped", TINY)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN in a job started in the background

    def press_ctrl_c(step: int, terms: dict) -> None:
        if step == 2:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(TrainingInterrupted, match="step 2 is checkpointed"):
        stopped.run(max_steps=4, max_minutes=None, on_step=press_ctrl_c)
    assert signal.getsignal(signal.SIGINT) is before  # the handler is restored
    resumed = Trainer(train_cache, tmp_path / "stopped", TINY, resume=True)
    assert resumed.position.step == 2
    resumed.run(max_steps=4, max_minutes=None)
    for p, q in zip(
        straight.generator_ema.parameters(), resumed.generator_ema.parameters(), strict=True
    ):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_run_writes_its_files(train_cache: Path, tmp_path: Path) -> None:
    config = TrainConfig(**{**TINY.__dict__, "sample_every": 2})
    Trainer(train_cache, tmp_path / "run", config).run(max_steps=4, max_minutes=None)
    run = tmp_path / "run"
    assert (run / "samples" / "step-000002.png").read_bytes()[:4] == b"\x89PNG"
    assert (run / "samples" / "latest.png").exists()
    assert (run / "losses.png").read_bytes()[:4] == b"\x89PNG"
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert "weight_background: 100.0" in (run / "config.yaml").read_text()
    rows = read_stats(run)
    assert {
        "D/I",
        "D/IS",
        "D/ISG",
        "G/background_l1",
        "D_out/i_real",
        "D_out/i_fake",
        "time/step_s",
    } <= set(rows[0])
    state = load_checkpoint(run / CHECKPOINT_PATH)
    assert state["step"] == 4 and state["config"]["batch_size"] == 4
    assert not any(k.startswith("module.") for k in state["generator"])
    with pytest.raises(RunExistsError, match="pass --resume"):
        Trainer(train_cache, run, TINY)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    train_cache: Path, tmp_path: Path
) -> None:
    config = TrainConfig(**{**TINY.__dict__, "checkpoint_every": 2})
    trainer = Trainer(train_cache, tmp_path / "run", config)
    trainer.run(max_steps=2, max_minutes=None)
    good = load_checkpoint(tmp_path / "run" / CHECKPOINT_PATH)

    class Exploding(GanLoss):
        def generator(self, *args):
            total, terms = super().generator(*args)
            return total * float("nan"), terms

    trainer.loss = Exploding(**dataclasses.asdict(trainer.loss))
    with pytest.raises(TrainingDiverged, match="generator loss is nan"):
        trainer.run(max_steps=6, max_minutes=None)
    kept = load_checkpoint(tmp_path / "run" / CHECKPOINT_PATH)
    assert kept["step"] == 2
    for key, value in good["generator"].items():
        torch.testing.assert_close(kept["generator"][key], value)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_tampered_or_foreign_checkpoints_are_refused(tmp_path: Path) -> None:
    tampered = tmp_path / "tampered.pt"
    torch.save({"format": "rgsynth-checkpoint/1", "generator": _Payload()}, tampered)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(tampered)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(CheckpointError, match="not an rgsynth checkpoint"):
        load_checkpoint(foreign)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(pickle.dumps([1, 2]) + b"garbage")
    with pytest.raises(CheckpointError, match=r"junk\.pt: not a readable torch checkpoint"):
        load_checkpoint(junk)  # a plain pickle: unreadable by torch's safe loader, not code
    text = tmp_path / "text.pt"
    text.write_bytes(b"not a torch file")  # not a pickle: unreadable, not "refused"
    with pytest.raises(CheckpointError, match=r"text\.pt: not a readable torch checkpoint"):
        load_checkpoint(text)


def test_bf16_autocast_trains(train_cache: Path, tmp_path: Path) -> None:
    config = TrainConfig(**{**TINY.__dict__, "precision": "bf16"})
    summary = Trainer(train_cache, tmp_path / "run", config).run(max_steps=2, max_minutes=None)
    assert np.isfinite([row["G/total"] for row in summary["history"]]).all()


@pytest.mark.slow
def test_two_process_ddp_keeps_ranks_identical(train_cache: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    result = train_two_processes(train_cache, run, "--steps", "3", "--log-every", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = json.loads((run / "ranks.json").read_text())
    assert ranks["step"] == 3 and len(ranks["weight_checksums"]) == 2
    assert ranks["weight_checksums"][0] == ranks["weight_checksums"][1]
    assert "2 process(es)" in result.stdout
    rows = read_stats(run)
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert rows[0]["time/images_per_s"] > 0
