"""The rubric's feedback on the cards clinicians judged: AI judgments and pairs, never mixed with
the clinicians' (source "ai"), and how often the rubric agrees with the clinicians."""

from __future__ import annotations

from collections.abc import Sequence

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.feedback.screening import check_sources
from clinrlhf.reward.pairs import PreferencePair, pairs_from_judgments
from clinrlhf.rlaif.rubric import SOURCE as AI_SOURCE
from clinrlhf.rlaif.rubric import RubricConfig, label, preferred
from clinrlhf.world.world import World


def require_source(pairs: Sequence[PreferencePair], source: str) -> None:
    """Refuse pairs of any other feedback source: a method learns from clinicians or the rubric, never both."""
    found = sorted({p.source for p in pairs})
    if found != [source]:
        raise ValueError(f"expected only {source!r} pairs, found sources {found}")


def rubric_judgments(
    world: World, judgments: Sequence[Judgment], config: RubricConfig | None = None
) -> list[Judgment]:
    """The rubric's judgments of the cards the clinicians judged: one per card, all source "ai"."""
    check_sources(judgments)  # the clinicians' snapshot holds one source
    ai = label(world, judgments, config)
    found = check_sources(ai)
    if set(found) != {AI_SOURCE}:
        raise ValueError(f"the rubric's judgments must all be source {AI_SOURCE!r}, found {found}")
    return ai


def rlaif_pairs(world: World, ai_judgments: Sequence[Judgment]) -> list[PreferencePair]:
    """Preference pairs from the rubric's judgments; refuses any pair that is not source "ai"."""
    pairs = pairs_from_judgments(ai_judgments, world=world)
    require_source(pairs, AI_SOURCE)
    return pairs


def rubric_agreement(world: World, pairs: Sequence[PreferencePair]) -> dict[str, float]:
    """How often the rubric orders clinicians' pairs as the clinicians did (ties: the rubric saw no
    difference). Context for RLAIF: a rubric that agreed with every label would be the clinicians."""
    agree = tie = 0
    for p in pairs:
        choice = preferred(world, p.prompt, p.chosen, p.rejected)
        agree += choice == 0
        tie += choice is None
    n = max(len(pairs), 1)
    return {"agree": agree / n, "tie": tie / n, "disagree": 1 - (agree + tie) / n, "pairs": float(len(pairs))}
