"""`torchrun --nproc_per_node 2 -m clinrlhf train ppo` with two CPU processes (gloo): every rank trains
on the prompts the config names, the same list on each, and a run stopped at a checkpoint resumes
on both ranks.

This file is also what torchrun starts: `python test_train_distributed.py RECORD_DIR ARGV...` runs
`clinrlhf ARGV...` in each rank, with a spy on the trainer's prompt draw that writes, per rank, the
prompt lists the trainer was handed (a spy, not a mock: the draw itself runs unchanged).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from clinrlhf.cli import main
from clinrlhf.feedback import Judgment, to_ndjson
from clinrlhf.pipeline.config import load_pipeline_config
from clinrlhf.pipeline.single import history_examples
from clinrlhf.ppo.checkpoint import CHECKPOINT_FILE
from clinrlhf.settings import load_settings
from clinrlhf.text.prompt import render_prompt, render_response
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.practice import HABITS
from clinrlhf.world.scoring import acceptable
from clinrlhf.world.world import load_world

HISTORY_PROMPTS = {
    "history_patients": 40,
    "ppo_prompts": "history",
    "policy": {"n_layer": 1, "n_embd": 32, "n_head": 2},
    "sft": {"epochs": 1},
    "reward": {"epochs": 1, "batch_size": 16},
    # 4 prompts per rank and step; a checkpoint every step, so a longer run resumes from the last one.
    # Sampled rollouts, whose per-step scoring the test counts (formulary PPO under torchrun:
    # tests/clinrlhf/ppo/test_distributed.py).
    "ppo": {"rollouts": "sampled", "steps": 2, "batch_size": 8, "mini_batches": 1, "ppo_epochs": 1, "final_kl_samples": 8,
            "checkpoint_every": 1, "response_length": 8},
}  # fmt: skip


def _snapshot(path: Path, n: int = 24) -> Path:
    """Pairwise judgments, as `clinrlhf export` writes them, on patients no history cohort holds."""
    world, rng = load_world(), random.Random(0)
    judgments = []
    for i, patient in enumerate(generate_patients(world, n, 5)):
        target = patient.targets[0]
        good = sorted(acceptable(world, patient.facts, target) - {HABITS[target]})
        if good:
            texts = (render_response(world, rng.choice(good)), render_response(world, HABITS[target]))
            prompt = render_prompt(world, patient.facts, target)
            judgments.append(
                Judgment("pairwise", f"c{i}", f"p{i}", f"dr-{i % 3}", prompt, texts, preferred=0)
            )
    path.write_bytes(to_ndjson(judgments))
    return path


def _torchrun(record: Path, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    return subprocess.run(
        [*command, __file__, str(record), *argv], env=env, capture_output=True, text=True, timeout=480
    )


def _recorded(record: Path, rank: int) -> list[list[str]]:
    return [json.loads(line) for line in (record / f"prompts{rank}.ndjson").read_text().splitlines()]


def test_both_ranks_train_on_the_history_prompts_and_resume_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("CLINRLHF_HOME", str(home))
    for name in ("CLINRLHF_DATABASE_URL", "CLINRLHF_POLICY", "CLINRLHF_ENV", "CLINRLHF_DEID_KEY"):
        monkeypatch.delenv(name, raising=False)
    torch.set_num_threads(1)
    config = tmp_path / "history.json"
    config.write_text(json.dumps(HISTORY_PROMPTS))
    data = _snapshot(tmp_path / "feedback.ndjson")
    sft, reward, policy = tmp_path / "sft", tmp_path / "reward", tmp_path / "policy"
    assert main(["train", "sft", "--out", str(sft), "--config", str(config)]) == 0
    argv = ["--policy", str(sft), "--snapshot", str(data)]
    assert main(["train", "reward", *argv, "--config", str(config), "--out", str(reward)]) == 0
    ppo = ["train", "ppo", *argv, "--reward", str(reward), "--out", str(policy), "--config"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    env.pop("MLFLOW_TRACKING_URI", None)

    done = _torchrun(tmp_path / "first", [*ppo, str(config)], env)
    assert done.returncode == 0, done.stderr[-4000:]
    assert json.loads(done.stdout)["world_size"] == 2
    history = history_examples(load_settings(), load_world(), load_pipeline_config(config))
    expected = sorted({prompt for prompt, _ in history})
    snapshot_prompts = {json.loads(line)["prompt"] for line in data.read_text().splitlines()}
    assert not snapshot_prompts & set(expected)  # so a rank on the snapshot's prompts cannot pass
    for rank in (0, 1):
        lists = _recorded(tmp_path / "first", rank)
        # Two steps and the final KL measure: every draw of every rank from the history prompts.
        assert len(lists) == 3 and all(prompts == expected for prompts in lists), f"rank {rank}"

    # Longer, from the same folder: rank 0 reads the step-2 checkpoint and sends it to rank 1, which
    # resumes it only if it rebuilt the very run rank 0 fingerprinted (reference weights and prompts).
    longer = tmp_path / "longer.json"
    longer.write_text(json.dumps({**HISTORY_PROMPTS, "ppo": {**HISTORY_PROMPTS["ppo"], "steps": 3}}))
    resumed = _torchrun(tmp_path / "resumed", [*ppo, str(longer)], env)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    state = torch.load(policy.parent / "checkpoints" / CHECKPOINT_FILE, weights_only=True)
    assert state["step"] == 3 and [row["step"] for row in state["history"]] == [1.0, 2.0, 3.0]
    assert [len(_recorded(tmp_path / "resumed", rank)) for rank in (0, 1)] == [2, 2]  # step 3 + final


def _spy_on_prompt_draws(record: Path, rank: int) -> None:
    from clinrlhf.ppo import trainer

    draw = trainer.draw_prompts

    def recording(prompts: list[str], *args, **kwargs) -> list[str]:
        with (record / f"prompts{rank}.ndjson").open("a") as out:
            out.write(json.dumps(prompts) + "\n")
        return draw(prompts, *args, **kwargs)

    trainer.draw_prompts = recording


if __name__ == "__main__":
    torch.set_num_threads(1)
    record_dir = Path(sys.argv[1])
    record_dir.mkdir(parents=True, exist_ok=True)
    _spy_on_prompt_draws(record_dir, int(os.environ["RANK"]))
    raise SystemExit(main(sys.argv[2:]))
