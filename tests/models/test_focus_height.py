"""``focus-height``: focus with each slice's height above the nodule's centroid given to G
and D_ISG; synthesis and the map at the equator unless a height is asked for."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from conftest import TINY_TRAIN, chain_commands
from rgsynth.config import ModelConfig, TrainConfig
from rgsynth.data import NoduleDataset, load_split
from rgsynth.inference import Synthesizer, load_run
from rgsynth.models.focus import HEIGHT_SCALE_MM, HeightGeneMapping
from rgsynth.models.registry import get_spec
from rgsynth.prepare.cache import Cache
from rgsynth.train.loop import Trainer

SMALL = ModelConfig(architecture="focus-height", image_size=32, n_genes=30, base_channels=8,
                    max_channels=32, gene_hidden=16)  # fmt: skip


def _fitted(seed: int = 0):
    torch.manual_seed(seed)
    networks = get_spec("focus-height").build(SMALL)
    donors = torch.randn(8, 30, generator=torch.Generator().manual_seed(seed + 1))
    get_spec("focus-height").fit_to_genes(networks, donors.numpy())
    return networks.generator.eval(), networks.discriminators.eval(), donors


def test_height_is_one_more_input_beside_the_gene_scores_and_none_is_the_equator() -> None:
    mapping = HeightGeneMapping(30, components=10, hidden=16, code=8)
    mapping.fit(torch.randn(8, 30, generator=torch.Generator().manual_seed(3)))
    genes = torch.randn(4, 30)
    equator = mapping(genes)
    torch.testing.assert_close(mapping(genes, torch.zeros(4)), equator)
    above = mapping(genes, torch.full((4,), 5.0))
    assert not torch.allclose(above, equator)
    # the layer sees the height in cm, after the gene scores
    scores = torch.cat([mapping.project(genes), torch.full((4, 1), 5.0 / HEIGHT_SCALE_MM)], 1)
    torch.testing.assert_close(above, mapping.layers(scores))
    with pytest.raises(ValueError, match="slice heights: expected shape"):
        mapping(genes, torch.zeros(3))


def test_generator_and_isg_take_heights_and_models_without_them_refuse_them() -> None:
    generator, discriminators, donors = _fitted()
    background, noise = torch.zeros(2, 1, 32, 32), torch.zeros(2, SMALL.noise_dim)
    genes, heights = donors[:2], torch.tensor([4.0, -6.0])
    with torch.no_grad():
        told = generator(background, genes, noise, height_mm=heights)
        equator = generator(background, genes, noise)
        zero = generator(background, genes, noise, height_mm=torch.zeros(2))
        assert not torch.allclose(told.image, equator.image)
        torch.testing.assert_close(zero.image, equator.image)
        real = (told.image, told.mask, genes, told.image, told.mask, told.mask, donors[2:4])
        scores = discriminators(*real, height_mm=heights)
        blind = discriminators(*real)
        features = discriminators.pair_features(
            told.image, discriminators.image_features(told.image), told.mask
        )
        gene_pair = discriminators.gene_pair_features(told.image, told.mask, features)
        # the mismatched genes are scored at the real slice's own height
        torch.testing.assert_close(
            scores["isg_wrong_genes"],
            discriminators.score_isg(gene_pair, donors[2:4], height_mm=heights),
        )
    assert not torch.allclose(scores["isg_real"], blind["isg_real"])
    torch.testing.assert_close(scores["i_real"], blind["i_real"])  # D_I is not told
    paper = get_spec("xu").build(dataclasses.replace(SMALL, architecture="xu")).generator
    with pytest.raises(ValueError, match="takes no slice height"):
        paper(background, genes, noise, height_mm=heights)


def test_dataset_carries_each_slices_own_height_only_when_asked(train_cache: Path) -> None:
    data = load_split(train_cache)
    cache = Cache(train_cache)
    expected = np.concatenate(
        [cache.load_shard(s)["nodule_slice_mm"] for s in data.subject_ids]
    )  # load_split keeps the manifest's order, and every subject here is in training
    np.testing.assert_array_equal(data.nodule_height_mm, expected.astype(np.float32))
    assert len(np.unique(data.nodule_height_mm)) > 1
    told, plain = NoduleDataset(data, slice_height=True), NoduleDataset(data)
    for index in (0, len(data.nodule_image) - 1):
        assert float(told[index]["height_mm"]) == data.nodule_height_mm[index]
        assert "height_mm" not in plain[index]
        torch.testing.assert_close(told[index]["genes"], plain[index]["genes"])


def test_a_focus_height_run_trains_resumes_and_paints_at_the_asked_height(
    train_cache: Path, tmp_path: Path
) -> None:
    model = dataclasses.replace(TINY_TRAIN.model, architecture="focus-height")
    config = TrainConfig(**{**TINY_TRAIN.__dict__, "model": model, "precision": "fp32"})
    trainer = Trainer(train_cache, tmp_path / "run", config)
    assert trainer.dataset.slice_height
    batch = next(Trainer(train_cache, tmp_path / "peek", config).batches())
    assert batch["height_mm"].shape == (config.batch_size,)
    # G and every D_ISG score of a step are told the batch's heights
    told: dict[str, list] = {"G": [], "D": []}
    for name, module in (("G", trainer.generator), ("D", trainer.discriminators)):
        module.register_forward_pre_hook(
            lambda _, args, kwargs, name=name: told[name].append(kwargs.get("height_mm")),
            with_kwargs=True,
        )
    trainer.train_step(batch)
    assert len(told["G"]) == 1 and len(told["D"]) == 2  # D's phase and G's phase
    for heights in told["G"] + told["D"]:
        torch.testing.assert_close(heights, batch["height_mm"])
    trainer.run(max_steps=2, max_minutes=None)
    diagnostics = (tmp_path / "run" / "diagnostics.jsonl").read_text()
    assert "isg_auroc/train" in diagnostics
    resumed = Trainer(train_cache, tmp_path / "run", config, resume=True)
    resumed.run(max_steps=3, max_minutes=None)

    run = load_run(tmp_path / "run", train_cache)
    synthesizer = Synthesizer(run.generator)
    backgrounds = np.zeros((3, 32, 32), np.float32) - 0.7
    genes = trainer.data.genes[:3]
    seeds = [1, 2, 3]
    equator = synthesizer(backgrounds, genes, seeds)
    np.testing.assert_array_equal(synthesizer(backgrounds, genes, seeds, np.zeros(3)).image,
                                  equator.image)  # fmt: skip
    above = synthesizer(backgrounds, genes, seeds, np.array([8.0, 8.0, 8.0]))
    assert not np.allclose(above.image, equator.image)
    with pytest.raises(ValueError, match="2 slice heights for 3 nodules"):
        synthesizer(backgrounds, genes, seeds, np.zeros(2))


def test_models_without_slice_heights_paint_the_same_whatever_height_is_given(
    trained_run: Path,
) -> None:
    run = load_run(trained_run)
    assert not get_spec(run.config.model.architecture).slice_height
    synthesizer = Synthesizer(run.generator)
    backgrounds = np.zeros((2, 32, 32), np.float32) - 0.7
    genes = np.zeros((2, run.config.model.n_genes), np.float32)
    plain = synthesizer(backgrounds, genes, [5, 6])
    told = synthesizer(backgrounds, genes, [5, 6], np.array([10.0, -10.0]))
    np.testing.assert_array_equal(plain.image, told.image)


def test_evaluation_paints_each_synthesis_at_its_real_slices_height(
    train_cache: Path, trained_run: Path
) -> None:
    from rgsynth.analysis.cohort import load_cohort
    from rgsynth.analysis.evaluate import EvaluationSettings, _backgrounds, _real_slices
    from rgsynth.analysis.features import MIN_PIXELS, FeatureExtractor
    from rgsynth.config import PrepareConfig
    from rgsynth.metrics.context import ModelContext
    from rgsynth.metrics.registry import score_model

    run = load_run(trained_run)
    cohort = load_cohort(train_cache)
    cache = Cache(train_cache)
    config = PrepareConfig.from_dict(cache.manifest()["settings"])
    extractor = FeatureExtractor(cohort.pixel_mm)
    real, split = _real_slices(train_cache, cohort, config, extractor)
    expected = []  # each kept slice's own height, in _real_slices' order
    for subject in dict.fromkeys(real.owner):
        shard = cache.load_shard(subject)
        kept = shard["nodule_mask"].sum(axis=(1, 2)) >= MIN_PIXELS
        expected += list(shard["nodule_slice_mm"][kept])
    np.testing.assert_array_equal(real.height_mm, np.asarray(expected, np.float32))
    assert len(np.unique(real.height_mm)) > 1
    settings = EvaluationSettings(resamples=5)
    told = []
    plain = Synthesizer(run.generator)

    def recording(backgrounds, genes, seeds, heights_mm=None):
        told.append(heights_mm)
        return plain(backgrounds, genes, seeds, heights_mm)

    context = ModelContext(run, cohort, real, _backgrounds(train_cache, split, settings),
                           extractor, config, settings, synthesizer=recording)  # fmt: skip
    score_model(context, None)
    assert len(told) == 3  # matched, shuffled and zeroed genes, each at the real heights
    for heights in told:
        np.testing.assert_array_equal(heights, real.height_mm)


def test_the_chain_runs_on_a_focus_height_run(
    train_cache: Path, small_cohort: Path, tmp_path: Path
) -> None:
    """map (gene weights, perturbation at the equator), evaluate (real slices' heights),
    synthesize and report on a focus-height run."""
    from typer.testing import CliRunner

    from rgsynth.cli import app

    model = dataclasses.replace(TINY_TRAIN.model, architecture="focus-height")
    run = tmp_path / "run"
    Trainer(train_cache, run, dataclasses.replace(TINY_TRAIN, model=model)).run(2, None)
    runner = CliRunner()
    steps = chain_commands(run, small_cohort / "ground_truth.json", tmp_path / "synthesis")
    steps.insert(3, ["synthesize", str(run), str(tmp_path / "above"), "--split", "train",
                     "--backgrounds", "1", "--slice-height-mm", "8"])  # fmt: skip
    for args in steps:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"{args[0]}: {result.output}"
    report = json.loads((run / "evaluation.json").read_text())
    assert "focus-height" in report["models"]
    assert (run / "report" / "index.html").is_file()
    # synthesize paints at the asked height (the equator by default) and says which
    summaries = [json.loads((tmp_path / f / "synthesis.json").read_text())
                 for f in ("synthesis", "above")]  # fmt: skip
    assert [s["settings"]["slice_height_mm"] for s in summaries] == [0.0, 8.0]
    images = [sorted((tmp_path / f).rglob("*.nii.gz")) for f in ("synthesis", "above")]
    assert images[0] and len(images[0]) == len(images[1])
    assert any(
        not np.array_equal(*(sitk.GetArrayFromImage(sitk.ReadImage(str(p))) for p in pair))
        for pair in zip(*images, strict=True)
    )


def test_synthesize_refuses_a_slice_height_for_a_model_not_told_heights(
    trained_run: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from rgsynth.cli import app

    out = tmp_path / "synthesis"
    result = CliRunner().invoke(
        app, ["synthesize", str(trained_run), str(out), "--backgrounds", "1",
              "--slice-height-mm", "5"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--slice-height-mm 5" in result.output and "not told slice heights" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_the_api_refuses_a_slice_height_for_a_model_not_told_heights(trained_run: Path) -> None:
    from rgsynth.config import BatchSettings
    from rgsynth.inference import load_run
    from rgsynth.synthesize.batch import check_slice_height

    run = load_run(trained_run)
    check_slice_height(run, BatchSettings())  # the equator: every model
    with pytest.raises(ValueError, match=r"--slice-height-mm 5: a .* not told slice heights"):
        check_slice_height(run, BatchSettings(slice_height_mm=5.0))
