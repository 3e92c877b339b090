"""`clinrlhf quickstart`: the whole loop on embedded defaults, then a summary table."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from clinrlhf.cli import CLIError
from clinrlhf.cli.identity_arg import add_token_argument, with_launcher

if TYPE_CHECKING:  # imported when the command runs, not when the parser is built (--help)
    from rich.console import Console


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "quickstart",
        help="run the whole loop on synthetic patients (about 9 minutes on 2 idle CPU cores)",
        description="Generate synthetic patients, train a supervised policy on historical practice, serve it on "
        "127.0.0.1, let a simulated clinician panel judge its suggestions through the real API, train a DP reward "
        "model on the de-identified feedback, align the policy with KL-constrained PPO, evaluate on the test "
        "cohort (patients never trained or tuned on) and write a compliance report. Results go to $CLINRLHF_HOME/quickstart/summary.json.",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="the one seed of cohorts, panel, SFT, reward and PPO (default 0)"
    )
    add_token_argument(parser, "the launcher's (recorded as who launched the run)")
    parser.set_defaults(func=run)


def print_summary(summary: dict, console: Console) -> None:
    from rich.table import Table

    table = Table(title="clinrlhf quickstart: test cohort (never trained or tuned on)")
    for column in ("", "concordance", "unsafe rate"):
        table.add_column(column)
    for name in ("before", "after"):
        row = summary[name]
        table.add_row(
            "supervised" if name == "before" else "aligned",
            f"{row['concordance']:.3f}",
            f"{row['unsafe_rate']:.3f}",
        )
    console.print(table)
    unseen = summary.get("unseen_prompts")
    if unseen and unseen.get("n"):
        console.print(
            f"on the {int(unseen['n'])} test scenarios whose prompt no trainer read: "
            f"concordance {unseen['concordance']:.3f}, unsafe {unseen['unsafe_rate']:.3f}"
        )
    console.print(
        f"privacy: ε = {summary['epsilon']:.2f}, δ = {summary['delta']:.2e} · "
        f"final KL = {summary['kl']:.2f} nats (target {summary['kl_target']:g}) · {summary['seconds']:.0f} s"
    )
    console.print(
        f"report: {summary['report']}\nMLflow run: {summary['mlflow_run_id']} ({summary['mlflow_tracking_uri']})"
    )
    if summary.get("mlflow_ui_url"):
        uri = summary["mlflow_tracking_uri"]
        start = (
            "" if uri.startswith(("http://", "https://")) else f"mlflow ui --backend-store-uri {uri}, then "
        )
        console.print(f"MLflow UI: {start}{summary['mlflow_ui_url']}")


def _ui_url(tracking_uri: str, run_id: str) -> str:
    """Where to see the run: on a tracking server, the server itself; else `mlflow ui`'s default address."""
    from clinrlhf.lineage.runs import run_ui_url

    if tracking_uri.startswith(("http://", "https://")):
        return run_ui_url(tracking_uri, run_id, base_url=tracking_uri.rstrip("/"))
    return run_ui_url(tracking_uri, run_id)


def run(args: argparse.Namespace) -> int:
    from clinrlhf.cli.progress import stage_progress
    from clinrlhf.pipeline.config import PipelineConfig
    from clinrlhf.pipeline.run import run_pipeline
    from clinrlhf.settings import load_settings
    from privacy.dp import BudgetExceededError

    settings = with_launcher(load_settings(), args.token)
    try:
        with stage_progress() as reporter:
            summary = run_pipeline(settings, PipelineConfig(seed=args.seed), reporter)
    except BudgetExceededError as err:  # the privacy ledger refused the reward run
        raise CLIError(str(err)) from None
    summary["mlflow_ui_url"] = _ui_url(summary["mlflow_tracking_uri"], summary["mlflow_run_id"])
    out = settings.resolved_home / "quickstart" / "summary.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    from rich.console import Console

    print_summary(summary, Console())
    print(f"summary: {out}")
    return 0
