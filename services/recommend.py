"""The served policy: loaded once, reloaded when the latest aligned policy changes, queried under a lock."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.policy.generate import PolicySuggestion, suggest
from clinrlhf.policy.model import load_policy
from clinrlhf.policy.pointers import PolicyNotFoundError, resolve_policy
from clinrlhf.policy.served import served_identity, served_status
from clinrlhf.policy.version import ModelIdentity, model_version
from clinrlhf.settings import Settings
from clinrlhf.world.world import World

log = logging.getLogger(__name__)
SUGGESTIONS_PER_CARD = 2


class PolicyUnavailableError(RuntimeError):
    """No policy can be loaded; the CDS service answers 503 until one exists."""


@dataclass
class Recommender:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    policy_dir: Path
    version: str
    # Registry version and training run where known: the AI transparency of every card names them.
    identity: ModelIdentity

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def suggest(
        self, world: World, prompt: str, *, seed: int, n: int = SUGGESTIONS_PER_CARD
    ) -> list[PolicySuggestion]:
        """Up to `n` distinct suggestions, the greedy recommendation first. `seed` makes a request's
        sampled alternatives reproducible without making every request alike."""
        generator = torch.Generator().manual_seed(seed)
        with self._lock:  # one forward pass at a time: the CPU is shared, and generation is not re-entrant
            return suggest(self.model, self.tokenizer, world, prompt, n=n, generator=generator)


class PolicyHolder:
    """Loads the policy lazily. With no explicit policy configured it follows the latest aligned
    one, so a pipeline that publishes a new policy is picked up without a restart."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._current: Recommender | None = None
        self._lock = threading.Lock()

    def get(self) -> Recommender:
        current = self._current
        if current is not None and self._settings.policy is not None:
            return current  # an explicit policy never changes under a running server
        try:
            wanted = resolve_policy(self._settings)
        except PolicyNotFoundError as err:
            if current is not None:
                return current
            raise PolicyUnavailableError(str(err)) from None
        if current is not None and current.policy_dir == wanted:
            return current
        with self._lock:
            if self._current is None or self._current.policy_dir != wanted:
                model, tokenizer = load_policy(wanted)
                version = model_version(wanted)
                identity = served_identity(self._settings.resolved_home, wanted, version)
                self._current = Recommender(model, tokenizer, wanted, version, identity)
                approved, line = served_status(self._settings.resolved_home, wanted)
                log.log(logging.INFO if approved else logging.WARNING, line)
            return self._current
