"""The least-squares GAN terms of Xu et al. and the eroded-background L1, as one object
(MC-GAN uses the same terms with its own weights, no erosion, and a KL term).

With real image x, matched mask m and genes g, mismatched m̄ and ḡ, and G(b, g, n) = (Gx, Gm):

    L_DI   = E[(D_I(x) − 1)²] + E[D_I(Gx)²]
    L_DIS  = E[(D_IS(x, m) − 1)²] + E[D_IS(x, m̄)²] + E[D_IS(Gx, Gm)²]
    L_DISG = E[(D_ISG(x, m, g) − 1)²] + E[D_ISG(x, m̄, g)²] + E[D_ISG(x, m, ḡ)²]
             + E[D_ISG(Gx, Gm, g)²]
    L_G    = E[(D_I(Gx) − 1)²] + E[(D_IS(Gx, Gm) − 1)²] + E[(D_ISG(Gx, Gm, g) − 1)²]
             + λ · mean(|Gx − b| ⊙ erode(1 − Gm))

Each D term is weighted (w_I, w_IS, w_ISG) in both losses. The erosion weight is computed
from a detached mask: the L1 asks G to keep the background, not to grow its mask.

With ``d_translate`` > 0 every discriminator input is first shifted at random
(DiffAugment's translation, :func:`translate_together`): reals and fakes alike, in both
phases, so D cannot tell them apart by the shift and G's gradient flows through it. The
L1 compares the unshifted fake with its background.

The loss owns the GAN step (stylegan2-ada's ``accumulate_gradients``): its two phases run
the networks, compute the terms and back-propagate; the loop only zeroes gradients, steps
the optimisers and keeps the EMA. Terms stay detached tensors on the device, so a step
costs no host synchronisation beyond the loop's finite-loss checks.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rgsynth.config import TrainConfig


def erode_background(mask: torch.Tensor, erosion_px: int) -> torch.Tensor:
    """erode(1 − mask) for a soft mask (B, 1, H, W) in [0, 1]: 1 − maxpool(mask).

    Example:
        >>> m = torch.zeros(1, 1, 5, 5); m[0, 0, 2, 2] = 1.0
        >>> erode_background(m, 3)[0, 0].sum().item()  # a 3×3 hole around the mask pixel
        16.0
    """
    grown = F.max_pool2d(mask, erosion_px, stride=1, padding=erosion_px // 2)
    return 1.0 - grown


def translate_together(tensors: list[torch.Tensor], ratio: float) -> list[torch.Tensor]:
    """Each sample of every (B, C, H, W) tensor in ``tensors`` shifted by the same random
    whole-pixel offset, drawn per sample from ±round(ratio · H) in y and ±round(ratio · W)
    in x (at least ±1), zero-padded; differentiable (a gather).

    DiffAugment's translation (Zhao et al., NeurIPS 2020). Written here, a dozen lines,
    because the libraries that have it would cost a dependency (kornia's ``RandomAffine``)
    and resample bilinearly, which blurs the nodule boundary the trait readout measures;
    whole-pixel shifts move it intact.

    Example:
        >>> x = torch.zeros(2, 1, 8, 8); x[:, :, 4, 4] = 1.0
        >>> image, mask = translate_together([x, 2 * x], 0.25)
        >>> bool(((image == 1) == (mask == 2)).all())  # one shift for both
        True
    """
    first = tensors[0]
    batch, _, height, width = first.shape
    pad_y, pad_x = (max(int(edge * ratio + 0.5), 1) for edge in (height, width))
    device = first.device
    shift_y = torch.randint(-pad_y, pad_y + 1, (batch, 1), device=device)
    shift_x = torch.randint(-pad_x, pad_x + 1, (batch, 1), device=device)
    rows = torch.arange(height, device=device)[None] + pad_y - shift_y  # (B, H)
    cols = torch.arange(width, device=device)[None] + pad_x - shift_x  # (B, W)
    samples = torch.arange(batch, device=device)[:, None, None]
    shifted = []
    for tensor in tensors:
        padded = F.pad(tensor, (pad_x, pad_x, pad_y, pad_y))
        # advanced indices on either side of a slice put their (B, H, W) first
        shifted.append(padded[samples, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2))
    return shifted


@dataclass(frozen=True)
class GanLoss:
    """The least-squares GAN loss every built-in model trains with (each with its own
    weights, see its :class:`~rgsynth.models.spec.ModelSpec`). Owns all of the GAN maths
    and the two phases of a step; terms are returned as detached tensors."""

    weight_i: float = 8.0
    weight_is: float = 1.0
    weight_isg: float = 10.0
    weight_background: float = 100.0
    erosion_px: int = 5
    weight_kl: float = 0.0
    d_translate: float = 0.0

    @classmethod
    def from_config(cls, config: TrainConfig) -> GanLoss:
        return cls(
            config.weight_i,
            config.weight_is,
            config.weight_isg,
            config.weight_background,
            config.erosion_px,
            config.weight_kl,
            config.d_translate or 0.0,
        )

    def _shifted(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        """``tensors`` as the discriminators see them (shifted together with d_translate)."""
        if not self.d_translate:
            return list(tensors)
        return translate_together(list(tensors), self.d_translate)

    def accumulate_discriminator(
        self,
        generator: nn.Module,
        discriminators: nn.Module,
        batch: dict[str, torch.Tensor],
        noise: torch.Tensor,
        autocast: Callable[[], AbstractContextManager[Any]],
        check: Callable[[torch.Tensor], None] = lambda loss: None,
    ) -> tuple[Any, torch.Tensor, dict[str, torch.Tensor]]:
        """D's phase: synthesise from the batch, score the reals, the mismatched negatives
        and the (detached) fakes, ``check`` the loss, back-propagate it. Returns the
        synthesis (for G's phase), the loss and its terms."""
        heights = _heights(batch)
        with autocast():
            fake = generator(batch["background"], batch["genes"], noise, **heights)
            fake_image, fake_mask = self._shifted(fake.image.detach(), fake.mask.detach())
            real_image, real_mask, wrong_mask = self._shifted(
                batch["image"], batch["mask"], batch["wrong_mask"]
            )
            scores = discriminators(
                fake_image,
                fake_mask,
                batch["genes"],
                real_image,
                real_mask,
                wrong_mask,
                batch["wrong_genes"],
                **heights,
            )
        total, terms = self.discriminator(scores)
        check(total)  # before any gradient (under DDP, before the all-reduce)
        total.backward()
        return fake, total, terms

    def accumulate_generator(
        self,
        discriminators: nn.Module,
        fake: Any,
        batch: dict[str, torch.Tensor],
        autocast: Callable[[], AbstractContextManager[Any]],
        check: Callable[[torch.Tensor], None] = lambda loss: None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G's phase: score the fakes with D frozen (gradients flow through it to G only),
        ``check`` G's loss and back-propagate it."""
        discriminators.requires_grad_(False)
        try:
            with autocast():
                fake_image, fake_mask = self._shifted(fake.image, fake.mask)
                fake_scores = discriminators(
                    fake_image, fake_mask, batch["genes"], **_heights(batch)
                )
            total, terms = self.generator(
                fake_scores, fake.image, fake.mask, batch["background"], fake.kl
            )
        finally:
            discriminators.requires_grad_(True)
        check(total)
        total.backward()
        return total, terms

    def discriminator(
        self, scores: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total D loss from the scores of :class:`Discriminators` with the real tuple."""
        s = {k: v.float() for k, v in scores.items()}
        d_i = _ls(s["i_real"], 1) + _ls(s["i_fake"], 0)
        d_is = _ls(s["is_real"], 1) + _ls(s["is_wrong_mask"], 0) + _ls(s["is_fake"], 0)
        d_isg = (
            _ls(s["isg_real"], 1)
            + _ls(s["isg_wrong_mask"], 0)
            + _ls(s["isg_wrong_genes"], 0)
            + _ls(s["isg_fake"], 0)
        )
        total = self.weight_i * d_i + self.weight_is * d_is + self.weight_isg * d_isg
        terms = {"D/total": total, "D/I": d_i, "D/IS": d_is, "D/ISG": d_isg}
        terms |= {f"D_out/{k}": v.mean() for k, v in s.items()}
        return total, {k: v.detach() for k, v in terms.items()}

    def generator(
        self,
        fake_scores: dict[str, torch.Tensor],
        fake_image: torch.Tensor,
        fake_mask: torch.Tensor,
        background: torch.Tensor,
        kl: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total G loss: the three adversarial terms, λ × the eroded-background L1 and, for
        a variational gene code, ``weight_kl`` × its KL term."""
        s = {k: v.float() for k, v in fake_scores.items()}
        g_i, g_is, g_isg = _ls(s["i_fake"], 1), _ls(s["is_fake"], 1), _ls(s["isg_fake"], 1)
        keep = erode_background(fake_mask.detach().float(), self.erosion_px)
        background_l1 = ((fake_image.float() - background.float()).abs() * keep).mean()
        total = (
            self.weight_i * g_i
            + self.weight_is * g_is
            + self.weight_isg * g_isg
            + self.weight_background * background_l1
        )
        terms = {"G/I": g_i, "G/IS": g_is, "G/ISG": g_isg, "G/background_l1": background_l1}
        if kl is not None:
            total = total + self.weight_kl * kl.float()
            terms["G/kl"] = kl
        terms["G/total"] = total
        return total, {k: v.detach() for k, v in terms.items()}


def _ls(scores: torch.Tensor, target: float) -> torch.Tensor:
    """Least-squares term E[(D − target)²]."""
    return ((scores - target) ** 2).mean()


def _heights(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``height_mm=`` for the networks when the batch carries slice heights (a model with
    ``slice_height``: the data only gives them to such a model), else nothing."""
    return {"height_mm": batch["height_mm"]} if "height_mm" in batch else {}
