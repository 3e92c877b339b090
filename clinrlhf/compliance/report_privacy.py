"""The compliance report's privacy statement: what the reward model's (ε, δ) guarantee protects, what
it is conditional on, and what the run released that it does not cover.

The guarantee is stated *conditional* on three steps that read the clinicians' judgments in the
clear before the DP mechanism runs (docs/privacy.md, "The guarantee, stated exactly"): the rater
screening (quarantine), the Dawid–Skene rater weights, and the k-anonymity suppression. None of them
is made data-independent or charged to the budget; the neighbouring datasets the (ε, δ) compares
are the snapshot *after* them, with their outcome held fixed. Everything the run published outside
the mechanism is listed, so that a reader never mistakes it for part of the guarantee.
"""

from __future__ import annotations

import json
import math
from typing import Any

from mlflow.tracking import MlflowClient

from clinrlhf.compliance.evidence import Evidence
from clinrlhf.lineage.artifacts import read_artifact_text
from clinrlhf.lineage.runs import PPO_PROMPT_SOURCE

# Set on a DP reward run by the trainer (privacy.dp.opacus_config.NOISE_TAG): "secure" for noise from
# a generator seeded by the OS and never recorded, "reproducible" for the debugging mode.
NOISE_TAG = "clinrlhf.dp_noise"
K_ANONYMITY_ARTIFACT = "deid/k_anonymity.json"  # logged on the pipeline run (clinrlhf.pipeline.run)
USER_LEVEL_UNITS = ("clinician", "patient")


def _min_k(client: MlflowClient, ev: Evidence) -> int | None:
    text = read_artifact_text(client, ev.run_id, K_ANONYMITY_ARTIFACT)
    return int(json.loads(text)["min_k"]) if text is not None else None


def conditions(unit: str, weighted: bool, min_k: int | None, epsilon: float, delta: float) -> list[str]:
    """What the guarantee holds fixed: each step computed from the raw judgments before training."""
    k = f"k = {min_k}" if min_k is not None else "the rule file's minimum k"
    items = [
        "Rater screening: which clinicians were quarantined (Dawid–Skene outlier rule and the guideline "
        "check over every judgment in the snapshot, computed in the clear). The guarantee compares "
        "datasets that differ by one unit with the quarantine list held fixed; it says nothing about "
        "what the quarantine reveals, or how one unit would have changed it.",
    ]
    if weighted:
        items.append(
            "Rater weights: each included clinician's Dawid–Skene accuracy, estimated in the clear from "
            "the judgments the reward stage received and held fixed (one clinician's labels move their "
            "own accuracy and, through the consensus, the others')."
        )
    suppression = (
        f"k-anonymity suppression: patients whose (age band, sex) class has fewer than {k} patients "
        "in the snapshot were left out before training, and which ones is held fixed. Unconditionally, "
        "adding or removing one unit can move a class across the threshold and change up to k − 1 "
        "other patients' presence"
    )
    if unit == "patient" and min_k is not None:
        # Group privacy (Dwork & Roth, 2014, Theorem 2.2, (ε, δ) form): k units cost (kε, k·e^{(k−1)ε}·δ).
        suppression += (
            f"; for this step alone, group privacy of size k would give ({min_k * epsilon:.2f}, "
            f"{min_k * math.exp((min_k - 1) * epsilon) * delta:.2g})"
        )
    items.append(suppression + ".")
    return items


def _per_clinician(unit: str, released: bool) -> str:
    if unit in USER_LEVEL_UNITS:
        return (
            f"under the {unit} unit no per-clinician value was published: the screening's table, the "
            "quarantine list and the rater weights went out as counts only"
        )
    if released:
        return (
            "they were published keyed by the roster of clinicians enrolled before training (a member "
            "with no judgments shows 'no data'), so the keys say nothing about who took part, but the "
            "values are statistics of the raw judgments with no noise"
        )
    return "no per-clinician table was published (no roster was fixed before training)"


def not_covered(ev: Evidence, unit: str, per_clinician_released: bool) -> list[str]:
    """What the run released or exposed outside the DP mechanism."""
    prompts = ev.tag("ppo", PPO_PROMPT_SOURCE, "feedback")
    snapshot = (
        "The feedback snapshot: the de-identified judgments file is an artifact of the reward run in "
        "MLflow, so whoever can read this MLflow store reads every judgment in the clear."
        if ev.snapshot_in_mlflow
        else "The feedback snapshot: MLflow holds only its SHA-256 (and row count); the de-identified "
        "file stays in CLINRLHF_HOME/snapshots, readable in the clear by whoever can read that folder."
    )
    items = [
        "Screening in the clear: the quarantine decisions, the screening's reliability and guideline "
        "tables and the Dawid–Skene accuracies are computed from the raw judgments outside DP; "
        + _per_clinician(unit, per_clinician_released)
        + ".",
        "Per-step metrics logged outside DP: the training loss and accuracy of every step (reward.loss, "
        "reward.accuracy, reward.train_*) are averages over private pairs, and the held-out evaluation "
        "(reward.heldout_*, reward.ece) is an ordinary statistic of the held-out patients.",
        "Counts: the numbers of pairs and units (and so the sample rate and δ) are published as they are.",
        snapshot,
    ]
    if prompts == "history":
        items.append(
            "PPO prompts: none from the feedback (ppo_prompts: history), so the aligned policy carries "
            "this guarantee, conditional as above."
        )
    else:
        items.append(
            "PPO prompts: PPO read the snapshot's prompts (de-identified patient descriptions) in the "
            "clear, so the aligned policy is not DP in which patients the snapshot holds; "
            "ppo_prompts: history would avoid it."
        )
    return items


def noise_line(ev: Evidence) -> tuple[bool, str]:
    """(whether this is a DP release at all, what the report says of the noise)."""
    source = ev.tag("reward", NOISE_TAG, "")
    if source == "reproducible":
        return False, (
            "This reward run is not a DP release: its noise came from a reproducible, seeded generator "
            "(clinrlhf.dp_noise = reproducible, a debugging mode), so whoever knows the seed can remove "
            "it. The (ε, δ) below is what the mechanism would have spent, not a guarantee."
        )
    if source == "secure":
        return (
            True,
            "The noise and the sampling came from a generator seeded by the operating system and never recorded.",
        )
    return True, "The run did not record where its noise came from."


def _rater_tables_published(client: MlflowClient, ev: Evidence) -> bool:
    reward = ev.run("reward")
    return reward is not None and bool(client.list_artifacts(reward.info.run_id, "raters"))


def privacy_statement(client: MlflowClient, ev: Evidence, policy: str = "") -> dict[str, Any]:
    """The privacy section: headline (the guarantee in words, then `policy`, what it means for the
    aligned policy), unit, (ε, δ), what it is conditional on and what it does not cover."""
    if ev.guarantee is None:
        return {
            "dp": False,
            "statement": "Trained WITHOUT differential privacy.",
            "conditions": [],
            "not_covered": [],
        }
    g, reward = ev.guarantee, ev.run("reward")
    weighted = reward is not None and reward.data.params.get("reward.rater_weighting") == "dawid-skene"
    is_dp, noise = noise_line(ev)
    words = " ".join(part for part in (g.describe(), policy) if part)
    return {
        "dp": is_dp,
        # Not a DP release: the guarantee in words is only what secret noise would have given.
        "statement": f"{words} {noise}" if is_dp else f"{noise} With secret noise it would read: “{words}”",
        "unit": g.unit,
        "epsilon": f"{g.epsilon:.3f}",
        "delta": f"{g.delta:.3g}",
        "conditions": conditions(g.unit, weighted, _min_k(client, ev), g.epsilon, g.delta),
        "not_covered": not_covered(ev, g.unit, _rater_tables_published(client, ev)),
    }
