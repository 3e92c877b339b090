"""`clinrlhf train sft|reward|ppo`: each stage alone, from the files the previous one wrote, with a
real MLflow store under a temporary CLINRLHF_HOME. Tiny sizes keep it to seconds."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from clinrlhf.cli import main
from clinrlhf.feedback import Judgment, to_ndjson
from clinrlhf.feedback.judgment import from_ndjson
from clinrlhf.lineage.runs import configure_mlflow
from clinrlhf.pipeline import stages
from clinrlhf.pipeline.config import load_pipeline_config
from clinrlhf.policy import load_policy
from clinrlhf.ppo.checkpoint import CHECKPOINT_FILE
from clinrlhf.reward.io import load_reward_model
from clinrlhf.reward.ledger import LEDGER_FILE, deployment_ledger
from clinrlhf.reward.raters import with_rater_accuracies
from clinrlhf.settings import load_settings
from clinrlhf.text.prompt import render_prompt, render_response
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.practice import HABITS
from clinrlhf.world.scoring import acceptable
from clinrlhf.world.world import load_world
from privacy.dp.renyi_filter import Mechanism, filter_epsilon

TINY = {
    "history_patients": 80,
    "policy": {"n_layer": 1, "n_embd": 32, "n_head": 2},
    "sft": {"epochs": 1},
    "reward": {"epochs": 1, "batch_size": 16},
    # Sampled rollouts: a policy after one epoch of SFT on 80 patients puts almost none of its mass on
    # the formulary's prescriptions, so formulary PPO (the loop's) would rightly barely move it.
    "ppo": {"rollouts": "sampled", "steps": 2, "batch_size": 8, "mini_batches": 1, "ppo_epochs": 1},
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLINRLHF_HOME", str(tmp_path / "home"))
    for name in ("CLINRLHF_DATABASE_URL", "CLINRLHF_POLICY", "CLINRLHF_ENV", "CLINRLHF_DEID_KEY"):
        monkeypatch.delenv(name, raising=False)
    torch.set_num_threads(1)
    return tmp_path / "home"


def snapshot(path: Path, n: int = 60, flipper: bool = False) -> Path:
    """Pairwise judgments preferring a concordant drug to the habit, as `clinrlhf export` writes them.
    With `flipper`, dr-0, dr-1 and dr-2 judge every card, and dr-2 always prefers the habit."""
    world, rng = load_world(), random.Random(0)
    judgments = []
    for i, patient in enumerate(generate_patients(world, n, 5)):
        target = patient.targets[0]
        good = sorted(acceptable(world, patient.facts, target) - {HABITS[target]})
        if good:
            texts = (render_response(world, rng.choice(good)), render_response(world, HABITS[target]))
            prompt = render_prompt(world, patient.facts, target)
            for r in range(3) if flipper else [i % 3]:
                preferred = 1 if flipper and r == 2 else 0
                judgments.append(
                    Judgment("pairwise", f"c{i}", f"p{i}", f"dr-{r}", prompt, texts, preferred=preferred)
                )
    path.write_bytes(to_ndjson(judgments))
    return path


def test_the_three_stages_chain_through_files_and_mlflow(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    data = snapshot(tmp_path / "feedback.ndjson")
    sft, reward, policy = tmp_path / "sft", tmp_path / "reward", tmp_path / "policy"

    assert main(["train", "sft", "--out", str(sft), "--config", str(config)]) == 0
    sft_summary = json.loads(capsys.readouterr().out)
    argv = ["--policy", str(sft), "--snapshot", str(data), "--config", str(config)]
    assert main(["train", "reward", *argv, "--out", str(reward)]) == 0
    reward_summary = json.loads(capsys.readouterr().out)
    assert main(["train", "ppo", *argv, "--reward", str(reward), "--out", str(policy)]) == 0
    ppo_summary = json.loads(capsys.readouterr().out)

    before, _ = load_policy(sft)
    after, _ = load_policy(policy)
    assert any(not torch.equal(a, b) for a, b in zip(before.parameters(), after.parameters(), strict=True))
    _, _, metadata = load_reward_model(reward)
    assert metadata["mlflow.run_id"] == reward_summary["mlflow_run_id"]
    assert 0 < reward_summary["epsilon"] <= 8.0

    mlflow.set_tracking_uri(load_settings().mlflow_tracking_uri)
    ppo_run = mlflow.get_run(ppo_summary["mlflow_run_id"])
    assert ppo_run.data.tags["clinrlhf.reward_run_id"] == reward_summary["mlflow_run_id"]
    assert ppo_run.data.tags["clinrlhf.dataset_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert mlflow.get_run(sft_summary["mlflow_run_id"]).data.tags["clinrlhf.stage"] == "sft"


def test_train_reward_weights_each_clinician_by_their_dawid_skene_accuracy(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's default (rater_weighting "dawid-skene") estimates each clinician's accuracy from
    the snapshot (without publishing them: no roster) and says so in the reward run's params; "none"
    from --config turns it off."""
    monkeypatch.setenv("CLINRLHF_PRIVACY_BUDGET_EPSILON", "1e6")  # two reward runs on the same people
    weighted, plain = tmp_path / "weighted.json", tmp_path / "plain.json"
    weighted.write_text(json.dumps(TINY))
    plain.write_text(json.dumps({**TINY, "reward": {**TINY["reward"], "rater_weighting": "none"}}))
    data, sft = snapshot(tmp_path / "feedback.ndjson", 30, flipper=True), tmp_path / "sft"
    assert main(["train", "sft", "--out", str(sft), "--config", str(weighted)]) == 0
    capsys.readouterr()
    runs = {}
    for config in (weighted, plain):
        argv = ["--policy", str(sft), "--snapshot", str(data), "--config", str(config)]
        assert main(["train", "reward", *argv, "--out", str(tmp_path / config.stem)]) == 0
        runs[config.stem] = json.loads(capsys.readouterr().out)["mlflow_run_id"]

    client = MlflowClient(load_settings().mlflow_tracking_uri)
    run = client.get_run(runs["weighted"])
    assert run.data.params["reward.rater_weighting"] == "dawid-skene"
    # A stage trained alone has no roster fixed before training: the accuracies weight the loss but
    # are not published, since a table keyed by the snapshot's clinicians says who took part.
    assert not client.list_artifacts(run.info.run_id, "raters")
    assert not any(k.startswith("reward.rater_accuracy.") for k in run.data.metrics)
    off = client.get_run(runs["plain"])
    assert off.data.params["reward.rater_weighting"] == "none"
    assert not any(k.startswith("reward.rater_accuracy.") for k in off.data.metrics)
    assert not [
        a for a in client.list_artifacts(off.info.run_id, "raters") if a.path.endswith("accuracies.json")
    ]


def test_ppo_with_lora_from_the_config_saves_a_plain_policy(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "lora.json"
    config.write_text(json.dumps({**TINY, "lora": {"rank": 2, "alpha": 4}}))
    data = snapshot(tmp_path / "feedback.ndjson", 30)
    sft, reward, policy = tmp_path / "sft", tmp_path / "reward", tmp_path / "policy"
    assert main(["train", "sft", "--out", str(sft), "--config", str(config)]) == 0
    argv = ["--policy", str(sft), "--snapshot", str(data), "--config", str(config)]
    assert main(["train", "reward", *argv, "--out", str(reward)]) == 0
    capsys.readouterr()
    assert main(["train", "ppo", *argv, "--reward", str(reward), "--out", str(policy)]) == 0
    run_id = json.loads(capsys.readouterr().out)["mlflow_run_id"]

    before, _ = load_policy(sft)
    after, _ = load_policy(policy)  # the adapters were merged: it loads as the plain architecture
    assert type(after) is type(before)
    changed = {
        n
        for (n, a), b in zip(before.named_parameters(), after.parameters(), strict=True)
        if not torch.equal(a, b)
    }
    assert changed and all(".attn.c_attn." in name for name in changed)  # GPT-2's LoRA target only
    mlflow.set_tracking_uri(load_settings().mlflow_tracking_uri)
    assert mlflow.get_run(run_id).data.params["lora.rank"] == "2"


def test_a_snapshot_that_is_not_judgments_is_refused_in_one_line(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"patient": "Jane Doe"}\n')
    (tmp_path / "sft").mkdir()
    argv = ["train", "reward", "--policy", str(tmp_path / "sft"), "--snapshot", str(bad), "--out", "x"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "line 1 is not a judgment" in err and "Jane" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_inputs_are_named(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "ppo", "--policy", str(tmp_path / "nope"), "--reward", str(tmp_path), "--out", "x"]
    assert main([*argv, "--snapshot", str(snapshot(tmp_path / "s.ndjson", 5))]) == 2
    assert "model folder not found" in capsys.readouterr().err


def test_the_pipeline_and_the_cli_charge_one_odometer_across_reexports(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's reward stage, charged as run_pipeline charges it, then `clinrlhf train reward`
    on a re-export of the same judgments (another order, another digest): one odometer, one budget,
    one δ."""
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    data, sft = snapshot(tmp_path / "feedback.ndjson", 30), tmp_path / "sft"
    assert main(["train", "sft", "--out", str(sft), "--config", str(config)]) == 0
    monkeypatch.setenv("CLINRLHF_PRIVACY_BUDGET_EPSILON", "1e6")
    settings, pipeline = load_settings(), load_pipeline_config(config)
    configure_mlflow(settings)
    judgments = from_ndjson(data.read_bytes())
    policy, tokenizer = load_policy(sft)
    _, _, trained = stages.reward_stage(
        world=load_world(),
        judgments=judgments,
        sft_model=policy,
        tokenizer=tokenizer,
        config=with_rater_accuracies(pipeline.reward, judgments),
        snapshot=stages.save_snapshot(judgments, home / "snapshots"),
        deid_sha="deid",
        progress=lambda *_: None,
        ledger=deployment_ledger(settings, pipeline.reward.dp.accountant),
    )
    ledger = json.loads((home / LEDGER_FILE).read_text())
    (first,) = ledger["runs"]
    assert ledger["delta"] == settings.privacy_delta
    run = Mechanism(first["noise_multiplier"], first["sample_rate"], first["steps"])
    once, twice = filter_epsilon([run], ledger["delta"]), filter_epsilon([run, run], ledger["delta"])
    logged = MlflowClient(settings.mlflow_tracking_uri).get_run(trained.run_id).data
    assert logged.metrics["ledger.epsilon"] == pytest.approx(once)

    reexport = tmp_path / "reexport.ndjson"
    reexport.write_bytes(to_ndjson(list(reversed(judgments))))
    assert hashlib.sha256(reexport.read_bytes()).hexdigest() != first["snapshot_sha256"]
    argv = ["train", "reward", "--policy", str(sft), "--snapshot", str(reexport), "--config", str(config)]
    monkeypatch.setenv("CLINRLHF_PRIVACY_BUDGET_EPSILON", str((once + twice) / 2))  # room for one run
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert "composed ε" in err and "budget" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r2").exists()

    monkeypatch.setenv("CLINRLHF_PRIVACY_BUDGET_EPSILON", "1e6")
    monkeypatch.setenv("CLINRLHF_PRIVACY_DELTA", "1e-7")  # a later δ cannot replace the deployment's
    assert main([*argv, "--out", str(tmp_path / "r3")]) == 2
    err = capsys.readouterr().err
    assert "CLINRLHF_PRIVACY_DELTA" in err and len(err.strip().splitlines()) == 1
    assert [r["snapshot_sha256"] for r in json.loads((home / LEDGER_FILE).read_text())["runs"]] == [
        first["snapshot_sha256"]
    ]


# A PPO run killed with SIGKILL resumes from its last checkpoint when the same command runs again,
# and the privacy ledger is neither reset nor charged twice.
LONG_PPO = {**TINY, "ppo": {**TINY["ppo"], "steps": 120, "checkpoint_every": 1, "final_kl_samples": 8}}


def _ppo_command(sft: Path, reward: Path, data: Path, config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "clinrlhf", "train", "ppo", "--policy", str(sft), "--reward", str(reward),
            "--snapshot", str(data), "--config", str(config), "--out", str(out)]  # fmt: skip


def _kill_after_first_checkpoint(command: list[str], checkpoint: Path, env: dict[str, str]) -> None:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not checkpoint.exists():
            assert process.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_a_killed_ppo_run_resumes_and_the_ledger_is_untouched(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "long.json"
    config.write_text(json.dumps(LONG_PPO))
    data = snapshot(tmp_path / "feedback.ndjson")
    sft, reward, policy = tmp_path / "sft", tmp_path / "reward", tmp_path / "policy"
    assert main(["train", "sft", "--out", str(sft), "--config", str(config)]) == 0
    argv = ["--policy", str(sft), "--snapshot", str(data), "--config", str(config)]
    assert main(["train", "reward", *argv, "--out", str(reward)]) == 0
    ledger = home / "privacy_ledger.json"
    charged = ledger.read_bytes()
    assert len(json.loads(charged)["runs"]) == 1

    command = _ppo_command(sft, reward, data, config, policy)
    checkpoint = policy.parent / "checkpoints" / CHECKPOINT_FILE
    env = {**os.environ, "CLINRLHF_HOME": str(home), "OMP_NUM_THREADS": "1"}
    _kill_after_first_checkpoint(command, checkpoint, env)
    killed_at = int(torch.load(checkpoint, weights_only=True)["step"])
    assert 1 <= killed_at < LONG_PPO["ppo"]["steps"]
    assert not policy.exists()  # a killed run leaves no policy behind, only its checkpoint

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    final = torch.load(checkpoint, weights_only=True)
    assert final["step"] == LONG_PPO["ppo"]["steps"]
    assert [row["step"] for row in final["history"]] == list(range(1, final["step"] + 1))

    # The resumed run logged only the steps it trained; the killed run's steps came from the checkpoint.
    mlflow.set_tracking_uri(load_settings().mlflow_tracking_uri)
    run_id = json.loads(done.stdout)["mlflow_run_id"]
    steps = [m.step for m in mlflow.MlflowClient().get_metric_history(run_id, "ppo.kl")]
    assert min(steps) == killed_at + 1 and max(steps) == LONG_PPO["ppo"]["steps"]
    assert ledger.read_bytes() == charged  # PPO spends no privacy: nothing reset, nothing charged twice
