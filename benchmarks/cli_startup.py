"""How long `clinrlhf --help` takes, from process start to exit: the wait a user sees before any
command says what it does.

    python benchmarks/cli_startup.py --runs 9 --out cli_startup.json

Each run is a fresh interpreter (the `clinrlhf` console script beside this Python, else
`python -m clinrlhf`), so nothing is cached in memory but the operating system's file cache; the
first run is a warm-up and is not counted. Also reports, per subcommand, `clinrlhf COMMAND --help`
once, and which heavy libraries building the parser imported (there should be none: each command
imports torch, MLflow and SQLAlchemy inside its `run`). No torch import here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HEAVY = ("torch", "transformers", "mlflow", "sqlalchemy", "opacus", "fastapi")
PROBE = (
    "import json, sys; import clinrlhf.cli; clinrlhf.cli.build_parser(); "
    f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
)


def command() -> list[str]:
    script = Path(sys.executable).with_name("clinrlhf")
    return [str(script)] if script.exists() else [sys.executable, "-m", "clinrlhf"]


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or "usage:" not in done.stdout:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()[-300:]}")
    return elapsed


def heavy_imports() -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    return (
        json.loads(done.stdout) if done.returncode == 0 else [f"probe failed: {done.stderr.strip()[-200:]}"]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs of `clinrlhf --help` (default 9)")
    parser.add_argument("--no-commands", action="store_true", help="skip the per-command --help times")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    base = command()
    timed([*base, "--help"])  # warm-up: the file cache, .pyc files
    seconds = [timed([*base, "--help"]) for _ in range(args.runs)]
    result = {
        "command": " ".join([Path(base[0]).name, *base[1:], "--help"]),
        "runs": args.runs,
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "max_s": max(seconds),
        "heavy_imports": heavy_imports(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
    }
    if not args.no_commands:
        from clinrlhf.cli import COMMANDS

        result["commands_s"] = {name: timed([*base, name, "--help"]) for name in COMMANDS}
    print(
        f"{result['command']}: median {result['median_s']:.3f} s over {args.runs} runs "
        f"(min {result['min_s']:.3f}, max {result['max_s']:.3f}); "
        f"heavy libraries imported: {', '.join(result['heavy_imports']) or 'none'}"
    )
    for name, s in result.get("commands_s", {}).items():
        print(f"  clinrlhf {name} --help: {s:.3f} s")
    print(f"load average {result['load_average_1min']:.2f} on {result['cpus']} CPUs")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
