"""The one-run canary game (privacy.dp.canary_game) played against the project's Opacus mechanism with gradient-space
Dirac canaries (Nasr et al., 2023, https://arxiv.org/abs/2302.07956; Steinke, Nasr & Jagielski,
2023, https://arxiv.org/abs/2305.08846, section 7).

Why Dirac canaries: an input-space canary on a real model moves a shared gradient, so most of its
clipped norm is lost among the other examples and the game on the final model is weak (the old
audit of a tiny reward model could not prove more than 3.4 even with every guess right). Here
canary i owns one coordinate of the model, and every row of canary i has gradient
`row_norm · C · e_i` and nothing else. So whatever the mechanism lets through of canary i lands,
undiluted, on coordinate i, the only noise there is the mechanism's own, and the final value of
coordinate i is the best linear score for "was canary i trained on". The game then has about the
power the accounting allows: a correct run's bound stays below its reported ε, and a run that lets
through more than its accounting says (noise too small, clipping off, a unit clipped pair by pair)
is caught, its bound above the ε it reports.

What is real: `privacy.dp.opacus_engine.make_private` (the wrapper the reward model trains through:
noise calibrated to the target ε by Opacus, Poisson sampling from the mechanism's generator,
Opacus' DPOptimizer clipping and noising), per-row gradients from Opacus' hooks, and and the step itself
(`privacy.dp.unit_step`, the very function the reward trainer steps with: per-row gradients summed
per unit before the DPOptimizer clips each sum as one sample). What is the auditor's: the model (one
coordinate per canary), the loss, plain SGD at rate 1 (so the final coordinate is the sum of the
noisy gradients), and the game (which canaries are included, the guesses).
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from privacy.dp.accounting import epsilon_for
from privacy.dp.canary_game import GameOutcome, epsilon_lower_bound, guess_from_scores
from privacy.dp.opacus_config import DPConfig
from privacy.dp.opacus_engine import PrivateTraining, make_private
from privacy.dp.unit_step import unit_step

Tamper = Callable[[PrivateTraining], None]
"""Changes the mechanism after it is built and calibrated (tests' broken controls): the run still
reports the ε it was calibrated to."""


@dataclass(frozen=True)
class DiracGame:
    canaries: int = 5000
    """m: canaries planted, each included with probability 1/2 (the included ones are the data)."""
    rows_per_unit: int = 1
    """Rows (pairs) of each canary unit: 1 for the pair unit; several for a clinician unit, whose
    rows' gradients are summed and the sum clipped as one sample."""
    row_norm: float = 8.0
    """Each row's gradient norm, in multiples of C: above 1, so clipping binds (a unit of k rows
    has norm k·row_norm·C before clipping)."""
    batches_per_epoch: int = 2
    """1/q: the Poisson sample rate is q = 1/batches_per_epoch of the units."""
    epochs: int = 10
    """Steps = epochs · batches_per_epoch."""
    k_plus: int = 100
    """Guess "included" for the k₊ highest scores (fixed before the scores are seen)."""
    k_minus: int = 0
    """Guess "excluded" for the k₋ lowest."""
    confidence: float = 0.95
    seed: int = 0
    """Seeds the game (which canaries are included) and, under DPConfig.reproducible_noise only,
    the mechanism."""

    def __post_init__(self) -> None:
        if self.canaries < 2 or self.rows_per_unit < 1 or self.batches_per_epoch < 1 or self.epochs < 1:
            raise ValueError("need canaries >= 2 and rows_per_unit, batches_per_epoch, epochs >= 1")
        if self.row_norm <= 0:
            raise ValueError(f"row_norm must be positive, got {self.row_norm}")
        if self.k_plus < 0 or self.k_minus < 0 or self.k_plus + self.k_minus > self.canaries:
            raise ValueError("need k_plus, k_minus >= 0 and k_plus + k_minus <= canaries")


@dataclass(frozen=True)
class DiracGameResult:
    outcome: GameOutcome
    epsilon_lower_bound: float
    """With probability `confidence`, the mechanism's true ε (at `delta`) is at least this."""
    reported_epsilon: float
    """What the accounting says the run spent: from the calibrated (noise, rate, steps)."""
    delta: float
    noise_multiplier: float
    """As calibrated, before any tampering."""
    sample_rate: float
    steps: int
    included: int
    """Canary units trained on."""

    @property
    def caught(self) -> bool:
        """The run is shown to spend more than it reports: a bug in the mechanism or its accounting."""
        return self.epsilon_lower_bound > self.reported_epsilon


def quarter_noise(private: PrivateTraining) -> None:
    """Broken control: the noise is divided by 4 after calibration (the run reports the calibrated ε)."""
    private.optimizer.noise_multiplier /= 4  # type: ignore[attr-defined]


def no_clipping(private: PrivateTraining) -> None:
    """Broken control: every per-sample gradient passes at full norm; the noise stays σ·C."""
    optimizer = private.optimizer
    clip = optimizer.clip_and_accumulate  # type: ignore[attr-defined]

    def unclipped() -> None:
        norm = optimizer.max_grad_norm  # type: ignore[attr-defined]
        optimizer.max_grad_norm = float("inf")  # type: ignore[attr-defined]
        try:
            clip()
        finally:
            optimizer.max_grad_norm = norm  # type: ignore[attr-defined]

    optimizer.clip_and_accumulate = unclipped  # type: ignore[attr-defined]


class _Coordinates(nn.Module):
    """One trainable coordinate per canary; a row of canary i reads coordinate i."""

    def __init__(self, canaries: int) -> None:
        super().__init__()
        self.coordinate = nn.Embedding(canaries, 1)
        nn.init.zeros_(self.coordinate.weight)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.coordinate(ids).squeeze(-1)


def play_dirac_game(dp: DPConfig, setup: DiracGame, *, tamper: Tamper | None = None) -> DiracGameResult:
    """Play the game once: train on the included canaries through make_private, score each canary by
    its coordinate, guess, and bound ε. `dp.target_delta` must be set (δ must not depend on how
    many canaries the coin included)."""
    if not dp.enabled or dp.target_delta is None:
        raise ValueError("the canary game needs a DP run with a fixed target_delta")
    game = random.Random(setup.seed)
    included = [game.random() < 0.5 for _ in range(setup.canaries)]
    units = torch.tensor([i for i, x in enumerate(included) if x], dtype=torch.long)
    if len(units) == 0:
        raise ValueError("the coin included no canary; use more canaries")
    model = _Coordinates(setup.canaries)
    batch = -(-len(units) // setup.batches_per_epoch)  # ceil: the loader then has 1/q batches
    loader = DataLoader(TensorDataset(torch.arange(len(units))), batch_size=batch, shuffle=True)
    private = make_private(
        module=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=1.0),
        data_loader=loader,
        config=dp,
        delta=dp.target_delta,
        epochs=setup.epochs,
        seed=setup.seed,
    )
    noise, rate = private.noise_multiplier, private.sample_rate
    steps = setup.epochs * len(private.loader)
    reported = epsilon_for(noise, rate, steps, dp.target_delta, dp.accountant)
    if tamper is not None:
        tamper(private)
    pull = setup.row_norm * dp.max_grad_norm
    for _ in range(setup.epochs):
        for (positions,) in private.loader:
            _step(private, units[positions], setup.rows_per_unit, pull)
    scores = model.coordinate.weight.detach().squeeze(-1).tolist()
    outcome = guess_from_scores(scores, included, setup.k_plus, setup.k_minus)
    bound = epsilon_lower_bound(
        outcome.m, outcome.guesses, outcome.correct, dp.target_delta, setup.confidence
    )
    return DiracGameResult(outcome, bound, reported, dp.target_delta, noise, rate, steps, len(units))


def _step(private: PrivateTraining, canaries: torch.Tensor, rows_per_unit: int, pull: float) -> None:
    """One DP-SGD step on a Poisson sample of canary units, through the reward model's own step
    (privacy.dp.unit_step). The loss -pull·mean(coordinate) gives each row the gradient -pull·e_i
    (Opacus rescales a mean loss per row); the rows' gradients are summed per unit, so the
    DPOptimizer clips each unit's sum as one sample."""
    rows = canaries.repeat_interleave(rows_per_unit)
    owner = torch.arange(len(canaries)).repeat_interleave(rows_per_unit)

    def passes() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        with warnings.catch_warnings():
            # Opacus' hook on the embedding sees inputs (ids) that need no gradient; harmless.
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            yield -pull * private.module(rows).mean(), owner

    unit_step(private.module, private.optimizer, passes(), len(canaries))
