"""Train a policy with DPO on the same preference pairs the reward model learns from.

The reference is the SFT policy: its log-probabilities of every chosen and rejected response are
computed once, before training, and never change. The policy starts as a copy of it.

With `DPOConfig.dp.enabled`, training is DP-SGD through Opacus with one preference pair as one sample:
the wrapped module scores a pair's chosen and rejected responses in one forward pass (the policy is
called twice, and Opacus sums the per-sample gradients of both uses), so each pair's gradient is
clipped as a whole. Noise is calibrated to `dp.target_epsilon` by Opacus, drawn (with the Poisson
sampling) from a CSPRNG-seeded generator by the one wrapper the reward model uses too
(privacy.dp.opacus_engine), the spend is accounted by privacy.dp (the same accountants as the reward
model) and, given a ledger, charged against the snapshot before the first step, exactly like a
reward run (clinrlhf.reward.ledger). The privacy unit is one pair: a review that yields several
pairs is protected at k times the ε for k pairs (group privacy), unlike the reward model's default.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
from opacus.grad_sample import AbstractGradSampleModule
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.dpo.config import DPOConfig
from clinrlhf.dpo.loss import dpo_loss, log_ratio_margin, sequence_logps
from clinrlhf.lineage.tracker import NullTracker, Tracker
from clinrlhf.reward.ledger import PrivacyLedger
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.sft.trainer import encode_examples
from privacy.dp import Mechanism, conv1d_to_linear, epsilon_for, linear_to_conv1d, untie_parameters
from privacy.dp.accounting import quiet_prv
from privacy.dp.opacus_config import NoiseSource
from privacy.dp.opacus_engine import NOISE_TAG, make_private

Progress = Callable[[int, int], None]
_OPACUS_ATTRS = ("grad_sample", "summed_grad", "_forward_counter", "_current_grad_sample", "_norm_sample")


@dataclass
class DPOResult:
    policy: PreTrainedModel
    history: list[dict[str, float]] = field(default_factory=list)
    epsilon: float = float("inf")
    """ε of this run at `delta` (inf without DP), recomputed by privacy.dp from (σ, q, steps)."""
    accountant_epsilon: float = float("inf")
    """ε as Opacus' own accountant reports it from the steps it saw (must equal `epsilon`)."""
    delta: float = 0.0
    noise_multiplier: float = 0.0
    sample_rate: float = 0.0
    steps: int = 0
    noise: NoiseSource | None = None
    """Where the DP noise and sampling came from ("secure" or "reproducible"); None without DP."""

    @property
    def metrics(self) -> dict[str, float]:
        last = self.history[-1] if self.history else {}
        return {
            "dpo.loss": last.get("loss", float("nan")),
            "dpo.margin": last.get("margin", float("nan")),
            "dpo.epsilon": self.epsilon,
            "dpo.steps": float(self.steps),
        }


def encode_pairs(tokenizer: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair]) -> list[torch.Tensor]:
    """[chosen ids, mask, labels, rejected ids, mask, labels], one row per pair, one common width."""
    rows = encode_examples(
        tokenizer, [(p.prompt, p.chosen) for p in pairs] + [(p.prompt, p.rejected) for p in pairs]
    )
    n = len(pairs)
    keys = ("input_ids", "attention_mask", "labels")
    return [rows[k][:n] for k in keys] + [rows[k][n:] for k in keys]


class PairScorer(nn.Module):
    """(B, 2) log π(chosen | x), log π(rejected | x): one pair is one sample of the batch."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def _logps(self, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # Positions given per row (rows are right-padded, so 0..T-1): GPT-2's default is one shared
        # (1, T) row, which would give the position embedding one per-sample gradient, not B.
        positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
        logits = self.policy(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        return sequence_logps(logits, labels)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        c_ids, c_mask, c_labels, r_ids, r_mask, r_labels = tensors
        return torch.stack([self._logps(c_ids, c_mask, c_labels), self._logps(r_ids, r_mask, r_labels)], -1)


@torch.no_grad()
def reference_logps(model: nn.Module, encoded: list[torch.Tensor], batch_size: int = 256) -> torch.Tensor:
    """(N, 2) log-probabilities of the fixed reference, computed once."""
    scorer, out = PairScorer(model).eval(), []
    for start in range(0, encoded[0].shape[0], batch_size):
        out.append(scorer(*(t[start : start + batch_size] for t in encoded)))
    return torch.cat(out)


def _step(
    module: nn.Module, optimizer: torch.optim.Optimizer, batch: Sequence[torch.Tensor], beta: float
) -> dict[str, float]:
    optimizer.zero_grad(set_to_none=True)
    *tensors, ref = batch
    if tensors[0].shape[0] == 0:  # an empty Poisson sample is still a step: release the noise alone
        for p in module.parameters():
            if p.requires_grad:
                p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype)  # type: ignore[attr-defined]
        optimizer.step()
        return {"loss": float("nan"), "margin": float("nan"), "pairs": 0.0}
    logps = module(*tensors)
    loss = dpo_loss(logps[:, 0], logps[:, 1], ref[:, 0], ref[:, 1], beta).mean()
    loss.backward()
    optimizer.step()
    margin = log_ratio_margin(logps[:, 0], logps[:, 1], ref[:, 0], ref[:, 1]).mean()
    return {
        "loss": float(loss.detach()),
        "margin": float(margin.detach()),
        "pairs": float(tensors[0].shape[0]),
    }


def _charge(
    ledger: PrivacyLedger | None,
    snapshot_sha256: str | None,
    config: DPOConfig,
    mech: Mechanism,
    delta: float,
    n_units: int,
) -> float:
    epsilon = epsilon_for(mech.noise_multiplier, mech.sample_rate, mech.steps, delta, config.dp.accountant)
    if ledger is not None:
        if not snapshot_sha256:
            raise ValueError("charging the privacy ledger needs the snapshot's SHA-256")
        ledger.charge(
            snapshot_sha256,
            mech,
            delta=delta,
            epsilon=epsilon,
            n_units=n_units,
            privacy_unit="pair",
            label=f"dpo beta={config.beta} target_epsilon={config.dp.target_epsilon}",
        )
    return epsilon


def _release(module: nn.Module, policy: nn.Module, converted: list[str]) -> None:
    """Remove Opacus' hooks and per-sample state and give GPT-2 back its Conv1D layers."""
    if isinstance(module, AbstractGradSampleModule):
        module.to_standard_module()
    for p in policy.parameters():
        for attr in _OPACUS_ATTRS:
            if hasattr(p, attr):
                delattr(p, attr)
    linear_to_conv1d(policy, converted)


def train_dpo(
    pairs: Sequence[PreferencePair],
    sft_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: DPOConfig,
    *,
    ledger: PrivacyLedger | None = None,
    snapshot_sha256: str | None = None,
    progress: Progress | None = None,
    tracker: Tracker | None = None,
) -> DPOResult:
    """A DPO-aligned copy of `sft_model` (left unchanged, as the reference). Under DP the run is
    tagged `clinrlhf.dp_noise` through `tracker` (default: a NullTracker)."""
    tracker = tracker or NullTracker()
    if not pairs:
        raise ValueError("DPO needs at least one preference pair")
    if ledger is not None and config.dp.target_delta is None:  # one δ per deployment, as a reward run
        config = replace(config, dp=replace(config.dp, target_delta=ledger.delta))
    torch.manual_seed(config.seed)
    encoded = encode_pairs(tokenizer, pairs)
    ref = reference_logps(sft_model, encoded)
    policy = copy.deepcopy(sft_model).train()
    converted: list[str] = []
    if config.dp.enabled:  # Opacus needs nn.Linear for GPT-2's Conv1D and one user per parameter
        untie_parameters(policy)
        policy.config.tie_word_embeddings = False
        converted = conv1d_to_linear(policy)
    scorer: nn.Module = PairScorer(policy)
    optimizer: torch.optim.Optimizer = torch.optim.AdamW(
        [p for p in scorer.parameters() if p.requires_grad], lr=config.learning_rate
    )
    data = TensorDataset(*encoded, ref)
    loader = DataLoader(
        data,
        batch_size=min(config.batch_size, len(data)),
        shuffle=True,
        generator=torch.Generator().manual_seed(config.seed),
    )
    result = DPOResult(policy)
    engine = None
    if config.dp.enabled:
        result.delta = config.delta_for(len(pairs))
        private = make_private(
            module=scorer,
            optimizer=optimizer,
            data_loader=loader,
            config=config.dp,
            delta=result.delta,
            epochs=config.epochs,
            seed=config.seed,
        )
        engine, scorer, optimizer, loader = private.engine, private.module, private.optimizer, private.loader
        result.noise_multiplier, result.sample_rate = private.noise_multiplier, private.sample_rate
        result.noise = private.noise
        tracker.set_tags({NOISE_TAG: private.noise})
        result.steps = config.epochs * len(loader)
        mech = Mechanism(result.noise_multiplier, result.sample_rate, result.steps)
        result.epsilon = _charge(ledger, snapshot_sha256, config, mech, result.delta, len(pairs))
    total = config.epochs * len(loader)
    for _ in range(config.epochs):
        for batch in loader:
            result.history.append(_step(scorer, optimizer, batch, config.beta))
            if progress:
                progress(len(result.history), total)
    if engine is not None:
        with quiet_prv():
            result.accountant_epsilon = float(engine.accountant.get_epsilon(delta=result.delta))
        _release(scorer, policy, converted)
    else:
        result.steps = len(result.history)
    result.policy = policy.eval()
    return result
