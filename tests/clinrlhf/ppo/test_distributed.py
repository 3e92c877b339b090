"""PPO under real `torchrun` with two CPU processes (gloo): both ranks finish with identical weights,
each sampled its own share, only rank 0 logged and checkpointed, and a resumed run continues exactly.

This file is also the worker that torchrun starts: `python test_distributed.py OUT WARM_STATE`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from clinrlhf.lineage.tracker import RecordingTracker
from clinrlhf.ppo import PPOConfig, train_ppo
from clinrlhf.ppo.checkpoint import CHECKPOINT_FILE
from clinrlhf.ppo.distributed import Dist, session

if TYPE_CHECKING:
    from conftest import Task

HERE = Path(__file__).resolve().parent
CONFIG = PPOConfig(
    steps=4,
    batch_size=16,  # 8 per rank
    mini_batches=2,
    ppo_epochs=2,
    lr=1e-3,
    response_length=16,
    checkpoint_every=2,
    final_kl_samples=16,
)


def _torchrun(*args: str) -> None:
    """This file as the worker of a real two-process `torchrun` (gloo on the loopback), `args` its argv."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = subprocess.run([*command, __file__, *args], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _train(task: Task, dist: Dist, config: PPOConfig, checkpoint_dir: Path, tracker=None):
    policy, ref, value = task.models(seed=0)
    seen: list[str] = []

    def reward(prompts: list[str], responses: list[str]) -> torch.Tensor:
        seen.extend(prompts)
        return task.reward(prompts, responses)

    result = train_ppo(
        policy, ref, value, reward, task.tokenizer, task.prompts, config, tracker, None, checkpoint_dir, dist
    )
    return result, value, seen


def _worker(out: Path, warm_state: Path) -> None:
    """One rank: a straight 4-step run, then a 2-step run resumed to 4 steps, each rank's results to `out`."""
    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    import conftest

    # The test process already warmed the tiny policy up; every rank reuses those exact weights.
    conftest._warm_start = lambda *_: torch.load(warm_state, weights_only=True)
    task = conftest.make_task()
    with session() as dist:
        ckpt = out / f"rank{dist.rank}"  # a rank that wrote anything would leave its own folder
        tracker = RecordingTracker()
        straight, value, seen = _train(task, dist, CONFIG, ckpt / "straight", tracker)
        _train(task, dist, dataclasses.replace(CONFIG, steps=2), ckpt / "resumed")
        resumed, resumed_value, _ = _train(task, dist, CONFIG, ckpt / "resumed")
        torch.save(
            {
                "policy": _flat(straight.policy),
                "value": _flat(value),
                "resumed_policy": _flat(resumed.policy),
                "resumed_value": _flat(resumed_value),
            },
            out / f"params{dist.rank}.pt",
        )
        summary = {
            "world_size": dist.world_size,
            "history": straight.history,
            "resumed_history": resumed.history,
            "final_kl": straight.final_kl,
            "logged": len(tracker.metrics),
            "first_prompts": seen[: CONFIG.batch_size // dist.world_size],
            "scored": len(seen),
        }
        (out / f"summary{dist.rank}.json").write_text(json.dumps(summary))


def test_two_torchrun_ranks_train_one_policy_and_resume_exactly(task: Task, tmp_path: Path) -> None:
    warm = tmp_path / "warm.pt"
    torch.save(task.warm, warm)
    _torchrun(str(tmp_path), str(warm))

    summaries = [json.loads((tmp_path / f"summary{r}.json").read_text()) for r in (0, 1)]
    params = [torch.load(tmp_path / f"params{r}.pt", weights_only=True) for r in (0, 1)]
    assert [s["world_size"] for s in summaries] == [2, 2]
    # DDP averaged the gradients: both ranks hold the very same weights, policy and value model.
    for name in ("policy", "value", "resumed_policy", "resumed_value"):
        assert torch.equal(params[0][name], params[1][name]), name
    # ...yet each rank sampled its own half of every batch, and only its half.
    assert summaries[0]["first_prompts"] != summaries[1]["first_prompts"]
    half = CONFIG.batch_size // 2
    assert [s["scored"] for s in summaries] == [CONFIG.steps * half + CONFIG.final_kl_samples // 2] * 2
    # Metrics are all-reduced, so both ranks kept the same history (and the same beta).
    assert summaries[0]["history"] == summaries[1]["history"]
    assert len(summaries[0]["history"]) == CONFIG.steps
    for row in summaries[0]["history"]:
        assert all(torch.isfinite(torch.tensor(v)) for v in row.values()), row
        assert row["ppo.response_length"] > 0
    assert summaries[0]["final_kl"] == summaries[1]["final_kl"]
    # Only rank 0 logged and wrote checkpoints.
    assert summaries[0]["logged"] == CONFIG.steps + 1 and summaries[1]["logged"] == 0
    assert (tmp_path / "rank0" / "straight" / CHECKPOINT_FILE).exists()
    assert not (tmp_path / "rank1").exists()
    # Stopped after 2 steps and resumed to 4, the run matches the straight one.
    assert torch.allclose(params[0]["resumed_policy"], params[0]["policy"], atol=1e-6)
    assert torch.allclose(params[0]["resumed_value"], params[0]["value"], atol=1e-6)
    for resumed, straight in zip(summaries[0]["resumed_history"], summaries[0]["history"], strict=True):
        for key, value in straight.items():
            if key != "ppo.tokens_per_second":
                assert abs(resumed[key] - value) < 1e-5 * max(1.0, abs(value)), key


def _disagreeing_worker(out: Path) -> None:
    """One rank of a launch whose ranks were handed different prompts: train_ppo must refuse on each."""
    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    import conftest

    from clinrlhf.policy import build_policy, build_tokenizer
    from clinrlhf.reward.model import ScalarHeadModel
    from clinrlhf.text.prompt import vocabulary_corpus
    from clinrlhf.world import load_world

    world = load_world()
    tokenizer = build_tokenizer(vocabulary_corpus(world))
    with session() as dist:
        torch.manual_seed(0)
        policy = build_policy(conftest.TINY, tokenizer)
        value = ScalarHeadModel(copy.deepcopy(policy.transformer))
        prompts = sorted(task_prompts(world))
        mine = prompts if dist.is_main else prompts[1:]  # a follower that built its list its own way
        try:
            train_ppo(policy, copy.deepcopy(policy), value, lambda p, r: torch.zeros(len(p)), tokenizer,
                      mine, CONFIG, None, None, out / f"rank{dist.rank}", dist)  # fmt: skip
            outcome = "trained"
        except ValueError as err:
            outcome = str(err)
        (out / f"outcome{dist.rank}.txt").write_text(outcome)


def task_prompts(world) -> set[str]:
    from clinrlhf.text.prompt import render_prompt
    from clinrlhf.world.patients import generate_patients

    return {render_prompt(world, p.facts, t) for p in generate_patients(world, 4, seed=1) for t in p.targets}


def test_ranks_handed_different_prompts_refuse_to_train(tmp_path: Path) -> None:
    """DDP would average the gradients of two objectives without a word: every rank stops instead."""
    _torchrun("disagree", str(tmp_path))
    for rank in (0, 1):
        outcome = (tmp_path / f"outcome{rank}.txt").read_text()
        assert outcome == "rank(s) 1 were given other PPO prompts than rank 0; every rank needs the same"
        assert not (tmp_path / f"rank{rank}").exists()  # stopped before a step, so no checkpoint


def _formulary_worker(out: Path, warm_state: Path) -> None:
    """One rank of formulary PPO: each rank weighs every prescription of its own share of the prompts."""
    from functools import partial

    from clinrlhf.text.prompt import prescriptions

    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    import conftest

    conftest._warm_start = lambda *_: torch.load(warm_state, weights_only=True)
    task = conftest.make_task()
    config = dataclasses.replace(CONFIG, rollouts="formulary", checkpoint_every=10**9)
    with session() as dist:
        policy, ref, value = task.models(seed=0)
        tracker = RecordingTracker()
        result = train_ppo(
            policy, ref, value, task.reward, task.tokenizer, task.prompts, config, tracker, None, None, dist,
            candidates=partial(prescriptions, task.world), outside_score=-3.0,
        )  # fmt: skip
        torch.save({"policy": _flat(result.policy)}, out / f"params{dist.rank}.pt")
        summary = {"history": result.history, "logged": len(tracker.metrics), "kl_coef": result.final_kl_coef}
        (out / f"summary{dist.rank}.json").write_text(json.dumps(summary))


def test_two_torchrun_ranks_train_one_policy_on_formulary_rollouts(task: Task, tmp_path: Path) -> None:
    warm = tmp_path / "warm.pt"
    torch.save(task.warm, warm)
    _torchrun("formulary", str(tmp_path), str(warm))
    summaries = [json.loads((tmp_path / f"summary{r}.json").read_text()) for r in (0, 1)]
    params = [torch.load(tmp_path / f"params{r}.pt", weights_only=True) for r in (0, 1)]
    assert torch.equal(params[0]["policy"], params[1]["policy"])  # DDP averaged the gradients
    assert not torch.equal(params[0]["policy"], _flat(task.models()[0]))  # and they moved
    assert summaries[0]["history"] == summaries[1]["history"] and len(summaries[0]["history"]) == CONFIG.steps
    assert summaries[0]["kl_coef"] == summaries[1]["kl_coef"]  # one β, rank 0's
    assert summaries[0]["logged"] == CONFIG.steps + 1 and summaries[1]["logged"] == 0


if __name__ == "__main__":
    if sys.argv[1] == "disagree":
        _disagreeing_worker(Path(sys.argv[2]))
    elif sys.argv[1] == "formulary":
        _formulary_worker(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        _worker(Path(sys.argv[1]), Path(sys.argv[2]))


def test_a_process_without_gpus_trains_on_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert Dist().device == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert Dist(rank=3, world_size=4, local_rank=1).device == torch.device("cuda", 1)
