"""Rollout + update throughput of our PPO against TRL 1.12's `trl.experimental.ppo`, in one run.

    python -m venv /tmp/trlvenv
    /tmp/trlvenv/bin/pip install torch==2.13.0 transformers==5.23.0 trl==1.12.0
    python benchmarks/ppo_vs_trl.py --trl-python /tmp/trlvenv/bin/python

TRL lives in its own virtualenv (it is not a dependency of clinrlhf); this script runs its half there
as a subprocess (`--trl-worker`), so this file imports nothing from clinrlhf at module level.

Both sides get the same randomly initialised GPT-2 policy, reference, reward and value models (saved
once, loaded by each), the same tokenizer and prompts, batch, response length, 4 PPO epochs over 2
mini-batches, no early stopping, fixed beta, one CPU thread, and the same work per iteration:
- the same number of Adam steps, one per mini-batch (8). TRL's batch is per_device_train_batch_size x
  gradient_accumulation_steps, and with accumulation above 1 it steps once per that many mini-batches,
  so it runs with accumulation 1 and the whole batch per device. Every optimizer step on each side is
  counted (a global post-step hook on torch's optimizers) and the run stops if the counts differ;
- fp32: TRL's PPOConfig defaults to bf16 (autocast) unless told otherwise, so bf16 and fp16 are off,
  and every model's parameters on both sides are checked to be float32.
Before 2026-12-07 TRL ran with accumulation 2 (half the Adam steps) in its default bf16.

The clock runs from the end of one iteration (rollout + scoring + updates) to the end of the next,
in wall and in process CPU time (each side is its own process; on a shared machine compare CPU);
the first `--warmup` are dropped.
Throughput is sampled response tokens per second, counting `batch x response_length` slots on both
sides (a random policy almost never samples EOS early, on either side).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--trl-python", help="python of a virtualenv with trl==1.12.0; omit to time ours alone"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--response-length", type=int, default=32)
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=5, help="timed PPO iterations")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    parser.add_argument("--out", type=Path, default=Path("ppo_vs_trl.json"))
    parser.add_argument("--trl-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.trl_worker is not None:
        _trl_worker(args.trl_worker)
        return
    with tempfile.TemporaryDirectory() as tmp:
        setup = _write_models(Path(tmp), args)
        results = {"setup": {k: v for k, v in setup.items() if k != "dir"}, "ours": _time_ours(setup)}
        if args.trl_python:
            results["trl"] = _time_trl(args.trl_python, setup)
            check_equal_work(results["ours"], results["trl"], setup)
    args.out.write_text(json.dumps(results, indent=2))
    for name in ("ours", "trl"):
        if name in results:
            r = results[name]
            print(
                f"{name:5} {r['tokens_per_second']:8.0f} tokens/s  {r['seconds_per_iteration']:.2f} s/iteration  "
                f"{r['tokens_per_cpu_second']:8.0f} tokens/CPU-s  {r['cpu_seconds_per_iteration']:.2f} CPU-s/iteration"
            )
    print(f"wrote {args.out}")


def check_equal_work(ours: dict, trl: dict, setup: dict) -> None:
    """SystemExit unless both sides took the same Adam steps in every iteration, on the same batch."""
    if trl["config"]["batch_size"] != setup["batch_size"]:
        raise SystemExit(f"TRL's batch is {trl['config']['batch_size']}, ours {setup['batch_size']}")
    a, b = ours["optimizer_steps_per_iteration"], trl["optimizer_steps_per_iteration"]
    if a != b:
        raise SystemExit(f"unequal optimizer steps per iteration: ours {a}, TRL {b}")


def _write_models(folder: Path, args: argparse.Namespace) -> dict:
    """One set of random weights for both sides: a causal LM (policy and reference) and a sequence
    classifier (reward and value), with our tokenizer and the world's prompts."""
    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

    from clinrlhf.policy.tokenizer import build_tokenizer
    from clinrlhf.text.prompt import render_prompt, vocabulary_corpus
    from clinrlhf.world.patients import generate_patients
    from clinrlhf.world.world import load_world

    world = load_world()
    tokenizer = build_tokenizer(vocabulary_corpus(world))
    prompts = sorted(
        {render_prompt(world, p.facts, t) for p in generate_patients(world, 200, 0) for t in p.targets}
    )
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=256,
        n_embd=args.n_embd,
        n_layer=args.n_layer,
        n_head=4,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=1,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder / "policy")
    GPT2ForSequenceClassification(config).save_pretrained(folder / "reward")
    tokenizer.save_pretrained(folder / "policy")
    (folder / "prompts.json").write_text(json.dumps(prompts))
    return {
        "dir": str(folder),
        "batch_size": args.batch_size,
        "response_length": args.response_length,
        "iterations": args.iterations,
        "warmup": args.warmup,
        "n_layer": args.n_layer,
        "n_embd": args.n_embd,
        "vocab_size": len(tokenizer),
        "prompts": len(prompts),
        "mean_prompt_tokens": statistics.mean(len(tokenizer(p)["input_ids"]) for p in prompts),
        "threads": 1,
    }


class StepCounter:
    """Counts every optimizer step in this process (torch's global post-step hook) and, at each tick,
    how many were taken since the last: the Adam steps of each PPO iteration."""

    def __init__(self) -> None:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self.total, self.last = 0, 0
        self.per_iteration: list[int] = []
        self.handle = register_optimizer_step_post_hook(self._count)

    def _count(self, optimizer, args, kwargs) -> None:
        self.total += 1

    def tick(self) -> None:
        self.per_iteration.append(self.total - self.last)
        self.last = self.total

    def close(self) -> None:
        self.handle.remove()


def assert_fp32(models: dict, where: str) -> dict[str, str]:
    """Each model's parameter dtype; SystemExit naming the first that is not float32."""
    dtypes = {name: {str(p.dtype) for p in model.parameters()} for name, model in models.items()}
    for name, found in dtypes.items():
        if found != {"torch.float32"}:
            raise SystemExit(f"{where}: {name} has parameters of {sorted(found)}, not float32")
    return {name: "float32" for name in dtypes}


def _time_ours(setup: dict) -> dict:
    import copy

    from transformers import AutoModel, AutoModelForSequenceClassification

    from clinrlhf.policy import load_policy
    from clinrlhf.ppo import PPOConfig, train_ppo
    from clinrlhf.reward.evaluate import score_texts
    from clinrlhf.reward.model import ScalarHeadModel

    folder = Path(setup["dir"])
    policy, tokenizer = load_policy(folder / "policy")
    reward = _scalar_head(folder / "reward", AutoModel, AutoModelForSequenceClassification, ScalarHeadModel)
    config = PPOConfig(
        steps=setup["warmup"] + setup["iterations"],
        batch_size=setup["batch_size"],
        mini_batches=2,
        ppo_epochs=4,
        response_length=setup["response_length"],
        adaptive_kl=False,
        init_kl_coef=0.05,  # TRL's default kl_coef
        target_approx_kl=None,  # TRL has no early stopping: every epoch runs on both sides
        kl_cap=None,
        final_kl_samples=0,
    )
    ticks: list[float] = []
    cpu: list[float] = []
    steps = StepCounter()

    def tick(step: int, total: int) -> None:
        ticks.append(time.perf_counter())
        cpu.append(time.process_time())
        steps.tick()

    reference, value = copy.deepcopy(policy), copy.deepcopy(reward)
    dtypes = assert_fp32({"policy": policy, "reference": reference, "reward": reward, "value": value}, "ours")
    start, cpu_start = time.perf_counter(), time.process_time()
    train_ppo(
        policy,
        reference,
        value,
        lambda prompts, texts: score_texts(reward, tokenizer, prompts, texts),
        tokenizer,
        json.loads((folder / "prompts.json").read_text()),
        config,
        progress=tick,
    )
    return _rates([start, *ticks], [cpu_start, *cpu], setup) | {
        "optimizer_steps_per_iteration": steps.per_iteration,
        "dtypes": dtypes,
    }


def _scalar_head(path: Path, auto_model, auto_classifier, scalar_head_model):
    """Our ScalarHeadModel carrying the classifier's weights: the same reward function as TRL's."""
    classifier = auto_classifier.from_pretrained(path, local_files_only=True)
    model = scalar_head_model(auto_model.from_pretrained(path, local_files_only=True))
    with torch.no_grad():
        model.head.weight.copy_(classifier.score.weight)
        model.head.bias.zero_()  # TRL's score layer has no bias
    return model.eval()


def _time_trl(python: str, setup: dict) -> dict:
    out = Path(setup["dir"]) / "trl.json"
    (Path(setup["dir"]) / "setup.json").write_text(json.dumps(setup))
    # TRL prints its metrics every step; its errors (stderr) still show.
    subprocess.run([python, __file__, "--trl-worker", setup["dir"]], check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def _trl_worker(folder: Path) -> None:
    """Runs under TRL's virtualenv: TRL's PPO on the same models, with the same sizes."""
    import trl
    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        TrainerCallback,
    )
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    setup = json.loads((folder / "setup.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(folder / "policy", local_files_only=True, padding_side="left")
    prompts = json.loads((folder / "prompts.json").read_text())
    dataset = Dataset.from_dict({"input_ids": [tokenizer(p)["input_ids"] for p in prompts]})
    batch, steps = setup["batch_size"], setup["warmup"] + setup["iterations"]
    config = PPOConfig(
        output_dir=str(folder / "trl-out"),
        # TRL's batch is per_device x accumulation; accumulation 2 would step once per 2 mini-batches.
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=1,
        num_mini_batches=2,  # 2 mini-batches of batch/2, one Adam step each, as ours
        bf16=False,  # TRL's PPOConfig defaults to bf16 autocast
        fp16=False,
        num_ppo_epochs=4,
        local_rollout_forward_batch_size=batch,
        response_length=setup["response_length"],
        total_episodes=batch * steps,
        learning_rate=3e-4,
        kl_coef=0.05,
        num_sample_generations=0,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )

    ticks: list[float] = []
    cpu: list[float] = []
    steps = StepCounter()

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            ticks.append(time.perf_counter())
            cpu.append(time.process_time())
            steps.tick()

    def load(auto):
        return auto.from_pretrained(folder / ("policy" if auto is AutoModelForCausalLM else "reward"))

    trainer = PPOTrainer(
        args=config,
        processing_class=tokenizer,
        model=load(AutoModelForCausalLM),
        ref_model=load(AutoModelForCausalLM),
        reward_model=load(AutoModelForSequenceClassification),
        value_model=load(AutoModelForSequenceClassification),
        train_dataset=dataset,
        callbacks=[Clock()],
    )
    if trainer.args.bf16 or trainer.args.fp16:
        raise SystemExit("TRL: mixed precision is on; the comparison is fp32 on both sides")
    models = {
        "policy": trainer.policy_model,
        "reference": trainer.ref_model,
        "reward": trainer.reward_model,
        "value": trainer.value_model,
    }
    dtypes = assert_fp32(models, "TRL")
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.train()
    result = _rates([start, *ticks], [cpu_start, *cpu], setup) | {
        "trl_version": trl.__version__,
        "optimizer_steps_per_iteration": steps.per_iteration,
        "dtypes": dtypes,
        "config": {
            "per_device_train_batch_size": config.per_device_train_batch_size,
            "gradient_accumulation_steps": config.gradient_accumulation_steps,
            "num_mini_batches": config.num_mini_batches,
            "batch_size": trainer.args.batch_size,
            "bf16": trainer.args.bf16,
        },
    }
    (folder / "trl.json").write_text(json.dumps(result))


def _rates(times: list[float], cpu: list[float], setup: dict) -> dict:
    """Median wall and process-CPU seconds per timed iteration; on a shared machine the CPU figure
    is the one to compare (wall time there also counts other people's jobs)."""

    def timed(clock: list[float]) -> list[float]:
        return [b - a for a, b in zip(clock, clock[1:], strict=False)][setup["warmup"] :]

    durations, cpu_durations = timed(times), timed(cpu)
    if not durations:
        raise RuntimeError("no timed iterations: raise --iterations")
    seconds, cpu_seconds = statistics.median(durations), statistics.median(cpu_durations)
    tokens = setup["batch_size"] * setup["response_length"]
    return {
        "seconds_per_iteration": seconds,
        "tokens_per_second": tokens / seconds,
        "cpu_seconds_per_iteration": cpu_seconds,
        "tokens_per_cpu_second": tokens / cpu_seconds,
        "episodes_per_second": setup["batch_size"] / seconds,
        "iteration_seconds": durations,
        "iteration_cpu_seconds": cpu_durations,
        "torch": torch.__version__,
    }


if __name__ == "__main__":
    main()
