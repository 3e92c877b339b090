"""The CLI fails with a non-zero status and one line that says why."""

import os
import subprocess
import sys


def _clinrlhf(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLINRLHF_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "clinrlhf", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_missing_config_file(tmp_path):
    done = _clinrlhf("pipeline", "--config", str(tmp_path / "nope.json"), home=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "config file not found" in done.stderr


def test_unknown_config_key_is_named(tmp_path):
    (tmp_path / "c.json").write_text('{"reward": {"epsilon": 3}}')
    done = _clinrlhf("pipeline", "--config", str(tmp_path / "c.json"), home=tmp_path)
    assert done.returncode == 2 and "unknown setting reward.epsilon" in done.stderr


def test_lineage_of_unknown_run(tmp_path):
    done = _clinrlhf("lineage", "0123456789abcdef", home=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1


def test_help_lists_every_command(tmp_path):
    done = _clinrlhf("--help", home=tmp_path)
    for command in ("quickstart", "serve", "token", "ingest", "stats", "pipeline", "report", "lineage"):
        assert command in done.stdout
