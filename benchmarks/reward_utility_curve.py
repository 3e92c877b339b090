"""Privacy against utility for the reward model: held-out pairwise accuracy at ε ∈ {1, 2, 4, 8, ∞}.

    python benchmarks/reward_utility_curve.py --out reward_utility_curve.json    # about 6 minutes
    python benchmarks/reward_utility_curve.py --quick                             # about 1 minute

Every run trains on the same pairs with the same seed and the same initial backbone; only the
budget changes (∞ is the non-private baseline, dp=False). The pairs are the simulated panel's
judgments (clinrlhf.reward.simulated: the pipeline's ten clinicians, one of them adversarial, two
reviewers per card) on `--patients` synthetic patients, split by patient as the pipeline splits
them: a tenth held out. The backbone is a freshly initialised GPT-2 trunk (`--model tiny`, the
tests' 1 block × 32 dimensions, or `--model pipeline`, the policy's 2 × 64), not a supervised
policy, so absolute accuracies are below the pipeline's; the gap between budgets is the point.
Also reported: calibration (ECE) and agreement with the world's utility on fresh patients.
One thread.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from clinrlhf.policy import PolicyConfig, build_policy, build_tokenizer
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.evaluate import fresh_scenarios, heldout_report, split_by_patient, utility_agreement
from clinrlhf.reward.pairs import pairs_from_judgments
from clinrlhf.reward.simulated import simulated_judgments
from clinrlhf.reward.trainer import train_reward
from clinrlhf.text.prompt import vocabulary_corpus
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import load_world
from privacy.dp.opacus_config import DPConfig

EPSILONS = (1.0, 2.0, 4.0, 8.0, float("inf"))
MODELS = {
    "tiny": PolicyConfig(n_layer=1, n_embd=32, n_head=2, n_positions=64),
    "pipeline": PolicyConfig(),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=1500, help="feedback patients (the pipeline's count)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--model", choices=list(MODELS), default="tiny")
    parser.add_argument("--unit", choices=["pair", "patient", "clinician"], default="pair")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="600 patients, 2 epochs")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    patients, epochs = (600, 2) if args.quick else (args.patients, args.epochs)

    world = load_world()
    tokenizer = build_tokenizer(vocabulary_corpus(world))
    judgments = simulated_judgments(world, generate_patients(world, patients, 1), reviewers_per_card=2)
    train, heldout = split_by_patient(pairs_from_judgments(judgments, world=world), 0.1, args.seed)
    scenarios = fresh_scenarios(world)
    torch.manual_seed(args.seed)
    initial = build_policy(MODELS[args.model], tokenizer).transformer.state_dict()
    print(f"{len(train)} training pairs, {len(heldout)} held out; {args.model} backbone", flush=True)

    rows = []
    for epsilon in EPSILONS:
        backbone = build_policy(MODELS[args.model], tokenizer).transformer
        backbone.load_state_dict(initial)
        private = epsilon != float("inf")
        config = RewardConfig(
            epochs=epochs,
            learning_rate=args.learning_rate,
            dp=DPConfig(enabled=private, target_epsilon=epsilon if private else 8.0),
            privacy_unit=args.unit,  # type: ignore[arg-type]
            seed=args.seed,
        )
        started = time.monotonic()
        result = train_reward(train, backbone, tokenizer, config)
        report = heldout_report(result.model, tokenizer, heldout).metrics
        agreement = utility_agreement(result.model, tokenizer, world, scenarios)
        rows.append(
            {
                "target_epsilon": epsilon,
                "epsilon": result.epsilon,
                "delta": result.delta,
                "noise_multiplier": result.noise_multiplier,
                "heldout_accuracy": report["reward.heldout_accuracy"],
                "ece": report["reward.ece"],
                "utility_spearman": agreement["reward.utility_spearman"],
                "train_accuracy": result.metrics["reward.train_accuracy"],
                "seconds": time.monotonic() - started,
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    baseline = rows[-1]["heldout_accuracy"]
    print(f"{'ε':>5} {'σ':>6} {'held-out acc':>13} {'vs non-DP':>10} {'ECE':>6} {'Spearman':>9} {'s':>5}")
    for r in rows:
        print(
            f"{r['target_epsilon']:>5g} {r['noise_multiplier']:>6.3f} {r['heldout_accuracy']:>13.3f} "
            f"{100 * (r['heldout_accuracy'] - baseline):>+9.1f}p {r['ece']:>6.3f} "
            f"{r['utility_spearman']:>9.3f} {r['seconds']:>5.0f}"
        )
    if args.out:
        summary = {
            "patients": patients,
            "epochs": epochs,
            "model": args.model,
            "unit": args.unit,
            "train_pairs": len(train),
            "heldout_pairs": len(heldout),
            "rows": rows,
        }
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
