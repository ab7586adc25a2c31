import pytest

from rgsynth.config import TWIN_PRESETS, TwinConfig, fingerprint, twin_preset


@pytest.mark.parametrize("name", TWIN_PRESETS)
def test_presets_are_valid(name: str) -> None:
    config = twin_preset(name)
    assert config.preset == name
    assert config.n_genes_complete <= config.n_genes


def test_paper_preset_mirrors_the_real_collection() -> None:
    config = twin_preset("paper")
    assert (config.n_subjects, config.matrix) == (211, 512)
    assert (config.n_genes, config.n_genes_complete) == (22126, 5172)
    assert round(config.rnaseq_fraction * 211) == 130


def test_overrides_and_fingerprint() -> None:
    a = twin_preset("tiny", seed=1)
    b = twin_preset("tiny", seed=2)
    assert a.seed == 1 and b.seed == 2
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == twin_preset("tiny", seed=1).fingerprint()
    assert fingerprint({"b": 1, "a": 2}) == fingerprint({"a": 2, "b": 1})


@pytest.mark.parametrize(
    "bad",
    [
        dict(n_subjects=0),
        dict(n_genes=10, n_genes_complete=11),
        dict(matrix=64),
        dict(n_programs=3, n_null_programs=3),
        dict(seg_fraction=1.5),
    ],
)
def test_invalid_config_is_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match="invalid twin config"):
        TwinConfig(**bad)


def test_unknown_preset() -> None:
    with pytest.raises(ValueError, match="unknown preset"):
        twin_preset("huge")


@pytest.mark.parametrize("strength", [0.0, -0.5, 1.5])
def test_an_unshrink_strength_outside_zero_to_one_is_refused(strength: float) -> None:
    from rgsynth.config import EvaluationSettings, MapSettings

    for settings in (MapSettings, EvaluationSettings):
        with pytest.raises(ValueError, match="unshrink_strength must be in"):
            settings(unshrink_strength=strength)
    # on by default, at the power issue 16's twentieth round adopted
    assert MapSettings().unshrink_strength == EvaluationSettings().unshrink_strength == 0.5
    assert MapSettings().unshrink_unseen and EvaluationSettings().unshrink_unseen
