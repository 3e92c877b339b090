"""`clinrlhf pipeline`: the whole loop with a config file, for hospital ML teams."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clinrlhf.cli import CLIError
from clinrlhf.cli.identity_arg import add_token_argument, with_launcher


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "pipeline",
        help="run SFT → feedback → DP reward → PPO → eval with a JSON config",
        description="Like quickstart, but every setting can be overridden from a JSON file whose keys mirror "
        'clinrlhf.pipeline.config.PipelineConfig, e.g. {"feedback_patients": 6000, "reward": '
        '{"dp": {"target_epsilon": 4.0}}, "ppo": {"kl_target": 2.0}}. Prints the summary as JSON.',
    )
    parser.add_argument("--config", type=Path, help="JSON file of overrides")
    parser.add_argument(
        "--seed",
        type=int,
        help="override the pipeline seed: the cohorts, panel, SFT, reward and PPO seeds together (a stage seed set in --config is kept)",
    )
    add_token_argument(parser, "the launcher's (recorded as who launched the run)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clinrlhf.cli.progress import stage_progress
    from clinrlhf.pipeline.config import load_pipeline_config
    from clinrlhf.pipeline.run import run_pipeline
    from clinrlhf.settings import load_settings

    if args.config and not args.config.is_file():
        raise CLIError(f"config file not found: {args.config}")
    try:
        extra = {"seed": args.seed} if args.seed is not None else {}
        config = load_pipeline_config(args.config, **extra)
    except (ValueError, TypeError) as err:
        raise CLIError(f"invalid config: {err}") from None
    from privacy.dp import BudgetExceededError

    settings = with_launcher(load_settings(), args.token)
    try:
        with stage_progress() as reporter:
            summary = run_pipeline(settings, config, reporter)
    except BudgetExceededError as err:  # the privacy ledger refused the reward run
        raise CLIError(str(err)) from None
    print(json.dumps(summary, indent=2))
    return 0
