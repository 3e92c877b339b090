"""The one place Opacus is asked to make a training loop private, and where its randomness comes from.

Why the randomness matters: DP-SGD's guarantee holds against someone who knows everything but the
noise and which units each Poisson batch took. If those come from a generator seeded by a number
that is logged (the run's public seed), anyone holding the logged params, the other units and the
starting model can replay the run with and without a target unit, and the noise protects nothing.
So by default both are drawn from one `torch.Generator` seeded with 64 bits from the OS's CSPRNG
(`secrets`), used only here and never logged or stored. The public seed keeps driving
initialisation and data order outside the mechanism. docs/privacy.md states what this rests on.

`DPConfig.reproducible_noise` (debugging only: not a DP release) seeds that generator from the
public seed instead; `DPConfig.secure_mode` hands the choice to Opacus' torchcsprng mode. Opacus
warns "Secure RNG turned off" unless secure_mode: that warning is true (torch's generator is not
itself a CSPRNG, only its seed is secret) and is left to reach the user.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import torch
from opacus import PrivacyEngine
from torch import nn
from torch.utils.data import DataLoader

from privacy.dp.accounting import quiet_prv
from privacy.dp.opacus_config import NOISE_TAG, DPConfig, NoiseSource

__all__ = ["NOISE_TAG", "PrivateTraining", "make_private", "mechanism_generator"]


@dataclass
class PrivateTraining:
    """What Opacus hands back: use these instead of the objects passed in."""

    engine: PrivacyEngine
    module: nn.Module
    """GradSampleModule around the model (per-sample gradients)."""
    optimizer: torch.optim.Optimizer
    """DPOptimizer: clips, adds noise, and records each step with the accountant."""
    criterion: nn.Module | None
    """Ghost clipping's two-pass criterion; the one passed in under hooks."""
    loader: DataLoader
    """Poisson sampling at rate 1/len(loader), from the mechanism's generator."""
    noise: NoiseSource

    @property
    def noise_multiplier(self) -> float:
        return float(self.optimizer.noise_multiplier)  # type: ignore[attr-defined]

    @property
    def sample_rate(self) -> float:
        return 1.0 / len(self.loader)


def _secret_seed() -> int:
    """64 bits from the OS's CSPRNG; the caller keeps it in memory only."""
    return secrets.randbits(64)


def mechanism_generator(config: DPConfig, seed: int) -> torch.Generator | None:
    """The generator of the noise and the Poisson sampling: CSPRNG-seeded, or (reproducible_noise)
    seeded from the public `seed`; None under secure_mode, where Opacus brings its own."""
    if config.secure_mode:
        return None
    return torch.Generator().manual_seed(seed if config.reproducible_noise else _secret_seed())


def make_private(
    *,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    data_loader: DataLoader,
    config: DPConfig,
    delta: float,
    epochs: int,
    seed: int,
    criterion: nn.Module | None = None,
    grad_sample_mode: str = "hooks",
) -> PrivateTraining:
    """Opacus' make_private_with_epsilon with Poisson sampling, noise calibrated to
    `config.target_epsilon` at `delta` over `epochs` passes of `data_loader` (whose length sets the
    sample rate; its own generator is not used by the mechanism). `seed` is read only under
    `config.reproducible_noise`."""
    generator = mechanism_generator(config, seed)
    if config.secure_mode:
        try:
            import torchcsprng  # noqa: F401
        except ImportError as err:
            raise RuntimeError(
                "dp.secure_mode needs the torchcsprng package, which is not installed "
                "(and has no build for this torch version); the default noise is already CSPRNG-seeded"
            ) from err
    engine = PrivacyEngine(accountant=config.accountant, secure_mode=config.secure_mode)
    # Opacus' Poisson loader samples with the loader's generator: hand it one built on ours.
    sampled = DataLoader(
        data_loader.dataset, batch_size=data_loader.batch_size, shuffle=True, generator=generator
    )
    with quiet_prv():
        wrapped = engine.make_private_with_epsilon(
            module=module,
            optimizer=optimizer,
            criterion=criterion if criterion is not None else nn.CrossEntropyLoss(),
            data_loader=sampled,
            target_epsilon=config.target_epsilon,
            target_delta=delta,
            epochs=epochs,
            max_grad_norm=config.max_grad_norm,
            poisson_sampling=True,
            grad_sample_mode=grad_sample_mode,
            noise_generator=generator,
        )
    if grad_sample_mode == "ghost":  # ghost clipping wraps the criterion too (two backward passes)
        dp_module, dp_optimizer, dp_criterion, dp_loader = wrapped
    else:
        (dp_module, dp_optimizer, dp_loader), dp_criterion = wrapped, criterion
    if generator is not None and getattr(dp_loader.batch_sampler, "generator", None) is not generator:
        raise RuntimeError("Opacus' Poisson sampler does not use the mechanism's generator")
    return PrivateTraining(engine, dp_module, dp_optimizer, dp_criterion, dp_loader, config.noise)
