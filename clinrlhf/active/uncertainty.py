"""How unsure the reward model is which of two responses to a prompt is better.

A Bradley–Terry reward model turns two rewards into a preference probability,
P(a > b) = σ(r(x, a) − r(x, b)). One model gives one probability, and a probability near 0.5 is not
the same thing as not knowing: the model may have learned that two drugs are equally good. What
active learning wants is *epistemic* uncertainty, disagreement among models that fit the data
equally well. It comes from S samples of the reward, stacked as (S, N) tensors:

- an ensemble of reward models (`ensemble_rewards`; the members come from
  clinrlhf.active.ensemble), as Christiano et al. (2017, §2.2.4, https://arxiv.org/abs/1706.03741)
  chose the comparisons to ask humans about by the variance of an ensemble's predictions;
- MC dropout (`mc_dropout_rewards`): one model, its dropout layers on at scoring, S passes, each
  pass one thinned network, read as a sample from an approximate posterior (Gal & Ghahramani,
  2016, https://arxiv.org/abs/1506.02142). Here dropout is switched on at scoring only (the policy
  and reward backbones train without it, Huang et al. 2024 detail 9), so the passes are
  perturbations of one fit rather than a trained posterior: the cheaper heuristic, one model.

A third source needs no samples: `feature_differences` gives each pair's φ(x, a) − φ(x, b), the
reward head's input, from which clinrlhf.active.design reads the variance of the margin under a
Gaussian posterior of the head (one model).

From the samples, per pair (`pair_uncertainty`, method in `METHODS`):

- "std": the standard deviation of P(a > b) across samples (Christiano et al.'s criterion);
- "margin_std": the standard deviation of the margin r(a) − r(b), the same before the squashing;
- "bald": the mutual information between the clinician's label and the model,
  H[E_s p_s] − E_s H[p_s] (Houlsby et al., 2011, "Bayesian Active Learning by Disagreement",
  https://arxiv.org/abs/1112.5745): high only where the samples disagree, not where they agree on
  0.5;
- "entropy": the predictive entropy H[E_s p_s], which also counts agreed-upon coin flips
  (aleatoric noise), for comparison.

Every function is pure except for the two that run a model, and those restore what they change.

Privacy: scores computed from DP reward models are post-processing of them, so they spend nothing
more. An ensemble is K models trained on the same clinicians' judgments and composes: K members at
ε each spend more than ε together (at most Kε by basic composition); MC dropout uses one model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from clinrlhf.reward.evaluate import score_texts, text_features
from clinrlhf.reward.model import ScalarHeadModel

Method = Literal["std", "margin_std", "bald", "entropy"]
METHODS: tuple[Method, ...] = ("std", "margin_std", "bald", "entropy")
_EPS = 1e-12


def preference_probabilities(rewards_a: torch.Tensor, rewards_b: torch.Tensor) -> torch.Tensor:
    """P(a > b) = σ(r_a − r_b) for each sample and pair: (S, N), (S, N) -> (S, N)."""
    if rewards_a.shape != rewards_b.shape:
        raise ValueError(f"reward shapes differ: {tuple(rewards_a.shape)} and {tuple(rewards_b.shape)}")
    return torch.sigmoid(rewards_a - rewards_b)


def _samples(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 2 or x.shape[0] < 1:
        raise ValueError(f"expected (samples, pairs) with at least one sample, got {tuple(x.shape)}")
    return x.double()


def probability_std(probabilities: torch.Tensor) -> torch.Tensor:
    """Standard deviation of P(a > b) across samples (population std: one sample gives 0). (S, N) -> (N,)"""
    return _samples(probabilities).std(dim=0, unbiased=False)


def margin_std(rewards_a: torch.Tensor, rewards_b: torch.Tensor) -> torch.Tensor:
    """Standard deviation of the margin r_a − r_b across samples. (S, N), (S, N) -> (N,)"""
    if rewards_a.shape != rewards_b.shape:
        raise ValueError(f"reward shapes differ: {tuple(rewards_a.shape)} and {tuple(rewards_b.shape)}")
    return _samples(rewards_a - rewards_b).std(dim=0, unbiased=False)


def _binary_entropy(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(_EPS, 1 - _EPS)
    return -(p * p.log() + (1 - p) * (1 - p).log())


def predictive_entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """H[E_s p_s] in nats: the entropy of the averaged preference. (S, N) -> (N,), in [0, log 2]."""
    return _binary_entropy(_samples(probabilities).mean(dim=0))


def bald(probabilities: torch.Tensor) -> torch.Tensor:
    """BALD (Houlsby et al., 2011): H[E_s p_s] − E_s H[p_s], the information a label would give about
    the model. 0 when every sample says the same, whatever it says. (S, N) -> (N,), in [0, log 2]."""
    p = _samples(probabilities)
    return (_binary_entropy(p.mean(dim=0)) - _binary_entropy(p).mean(dim=0)).clamp(min=0.0)


def pair_uncertainty(
    rewards_a: torch.Tensor, rewards_b: torch.Tensor, method: Method = "std"
) -> torch.Tensor:
    """Uncertainty of each pair from S reward samples of each response: (S, N), (S, N) -> (N,)."""
    if method == "margin_std":
        return margin_std(rewards_a, rewards_b)
    probabilities = preference_probabilities(rewards_a, rewards_b)
    if method == "std":
        return probability_std(probabilities)
    if method == "bald":
        return bald(probabilities)
    if method == "entropy":
        return predictive_entropy(probabilities)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def ensemble_rewards(
    models: Sequence[ScalarHeadModel],
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses: Sequence[str],
) -> torch.Tensor:
    """Each member's reward of each response to its prompt: K models -> (K, N)."""
    if not models:
        raise ValueError("an ensemble needs at least one model")
    return torch.stack([score_texts(m, tokenizer, prompts, responses) for m in models])


@contextmanager
def thinned(model: nn.Module, rate: float, generator: torch.Generator) -> Iterator[Callable[[], None]]:
    """Within the block, `model` (in eval mode) runs as one *thinned network* at a time: every
    nn.Dropout layer zeroes a fixed random subset of its units (each with probability `rate`) and
    scales the rest by 1/(1 − rate), with the same mask for every row and position. Call the yielded
    function to draw the next network. One mask per network, not per row, is what makes a pass a
    sample of the model (Gal & Ghahramani 2016 read dropout as sampling thinned networks; their
    recurrent variant, https://arxiv.org/abs/1512.05287, shares the mask across time steps): the two
    responses of a pair are then compared by the same sample. On exit the model is as it was.
    Raises if the model has no dropout layer."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
    layers = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no nn.Dropout layer to switch on")
    modes = {m: m.training for m in model.modules()}
    masks: dict[tuple[int, int], torch.Tensor] = {}

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        x = inputs[0]  # the layer is in eval mode (identity); the hook applies this network's mask
        key = (id(module), x.shape[-1])
        if key not in masks:
            keep = torch.rand(x.shape[-1], generator=generator) >= rate
            masks[key] = keep.to(x.dtype) / (1.0 - rate)
        return x * masks[key].to(x.device)

    model.eval()
    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        yield masks.clear
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training


@torch.no_grad()
def mc_dropout_rewards(
    model: ScalarHeadModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    passes: int = 16,
    rate: float = 0.1,
    seed: int = 0,
    batch_size: int = 256,
) -> torch.Tensor:
    """Rewards under `passes` thinned networks (MC dropout at `rate`, Gal & Ghahramani 2016). -> (T, N)

    Every (prompt, response) is scored by every network, so pass t's rewards of a pair's two
    responses come from the same sample. Deterministic for a seed; the global RNG is not touched."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    if passes < 1:
        raise ValueError(f"passes must be at least 1, got {passes}")
    generator = torch.Generator().manual_seed(seed)
    out = []
    with thinned(model, rate, generator) as next_network:
        for _ in range(passes):
            next_network()
            out.append(score_texts(model, tokenizer, prompts, responses, batch_size=batch_size))
    return torch.stack(out)


def feature_differences(
    model: ScalarHeadModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses_a: Sequence[str],
    responses_b: Sequence[str],
) -> torch.Tensor:
    """φ(x, a) − φ(x, b) per pair, φ the reward head's input (clinrlhf.active.design). -> (N, H)"""
    if not len(prompts) == len(responses_a) == len(responses_b):
        raise ValueError(f"{len(prompts)} prompts, {len(responses_a)} and {len(responses_b)} responses")
    return text_features(model, tokenizer, prompts, responses_a) - text_features(
        model, tokenizer, prompts, responses_b
    )
