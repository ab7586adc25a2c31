"""Each loss term on hand-made scores and images, against values worked out by hand."""

from __future__ import annotations

import pytest
import torch

from rgsynth.losses import GanLoss, erode_background


def _scores(**values: float) -> dict[str, torch.Tensor]:
    return {k: torch.full((4,), v) for k, v in values.items()}


PERFECT_D = dict(
    i_real=1.0,
    i_fake=0.0,
    is_real=1.0,
    is_wrong_mask=0.0,
    is_fake=0.0,
    isg_real=1.0,
    isg_wrong_mask=0.0,
    isg_wrong_genes=0.0,
    isg_fake=0.0,
)


def test_a_perfect_discriminator_has_zero_loss() -> None:
    total, terms = GanLoss().discriminator(_scores(**PERFECT_D))
    assert float(total) == 0.0 and float(terms["D/ISG"]) == 0.0


@pytest.mark.parametrize(
    ("changed", "term", "expected"),
    [
        ({"i_real": 0.5}, "D/I", 0.25),  # (0.5 - 1)²
        ({"i_fake": 2.0}, "D/I", 4.0),
        ({"is_wrong_mask": 1.0}, "D/IS", 1.0),  # a mismatched mask called real
        ({"isg_wrong_genes": -1.0}, "D/ISG", 1.0),
        ({"isg_wrong_mask": 0.5, "isg_fake": 0.5}, "D/ISG", 0.5),
    ],
)
def test_each_discriminator_term(changed: dict, term: str, expected: float) -> None:
    loss = GanLoss(weight_i=8.0, weight_is=1.0, weight_isg=10.0)
    total, terms = loss.discriminator(_scores(**(PERFECT_D | changed)))
    assert float(terms[term]) == pytest.approx(expected)
    weight = {"D/I": 8.0, "D/IS": 1.0, "D/ISG": 10.0}[term]
    assert float(total) == pytest.approx(weight * expected)


def test_generator_terms_and_background_l1() -> None:
    loss = GanLoss(
        weight_i=8.0, weight_is=1.0, weight_isg=10.0, weight_background=100.0, erosion_px=3
    )
    fake_scores = _scores(i_fake=1.0, is_fake=0.0, isg_fake=0.5)
    background = torch.zeros(1, 1, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[0, 0, 3:5, 3:5] = 1.0  # a 2×2 nodule; eroded background excludes a 4×4 square
    image = torch.full((1, 1, 8, 8), 0.5)  # differs from the background everywhere by 0.5
    total, terms = loss.generator(fake_scores, image, mask, background)
    values = {k: float(v) for k, v in terms.items()}
    assert values["G/I"] == 0.0 and values["G/IS"] == 1.0 and values["G/ISG"] == 0.25
    assert values["G/background_l1"] == pytest.approx(0.5 * (64 - 16) / 64)
    assert float(total) == pytest.approx(1.0 + 10 * 0.25 + 100 * 0.375)


def test_changes_inside_the_eroded_mask_cost_nothing() -> None:
    loss = GanLoss(erosion_px=3)
    mask = torch.zeros(1, 1, 8, 8)
    mask[0, 0, 2:6, 2:6] = 1.0
    background = torch.randn(1, 1, 8, 8)
    image = background.clone()
    image[0, 0, 2:6, 2:6] += 1.0  # paint a nodule only where the mask is
    _, terms = loss.generator(_scores(i_fake=1, is_fake=1, isg_fake=1), image, mask, background)
    assert float(terms["G/background_l1"]) == 0.0


def test_erosion_grows_the_mask_by_half_the_window() -> None:
    mask = torch.zeros(1, 1, 9, 9)
    mask[0, 0, 4, 4] = 1.0
    kept = erode_background(mask, 5)
    assert float(kept.sum()) == 81 - 25
    assert float(kept[0, 0, 4, 4]) == 0.0 and float(kept[0, 0, 0, 0]) == 1.0
