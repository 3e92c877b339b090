"""One DP-SGD step over a Poisson sample of privacy units: the step the reward model trains with and
the canary game audits (privacy.dp.dirac_canaries), so the audit exercises this code and not a copy.

A unit (a clinician's judgment of a card, a clinician, a patient) may own several rows (pairs).
Opacus' hooks give per-row gradients; they are summed per unit (`sum_by_unit`) and handed to the
DPOptimizer as one "sample" per unit, which clips each unit's sum to C and adds the noise. Rows may
go through in several passes (memory); the per-unit sums carry over between them.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from privacy.dp.units import sum_by_unit


def unit_step(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    passes: Iterable[tuple[torch.Tensor, torch.Tensor]],
    units: int,
) -> None:
    """Step `optimizer` (an Opacus DPOptimizer in hooks mode) once. `passes` yields, per pass over a
    chunk of rows, the chunk's loss (a mean over its rows: Opacus rescales it per row) and `owner`,
    the unit index in [0, units) of each row. With `units == 0` the step releases the noise alone:
    an empty Poisson sample is still a step of the mechanism, and the accountant charges for it."""
    optimizer.zero_grad(set_to_none=True)
    if units == 0:
        noise_only_step(module, optimizer)
        return
    params = [p for p in module.parameters() if p.requires_grad]
    sums: list[torch.Tensor | None] = [None] * len(params)  # allocated by the first pass
    for loss, owner in passes:
        loss.backward()
        for i, p in enumerate(params):
            sums[i] = sum_by_unit(_grad_sample(p), owner, units, out=sums[i])
            p.grad_sample = None  # type: ignore[attr-defined]  # the next pass starts afresh
    for p, per_unit in zip(params, sums, strict=True):
        p.grad_sample = per_unit  # type: ignore[attr-defined]  # one "sample" per unit
    optimizer.step()


def noise_only_step(module: nn.Module, optimizer: torch.optim.Optimizer, ghost: bool = False) -> None:
    """What a backward pass over zero samples would leave: no per-sample gradients (hooks mode) or a
    zero clipped gradient (ghost mode). Opacus then adds only the noise."""
    for p in module.parameters():
        if p.requires_grad:
            if ghost:
                p.grad = torch.zeros_like(p)
            else:
                p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)  # type: ignore[attr-defined]
    optimizer.step()


def _grad_sample(p: torch.Tensor) -> torch.Tensor:
    """A parameter's per-row gradients from the last backward pass, as one (rows, ...) tensor."""
    sample = p.grad_sample  # type: ignore[attr-defined]
    return torch.cat(sample) if isinstance(sample, list) else sample
