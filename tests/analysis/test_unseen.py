"""Unseen donors' gene scores, unshrunk (issue 16's eighteenth round): a held-out donor's
whitened scores in the training donors' components come out shrunk toward 0, and
``--unshrink-unseen`` divides them by a power of the leave-one-out shrinkage of the training
donors (1/2 and on by default since the twentieth round) wherever the profiles painted are
unseen donors' (the headline map's bases, evaluate's syntheses); the map's move along a
program stays the yardstick's step (nineteenth round)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch
from typer.testing import CliRunner

from conftest import TINY_TRAIN
from rgsynth.analysis import maps as maps_module
from rgsynth.analysis.cohort import load_cohort
from rgsynth.analysis.ground_truth import load_truth
from rgsynth.analysis.maps import _fixed_backgrounds, perturbation_maps
from rgsynth.analysis.perturbation import AXIS_ARMS, GENES_ARMS, program_matrix
from rgsynth.cli import app
from rgsynth.config import BatchSettings, MapSettings, PerturbationSettings, PrepareConfig
from rgsynth.data import load_split
from rgsynth.inference import SeenProfiles, Synthesis, Synthesizer, assemble, load_run
from rgsynth.layout import REPORT_DIRNAME, REPORT_PAGE
from rgsynth.models.blocks import ProjectedGeneMapping
from rgsynth.prepare.run import find_inputs, prepare_cache
from rgsynth.synthesize.batch import Job, Painters, Target
from rgsynth.synthesize.profiles import CacheGenes, GeneProfile, edit_profile
from rgsynth.train.loop import Trainer
from rgsynth.twin.cohort import generate_cohort


@pytest.fixture(scope="module")
def focus_run(train_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-step fp32 focus run on the shared cache (weights, not quality)."""
    run = tmp_path_factory.mktemp("unseen") / "run"
    model = dataclasses.replace(TINY_TRAIN.model, architecture="focus")
    config = dataclasses.replace(TINY_TRAIN, model=model, precision="fp32", map_snapshot=0.0)
    Trainer(train_cache, run, config).run(max_steps=3, max_minutes=None)
    return run


def test_unseen_divides_the_scores_inside_the_block_only() -> None:
    donors = torch.randn(12, 40, generator=torch.Generator().manual_seed(3))
    mapping = ProjectedGeneMapping(40, components=5, hidden=8, code=4)
    mapping.fit(donors)
    new = torch.randn(3, 40, generator=torch.Generator().manual_seed(4))
    plain = mapping.project(new)
    with mapping.unseen(0.5):
        torch.testing.assert_close(mapping.project(new), plain / 0.5)
    torch.testing.assert_close(mapping.project(new), plain)  # restored
    with pytest.raises(RuntimeError), mapping.unseen(0.5):
        raise RuntimeError("a failed synthesis")
    torch.testing.assert_close(mapping.project(new), plain)  # restored after an error too
    for bad in (0.0, -1.0, 2.0):
        with pytest.raises(ValueError, match="must lie in"), mapping.unseen(bad):
            pass


def test_a_focus_run_knows_its_shrinkage_and_the_papers_model_has_none(
    focus_run: Path, trained_run: Path, train_cache: Path
) -> None:
    run = load_run(focus_run)
    donors = torch.as_tensor(load_split(train_cache, "train").genes)
    factor = run.unseen_shrinkage()
    assert factor == pytest.approx(run.generator.mapping.shrinkage(donors))
    assert 0 < factor < 1  # more genes than donors: unseen donors' scores are smaller
    paper = load_run(trained_run)
    assert paper.unseen_shrinkage() is None
    with pytest.raises(ValueError, match="no fitted"):
        Synthesizer(paper.generator, unseen_shrinkage=0.5)


def test_unseen_synthesizers_share_one_reading_of_the_split_and_skip_it_without_components(
    focus_run: Path, trained_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = load_run(focus_run)
    painters = run.unseen_synthesizers([run.generator, run.generator], 1.0)
    assert [p.unseen_shrinkage for p in painters] == [run.unseen_shrinkage()] * 2
    half = run.unseen_synthesizers([run.generator], 0.5)[0].unseen_shrinkage
    assert half == pytest.approx(run.unseen_shrinkage() ** 0.5)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="strength"):
            run.unseen_synthesizers([run.generator], bad)
    training = run.training_profiles()
    assert all(p.seen.rows(training).all() for p in painters)
    assert not any(p.seen.rows(training + np.float32(0.5)).any() for p in painters)
    paper = load_run(trained_run)

    def no_read(*_: object) -> None:
        raise AssertionError("the training split was read for a model with no components")

    monkeypatch.setattr("rgsynth.inference.split_genes", no_read)
    assert run.training_profiles() is run.training_profiles()  # read once, above
    cached = run.unseen_shrinkage()
    monkeypatch.setattr(
        run.generator.mapping, "shrinkage", lambda *_: pytest.fail("estimated again")
    )
    assert run.unseen_shrinkage() == cached  # and the estimate made once per run
    assert paper.unseen_synthesizers([paper.generator], 0.5) is None
    assert paper.unseen_shrinkage() is None


def test_the_synthesizer_unshrinks_unseen_profiles_and_paints_seen_ones_as_they_are(
    focus_run: Path, train_cache: Path
) -> None:
    run = load_run(focus_run)
    mapping = run.generator.mapping
    donors = run.training_profiles()
    genes = np.concatenate([donors[:2] + 0.3, donors[:1]])  # two unseen profiles, one seen
    backgrounds = np.zeros((3, 32, 32), np.float32) - 0.8
    seeds = [1, 2, 3]
    factor = run.unseen_shrinkage()
    painted = Synthesizer(run.generator, unseen_shrinkage=factor, seen_profiles=donors)(
        backgrounds, genes, seeds
    )
    # An unseen profile is painted as the same profile moved along the fitted components
    # so that its scores are 1 / factor as large; the training donor's as it is.
    tensor = torch.as_tensor(genes[:2])
    moved = tensor + ((1 / factor - 1) * mapping.project(tensor)) @ mapping._unit_directions(
        tensor.dtype
    )
    by_hand = Synthesizer(run.generator)(backgrounds[:2], moved.numpy(), seeds[:2])
    np.testing.assert_allclose(painted.image[:2], by_hand.image, atol=1e-4)
    plain = Synthesizer(run.generator)(backgrounds, genes, seeds)
    # (painted in a batch of its own: equal up to the kernels' float order)
    np.testing.assert_allclose(painted.image[2], plain.image[2], atol=1e-4)
    np.testing.assert_allclose(painted.mask[2], plain.mask[2], atol=1e-4)
    assert np.abs(plain.image[:2] - painted.image[:2]).max() > 1e-3  # it paints otherwise
    assert mapping.score_divisor == 1.0  # and the generator is left as it was
    with pytest.raises(ValueError, match="must lie in"):
        Synthesizer(run.generator, unseen_shrinkage=0.0)


@pytest.fixture(scope="module")
def held_run(tiny_config, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A twin with 3 held-out donors (``synth-cohort --holdout``), its 32² cache and a
    3-step fp32 focus run on it: (cohort, run)."""
    root = tmp_path_factory.mktemp("held")
    generate_cohort(root / "cohort", dataclasses.replace(tiny_config, n_holdout=3), workers=2)
    config = PrepareConfig(size=32, background_centres=2, background_slices=5)
    prepare_cache(find_inputs(root / "cohort"), root / "cache", config, workers=2,
                  echo=lambda _: None)  # fmt: skip
    model = dataclasses.replace(TINY_TRAIN.model, architecture="focus")
    train = dataclasses.replace(TINY_TRAIN, model=model, precision="fp32", map_snapshot=0.0)
    Trainer(root / "cache", root / "run", train).run(max_steps=3, max_minutes=None)
    return root / "cohort", root / "run"


def _scores(run: Path, condition: str) -> dict[str, float]:
    records = [json.loads(line) for line in (run / "evaluation_scores.jsonl").open()]
    return {r["metric"]: r["value"] for r in records if r["condition"] == condition
            and r["model"] == "focus"}  # fmt: skip


def test_map_and_evaluate_unshrink_held_out_donors_by_default_at_half_strength(
    held_run: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cohort, trained = held_run
    truth = str(cohort / "ground_truth.json")
    tables, matched = {}, {}
    moves: list[float] = []
    real = maps_module.perturbation_maps

    def recorded(*args, **kwargs):  # the move's factor the map command asks for
        moves.append(kwargs.get("unseen_move", 1.0))
        return real(*args, **kwargs)

    monkeypatch.setattr(maps_module, "perturbation_maps", recorded)
    shrinkage = load_run(trained).unseen_shrinkage()
    assert 0 < shrinkage < 1
    cases = {  # name: (options, the power the scores are divided by; None: plain)
        "plain": (["--plain-unseen"], None),
        "default": ([], 0.5),  # on by default at 1/2 (issue 16's twentieth round)
        "full": (["--unshrink-unseen", "--unshrink-strength", "1"], 1.0),
    }
    for name, (options, power) in cases.items():
        run = Path(shutil.copytree(trained, tmp_path / name))
        args = ["map", str(run), "--gene-sets", truth, "--clusters", "2",
                "--metagene-min-genes", "2", "--top-genes", "2", "--replicates", "3",
                "--backgrounds", "4", *options]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        summary = json.loads((run / "maps" / "maps.json").read_text())
        divisor = None if power is None else pytest.approx(shrinkage**power)
        assert summary["perturbation_unseen_shrinkage"] == (power and shrinkage)
        assert summary["perturbation_unseen_strength"] == power
        assert summary["perturbation_unseen_divisor"] == divisor
        assert summary["settings"]["unshrink_unseen"] is (power is not None)
        # the bases unshrunk, the move as the yardstick's: multiplied by the divisor
        assert moves.pop() == (1.0 if power is None else divisor)
        assert summary["perturbation_unseen_divides"] == (power and "bases")
        tables[name] = {
            table: (run / "maps" / table).read_text()
            for table in ("perturbation_programs.csv", "perturbation_programs_genes_rule.csv")
        }
        result = CliRunner().invoke(
            app, ["evaluate", str(run), "--per-donor", "1", "--resamples", "10", *options]
        )
        assert result.exit_code == 0, result.output
        scores = json.loads((run / "evaluation.json").read_text())
        assert scores["validation_split"] == "holdout"
        facts = scores["models"]["focus"]
        assert facts["unseen_shrinkage"] == (power and shrinkage)
        assert facts["unseen_strength"] == power
        assert facts["unseen_divisor"] == divisor
        assert scores["settings"]["unshrink_unseen"] is (power is not None)
        matched[name] = _scores(run, "matched")
        result = CliRunner().invoke(app, ["report", str(run)])
        assert result.exit_code == 0, result.output
        page = (run / REPORT_DIRNAME / REPORT_PAGE).read_text()
        said = (
            f"map bases unshrunk (÷ {shrinkage**power:.2f} = {shrinkage:.2f} ^ {power:g})"
            if power
            else "map: as they are"
        )
        assert said in page
        # the model by its display name, as everywhere on the page
        assert ("scores of ours unshrunk" in page) is (power is not None)
    plain, unseen = tables["plain"], tables["default"]
    # The headline (axis rule: held-out bases) changes; the genes rule (training donors'
    # bases too) is read as is.
    assert plain["perturbation_programs.csv"] != unseen["perturbation_programs.csv"]
    assert unseen["perturbation_programs.csv"] != tables["full"]["perturbation_programs.csv"]
    assert (
        plain["perturbation_programs_genes_rule.csv"]
        == unseen["perturbation_programs_genes_rule.csv"]
    )
    # evaluate paints the held-out donors otherwise
    assert matched["plain"]["frd"] != matched["default"]["frd"] != matched["full"]["frd"]


def test_the_unseen_maps_move_is_scaled_and_their_bases_are_not(
    held_run: tuple[Path, Path],
) -> None:
    """``unseen_move=s`` multiplies each axis-rule move in gene space by s (so that a
    synthesizer dividing the scores by s leaves the move as it was) and leaves the bases
    and the ``genes`` rule alone; the single genes under the ``axis`` headline move as it."""
    cohort_dir, trained = held_run
    cache = cohort_dir.parent / "cache"
    run = load_run(trained)
    cohort = load_cohort(cache)
    programs = program_matrix(load_truth(cohort_dir / "ground_truth.json").gene_sets,
                              cohort.gene_names)  # fmt: skip
    settings = MapSettings(n_backgrounds=4, perturbation=PerturbationSettings(replicates=3))
    fixed = _fixed_backgrounds(cache, settings)
    singles = pd.DataFrame(np.eye(len(cohort.gene_names), dtype=np.float32)[:2],
                           index=cohort.gene_names[:2], columns=cohort.gene_names)  # fmt: skip
    painted: dict[float, dict[str, list[np.ndarray]]] = {}
    for move in (1.0, 0.5):
        calls: dict[str, list[np.ndarray]] = {"unseen": [], "plain": []}

        def recording(kind: str, calls=calls):
            synthesize = Synthesizer(run.generator)
            return lambda b, genes, seeds: (
                calls[kind].append(genes.copy()) or synthesize(b, genes, seeds)
            )

        perturbation_maps(recording("plain"), cohort, cohort.features(), programs, fixed,
                          (-1000.0, 400.0), settings, singles=singles,
                          unseen=recording("unseen"), unseen_move=move)  # fmt: skip
        painted[move] = calls
    arms = len(AXIS_ARMS)
    one, half = np.stack(painted[1.0]["unseen"]), np.stack(painted[0.5]["unseen"])
    axis = arms * len(programs)
    assert len(one) == axis + len(GENES_ARMS) * len(singles) and axis > 0
    # single genes (arms -1, +1), after the programs: the gap halves, the base stays
    gene_one, gene_half = (
        one[axis:].reshape(len(singles), 2, -1),
        half[axis:].reshape(len(singles), 2, -1),
    )
    np.testing.assert_allclose(gene_half.sum(1), gene_one.sum(1), atol=1e-5)
    np.testing.assert_allclose(gene_half[:, 1] - gene_half[:, 0],
                               0.5 * (gene_one[:, 1] - gene_one[:, 0]), atol=1e-5)  # fmt: skip
    one, half = one[:axis], half[:axis]
    one, half = (
        one.reshape(len(programs), arms, *one.shape[1:]),
        half.reshape(len(programs), arms, *half.shape[1:]),
    )
    # arms are -2, -1, +1, +2: the mean of opposite arms is the base, their gap the move
    np.testing.assert_allclose(
        half[:, [0, 1]].mean(1) + half[:, [3, 2]].mean(1),
        one[:, [0, 1]].mean(1) + one[:, [3, 2]].mean(1),
        atol=1e-5,
    )
    np.testing.assert_allclose(half[:, 3] - half[:, 0], 0.5 * (one[:, 3] - one[:, 0]),
                               atol=1e-5)  # fmt: skip
    assert np.abs(one[:, 3] - one[:, 0]).max() > 0  # a move there is
    for a, b in zip(painted[1.0]["plain"], painted[0.5]["plain"], strict=True):
        np.testing.assert_array_equal(a, b)  # the genes rule as it is


def test_a_cohort_without_held_out_donors_has_nothing_to_unshrink(
    focus_run: Path, small_cohort: Path, tmp_path: Path
) -> None:
    run = Path(shutil.copytree(focus_run, tmp_path / "run"))  # every donor is a training one
    args = ["map", str(run), "--gene-sets", str(small_cohort / "ground_truth.json"),
            "--clusters", "2", "--metagene-min-genes", "2", "--top-genes", "2",
            "--replicates", "3", "--backgrounds", "4"]  # fmt: skip
    result = CliRunner().invoke(app, args)  # unshrunk by default, where there is anything
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "maps" / "maps.json").read_text())
    for key in ("shrinkage", "strength", "divisor"):
        assert summary[f"perturbation_unseen_{key}"] is None
    result = CliRunner().invoke(app, ["evaluate", str(run), "--per-donor", "1",
                                      "--resamples", "10"])  # fmt: skip
    assert result.exit_code == 0, result.output
    facts = json.loads((run / "evaluation.json").read_text())["models"]["focus"]
    assert json.loads((run / "evaluation.json").read_text())["validation_split"] == "all"
    for key in ("shrinkage", "strength", "divisor"):
        assert facts[f"unseen_{key}"] is None


def test_maps_written_before_the_power_are_read_as_they_were_made(tmp_path: Path) -> None:
    from rgsynth.analysis.evaluate import _map_settings

    for stored, expected in (
        ({"unshrink_unseen": True}, (True, 1.0)),  # round 19's: the full correction
        ({"unshrink_unseen": False}, (False, 1.0)),
        ({}, (False, 0.5)),  # before the option: plain
        ({"unshrink_unseen": True, "unshrink_strength": 0.5}, (True, 0.5)),
    ):
        (tmp_path / "maps").mkdir(exist_ok=True)
        (tmp_path / "maps" / "maps.json").write_text(json.dumps({"settings": stored}))
        settings = _map_settings(tmp_path)
        assert (settings.unshrink_unseen, settings.unshrink_strength) == expected


def test_synthesize_unshrinks_unseen_donors_profiles_and_paints_the_others_as_they_are(
    held_run: tuple[Path, Path], trained_run: Path, tmp_path: Path
) -> None:
    _, trained = held_run
    run = load_run(trained)
    training = load_split(run.cache_root, "train").subject_ids
    held = next(s for s in CacheGenes.load(run.cache_root).subject_ids if s not in training)
    factor = run.unseen_shrinkage()
    gene = CacheGenes.load(run.cache_root).names[0]

    def synthesize(
        name: str, *args: str, on: Path = trained, subjects: tuple[str, ...] = (held, training[0])
    ) -> tuple[pd.DataFrame, dict]:
        out = tmp_path / name
        chosen = [a for s in subjects for a in ("--subject", s)]
        # 2 backgrounds x 2 profiles in batches of 3: the unseen rows straddle a batch
        result = CliRunner().invoke(app, [
            "synthesize", str(on), str(out), *chosen, "--backgrounds", "2", "--batch-size",
            "3", "--formats", "nifti", *args,
        ])  # fmt: skip
        assert result.exit_code == 0, result.output
        summary = json.loads((out / "synthesis.json").read_text())
        return pd.read_csv(out / "manifest.csv"), summary

    def image(name: str, nodule: str) -> np.ndarray:
        path = tmp_path / name / "nifti" / f"{nodule}_image.nii.gz"
        return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(float)

    def differs(a: str, b: str, nodule: str) -> float:
        return float(np.abs(image(a, nodule) - image(b, nodule)).max())

    default, summary = synthesize("default")
    is_held = (default["gene_profile"] == held).to_numpy()
    assert is_held.tolist() == [True, False, True, False]
    assert (default.loc[~is_held, "unshrink_divisor"] == 1.0).all()
    np.testing.assert_allclose(default.loc[is_held, "unshrink_divisor"], factor**0.5, atol=1e-6)
    assert summary["n_unshrunk"] == 2 and summary["unshrink_strength"] == 0.5
    assert summary["unseen_shrinkage"] == pytest.approx(factor)
    assert any("held-out or validation cache subjects" in n for n in summary["notes"])
    full, _ = synthesize("full", "--unshrink-strength", "1")
    np.testing.assert_allclose(full.loc[is_held, "unshrink_divisor"], factor, atol=1e-6)
    plain, summary = synthesize("plain", "--plain-unseen")
    assert (plain["unshrink_divisor"] == 1.0).all() and summary["n_unshrunk"] == 0
    assert summary["unshrink_divisor"] is None and not summary["settings"]["unshrink_unseen"]
    # in pixels: the training donor's nodules are the same in every batch (up to the
    # kernels' float order in batches of other sizes: 1 HU); each held-out one differs
    # between plain, half and full strength
    for nodule, unseen in zip(default["nodule_id"], is_held, strict=True):
        if unseen:
            assert min(differs("default", "plain", nodule), differs("default", "full", nodule),
                       differs("full", "plain", nodule)) > 1  # fmt: skip
        else:
            assert max(differs("default", "plain", nodule), differs("full", "plain", nodule)) <= 1
    # an edit on a held-out donor's profile: its base unshrunk, the edit kept
    edited, summary = synthesize("edited", "--set", f"{gene}=1")
    np.testing.assert_allclose(edited["unshrink_divisor"], np.where(is_held, factor**0.5, 1.0),
                               atol=1e-6)  # fmt: skip
    assert any("keep the size given" in n for n in summary["notes"])
    # the paper's model has no fitted components: nothing to unshrink, nothing said
    every = CacheGenes.load(load_run(trained_run).cache_root).subject_ids
    paper, summary = synthesize("paper", "--split", "all", on=trained_run, subjects=tuple(every))
    assert (paper["unshrink_divisor"] == 1.0).all()
    assert summary["unseen_shrinkage"] is None and summary["n_unshrunk"] == 0
    assert not any("shrinkage" in note for note in summary["notes"])


def test_an_edit_on_an_unseen_donors_profile_keeps_its_size(held_run: tuple[Path, Path]) -> None:
    """The scores the generator sees: the donor's own divided by s^p, the edit's not (as
    the map's move along a program); a training donor's and the mean's as they are."""
    _, trained = held_run
    run = load_run(trained)
    mapping = run.generator.mapping
    cache = CacheGenes.load(run.cache_root)
    training = set(load_split(run.cache_root, "train").subject_ids)
    held = next(s for s in cache.subject_ids if s not in training)
    donor = next(iter(training))
    edits = [(cache.names[0], 2.0), (cache.names[1], -1.0)]
    mean = GeneProfile("mean", np.zeros(len(cache.names), np.float32), "mean", measured=False)
    profiles = [
        edit_profile(cache.subject(held), cache, edits),
        cache.subject(held),
        edit_profile(cache.subject(donor), cache, edits),
        edit_profile(mean, cache, edits),
    ]
    target = Target("patch", np.full((32, 32), -0.8, np.float32), (0.0, 0.0, 0.0))
    jobs = [Job(n + 1, target, p, n) for n, p in enumerate(profiles)]
    painters = Painters.of(run, BatchSettings(), jobs)
    assert painters.unshrunk.tolist() == [True, True, False, False]
    seen: list[np.ndarray] = []

    class Recorder:
        def __init__(self, painter: Synthesizer) -> None:
            self.painter, self.unseen_shrinkage = painter, painter.unseen_shrinkage

        def __call__(self, backgrounds, genes, seeds, heights_mm=None):  # type: ignore[no-untyped-def]
            seen.append(genes)
            return self.painter(backgrounds, genes, seeds, heights_mm=heights_mm)

    painters = dataclasses.replace(painters, unseen=Recorder(painters.unseen))
    painters(jobs, 0, 0.0)
    f = painters.factor
    assert f == pytest.approx(run.unseen_shrinkage() ** 0.5)

    def scores(values: np.ndarray) -> torch.Tensor:
        return mapping.project(torch.as_tensor(np.atleast_2d(values)))

    edited, base = profiles[0].values, profiles[0].base
    painted = scores(seen[0][0]) / f  # the unseen painter divides what it is given by f
    torch.testing.assert_close(painted, scores(base) / f + scores(edited) - scores(base),
                               atol=1e-4, rtol=1e-4)  # fmt: skip
    torch.testing.assert_close(scores(seen[0][1]) / f, scores(profiles[1].values) / f)


def test_assemble_puts_parts_painted_apart_back_in_order() -> None:
    def part(values: list[float]) -> Synthesis:
        stack = np.asarray(values, np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)
        return Synthesis(stack, stack + 10, stack + 20)

    mask = np.array([True, False, True, False, False])
    whole = assemble(5, [(mask, part([0, 2])), (np.array([4, 1, 3]), part([4, 1, 3]))])
    assert whole.image.shape == (5, 2, 3) and whole.image.dtype == np.float32
    assert whole.image[:, 0, 0].tolist() == [0, 1, 2, 3, 4]
    assert whole.mask[:, 1, 2].tolist() == [10, 11, 12, 13, 14]
    assert whole.weight_map[:, 0, 1].tolist() == [20, 21, 22, 23, 24]
    with pytest.raises(ValueError, match="no part painted any of the 3 nodules"):
        assemble(3, [])


def test_seen_profiles_are_the_training_donors_bit_for_bit() -> None:
    training = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    seen = SeenProfiles(training)
    assert training[1] in seen and training[1].astype(np.float64) in seen
    nudged = training[1].copy()
    nudged[2] = np.nextafter(nudged[2], np.float32(np.inf))
    assert nudged not in seen
    assert seen.rows(np.stack([training[2], nudged, training[0]])).tolist() == [True, False, True]
    assert not SeenProfiles().rows(training).any()
