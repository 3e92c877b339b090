"""Fixtures the library's tests share: the synthetic world and the tokenizer built from its vocabulary.
Session-scoped: both are read-only, and building them once saves seconds per test directory."""

from __future__ import annotations

import pytest
from transformers import PreTrainedTokenizerFast

from clinrlhf.policy import build_tokenizer
from clinrlhf.text.prompt import vocabulary_corpus
from clinrlhf.world.world import World, load_world


@pytest.fixture(scope="session")
def world() -> World:
    return load_world()


@pytest.fixture(scope="session")
def tokenizer(world: World) -> PreTrainedTokenizerFast:
    return build_tokenizer(vocabulary_corpus(world))
