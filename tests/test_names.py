"""One meaning per word. The store's model names (Case, Card, Suggestion, Review, Feedback) name the
stored rows and nothing else: a panel's review, a policy's draw or a CDS Hooks card on the wire is
called what it is. `snapshot` names the NDJSON export of judgments, never a read session of the store
(that is a consistent read)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("privacy", "clinrlhf", "services", "benchmarks")
STORED = ("Case", "Card", "Suggestion", "Review", "Feedback")


def class_homes(names: tuple[str, ...]) -> dict[str, list[str]]:
    """name -> the files that define a class of that name, for the given names."""
    homes: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef) and node.name in names:
                    homes.setdefault(node.name, []).append(path.relative_to(ROOT).as_posix())
    return homes


def functions_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_the_store_model_names_are_defined_once_in_the_store() -> None:
    elsewhere = {
        name: [home for home in homes if home != "clinrlhf/store/models.py"]
        for name, homes in class_homes(STORED).items()
    }
    assert {name: homes for name, homes in elsewhere.items() if homes} == {}


def test_a_read_session_of_the_store_is_a_consistent_read_not_a_snapshot() -> None:
    names = functions_of(ROOT / "clinrlhf/store/db.py")
    assert "consistent_read" in names
    assert [name for name in names if "snapshot" in name] == []
