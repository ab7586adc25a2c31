"""The written model interface: each architecture's defaults come from its spec, a third
architecture is one spec and one registration, and no stage names an architecture."""

from __future__ import annotations

import io
import json
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from conftest import TINY_MODEL, TINY_TRAIN
from rgsynth.cli import app
from rgsynth.config import ModelConfig, TrainConfig
from rgsynth.losses import GanLoss
from rgsynth.models.blocks import GeneMapping
from rgsynth.models.discriminator import Discriminators
from rgsynth.models.generator import GeneratorOutput
from rgsynth.models.registry import architecture_names, get_spec, register, unregister
from rgsynth.models.spec import GanNetworks, ModelSpec
from rgsynth.train.checkpoint import load_checkpoint
from rgsynth.train.loop import CHECKPOINT_PATH, Trainer

SRC = Path(__file__).resolve().parents[2] / "src" / "rgsynth"


def test_a_python_mcgan_config_trains_with_mcgan_weights(train_cache: Path, tmp_path: Path) -> None:
    """The defect: TrainConfig(model=ModelConfig(architecture="mcgan")) used to train MC-GAN
    with the paper's loss weights, because its defaults were applied only by the CLI."""
    model = ModelConfig(**{**TINY_MODEL.__dict__, "architecture": "mcgan"})
    config = TrainConfig(model=model, batch_size=4, weight_kl=0.5)  # no CLI involved
    trainer = Trainer(train_cache, tmp_path / "run", config)
    own = get_spec("mcgan").training_defaults
    assert trainer.config.lr == own["lr"] == 2e-4
    assert trainer.config.batch_size == 4 and trainer.config.weight_kl == 0.5  # set: kept
    loss = trainer.loss
    assert (loss.weight_i, loss.weight_is, loss.weight_isg) == (1.0, 1.0, 1.0)
    assert (loss.weight_background, loss.erosion_px, loss.weight_kl) == (15.0, 1, 0.5)
    trainer.run(max_steps=1, max_minutes=None)
    stored = load_checkpoint(tmp_path / "run" / CHECKPOINT_PATH)["config"]
    assert stored["weight_background"] == 15.0 and stored["lr"] == 2e-4  # concrete on disk
    paper = Trainer(train_cache, tmp_path / "xu", TINY_TRAIN).loss
    assert (paper.weight_i, paper.weight_isg, paper.weight_background) == (8.0, 10.0, 100.0)


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(
        ValueError,
        match="architecture must be one of xu, focus, focus-height, focus-daug, focus-outline, "
        "mcgan",
    ):
        get_spec("stylegan")
    with pytest.raises(ValueError, match="already registered"):
        register(ModelSpec(**{**get_spec("xu").__dict__, "display_name": "a copy"}))


# --- a third architecture, defined here as a user would, in one module -----------------


class _PlainGenerator(nn.Module):
    """No noise input: the nodule is a function of the background and the genes. (It is
    judged by the paper's discriminators: a new architecture may reuse any part.)"""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.mapping = GeneMapping(config.n_genes, config.gene_hidden, config.gene_code)
        self.paint = nn.Conv2d(1 + config.gene_code, 3, 3, padding=1)

    def encode_genes(self, genes: torch.Tensor) -> torch.Tensor:
        return self.mapping(genes)

    def gene_input_weight(self) -> torch.Tensor:
        return self.mapping.layers[0].weight

    def forward(self, background, genes, noise) -> GeneratorOutput:
        assert noise.shape[1] == 0, "this architecture takes no noise"
        code = self.mapping(genes)  # (B, code)
        tiled = code[:, :, None, None].expand(-1, -1, *background.shape[2:])
        out = self.paint(torch.cat([background, tiled], dim=1))  # (B, 3, S, S)
        mask = torch.sigmoid(out[:, :1])
        weight = torch.sigmoid(out[:, 1:2])
        image = weight * torch.tanh(out[:, 2:]) + (1 - weight) * background
        return GeneratorOutput(image, mask, out[:, :1], weight, code)


PLAIN = ModelSpec(
    name="plain",
    display_name="plain GAN",
    code_name="plain: g",
    build=lambda config: GanNetworks(_PlainGenerator(config), Discriminators(config)),
    loss=GanLoss.from_config,
    training_defaults={  # its own: none of them the paper's or MC-GAN's
        **dict(batch_size=4, lr=3e-4, erosion_px=3, weight_background=7.0, weight_kl=0.0),
        **dict(weight_i=2.0, weight_is=2.0, weight_isg=3.0),
    },
    noise_dim=lambda config: 0,
)


@pytest.fixture
def plain_architecture() -> Iterator[ModelSpec]:
    register(PLAIN)
    yield PLAIN
    unregister(PLAIN.name)


def test_a_third_architecture_runs_the_whole_chain(
    plain_architecture: ModelSpec, train_cache: Path, small_cohort: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    run, truth = tmp_path / "run", small_cohort / "ground_truth.json"
    widths = ["--base-channels", "8", "--max-channels", "16", "--gene-hidden", "16"]
    small_map = ["--clusters", "2", "--metagene-min-genes", "2", "--top-genes", "1"]
    small_map += ["--replicates", "2", "--backgrounds", "2", "--gene-sets", str(truth)]
    synthesis = [str(tmp_path / "synthesis"), "--backgrounds", "2", "--split", "all"]
    steps = [
        ["train", str(train_cache), str(run), "--steps", "2", "--model", "plain", *widths],
        ["synthesize", str(run), *synthesis, "--formats", "png"],
        ["map", str(run), *small_map],
        ["evaluate", str(run), "--truth", str(truth), "--per-donor", "2", "--resamples", "10"],
        ["report", str(run)],
    ]
    for args in steps:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args[0], result.output)
    config = load_checkpoint(run / CHECKPOINT_PATH)["config"]
    assert (config["lr"], config["weight_background"], config["erosion_px"]) == (3e-4, 7.0, 3)
    assert (run / "report" / "index.html").is_file()
    assert (tmp_path / "synthesis" / "manifest.csv").is_file()
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert set(evaluation["models"]) == {"plain", "reference"}
    assert evaluation["models"]["plain"]["training"]["lr"] == 3e-4
    codes = pd.read_csv(run / "maps" / "gene_codes_plain.csv", index_col="subject_id")
    assert codes.shape == (3, TINY_MODEL.gene_code)
    embedding = pd.read_csv(run / "maps" / "embedding.csv")
    assert "plain: g cluster" in embedding.columns
    assert "plain GAN" in pd.read_csv(run / "report" / "summary.csv")["column"].tolist()


def test_no_architecture_is_named_outside_models() -> None:
    """Stages ask the spec; only models/ may spell an architecture's name."""
    names = {f'"{n}"' for n in architecture_names()} | {f"'{n}'" for n in architecture_names()}
    found = []
    for path in SRC.rglob("*.py"):
        if "models" in path.relative_to(SRC).parts:
            continue
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if token.type == tokenize.STRING and token.string in names:
                found.append(f"{path.relative_to(SRC)}:{token.start[0]} {token.string}")
    assert not found, found
