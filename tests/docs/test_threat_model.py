"""docs/threat-model.md matches the tests: every finding of the red team has a row, and every test
a row names exists, so the table cannot point at a test that was renamed or deleted."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "threat-model.md"
ROW = re.compile(r"^\| (\d+) \|", re.MULTILINE)
TEST_PATH = re.compile(r"`(tests/[\w/]+\.py)(?:::[\w\[\]-]+)?`")


def test_every_finding_has_a_row() -> None:
    findings = {int(n) for n in ROW.findall(DOC.read_text())}
    assert findings == set(range(1, 13))


def test_every_test_the_table_names_exists() -> None:
    named = TEST_PATH.findall(DOC.read_text())
    assert len(named) >= 12
    missing = [path for path in named if not (ROOT / path).is_file()]
    assert missing == []


def test_the_readme_links_the_threat_model() -> None:
    assert "docs/threat-model.md" in (ROOT / "README.md").read_text()
