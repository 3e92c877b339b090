"""A clean install is quiet: pyproject.toml states its licence as an SPDX expression, which the
setuptools it asks for understands, so building the package warns about nothing. The real build
backend prepares the metadata from a copy of pyproject.toml in a temporary folder."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The first setuptools that reads `license = "<SPDX expression>"` (PEP 639) without warning.
SPDX_SETUPTOOLS = (77,)


def _floor(requirement: str) -> tuple[int, ...]:
    match = re.fullmatch(r"setuptools\s*>=\s*([\d.]+)", requirement.strip())
    assert match, f"[build-system] should pin a setuptools floor, not {requirement!r}"
    return tuple(int(part) for part in match.group(1).split("."))


def test_the_build_system_asks_for_a_setuptools_that_reads_spdx_licences() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (setuptools,) = [r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    assert _floor(setuptools) >= SPDX_SETUPTOOLS
    assert pyproject["project"]["license"] == "Apache-2.0"


def test_building_the_metadata_warns_about_nothing_and_records_the_licence(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copy(ROOT / "README.md", tmp_path)
    out = tmp_path / "metadata"
    out.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from setuptools import build_meta; "
            "print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))",
            str(out),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Deprecat" not in done.stdout + done.stderr, done.stderr
    metadata = (out / done.stdout.strip().splitlines()[-1] / "METADATA").read_text()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
