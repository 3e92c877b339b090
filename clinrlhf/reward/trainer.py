"""Train the reward model on preference pairs with DP-SGD (Opacus), one pair per private sample.

The loop, read top to bottom: encode each pair as one row (clinrlhf.reward.encode), let Opacus
Poisson-sample rows, clip each row's gradient and add Gaussian noise calibrated to the budget, and
minimise the Bradley–Terry loss. The privacy spent is read back from the accountant's history with
privacy.dp's pure functions, so what is logged can be recomputed from what is logged.

What the guarantee covers: the returned model and anything computed from it. The per-step training
loss and accuracy that are logged are averages over private pairs taken outside the mechanism; they
are operational telemetry, not covered by the guarantee (set a NullTracker to withhold them).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from opacus import PrivacyEngine
from opacus.grad_sample import GradSampleModule
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.lineage.tracker import NullTracker, Tracker
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.encode import as_additive, encode_pairs, pair_attention_mask, pair_position_ids, reward_positions
from clinrlhf.reward.loss import BradleyTerryLoss
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.reward.pairs import PreferencePair
from privacy.dp import PrivacyGuarantee, conv1d_to_linear, epsilon_for, untie_parameters

Progress = Callable[[int, int], None]


@dataclass
class RewardResult:
    model: ScalarHeadModel
    """The trained reward model, in eval mode, with Opacus' hooks removed."""
    epsilon: float
    """ε spent (PRV accountant unless config.accountant says otherwise); inf without DP."""
    delta: float
    epsilon_rdp: float
    """ε from the RDP accountant over the same history, for comparison (looser)."""
    noise_multiplier: float
    sample_rate: float
    steps: int
    history: list[dict] = field(default_factory=list)
    """One record per optimizer step: step, epoch, batch_size, loss, accuracy, noise_multiplier, sample_rate."""
    params: dict[str, str] = field(default_factory=dict)
    """What a tracker received as params: CONTRACT's dp.* names plus reward.* settings."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Final metrics: dp.epsilon, dp.epsilon_rdp, reward.train_loss, reward.train_accuracy."""
    privacy_unit: str = "pair"
    accountant: str = "prv"

    @property
    def guarantee(self) -> PrivacyGuarantee | None:
        """The (ε, δ) statement, or None for a non-private run."""
        if self.noise_multiplier <= 0:
            return None
        return PrivacyGuarantee(self.epsilon, self.delta, self.privacy_unit, self.accountant,  # type: ignore[arg-type]
                                self.noise_multiplier, self.sample_rate, self.steps)


def prepare_backbone(backbone: PreTrainedModel) -> None:
    """Make a transformers backbone Opacus-ready, in place: own copies of tied weights, nn.Linear for
    GPT-2's Conv1D, every parameter trainable (all are used by a forward pass)."""
    untie_parameters(backbone)
    conv1d_to_linear(backbone)
    backbone.requires_grad_(True)


def pair_rewards(model: nn.Module, input_ids: torch.Tensor, lengths: torch.Tensor, *,
                 eager: bool = False) -> torch.Tensor:
    """(B, L) pair rows (clinrlhf.reward.encode) -> (B, 2) rewards, chosen then rejected, in one pass."""
    width = input_ids.shape[1]
    mask = pair_attention_mask(lengths, width)  # (B, 1, L, L)
    if eager:  # eager attention adds its mask to the scores; SDPA takes booleans
        mask = as_additive(mask, next(model.parameters()).dtype)
    per_token = model(input_ids, mask, pair_position_ids(lengths, width))  # (B, L)
    return per_token.gather(1, reward_positions(lengths))


def _is_eager(backbone: PreTrainedModel) -> bool:
    return getattr(backbone.config, "_attn_implementation", "sdpa") == "eager"


def _loader(data: TensorDataset, config: RewardConfig, generator: torch.Generator) -> DataLoader:
    return DataLoader(data, batch_size=min(config.batch_size, len(data)), shuffle=True, generator=generator)


def _make_private(model: nn.Module, optimizer: torch.optim.Optimizer, criterion: nn.Module, loader: DataLoader,
                  config: RewardConfig, delta: float, generator: torch.Generator):
    if config.secure_rng:
        try:
            import torchcsprng  # noqa: F401
        except ImportError as err:
            raise RuntimeError("secure_rng needs the torchcsprng package, which is not installed "
                               "(it has no build for this torch version)") from err
    with warnings.catch_warnings():
        # Opacus warns that secure_mode is off; the config field documents that choice already.
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant=config.accountant, secure_mode=config.secure_rng)
    wrapped = engine.make_private_with_epsilon(
        module=model, optimizer=optimizer, criterion=criterion, data_loader=loader,
        target_epsilon=config.target_epsilon, target_delta=delta, epochs=config.epochs,
        max_grad_norm=config.max_grad_norm, poisson_sampling=True, grad_sample_mode=config.grad_sample_mode,
        noise_generator=None if config.secure_rng else generator,
    )
    if config.grad_sample_mode == "ghost":
        module, dp_optimizer, dp_criterion, dp_loader = wrapped
    else:
        (module, dp_optimizer, dp_loader), dp_criterion = wrapped, criterion
    return engine, module, dp_optimizer, dp_criterion, dp_loader


def _params(config: RewardConfig, n: int, delta: float, noise: float, rate: float, steps: int) -> dict[str, str]:
    params = {
        "reward.pairs": str(n), "reward.epochs": str(config.epochs), "reward.batch_size": str(config.batch_size),
        "reward.learning_rate": str(config.learning_rate), "reward.use_margin": str(config.use_margin),
        "reward.center_rewards_coef": str(config.center_rewards_coef), "reward.seed": str(config.seed),
        "dp.enabled": str(config.dp),
    }
    if config.dp:
        # repr keeps every digit, so epsilon can be recomputed exactly from the logged params.
        params |= {
            "dp.noise_multiplier": repr(noise), "dp.sample_rate": repr(rate), "dp.steps": str(steps),
            "dp.delta": repr(delta), "dp.max_grad_norm": repr(config.max_grad_norm),
            "dp.accountant": config.accountant, "dp.privacy_unit": config.privacy_unit,
            "dp.grad_sample_mode": config.grad_sample_mode, "dp.secure_rng": str(config.secure_rng),
            "dp.target_epsilon": repr(config.target_epsilon),
        }
    return params


def train_reward(pairs: Sequence[PreferencePair], backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                 config: RewardConfig = RewardConfig(), tracker: Tracker = NullTracker(), *,
                 progress: Progress | None = None) -> RewardResult:
    """Train ScalarHeadModel(backbone) on the pairs; `backbone` is modified in place (pass a copy).

    Global RNG state is left as found: the seed drives a forked generator.
    """
    if not pairs:
        raise ValueError("no preference pairs to train on")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return _train(list(pairs), backbone, tokenizer, config, tracker, progress)


def _train(pairs: list[PreferencePair], backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
           config: RewardConfig, tracker: Tracker, progress: Progress | None) -> RewardResult:
    n, delta = len(pairs), config.delta_for(len(pairs))
    prepare_backbone(backbone)
    eager = _is_eager(backbone)
    model = ScalarHeadModel(backbone).train()
    encoded = encode_pairs(tokenizer, pairs, getattr(backbone.config, "n_positions", None))
    generator = torch.Generator().manual_seed(config.seed)
    loader = _loader(TensorDataset(encoded.input_ids, encoded.lengths, encoded.margins), config, generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.0)
    criterion = BradleyTerryLoss(config.center_rewards_coef)
    module: nn.Module = model
    noise, rate, engine = 0.0, 1.0 / len(loader), None
    if config.dp:
        engine, module, optimizer, criterion, loader = _make_private(
            model, optimizer, criterion, loader, config, delta, generator)
        noise = float(optimizer.noise_multiplier)
        rate = 1.0 / len(loader)
    total = config.epochs * len(loader)
    history: list[dict] = []
    for epoch in range(config.epochs):
        for input_ids, lengths, margins in loader:
            record = _step(module, optimizer, criterion, input_ids, lengths, margins if config.use_margin else None,
                           eager)
            record |= {"step": len(history) + 1, "epoch": epoch, "noise_multiplier": noise, "sample_rate": rate}
            history.append(record)
            tracker.log_metrics({"reward.loss": record["loss"], "reward.accuracy": record["accuracy"],
                                 "reward.batch_size": record["batch_size"]}, step=record["step"])
            if progress is not None:
                progress(len(history), total)
    trained = module.to_standard_module() if isinstance(module, GradSampleModule) else module
    _strip_opacus_attributes(trained)
    return _result(trained.eval(), config, history, n, delta, noise, rate, tracker, engine)


def _step(module: nn.Module, optimizer: torch.optim.Optimizer, criterion: nn.Module, input_ids: torch.Tensor,
          lengths: torch.Tensor, margins: torch.Tensor | None, eager: bool) -> dict:
    optimizer.zero_grad(set_to_none=True)
    if input_ids.shape[0] == 0:
        # An empty Poisson sample still counts as a step (the accountant charges for it): release
        # pure noise, as the mechanism prescribes.
        _noise_only_step(module, optimizer)
        return {"batch_size": 0, "loss": float("nan"), "accuracy": float("nan")}
    rewards = pair_rewards(module, input_ids, lengths, eager=eager)  # (B, 2)
    loss = criterion(rewards, margins)
    loss.backward()
    optimizer.step()
    accuracy = (rewards[:, 0] > rewards[:, 1]).float().mean()
    return {"batch_size": int(input_ids.shape[0]), "loss": float(loss.item()), "accuracy": float(accuracy)}


def _noise_only_step(module: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    for p in module.parameters():
        if p.requires_grad:
            p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
            p._norm_sample = torch.zeros(0, dtype=p.dtype, device=p.device)
    optimizer.step()


def _strip_opacus_attributes(model: nn.Module) -> None:
    for p in model.parameters():
        for attr in ("grad_sample", "summed_grad", "_forward_counter", "_current_grad_sample", "_norm_sample"):
            if hasattr(p, attr):
                delattr(p, attr)
        p.grad = None


def _result(model: ScalarHeadModel, config: RewardConfig, history: list[dict], n: int, delta: float,
            noise: float, rate: float, tracker: Tracker, engine: PrivacyEngine | None) -> RewardResult:
    steps = len(history)
    if engine is not None:
        # The accountant's own history must match the run: one entry of (noise, rate, steps).
        (acc_noise, acc_rate, acc_steps), = engine.accountant.history
        assert (acc_noise, acc_rate, acc_steps) == (noise, rate, steps), "accountant history disagrees with the run"
        epsilon = epsilon_for(noise, rate, steps, delta, config.accountant)
        epsilon_rdp = epsilon_for(noise, rate, steps, delta, "rdp")
    else:
        epsilon = epsilon_rdp = float("inf")
    last = [h for h in history if h["epoch"] == config.epochs - 1 and h["batch_size"] > 0]
    weight = sum(h["batch_size"] for h in last) or 1
    metrics = {
        "reward.train_loss": sum(h["loss"] * h["batch_size"] for h in last) / weight,
        "reward.train_accuracy": sum(h["accuracy"] * h["batch_size"] for h in last) / weight,
    }
    if engine is not None:
        metrics |= {"dp.epsilon": epsilon, "dp.epsilon_rdp": epsilon_rdp}
    params = _params(config, n, delta, noise, rate, steps)
    tracker.log_params(params)
    tracker.log_metrics(metrics, step=steps)
    return RewardResult(model=model, epsilon=epsilon, delta=delta, epsilon_rdp=epsilon_rdp, noise_multiplier=noise,
                        sample_rate=rate, steps=steps, history=history, params=params, metrics=metrics,
                        privacy_unit=config.privacy_unit, accountant=config.accountant)
