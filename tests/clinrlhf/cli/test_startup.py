"""`clinrlhf --help` starts fast: building the parser imports none of the heavy libraries. Each
command imports what it needs inside its `run` function, so asking for help never waits for torch
(the wall time itself is measured by benchmarks/cli_startup.py, not asserted on a shared machine)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "mlflow", "sqlalchemy", "opacus", "fastapi")

PROBE = """
import json, sys
import clinrlhf.cli
clinrlhf.cli.build_parser()
print(json.dumps(sorted(name for name in {heavy} if name in sys.modules)))
"""


def test_building_the_parser_imports_no_heavy_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_the_top_level_help_lists_every_command_without_importing_them_heavily() -> None:
    probe = PROBE.replace("clinrlhf.cli.build_parser()", "clinrlhf.cli.build_parser().format_help()")
    done = subprocess.run(
        [sys.executable, "-c", probe.format(heavy=HEAVY)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
