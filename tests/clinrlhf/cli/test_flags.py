"""Flags the command line refuses, and help it gives, run as a user runs it: `python -m clinrlhf`
in a subprocess under a temporary CLINRLHF_HOME. Every refusal is one line on stderr and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _clinrlhf(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLINRLHF_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "clinrlhf", *args], env=env, capture_output=True, text=True, timeout=300
    )


def _one_line_refusal(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1"])
def test_serve_refuses_a_port_outside_1_to_65535(port: str, tmp_path: Path) -> None:
    # 99999 used to be taken modulo 65536: uvicorn listened on 34463 without a word.
    line = _one_line_refusal(_clinrlhf("serve", "--port", port, home=tmp_path))
    assert "--port" in line and "65535" in line and port in line


@pytest.mark.parametrize(
    ("stage", "says"),
    [("sft", "supervised"), ("reward", "reward model"), ("ppo", "PPO")],
)
def test_each_training_stage_help_says_what_it_does_and_what_it_needs(
    stage: str, says: str, tmp_path: Path
) -> None:
    done = _clinrlhf("train", stage, "--help", home=tmp_path)
    assert done.returncode == 0
    usage, _, rest = done.stdout.partition("\n\n")
    description = rest.split("\noptions:")[0]
    assert says in description
    needs = {"sft": [], "reward": ["--policy", "--snapshot"], "ppo": ["--policy", "--reward", "--snapshot"]}
    for flag in needs[stage]:
        assert flag in description, f"the description of {stage} should say it needs {flag}"


@pytest.mark.parametrize(
    "command",
    [["pipeline"], ["train", "sft", "--out", "ignored"]],
    ids=["pipeline", "train"],
)
def test_a_malformed_config_file_is_named_as_not_valid_json(command: list[str], tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"reward": {"dp": {"target_epsilon": 4.0,}}}')  # trailing comma
    line = _one_line_refusal(_clinrlhf(*command, "--config", str(config), home=tmp_path))
    assert "not valid JSON" in line and "line 1" in line
    assert not (tmp_path / "ignored").exists()
