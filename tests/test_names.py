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


def modules_named(word: str) -> list[str]:
    """The module files whose name contains `word`, in every package."""
    return sorted(
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob(f"*{word}*.py")
    )


def test_registry_names_the_mlflow_model_registry_only() -> None:
    """The local pointers to the latest aligned and the production policy are pointers."""
    assert modules_named("registry") == ["clinrlhf/compliance/registry.py"]


def test_the_ledger_is_the_deployments_privacy_odometer_only() -> None:
    """The Rényi filter's arithmetic is the filter; the report's view is the privacy spent."""
    assert modules_named("ledger") == ["clinrlhf/alignment/ledger_copy.py", "clinrlhf/reward/ledger.py"]


def test_audit_names_the_hash_chained_audit_trail_only() -> None:
    """Measuring a DP guarantee with canaries is a canary game, not an audit."""
    assert modules_named("audit") == [
        "clinrlhf/cli/audit.py",
        "clinrlhf/lineage/audit_anchors.py",
        "clinrlhf/store/audit.py",
        "clinrlhf/store/audit_verify.py",
        "clinrlhf/store/migrations/versions/0002_audit_entity_digest.py",
    ]


def test_a_ledger_entry_is_a_charge_to_the_deployments_odometer_only() -> None:
    """The report's row for one reward run is the privacy that run spent, not a ledger entry."""
    assert class_homes(("LedgerEntry",)) == {"LedgerEntry": ["clinrlhf/reward/ledger.py"]}
