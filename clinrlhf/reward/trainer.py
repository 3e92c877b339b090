"""Train the reward model on preference pairs with DP-SGD (Opacus), per judgment, pair, clinician or
patient.

The loop, read top to bottom: encode each pair as one row (clinrlhf.reward.encode), let Opacus
Poisson-sample rows, clip each row's gradient and add Gaussian noise calibrated to the budget
(Abadi et al., 2016, https://arxiv.org/abs/1607.00133), and minimise the Bradley–Terry loss. The
privacy spent is recomputed from the run's (noise, sample rate, steps) with privacy.dp's pure
functions, so anyone can recompute it from the logged params.

Under a judgment (the default), clinician or patient unit (user-level DP, privacy.dp.units) the
same Opacus machinery runs over *units*: each unit's pairs are first bounded to `max_pairs_per_unit`, Opacus' Poisson loader
samples unit ids, every pair of a sampled unit is encoded in the batch, and between the backward
pass and the optimizer step the per-pair gradients are summed per unit. Opacus' DPOptimizer then
clips each unit's sum as one sample, adds N(0, σ²C²) and averages over the expected units per
batch; its accountant records (σ, q_units) at every step, exactly as for pairs.

The noise and the Poisson sampling come from a generator seeded from the OS's CSPRNG that is never
logged (privacy.dp.opacus_engine); `config.seed` drives only initialisation, data order and which
pairs a bounded unit keeps. The run is tagged `clinrlhf.dp_noise` ("secure", or "reproducible" under
the debugging-only `dp.reproducible_noise`, which is not a DP release).

What the guarantee covers: the returned model and anything computed from it. The per-step training
loss and accuracy that are logged are averages over private pairs taken outside the mechanism; they
are operational telemetry, not covered by the guarantee (pass a NullTracker to withhold them).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from opacus import PrivacyEngine
from opacus.grad_sample import AbstractGradSampleModule
from opacus.optimizers import DPOptimizerFastGradientClipping
from torch import nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, TensorDataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.lineage.tracker import NullTracker, Tracker
from clinrlhf.reward.backbone import freeze_lower_layers, freeze_unused_parameters, prepare_backbone
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.encode import EncodedPairs, encode_pairs, pair_rewards
from clinrlhf.reward.ledger import LedgerEntry, PrivacyLedger
from clinrlhf.reward.loss import BradleyTerryLoss
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.raters import RaterFlipLogits, pair_accuracies
from clinrlhf.reward.result import RewardResult, run_metrics, run_params
from clinrlhf.reward.units import UnitRows, bound_pairs, count_units
from privacy.dp import epsilon_for
from privacy.dp.opacus_config import NoiseSource
from privacy.dp.opacus_engine import NOISE_TAG, make_private
from privacy.dp.renyi_filter import Mechanism
from privacy.dp.unit_step import noise_only_step, unit_step

Progress = Callable[[int, int], None]
RATER_ACCURACIES_ARTIFACT = "raters/accuracies.json"
_OPACUS_ATTRS = ("grad_sample", "summed_grad", "_forward_counter", "_current_grad_sample", "_norm_sample")


def train_reward(
    pairs: Sequence[PreferencePair],
    backbone: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: RewardConfig | None = None,
    tracker: Tracker | None = None,
    *,
    progress: Progress | None = None,
    ledger: PrivacyLedger | None = None,
    snapshot_sha256: str | None = None,
) -> RewardResult:
    """Train ScalarHeadModel(backbone) on the pairs. `backbone` is modified in place (pass a copy).

    Defaults: RewardConfig() and a NullTracker. The seed drives a forked RNG, so the caller's
    global RNG state is left as found.

    With a `ledger`, the run is charged to its privacy unit's odometer (recorded against
    `snapshot_sha256`, the SHA-256 of the data the pairs come from) before its first step:
    BudgetExceededError if the composed ε would pass the ledger's budget (a non-DP run always does)
    or δ > 1/n for its n units. Without one, nothing is checked or recorded.
    """
    config, tracker = config or RewardConfig(), tracker or NullTracker()
    if not pairs:
        raise ValueError("no preference pairs to train on")
    if ledger is not None and not snapshot_sha256:
        raise ValueError("a privacy ledger needs the snapshot_sha256 of the training data")
    if ledger is not None and config.dp.target_delta is None:
        # One δ per deployment: the run is calibrated at the δ its odometer composes at, so the
        # (ε, δ) the run reports and the deployment's composed figure speak of the same δ.
        config = replace(config, dp=replace(config.dp, target_delta=ledger.delta))
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # Opacus' hooks on the token embedding see inputs (ids) that need no gradient; harmless.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        torch.manual_seed(config.seed or 0)
        n_units = count_units(pairs, config.privacy_unit)  # what δ ≤ 1/n is checked against
        charge = None if ledger is None else _ledger_charge(ledger, snapshot_sha256 or "", config, n_units)
        return _train(list(pairs), backbone, tokenizer, config, tracker, progress, charge)


def _train(
    pairs: list[PreferencePair],
    backbone: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: RewardConfig,
    tracker: Tracker,
    progress: Progress | None,
    charge: Callable[[float, float, int, float], object] | None = None,
) -> RewardResult:
    supplied = len(pairs)
    pairs = bound_pairs(pairs, config.privacy_unit, config.max_pairs_per_unit, config.seed or 0)
    run = prepare_training(pairs, backbone, tokenizer, config)
    noise, rate, total = run.noise_multiplier, run.sample_rate, config.epochs * len(run.loader)
    if charge is not None:  # before any step: a refused run touches no data
        charge(noise, rate, total, run.delta)
    n_units = len(run.units) if run.units is not None else None
    params = run_params(config, supplied, len(pairs), n_units, run.delta, noise, rate, total)
    tracker.log_params(dict(params))
    if run.noise is not None:
        tracker.set_tags({NOISE_TAG: run.noise})
    # No per-clinician value is logged here: keyed by the pairs' clinicians it would publish who took
    # part. The caller releases them keyed by a roster (clinrlhf.reward.rater_release).

    history: list[dict] = []
    for epoch in range(config.epochs):
        for batch in run.loader:
            record = run.step(batch)
            history.append(
                record
                | {"step": len(history) + 1, "epoch": epoch, "noise_multiplier": noise, "sample_rate": rate}
            )
            tracker.log_metrics(
                {f"reward.{k}": record[k] for k in ("loss", "accuracy", "batch_size", "units")},
                step=len(history),
            )
            if progress is not None:
                progress(len(history), total)

    run.finish()
    epsilon, epsilon_rdp = float("inf"), float("inf")
    if run.engine is not None:
        _check_accountant(run.engine, noise, rate, len(history))
        epsilon = epsilon_for(noise, rate, len(history), run.delta, config.dp.accountant)
        epsilon_rdp = epsilon_for(noise, rate, len(history), run.delta, "rdp")
    raters = run.trained.raters
    flip_rates = raters.eval().flip_rates(sorted({p.clinician for p in pairs})) if raters else {}
    metrics = run_metrics(history, config.epochs, epsilon if config.dp.enabled else None, epsilon_rdp)
    tracker.log_metrics(metrics, step=len(history))
    return RewardResult(
        model=run.trained.reward.eval(),
        epsilon=epsilon,
        delta=run.delta,
        epsilon_rdp=epsilon_rdp,
        noise_multiplier=noise,
        sample_rate=rate,
        steps=len(history),
        history=history,
        params=params,
        metrics=metrics,
        privacy_unit=config.privacy_unit,
        accountant=config.dp.accountant,
        rater_flip_rates=flip_rates,
        rater_accuracies=dict(run.rater_accuracies),
        units=n_units if n_units is not None else len(pairs),
        max_pairs_per_unit=config.max_pairs_per_unit if config.privacy_unit != "pair" else None,
    )


class _PairModel(nn.Module):
    """What DP-SGD trains: the reward model and, optionally, the raters' flip logits, as one module
    so that one pair's whole gradient (rewards and its rater's logit) is clipped together."""

    def __init__(self, reward: ScalarHeadModel, raters: RaterFlipLogits | None, eager: bool) -> None:
        super().__init__()
        self.reward, self.raters, self.eager = reward, raters, eager

    def forward(
        self, input_ids: torch.Tensor, lengths: torch.Tensor, rater_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        rewards = pair_rewards(self.reward, input_ids, lengths, eager=self.eager)  # (B, 2)
        return rewards, None if self.raters is None else self.raters(rater_ids)


@dataclass
class TrainingRun:
    """One training run, ready for its first step: what `train_reward` loops over, exposed so that
    tests and benchmarks can take single steps of exactly the same mechanism."""

    trained: _PairModel
    """The reward model (and flip logits) being trained."""
    module: nn.Module
    """`trained`, or Opacus' GradSampleModule around it under DP."""
    optimizer: torch.optim.Optimizer
    """AdamW, or Opacus' DPOptimizer around it (clipping, noise, accounting hook)."""
    criterion: nn.Module
    loader: DataLoader
    """Batches of rows (pair unit) or of unit ids (clinician, patient); Poisson under DP."""
    encoded: EncodedPairs
    units: UnitRows | None
    """The rows of each clinician or patient; None when every row is its own sample."""
    engine: PrivacyEngine | None
    delta: float
    config: RewardConfig
    rater_accuracies: dict[str, float] = field(default_factory=dict)
    """Each clinician's accuracy the loss reads their pairs through (RewardConfig.rater_weighting
    "dawid-skene", clamped); empty under "none"."""
    noise: NoiseSource | None = None
    """Where the DP noise and sampling come from ("secure" or "reproducible"); None without DP."""
    average: AveragedModel | None = None
    """The moving average of the reward model's weights (RewardConfig.ema_decay), updated after
    every step and copied into `trained.reward` by `finish`; None keeps the last iterate."""

    @property
    def noise_multiplier(self) -> float:
        return float(getattr(self.optimizer, "noise_multiplier", 0.0)) if self.engine else 0.0

    @property
    def sample_rate(self) -> float:
        return 1.0 / len(self.loader)

    def step(self, batch: Sequence[torch.Tensor]) -> dict:
        """One optimizer step on a batch from `loader`. -> {batch_size, units, loss, accuracy}"""
        if self.units is not None:
            record = _unit_step(self, self.units, batch[0])
        else:
            input_ids, lengths, margins, rater_ids, accuracy = batch
            used = margins if self.config.use_margin else None
            weights = accuracy if self.rater_accuracies else None
            record = _step(
                self.module, self.optimizer, self.criterion, input_ids, lengths, used, rater_ids, weights
            )
        if self.average is not None:
            self.average.update_parameters(self.trained.reward)
        return record

    def finish(self) -> None:
        """Remove Opacus' hooks and per-sample state, so PPO can copy and train the model normally;
        under `ema_decay`, leave the averaged weights in the reward model."""
        if isinstance(self.module, AbstractGradSampleModule):
            self.module.to_standard_module()  # removes Opacus' hooks from `trained`, which it wraps
        _strip_opacus_attributes(self.trained)
        if self.average is not None:
            with torch.no_grad():
                for mine, averaged in zip(
                    self.trained.reward.parameters(), self.average.module.parameters(), strict=True
                ):
                    mine.copy_(averaged)


def ema_with_warmup(
    decay: float,
) -> Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor], torch.Tensor | int], None]:
    """AveragedModel's update for an exponential moving average whose decay after n updates is
    min(decay, (1 + n) / (10 + n)) (the num_updates rule of TensorFlow's ExponentialMovingAverage).
    Why not a constant decay: the average starts at the first iterate, and at 0.99 a run of a few
    dozen steps would return little more than that; with the warm-up a short run averages its
    recent iterates, and a long one (the pipeline's thousand steps) ends at `decay` all the same."""

    def update(
        averaged: Sequence[torch.Tensor], current: Sequence[torch.Tensor], n_averaged: torch.Tensor | int
    ) -> None:
        n = float(n_averaged)
        torch._foreach_lerp_(list(averaged), list(current), 1.0 - min(decay, (1.0 + n) / (10.0 + n)))

    return update


def prepare_training(
    pairs: Sequence[PreferencePair],
    backbone: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: RewardConfig,
) -> TrainingRun:
    """Build the model, data and (under DP) Opacus' wrappers, with noise calibrated to the budget.
    `pairs` must already be bounded per unit (clinrlhf.reward.units.bound_pairs); `backbone` is
    modified in place. Call under a seeded RNG (initialisation); the DP noise and Poisson sampling
    use their own generator (privacy.dp.opacus_engine), not the global one."""
    units = UnitRows.of(pairs, config.privacy_unit) if _per_unit(config) else None
    delta = config.delta_for(len(units) if units is not None else len(pairs))
    prepare_backbone(backbone)
    if config.trainable_blocks is not None:
        freeze_lower_layers(backbone, config.trainable_blocks)
    eager = getattr(backbone.config, "_attn_implementation", "sdpa") == "eager"
    model = ScalarHeadModel(backbone).train()
    freeze_unused_parameters(model, eager=eager)
    raters = (
        RaterFlipLogits(config.rater_buckets, config.rater_initial_flip) if config.rater_buckets else None
    )
    trained = _PairModel(model, raters, eager)
    accuracies = _rater_accuracies(pairs, config)
    encoded = encode_pairs(
        tokenizer, pairs, getattr(backbone.config, "n_positions", None), config.rater_buckets, accuracies
    )
    generator = torch.Generator().manual_seed(config.seed or 0)
    loader = _loader(encoded, units, config, generator)
    groups: list[dict[str, Any]] = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    if raters is not None:
        groups.append(
            {"params": list(raters.parameters()), "lr": config.rater_learning_rate, "weight_decay": 0.0}
        )
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, weight_decay=config.weight_decay)
    criterion: nn.Module = BradleyTerryLoss(config.center_rewards_coef)
    module: nn.Module = trained
    # Copied before Opacus wraps the model, so the average carries none of its hooks.
    average = (
        None
        if config.ema_decay is None
        else AveragedModel(model, multi_avg_fn=ema_with_warmup(config.ema_decay), use_buffers=False)
    )
    if not config.dp.enabled:
        return TrainingRun(
            trained, module, optimizer, criterion, loader, encoded, units, None, delta, config, accuracies, None, average
        )  # fmt: skip
    private = make_private(
        module=trained,
        optimizer=optimizer,
        criterion=criterion,
        data_loader=loader,
        config=config.dp,
        delta=delta,
        epochs=config.epochs,
        seed=config.seed or 0,
        grad_sample_mode=config.grad_sample_mode,
    )
    return TrainingRun(
        trained,
        private.module,
        private.optimizer,
        private.criterion or criterion,
        private.loader,
        encoded,
        units,
        private.engine,
        delta,
        config,
        accuracies,
        private.noise,
        average,
    )


def _rater_accuracies(pairs: Sequence[PreferencePair], config: RewardConfig) -> dict[str, float]:
    """The accuracy of each clinician in `pairs` under rater_weighting "dawid-skene"; {} under "none"."""
    if config.rater_weighting == "none":
        return {}
    if config.rater_accuracies is None:
        raise ValueError(
            "rater_weighting 'dawid-skene' needs rater_accuracies, each clinician's Dawid–Skene accuracy: "
            "clinrlhf.reward.raters.with_rater_accuracies(config, judgments) estimates them"
        )
    return pair_accuracies(pairs, config.rater_accuracies)


def _per_unit(config: RewardConfig) -> bool:
    """Whether rows are grouped into judgment, clinician or patient samples. A non-private run has no samples
    to group: it trains on the bounded pairs, row by row, as a like-for-like baseline."""
    return config.dp.enabled and config.privacy_unit != "pair"


def _loader(
    encoded: EncodedPairs, units: UnitRows | None, config: RewardConfig, generator: torch.Generator
) -> DataLoader:
    """Rows (pair unit) or unit ids (judgment, clinician, patient), in batches of the expected size,
    shuffled by the public seed; under DP only its length is used (the rate, 1/len(loader))."""
    if units is None:
        data = TensorDataset(
            encoded.input_ids, encoded.lengths, encoded.margins, encoded.raters, encoded.accuracy
        )
        batch = config.batch_size
    else:
        data, batch = TensorDataset(torch.arange(len(units))), config.units_per_batch
    return DataLoader(data, batch_size=min(batch, len(data)), shuffle=True, generator=generator)


def _ledger_charge(
    ledger: PrivacyLedger, snapshot_sha256: str, config: RewardConfig, n_units: int
) -> Callable[[float, float, int, float], LedgerEntry]:
    def charge(noise: float, rate: float, steps: int, delta: float) -> LedgerEntry:
        epsilon = epsilon_for(noise, rate, steps, delta, config.dp.accountant)
        return ledger.charge(
            snapshot_sha256,
            Mechanism(noise, rate, steps),
            delta=delta,
            epsilon=epsilon,
            n_units=n_units,  # bounding keeps every unit, so n is the units of the pairs supplied
            privacy_unit=config.privacy_unit,
            label=f"reward target_epsilon={config.dp.target_epsilon} dp={config.dp.enabled}",
        )

    return charge


def _step(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    input_ids: torch.Tensor,
    lengths: torch.Tensor,
    margins: torch.Tensor | None,
    rater_ids: torch.Tensor,
    accuracy: torch.Tensor | None = None,
) -> dict:
    optimizer.zero_grad(set_to_none=True)
    if input_ids.shape[0] == 0:
        # An empty Poisson sample is still a step of the mechanism (the accountant charges for it):
        # release the noise alone.
        noise_only_step(module, optimizer, ghost=isinstance(optimizer, DPOptimizerFastGradientClipping))
        return {"batch_size": 0, "units": 0, "loss": float("nan"), "accuracy": float("nan")}
    rewards, flip_logits = module(input_ids, lengths, rater_ids)
    loss = criterion(rewards, margins, flip_logits, accuracy)
    loss.backward()
    optimizer.step()
    accuracy = (rewards[:, 0] > rewards[:, 1]).float().mean()
    rows = int(input_ids.shape[0])
    return {"batch_size": rows, "units": rows, "loss": float(loss.item()), "accuracy": float(accuracy)}


def _unit_step(run: TrainingRun, units: UnitRows, unit_ids: torch.Tensor) -> dict:
    """One DP step over a Poisson sample of units (privacy.dp.unit_step: per-pair gradients summed
    per unit, each unit's sum clipped to C, noise added). The rows go through in passes of
    `rows_per_pass`; the per-unit sums carry over between passes."""
    rows, owner = units.gather(unit_ids)
    stats = {"loss": 0.0, "correct": 0.0}

    def passes() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        enc, width = run.encoded, run.config.rows_per_pass
        for start in range(0, len(rows), width):
            chunk, who = rows[start : start + width], owner[start : start + width]
            margins = enc.margins[chunk] if run.config.use_margin else None
            accuracy = enc.accuracy[chunk] if run.rater_accuracies else None
            rewards, flip_logits = run.module(enc.input_ids[chunk], enc.lengths[chunk], enc.raters[chunk])
            loss = run.criterion(rewards, margins, flip_logits, accuracy)
            yield loss, who
            stats["loss"] += float(loss.item()) * len(chunk)
            stats["correct"] += float((rewards[:, 0] > rewards[:, 1]).float().sum())

    unit_step(run.module, run.optimizer, passes(), len(unit_ids) if len(rows) else 0)
    n = len(rows)
    if n == 0:
        return {"batch_size": 0, "units": 0, "loss": float("nan"), "accuracy": float("nan")}
    return {
        "batch_size": n,
        "units": len(unit_ids),
        "loss": stats["loss"] / n,
        "accuracy": stats["correct"] / n,
    }


def _strip_opacus_attributes(model: nn.Module) -> None:
    """Leave no per-sample state on the parameters, so PPO can copy and train the model normally."""
    for p in model.parameters():
        for attr in _OPACUS_ATTRS:
            if hasattr(p, attr):
                delattr(p, attr)
        p.grad = None


def _check_accountant(engine: PrivacyEngine, noise: float, rate: float, steps: int) -> None:
    """The reported epsilon is recomputed from (noise, rate, steps); Opacus' accountant, which
    recorded every optimizer step as it happened, must have seen exactly that mechanism."""
    if engine.accountant.history != [(noise, rate, steps)]:
        raise RuntimeError(
            f"the privacy accountant recorded {engine.accountant.history}, "
            f"but the run took {steps} steps at noise {noise} and rate {rate}"
        )
