"""The alignment comparison's report: its privacy section, and the Markdown table printed beside the JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clinrlhf.alignment.ledger_copy import LedgerCopy, finite_or_none


def privacy_summary(
    ledger: LedgerCopy, home_ledger: Path, home_ledger_unchanged: bool, home_budget: float
) -> dict[str, Any]:
    """The snapshot's composed ε after each charge to the ledger copy, and what a real ledger would refuse."""
    return {
        "snapshot_sha256": ledger.digest,
        "delta": ledger.delta,
        "accountant": "rdp-filter",
        "home_ledger": str(home_ledger),
        "home_ledger_unchanged": home_ledger_unchanged,
        "ledger_copy": str(ledger.path),
        "home_budget_epsilon": home_budget,
        "composed_after_each_charge": [
            s | {"within_home_budget": s["composed_epsilon"] <= home_budget} for s in ledger.steps
        ],
        "combinations": ledger.combinations(),
        "note": (
            "The home's ledger already holds the pipeline's reward run on this snapshot, so the DP runs "
            "here were charged to a copy of it with an unlimited budget. composed_epsilon is the snapshot's "
            "cumulative ε (the ledger's Rényi filter, at the home's δ) after each charge: what a hospital would "
            f"spend by running these methods on the same data; a real ledger with budget ε={home_budget:g} "
            "would refuse every charge whose within_home_budget is false. Non-private DPO has no finite ε "
            "and was not charged. The RLAIF reward is charged to the clinicians' snapshot because its "
            "prompts are the same patients' records, though its labels come from the rubric."
        ),
    }


def _ci(x: dict[str, float] | None) -> str:
    return "—" if not x else f"{x['estimate']:.3f} [{x['low']:.3f}, {x['high']:.3f}]"


def _signed(x: dict[str, float] | None) -> str:
    return "—" if not x else f"{x['estimate']:+.3f} [{x['low']:+.3f}, {x['high']:+.3f}]"


def _num(x: Any, fmt: str = ".2f", none: str = "—") -> str:
    return none if x is None else format(x, fmt)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| Method | Feedback | Concordance [95% CI] | Δ conc. vs SFT [95% CI] | Unsafe rate [95% CI] "
        "| KL(π‖SFT) held-out | PPO final KL | ε (method) | Snapshot ε after | Train s | Eval s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["methods"].items():
        if "error" in row:
            lines.append(f"| {name} | — | failed: {row['error']} |  |  |  |  |  |  |  |  |")
            continue
        kl = row.get("kl_heldout")
        kl_text = (
            "—"
            if not kl
            else (f"{kl['kl']:.2f}" + (f" ± {kl['kl'] - kl['kl_ci_low']:.2f}" if "kl_ci_low" in kl else ""))
        )
        diff = row.get("difference", {}).get("vs SFT", {}).get("concordance")
        eps = row.get("epsilon")
        eps_text = "∞ (no DP)" if eps is None and row.get("feedback_source") != "none" else _num(eps)
        train = _num(row.get("train_seconds"), ".0f") + ("*" if row.get("train_seconds_source") else "")
        lines.append(
            f"| {name} | {row.get('feedback_source', '—')} | {_ci(row['concordance'])} | {_signed(diff)} "
            f"| {_ci(row['unsafe_rate'])} | {kl_text} | {_num(row.get('final_kl'))} | {eps_text} "
            f"| {_num(row.get('snapshot_epsilon_after'))} | {train} | {_num(row.get('eval_seconds'), '.0f')} |"
        )
    privacy = result["privacy"]
    notes = [
        "",
        f"Run {result['run_id']} ({result['mode']}); {result['test_scenarios']} test scenarios, greedy; "
        "95% percentile-bootstrap intervals; Δ is paired on the same scenarios.",
        "KL(π‖SFT): sampled on held-out prompts at PPO's temperature, nats per response, ± 95% normal interval. "
        "PPO final KL: PPO's own measurement on its training prompts.",
        "* taken from the pipeline's MLflow stage runs (reward + PPO for PPO (pipeline)), not timed here.",
    ]
    for name, row in result["methods"].items():
        if row.get("pipeline_eval") is not None:
            same = (
                "same" if abs(row["concordance"]["estimate"] - row["pipeline_eval"]) < 1e-9 else "DIFFERENT"
            )
            notes.append(
                f"{name}: concordance {row['concordance']['estimate']:.4f} here, "
                f"{row['pipeline_eval']:.4f} in the run's own eval ({same})."
            )
    notes += [
        "",
        "Privacy (snapshot " + privacy["snapshot_sha256"][:12] + f", δ={privacy['delta']:.3g}):",
    ]
    for step in privacy["composed_after_each_charge"]:
        refused = (
            ""
            if step["within_home_budget"]
            else f"  (over the home budget ε={privacy['home_budget_epsilon']:g})"
        )
        notes.append(
            f"- after {step['after']}: composed ε = {_num(finite_or_none(step['composed_epsilon']), '.3f', '∞')}{refused}"
        )
    for what, eps in privacy["combinations"].items():
        notes.append(f"- {what}: ε = {_num(eps, '.3f', '∞')}")
    notes.append(privacy["note"])
    return "\n".join(lines + notes)
