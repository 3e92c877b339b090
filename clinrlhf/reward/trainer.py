"""Train the reward model on preference pairs with DP-SGD (Opacus), one pair per private sample.

The loop, read top to bottom: encode each pair as one row (clinrlhf.reward.encode), let Opacus
Poisson-sample rows, clip each row's gradient and add Gaussian noise calibrated to the budget
(Abadi et al., 2016, https://arxiv.org/abs/1607.00133), and minimise the Bradley–Terry loss. The
privacy spent is recomputed from the run's (noise, sample rate, steps) with privacy.dp's pure
functions, so anyone can recompute it from the logged params.

What the guarantee covers: the returned model and anything computed from it. The per-step training
loss and accuracy that are logged are averages over private pairs taken outside the mechanism; they
are operational telemetry, not covered by the guarantee (pass a NullTracker to withhold them).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from opacus import PrivacyEngine
from opacus.grad_sample import AbstractGradSampleModule
from opacus.optimizers import DPOptimizerFastGradientClipping
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.lineage.tracker import NullTracker, Tracker
from clinrlhf.reward.backbone import freeze_lower_layers, freeze_unused_parameters, prepare_backbone
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.encode import encode_pairs, pair_rewards
from clinrlhf.reward.ledger import LedgerEntry, PrivacyLedger
from clinrlhf.reward.loss import BradleyTerryLoss
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.raters import RaterFlipLogits
from clinrlhf.reward.result import RewardResult, run_metrics, run_params
from privacy.dp import epsilon_for
from privacy.dp.accounting import quiet_prv
from privacy.dp.ledger import Mechanism

Progress = Callable[[int, int], None]
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

    With a `ledger`, the run is charged to `snapshot_sha256` (the SHA-256 of the data the pairs come
    from) before its first step: BudgetExceededError if the snapshot's cumulative ε would pass the
    ledger's budget (a non-DP run always does). Without one, nothing is checked or recorded.
    """
    config, tracker = config or RewardConfig(), tracker or NullTracker()
    if not pairs:
        raise ValueError("no preference pairs to train on")
    if ledger is not None and not snapshot_sha256:
        raise ValueError("a privacy ledger needs the snapshot_sha256 of the training data")
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # Opacus' hooks on the token embedding see inputs (ids) that need no gradient; harmless.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        torch.manual_seed(config.seed)
        charge = None if ledger is None else _ledger_charge(ledger, snapshot_sha256 or "", config)
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
    delta = config.delta_for(len(pairs))
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
    encoded = encode_pairs(
        tokenizer, pairs, getattr(backbone.config, "n_positions", None), config.rater_buckets
    )
    generator = torch.Generator().manual_seed(config.seed)
    data = TensorDataset(encoded.input_ids, encoded.lengths, encoded.margins, encoded.raters)
    loader = DataLoader(data, batch_size=min(config.batch_size, len(data)), shuffle=True, generator=generator)
    groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    if raters is not None:
        groups.append(
            {"params": list(raters.parameters()), "lr": config.rater_learning_rate, "weight_decay": 0.0}
        )
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, weight_decay=config.weight_decay)
    criterion: nn.Module = BradleyTerryLoss(config.center_rewards_coef)
    module: nn.Module = trained
    engine, noise = None, 0.0
    if config.dp:
        engine, module, optimizer, criterion, loader = _make_private(
            trained, optimizer, criterion, loader, config, delta, generator
        )
        noise = float(optimizer.noise_multiplier)
    rate, total = 1.0 / len(loader), config.epochs * len(loader)
    if charge is not None:  # before any step: a refused run touches no data
        charge(noise, rate, total, delta)
    params = run_params(config, len(pairs), delta, noise, rate, total)
    tracker.log_params(dict(params))

    history: list[dict] = []
    for epoch in range(config.epochs):
        for input_ids, lengths, margins, rater_ids in loader:
            record = _step(
                module,
                optimizer,
                criterion,
                input_ids,
                lengths,
                margins if config.use_margin else None,
                rater_ids,
            )
            history.append(
                record
                | {"step": len(history) + 1, "epoch": epoch, "noise_multiplier": noise, "sample_rate": rate}
            )
            tracker.log_metrics(
                {f"reward.{k}": record[k] for k in ("loss", "accuracy", "batch_size")}, step=len(history)
            )
            if progress is not None:
                progress(len(history), total)

    if isinstance(module, AbstractGradSampleModule):
        module.to_standard_module()  # removes Opacus' hooks from `trained`, which it wraps
    _strip_opacus_attributes(trained)
    epsilon, epsilon_rdp = float("inf"), float("inf")
    if engine is not None:
        _check_accountant(engine, noise, rate, len(history))
        epsilon = epsilon_for(noise, rate, len(history), delta, config.accountant)
        epsilon_rdp = epsilon_for(noise, rate, len(history), delta, "rdp")
    flip_rates = raters.eval().flip_rates(sorted({p.clinician for p in pairs})) if raters else {}
    metrics = run_metrics(history, config.epochs, epsilon if config.dp else None, epsilon_rdp)
    tracker.log_metrics(metrics, step=len(history))
    return RewardResult(
        model=model.eval(),
        epsilon=epsilon,
        delta=delta,
        epsilon_rdp=epsilon_rdp,
        noise_multiplier=noise,
        sample_rate=rate,
        steps=len(history),
        history=history,
        params=params,
        metrics=metrics,
        privacy_unit=config.privacy_unit,
        accountant=config.accountant,
        rater_flip_rates=flip_rates,
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


def _ledger_charge(
    ledger: PrivacyLedger, snapshot_sha256: str, config: RewardConfig
) -> Callable[[float, float, int, float], LedgerEntry]:
    def charge(noise: float, rate: float, steps: int, delta: float) -> LedgerEntry:
        epsilon = epsilon_for(noise, rate, steps, delta, config.accountant)
        return ledger.charge(
            snapshot_sha256,
            Mechanism(noise, rate, steps),
            delta=delta,
            epsilon=epsilon,
            privacy_unit=config.privacy_unit,
            label=f"reward seed={config.seed} target_epsilon={config.target_epsilon} dp={config.dp}",
        )

    return charge


def _make_private(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    loader: DataLoader,
    config: RewardConfig,
    delta: float,
    generator: torch.Generator,
) -> tuple:
    if config.secure_rng:
        try:
            import torchcsprng  # noqa: F401
        except ImportError as err:
            raise RuntimeError(
                "secure_rng needs the torchcsprng package, which is not installed "
                "(and has no build for this torch version)"
            ) from err
    with warnings.catch_warnings():
        # Opacus warns that secure_mode is off; RewardConfig.secure_rng documents that choice.
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant=config.accountant, secure_mode=config.secure_rng)
    with quiet_prv():
        wrapped = engine.make_private_with_epsilon(
            module=model,
            optimizer=optimizer,
            criterion=criterion,
            data_loader=loader,
            target_epsilon=config.target_epsilon,
            target_delta=delta,
            epochs=config.epochs,
            max_grad_norm=config.max_grad_norm,
            poisson_sampling=True,
            grad_sample_mode=config.grad_sample_mode,
            noise_generator=None if config.secure_rng else generator,
        )
    if config.grad_sample_mode == "ghost":  # ghost clipping wraps the criterion too (two backward passes)
        module, dp_optimizer, dp_criterion, dp_loader = wrapped
    else:
        (module, dp_optimizer, dp_loader), dp_criterion = wrapped, criterion
    return engine, module, dp_optimizer, dp_criterion, dp_loader


def _step(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    input_ids: torch.Tensor,
    lengths: torch.Tensor,
    margins: torch.Tensor | None,
    rater_ids: torch.Tensor,
) -> dict:
    optimizer.zero_grad(set_to_none=True)
    if input_ids.shape[0] == 0:
        # An empty Poisson sample is still a step of the mechanism (the accountant charges for it):
        # release the noise alone.
        _noise_only_step(module, optimizer, ghost=isinstance(optimizer, DPOptimizerFastGradientClipping))
        return {"batch_size": 0, "loss": float("nan"), "accuracy": float("nan")}
    rewards, flip_logits = module(input_ids, lengths, rater_ids)
    loss = criterion(rewards, margins, flip_logits)
    loss.backward()
    optimizer.step()
    accuracy = (rewards[:, 0] > rewards[:, 1]).float().mean()
    return {"batch_size": int(input_ids.shape[0]), "loss": float(loss.item()), "accuracy": float(accuracy)}


def _noise_only_step(module: nn.Module, optimizer: torch.optim.Optimizer, ghost: bool) -> None:
    """What a backward pass over zero samples would leave: no per-sample gradients (hooks mode) or a
    zero clipped gradient (ghost mode). Opacus then adds only the noise."""
    for p in module.parameters():
        if p.requires_grad:
            if ghost:
                p.grad = torch.zeros_like(p)
            else:
                p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)  # type: ignore[attr-defined]
    optimizer.step()


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
