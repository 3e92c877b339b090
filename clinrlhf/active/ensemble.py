"""An ensemble of reward models for query selection, each trained with the project's DP trainer.

Members differ by their seed (head initialisation, batch sampling, DP noise) and by the pairs they
see: each trains on a random `fraction` of the *cases* (all the pairs of a case stay together), the
way Christiano et al. (2017, §2.2.4, https://arxiv.org/abs/1706.03741) trained each member on a
resample of the comparisons. Subsampling here is without replacement, not the classical bootstrap:
a pair drawn twice would be two rows for DP-SGD, so its influence on the model would be twice the
clipping norm, and the per-pair guarantee the trainer reports would not hold. Subsampling only
removes rows, so each member keeps its reported (ε, δ).

Privacy: every member is trained on the same clinicians' judgments, so releasing (or acting on) all
K of them composes K mechanisms: the ensemble spends more than any one member's ε (at most K·ε by
basic composition). MC dropout (clinrlhf.active.uncertainty.mc_dropout_rewards) needs one model.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.result import RewardResult
from clinrlhf.reward.trainer import train_reward

T = TypeVar("T")


def subsample(items: Sequence[T], fraction: float, seed: int, key: Callable[[T], str] = str) -> list[T]:
    """The items whose group (`key`, e.g. a pair's case) falls in a seeded random `fraction` of the
    groups, in input order, without replacement. fraction 1 keeps everything; at least one group is
    kept whenever there is one."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    groups = sorted({key(item) for item in items})
    if fraction == 1.0 or not groups:
        return list(items)
    kept = set(random.Random(seed).sample(groups, max(1, round(fraction * len(groups)))))
    return [item for item in items if key(item) in kept]


def _case_of(pair: PreferencePair) -> str:
    return f"{pair.patient}\x00{pair.prompt}"


def train_ensemble(
    pairs: Sequence[PreferencePair],
    backbone: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: RewardConfig,
    members: int,
    *,
    fraction: float = 0.8,
    first_on_all: bool = True,
) -> list[RewardResult]:
    """`members` reward models, member k trained with seed config.seed + k on a `fraction` subsample
    of the cases (a case is a patient's prompt). `backbone` is copied for each member, never changed.

    With `first_on_all`, member 0 trains on every pair with the config's own seed: exactly the model
    `train_reward(pairs, copy, tokenizer, config)` returns, so the ensemble's first member can be the
    reward model the pipeline would ship, and the others are only the price of its uncertainty."""
    if members < 1:
        raise ValueError(f"an ensemble needs at least one member, got {members}")
    results = []
    for k in range(members):
        data = (
            list(pairs)
            if k == 0 and first_on_all
            else subsample(pairs, fraction, (config.seed or 0) * 1_000_003 + k, _case_of)
        )
        member = replace(config, seed=(config.seed or 0) + k)
        results.append(train_reward(data, copy.deepcopy(backbone), tokenizer, member))
    return results
