"""The pipeline run's headline: what the loop changed and what it cost, on the run itself.

The figures live on the stage runs (eval.*, dp.epsilon, ppo.final_kl); copied onto the pipeline run
they sit in one row of MLflow's run table, comparable across retrains, and its description says
them in words for whoever opens the run.
"""

from __future__ import annotations

from collections.abc import Mapping

import mlflow

from clinrlhf.lineage.runs import DESCRIPTIONS

PREFIX = "pipeline."


def headline_metrics(
    evals: Mapping[str, Mapping[str, float]], epsilon: float, delta: float, kl: float
) -> dict[str, float]:
    """`evals` is {"before"|"after": {"concordance", "unsafe_rate"}} on the held-out patients."""
    metrics = {
        f"{PREFIX}{side}.{name}": float(evals[side][name])
        for side in ("before", "after")
        for name in ("concordance", "unsafe_rate")
    }
    return metrics | {f"{PREFIX}epsilon": epsilon, f"{PREFIX}delta": delta, f"{PREFIX}kl": kl}


def headline_text(evals: Mapping[str, Mapping[str, float]], epsilon: float, delta: float, kl: float) -> str:
    before, after = evals["before"], evals["after"]
    return (
        f"{DESCRIPTIONS['pipeline']}\n\n"
        f"Held-out concordance {before['concordance']:.3f} -> {after['concordance']:.3f}; "
        f"unsafe rate {before['unsafe_rate']:.3f} -> {after['unsafe_rate']:.3f}. "
        f"Reward model privacy: epsilon = {epsilon:.2f}, delta = {delta:.1e}. "
        f"Final KL from the supervised policy: {kl:.3f} nats per response."
    )


def log_headline(
    evals: Mapping[str, Mapping[str, float]], *, epsilon: float, delta: float, kl: float
) -> None:
    """Log the headline metrics on the active (pipeline) run and put them in its description."""
    mlflow.log_metrics(headline_metrics(evals, epsilon, delta, kl))
    mlflow.set_tag("mlflow.note.content", headline_text(evals, epsilon, delta, kl))
