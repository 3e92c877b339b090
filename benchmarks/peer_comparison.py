"""Ours (KL-PPO) against what a team would pick instead: TRL's RLOO and DPO, on one finished run.

    python -m venv /tmp/trl116
    /tmp/trl116/bin/pip install torch==2.13.0 trl==1.16.0 transformers==5.25.0
    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/peer_comparison.py --home HOME \\
        --trl-python /tmp/trl116/bin/python --out peer.json

Every method starts from the run's supervised policy (runs/<id>/sft) and learns from the same data:
ours and RLOO maximise the same reward (the run's DP reward model minus the validity penalty,
clinrlhf.pipeline.policy_reward, minus PPO's missing-EOS penalty) on the same prompts (the snapshot's),
DPO learns from the clinicians' pairs of the reward model's training patients (non-private here: an
upper bound on what DP-DPO would reach). TRL 1.16 has no PPO (removed in 1.13); RLOO is its
maintained online trainer. It runs in its own virtualenv as a subprocess (`--trl-worker`); the worker
adds this project's virtualenv *after* its own on sys.path, only to score with our reward model.

Budget: ours runs the run's PPOConfig; RLOO then gets the same CPU seconds (process CPU time, one
thread: each side's sampling, scoring and updates, never its evaluation or checkpoint copies), with
the same sampled responses per update (batch, responses per prompt, response length, temperature,
fp32 asserted). The policy is copied at a few checkpoints and every copy is scored afterwards on
the run's **test** cohort (greedy concordance, unsafe rate) and KL(π‖SFT) on test prompts.

Choices are made on the **validation** cohort only: DPO's β is swept (`--dpo-betas`) and
interpolated (clinrlhf.eval.kl_match) to ours' validation KL, then trained at that β; RLOO's fixed KL
coefficient is the one ours' adaptive controller ended with (the same price per nat), `--rloo-beta`,
or swept the same way as DPO's with `--rloo-betas` (each sweep point costs a full RLOO run). The ratio reported is
clinrlhf.eval.budget.speed_ratio: CPU time for ours to reach the peer's final test concordance / the
peer's CPU time (below 1: ours gets there sooner).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import torch

CHECKPOINTS = 4  # learning-curve points per online run, besides the start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, help="CLINRLHF_HOME of a finished pipeline or quickstart")
    parser.add_argument("--run-id", help="which run under HOME/runs (default: the newest finished one)")
    parser.add_argument("--run-date", type=date.fromisoformat, help="the run's cohort date (default: MLflow)")
    parser.add_argument("--trl-python", help="python of a virtualenv with trl==1.16.0; omit to skip RLOO")
    parser.add_argument("--methods", default="ours,rloo,dpo", help="comma-separated subset of ours,rloo,dpo")
    parser.add_argument(
        "--rloo-beta", type=float, help="RLOO's KL coefficient (default: ours' final adaptive one)"
    )
    parser.add_argument("--rloo-betas", default="", help="sweep RLOO's β on validation, e.g. 0.05,0.3")
    parser.add_argument("--rloo-lr", type=float, help="RLOO's learning rate (default: ours' PPO lr)")
    parser.add_argument("--rloo-generations", type=int, default=4, help="RLOO responses per prompt")
    parser.add_argument("--dpo-betas", default="0.1,1.0", help="DPO β sweep on validation")
    parser.add_argument(
        "--dpo-refine", type=int, default=1, help="extra matched-β DPO runs if KL is off by >25%%"
    )
    parser.add_argument(
        "--train-seed", type=int, help="seed of PPO, RLOO and DPO (default: the run's PPO seed)"
    )
    parser.add_argument("--ppo-steps", type=int, help="override ours' PPO iterations (smoke runs)")
    parser.add_argument("--max-pairs", type=int, help="train DPO on at most this many pairs (smoke runs)")
    parser.add_argument("--kl-samples", type=int, default=256, help="responses per KL estimate")
    parser.add_argument("--out", type=Path, default=Path("peer_comparison.json"))
    parser.add_argument("--trl-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.trl_worker is not None:
        _trl_worker(args.trl_worker)
        return 0
    if args.home is None:
        parser.error("--home is required")
    result = run(args)
    from common import write_json

    write_json(args.out, result)
    print(report(result))
    print(f"\nJSON: {args.out}")
    return 0


def _log(message: str) -> None:
    print(f"[peer_comparison] {message}", file=sys.stderr, flush=True)


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


class CpuClock:
    """Process CPU seconds since start, less what was spent on bookkeeping (copies of checkpoints)."""

    def __init__(self) -> None:
        self.start, self.excluded = time.process_time(), 0.0

    def now(self) -> float:
        return time.process_time() - self.start - self.excluded

    def exclude(self, started: float) -> None:
        self.excluded += time.process_time() - started


# --- the run's data -----------------------------------------------------------------------------


def load_run(args: argparse.Namespace) -> dict[str, Any]:
    from dataclasses import replace

    from finished_run import locate_run

    from clinrlhf.feedback.screening import check_sources
    from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts, scenarios
    from clinrlhf.pipeline.config import with_stage_seeds
    from clinrlhf.pipeline.single import consistent_read
    from clinrlhf.policy import load_policy
    from clinrlhf.reward.evaluate import HELDOUT_FRACTION, split_by_patient
    from clinrlhf.reward.io import load_reward_model
    from clinrlhf.reward.pairs import pairs_from_judgments
    from clinrlhf.world.world import load_world

    run_files = locate_run(args.home, args.run_id, args.run_date)
    config = with_stage_seeds(run_files.config)  # a stage seed the run left None, as the run derived it
    if args.train_seed is not None:  # another draw of the training randomness on the same data
        config = replace(config, ppo=replace(config.ppo, seed=args.train_seed))
    world = load_world()
    judgments, _ = consistent_read(run_files.snapshot)
    check_sources(judgments)
    sft, tokenizer = load_policy(run_files.sft)
    reward, _, _ = load_reward_model(run_files.sft.parent / "reward")
    cohorts = make_cohorts(
        world,
        CohortSizes(validation=config.validation_patients, test=config.test_patients),
        config.seed,
        run_files.run_date,
    )
    pairs = pairs_from_judgments(judgments, world=world)
    train_pairs, _ = split_by_patient(pairs, HELDOUT_FRACTION, config.reward.seed)
    _log(
        f"run {run_files.run_id} of {run_files.home} (seed {config.seed}, {run_files.run_date}): "
        f"{len(judgments)} judgments, {len(train_pairs or pairs)} training pairs"
    )
    return {
        "files": run_files,
        "config": config,
        "world": world,
        "sft": sft.eval(),
        "tokenizer": tokenizer,
        "reward": reward,
        "prompts": sorted({j.prompt for j in judgments}),  # PPO's prompts in the pipeline
        "pairs": train_pairs or pairs,
        "validation": scenarios(cohorts.validation),
        "test": scenarios(cohorts.test),
    }


def validity_penalty(config: Any) -> float:
    """The run's validity penalty (a config field since the formulary; the constant before)."""
    from clinrlhf.pipeline.policy_reward import INVALID_PENALTY

    return float(getattr(config, "validity_penalty", INVALID_PENALTY))


def reward_fn(data: dict[str, Any]):
    from clinrlhf.pipeline.policy_reward import prescription_reward

    penalty = validity_penalty(data["config"])
    return prescription_reward(data["world"], data["reward"], data["tokenizer"], penalty)


def measure(data: dict[str, Any], model: Any, cohort: str, kl_samples: int, *, with_kl: bool = True) -> dict:
    """Greedy concordance and unsafe rate on `cohort`, and KL(π‖SFT) on its prompts."""
    from clinrlhf.eval.evaluate import evaluate_policy
    from clinrlhf.eval.kl import kl_to_reference
    from clinrlhf.text.prompt import render_prompt

    scenarios = data[cohort]
    evaluation = evaluate_policy(model, data["tokenizer"], data["world"], scenarios)
    out: dict[str, Any] = {
        "concordance": evaluation.concordance,
        "unsafe_rate": evaluation.unsafe_rate,
        "n": evaluation.n,
    }
    if with_kl:
        ppo = data["config"].ppo
        prompts = sorted({render_prompt(data["world"], s.facts, s.target) for s in scenarios})
        kl = kl_to_reference(
            model,
            data["sft"],
            data["tokenizer"],
            prompts,
            samples=kl_samples,
            response_length=ppo.response_length,
            temperature=ppo.temperature,
            seed=0,
        )
        out["kl"], out["kl_ci"] = kl["kl"], [kl["kl_ci_low"], kl["kl_ci_high"]]
    return out


def _policy_from(data: dict[str, Any], state: dict[str, torch.Tensor]) -> Any:
    model = copy.deepcopy(data["sft"])
    model.load_state_dict(state)
    return model.eval()


def _assert_fp32(model: torch.nn.Module, who: str) -> None:
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float32}:
        raise SystemExit(f"{who}: parameters are {sorted(map(str, dtypes))}, not float32")


# --- ours ---------------------------------------------------------------------------------------


def run_ours(data: dict[str, Any], steps: int | None) -> dict[str, Any]:
    from dataclasses import replace

    from clinrlhf.pipeline.policy_reward import formulary_candidates
    from clinrlhf.ppo.trainer import train_ppo

    config = data["config"].ppo
    config = replace(config, steps=steps or config.steps, checkpoint_every=10**9)
    marks = {round(config.steps * (i + 1) / CHECKPOINTS) for i in range(CHECKPOINTS)}
    policy, reference = copy.deepcopy(data["sft"]), copy.deepcopy(data["sft"]).eval()
    value = copy.deepcopy(data["reward"])
    for model, who in ((policy, "policy"), (reference, "reference"), (value, "value")):
        _assert_fp32(model, f"ours' {who}")
    states: list[tuple[int, float, dict[str, torch.Tensor]]] = []
    clock = CpuClock()

    def progress(step: int, total: int) -> None:
        if step in marks:
            seconds, started = clock.now(), time.process_time()
            states.append((step, seconds, copy.deepcopy(policy.state_dict())))
            clock.exclude(started)

    result = train_ppo(
        policy,
        reference,
        value,
        reward_fn(data),
        data["tokenizer"],
        data["prompts"],
        config,
        progress=progress,
        candidates=formulary_candidates(data["world"], validity_penalty(data["config"])),
        outside_score=-validity_penalty(data["config"]),
    )
    seconds = states[-1][1]  # at the last iteration's end: PPO's own final-KL sampling is not training
    _log(f"ours: {config.steps} PPO iterations in {seconds:.0f} CPU s, final KL {result.final_kl:.2f}")
    return {
        "config": {"steps": config.steps, "batch_size": config.batch_size, "lr": config.lr},
        "cpu_seconds": seconds,
        "final_kl_training": result.final_kl,
        "final_kl_coef": result.final_kl_coef,
        "checkpoints": [(step, seconds, state) for step, seconds, state in states],
    }


# --- RLOO (TRL 1.16, its own virtualenv) --------------------------------------------------------


def run_rloo(
    data: dict[str, Any],
    python: str,
    *,
    beta: float,
    lr: float,
    generations: int,
    cpu_budget: float,
    work: Path,
) -> dict[str, Any]:
    ppo = data["config"].ppo
    if ppo.rollouts == "formulary":  # RLOO samples: give it sampled PPO's batches, as before formulary PPO
        from dataclasses import replace

        from clinrlhf.ppo.config import PPOConfig

        ppo = replace(PPOConfig(), seed=ppo.seed)
    setup = {
        "sft": str(data["files"].sft),
        "reward": str(data["files"].sft.parent / "reward"),
        "prompts": data["prompts"],
        "beta": beta,
        "lr": lr,
        "num_generations": generations,
        "batch_size": ppo.batch_size,
        "mini_batches": ppo.mini_batches,
        "response_length": ppo.response_length,
        "temperature": ppo.temperature,
        "missing_eos_penalty": ppo.missing_eos_penalty,
        "validity_penalty": validity_penalty(data["config"]),
        "cpu_budget": cpu_budget,
        "checkpoints": CHECKPOINTS,
        "seed": ppo.seed,
        "project_site": _project_site(),
        "repo": str(Path(__file__).resolve().parents[1]),
    }
    work.mkdir(parents=True, exist_ok=True)
    (work / "setup.json").write_text(json.dumps(setup))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [python, __file__, "--trl-worker", str(work)], env=env, capture_output=True, text=True, check=False
    )
    (work / "worker.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(
            f"the RLOO worker failed (exit {done.returncode}): {tail[0]} (see {work}/worker.log)"
        )
    out = json.loads((work / "rloo.json").read_text())
    out["checkpoints"] = [
        (c["step"], c["cpu_seconds"], torch.load(work / c["file"], weights_only=True))
        for c in out["checkpoints"]
    ]
    _log(f"rloo β={beta}: {out['steps']} optimizer steps in {out['cpu_seconds']:.0f} CPU s")
    return out


def _project_site() -> str:
    import sysconfig

    return sysconfig.get_paths()["purelib"]


def _trl_worker(folder: Path) -> None:
    """Runs under TRL's virtualenv: RLOO from the SFT policy on our reward, until the CPU budget."""
    import site

    setup = json.loads((folder / "setup.json").read_text())
    site.addsitedir(setup["project_site"])  # after TRL's own packages: only for clinrlhf's reward
    sys.path.append(setup["repo"])
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import RLOOConfig, RLOOTrainer

    from clinrlhf.pipeline.policy_reward import prescription_reward
    from clinrlhf.reward.io import load_reward_model
    from clinrlhf.world.world import load_world

    torch.set_num_threads(1)
    clock = CpuClock()
    tokenizer = AutoTokenizer.from_pretrained(setup["sft"], local_files_only=True, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(setup["sft"], local_files_only=True, dtype=torch.float32)
    reward_model, reward_tokenizer, _ = load_reward_model(setup["reward"])
    _assert_fp32(model, "RLOO's policy")
    _assert_fp32(reward_model, "RLOO's reward model")
    penalty_kw = {"invalid_penalty": setup["validity_penalty"]} if "validity_penalty" in setup else {}
    score = prescription_reward(load_world(), reward_model, reward_tokenizer, **penalty_kw)
    eos, penalty = tokenizer.eos_token_id, setup["missing_eos_penalty"]

    def reward(prompts: list[str], completions: list[str], completion_ids: list[list[int]], **_: Any):
        scores = score(list(prompts), list(completions))
        return [
            float(s) + (0.0 if eos in ids else penalty) for s, ids in zip(scores, completion_ids, strict=True)
        ]

    batch, generations = setup["batch_size"], setup["num_generations"]
    # Each generation of `batch` responses is split into `mini_batches` optimizer steps, as ours.
    per_step = batch // setup["mini_batches"]
    config = RLOOConfig(
        output_dir=str(folder / "trl-out"),
        per_device_train_batch_size=per_step,
        gradient_accumulation_steps=1,
        generation_batch_size=batch,
        num_generations=generations,
        max_completion_length=setup["response_length"],
        temperature=setup["temperature"],
        top_p=1.0,
        top_k=0,
        beta=setup["beta"],
        learning_rate=setup["lr"],
        lr_scheduler_type="constant",
        max_steps=10**6,  # stopped by the CPU budget
        bf16=False,
        fp16=False,
        disable_dropout=True,
        logging_steps=10,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=setup["seed"],
    )
    dataset = Dataset.from_dict({"prompt": setup["prompts"]})
    saved: list[dict[str, Any]] = []
    marks = [setup["cpu_budget"] * (i + 1) / setup["checkpoints"] for i in range(setup["checkpoints"])]

    class Budget(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
            seconds = clock.now()
            while marks and seconds >= marks[0]:
                marks.pop(0)
                started = time.process_time()
                name = f"step{state.global_step}.pt"
                torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, folder / name)
                saved.append({"step": state.global_step, "cpu_seconds": seconds, "file": name})
                clock.exclude(started)
            if not marks:
                control.should_training_stop = True

    trainer = RLOOTrainer(
        model=model,
        reward_funcs=reward,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[Budget()],
    )
    _assert_fp32(trainer.model, "RLOO's policy in the trainer")
    if trainer.ref_model is not None:
        _assert_fp32(trainer.ref_model, "RLOO's reference")
    trainer.train()
    logs = [row for row in trainer.state.log_history if "kl" in row]
    result = {
        "trl_version": trl.__version__,
        "steps": trainer.state.global_step,
        "cpu_seconds": clock.now(),
        "config": {
            k: getattr(config, k)
            for k in (
                "per_device_train_batch_size",
                "gradient_accumulation_steps",
                "generation_batch_size",
                "steps_per_generation",
                "num_generations",
                "beta",
                "learning_rate",
                "num_iterations",
                "max_completion_length",
                "bf16",
            )
        },
        "training_kl_last": logs[-1]["kl"] if logs else None,
        "checkpoints": saved,
    }
    (folder / "rloo.json").write_text(json.dumps(result))


# --- DPO ----------------------------------------------------------------------------------------


def run_dpo(data: dict[str, Any], beta: float, max_pairs: int | None) -> dict[str, Any]:
    from clinrlhf.dpo.config import DPOConfig
    from clinrlhf.dpo.trainer import train_dpo

    pairs = data["pairs"][:max_pairs] if max_pairs else data["pairs"]
    clock = CpuClock()
    config = DPOConfig(beta=beta, seed=data["config"].ppo.seed)
    result = train_dpo(pairs, data["sft"], data["tokenizer"], config)
    seconds = clock.now()
    _log(f"dpo β={beta:.3g}: {result.steps} steps on {len(pairs)} pairs in {seconds:.0f} CPU s")
    return {"beta": beta, "cpu_seconds": seconds, "steps": result.steps, "policy": result.policy}


# --- the comparison -----------------------------------------------------------------------------


def _curve(data: dict[str, Any], run: dict[str, Any], start: dict[str, Any], kl_samples: int) -> list[dict]:
    """Test concordance at each checkpoint; KL at the last only (it is what the methods are matched on)."""
    points = [{"step": 0, "cpu_seconds": 0.0, **start}]
    checkpoints = run.pop("checkpoints")
    for i, (step, seconds, state) in enumerate(checkpoints):
        policy = _policy_from(data, state)
        last = i == len(checkpoints) - 1
        points.append(
            {"step": step, "cpu_seconds": seconds, **measure(data, policy, "test", kl_samples, with_kl=last)}
        )
    return points


def _matched_beta(sweep: list[dict[str, Any]], target_kl: float) -> float:
    """β matching `target_kl` on validation; an extrapolation is held within 10x of the sweep, where
    the log-log line was never measured."""
    from clinrlhf.eval.kl_match import beta_for_kl

    betas = [s["beta"] for s in sweep]
    beta = beta_for_kl([(s["beta"], max(s["validation"]["kl"], 1e-3)) for s in sweep], target_kl)
    return min(max(beta, min(betas) / 10), max(betas) * 10)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from clinrlhf.eval.budget import speed_ratio

    started = time.monotonic()
    methods = {m.strip() for m in args.methods.split(",") if m.strip()}
    if "ours" not in methods:
        raise SystemExit("the comparison is against ours: --methods must include ours")
    data = load_run(args)
    sft_test = measure(data, data["sft"], "test", args.kl_samples, with_kl=False) | {"kl": 0.0}
    out: dict[str, Any] = {
        "home": str(data["files"].home),
        "run_id": data["files"].run_id,
        "seed": data["config"].seed,
        "train_seed": data["config"].ppo.seed,
        "prompts": len(data["prompts"]),
        "pairs": len(data["pairs"]),
        "validation_scenarios": len(data["validation"]),
        "test_scenarios": len(data["test"]),
        "sft": {"test": sft_test},
        "torch": torch.__version__,
    }

    ours = run_ours(data, args.ppo_steps)
    last_state = ours["checkpoints"][-1][2]
    ours_policy = _policy_from(data, last_state)
    ours["validation"] = measure(data, ours_policy, "validation", args.kl_samples)
    target_kl = ours["validation"]["kl"]
    ours["curve"] = _curve(data, ours, sft_test, args.kl_samples)
    out["ours"] = ours
    _log(f"ours: validation KL {target_kl:.2f}, test concordance {ours['curve'][-1]['concordance']:.3f}")

    if "dpo" in methods:
        sweep: list[dict[str, Any]] = []
        for beta in _floats(args.dpo_betas):
            trained = run_dpo(data, beta, args.max_pairs)
            sweep.append(
                {"beta": beta, "validation": measure(data, trained["policy"], "validation", args.kl_samples)}
            )
        for _ in range(1 + args.dpo_refine):  # secant steps in log-log, each trained and measured
            beta = _matched_beta(sweep, target_kl)
            final = run_dpo(data, beta, args.max_pairs)
            policy = final.pop("policy")
            final["validation"] = measure(data, policy, "validation", args.kl_samples)
            sweep.append({"beta": beta, "validation": final["validation"]})
            if abs(math.log(max(final["validation"]["kl"], 1e-3) / target_kl)) < math.log(1.25):
                break
        test = measure(data, policy, "test", args.kl_samples)
        final["curve"] = [
            {"step": 0, "cpu_seconds": 0.0, **sft_test},
            {"step": final["steps"], "cpu_seconds": final["cpu_seconds"], **test},
        ]
        final["sweep"] = sweep
        out["dpo"] = final

    if "rloo" in methods and args.trl_python:
        lr = args.rloo_lr or data["config"].ppo.lr
        kwargs = {"lr": lr, "generations": args.rloo_generations, "cpu_budget": ours["cpu_seconds"]}
        with tempfile.TemporaryDirectory(prefix="peer_rloo_") as tmp:
            sweep = []
            if args.rloo_beta is None and not _floats(args.rloo_betas):
                beta = ours["final_kl_coef"]  # the penalty per nat ours ended with
            elif args.rloo_beta is None:
                for beta in _floats(args.rloo_betas):
                    trial = run_rloo(
                        data, args.trl_python, beta=beta, work=Path(tmp) / f"sweep{beta}", **kwargs
                    )
                    policy = _policy_from(data, trial["checkpoints"][-1][2])
                    sweep.append(
                        {"beta": beta, "validation": measure(data, policy, "validation", args.kl_samples)}
                    )
                beta = _matched_beta(sweep, target_kl)
            else:
                beta = args.rloo_beta
            rloo = run_rloo(data, args.trl_python, beta=beta, work=Path(tmp) / "final", **kwargs)
            rloo["validation"] = measure(
                data, _policy_from(data, rloo["checkpoints"][-1][2]), "validation", args.kl_samples
            )
            rloo["curve"] = _curve(data, rloo, sft_test, args.kl_samples)
        rloo["sweep"] = sweep
        out["rloo"] = rloo

    ours_curve = [(p["cpu_seconds"], p["concordance"]) for p in ours["curve"]]
    for peer in ("rloo", "dpo"):
        if peer in out:
            peer_curve = [(p["cpu_seconds"], p["concordance"]) for p in out[peer]["curve"]]
            out[peer]["speed_ratio"] = speed_ratio(ours_curve, peer_curve)
    out["seconds"] = time.monotonic() - started
    return out


def report(result: dict[str, Any]) -> str:
    lines = [
        f"seed {result['seed']} (training seed {result.get('train_seed')}): "
        f"{result['test_scenarios']} test scenarios",
        "| method | CPU s | test concordance | unsafe | KL test | KL validation | ours' CPU to reach it / its CPU |",
        "|---|---|---|---|---|---|---|",
        f"| SFT | 0 | {result['sft']['test']['concordance']:.3f} | {result['sft']['test']['unsafe_rate']:.3f} | 0 | 0 | |",
    ]
    for key, name in (("ours", "ours (KL-PPO)"), ("rloo", "TRL RLOO"), ("dpo", "DPO")):
        if key not in result:
            continue
        row, last = result[key], result[key]["curve"][-1]
        ratio = row.get("speed_ratio")
        lines.append(
            f"| {name} | {row['cpu_seconds']:.0f} | {last['concordance']:.3f} | {last['unsafe_rate']:.3f} | "
            f"{last['kl']:.2f} | {row['validation']['kl']:.2f} | {'' if ratio is None else f'{ratio:.2f}'} |"
        )
    for key in ("ours", "rloo"):
        if key in result:
            curve = ", ".join(f"{p['cpu_seconds']:.0f}s {p['concordance']:.3f}" for p in result[key]["curve"])
            lines.append(f"{key} curve: {curve}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' siblings
    raise SystemExit(main())
