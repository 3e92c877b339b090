"""What the CLI writes under `$CLINRLHF_HOME` (the database, keys, MLflow's store, logs, reports) is
readable by its owner only: files 0600, folders 0700, whatever the caller's umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from clinrlhf.settings import Settings


def test_the_home_and_everything_the_cli_writes_there_is_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = os.environ | {"CLINRLHF_HOME": str(home), "CLINRLHF_ENV": "development"}
    # A permissive umask, as in many shells and containers: the CLI must not depend on it.
    cmd = f"umask 022 && exec {sys.executable} -m clinrlhf stats"
    subprocess.run(["sh", "-c", cmd], env=env, check=True, capture_output=True, timeout=120)
    found = [home, *home.rglob("*")]
    assert any(p.name == "clinrlhf.db" for p in found)
    loose = {
        str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode))
        for p in found
        if p.stat().st_mode & 0o077
    }
    assert loose == {}


def test_settings_make_an_existing_home_private(tmp_path: Path) -> None:
    home = tmp_path / "shared"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    assert Settings(home=home).resolved_home == home.resolve()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
