"""Each loss term on hand-made scores and images, against values worked out by hand."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch

from rgsynth.losses import GanLoss, erode_background, translate_together


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


def _marked(batch: int, size: int = 16) -> torch.Tensor:
    """(batch, 1, size, size) with a distinct value at one pixel of each sample."""
    x = torch.zeros(batch, 1, size, size)
    x[:, 0, 7, 9] = torch.arange(1, batch + 1, dtype=torch.float32)
    return x


def _position(image: torch.Tensor) -> list[tuple[int, int]]:
    return [tuple(torch.nonzero(sample[0]).squeeze(0).tolist()) for sample in image]


def test_translation_shifts_every_tensor_of_a_sample_by_one_offset_within_the_ratio() -> None:
    torch.manual_seed(0)
    x = _marked(64)
    image, mask, other = translate_together([x, 2 * x, 3 * x], 0.25)  # up to ±4 px at 16²
    moves = [(r - 7, c - 9) for r, c in _position(image)]
    assert _position(mask) == _position(image) == _position(other)
    assert torch.equal(mask, 2 * image) and torch.equal(other, 3 * image)
    assert all(abs(dr) <= 4 and abs(dc) <= 4 for dr, dc in moves)
    assert len(set(moves)) > 20  # drawn per sample, not one shift for the batch
    # content moves intact (whole pixels); what enters at the border is zero
    assert torch.equal(image.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))
    filled = translate_together([torch.ones(8, 1, 16, 16)], 0.25)[0]
    assert float(filled.min()) == 0.0 and float(filled.max()) == 1.0


def test_translation_passes_gradients_to_the_pixels_kept_in_frame() -> None:
    torch.manual_seed(1)
    x = torch.randn(4, 1, 16, 16, requires_grad=True)
    (shifted,) = translate_together([x], 0.125)
    shifted.sum().backward()
    # each pixel kept in frame once: (16 − |shift y|) × (16 − |shift x|), shifts within ±2
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0}
    products = {a * b for a in (14, 15, 16) for b in (14, 15, 16)}
    assert all(int(k) in products for k in x.grad.sum(dim=(1, 2, 3)))


class _SpyDiscriminators(torch.nn.Module):
    """Records what it is shown and scores every question 0.5."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))
        self.seen: list[tuple[torch.Tensor, ...]] = []

    def forward(self, fake_image, fake_mask, genes, real_image=None, real_mask=None,
                wrong_mask=None, wrong_genes=None):  # fmt: skip
        self.seen.append((fake_image, fake_mask, real_image, real_mask, wrong_mask))
        half = self.weight * fake_image.new_full((len(fake_image),), 0.5)
        keys = ["i_fake", "is_fake", "isg_fake"]
        if real_image is not None:
            keys += ["i_real", "is_real", "is_wrong_mask", "isg_real", "isg_wrong_mask",
                     "isg_wrong_genes"]  # fmt: skip
        return dict.fromkeys(keys, half)


class _MarkGenerator(torch.nn.Module):
    def __init__(self, image: torch.Tensor) -> None:
        super().__init__()
        self.image = torch.nn.Parameter(image.clone())

    def forward(self, background, genes, noise):
        from types import SimpleNamespace

        return SimpleNamespace(image=self.image, mask=(self.image.detach() > 0).float(), kl=None)


@pytest.mark.parametrize("ratio", [0.0, 0.25])
def test_d_translate_shifts_what_the_discriminators_see_and_nothing_else(ratio: float) -> None:
    torch.manual_seed(2)
    fake, real = _marked(32), 100 * _marked(32)
    batch = {"background": torch.full_like(fake, 0.5), "genes": torch.zeros(32, 3),
             "image": real, "mask": real / 10, "wrong_mask": real / 100,
             "wrong_genes": torch.zeros(32, 3)}  # fmt: skip
    loss, d, generator = GanLoss(d_translate=ratio), _SpyDiscriminators(), _MarkGenerator(fake)
    made, _, _ = loss.accumulate_discriminator(generator, d, batch, None, nullcontext)
    _, terms = loss.accumulate_generator(d, made, batch, nullcontext)
    (fake_d, fake_mask_d, real_d, real_mask_d, wrong_d), (fake_g, fake_mask_g, *_) = d.seen
    # each tuple keeps its parts aligned: one shift per sample for image, mask, wrong mask
    assert _position(real_mask_d) == _position(real_d) == _position(wrong_d)
    assert _position(fake_mask_d) == _position(fake_d) and _position(fake_mask_g) == _position(
        fake_g
    )
    # the background L1 compares the unshifted fake with its background
    keep = erode_background((fake > 0).float(), 5)
    expected = ((fake - 0.5).abs() * keep).mean()
    assert float(terms["G/background_l1"]) == pytest.approx(float(expected))
    if ratio == 0.0:
        assert real_d is real and torch.equal(fake_d, fake) and torch.equal(fake_g, fake)
        return
    unmoved = [(7, 9)] * 32
    assert _position(real_d) != unmoved and _position(fake_d) != unmoved
    assert _position(real_d) != _position(fake_d)  # reals and fakes drawn apart
    assert _position(fake_g) != _position(fake_d)  # fresh in each phase
    assert generator.image.grad is not None  # G's gradient flows through the shift


def test_d_translate_comes_from_the_training_config() -> None:
    from rgsynth.config import TrainConfig

    assert GanLoss.from_config(TrainConfig(d_translate=0.125)).d_translate == 0.125
    assert GanLoss.from_config(TrainConfig()).d_translate == 0.0
    for bad in (-0.1, 0.5):
        with pytest.raises(ValueError, match=r"d_translate must be in \[0, 0.5\)"):
            TrainConfig(d_translate=bad)
