"""`clinrlhf train sft|reward|ppo`: one stage of the loop at a time, for hospital ML teams.

Each stage reads what the previous one wrote, logs one MLflow run with the same lineage tags the
pipeline uses, and writes its model to --out:

    clinrlhf train sft --out runs/sft
    clinrlhf export --out feedback.ndjson             # the de-identified snapshot to learn from
    clinrlhf train reward --policy runs/sft --snapshot feedback.ndjson --out runs/reward
    clinrlhf train ppo --policy runs/sft --reward runs/reward --snapshot feedback.ndjson --out runs/policy
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from clinrlhf.cli import CLIError

if TYPE_CHECKING:
    from clinrlhf.pipeline.config import PipelineConfig

EXAMPLES = """examples:
  clinrlhf train sft --out runs/sft
  clinrlhf train reward --policy runs/sft --snapshot feedback.ndjson --out runs/reward
  clinrlhf train ppo --policy runs/sft --reward runs/reward --snapshot feedback.ndjson --out runs/policy
  torchrun --standalone --nproc_per_node 4 -m clinrlhf train ppo --policy runs/sft ...   # data-parallel

--config takes the same JSON as `clinrlhf pipeline --config` (only the stage's own section is used,
e.g. {"reward": {"dp": {"target_epsilon": 4.0}}})."""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train one stage: the supervised policy, the DP reward model, or PPO",
        description="Train one stage of the loop and log it to MLflow. "
        "State and MLflow live in $CLINRLHF_HOME.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    stages = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    sft = stages.add_parser(
        "sft",
        help="supervised policy on the historical practice",
        description="Train the supervised policy on the synthetic world's historical practice and write it "
        "to --out. Needs nothing else: it is the first stage.",
    )
    reward = stages.add_parser(
        "reward",
        help="DP-SGD reward model on a feedback snapshot",
        description="Train the differentially private (DP-SGD, Opacus) reward model on the clinicians' "
        "judgments and write it to --out. Needs --policy, the supervised policy folder from `train sft` "
        "(the reward model starts from it), and --snapshot, the de-identified NDJSON from `clinrlhf export`. "
        "The privacy ledger in $CLINRLHF_HOME is charged, and refuses a run past the budget.",
    )
    ppo = stages.add_parser(
        "ppo",
        help="KL-constrained PPO against the supervised policy",
        description="Align the policy with KL-constrained PPO against the reward model, starting from and "
        "penalised towards the supervised policy, and write it to --out. Needs --policy (from `train sft`), "
        "--reward (from `train reward`) and --snapshot (the NDJSON the reward model learned from). Runs "
        "data-parallel under torchrun.",
    )
    for stage in (sft, reward, ppo):
        stage.add_argument("--out", type=Path, required=True, help="folder to write the model to")
        stage.add_argument("--config", type=Path, help="JSON overrides, as for `clinrlhf pipeline`")
    for stage in (reward, ppo):
        stage.add_argument("--policy", type=Path, required=True, help="the supervised policy folder")
        stage.add_argument(
            "--snapshot", type=Path, required=True, help="de-identified NDJSON from `clinrlhf export`"
        )
    ppo.add_argument("--reward", type=Path, required=True, help="the reward model folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clinrlhf.pipeline.config import load_pipeline_config

    for path in (args.config, getattr(args, "snapshot", None)):
        if path is not None and not path.is_file():
            raise CLIError(f"file not found: {path}")
    for path in (getattr(args, "policy", None), getattr(args, "reward", None)):
        if path is not None and not path.is_dir():
            raise CLIError(f"model folder not found: {path}")
    try:
        config = load_pipeline_config(args.config)
    except (ValueError, TypeError) as err:
        raise CLIError(f"invalid config: {err}") from None
    from clinrlhf.cli.progress import stage_progress
    from clinrlhf.pipeline import single
    from clinrlhf.ppo import distributed
    from privacy.dp import BudgetExceededError

    if args.stage == "ppo" and distributed.launched_by_torchrun():
        return _train_ppo_distributed(args, config)
    try:
        with stage_progress() as reporter:
            if args.stage == "sft":
                summary = single.train_sft_stage(out=args.out, config=config, reporter=reporter)
            elif args.stage == "reward":
                summary = single.train_reward_stage(
                    policy_dir=args.policy,
                    snapshot=args.snapshot,
                    out=args.out,
                    config=config,
                    reporter=reporter,
                )
            else:
                summary = single.train_ppo_stage(
                    policy_dir=args.policy,
                    reward_dir=args.reward,
                    snapshot=args.snapshot,
                    out=args.out,
                    config=config,
                    reporter=reporter,
                )
    except (single.StageInputError, BudgetExceededError) as err:
        raise CLIError(str(err)) from None
    print(json.dumps(summary, indent=2))
    return 0


def _train_ppo_distributed(args: argparse.Namespace, config: PipelineConfig) -> int:
    """`torchrun ... -m clinrlhf train ppo`: rank 0 runs the ordinary stage (its MLflow run, checkpoints
    and the policy folder), and every other rank trains alongside it on its share of each batch, from
    the inputs rank 0 builds (clinrlhf.pipeline.single.ppo_inputs)."""
    from clinrlhf.cli.progress import stage_progress
    from clinrlhf.pipeline import single
    from clinrlhf.ppo import distributed

    try:
        with distributed.session() as dist:
            if not dist.is_main:
                single.follow_ppo_stage(
                    policy_dir=args.policy,
                    reward_dir=args.reward,
                    snapshot=args.snapshot,
                    out=args.out,
                    config=config,
                )
                return 0
            with stage_progress() as reporter:
                summary = single.train_ppo_stage(
                    policy_dir=args.policy,
                    reward_dir=args.reward,
                    snapshot=args.snapshot,
                    out=args.out,
                    config=config,
                    reporter=reporter,
                )
    except single.StageInputError as err:
        raise CLIError(str(err)) from None
    print(json.dumps(summary | {"world_size": dist.world_size}, indent=2))
    return 0
